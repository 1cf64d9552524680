package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// tbFill publishes n records with values "v<i>" to topic, a topic of one
// partition, perBatch per Publish call.
func tbFill(t testing.TB, b *Broker, topic string, n, perBatch int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; {
		recs := make([]*Record, 0, perBatch)
		for ; i < n && len(recs) < perBatch; i++ {
			recs = append(recs, &Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)})
		}
		require.NoError(t, b.Publish(ctx, recs...))
	}
}

// tbNextN reads n records and returns their offsets, checking values "v<i>".
func tbNextN(t testing.TB, rd *Reader, n int) []int64 {
	t.Helper()
	var offs []int64
	for i := 0; i < n; i++ {
		rec, err := rd.Next(context.Background())
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("v%d", rec.Offset), string(rec.Value))
		offs = append(offs, rec.Offset)
	}
	return offs
}

func tbRange(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestReaderOffsetEarliestAndLatest(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 5, 2)
	ctx := context.Background()

	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	require.Equal(t, int64(0), rd.Offset())
	require.Equal(t, tbRange(0, 5), tbNextN(t, rd, 5))
	require.Equal(t, int64(5), rd.Offset())

	latest, err := b.NewReader("t", 0, OffsetLatest, nil)
	require.NoError(t, err)
	defer latest.Close()
	require.Equal(t, int64(5), latest.Offset())
	bounded, err := b.NewReader("t", 0, OffsetLatest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	_, err = bounded.Next(ctx)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, bounded.Close())

	require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte("v5")}, &Record{Topic: "t", Value: []byte("v6")}))
	require.Equal(t, []int64{5, 6}, tbNextN(t, latest, 2))
	require.Equal(t, []int64{5, 6}, tbNextN(t, rd, 2))
}

// AtOffset, including offsets in the middle of a batch and the log end.
func TestReaderAtOffset(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 30, 10) // batches [0,10) [10,20) [20,30)
	for _, from := range []int64{0, 3, 9, 10, 15, 29} {
		rd, err := b.NewReader("t", 0, AtOffset(from), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		var got []int64
		for rec, err := range rd.All(context.Background()) {
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("v%d", rec.Offset), string(rec.Value))
			got = append(got, rec.Offset)
		}
		require.Equal(t, tbRange(from, 30), got, "from %d", from)
		require.NoError(t, rd.Close())
	}
	// The log end is a valid position.
	rd, err := b.NewReader("t", 0, AtOffset(30), &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	_, err = rd.Next(context.Background())
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, rd.Close())
	// Outside the log.
	for _, from := range []int64{31, 1000} {
		_, err := b.NewReader("t", 0, AtOffset(from), nil)
		require.ErrorIs(t, err, ErrOffsetOutOfRange, "offset %d", from)
	}
}

func TestNewReaderErrors(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 2})
	_, err := b.NewReader("nope", 0, OffsetEarliest, nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.NewReader("t", 2, OffsetEarliest, nil)
	require.ErrorIs(t, err, ErrInvalidPartition)
	_, err = b.NewReader("t", -1, OffsetEarliest, nil)
	require.ErrorIs(t, err, ErrInvalidPartition)
	_, err = b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{EndOffset: new(int64(-1))})
	require.ErrorIs(t, err, ErrInvalidConfig)
	// A negative position is a bad argument (as Kafka's seek says), not an
	// offset the log lacks: ErrInvalidArgument, whatever the log holds,
	// and however the Reader is bounded.
	for _, n := range []int64{-1, -2, math.MinInt64} {
		_, err = b.NewReader("t", 0, AtOffset(n), nil)
		require.ErrorIs(t, err, ErrInvalidArgument, "offset %d", n)
		require.NotErrorIs(t, err, ErrOffsetOutOfRange)
		_, err = b.NewReader("t", 0, AtOffset(n), &ReaderOptions{StopAtEnd: true})
		require.ErrorIs(t, err, ErrInvalidArgument)
	}
	_, err = b.NewReader("t", 0, AtTime(time.UnixMilli(-1)), nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = b.OffsetForTime("nope", 0, tbT0)
	require.ErrorIs(t, err, ErrTopicNotFound)
	require.NoError(t, b.Close())
	_, err = b.NewReader("t", 0, OffsetEarliest, nil)
	require.ErrorIs(t, err, ErrClosed)
}

