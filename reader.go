package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/mmap"
	"github.com/embedstream/stream/segment"
)

// Offset says where a Reader starts: OffsetEarliest, OffsetLatest,
// AtOffset(n) or AtTime(t).
type Offset struct {
	kind offsetKind
	n    int64
	t    time.Time
}

type offsetKind uint8

const (
	offsetEarliest offsetKind = iota
	offsetLatest
	offsetExact
	offsetTime
)

var (
	// OffsetEarliest starts at the first record still stored (the log start).
	OffsetEarliest = Offset{kind: offsetEarliest}
	// OffsetLatest starts at the log end: only records published from now on.
	OffsetLatest = Offset{kind: offsetLatest}
)

// AtOffset starts at offset n. A negative n makes NewReader fail with
// ErrInvalidArgument (as Kafka's seek throws IllegalArgumentException), an
// offset below the log start or above the log end with ErrOffsetOutOfRange.
func AtOffset(n int64) Offset { return Offset{kind: offsetExact, n: n} }

// AtTime starts at the first record whose timestamp is at or after t (see
// Broker.OffsetForTime), or at the log end if there is none.
func AtTime(t time.Time) Offset { return Offset{kind: offsetTime, t: t} }

// Exact returns n and true if o is AtOffset(n).
func (o Offset) Exact() (int64, bool) { return o.n, o.kind == offsetExact }

// Time returns t and true if o is AtTime(t).
func (o Offset) Time() (time.Time, bool) { return o.t, o.kind == offsetTime }

// IsEarliest reports whether o is OffsetEarliest (or the zero Offset).
func (o Offset) IsEarliest() bool { return o.kind == offsetEarliest }

// IsLatest reports whether o is OffsetLatest.
func (o Offset) IsLatest() bool { return o.kind == offsetLatest }

// String describes the offset.
func (o Offset) String() string {
	switch o.kind {
	case offsetEarliest:
		return "earliest"
	case offsetLatest:
		return "latest"
	case offsetExact:
		return fmt.Sprintf("offset %d", o.n)
	}
	return "time " + o.t.Format(time.RFC3339Nano)
}

// ReaderOptions configure a Reader. The zero value (or nil) reads on for
// ever, waiting for new records at the log end.
type ReaderOptions struct {
	// StopAtEnd makes Next return io.EOF at the log end as it was when the
	// Reader was created, instead of waiting for new records: a bounded
	// replay.
	StopAtEnd bool
	// EndOffset, if set, makes Next return io.EOF once it reaches this
	// offset (exclusive): EndOffset: new(n) replays up to n. With StopAtEnd,
	// the lower of the two ends the replay. Nil: no end offset.
	EndOffset *int64
	// Isolation is which records of transactions the Reader returns
	// (isolation.level): ReadUncommitted, the default, returns every
	// record; ReadCommitted stops at the last stable offset and skips
	// aborted transactions. It also sets which end StopAtEnd and
	// OffsetLatest mean: the high watermark, or the last stable offset.
	Isolation IsolationLevel
}

// IsolationLevel says which records of transactions a reader returns
// (Kafka's isolation.level).
type IsolationLevel int8

const (
	// ReadUncommitted returns every record, those of open and aborted
	// transactions included, up to the high watermark: Kafka's default.
	ReadUncommitted IsolationLevel = iota
	// ReadCommitted returns records of committed transactions and records
	// published outside any, never those of aborted transactions, and
	// nothing at or past the partition's last stable offset: the first
	// offset of its oldest open transaction (the high watermark if none),
	// so an open transaction holds back the records after it too, until it
	// ends. Transaction markers take offsets but are never returned, under
	// either level.
	ReadCommitted
)

// String returns Kafka's name of the level.
func (l IsolationLevel) String() string {
	if l == ReadCommitted {
		return "read_committed"
	}
	return "read_uncommitted"
}

func (l IsolationLevel) valid() bool { return l == ReadUncommitted || l == ReadCommitted }

// readBytes is how much of the log a Reader maps at a time.
const readBytes = 1 << 20

