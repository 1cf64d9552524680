package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
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
type Producer struct {
	b    *Broker
	opts ProducerOptions

	mu        sync.Mutex
	open      map[*log.Log]*pendingBatch // batches still taking records
	ready     []*pendingBatch            // closed batches, in the order to write them
	buffered  int                        // bytes published and not yet written
	flushAll  bool                       // write open batches now (Flush, Close)
	flushReq  uint64                     // flush generations asked for
	flushDone uint64                     // generations whose batches are all written
	closed    bool
	sticky    map[*topic]*stickyPartition
	// writerIdle is set by the writer before it blocks, so Publish wakes it
	// only when needed.
	writerIdle bool
	topics     map[string]*topic // topics seen by Publish

	wake     chan struct{} // nudges the writer goroutine; capacity 1
	progress signal.Signal // broadcast when records complete
	exited   chan struct{} // closed when the writer goroutine ends
	// spare are written batches kept for reuse, their buffers grown:
	// refilling a batch of BatchBytes from a small buffer costs more than
	// encoding into it, and a sync.Pool loses them at every GC. As Kafka's
	// producer keeps freed batch buffers within buffer.memory, their
	// buffers (spareBytes) take at most a quarter of MaxBufferedBytes, none
	// over maxPooledBatchBytes.
	spare      []*pendingBatch
	spareBytes int
	// filled is the partition whose batch last closed full (BatchBytes):
	// its next batch is made that size at once.
	filled *log.Log

	// compressed is the writer goroutine's scratch for compressed batches,
	// kept between batches up to maxPooledBatchBytes.
	compressed []byte
}

// pendingBatch is one partition's batch being filled.
type pendingBatch struct {
	topic     *topic
	part      *log.Log
	partition int32
	bld       batch.Builder
	recs      []*Record
	dones     []func(*Record, error)
	ts        []int64
	opened    time.Time // when its first record arrived, for Linger
	maxRecord int       // the topic's MaxRecordBytes when its first record was accepted
}

// stickyPartition is where keyless records of a topic go until BatchBytes
// have gone there.
type stickyPartition struct {
	partition int32
	bytes     int
}

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
		open: map[*log.Log]*pendingBatch{}, sticky: map[*topic]*stickyPartition{}, topics: map[string]*topic{},
		wake: make(chan struct{}, 1), exited: make(chan struct{}),
	}
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
// r must not be modified until done runs.
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
	p.mu.Lock()
	defer p.mu.Unlock()
	t, err := p.topicLocked(r.Topic)
	if err != nil {
		return err
	}
	c := t.config()
	cc := c.codecFor(p.opts.Compression)
	ts, size, err := t.accept(r, &callClock{now: p.b.opts.Now}, c.recordLimit(cc))
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
	for !p.closed && p.buffered > 0 && p.buffered+size > p.opts.MaxBufferedBytes {
		ch := p.progress.Wait()
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return ctx.Err()
		}
		p.mu.Lock()
	}
	if p.closed {
		return ErrClosed
	}
	partition, err := p.placeLocked(t, r, len(parts), size)
	if err != nil {
		return err
	}
	part := parts[partition]
	pb := p.open[part]
	if pb != nil && (alone || pb.bld.Len()+size > min(p.opts.BatchBytes, c.batchLimit(cc))) {
		delete(p.open, part)
		p.ready = append(p.ready, pb)
		if !alone {
			p.filled = part
		}
		pb = nil
	}
	if pb == nil {
		pb = p.spareLocked()
		pb.topic, pb.part, pb.partition, pb.opened, pb.maxRecord = t, part, partition, time.Now(), c.MaxRecordBytes
		pb.bld.Reset(0)
		if part == p.filled {
			// Its last batch filled up: so will this one, likely. Sized
			// once, rather than grown (and copied) on the way.
			pb.bld.Grow(p.opts.BatchBytes)
		}
		p.open[part] = pb
	}
	before := pb.bld.Len()
	pb.bld.Add(ts, r.Key, r.Value, r.Headers)
	pb.recs = append(pb.recs, r)
	pb.dones = append(pb.dones, done)
	pb.ts = append(pb.ts, ts)
	p.buffered += pb.bld.Len() - before
	if alone || pb.bld.Len() >= p.opts.BatchBytes {
		delete(p.open, part)
		p.ready = append(p.ready, pb)
		if !alone {
			p.filled = part
		}
	}
	if p.writerIdle {
		p.writerIdle = false
		p.nudge()
	}
	return nil
}

// nudge wakes the writer goroutine if it waits.
func (p *Producer) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// topic looks up a topic for publishing, through a per-producer cache that
// spares the broker's lock on the hot path. Callers hold p.mu; it is
// released while the broker is asked.
func (p *Producer) topicLocked(name string) (*topic, error) {
	if t, ok := p.topics[name]; ok && !t.deleted.Load() {
		return t, nil
	}
	p.mu.Unlock()
	t, err := p.b.topicForWrite(name)
	p.mu.Lock()
	if err != nil {
		return nil, err
	}
	p.topics[name] = t
	return t, nil
}