// tbPublishAt publishes one record per timestamp (values "v<i>"), in
// batches of perBatch.
func tbPublishAt(t testing.TB, b *Broker, topic string, perBatch int, ts ...time.Time) {
	t.Helper()
	var recs []*Record
	for i, at := range ts {
		recs = append(recs, &Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i), Timestamp: at})
		if len(recs) == perBatch || i == len(ts)-1 {
			require.NoError(t, b.Publish(context.Background(), recs...))
			recs = nil
		}
	}
}

// Item 42 and AtTime: the earliest offset whose timestamp is at or after t;
// -1 (and AtTime at the log end) when there is none.
func TestReaderAtTimeAndOffsetForTime(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	var ts []time.Time
	for i := 0; i < 10; i++ {
		ts = append(ts, tbT0.Add(time.Duration(i)*10*time.Second))
	}
	tbPublishAt(t, b, "t", 4, ts...) // batches [0,4) [4,8) [8,10)
	ctx := context.Background()
	cases := []struct {
		at   time.Time
		want int64
	}{
		{tbT0.Add(-time.Hour), 0},
		{tbT0, 0},
		{tbT0.Add(time.Millisecond), 1},
		{tbT0.Add(20 * time.Second), 2},
		{tbT0.Add(25 * time.Second), 3}, // mid-batch
		{tbT0.Add(40 * time.Second), 4},
		{tbT0.Add(59 * time.Second), 6},
		{tbT0.Add(90 * time.Second), 9},
		{tbT0.Add(90*time.Second + time.Millisecond), -1},
		{tbT0.Add(time.Hour), -1},
	}
	for _, tc := range cases {
		off, err := b.OffsetForTime("t", 0, tc.at)
		require.NoError(t, err)
		require.Equal(t, tc.want, off, "OffsetForTime(%v)", tc.at)

		rd, err := b.NewReader("t", 0, AtTime(tc.at), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		rec, err := rd.Next(ctx)
		if tc.want < 0 {
			require.ErrorIs(t, err, io.EOF, "AtTime(%v) starts at the log end", tc.at)
			require.Equal(t, int64(10), rd.Offset())
		} else {
			require.NoError(t, err)
			require.Equal(t, tc.want, rec.Offset)
			require.True(t, ts[tc.want].Equal(rec.Timestamp))
		}
		require.NoError(t, rd.Close())
	}

	// AtTime past every record, unbounded: the first record returned is the
	// next one published.
	rd, err := b.NewReader("t", 0, AtTime(tbT0.Add(time.Hour)), nil)
	require.NoError(t, err)
	defer rd.Close()
	require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte("v10"), Timestamp: tbT0}))
	rec, err := rd.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(10), rec.Offset)

	// An empty partition has no offset for any time.
	tbCreate(t, b, "empty", TopicConfig{})
	off, err := b.OffsetForTime("empty", 0, tbT0)
	require.NoError(t, err)
	require.Equal(t, int64(-1), off)
}

// Item 42: with timestamps out of order, the answer is the first offset (in
// log order) whose timestamp is at or after t.
func TestOffsetForTimeUnorderedTimestamps(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	ms := func(n int) time.Time { return tbT0.Add(time.Duration(n) * time.Millisecond) }
	tbPublishAt(t, b, "t", 3, ms(100), ms(300), ms(200), ms(400), ms(50), ms(500))
	for at, want := range map[int]int64{0: 0, 100: 0, 101: 1, 150: 1, 250: 1, 300: 1, 301: 3, 450: 5, 500: 5, 501: -1} {
		off, err := b.OffsetForTime("t", 0, ms(at))
		require.NoError(t, err)
		require.Equal(t, want, off, "t=%d", at)
	}
}

// Item 42: a negative timestamp is an invalid argument (Kafka throws
// IllegalArgumentException), not "from the beginning".
func TestOffsetForTimeRejectsNegativeTimestamp(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 3, 3)
	for _, at := range []time.Time{time.UnixMilli(-1), {}} {
		_, err := b.OffsetForTime("t", 0, at)
		require.ErrorIs(t, err, ErrInvalidArgument, "OffsetForTime(%v)", at)
		_, err = b.NewReader("t", 0, AtTime(at), nil)
		require.ErrorIs(t, err, ErrInvalidArgument, "AtTime(%v)", at)
	}
	// The epoch itself is a valid time.
	off, err := b.OffsetForTime("t", 0, time.UnixMilli(0))
	require.NoError(t, err)
	require.Equal(t, int64(0), off)
}

