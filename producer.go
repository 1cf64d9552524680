package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/internal/signal"
)

// ProducerOptions configure a Producer. Zero fields (or nil) take their
// defaults; negative ones are refused with ErrInvalidConfig.
//
// Kafka's acks, retries, max.in.flight and enable.idempotence have no
// meaning in-process: a batch is appended exactly once, in order, and its
// durability follows the topic's SyncPolicy.
type ProducerOptions struct {
	// Linger is how long a partition's batch may wait for more records
	// before it is written (linger.ms). Default 0: write as soon as the
	// writer is free; records arriving meanwhile still form batches.
	Linger time.Duration
	// BatchBytes closes a partition's batch at this size (batch.size).
	// Default 512 KiB; a larger single record gets a batch of its own. It
	// also decides when keyless records move on to another partition.
	BatchBytes int
	// MaxBufferedBytes bounds the bytes of records published but not yet
	// written (buffer.memory); Publish blocks while it is reached, until
	// space frees up or its context ends. Default 64 MiB.
	MaxBufferedBytes int
	// Partitioner places every record the Producer publishes
	// (partitioner.class). Default HashPartitioner{}: by key, keyless
	// records stickily (KIP-794). Record.Partition is honoured only with
	// ManualPartitioner{}. It does not follow the Broker's
	// Options.Partitioner.
	Partitioner Partitioner
	// Compression is the codec (and level) batches are compressed with
	// (compression.type, compression.<codec>.level): CodecDefault or
	// CodecNone for none, Kafka's producer default. A topic with a
	// codec of its own (TopicConfig.Compression) stores its batches with
	// that one instead, as a Kafka broker recompresses; knowing the topic,
	// the Producer compresses with the topic's codec directly. Compression
	// works on whole batches: Linger and BatchBytes decide how much it has
	// to work with. A record over the topic's MaxRecordBytes that may still
	// fit compressed gets a batch of its own, judged as stored when written
	// (its callback gets ErrRecordTooLarge if it does not fit).
	Compression Compression
}

func (o *ProducerOptions) withDefaults() (ProducerOptions, error) {
	var opts ProducerOptions
	if o != nil {
		opts = *o
	}
	if opts.Linger < 0 || opts.BatchBytes < 0 || opts.MaxBufferedBytes < 0 {
		return opts, fmt.Errorf("%w: negative producer option", ErrInvalidConfig)
	}
	if err := opts.Compression.validate(); err != nil {
		return opts, fmt.Errorf("producer compression: %w", err)
	}
	if opts.BatchBytes == 0 {
		opts.BatchBytes = 512 << 10
	}
	if opts.MaxBufferedBytes == 0 {
		opts.MaxBufferedBytes = 64 << 20
	}
	if opts.Partitioner == nil {
		opts.Partitioner = HashPartitioner{}
	}
	return opts, nil
}

// Producer publishes records asynchronously in batches, one batch per
// partition at a time, like Kafka's producer. It is safe for concurrent use.
//
// Ordering: records published to one partition from one goroutine get
// increasing offsets in publish order, and their callbacks run in that
// order. Callbacks run on the producer's writer goroutine: keep them short
// and do not call Flush or Close from one.
//
// Publishers to different partitions share no lock: each partition's batch
// has its own, which the writer goroutine takes once per batch.
type Producer struct {
	b     *Broker
	opts  ProducerOptions
	clock producerClock

	closed atomic.Bool // set first by Close: no record is accepted once it is

	// mu serializes changes to topics and the creation of accumulators,
	// and Close's barrier (see Close).
	mu     sync.Mutex
	topics atomic.Pointer[map[string]*producerTopic] // copied on write
	last   atomic.Pointer[producerTopic]             // the topic published to last: most publish to one

	// buffered is the buffer budget (MaxBufferedBytes) that batches not
	// yet written hold.
	buffered atomic.Int64

	// qmu guards what the writer goroutine is handed.
	qmu       sync.Mutex
	pending   []*accumulator // accumulators with records the writer has not taken on yet
	flushAll  bool           // write open batches now (Flush)
	flushReq  uint64         // flush generations asked for
	flushDone uint64         // generations whose batches are all written
	draining  bool           // Close passed its barrier: write everything, then exit
	// spare are written batches kept for reuse, their buffers grown:
	// refilling a batch of BatchBytes from a small buffer costs more than
	// encoding into it, and a sync.Pool loses them at every GC. As Kafka's
	// producer keeps freed batch buffers within buffer.memory, their
	// buffers (spareBytes) take at most a quarter of MaxBufferedBytes, none
	// over maxPooledBatchBytes.
	spare      []*pendingBatch
	spareBytes int

	// writerIdle is set by the writer before it blocks, so that publishers
	// wake it only when needed.
	writerIdle atomic.Bool
	wake       chan struct{} // nudges the writer goroutine; capacity 1
	progress   signal.Signal // broadcast when records complete
	exited     chan struct{} // closed when the writer goroutine ends

	// compressed is the writer goroutine's scratch for compressed batches,
	// kept between batches up to maxPooledBatchBytes.
	compressed []byte
}

