package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// Helpers shared by producer_test.go, partitioner_test.go, reader_test.go and
// bench_test.go. They carry a "tb" prefix to stay clear of other test files.

// tbOpen opens a broker in a fresh temp dir (SyncNever unless opts says
// otherwise) and closes it at the end of the test.
func tbOpen(t testing.TB, opts *Options) *Broker {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Sync == SyncDefault {
		opts.Sync = SyncNever
	}
	b, err := Open(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func tbCreate(t testing.TB, b *Broker, name string, cfg TopicConfig) {
	t.Helper()
	require.NoError(t, b.CreateTopic(name, cfg))
}

// tbEnds returns the end offset (high watermark) of each partition.
func tbEnds(t testing.TB, b *Broker, topic string) []int64 {
	t.Helper()
	info, err := b.DescribeTopic(topic)
	require.NoError(t, err)
	ends := make([]int64, len(info.Partitions))
	for i, p := range info.Partitions {
		ends[i] = p.EndOffset
	}
	return ends
}

func tbSum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// tbReadAll returns clones of the records of one partition, from its start
// to its current end.
func tbReadAll(t testing.TB, b *Broker, topic string, partition int32) []*Record {
	t.Helper()
	rd, err := b.NewReader(topic, partition, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	var out []*Record
	for rec, err := range rd.All(context.Background()) {
		require.NoError(t, err)
		out = append(out, rec.Clone())
	}
	return out
}

// tbBatch describes one stored record batch.
type tbBatch struct {
	base, last int64
	records    int
	size       int
	maxTS      int64
}

// tbBatches lists the record batches stored in a partition, oldest first.
func tbBatches(t testing.TB, b *Broker, topic string, partition int32) []tbBatch {
	t.Helper()
	_, p, err := b.partitionLog(topic, partition)
	require.NoError(t, err)
	var out []tbBatch
	for off := p.StartOffset(); off < p.HighWatermark(); {
		v, err := p.Read(off, 1<<20)
		require.NoError(t, err)
		for data := v.Data; len(data) > 0; {
			bt := batch.Batch(data[:batch.Batch(data).Size()])
			data = data[len(bt):]
			out = append(out, tbBatch{base: bt.BaseOffset(), last: bt.LastOffset(), records: int(bt.NumRecords()), size: len(bt), maxTS: bt.MaxTimestamp()})
			off = bt.LastOffset() + 1
		}
		v.Release()
	}
	return out
}

// tbClock is a settable clock for Options.Now.
type tbClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTBClock(t time.Time) *tbClock { return &tbClock{now: t} }

func (c *tbClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *tbClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// tbRecv receives from ch, failing the test if nothing arrives within a
// generous bound (a safety net against hangs, not a timing assumption).
func tbRecv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting on a channel")
		panic("unreachable")
	}
}

// tbCallbacks records the outcome of Producer callbacks.
type tbCallbacks struct {
	mu    sync.Mutex
	calls map[*Record]int
	order []*Record // successful records in callback order
	errs  map[*Record]error
	meta  map[*Record][3]int64 // partition, offset, timestamp (ms) as seen in the callback
}

func newTBCallbacks() *tbCallbacks {
	return &tbCallbacks{calls: map[*Record]int{}, errs: map[*Record]error{}, meta: map[*Record][3]int64{}}
}

func (c *tbCallbacks) done(r *Record, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[r]++
	if err != nil {
		c.errs[r] = err
		return
	}
	c.order = append(c.order, r)
	c.meta[r] = [3]int64{int64(r.Partition), r.Offset, r.Timestamp.UnixMilli()}
}

func (c *tbCallbacks) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.calls {
		n += k
	}
	return n
}

var tbT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// --- Producer ---------------------------------------------------------------

// Items 10, 12, 15, 22: every callback runs exactly once, with Partition,
// Offset and Timestamp filled, in offset order per partition.
func TestProducerCallbacksOncePerRecordInOffsetOrder(t *testing.T) {
	clock := newTBClock(tbT0)
	b := tbOpen(t, &Options{Now: clock.Now})
	tbCreate(t, b, "t", TopicConfig{Partitions: 3})
	pr := mustProducer(b, &ProducerOptions{BatchBytes: 2000, Partitioner: tbExplicitPartitioner{}})
	defer pr.Close()
	cb := newTBCallbacks()
	ctx := context.Background()
	const n = 600
	recs := make([]*Record, n)
	for i := range recs {
		r := &Record{Topic: "t", Partition: int32(i % 3), Value: fmt.Appendf(nil, "v%04d", i)}
		if i%2 == 1 {
			r.Partition = AnyPartition
			r.Key = fmt.Appendf(nil, "k%d", i%7)
		}
		recs[i] = r
		pr.Publish(ctx, r, cb.done)
	}
	require.NoError(t, pr.Flush(ctx))
	require.Equal(t, n, cb.count(), "Flush returned before every callback ran")
	require.NoError(t, pr.Close())

	cb.mu.Lock()
	defer cb.mu.Unlock()
	require.Empty(t, cb.errs)
	require.Len(t, cb.calls, n)
	for _, r := range recs {
		require.Equal(t, 1, cb.calls[r])
	}
	next := map[int32]int64{}
	for _, r := range cb.order {
		m := cb.meta[r]
		require.Equal(t, next[int32(m[0])], m[1], "partition %d: callbacks out of offset order", m[0])
		next[int32(m[0])]++
		require.Equal(t, tbT0.UnixMilli(), m[2], "zero Timestamp becomes the publish time")
	}
	require.Equal(t, tbEnds(t, b, "t"), []int64{next[0], next[1], next[2]})
	// Each record landed where its callback said, with its value.
	for p := int32(0); p < 3; p++ {
		got := tbReadAll(t, b, "t", p)
		for _, r := range recs {
			if r.Partition == p {
				require.Equal(t, r.Value, got[r.Offset].Value)
			}
		}
	}
	// Records with an explicit partition stayed there.
	for i, r := range recs {
		if i%2 == 0 {
			require.Equal(t, int32(i%3), r.Partition)
		}
	}
}

// Item 27: an explicit timestamp is kept (at millisecond precision).
func TestProducerKeepsExplicitTimestamp(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	pr := mustProducer(b, &ProducerOptions{})
	ts := time.Date(2020, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	got := make(chan *Record, 1)
	pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("x"), Timestamp: ts},
		func(r *Record, err error) {
			require.NoError(t, err)
			got <- r
		})
	r := tbRecv(t, got)
	want := time.UnixMilli(ts.UnixMilli())
	require.True(t, want.Equal(r.Timestamp), "got %v want %v", r.Timestamp, want)
	require.NoError(t, pr.Close())
	recs := tbReadAll(t, b, "t", 0)
	require.Len(t, recs, 1)
	require.True(t, want.Equal(recs[0].Timestamp))
}