// Next blocks until a record is published from another goroutine.
func TestReaderNextWaitsForPublish(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	type result struct {
		val string
		off int64
		err error
	}
	results := make(chan result, 1)
	go func() {
		rec, err := rd.Next(context.Background())
		if err != nil {
			results <- result{err: err}
			return
		}
		results <- result{val: string(rec.Value), off: rec.Offset}
	}()
	require.NoError(t, b.Publish(context.Background(), &Record{Topic: "t", Value: []byte("hello")}))
	got := tbRecv(t, results)
	require.NoError(t, got.err)
	require.Equal(t, result{val: "hello", off: 0}, got)
}

// The same, with synctest proving Next really was blocked before the
// publish, and that a Producer's batch wakes it too.
func TestReaderNextBlocksUntilPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		defer b.Close()
		tbCreate(t, b, "t", TopicConfig{})
		rd, err := b.NewReader("t", 0, OffsetLatest, nil)
		require.NoError(t, err)
		defer rd.Close()
		got := make(chan string, 1)
		go func() {
			for {
				rec, err := rd.Next(context.Background())
				if err != nil {
					close(got)
					return
				}
				got <- string(rec.Value)
			}
		}()
		synctest.Wait()
		require.Empty(t, got, "Next returned with nothing published")
		require.NoError(t, b.Publish(context.Background(), &Record{Topic: "t", Value: []byte("one")}))
		require.Equal(t, "one", <-got)

		pr := mustProducer(b, &ProducerOptions{Linger: time.Minute})
		defer pr.Close()
		pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("two")}, nil)
		synctest.Wait()
		require.Empty(t, got, "a lingering record was visible")
		require.NoError(t, pr.Flush(context.Background()))
		require.Equal(t, "two", <-got)
		require.NoError(t, rd.Close())
		_, ok := <-got
		require.False(t, ok)
	})
}

// Cancelling ctx unblocks Next; the Reader stays usable.
func TestReaderNextContextCancel(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := rd.Next(ctx)
		errc <- err
	}()
	cancel()
	require.ErrorIs(t, tbRecv(t, errc), context.Canceled)

	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	_, err = rd.Next(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, b.Publish(context.Background(), &Record{Topic: "t", Value: []byte("v0")}))
	require.Equal(t, []int64{0}, tbNextN(t, rd, 1))
}

// Close from another goroutine unblocks Next with ErrClosed.
func TestReaderCloseUnblocksNext(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 2, 2)
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 1}, tbNextN(t, rd, 2))
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := rd.Next(context.Background())
		errc <- err
	}()
	<-started
	require.NoError(t, rd.Close())
	require.ErrorIs(t, tbRecv(t, errc), ErrClosed)

	_, err = rd.Next(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	n := 0
	for _, err := range rd.All(context.Background()) {
		require.ErrorIs(t, err, ErrClosed)
		n++
	}
	require.Equal(t, 1, n)
	require.NoError(t, rd.Close(), "Close is idempotent")
	// Nothing stays mapped for the closed reader.
	require.NoError(t, b.Publish(context.Background(), &Record{Topic: "t", Value: []byte("v2")}))
}

// Broker.Close unblocks a waiting Next with ErrClosed.
func TestReaderBrokerCloseUnblocksNext(t *testing.T) {
	b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
	require.NoError(t, err)
	tbCreate(t, b, "t", TopicConfig{})
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := rd.Next(context.Background())
		errc <- err
	}()
	require.NoError(t, b.Close())
	require.ErrorIs(t, tbRecv(t, errc), ErrClosed)
	require.NoError(t, rd.Close())
}