// Reader replays one partition in offset order, without a consumer group.
// It is meant for one goroutine; Close may be called from another to end a
// blocked Next.
type Reader struct {
	topic     *topic
	part      *log.Log
	partition int32
	down      *atomic.Bool // the broker's: set when it closes

	next int64 // offset of the next record to return
	end  int64 // Next returns io.EOF at this offset; -1: never

	view segment.View // pins the mapping the current records alias
	walk batch.Iter   // the records of view from next on
	rec  Record       // handed to the caller, reused by every Next
	lr   batch.Record
	out  int64 // records returned since the stats were last updated

	state atomic.Int32 // readerIdle, readerBusy or readerClosed
	stop  chan struct{}

	guard bool  // a follower's: the walk runs under mmap.Guard, files being another's
	fault error // what the guarded walk met, reported by advance

	committed bool              // ReadCommitted
	filter    batch.AbortFilter // its aborted transactions of the view
}

// nextRecord steps the walk, under mmap.Guard for a follower: a file its
// owner does not write may still be cut by someone else, and a fault must
// not take the process down.
func (r *Reader) nextRecord() bool {
	if !r.guard {
		return r.walk.Next(&r.lr)
	}
	var ok bool
	r.fault = mmap.Guard(func() error {
		ok = r.walk.Next(&r.lr)
		return nil
	})
	return ok
}

const (
	readerIdle int32 = iota
	readerBusy
	readerClosed
)

// NewReader returns a Reader of one partition starting at from. Options
// (nil for none) may bound it; without a bound Next waits for new records.
// It fails with ErrTopicNotFound, ErrInvalidPartition, ErrInvalidConfig
// for a negative EndOffset, ErrInvalidArgument for a negative AtOffset or
// an AtTime before 1970, or ErrOffsetOutOfRange for an AtOffset outside
// the log.
func (b *Broker) NewReader(topic string, partition int32, from Offset, opts *ReaderOptions) (*Reader, error) {
	var o ReaderOptions
	if opts != nil {
		o = *opts
	}
	if o.EndOffset != nil && *o.EndOffset < 0 {
		return nil, fmt.Errorf("%w: negative end offset %d", ErrInvalidConfig, *o.EndOffset)
	}
	if !o.Isolation.valid() {
		return nil, fmt.Errorf("%w: isolation level %d", ErrInvalidConfig, o.Isolation)
	}
	if n, ok := from.Exact(); ok && n < 0 {
		return nil, fmt.Errorf("%w: negative offset %d", ErrInvalidArgument, n)
	}
	t, p, err := b.partitionLog(topic, partition)
	if err != nil {
		return nil, err
	}
	start, end := p.StartOffset(), p.HighWatermark()
	stable := end
	if o.Isolation == ReadCommitted {
		stable = p.LastStable()
	}
	var next int64
	switch from.kind {
	case offsetEarliest:
		next = start
	case offsetLatest:
		next = stable
	case offsetExact:
		if from.n < start || from.n > end {
			return nil, fmt.Errorf("%w: offset %d of %s, log has offsets [%d, %d)", ErrOffsetOutOfRange, from.n,
				TopicPartition{Topic: topic, Partition: partition}, start, end)
		}
		next = from.n
	case offsetTime:
		if from.t.UnixMilli() < 0 {
			return nil, fmt.Errorf("%w: negative timestamp %v", ErrInvalidArgument, from.t)
		}
		if next, err = p.OffsetForTime(from.t.UnixMilli()); err != nil {
			return nil, err
		}
		if next < 0 {
			next = stable
		}
	}
	r := &Reader{topic: t, part: p, partition: partition, down: &b.down, next: next, end: -1, stop: make(chan struct{}),
		guard: b.follow != nil, committed: o.Isolation == ReadCommitted}
	if o.EndOffset != nil {
		r.end = *o.EndOffset
	}
	if o.StopAtEnd && (r.end < 0 || stable < r.end) {
		r.end = stable
	}
	return r, nil
}

// Next returns the next record, blocking until one is published unless
// the Reader is bounded, when it returns io.EOF at the end. The record and
// the slices in it are valid only until the next call to Next or Close;
// Clone what you keep. It returns ctx's error; ErrClosed after Close, and
// as soon as the broker is closing (even with records read ahead, and for
// a Next blocked then); ErrOffsetOutOfRange if retention deleted the
// records being read; ErrTopicNotFound if the topic was deleted;
// ErrUnsupported at a batch of a codec that is not Kafka's; and a
// *CorruptError (ErrCorrupt) at damaged records (compressed records that
// do not decompress included), after returning every record before them;
// the next call goes on past the damage.
//
// Records of compressed batches are decompressed into a buffer of the
// Reader's, reused from batch to batch: the same lifetime, no allocation
// per record. Uncompressed ones alias the log, copying nothing.
func (r *Reader) Next(ctx context.Context) (*Record, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	rec, err := r.advance(ctx)
	if !r.leave() {
		return nil, ErrClosed // the record's memory went with Close
	}
	return rec, err
}