// Item 15: Flush writes everything published before it and returns after
// every callback ran, even with a long Linger.
func TestProducerFlushWaitsForEarlierRecords(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 4})
	pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}, Linger: time.Hour})
	defer pr.Close()
	var done atomic.Int64
	ctx := context.Background()
	for round := 1; round <= 3; round++ {
		for i := 0; i < 100; i++ {
			pr.Publish(ctx, &Record{Topic: "t", Partition: int32(i % 4), Value: []byte("v")}, func(_ *Record, err error) {
				require.NoError(t, err)
				done.Add(1)
			})
		}
		require.NoError(t, pr.Flush(ctx))
		require.Equal(t, int64(round*100), done.Load())
		require.Equal(t, int64(round*100), tbSum(tbEnds(t, b, "t")))
	}
	// Flush with nothing pending returns at once.
	require.NoError(t, pr.Flush(ctx))
}

// Item 15: Flush must not return while a batch published before it is still
// unwritten, even when records published after it complete first. The
// writer is held in a callback so that batches published before and after
// the Flush are taken together; synctest makes "Flush has returned" exact.
func TestProducerFlushWaitsForEarlierBatchNotLaterOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		const parts = 9
		tbCreate(t, b, "t", TopicConfig{Partitions: parts})
		ctx := context.Background()
		for round := 0; round < 12; round++ {
			pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}, Linger: time.Hour, BatchBytes: 1000})
			gate := make(chan struct{})
			// A: a batch of its own (larger than BatchBytes), written at once;
			// its callback holds the writer.
			pr.Publish(ctx, &Record{Topic: "t", Partition: 0, Value: make([]byte, 2000)}, func(_ *Record, err error) {
				require.NoError(t, err)
				<-gate
			})
			synctest.Wait() // the writer is now blocked in A's callback
			// B: published before the Flush, lingering in partition 1. Its
			// callback holds the writer too, so "Flush returned before B
			// completed" is observable without timing.
			gateB := make(chan struct{})
			var bDone atomic.Bool
			pr.Publish(ctx, &Record{Topic: "t", Partition: 1, Value: []byte("b")}, func(_ *Record, err error) {
				require.NoError(t, err)
				<-gateB
				bDone.Store(true)
			})
			flushed := make(chan error, 1)
			go func() { flushed <- pr.Flush(ctx) }()
			synctest.Wait() // Flush has taken its target and waits
			// C: published after the Flush, to other partitions.
			for p := int32(2); p < parts; p++ {
				pr.Publish(ctx, &Record{Topic: "t", Partition: p, Value: []byte("c")}, nil)
			}
			close(gate)
			synctest.Wait() // the writer is in B's callback; Flush returned or waits
			early := len(flushed) > 0
			close(gateB) // release the writer before any assertion can stop the test
			err := <-flushed
			synctest.Wait()
			require.NoError(t, err)
			require.False(t, early, "round %d: Flush returned before the callback of a record published before it completed", round)
			require.True(t, bDone.Load())
			require.NoError(t, pr.Close())
		}
	})
}