// After Broker.Close a Reader returns ErrClosed at once: not the records
// it had read ahead (they alias mappings the broker is done with), not
// io.EOF at a bound, and a Next blocked during Close returns it rather than
// what the closing broker's producers flushed.
func TestReaderAfterBrokerClose(t *testing.T) {
	b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
	require.NoError(t, err)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 5, 5) // one batch: the first Next reads all five
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	bounded, err := b.NewReader("t", 0, AtOffset(5), &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer bounded.Close()
	require.Equal(t, []int64{0}, tbNextN(t, rd, 1))
	require.NoError(t, b.Close())
	for range 2 {
		_, err = rd.Next(context.Background())
		require.ErrorIs(t, err, ErrClosed)
	}
	n := 0
	for rec, err := range rd.All(context.Background()) {
		require.Nil(t, rec)
		require.ErrorIs(t, err, ErrClosed)
		n++
	}
	require.Equal(t, 1, n)
	_, err = bounded.Next(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, rd.Close())

	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
		require.NoError(t, err)
		tbCreate(t, b, "t", TopicConfig{})
		rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
		require.NoError(t, err)
		defer rd.Close()
		pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
		pr.Publish(context.Background(), &Record{Topic: "t", Value: []byte("flushed by Close")}, nil)
		errc := make(chan error, 1)
		go func() {
			_, err := rd.Next(context.Background())
			errc <- err
		}()
		synctest.Wait() // Next waits; the record lingers
		require.Empty(t, errc)
		require.NoError(t, b.Close())
		require.ErrorIs(t, <-errc, ErrClosed)
		require.Equal(t, int64(1), b.Stats().RecordsIn, "the record was written, not served")
	})
}

// StopAtEnd and EndOffset bound a Reader: Next returns io.EOF, and keeps
// returning it.
func TestReaderBounds(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 5, 3)
	ctx := context.Background()

	stop, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer stop.Close()
	tbFill2 := func(vals ...string) {
		for _, v := range vals {
			require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte(v)}))
		}
	}
	tbFill2("v5", "v6", "v7") // after the Reader was made: not part of its replay
	require.Equal(t, tbRange(0, 5), tbNextN(t, stop, 5))
	for i := 0; i < 2; i++ {
		_, err = stop.Next(ctx)
		require.ErrorIs(t, err, io.EOF)
	}

	for _, tc := range []struct {
		name string
		from Offset
		opts ReaderOptions
		want []int64
	}{
		{"EndOffset", OffsetEarliest, ReaderOptions{EndOffset: new(int64(3))}, tbRange(0, 3)},
		{"EndOffset mid-batch from mid-batch", AtOffset(1), ReaderOptions{EndOffset: new(int64(4))}, tbRange(1, 4)},
		{"EndOffset at start", AtOffset(4), ReaderOptions{EndOffset: new(int64(4))}, nil},
		{"EndOffset below start", AtOffset(4), ReaderOptions{EndOffset: new(int64(2))}, nil},
		{"EndOffset 0", OffsetEarliest, ReaderOptions{EndOffset: new(int64(0))}, nil},
		{"StopAtEnd and a smaller EndOffset", OffsetEarliest, ReaderOptions{StopAtEnd: true, EndOffset: new(int64(2))}, tbRange(0, 2)},
		{"StopAtEnd and a larger EndOffset", OffsetEarliest, ReaderOptions{EndOffset: new(int64(100)), StopAtEnd: true}, tbRange(0, 8)},
	} {
		rd, err := b.NewReader("t", 0, tc.from, &tc.opts)
		require.NoError(t, err, tc.name)
		var got []int64
		for rec, err := range rd.All(ctx) {
			require.NoError(t, err, tc.name)
			got = append(got, rec.Offset)
		}
		require.Equal(t, tc.want, got, tc.name)
		_, err = rd.Next(ctx)
		require.ErrorIs(t, err, io.EOF, tc.name)
		require.NoError(t, rd.Close())
	}

	// EndOffset beyond the log end: Next waits for the missing records, then
	// stops there.
	rd, err := b.NewReader("t", 0, AtOffset(6), &ReaderOptions{EndOffset: new(int64(10))})
	require.NoError(t, err)
	defer rd.Close()
	require.Equal(t, []int64{6, 7}, tbNextN(t, rd, 2))
	errc := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = rd.Next(ctx)
		}
		errc <- err
	}()
	tbFill2("v8", "v9", "v10", "v11")
	require.ErrorIs(t, tbRecv(t, errc), io.EOF)
	require.Equal(t, int64(10), rd.Offset())
}

