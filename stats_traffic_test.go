package stream

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every partition counts what was published to it and what readers of
// each kind returned from it; the broker's totals are their sums.
func TestPartitionTraffic(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(),
		&Record{Topic: "t", Partition: 0, Value: []byte("a")},
		&Record{Topic: "t", Partition: 0, Value: []byte("b")},
		&Record{Topic: "t", Partition: 0, Value: []byte("c")}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 1, Value: []byte("d")}))
	describe := func() []PartitionInfo {
		t.Helper()
		info, err := b.DescribeTopic("t")
		require.NoError(t, err)
		return info.Partitions
	}
	ps := describe()
	size0, size1 := ps[0].Bytes, ps[1].Bytes // one batch each
	require.Equal(t, [4]int64{3, size0, 0, 0}, traffic(ps[0]))
	require.Equal(t, [4]int64{1, size1, 0, 0}, traffic(ps[1]))

	// A Reader of partition 0.
	require.Equal(t, []string{"a", "b", "c"}, values(t, b, "t", 0))
	ps = describe()
	require.Equal(t, [4]int64{3, size0, 3, size0}, traffic(ps[0]))
	require.Equal(t, [4]int64{1, size1, 0, 0}, traffic(ps[1]))

	// ReadBatches of partition 1.
	bs, err := b.ReadBatches("t", 1, 0, 1<<20)
	require.NoError(t, err)
	require.EqualValues(t, size1, len(bs.Data))
	bs.Release()
	ps = describe()
	require.Equal(t, [4]int64{1, size1, 1, size1}, traffic(ps[1]))

	// A Consumer of both.
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	defer c.Close()
	var got int
	for got < 4 {
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		got += len(recs)
	}
	require.Equal(t, 4, got)
	ps = describe()
	require.Equal(t, [4]int64{3, size0, 6, 2 * size0}, traffic(ps[0]))
	require.Equal(t, [4]int64{1, size1, 2, 2 * size1}, traffic(ps[1]))

	st := b.Stats()
	require.Equal(t, [4]int64{4, size0 + size1, 8, 2*size0 + 2*size1},
		[4]int64{st.RecordsIn, st.BytesIn, st.RecordsOut, st.BytesOut}, "the totals are the partitions' sums")
}

func traffic(p PartitionInfo) [4]int64 {
	return [4]int64{p.RecordsIn, p.BytesIn, p.RecordsOut, p.BytesOut}
}

// Every fsync Stats.Fsyncs counts is in the latency histogram: those of
// publishes under SyncAlways and of segments sealed as they roll.
func TestFsyncLatencyHistogram(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncAlways, Partitioner: ManualPartitioner{}})
	h := b.Stats().FsyncLatency
	require.Len(t, h.Counts, len(h.Bounds)+1)
	require.True(t, slices.IsSorted(h.Bounds))
	require.Equal(t, time.Duration(0), h.Sum)
	require.Zero(t, h.Count())

	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 4 << 10}))
	for range 30 {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 200)}))
	}
	st := b.Stats()
	require.Positive(t, st.SegmentsRolled, "the segment rolled: its seal's fsync counts too")
	require.GreaterOrEqual(t, st.Fsyncs, int64(30))
	h = st.FsyncLatency
	require.Equal(t, st.Fsyncs, h.Count())
	require.Positive(t, h.Sum)
	var sum int64
	for _, n := range h.Counts {
		require.GreaterOrEqual(t, n, int64(0))
		sum += n
	}
	require.Equal(t, st.Fsyncs, sum)

	// The bounds are the caller's copy.
	h.Bounds[0] = time.Hour
	require.NotEqual(t, time.Hour, b.Stats().FsyncLatency.Bounds[0])

	// No fsync under SyncNever, so nothing observed.
	lax := openBroker(t, "", nil)
	require.NoError(t, lax.CreateTopic("t", TopicConfig{}))
	require.NoError(t, lax.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
	require.Zero(t, lax.Stats().FsyncLatency.Count())
}

// Records a Poll gathered but did not return (its context ended while it
// waited for MinBytes) are not counted as read: the Poll that returns them
// counts them, once.
func TestPartitionTrafficCountsReturnedRecords(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("a")}, &Record{Topic: "t", Value: []byte("b")}))
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MinBytes: 1000, MaxWait: time.Hour})
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		recs, err := c.Poll(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, recs)
	}
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Zero(t, info.Partitions[0].RecordsOut)
	require.Zero(t, b.Stats().RecordsOut)

	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 1000)}))
	recs, err := c.Poll(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 3)
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, int64(3), info.Partitions[0].RecordsOut)
	require.Equal(t, int64(3), b.Stats().RecordsOut)
}