// Item 16: Close writes what the producer holds and runs every callback;
// later Publish fails with ErrClosed through the callback, Flush with
// ErrClosed; Close is idempotent.
func TestProducerCloseFlushesThenRejects(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 2})
	pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}, Linger: time.Hour})
	cb := newTBCallbacks()
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		pr.Publish(ctx, &Record{Topic: "t", Partition: int32(i % 2), Value: []byte{byte(i)}}, cb.done)
	}
	require.Equal(t, []int64{0, 0}, tbEnds(t, b, "t"), "lingering records are not visible yet")
	require.NoError(t, pr.Close())
	require.Equal(t, 10, cb.count())
	require.Empty(t, cb.errs)
	require.Equal(t, []int64{5, 5}, tbEnds(t, b, "t"))

	var got error
	calls := 0
	late := &Record{Topic: "t", Partition: 0, Value: []byte("late")}
	pr.Publish(ctx, late, func(r *Record, err error) {
		require.Same(t, late, r)
		got = err
		calls++
	})
	require.Equal(t, 1, calls, "done runs before Publish returns")
	require.ErrorIs(t, got, ErrClosed)
	pr.Publish(ctx, late, nil) // a nil done is allowed
	require.ErrorIs(t, pr.Flush(ctx), ErrClosed)
	require.NoError(t, pr.Close())
	require.Equal(t, []int64{5, 5}, tbEnds(t, b, "t"))
}

// Item 13: a batch is closed at BatchBytes; a larger record gets a batch of
// its own.
func TestProducerBatchBytesSplitsBatches(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "big", TopicConfig{})
	tbCreate(t, b, "small", TopicConfig{})
	ctx := context.Background()
	value := bytes.Repeat([]byte("x"), 100)

	// Default BatchBytes: 100 records lingering form one batch.
	pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
	before := b.Stats().BatchesIn
	for i := 0; i < 100; i++ {
		pr.Publish(ctx, &Record{Topic: "big", Value: value}, nil)
	}
	require.NoError(t, pr.Flush(ctx))
	require.Equal(t, int64(1), b.Stats().BatchesIn-before)
	one := tbBatches(t, b, "big", 0)
	require.Len(t, one, 1)
	require.Equal(t, 100, one[0].records)
	require.NoError(t, pr.Close())

	// BatchBytes 1000: the same records are split into batches of at most
	// 1000 bytes, without gaps.
	pr = mustProducer(b, &ProducerOptions{Linger: time.Hour, BatchBytes: 1000})
	before = b.Stats().BatchesIn
	for i := 0; i < 100; i++ {
		pr.Publish(ctx, &Record{Topic: "small", Value: value}, nil)
	}
	require.NoError(t, pr.Flush(ctx))
	batches := tbBatches(t, b, "small", 0)
	require.Equal(t, int64(len(batches)), b.Stats().BatchesIn-before)
	require.GreaterOrEqual(t, len(batches), 100*100/1000, "batches: %+v", batches)
	next := int64(0)
	for i, bt := range batches {
		require.Equal(t, next, bt.base)
		require.LessOrEqual(t, bt.size, 1000, "batch over BatchBytes: %+v", bt)
		if i < len(batches)-1 {
			require.Greater(t, bt.size, 700, "batch closed too early: %+v", bt)
		}
		next = bt.last + 1
	}
	require.Equal(t, int64(100), next)

	// A record larger than BatchBytes gets a batch of its own.
	pr.Publish(ctx, &Record{Topic: "small", Value: []byte("a")}, nil)
	pr.Publish(ctx, &Record{Topic: "small", Value: make([]byte, 5000)}, nil)
	pr.Publish(ctx, &Record{Topic: "small", Value: []byte("b")}, nil)
	require.NoError(t, pr.Flush(ctx))
	batches = tbBatches(t, b, "small", 0)
	tail := batches[len(batches)-3:]
	require.Equal(t, []int{1, 1, 1}, []int{tail[0].records, tail[1].records, tail[2].records}, "%+v", tail)
	require.Equal(t, int64(101), tail[1].base)
	require.NoError(t, pr.Close())
}