// All stops at io.EOF without yielding it; breaking out of it leaves the
// Reader usable at the next record.
func TestReaderAll(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 20, 7)
	ctx := context.Background()
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	var got []int64
	for rec, err := range rd.All(ctx) {
		require.NoError(t, err)
		got = append(got, rec.Offset)
		if rec.Offset == 8 {
			break
		}
	}
	require.Equal(t, tbRange(0, 9), got)
	require.Equal(t, []int64{9}, tbNextN(t, rd, 1))
	got = got[:0]
	for rec, err := range rd.All(ctx) {
		require.NoError(t, err)
		got = append(got, rec.Offset)
	}
	require.Equal(t, tbRange(10, 20), got)
	for range rd.All(ctx) {
		t.Fatal("All yielded after the end")
	}

	// An unbounded All ends with ctx's error, which it yields.
	rd2, err := b.NewReader("t", 0, AtOffset(18), nil)
	require.NoError(t, err)
	defer rd2.Close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs []error
	n := 0
	for rec, err := range rd2.All(cctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		if rec.Offset == 19 {
			cancel()
		}
	}
	require.Equal(t, 2, n)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], context.Canceled)
}

// Records alias the log and the Reader reuses them; a Clone survives the
// next Next and Close.
func TestReaderRecordsZeroCopyCloneSurvives(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	first := &Record{Topic: "t", Key: []byte("key-0"), Value: bytes.Repeat([]byte("A"), 64),
		Headers: []Header{{Key: "h", Value: []byte("hv-0")}}, Timestamp: tbT0}
	second := &Record{Topic: "t", Key: []byte("key-1"), Value: bytes.Repeat([]byte("B"), 64),
		Headers: []Header{{Key: "h", Value: []byte("hv-1")}}, Timestamp: tbT0.Add(time.Second)}
	require.NoError(t, b.Publish(context.Background(), first, second))
	ctx := context.Background()
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	r0, err := rd.Next(ctx)
	require.NoError(t, err)
	c0 := r0.Clone()
	require.NotSame(t, r0, c0)
	require.Equal(t, "t", c0.Topic)
	require.Equal(t, int64(0), c0.Offset)
	r1, err := rd.Next(ctx)
	require.NoError(t, err)
	// The Reader hands out the same Record, refilled: r0 now shows record 1.
	require.Same(t, r0, r1)
	require.Equal(t, int64(1), r0.Offset)
	require.Equal(t, second.Value, r1.Value)
	c1 := r1.Clone()
	_, err = rd.Next(ctx)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, rd.Close())

	for _, tc := range []struct {
		got, want *Record
		off       int64
	}{{c0, first, 0}, {c1, second, 1}} {
		require.Equal(t, tc.off, tc.got.Offset)
		require.Equal(t, tc.want.Key, tc.got.Key)
		require.Equal(t, tc.want.Value, tc.got.Value)
		require.Equal(t, tc.want.Headers, tc.got.Headers)
		require.True(t, tc.want.Timestamp.Equal(tc.got.Timestamp))
	}
	// Clones stay valid after the topic and its files are gone.
	require.NoError(t, b.DeleteTopic("t"))
	require.Equal(t, bytes.Repeat([]byte("A"), 64), c0.Value)
	require.Equal(t, []byte("hv-1"), c1.Headers[0].Value)
	// Modifying a clone does not touch the other.
	c1.Value[0] = 'X'
	require.Equal(t, byte('A'), c0.Value[0])
}

