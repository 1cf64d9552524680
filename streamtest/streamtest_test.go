package streamtest_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

func TestNewBrokerDefaults(t *testing.T) {
	streamtest.CheckLeaks(t)
	b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 3}))
	require.Equal(t, []string{"orders"}, b.Topics())
	info, err := b.DescribeTopic("orders")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 3)
	require.EqualValues(t, streamtest.SegmentBytes, info.Config.SegmentBytes)

	dir := streamtest.Dir(t, b)
	require.True(t, filepath.IsAbs(dir))
	_, err = os.Stat(filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
}

func TestNewBrokerWithOptions(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithOptions(&stream.Options{
		AutoCreateTopics: true,
		DefaultTopic:     stream.TopicConfig{Partitions: 2},
	}))
	streamtest.Publish(t, b, "auto", "x")
	info, err := b.DescribeTopic("auto")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)
	require.EqualValues(t, streamtest.SegmentBytes, info.Config.SegmentBytes, "auto-created topics get small segments too")
}

func TestNewBrokerIsClosedByCleanup(t *testing.T) {
	var b *stream.Broker
	t.Run("inner", func(t *testing.T) {
		b = streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	})
	require.ErrorIs(t, b.Publish(t.Context(), &stream.Record{Topic: "t", Value: []byte("x")}), stream.ErrClosed)
}

// NewBroker's speed comes from SyncNever: nothing is fsynced while the
// test runs. (BenchmarkNewBroker measures the time to open one: about
// 0.15ms on tmpfs.)
func TestNewBrokerDoesNotFsync(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{Partitions: 4}))
	for range 10 {
		streamtest.Publish(t, b, "t", "a", "b")
	}
	streamtest.Consume(t, b, "g", "t", 20)
	require.Zero(t, b.Stats().Fsyncs)
	require.EqualValues(t, 20, b.Stats().RecordsIn)
}

func BenchmarkNewBroker(b *testing.B) {
	for b.Loop() {
		streamtest.NewBroker(b)
	}
}

func TestPublishAndRecords(t *testing.T) {
	b := streamtest.NewBroker(t,
		streamtest.WithTopic("one", stream.TopicConfig{}),
		streamtest.WithTopic("three", stream.TopicConfig{Partitions: 3}))

	recs := streamtest.Publish(t, b, "one", "a", "b", "c")
	require.Len(t, recs, 3)
	for i, r := range recs {
		require.EqualValues(t, 0, r.Partition)
		require.EqualValues(t, i, r.Offset)
		require.False(t, r.Timestamp.IsZero())
	}
	streamtest.PublishBytes(t, b, "one", []byte("d"), nil)
	got := streamtest.Records(t, b, "one")
	require.Equal(t, []string{"a", "b", "c", "d", ""}, streamtest.Values(got))
	require.Nil(t, got[4].Value, "a nil value stays null")

	// Keyed records land in the key's partition, in order.
	k := streamtest.PublishKeyed(t, b, "three", "alice", "1", "2", "3")
	p := k[0].Partition
	for i, r := range k {
		require.Equal(t, p, r.Partition)
		require.EqualValues(t, i, r.Offset)
		require.Equal(t, "alice", string(r.Key))
	}
	other := "bob"
	for (stream.HashPartitioner{}).Partition(&stream.Record{Key: []byte(other)}, 3) == p {
		other += "+"
	}
	o := streamtest.PublishKeyed(t, b, "three", other, "other")
	require.NotEqual(t, p, o[0].Partition)
	all := streamtest.Records(t, b, "three")
	require.Len(t, all, 4)
	// Records goes partition by partition.
	for i := 1; i < len(all); i++ {
		require.LessOrEqual(t, all[i-1].Partition, all[i].Partition)
	}
}

func TestRecordsAreCopies(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	streamtest.Publish(t, b, "t", "hello")
	recs := streamtest.Records(t, b, "t")
	streamtest.Publish(t, b, "t", "more", "records")
	require.NoError(t, b.Close()) // unmaps the segments
	require.Equal(t, "hello", string(recs[0].Value))
}

func TestConsumeCommitsExactlyWhatItReturns(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{}))
	streamtest.Publish(t, b, "orders", "1", "2", "3", "4", "5")

	// One Poll brings all five; Consume takes two and commits two.
	first := streamtest.Consume(t, b, "g", "orders", 2)
	require.Equal(t, []string{"1", "2"}, streamtest.Values(first))
	tp := stream.TopicPartition{Topic: "orders", Partition: 0}
	require.Equal(t, map[stream.TopicPartition]int64{tp: 2}, streamtest.Committed(t, b, "g"))

	second := streamtest.Consume(t, b, "g", "orders", 3)
	require.Equal(t, []string{"3", "4", "5"}, streamtest.Values(second))
	require.Equal(t, map[stream.TopicPartition]int64{tp: 5}, streamtest.Committed(t, b, "g"))

	// Another group starts from the beginning.
	require.Equal(t, []string{"1"}, streamtest.Values(streamtest.Consume(t, b, "other", "orders", 1)))
	require.Empty(t, streamtest.Consume(t, b, "g", "orders", 0))
	require.Empty(t, streamtest.Committed(t, b, "never"))

	// The returned records are copies.
	require.NoError(t, b.Close())
	require.Equal(t, "3", string(second[0].Value))
}