// Item 14: with a long Linger one small record stays invisible until Flush.
func TestProducerLingerHoldsRecordUntilFlush(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
	defer pr.Close()
	done := make(chan error, 1)
	pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("x")}, func(_ *Record, err error) { done <- err })
	require.Equal(t, []int64{0}, tbEnds(t, b, "t"))
	require.Empty(t, done)
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	_, err = rd.Next(context.Background())
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, rd.Close())

	require.NoError(t, pr.Flush(context.Background()))
	require.NoError(t, tbRecv(t, done))
	require.Equal(t, []int64{1}, tbEnds(t, b, "t"))
}

// Items 13, 14: a batch is written Linger after its first record (virtual
// time), together with the records that arrived meanwhile.
func TestProducerLingerExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		tbCreate(t, b, "t", TopicConfig{})
		pr := mustProducer(b, &ProducerOptions{Linger: time.Second})
		defer pr.Close()
		ctx := context.Background()
		var done atomic.Int32
		cb := func(_ *Record, err error) {
			require.NoError(t, err)
			done.Add(1)
		}
		start := time.Now()
		batchesBefore := b.Stats().BatchesIn
		pr.Publish(ctx, &Record{Topic: "t", Value: []byte("1")}, cb)
		// In the bubble, Sleep advances virtual time once every goroutine blocks.
		time.Sleep(500 * time.Millisecond)
		pr.Publish(ctx, &Record{Topic: "t", Value: []byte("2")}, cb)
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, []int64{0}, tbEnds(t, b, "t"), "written before Linger passed")
		require.Zero(t, done.Load())

		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, time.Second, time.Since(start))
		require.Equal(t, []int64{2}, tbEnds(t, b, "t"))
		require.Equal(t, int32(2), done.Load())
		require.Equal(t, int64(1), b.Stats().BatchesIn-batchesBefore, "both records in one batch")

		// The next record starts a new Linger.
		pr.Publish(ctx, &Record{Topic: "t", Value: []byte("3")}, cb)
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, []int64{2}, tbEnds(t, b, "t"))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, []int64{3}, tbEnds(t, b, "t"))
	})
}

// Linger 0: a record is written without Flush, with no time passing.
func TestProducerZeroLingerWritesPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		tbCreate(t, b, "t", TopicConfig{})
		pr := mustProducer(b, &ProducerOptions{})
		defer pr.Close()
		start := time.Now()
		pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("x")}, nil)
		synctest.Wait()
		require.Equal(t, []int64{1}, tbEnds(t, b, "t"))
		require.Zero(t, time.Since(start))
	})
}

// MaxBufferedBytes: Publish blocks while the buffer is full and the writer
// cannot drain it (long Linger), until ctx ends; done gets ctx's error and
// nothing of that record is written.
func TestProducerMaxBufferedBytesBlocksUntilCtxDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		tbCreate(t, b, "t", TopicConfig{})
		pr := mustProducer(b, &ProducerOptions{Linger: time.Hour, MaxBufferedBytes: 1000})
		defer pr.Close()
		pr.Publish(context.Background(), &Record{Topic: "t", Value: make([]byte, 600)}, func(_ *Record, err error) { require.NoError(t, err) })

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		var got error
		calls := 0
		blocked := &Record{Topic: "t", Value: make([]byte, 600)}
		pr.Publish(ctx, blocked, func(r *Record, err error) {
			require.Same(t, blocked, r)
			got = err
			calls++
		})
		require.Equal(t, 3*time.Second, time.Since(start), "Publish blocked until the deadline")
		require.Equal(t, 1, calls)
		require.ErrorIs(t, got, context.DeadlineExceeded)

		// The first record still lingers; Flush writes only it.
		require.Equal(t, []int64{0}, tbEnds(t, b, "t"))
		require.NoError(t, pr.Flush(context.Background()))
		require.Equal(t, []int64{1}, tbEnds(t, b, "t"))
		require.Equal(t, 1, calls)
	})
}

