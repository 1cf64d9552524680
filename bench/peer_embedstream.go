package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream"
)

// embedPeer is ours, through the public API only: Broker.Publish with many
// records per call for batches, one record per call for latency, a Reader
// to consume from the start, Consumer.Poll for tailing and groups.
type embedPeer struct{}

func (embedPeer) name() string { return "embedstream" }
func (embedPeer) id() string   { return "embedstream" }

// maxPollRecords is raised from the default 500 (a documented knob, Kafka's
// max.poll.records) for the throughput of the group workload.
const maxPollRecords = 5000

// unitTestOptions are the options streamtest.NewBroker opens a broker with
// (streamtest/broker.go, testOptions; bench cannot import streamtest
// without adding testify to its module): SyncNever, and segments of
// unitTestSegmentBytes for auto-created topics and, as
// streamtest.CreateTopic gives them, for the topic start creates. Its
// Logger (the test's output, Warn and above) logs nothing on this path.
func unitTestOptions() *stream.Options {
	return &stream.Options{Sync: stream.SyncNever, DefaultTopic: stream.TopicConfig{SegmentBytes: unitTestSegmentBytes}}
}

// unitTestSegmentBytes is streamtest.SegmentBytes.
const unitTestSegmentBytes = 1 << 20

type embedInstance struct {
	b          *stream.Broker
	partitions int
	spare      sync.Pool // *stream.Record for publishOne

	// The JSON-event workloads': the codec (nil otherwise), the Producer
	// (made at its first use), and Records reused from pass to pass: recs
	// for the Producer, one per event; call for a Broker.Publish call.
	codec    *codecSpec
	producer *stream.Producer
	recs     []stream.Record
	call     []*stream.Record
	chunker
}

func (embedPeer) start(_ context.Context, dir string, o startOptions) (instance, error) {
	// Records name their partition (publishBatched deals them out in turn),
	// as the kfake peer's do under kgo.ManualPartitioner.
	opts := &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}}
	switch {
	case o.durable:
		opts.Sync = stream.SyncAlways
	case o.unitTest:
		opts = unitTestOptions()
	case o.engineDefaults:
		opts = nil
	}
	b, err := stream.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	cfg := stream.TopicConfig{Partitions: max(o.partitions, 1)}
	switch {
	case o.bigLog:
		cfg.SegmentBytes = math.MaxInt32 // the largest allowed: the whole log stays in the active segment
	case o.unitTest:
		cfg.SegmentBytes = unitTestSegmentBytes
	}
	if o.codec != nil {
		cfg.Compression = stream.Compression{Codec: o.codec.ours}
	}
	if err := b.CreateTopic("bench", cfg); err != nil && !errors.Is(err, stream.ErrTopicExists) {
		b.Close()
		return nil, err
	}
	info, err := b.DescribeTopic("bench")
	if err != nil {
		b.Close()
		return nil, err
	}
	e := &embedInstance{b: b, partitions: len(info.Partitions), codec: o.codec}
	e.spare.New = func() any { return new(stream.Record) }
	return e, nil
}

// publishBatched sends up to 1,000 records (and at most 512 KiB, the
// Producer's default batch size, under the 1 MiB batch limit) per Publish
// call. The Record values are reused between calls: Publish keeps none.
func (e *embedInstance) publishBatched(ctx context.Context, n int, v []byte) error {
	per := max(1, min(1000, (512<<10)/max(len(v), 1)))
	recs := make([]stream.Record, per)
	ptrs := make([]*stream.Record, per)
	for i := range recs {
		recs[i] = stream.Record{Topic: "bench", Value: v}
		ptrs[i] = &recs[i]
	}
	partition := int32(0)
	for sent := 0; sent < n; {
		k := min(per, n-sent)
		for i := range k {
			// Publish filled in Offset and Timestamp: a zero Timestamp is "now".
			recs[i].Partition, recs[i].Timestamp = partition, time.Time{}
			if partition++; int(partition) == e.partitions {
				partition = 0
			}
		}
		if err := e.b.Publish(ctx, ptrs[:k]...); err != nil {
			return err
		}
		sent += k
	}
	return nil
}

// publishOne reuses one Record, as publishBatched does: Publish keeps none.
// Callers are one goroutine at a time except in the group-commit workload,
// which is why each goroutine there gets its own through the pool.
func (e *embedInstance) publishOne(ctx context.Context, v []byte) error {
	r := e.spare.Get().(*stream.Record)
	defer e.spare.Put(r)
	*r = stream.Record{Topic: "bench", Partition: 0, Value: v}
	return e.b.Publish(ctx, r)
}