// enter makes the reader busy, or says why it cannot be.
func (r *Reader) enter() error {
	if r.state.CompareAndSwap(readerIdle, readerBusy) {
		return nil
	}
	if r.state.Load() == readerBusy {
		return fmt.Errorf("%w: Reader used from two goroutines at once", ErrConcurrentUse)
	}
	return ErrClosed
}

// leave ends a Next (or All) call and reports whether the reader is still
// open; if Close came meanwhile, it finishes Close's work, since only the
// busy goroutine may release the view.
func (r *Reader) leave() bool {
	if r.state.CompareAndSwap(readerBusy, readerIdle) {
		return true
	}
	r.release()
	return false
}

// All iterates over the records from the Reader's position, as Next would,
// ending at io.EOF (which is not yielded) or at the first error (which is).
// Each record is valid only during its iteration step.
func (r *Reader) All(ctx context.Context) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		if err := r.enter(); err != nil {
			yield(nil, err)
			return
		}
		defer r.leave()
		for {
			rec, err := r.advance(ctx)
			if err == io.EOF {
				return
			}
			if r.state.Load() == readerClosed {
				yield(nil, ErrClosed) // Close came from another goroutine
				return
			}
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// advance finds the next record. Only the goroutine that made the state busy
// runs it.
func (r *Reader) advance(ctx context.Context) (*Record, error) {
	if r.down.Load() {
		r.release() // the records read ahead are not served, and their mapping may go
		return nil, ErrClosed
	}
	for {
		if r.end >= 0 && r.next >= r.end {
			return nil, io.EOF
		}
		if r.nextRecord() {
			if r.end >= 0 && r.lr.Offset >= r.end {
				r.next = r.end // nothing is left below the end
				return nil, io.EOF
			}
			r.next = r.lr.Offset + 1
			r.out++
			r.rec.fromLog(r.topic.name, r.partition, &r.lr)
			return &r.rec, nil
		}
		if r.fault != nil {
			// The file was cut under the view (not by its owner, who never
			// cuts records): drop it; the next call reads again.
			err := fmt.Errorf("%s/%d at offset %d: %w", r.topic.name, r.partition, r.next, r.fault)
			r.fault = nil
			r.view.Release()
			r.walk.Reset(nil, r.next)
			return nil, err
		}
		if r.walk.Err() != nil {
			err := walkError(r.topic.name, r.partition, &r.walk)
			if ce := (*CorruptError)(nil); errors.As(err, &ce) {
				r.pass(ce) // reported once; the next call goes on after it
				r.walk.Reset(nil, r.next)
			}
			return nil, err
		}
		r.next = max(r.next, r.walk.Offset()) // past skipped transaction markers
		if r.end >= 0 && r.next >= r.end {
			r.next = r.end
			return nil, io.EOF
		}
		if err := r.fetch(ctx); err != nil {
			return nil, err
		}
	}
}

// fetch replaces the view with the batches from r.next on, waiting for
// them if there are none yet.
func (r *Reader) fetch(ctx context.Context) error {
	r.flushStats()
	r.view.Release()
	r.walk.Reset(nil, r.next)
	for {
		select {
		case <-r.stop:
			return ErrClosed
		default:
		}
		if r.down.Load() {
			return ErrClosed // woken by what the closing broker's producers flushed
		}
		v, err := r.read()
		if err != nil {
			err = corruptError(r.topic.name, r.partition, err)
			if ce := (*CorruptError)(nil); errors.As(err, &ce) {
				r.pass(ce)
			}
			return r.err(err)
		}
		if len(v.Data) > 0 {
			r.view = v
			r.walk.Reset(v.Data, r.next)
			if r.committed {
				r.walk.SkipAborted(&r.filter)
			}
			r.part.CountOut(0, int64(len(v.Data)))
			return nil
		}
		wait := r.part.WaitFor
		if r.committed {
			wait = r.part.WaitForStable
		}
		if err := wait(ctx, r.next, r.stop); err != nil {
			return r.err(err)
		}
	}
}

// read maps the batches from r.next on, and for ReadCommitted readies the
// filter with the aborted transactions among them.
func (r *Reader) read() (segment.View, error) {
	return readIsolated(r.part, r.next, readBytes, r.committed, &r.filter)
}

// readIsolated maps a partition's batches from next on, as a reader of
// the isolation level sees them (committed: up to the last stable
// offset), and readies filter with the aborted transactions among them.
func readIsolated(part *log.Log, next int64, maxBytes int, committed bool, filter *batch.AbortFilter) (segment.View, error) {
	if !committed {
		return part.Read(next, maxBytes)
	}
	v, err := part.ReadCommitted(next, maxBytes)
	if err != nil || len(v.Data) == 0 {
		return v, err
	}
	aborted, err := part.AbortedTxns(next, viewEnd(v.Data, part.LastStable()))
	if err != nil {
		v.Release()
		return segment.View{}, err
	}
	filter.Reset(aborted)
	return v, nil
}

// viewEnd is the offset after the last batch of data (whole batches from
// the log), at most lso: the aborted transactions a read_committed walk of
// data needs begin before it. Bounding them by the view rather than by the
// LSO keeps each read's list short: otherwise every read of a long log
// would copy the list of every aborted transaction after it.
func viewEnd(data []byte, lso int64) int64 {
	if last := lastOffset(data); last >= 0 {
		return min(last+1, lso)
	}
	return lso
}

// pass moves the reader past reported damage, but not past its end: the
// next call goes on after it.
func (r *Reader) pass(ce *CorruptError) {
	r.next = ce.Next
	if r.end >= 0 {
		r.next = min(r.next, r.end)
	}
}

func (r *Reader) err(err error) error {
	switch {
	case errors.Is(err, ErrClosed) && r.topic.deleted.Load():
		return fmt.Errorf("%w: %q (deleted)", ErrTopicNotFound, r.topic.name)
	case errors.Is(err, ErrOffsetOutOfRange):
		return fmt.Errorf("%s: %w", TopicPartition{Topic: r.topic.name, Partition: r.partition}, err) // the log does not know its name
	}
	return err
}

func (r *Reader) flushStats() {
	if r.out > 0 {
		r.part.CountOut(r.out, 0)
		r.out = 0
	}
}

// Offset is the offset of the next record Next will return.
func (r *Reader) Offset() int64 { return r.next }

// Close releases the Reader. A Next blocked in another goroutine returns
// ErrClosed. Records returned earlier become invalid. Close is idempotent.
func (r *Reader) Close() error {
	for {
		switch s := r.state.Load(); s {
		case readerClosed:
			return nil
		case readerIdle:
			if r.state.CompareAndSwap(readerIdle, readerClosed) {
				close(r.stop)
				r.release()
				return nil
			}
		case readerBusy:
			if r.state.CompareAndSwap(readerBusy, readerClosed) {
				close(r.stop) // the busy goroutine releases the view on its way out
				return nil
			}
		}
	}
}

func (r *Reader) release() {
	r.flushStats()
	r.view.Release()
	r.walk.Reset(nil, r.next)
}

// OffsetForTime returns the earliest offset of the partition whose record
// timestamp is at or after t (Kafka's offsetsForTimes), or -1 if every
// record is older (Kafka returns null). Timestamps need not be ordered; the
// answer is exact either way.
func (b *Broker) OffsetForTime(topic string, partition int32, t time.Time) (int64, error) {
	_, p, err := b.partitionLog(topic, partition)
	if err != nil {
		return 0, err
	}
	if t.UnixMilli() < 0 {
		return 0, fmt.Errorf("%w: negative timestamp %v", ErrInvalidArgument, t)
	}
	return p.OffsetForTime(t.UnixMilli())
}

// OffsetForMaxTimestamp returns the offset and timestamp of the
// partition's record with the largest timestamp, the first one if several
// share it (Kafka's ListOffsets with MAX_TIMESTAMP, KIP-734), or -1 and
// the zero time if the partition holds no record. It reads only the
// segments' indexes, never their records.
func (b *Broker) OffsetForMaxTimestamp(topic string, partition int32) (int64, time.Time, error) {
	_, p, err := b.partitionLog(topic, partition)
	if err != nil {
		return 0, time.Time{}, err
	}
	off, ts, err := p.OffsetForMaxTimestamp()
	if err != nil || off < 0 {
		return -1, time.Time{}, err
	}
	return off, time.UnixMilli(ts), nil
}