// MaxBufferedBytes: a blocked Publish proceeds once space frees up.
func TestProducerMaxBufferedBytesUnblocksWhenSpaceFrees(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		tbCreate(t, b, "t", TopicConfig{})
		pr := mustProducer(b, &ProducerOptions{Linger: time.Hour, MaxBufferedBytes: 1000})
		defer pr.Close()
		ctx := context.Background()
		pr.Publish(ctx, &Record{Topic: "t", Value: make([]byte, 600)}, nil)

		second := make(chan error, 1)
		returned := make(chan struct{})
		go func() {
			pr.Publish(ctx, &Record{Topic: "t", Value: []byte("second")}, func(_ *Record, err error) { second <- err })
			close(returned)
		}()
		// A 6-byte value fits: it must not block.
		synctest.Wait()
		select {
		case <-returned:
		default:
			t.Fatal("a record that fits the buffer blocked")
		}

		third := make(chan error, 1)
		returned3 := make(chan struct{})
		go func() {
			pr.Publish(ctx, &Record{Topic: "t", Value: make([]byte, 600)}, func(_ *Record, err error) { third <- err })
			close(returned3)
		}()
		synctest.Wait()
		select {
		case <-returned3:
			t.Fatal("Publish did not block with the buffer full")
		default:
		}
		require.NoError(t, pr.Flush(ctx)) // writes the first two records, freeing space
		<-returned3
		require.NoError(t, <-second)
		require.Empty(t, third, "the third record lingers")
		require.NoError(t, pr.Flush(ctx))
		require.NoError(t, <-third)
		require.Equal(t, []int64{3}, tbEnds(t, b, "t"))
	})
}

// Items 20, 22, 23, 24: bad records fail through done, before Publish
// returns, with the typed error; nothing is written.
func TestProducerRejectsBadRecords(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 2, MaxRecordBytes: 1000})
	pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}})
	defer pr.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		rec  *Record
		want error
	}{
		{"nil record", nil, nil, ErrInvalidRecord},
		{"unknown topic", nil, &Record{Topic: "nope", Value: []byte("x")}, ErrTopicNotFound},
		{"invalid topic name", nil, &Record{Topic: "bad/name", Value: []byte("x")}, ErrInvalidTopic},
		{"empty topic name", nil, &Record{Topic: "", Value: []byte("x")}, ErrInvalidTopic},
		{"partition out of range", nil, &Record{Topic: "t", Partition: 2, Value: []byte("x")}, ErrInvalidPartition},
		{"negative partition", nil, &Record{Topic: "t", Partition: -2, Value: []byte("x")}, ErrInvalidPartition},
		{"negative timestamp", nil, &Record{Topic: "t", Value: []byte("x"), Timestamp: time.UnixMilli(-1)}, ErrInvalidRecord},
		{"value over MaxRecordBytes", nil, &Record{Topic: "t", Value: make([]byte, 1000)}, ErrRecordTooLarge},
		{"headers over MaxRecordBytes", nil, &Record{Topic: "t", Value: []byte("x"),
			Headers: []Header{{Key: strings.Repeat("h", 600), Value: make([]byte, 600)}}}, ErrRecordTooLarge},
		{"canceled context", canceled, &Record{Topic: "t", Value: []byte("x")}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var got error
			calls := 0
			pr.Publish(ctx, tc.rec, func(r *Record, err error) {
				require.Same(t, tc.rec, r)
				got = err
				calls++
			})
			require.Equal(t, 1, calls, "done must run exactly once, before Publish returns")
			require.ErrorIs(t, got, tc.want)
			pr.Publish(ctx, tc.rec, nil) // nil done: no panic
		})
	}
	require.NoError(t, pr.Flush(context.Background()))
	require.Equal(t, []int64{0, 0}, tbEnds(t, b, "t"))
	require.Zero(t, b.Stats().RecordsIn)

	// The producer still works, and the first good record gets offset 0.
	good := &Record{Topic: "t", Partition: 1, Value: make([]byte, 900)}
	errc := make(chan error, 1)
	pr.Publish(context.Background(), good, func(_ *Record, err error) { errc <- err })
	require.NoError(t, pr.Flush(context.Background()))
	require.NoError(t, <-errc)
	require.Equal(t, int64(0), good.Offset)
	require.Equal(t, []int64{0, 1}, tbEnds(t, b, "t"))
}