// placeLocked chooses the partition for r.
func (p *Producer) placeLocked(t *topic, r *Record, n, size int) (int32, error) {
	part, err := t.choose(r, p.opts.Partitioner, n)
	if err != nil || part != AnyPartition {
		return part, err
	}
	s := p.sticky[t]
	if s == nil || s.bytes >= p.opts.BatchBytes || int(s.partition) >= n {
		next := int32(rand.IntN(n))
		if s != nil && n > 1 {
			for next == s.partition {
				next = int32(rand.IntN(n))
			}
		}
		s = &stickyPartition{partition: next}
		p.sticky[t] = s
	}
	s.bytes += size
	return s.partition, nil
}

// writer is the producer's goroutine: it takes due batches and writes them
// in order until the producer is closed and drained.
func (p *Producer) writer() {
	defer close(p.exited)
	var timer *time.Timer
	var batches []*pendingBatch
	for {
		p.mu.Lock()
		var wait time.Duration
		gen := p.flushReq // a flush asked for by now is served by this take
		batches, wait = p.takeDueLocked(batches[:0])
		drained := p.closed && len(batches) == 0 && len(p.open) == 0 && len(p.ready) == 0
		p.writerIdle = len(batches) == 0
		p.mu.Unlock()
		if drained {
			return
		}
		if len(batches) == 0 {
			p.flushed(gen)
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
			continue
		}
		for _, pb := range batches {
			p.write(pb)
		}
		p.flushed(gen)
	}
}

// flushed records that every batch published before flush generation gen
// was asked for has been written: the writer is sequential, so all it took
// earlier is done too.
func (p *Producer) flushed(gen uint64) {
	p.mu.Lock()
	advanced := gen > p.flushDone
	if advanced {
		p.flushDone = gen
	}
	p.mu.Unlock()
	if advanced {
		p.progress.Broadcast()
	}
}

// takeDueLocked moves the batches that are due into out: closed ones, and
// open ones whose linger has passed (all of them with Linger 0, or during a
// flush). wait is how long until the next open batch is due.
func (p *Producer) takeDueLocked(out []*pendingBatch) ([]*pendingBatch, time.Duration) {
	out = append(out, p.ready...)
	clear(p.ready)
	p.ready = p.ready[:0]
	now := time.Now() // Linger is real (or synctest) time, not the record clock
	var wait time.Duration
	for part, pb := range p.open {
		if left := p.opts.Linger - now.Sub(pb.opened); p.flushAll || left <= 0 {
			out = append(out, pb)
			delete(p.open, part)
		} else if wait == 0 || left < wait {
			wait = left
		}
	}
	p.flushAll = false
	return out, wait
}

// spareLocked returns a batch to fill: a spare one, or a new one. Callers
// hold mu.
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
	size := pb.bld.Len() - batch.HeaderSize
	// Compressed once, with the codec the topic stores the batch with (as
	// its config is now): the batch a Kafka broker stores after
	// recompressing one its producer compressed with another codec.
	encoded, compressed, err := pb.topic.compress(pb.bld.Finish(), pb.topic.config().codecFor(p.opts.Compression), p.compressed, pb.maxRecord)
	var base int64
	if err == nil {
		base, err = pb.part.Append(encoded)
	}
	if err != nil {
		err = pb.topic.writeErr(err)
	}
	var st stamp
	if err == nil { // encoded is nil where compress failed
		st = newStamp(pb.partition, base, encoded)
	}
	encoded = nil // it aliases pb.bld or the scratch, both reused
	if cap(compressed) <= maxPooledBatchBytes {
		p.compressed = compressed
	} else {
		p.compressed = nil
	}
	for i, r := range pb.recs {
		if err == nil {
			st.fill(r, i, pb.ts[i])
		}
		if done := pb.dones[i]; done != nil {
			done(r, err)
		}
	}
	clear(pb.recs)
	clear(pb.dones)
	pb.recs, pb.dones, pb.ts = pb.recs[:0], pb.dones[:0], pb.ts[:0]
	pb.topic, pb.part = nil, nil

	p.mu.Lock()
	if held := pb.bld.Cap(); held <= maxPooledBatchBytes && p.spareBytes+held <= p.opts.MaxBufferedBytes/4 {
		p.spare = append(p.spare, pb)
		p.spareBytes += held
	}
	p.buffered -= size
	p.mu.Unlock()
	p.progress.Broadcast()
}

// Flush writes every record published before the call and returns once all
// their callbacks have run, or ctx ends (Kafka's flush()). It returns
// ErrClosed after Close.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.flushReq++
	gen := p.flushReq
	p.flushAll = true
	p.mu.Unlock()
	p.nudge()
	for {
		ch := p.progress.Wait()
		p.mu.Lock()
		done := p.flushDone >= gen
		p.mu.Unlock()
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
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.flushAll = true
	p.mu.Unlock()
	p.progress.Broadcast() // wake publishers blocked on buffer space
	p.nudge()
	<-p.exited
	if !already {
		p.b.mu.Lock()
		delete(p.b.producers, p)
		p.b.mu.Unlock()
	}
	return nil
}