func (e *embedInstance) read(ctx context.Context, n int, mode readMode) error {
	rd, err := e.b.NewReader("bench", 0, stream.OffsetEarliest, &stream.ReaderOptions{EndOffset: new(int64(n))})
	if err != nil {
		return err
	}
	defer rd.Close()
	var sum checksum
	defer sum.flush()
	var keep keeper
	for got := 0; got < n; got++ {
		rec, err := rd.Next(ctx)
		if err != nil {
			return fmt.Errorf("after %d records: %w", got, err)
		}
		switch mode { // a copy that outlives the next Next
		case readCopy:
			rec = keep.copy(rec)
		case readClone:
			rec = rec.Clone()
		}
		sum.add(rec.Value)
	}
	return nil
}

// keeper copies records that outlive the Reader's next Next, as a consumer
// that keeps them must: the consume row's copying figure. A stream.Arena
// carves the copies from shared blocks, a few allocations per thousand
// records instead of Record.Clone's two per record.
type keeper struct{ a stream.Arena }

// keeperName names keeper's copy in the consume row's labels.
const keeperName = "stream.Arena"

func (k *keeper) copy(r *stream.Record) *stream.Record { return k.a.Clone(r) }

func (e *embedInstance) tail(ctx context.Context) (func() error, error) {
	// The topic is empty: ResetEarliest cannot miss a record published
	// before the member's first Poll resolved its position.
	c, err := e.b.Subscribe("tail", []string{"bench"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return func() error {
		for {
			recs, err := c.Poll(ctx)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				return nil
			}
		}
	}, nil
}

func (e *embedInstance) group(ctx context.Context, members, n int, done func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, members)
	consumers := make([]*stream.Consumer, members)
	for m := range members {
		c, err := e.b.Subscribe("group", []string{"bench"}, &stream.ConsumerOptions{
			Reset: stream.ResetEarliest, MaxPollRecords: maxPollRecords})
		if err != nil {
			return err
		}
		consumers[m] = c
	}
	for m, c := range consumers {
		wg.Go(func() {
			var sum checksum
			defer sum.flush()
			for total.Load() < int64(n) {
				recs, err := c.Poll(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs[m] = err
						cancel()
					}
					return
				}
				for _, r := range recs {
					sum.add(r.Value)
				}
				if t := total.Add(int64(len(recs))); t >= int64(n) && t-int64(len(recs)) < int64(n) {
					done()
					cancel() // the others are blocked in Poll
				}
			}
		})
	}
	wg.Wait()
	for _, c := range consumers {
		c.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if got := total.Load(); got < int64(n) {
		return fmt.Errorf("group read %d of %d records", got, n)
	}
	return nil
}

// newProducer is a Producer lingering eventLinger with the default
// BatchBytes and partitioner (HashPartitioner: by key, keyless records
// stickily), each callback counted.
func (e *embedInstance) newProducer(_ context.Context, keyed bool) (asyncProducer, error) {
	p, err := e.b.NewProducer(&stream.ProducerOptions{Linger: eventLinger})
	if err != nil {
		return nil, err
	}
	ep := &embedProducer{p: p}
	ep.done = func(_ *stream.Record, err error) {
		if err != nil {
			ep.firstErr.CompareAndSwap(nil, &err)
		}
		ep.acked.Add(1)
	}
	return ep, nil
}

// embedProducer publishes through a stream.Producer. It keeps a Record per
// record of the round: the Producer holds each until its callback, and the
// next round reuses it after Flush.
type embedProducer struct {
	p        *stream.Producer
	recs     []stream.Record
	done     func(*stream.Record, error)
	acked    atomic.Int64
	firstErr atomic.Pointer[error]
}

func (ep *embedProducer) prepare(n int) {
	if len(ep.recs) < n {
		ep.recs = make([]stream.Record, n)
	}
}

func (ep *embedProducer) publish(ctx context.Context, i int, k, v []byte) {
	r := &ep.recs[i]
	*r = stream.Record{Topic: "bench", Key: k, Value: v}
	ep.p.Publish(ctx, r, ep.done)
}