// Item 20: a record larger than the whole buffer (buffer.memory) can never
// be buffered: it fails with ErrRecordTooLarge instead of waiting for an
// empty buffer (forever, while another record lingers).
func TestProducerRecordLargerThanBufferIsTooLarge(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	pr := mustProducer(b, &ProducerOptions{MaxBufferedBytes: 1000})
	defer pr.Close()
	ctx := context.Background()
	var calls atomic.Int32
	var got atomic.Value
	pr.Publish(ctx, &Record{Topic: "t", Value: make([]byte, 2000)}, func(_ *Record, err error) {
		calls.Add(1)
		if err != nil {
			got.Store(err)
		}
	})
	require.NoError(t, pr.Flush(ctx))
	require.Equal(t, int32(1), calls.Load())
	err, _ := got.Load().(error)
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.Equal(t, []int64{0}, tbEnds(t, b, "t"))
}

// A Partitioner returning a partition the topic lacks fails the record.
// tbFixedPartitioner answers one partition (or AnyPartition) for every
// record.
type tbFixedPartitioner int32

func (p tbFixedPartitioner) Partition(*Record, int) int32 { return int32(p) }

// tbExplicitPartitioner takes a record's Partition as set unless it is
// AnyPartition, and places the rest by key (HashPartitioner): explicit,
// keyed and keyless records in one call, for tests that mix them.
type tbExplicitPartitioner struct{}

func (tbExplicitPartitioner) Partition(r *Record, n int) int32 {
	if r.Partition != AnyPartition {
		return r.Partition
	}
	return HashPartitioner{}.Partition(r, n)
}

func TestProducerPartitionerOutOfRange(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 2})
	pr := mustProducer(b, &ProducerOptions{Partitioner: tbFixedPartitioner(7)})
	defer pr.Close()
	var got error
	pr.Publish(context.Background(), &Record{Topic: "t", Key: []byte("k")}, func(_ *Record, err error) { got = err })
	require.ErrorIs(t, got, ErrInvalidPartition)
	require.NoError(t, pr.Flush(context.Background()))
	require.Equal(t, []int64{0, 0}, tbEnds(t, b, "t"))
}

// Items 10, 11: many goroutines publish concurrently; each goroutine's
// records to one partition keep their order; every record is stored once.
func TestProducerConcurrentPublishers(t *testing.T) {
	b := tbOpen(t, nil)
	const parts, writers, per = 4, 16, 300
	tbCreate(t, b, "t", TopicConfig{Partitions: parts})
	pr := mustProducer(b, &ProducerOptions{BatchBytes: 4096, MaxBufferedBytes: 64 << 10})
	defer pr.Close()
	ctx := context.Background()
	offsets := make([][]int64, writers)
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		offsets[w] = make([]int64, per)
		wg.Go(func() {
			for i := 0; i < per; i++ {
				r := &Record{Topic: "t", Key: fmt.Appendf(nil, "w%d-%d", w, i%parts), Value: fmt.Appendf(nil, "%d/%d", w, i)}
				if i%3 == 0 {
					r.Partition, r.Key = int32((w+i)%parts), nil
				}
				pr.Publish(ctx, r, func(r *Record, err error) {
					calls.Add(1)
					if err != nil {
						failures.Add(1)
						return
					}
					offsets[w][i] = int64(r.Partition)<<40 | r.Offset
				})
				if i%100 == 50 {
					if err := pr.Flush(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, pr.Flush(ctx))
	require.Equal(t, int64(writers*per), calls.Load())
	require.Zero(t, failures.Load())
	require.Equal(t, int64(writers*per), tbSum(tbEnds(t, b, "t")))

	// Per writer and partition, offsets grow in publish order.
	for w := 0; w < writers; w++ {
		last := map[int64]int64{}
		for i := 0; i < per; i++ {
			p, off := offsets[w][i]>>40, offsets[w][i]&(1<<40-1)
			if prev, ok := last[p]; ok {
				require.Greater(t, off, prev, "writer %d record %d", w, i)
			}
			last[p] = off
		}
	}
	// Every record is stored exactly once, where its callback said.
	seen := map[string]bool{}
	for p := int32(0); p < parts; p++ {
		for _, r := range tbReadAll(t, b, "t", p) {
			v := string(r.Value)
			require.False(t, seen[v], "duplicate %s", v)
			seen[v] = true
			var w, i int
			_, err := fmt.Sscanf(v, "%d/%d", &w, &i)
			require.NoError(t, err)
			require.Equal(t, int64(p)<<40|r.Offset, offsets[w][i])
		}
	}
	require.Len(t, seen, writers*per)
}

// Broker.Close flushes open producers; afterwards they fail with ErrClosed.
func TestBrokerCloseFlushesProducers(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	tbCreate(t, b, "t", TopicConfig{Partitions: 2})
	pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}, Linger: time.Hour})
	pr2 := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}, Linger: time.Hour})
	cb := newTBCallbacks()
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		pr.Publish(ctx, &Record{Topic: "t", Partition: int32(i % 2), Value: []byte{byte(i)}}, cb.done)
		pr2.Publish(ctx, &Record{Topic: "t", Partition: int32(i % 2), Value: []byte{byte(100 + i)}}, cb.done)
	}
	require.Equal(t, []int64{0, 0}, tbEnds(t, b, "t"))
	require.NoError(t, b.Close())
	require.Equal(t, 20, cb.count())
	require.Empty(t, cb.errs)

	var got error
	pr.Publish(ctx, &Record{Topic: "t", Value: []byte("late")}, func(_ *Record, err error) { got = err })
	require.ErrorIs(t, got, ErrClosed)
	require.ErrorIs(t, pr.Flush(ctx), ErrClosed)
	require.NoError(t, pr.Close())

	// No producer is made on a closed broker.
	pr3, err := b.NewProducer(nil)
	require.ErrorIs(t, err, ErrClosed)
	require.Nil(t, pr3)

	b, err = Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, []int64{10, 10}, tbEnds(t, b, "t"))
	// No order across producers is promised: check the contents only.
	var vals []byte
	for p := int32(0); p < 2; p++ {
		for _, r := range tbReadAll(t, b, "t", p) {
			vals = append(vals, r.Value...)
		}
	}
	require.ElementsMatch(t, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109}, vals)
}

