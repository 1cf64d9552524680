package prometheus

import (
	"strconv"
	"sync"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
)

// Prometheus' metric lint (promtool check metrics) finds nothing, in
// either mode.
func TestCollectorLint(t *testing.T) {
	b := smallBroker(t)
	for _, per := range []bool{false, true} {
		problems, err := testutil.CollectAndLint(NewCollector(b, &Options{PerPartition: per}))
		require.NoError(t, err)
		require.Empty(t, problems)
	}
}

// The series count is what Collector's doc says: broker-wide metrics, 8
// per topic (or per partition), 4 per group and 2 per topic (or
// partition) it committed; the group filter leaves groups out.
func TestCollectorCardinality(t *testing.T) {
	b := openBroker(t)
	const topics, partitions = 2, 3
	var names []string
	for i := range topics {
		name := "t" + strconv.Itoa(i)
		names = append(names, name)
		require.NoError(t, b.CreateTopic(name, stream.TopicConfig{Partitions: partitions}))
		for p := range int32(partitions) {
			publish(t, b, name, p, 1)
		}
	}
	consume(t, b, "g", topics*partitions, names...)
	// A second group, with nothing committed: its 4 series only.
	c, err := b.Subscribe("idle", names, nil)
	require.NoError(t, err)
	defer c.Close()

	const brokerWide = 30 // metrics; the histogram is one
	require.Equal(t, brokerWide+8*topics+2*4+2*topics, testutil.CollectAndCount(NewCollector(b, nil)))
	require.Equal(t, brokerWide+8*topics*partitions+2*4+2*topics*partitions,
		testutil.CollectAndCount(NewCollector(b, &Options{PerPartition: true})))
	onlyG := func(g string) bool { return g == "g" }
	require.Equal(t, brokerWide+8*topics+4+2*topics, testutil.CollectAndCount(NewCollector(b, &Options{Groups: onlyG})))
	none := func(string) bool { return false }
	require.Equal(t, brokerWide+8*topics, testutil.CollectAndCount(NewCollector(b, &Options{Groups: none})))
	require.Equal(t, 2, testutil.CollectAndCount(NewCollector(b, nil), "embedstream_group_members"))
	require.Equal(t, topics*partitions, testutil.CollectAndCount(NewCollector(b, &Options{PerPartition: true}), "embedstream_log_end_offset"))
}

// The fsync histogram is Stats.FsyncLatency in seconds, its buckets
// cumulative: +Inf holds every fsync.
func TestFsyncHistogram(t *testing.T) {
	b, err := stream.Open(t.TempDir(), &stream.Options{Sync: stream.SyncAlways})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	publish(t, b, "t", 0, 10)

	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(NewCollector(b, nil)))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var fsyncs float64
	var h *dto.Histogram
	for _, mf := range mfs {
		switch mf.GetName() {
		case "embedstream_fsyncs_total":
			fsyncs = mf.GetMetric()[0].GetCounter().GetValue()
		case "embedstream_fsync_duration_seconds":
			h = mf.GetMetric()[0].GetHistogram()
		}
	}
	require.GreaterOrEqual(t, fsyncs, 10.0)
	require.NotNil(t, h)
	require.Equal(t, uint64(fsyncs), h.GetSampleCount())
	require.Positive(t, h.GetSampleSum())
	st := b.Stats().FsyncLatency
	require.Len(t, h.GetBucket(), len(st.Bounds))
	var prev uint64
	for i, bk := range h.GetBucket() {
		require.Equal(t, st.Bounds[i].Seconds(), bk.GetUpperBound())
		require.GreaterOrEqual(t, bk.GetCumulativeCount(), prev, "cumulative")
		prev = bk.GetCumulativeCount()
	}
	require.LessOrEqual(t, prev, h.GetSampleCount())
}

// After Close, a scrape has the broker-wide metrics as they were and
// nothing per topic or group, and no panic.
func TestCollectAfterClose(t *testing.T) {
	b := smallBroker(t)
	c := NewCollector(b, &Options{PerPartition: true})
	require.NoError(t, b.Close())
	require.Equal(t, 30, testutil.CollectAndCount(c))
	require.Equal(t, 1, testutil.CollectAndCount(c, "embedstream_published_records_total"))
	require.Zero(t, testutil.CollectAndCount(c, "embedstream_log_end_offset", "embedstream_group_members"))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// Scrapes while topics come and go, records arrive and a group commits
// are consistent (the pedantic registry checks every one) and race-free.
func TestCollectDuringChanges(t *testing.T) {
	b := openBroker(t)
	require.NoError(t, b.CreateTopic("steady", stream.TopicConfig{Partitions: 2}))
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(NewCollector(b, &Options{PerPartition: true})))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 20 {
			name := "churn" + strconv.Itoa(i%3)
			if err := b.CreateTopic(name, stream.TopicConfig{Partitions: 3}); err != nil {
				t.Error(err)
				return
			}
			if err := b.Publish(t.Context(), &stream.Record{Topic: "steady", Partition: int32(i % 2), Value: []byte("x")}); err != nil {
				t.Error(err)
				return
			}
			if err := b.DeleteTopic(name); err != nil {
				t.Error(err)
				return
			}
		}
	})
	scrapes := 0
	for {
		_, err := reg.Gather()
		require.NoError(t, err)
		scrapes++
		select {
		case <-done:
			wg.Wait()
			require.Positive(t, scrapes)
			require.Equal(t, 2, testutil.CollectAndCount(NewCollector(b, &Options{PerPartition: true}), "embedstream_log_end_offset"))
			return
		default:
		}
	}
}