func (ep *embedProducer) flush(ctx context.Context) (int64, error) {
	err := ep.p.Flush(ctx)
	if first := ep.firstErr.Swap(nil); first != nil && err == nil {
		err = *first
	}
	return ep.acked.Swap(0), err
}

func (ep *embedProducer) close() error { return ep.p.Close() }

// publishParallel has each goroutine publish to its own partition with
// Broker.Publish, perCall records per call, its Records reused.
func (e *embedInstance) publishParallel(ctx context.Context, n, g, perCall int, v []byte) error {
	return fanOut(g, func(i int) error {
		recs := make([]stream.Record, perCall)
		ptrs := make([]*stream.Record, perCall)
		for j := range recs {
			ptrs[j] = &recs[j]
		}
		for sent := 0; sent < n/g; {
			k := min(perCall, n/g-sent)
			for j := range k {
				recs[j] = stream.Record{Topic: "bench", Partition: int32(i), Value: v}
			}
			if err := e.b.Publish(ctx, ptrs[:k]...); err != nil {
				return err
			}
			sent += k
		}
		return nil
	})
}

// readParallel has each goroutine read its partition with a Reader.
func (e *embedInstance) readParallel(ctx context.Context, n, g int) error {
	return fanOut(g, func(i int) error {
		rd, err := e.b.NewReader("bench", int32(i), stream.OffsetEarliest, &stream.ReaderOptions{EndOffset: new(int64(n / g))})
		if err != nil {
			return err
		}
		defer rd.Close()
		var sum checksum
		defer sum.flush()
		for got := 0; got < n/g; got++ {
			rec, err := rd.Next(ctx)
			if err != nil {
				return fmt.Errorf("partition %d, after %d records: %w", i, got, err)
			}
			sum.add(rec.Value)
		}
		return nil
	})
}

func (e *embedInstance) records(context.Context) (int64, error) {
	info, err := e.b.DescribeTopic("bench")
	if err != nil {
		return 0, err
	}
	return info.Partitions[0].EndOffset - info.Partitions[0].StartOffset, nil
}

// publishEvents publishes through a Producer compressing with the codec
// (BatchBytes eventBatchBytes, Linger eventLinger) and Flushes, or with
// viaPublish calls Broker.Publish with a batch's worth of records at a time,
// which compresses them with the topic's codec.
func (e *embedInstance) publishEvents(ctx context.Context, events [][]byte, viaPublish bool) error {
	if e.codec == nil {
		return errors.New("no codec: not started for the JSON-event workloads")
	}
	if viaPublish {
		for _, chunk := range e.of(events) {
			for len(e.call) < len(chunk) {
				e.call = append(e.call, new(stream.Record))
			}
			for i, v := range chunk {
				*e.call[i] = stream.Record{Topic: "bench", Value: v}
			}
			if err := e.b.Publish(ctx, e.call[:len(chunk)]...); err != nil {
				return err
			}
		}
		return nil
	}
	if e.producer == nil {
		p, err := e.b.NewProducer(&stream.ProducerOptions{Linger: eventLinger, BatchBytes: eventBatchBytes,
			Partitioner: stream.ManualPartitioner{}, Compression: stream.Compression{Codec: e.codec.ours}})
		if err != nil {
			return err
		}
		e.producer = p
	}
	// The Producer keeps each Record until its callback: one per event, reused
	// by the next pass once Flush has returned.
	if len(e.recs) < len(events) {
		e.recs = make([]stream.Record, len(events))
	}
	var firstErr atomic.Pointer[error]
	done := func(_ *stream.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	for i, v := range events {
		e.recs[i] = stream.Record{Topic: "bench", Value: v}
		e.producer.Publish(ctx, &e.recs[i], done)
	}
	if err := e.producer.Flush(ctx); err != nil {
		return err
	}
	if err := firstErr.Load(); err != nil {
		return *err
	}
	return nil
}

// stored is partition 0's batch bytes (PartitionInfo.Bytes: the batches,
// not the segment's preallocated space).
func (e *embedInstance) stored(context.Context) (int64, int64, error) {
	info, err := e.b.DescribeTopic("bench")
	if err != nil {
		return 0, 0, err
	}
	p := info.Partitions[0]
	return p.Bytes, p.EndOffset - p.StartOffset, nil
}

func (e *embedInstance) close() error {
	var err error
	if e.producer != nil {
		err = e.producer.Close()
	}
	return errors.Join(err, e.b.Close())
}