// Records lingering for a topic that is then deleted fail with
// ErrTopicNotFound.
func TestProducerTopicDeletedWhileLingering(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
	defer pr.Close()
	errc := make(chan error, 1)
	pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("x")}, func(_ *Record, err error) { errc <- err })
	require.NoError(t, b.DeleteTopic("t"))
	require.NoError(t, pr.Flush(context.Background()))
	require.ErrorIs(t, tbRecv(t, errc), ErrTopicNotFound)
}

// Item 29: with LogAppendTime the append time replaces the record's
// timestamp, in the callback and in the log: the time the batch was
// appended, not the time Publish was called.
func TestProducerLogAppendTime(t *testing.T) {
	clock := newTBClock(tbT0)
	b := tbOpen(t, &Options{Now: clock.Now})
	tbCreate(t, b, "t", TopicConfig{LogAppendTime: true})

	// Broker.Publish: the broker's time, not the record's.
	r := &Record{Topic: "t", Value: []byte("sync"), Timestamp: tbT0.Add(-time.Hour)}
	require.NoError(t, b.Publish(context.Background(), r))
	require.True(t, tbT0.Equal(r.Timestamp), "got %v", r.Timestamp)

	// Producer: the record lingers; it is appended later.
	pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
	defer pr.Close()
	got := make(chan time.Time, 1)
	pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("async"), Timestamp: tbT0.Add(-time.Hour)},
		func(r *Record, err error) {
			require.NoError(t, err)
			got <- r.Timestamp
		})
	appended := tbT0.Add(time.Minute)
	clock.Set(appended)
	require.NoError(t, pr.Flush(context.Background()))
	recs := tbReadAll(t, b, "t", 0)
	require.Len(t, recs, 2)
	require.True(t, tbT0.Equal(recs[0].Timestamp), "got %v", recs[0].Timestamp)
	cbTS := tbRecv(t, got)
	require.True(t, appended.Equal(recs[1].Timestamp), "log has %v, want the append time %v", recs[1].Timestamp, appended)
	require.True(t, appended.Equal(cbTS), "callback has %v, want the append time %v", cbTS, appended)
}

// mustProducer is NewProducer for tests whose options are valid.
func mustProducer(b *Broker, opts *ProducerOptions) *Producer {
	p, err := b.NewProducer(opts)
	if err != nil {
		panic(err)
	}
	return p
}