func TestConsumeAcrossPartitions(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 3}), streamtest.WithOptions(&stream.Options{Partitioner: stream.ManualPartitioner{}}))
	for p := range int32(3) {
		for i := range 4 {
			streamtest.PublishRecords(t, b, &stream.Record{Topic: "orders", Partition: p, Value: []byte{byte('a' + p), byte('0' + i)}})
		}
	}
	got := streamtest.Consume(t, b, "g", "orders", 12)
	require.Len(t, got, 12)
	require.ElementsMatch(t, streamtest.Values(streamtest.Records(t, b, "orders")), streamtest.Values(got))
	committed := streamtest.Committed(t, b, "g")
	for p := range int32(3) {
		require.EqualValues(t, 4, committed[stream.TopicPartition{Topic: "orders", Partition: p}])
	}
}

// A Consume that cannot be satisfied fails the test. Inside synctest its
// 10s timeout passes at once.
func TestConsumeFailsWhenRecordsAreMissing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
		streamtest.Publish(t, b, "t", "only one")
		ft := &fakeT{TB: t}
		start := time.Now()
		runIsolated(func() { streamtest.Consume(ft, b, "g", "t", 2) })
		require.True(t, ft.failed)
		require.Contains(t, ft.msg, "got 1 of 2 records")
		require.Equal(t, streamtest.ConsumeTimeout, time.Since(start))
		require.Empty(t, streamtest.Committed(t, b, "g"))
	})
}

func TestSubscribeDefaults(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	streamtest.Publish(t, b, "t", "before subscribing")
	c := streamtest.Subscribe(t, b, "g", nil, "t")
	recs, err := c.Poll(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{"before subscribing"}, streamtest.Values(recs), "ResetEarliest")
	require.NoError(t, c.Commit(t.Context()))
	require.Len(t, b.Groups(), 1)
}

func TestReopen(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	dir := streamtest.Dir(t, b)
	streamtest.Publish(t, b, "t", "a", "b")
	streamtest.Consume(t, b, "g", "t", 1)

	b2 := streamtest.Reopen(t, b)
	require.ErrorIs(t, b.Publish(t.Context(), &stream.Record{Topic: "t"}), stream.ErrClosed)
	require.Equal(t, dir, streamtest.Dir(t, b2))
	require.Equal(t, []string{"a", "b"}, streamtest.Values(streamtest.Records(t, b2, "t")))
	require.Equal(t, []string{"b"}, streamtest.Values(streamtest.Consume(t, b2, "g", "t", 1)))
	require.Zero(t, b2.Stats().Truncations)
}

func TestWithDir(t *testing.T) {
	dir := t.TempDir()
	t.Run("write", func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithDir(dir), streamtest.WithTopic("t", stream.TopicConfig{}))
		streamtest.Publish(t, b, "t", "kept")
	})
	b := streamtest.NewBroker(t, streamtest.WithDir(dir), streamtest.WithOptions(&stream.Options{ReadOnly: true}))
	require.Equal(t, []string{"kept"}, streamtest.Values(streamtest.Records(t, b, "t")))
	require.ErrorIs(t, b.CreateTopic("x", stream.TopicConfig{}), stream.ErrReadOnly)
}

func TestCrash(t *testing.T) {
	streamtest.CheckLeaks(t)
	b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 2}), streamtest.WithOptions(&stream.Options{Partitioner: stream.ManualPartitioner{}}))
	streamtest.PublishRecords(t, b,
		&stream.Record{Topic: "orders", Partition: 0, Value: []byte("a")},
		&stream.Record{Topic: "orders", Partition: 0, Value: []byte("b")},
		&stream.Record{Topic: "orders", Partition: 1, Value: []byte("c")})
	streamtest.Consume(t, b, "g", "orders", 1)
	p := mustProducer(b, &stream.ProducerOptions{})
	require.NoError(t, p.Flush(t.Context()))
	oldDir := streamtest.Dir(t, b)

	b2 := streamtest.Crash(t, b)

	// The crashed broker is gone, with its producer.
	require.ErrorIs(t, b.Publish(t.Context(), &stream.Record{Topic: "orders"}), stream.ErrClosed)
	require.ErrorIs(t, p.Flush(t.Context()), stream.ErrClosed)
	// The restarted one has every record and the commit, and recovered.
	require.NotEqual(t, oldDir, streamtest.Dir(t, b2))
	require.Equal(t, []string{"a", "b", "c"}, streamtest.Values(streamtest.Records(t, b2, "orders")))
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: "orders", Partition: 0}: 1}, streamtest.Committed(t, b2, "g"))
	require.ElementsMatch(t, []string{"b", "c"}, streamtest.Values(streamtest.Consume(t, b2, "g", "orders", 2)))
	// It is writable and continues the offsets.
	recs := streamtest.PublishRecords(t, b2, &stream.Record{Topic: "orders", Partition: 0, Value: []byte("d")})
	require.EqualValues(t, 2, recs[0].Offset)

	// And it can crash again.
	b3 := streamtest.Crash(t, b2)
	require.Equal(t, []string{"a", "b", "d", "c"}, streamtest.Values(streamtest.Records(t, b3, "orders")))
}