// producerTopic is a topic as one Producer publishes to it.
type producerTopic struct {
	t *topic
	// accs holds each partition's accumulator, nil until first used; the
	// slice is replaced (under Producer.mu) to add one.
	accs atomic.Pointer[[]*accumulator]
	// sticky is where keyless records go until BatchBytes have gone there
	// (KIP-794), plus one (0: none yet); accumulator.sticky counts the
	// bytes.
	sticky atomic.Int32
}

// accumulator collects one partition's records into batches.
type accumulator struct {
	topic     *topic
	part      *log.Log
	partition int32

	mu     sync.Mutex
	cur    *pendingBatch   // the batch taking records, or nil
	full   []*pendingBatch // closed batches not yet taken by the writer, in order
	queued bool            // in Producer.pending or held by the writer
	budget int64           // buffer budget reserved and not yet used; returned when the writer lets a go
	sticky int             // bytes of keyless records placed here since it became the sticky partition
	filled bool            // the last batch closed full (BatchBytes): size the next so at once
	_      [64]byte        // keeps partitions' locks off each other's cache lines
}

// pendingBatch is one partition's batch being filled.
type pendingBatch struct {
	acc       *accumulator
	bld       batch.Builder
	entries   []pendingRecord
	opened    time.Time // when its first record arrived, for Linger
	maxRecord int       // the topic's MaxRecordBytes when its first record was accepted
	charged   int64     // buffer budget its records hold
}

// pendingRecord is a record waiting in a batch, and its callback.
type pendingRecord struct {
	r    *Record
	done func(*Record, error)
	ts   int64
}

// reserveStep is the most buffer budget a partition's batch takes at a time
// (and at most an eighth of MaxBufferedBytes): as Kafka's producer
// allocates batch.size at once, but in steps, so that small batches of many
// partitions do not hold a whole BatchBytes each.
const reserveStep = 64 << 10

// NewProducer returns a Producer writing to the broker, with opts (nil for
// the defaults). Close it (or the broker) to flush what it holds. It fails
// with ErrInvalidConfig for a negative option and ErrClosed after the
// broker's Close.
func (b *Broker) NewProducer(opts *ProducerOptions) (*Producer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Producer{
		b: b, opts: o,
		wake: make(chan struct{}, 1), exited: make(chan struct{}),
	}
	p.clock.init(b)
	p.topics.Store(&map[string]*producerTopic{})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.producers[p] = struct{}{}
	go p.writer()
	return p, nil
}

// Publish queues r for its topic and returns without waiting for the write,
// unless MaxBufferedBytes is reached, when it blocks until there is room or
// ctx ends. done (which may be nil) runs exactly once with r and nil once r
// is written (r's Partition, Offset and Timestamp filled in), or with the
// error: the same typed errors as Broker.Publish, ctx's error, or ErrClosed
// after Close. Validation errors call done before Publish returns.
//
// ProducerOptions.Partitioner places r; r.Partition counts only under
// ManualPartitioner (see Broker.Publish).
//
// Publish copies r's key, value and headers into the batch before it
// returns: their buffers may be reused at once. r itself is filled in when
// written and handed to done: it must not be modified, or published again,
// until then (Flush waits for it); afterwards it may be reused.
func (p *Producer) Publish(ctx context.Context, r *Record, done func(*Record, error)) {
	if err := p.enqueue(ctx, r, done); err != nil && done != nil {
		done(r, err)
	}
}