// Items 25, 31: null and empty keys, values and header values round-trip
// distinctly; header order and duplicates are kept — through Publish and
// through the Producer.
func TestReaderNullEmptyAndHeadersRoundTrip(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	headers := []Header{
		{Key: "a", Value: []byte("1")},
		{Key: "null", Value: nil},
		{Key: "a", Value: []byte("2")},
		{Key: "empty", Value: []byte{}},
		{Key: "", Value: []byte("empty key")},
	}
	in := []*Record{
		{Key: nil, Value: nil},
		{Key: []byte{}, Value: []byte{}},
		{Key: []byte("k"), Value: nil},
		{Key: nil, Value: []byte("v")},
		{Key: []byte("h"), Value: []byte("with headers"), Headers: headers},
		{Key: []byte("h0"), Value: []byte("empty headers"), Headers: []Header{}},
	}
	ctx := context.Background()
	var sync []*Record
	for _, r := range in {
		c := r.Clone()
		c.Topic = "t"
		sync = append(sync, c)
	}
	require.NoError(t, b.Publish(ctx, sync...))
	pr := mustProducer(b, &ProducerOptions{})
	for _, r := range in {
		c := r.Clone()
		c.Topic = "t"
		pr.Publish(ctx, c, func(_ *Record, err error) { require.NoError(t, err) })
	}
	require.NoError(t, pr.Close())

	check := func(what string, want, got *Record) {
		require.Equal(t, want.Key == nil, got.Key == nil, "%s: key null-ness", what)
		require.Equal(t, want.Value == nil, got.Value == nil, "%s: value null-ness", what)
		require.Equal(t, string(want.Key), string(got.Key), what)
		require.Equal(t, string(want.Value), string(got.Value), what)
		require.Len(t, got.Headers, len(want.Headers), what)
		for i, h := range want.Headers {
			require.Equal(t, h.Key, got.Headers[i].Key, "%s: header %d", what, i)
			require.Equal(t, h.Value == nil, got.Headers[i].Value == nil, "%s: header %d null-ness", what, i)
			require.Equal(t, string(h.Value), string(got.Headers[i].Value), "%s: header %d", what, i)
		}
	}
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	i := 0
	for rec, err := range rd.All(ctx) {
		require.NoError(t, err)
		want := in[i%len(in)]
		what := fmt.Sprintf("record %d", i)
		check(what, want, rec)
		check(what+" (clone)", want, rec.Clone())
		i++
	}
	require.Equal(t, 2*len(in), i)
}

// Reading a deleted topic fails with ErrTopicNotFound, for a Reader waiting
// in Next and for one made before the deletion.
func TestReaderDeletedTopic(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	tbFill(t, b, "t", 3, 3)
	ctx := context.Background()
	waiting, err := b.NewReader("t", 0, OffsetLatest, nil)
	require.NoError(t, err)
	defer waiting.Close()
	idle, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer idle.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := waiting.Next(ctx)
		errc <- err
	}()
	require.NoError(t, b.DeleteTopic("t"))
	require.ErrorIs(t, tbRecv(t, errc), ErrTopicNotFound)
	_, err = idle.Next(ctx)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.NewReader("t", 0, OffsetEarliest, nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.OffsetForTime("t", 0, tbT0)
	require.ErrorIs(t, err, ErrTopicNotFound)

	// A re-created topic starts again at 0; the old readers stay dead.
	tbCreate(t, b, "t", TopicConfig{})
	require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte("v0")}))
	_, err = idle.Next(ctx)
	require.ErrorIs(t, err, ErrTopicNotFound)
	fresh, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer fresh.Close()
	require.Equal(t, []int64{0}, tbNextN(t, fresh, 1))
}

// tbRetentionTopic creates a topic whose partition rolls every ~4 KiB and
// keeps about 4 KiB, and fills it with 100 single-record batches: two
// segments, too few for size retention to delete one at a roll.
func tbRetentionTopic(t testing.TB, b *Broker, name string) {
	t.Helper()
	tbCreate(t, b, name, TopicConfig{SegmentBytes: 4096, RetentionBytes: 4096})
	tbRetentionFill(t, b, name, 0, 100)
	info, err := b.DescribeTopic(name)
	require.NoError(t, err)
	require.Zero(t, info.Partitions[0].StartOffset)
}

// tbRetentionFill publishes single-record batches with values v<from> up
// to v<to-1>.
func tbRetentionFill(t testing.TB, b *Broker, name string, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		require.NoError(t, b.Publish(ctx, &Record{Topic: name, Value: fmt.Appendf(nil, "v%d", i)}))
	}
}