// A crash while a producer is writing keeps a prefix of each partition:
// every record the copy caught, in order, none invented.
func TestCrashDuringWrites(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{Partitions: 2}))
	p := mustProducer(b, &stream.ProducerOptions{Partitioner: stream.ManualPartitioner{}})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.Publish(t.Context(), &stream.Record{Topic: "t", Partition: int32(i % 2), Value: []byte{byte(i >> 8), byte(i)}}, nil)
		}
	}()
	streamtest.Publish(t, b, "t", "sync") // some progress, at least
	b2 := streamtest.Crash(t, b)
	close(stop)
	<-done
	for _, part := range []int32{0, 1} {
		r, err := b2.NewReader("t", part, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		want := int64(0)
		for rec, err := range r.All(t.Context()) {
			require.NoError(t, err)
			require.Equal(t, want, rec.Offset)
			want++
		}
		r.Close()
	}
}

func TestHelpersRejectForeignBrokers(t *testing.T) {
	dir := t.TempDir()
	b, err := stream.Open(dir, nil)
	require.NoError(t, err)
	defer b.Close()
	for name, fn := range map[string]func(testing.TB){
		"Dir":    func(t testing.TB) { streamtest.Dir(t, b) },
		"Reopen": func(t testing.TB) { streamtest.Reopen(t, b) },
		"Crash":  func(t testing.TB) { streamtest.Crash(t, b) },
	} {
		ft := &fakeT{TB: t}
		runIsolated(func() { fn(ft) })
		require.True(t, ft.failed, name)
		require.Contains(t, ft.msg, "not opened by streamtest", name)
	}
}

func TestFaultyPublisherWithBroker(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	p := &streamtest.FaultyPublisher{Publisher: b}
	errDisk := errors.New("disk full")
	rec := func(v string) *stream.Record { return &stream.Record{Topic: "t", Value: []byte(v)} }

	p.FailNext(errDisk)
	require.ErrorIs(t, p.Publish(t.Context(), rec("lost")), errDisk)
	require.NoError(t, p.Publish(t.Context(), rec("a")))
	require.Equal(t, []string{"a"}, streamtest.Values(streamtest.Records(t, b, "t")))
	require.Equal(t, 2, p.Calls())
}

func TestCheckLeaks(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		streamtest.CheckLeaks(t)
		b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{Partitions: 2}))
		p := mustProducer(b, &stream.ProducerOptions{Linger: time.Millisecond})
		p.Publish(t.Context(), &stream.Record{Topic: "t", Value: []byte("x")}, nil)
		require.NoError(t, p.Flush(t.Context()))
		c := streamtest.Subscribe(t, b, "g", nil, "t")
		_, err := c.Poll(t.Context())
		require.NoError(t, err)
		// Neither p nor c closed by the test: closing the broker does it.
	})
	t.Run("called last", func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
		mustProducer(b, &stream.ProducerOptions{})
		streamtest.CheckLeaks(t) // runs before NewBroker's cleanup, and closes the broker itself
	})
	t.Run("no goroutine left", func(t *testing.T) {
		require.Empty(t, streamtest.Leaked())
	})
}

// CheckLeaks reports a goroutine of the module left running. The test runs
// in a synctest bubble so that LeakTimeout passes in virtual time.
func TestCheckLeaksReportsALeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeT{TB: t}
		release := make(chan struct{})
		streamtest.CheckLeaks(ft)
		go leakyWorker(release) // a goroutine of this module, left blocked
		start := time.Now()
		ft.runCleanups()
		require.GreaterOrEqual(t, time.Since(start), streamtest.LeakTimeout)
		require.True(t, ft.failed)
		require.Contains(t, ft.msg, "1 leaked goroutine")
		require.Contains(t, ft.msg, "leakyWorker")
		close(release)
	})
}

func leakyWorker(release chan struct{}) { <-release }

// mustProducer is NewProducer for tests whose options are valid.
func mustProducer(b *stream.Broker, opts *stream.ProducerOptions) *stream.Producer {
	p, err := b.NewProducer(opts)
	if err != nil {
		panic(err)
	}
	return p
}