func (p *Producer) enqueue(ctx context.Context, r *Record, done func(*Record, error)) error {
	if r == nil {
		return fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.closed.Load() {
		return ErrClosed
	}
	pt, err := p.topic(r.Topic)
	if err != nil {
		return err
	}
	t := pt.t
	c := t.config()
	cc := c.codecFor(p.opts.Compression)
	ts, size, err := t.accept(r, &callClock{now: p.clock.now}, c.recordLimit(cc))
	if err != nil {
		return err
	}
	// Over MaxRecordBytes, and stored compressed: the record goes in a
	// batch of its own, which write checks as stored, so that what it is
	// batched with never decides whether it fits.
	alone := size > c.MaxRecordBytes
	if size > p.opts.MaxBufferedBytes {
		// Kafka's buffer.memory rule: it could never be buffered.
		return fmt.Errorf("%w: %d bytes, the producer buffers at most %d (MaxBufferedBytes)", ErrRecordTooLarge, size, p.opts.MaxBufferedBytes)
	}
	parts := t.partitions()
	partition, err := t.choose(r, p.opts.Partitioner, len(parts))
	if err != nil {
		return err
	}
	sticky := partition == AnyPartition
	if sticky {
		partition = p.stick(pt, len(parts))
	}
	a, err := p.accumulator(pt, partition, parts)
	if err != nil {
		return err
	}
	limit := min(p.opts.BatchBytes, c.batchLimit(cc))
	var got int64 // budget reserved for this record and not yet the partition's
	a.mu.Lock()
	for {
		if p.closed.Load() {
			a.mu.Unlock()
			p.release(got)
			return ErrClosed
		}
		a.budget += got
		got = 0
		if a.budget >= int64(size) {
			break
		}
		// The partition's budget is used up: take more, without holding
		// its lock while waiting for it.
		a.mu.Unlock()
		want := max(int64(size), min(int64(p.opts.BatchBytes), reserveStep, int64(p.opts.MaxBufferedBytes)/8))
		if err := p.reserve(ctx, want); err != nil {
			return err
		}
		got = want
		a.mu.Lock()
	}
	a.budget -= int64(size)
	if pb := a.cur; pb != nil && (alone || pb.bld.Len()+size > limit) {
		p.closeLocked(a, !alone)
	}
	if a.cur == nil {
		p.openLocked(a, c.MaxRecordBytes)
	}
	pb := a.cur
	pb.bld.Add(ts, r.Key, r.Value, r.Headers)
	pb.entries = append(pb.entries, pendingRecord{r: r, done: done, ts: ts})
	pb.charged += int64(size)
	closed := false
	if alone || pb.bld.Len() >= p.opts.BatchBytes {
		p.closeLocked(a, !alone)
		closed = true
	}
	if sticky {
		if a.sticky += size; a.sticky >= p.opts.BatchBytes {
			a.sticky = 0
			p.unstick(pt, partition, len(parts))
		}
	}
	register := !a.queued
	a.queued = true
	a.mu.Unlock()
	if register {
		p.qmu.Lock()
		p.pending = append(p.pending, a)
		p.qmu.Unlock()
	}
	if (register || closed) && p.writerIdle.Load() && p.writerIdle.CompareAndSwap(true, false) {
		p.nudge()
	}
	return nil
}

// openLocked starts a new batch for a. Callers hold a.mu.
func (p *Producer) openLocked(a *accumulator, maxRecord int) {
	p.qmu.Lock()
	pb := p.spareLocked()
	p.qmu.Unlock()
	pb.acc, pb.maxRecord = a, maxRecord
	if p.opts.Linger > 0 {
		pb.opened = time.Now() // Linger is real (or synctest) time, not the record clock
	}
	pb.bld.Reset(0)
	if a.filled {
		// Its last batch filled up: so will this one, likely. Sized once,
		// rather than grown (and copied) on the way.
		pb.bld.Grow(p.opts.BatchBytes)
	}
	a.cur = pb
}

// closeLocked moves a's current batch to those ready to write. Callers
// hold a.mu.
func (p *Producer) closeLocked(a *accumulator, filled bool) {
	a.full = append(a.full, a.cur)
	a.cur = nil
	a.filled = filled
}

// reserve takes n bytes of the buffer budget, waiting while it is spent
// (unless nothing is buffered: a record is never refused for the budget
// alone) until ctx ends or the producer closes.
func (p *Producer) reserve(ctx context.Context, n int64) error {
	limit := int64(p.opts.MaxBufferedBytes)
	for {
		cur := p.buffered.Load()
		if cur == 0 || cur+n <= limit {
			if p.buffered.CompareAndSwap(cur, cur+n) {
				return nil
			}
			continue
		}
		ch := p.progress.Wait()
		if p.closed.Load() {
			return ErrClosed
		}
		if cur := p.buffered.Load(); cur == 0 || cur+n <= limit {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release returns n bytes of the buffer budget and wakes publishers
// waiting for it.
func (p *Producer) release(n int64) {
	if n > 0 {
		p.buffered.Add(-n)
		p.progress.Broadcast()
	}
}

// nudge wakes the writer goroutine if it waits.
func (p *Producer) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// topic looks up a topic for publishing, through a per-producer cache that
// spares the broker's lock on the hot path.
func (p *Producer) topic(name string) (*producerTopic, error) {
	if pt := p.last.Load(); pt != nil && pt.t.name == name && !pt.t.deleted.Load() {
		return pt, nil
	}
	if pt := (*p.topics.Load())[name]; pt != nil && !pt.t.deleted.Load() {
		p.last.Store(pt)
		return pt, nil
	}
	t, err := p.b.topicForWrite(name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.topics.Load()
	if pt := old[name]; pt != nil && pt.t == t {
		return pt, nil
	}
	m := make(map[string]*producerTopic, len(old)+1)
	for k, v := range old {
		if !v.t.deleted.Load() {
			m[k] = v
		}
	}
	pt := &producerTopic{t: t}
	pt.accs.Store(new([]*accumulator))
	m[name] = pt
	p.topics.Store(&m)
	return pt, nil
}

// accumulator returns the accumulator of a partition of pt, whose logs are
// parts, creating it on first use. After Close's barrier it fails with
// ErrClosed.
func (p *Producer) accumulator(pt *producerTopic, partition int32, parts []*log.Log) (*accumulator, error) {
	if accs := *pt.accs.Load(); int(partition) < len(accs) && accs[partition] != nil {
		return accs[partition], nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return nil, ErrClosed
	}
	accs := *pt.accs.Load()
	if int(partition) < len(accs) && accs[partition] != nil {
		return accs[partition], nil
	}
	grown := make([]*accumulator, max(len(accs), len(parts), int(partition)+1))
	copy(grown, accs)
	a := &accumulator{topic: pt.t, part: parts[partition], partition: partition}
	grown[partition] = a
	pt.accs.Store(&grown)
	return a, nil
}

// stick returns the sticky partition of pt, of n partitions, for a keyless
// record: the one chosen last, or a new one at random.
func (p *Producer) stick(pt *producerTopic, n int) int32 {
	for {
		s := pt.sticky.Load()
		if s > 0 && int(s) <= n {
			return s - 1
		}
		next := int32(rand.IntN(n))
		if pt.sticky.CompareAndSwap(s, next+1) {
			return next
		}
	}
}

// unstick moves pt's keyless records on from partition, of n, to another
// at random (KIP-794: once BatchBytes went there), unless another
// publisher already did.
func (p *Producer) unstick(pt *producerTopic, partition int32, n int) {
	next := int32(rand.IntN(n))
	for n > 1 && next == partition {
		next = int32(rand.IntN(n))
	}
	pt.sticky.CompareAndSwap(partition+1, next+1)
}

// writer is the producer's goroutine: it takes due batches and writes them
// in order until the producer is closed and drained. It holds the
// accumulators handed to it while they have an open batch (lingering).
func (p *Producer) writer() {
	defer close(p.exited)
	var timer *time.Timer
	var held []*accumulator
	var batches []*pendingBatch
	announced := false // writerIdle was set and everything looked at since
	for {
		p.qmu.Lock()
		held = append(held, p.pending...)
		clear(p.pending)
		p.pending = p.pending[:0]
		gen := p.flushReq // a flush asked for by now is served by this take
		all := p.flushAll || p.draining
		draining := p.draining
		p.flushAll = false
		p.qmu.Unlock()
		var wait time.Duration
		batches, held, wait = p.takeDue(batches[:0], held, all)
		if len(batches) > 0 {
			if announced {
				p.writerIdle.Store(false)
				announced = false
			}
			for i, pb := range batches {
				p.write(pb)
				batches[i] = nil
			}
			p.flushed(gen)
			continue
		}
		p.flushed(gen)
		if draining && len(held) == 0 {
			return
		}
		if !announced {
			// Look once more after saying so: a publisher that missed the
			// flag handed its work over before this look.
			p.writerIdle.Store(true)
			announced = true
			continue
		}
		var fire <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-p.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		p.writerIdle.Store(false)
		announced = false
	}
}

// flushed records that every batch published before flush generation gen
// was asked for has been written: the writer is sequential, so all it took
// earlier is done too.
func (p *Producer) flushed(gen uint64) {
	p.qmu.Lock()
	advanced := gen > p.flushDone
	if advanced {
		p.flushDone = gen
	}
	p.qmu.Unlock()
	if advanced {
		p.progress.Broadcast()
	}
}

// takeDue moves the batches of held accumulators that are due into out:
// closed ones, and open ones whose linger has passed (all of them with
// Linger 0, or with all). It returns the accumulators still lingering and
// how long until the next of them is due.
func (p *Producer) takeDue(out []*pendingBatch, held []*accumulator, all bool) ([]*pendingBatch, []*accumulator, time.Duration) {
	var now time.Time
	if p.opts.Linger > 0 && !all {
		now = time.Now()
	}
	var wait time.Duration
	keep := held[:0]
	var free int64
	for _, a := range held {
		a.mu.Lock()
		out = append(out, a.full...)
		clear(a.full)
		a.full = a.full[:0]
		if pb := a.cur; pb != nil {
			if left := p.opts.Linger - now.Sub(pb.opened); all || p.opts.Linger == 0 || left <= 0 {
				out = append(out, pb)
				a.cur = nil
			} else if wait == 0 || left < wait {
				wait = left
			}
		}
		if a.cur == nil {
			a.queued = false
			free += a.budget
			a.budget = 0
		} else {
			keep = append(keep, a)
		}
		a.mu.Unlock()
	}
	clear(held[len(keep):])
	p.release(free)
	return out, keep, wait
}

// spareLocked returns a batch to fill: a spare one, or a new one. Callers
// hold qmu.
func (p *Producer) spareLocked() *pendingBatch {
	if n := len(p.spare); n > 0 {
		pb := p.spare[n-1]
		p.spare[n-1] = nil
		p.spare = p.spare[:n-1]
		p.spareBytes -= pb.bld.Cap()
		return pb
	}
	return new(pendingBatch)
}

// write appends one batch and runs its callbacks in offset order.
func (p *Producer) write(pb *pendingBatch) {
	a := pb.acc
	// Compressed once, with the codec the topic stores the batch with (as
	// its config is now): the batch a Kafka broker stores after
	// recompressing one its producer compressed with another codec.
	encoded, compressed, err := a.topic.compress(pb.bld.Finish(), a.topic.config().codecFor(p.opts.Compression), p.compressed, pb.maxRecord)
	var base int64
	if err == nil {
		base, err = a.part.Append(encoded)
	}
	if err != nil {
		err = a.topic.writeErr(err)
	}
	var st stamp
	if err == nil { // encoded is nil where compress failed
		st = newStamp(a.partition, base, encoded)
	}
	encoded = nil // it aliases pb.bld or the scratch, both reused
	if cap(compressed) <= maxPooledBatchBytes {
		p.compressed = compressed
	} else {
		p.compressed = nil
	}
	for i := range pb.entries {
		e := &pb.entries[i]
		if err == nil {
			st.fill(e.r, i, e.ts)
		}
		if e.done != nil {
			e.done(e.r, err)
		}
	}
	clear(pb.entries)
	pb.entries = pb.entries[:0]
	pb.acc = nil
	charged := pb.charged
	pb.charged = 0

	p.qmu.Lock()
	if held := pb.bld.Cap(); held <= maxPooledBatchBytes && p.spareBytes+held <= p.opts.MaxBufferedBytes/4 {
		p.spare = append(p.spare, pb)
		p.spareBytes += held
	}
	p.qmu.Unlock()
	p.release(charged)
}

// Flush writes every record published before the call and returns once all
// their callbacks have run, or ctx ends (Kafka's flush()). It returns
// ErrClosed after Close.
func (p *Producer) Flush(ctx context.Context) error {
	if p.closed.Load() {
		return ErrClosed
	}
	p.qmu.Lock()
	p.flushReq++
	gen := p.flushReq
	p.flushAll = true
	p.qmu.Unlock()
	p.nudge()
	for {
		ch := p.progress.Wait()
		p.qmu.Lock()
		done := p.flushDone >= gen
		p.qmu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			// Closed meanwhile: Close drained everything.
			return nil
		}
	}
}

// Close writes what the producer holds, waits for its callbacks, and stops
// its goroutine. Publish after Close fails with ErrClosed. Close is safe to
// call more than once.
func (p *Producer) Close() error {
	if p.closed.Swap(true) {
		<-p.exited
		return nil
	}
	p.progress.Broadcast() // wake publishers blocked on buffer space
	// The barrier: a publisher checks closed under its partition's lock,
	// and accumulators are created under mu, checking it too. Once every
	// lock has been passed, no record can join a batch any more.
	p.mu.Lock()
	for _, pt := range *p.topics.Load() {
		for _, a := range *pt.accs.Load() {
			if a != nil {
				a.mu.Lock()
				//lint:ignore SA2001 an empty critical section is the barrier
				a.mu.Unlock()
			}
		}
	}
	p.mu.Unlock()
	p.qmu.Lock()
	p.draining = true
	p.qmu.Unlock()
	p.nudge()
	<-p.exited
	p.b.mu.Lock()
	delete(p.b.producers, p)
	p.b.mu.Unlock()
	return nil
}

// producerClock stamps records without a timestamp of their own. With the
// broker's clock left as time.Now, it reads only the monotonic clock per
// record, against a wall-clock anchor taken at most a second before: one
// clock read instead of two (time.Now reads both). Under testing/synctest
// time.Since is the bubble's clock, so stamps follow it.
type producerClock struct {
	injected func() time.Time // Options.Now when set, called per record
	anchor   atomic.Pointer[clockAnchor]
}

type clockAnchor struct {
	at   time.Time // with its monotonic reading
	wall int64     // at's Unix nanoseconds
}

func (c *producerClock) init(b *Broker) {
	if !b.realClock {
		c.injected = b.opts.Now
	}
}

// now returns the time to stamp a record with.
func (c *producerClock) now() time.Time {
	if c.injected != nil {
		return c.injected()
	}
	a := c.anchor.Load()
	if a != nil {
		if since := time.Since(a.at); since >= 0 && since < time.Second {
			return time.Unix(0, a.wall+int64(since))
		}
	}
	// Re-anchored each second, so that a change to the wall clock shows
	// within one.
	t := time.Now()
	c.anchor.Store(&clockAnchor{at: t, wall: t.UnixNano()})
	return t
}