// Options are validated when the Producer is made, as everywhere: a
// negative value is refused, not clamped.
func TestNewProducerRejectsBadOptions(t *testing.T) {
	b := tbOpen(t, nil)
	for _, o := range []ProducerOptions{{Linger: -1}, {BatchBytes: -1}, {MaxBufferedBytes: -1}} {
		p, err := b.NewProducer(&o)
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
		require.Nil(t, p)
	}
	p, err := b.NewProducer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

// Records without a timestamp are stamped with the clock at Publish, under
// testing/synctest too, across the producer clock's one-second re-anchoring.
func TestProducerStampsPublishTimeUnderSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		tbCreate(t, b, "t", TopicConfig{})
		pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
		defer pr.Close()
		ctx := context.Background()
		var want []int64
		got := make([]int64, 0, 8)
		var mu sync.Mutex
		for _, gap := range []time.Duration{0, 3 * time.Millisecond, 700 * time.Millisecond, 400 * time.Millisecond, 2500 * time.Millisecond, time.Millisecond} {
			time.Sleep(gap)
			want = append(want, time.Now().UnixMilli())
			pr.Publish(ctx, &Record{Topic: "t", Value: []byte("x")}, func(r *Record, err error) {
				require.NoError(t, err)
				mu.Lock()
				got = append(got, r.Timestamp.UnixMilli())
				mu.Unlock()
			})
		}
		require.NoError(t, pr.Flush(ctx))
		require.Equal(t, want, got)
		var stored []int64
		for _, r := range tbReadAll(t, b, "t", 0) {
			stored = append(stored, r.Timestamp.UnixMilli())
		}
		require.Equal(t, want, stored)
	})
}

// Publish copies the key, value and headers: the caller may reuse their
// buffers as soon as it returns.
func TestProducerCopiesBeforeReturning(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
	defer pr.Close()
	ctx := context.Background()
	key, value, header := make([]byte, 4), make([]byte, 8), make([]byte, 2)
	const n = 500
	for i := range n {
		r := &Record{Topic: "t", Key: key, Value: value, Headers: []Header{{Key: "h", Value: header}}}
		copy(r.Key, fmt.Appendf(nil, "k%03d", i%1000))
		copy(r.Value, fmt.Appendf(nil, "v%07d", i))
		copy(r.Headers[0].Value, fmt.Appendf(nil, "%02d", i%100))
		pr.Publish(ctx, r, nil)
	}
	require.NoError(t, pr.Flush(ctx))
	recs := tbReadAll(t, b, "t", 0)
	require.Len(t, recs, n)
	for i, got := range recs {
		require.Equal(t, fmt.Sprintf("k%03d", i%1000), string(got.Key))
		require.Equal(t, fmt.Sprintf("v%07d", i), string(got.Value))
		require.Equal(t, fmt.Sprintf("%02d", i%100), string(got.Headers[0].Value))
	}
}

// Publishers racing Close: every callback runs exactly once, each record
// is either stored (at the offset its callback got) or refused with
// ErrClosed, and nothing is written after Close returns.
func TestProducerCloseRacingPublishers(t *testing.T) {
	for round := range 20 {
		b := tbOpen(t, nil)
		tbCreate(t, b, "t", TopicConfig{Partitions: 3})
		pr := mustProducer(b, &ProducerOptions{Linger: time.Duration(round%3) * time.Millisecond, BatchBytes: 2048})
		ctx := context.Background()
		var stored, refused, calls atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				<-start
				for i := 0; ; i++ {
					var once atomic.Bool
					r := &Record{Topic: "t", Key: fmt.Appendf(nil, "%d-%d", w, i), Value: make([]byte, 50)}
					failed := false
					pr.Publish(ctx, r, func(_ *Record, err error) {
						if once.Swap(true) {
							t.Error("callback ran twice")
						}
						calls.Add(1)
						switch {
						case err == nil:
							stored.Add(1)
						case errors.Is(err, ErrClosed):
							refused.Add(1)
							failed = true
						default:
							t.Error(err)
						}
					})
					if failed || i > 5000 {
						return
					}
				}
			})
		}
		close(start)
		require.NoError(t, pr.Close())
		ends := tbSum(tbEnds(t, b, "t"))
		wg.Wait()
		require.Equal(t, stored.Load()+refused.Load(), calls.Load())
		require.Equal(t, stored.Load(), ends, "stored records match the callbacks that said so")
		require.Equal(t, ends, tbSum(tbEnds(t, b, "t")), "nothing written after Close")
	}
}