// Retention deleting the records under a Reader makes it fail with
// ErrOffsetOutOfRange, never skip records silently.
func TestReaderRetentionOutOfRange(t *testing.T) {
	b := tbOpen(t, nil)
	tbRetentionTopic(t, b, "t")
	ctx := context.Background()

	reading, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer reading.Close()
	require.Equal(t, []int64{0}, tbNextN(t, reading, 1))
	notStarted, err := b.NewReader("t", 0, AtOffset(0), nil)
	require.NoError(t, err)
	defer notStarted.Close()

	// The rolls of the fill run size retention: no periodic check needed.
	tbRetentionFill(t, b, "t", 100, 400)
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	start := info.Partitions[0].StartOffset
	require.Positive(t, start)
	require.Equal(t, int64(400), info.Partitions[0].EndOffset)

	_, err = notStarted.Next(ctx)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)

	// The reader that had started may finish what it holds, in order, but
	// must then fail rather than jump to the new log start.
	next := int64(1)
	for {
		rec, err := reading.Next(ctx)
		if err != nil {
			require.ErrorIs(t, err, ErrOffsetOutOfRange)
			break
		}
		require.Equal(t, next, rec.Offset)
		require.Equal(t, fmt.Sprintf("v%d", next), string(rec.Value))
		next++
		require.Less(t, rec.Offset, start, "read past the deleted range without an error")
	}

	_, err = b.NewReader("t", 0, AtOffset(start-1), nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	require.Equal(t, start, rd.Offset())
	require.Equal(t, tbRange(start, 400), tbNextN(t, rd, int(400-start)))
}

// The same through the broker's own retention schedule: time retention,
// which (unlike size retention) only the periodic check runs.
func TestReaderRetentionByBackgroundCheck(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	b := tbOpen(t, &Options{Now: clock, RetentionCheckInterval: 5 * time.Millisecond})
	tbCreate(t, b, "t", TopicConfig{SegmentBytes: 4096, Retention: time.Hour})
	rd, err := b.NewReader("t", 0, AtOffset(0), nil)
	require.NoError(t, err)
	defer rd.Close()
	tbRetentionFill(t, b, "t", 0, 300)
	now.Add((time.Hour + time.Second).Milliseconds())
	require.Eventually(t, func() bool {
		info, err := b.DescribeTopic("t")
		// The counter moves just after the log start: wait for both.
		return err == nil && info.Partitions[0].StartOffset > 0 && b.Stats().SegmentsDeleted > 0
	}, 10*time.Second, 5*time.Millisecond)
	_, err = rd.Next(context.Background())
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
}

// A Reader over value-only records allocates nothing per record.
func TestReaderNextAllocatesNothing(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	ctx := context.Background()
	value := make([]byte, 100)
	const total = 30_000
	for i := 0; i < total; i += 1000 {
		recs := make([]*Record, 1000)
		for j := range recs {
			recs[j] = &Record{Topic: "t", Value: value}
		}
		require.NoError(t, b.Publish(ctx, recs...))
	}
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	var failed error
	allocs := testing.AllocsPerRun(total-1, func() {
		rec, err := rd.Next(ctx)
		if err != nil || len(rec.Value) != 100 {
			failed = fmt.Errorf("offset %d: %v", rd.Offset(), err)
		}
	})
	require.NoError(t, failed)
	require.Zero(t, allocs, "allocations per Next")
	_, err = rd.Next(ctx)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, rd.Close())
	require.Equal(t, int64(total), b.Stats().RecordsOut)
}

// After io.EOF at EndOffset a Reader stays at the end, however often Next
// is called.
func TestReaderOffsetStaysAtEnd(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	var recs []*Record
	for range 4 {
		recs = append(recs, &Record{Topic: "t", Value: []byte("v")})
	}
	require.NoError(t, b.Publish(t.Context(), recs...)) // one batch
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{EndOffset: new(int64(1))})
	require.NoError(t, err)
	defer rd.Close()
	_, err = rd.Next(t.Context())
	require.NoError(t, err)
	for range 6 {
		_, err = rd.Next(t.Context())
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, int64(1), rd.Offset())
	}
}

// OffsetForTime counts a transaction marker, as Kafka's offsetsForTimes
// does; readers skip it.
func TestOffsetForTimeCountsMarkers(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxTimestampAhead: -1}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Timestamp: time.UnixMilli(1000)}))
	var bld batch.Builder
	bld.Reset(batch.AttrControl | batch.AttrTransactional)
	bld.Add(5000, []byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 0}, nil)
	_, l, err := b.partitionLog("t", 0)
	require.NoError(t, err)
	_, err = l.Append(bld.Finish())
	require.NoError(t, err)
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Timestamp: time.UnixMilli(6000)}))

	off, err := b.OffsetForTime("t", 0, time.UnixMilli(4000))
	require.NoError(t, err)
	require.Equal(t, int64(1), off)
	rd, err := b.NewReader("t", 0, AtTime(time.UnixMilli(4000)), &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	rec, err := rd.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(2), rec.Offset, "the marker is not a record")
}
