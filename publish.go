package stream

import (
	"context"
	"fmt"
	"sync"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
)

// Publish appends records synchronously and fills in each one's Partition,
// Offset and Timestamp. Every record is validated before any is written: a
// nil record, a negative timestamp or, on a compacted topic, no key
// (ErrInvalidRecord), a bad or unknown
// topic (ErrInvalidTopic, ErrTopicNotFound unless AutoCreateTopics), a
// partition the topic lacks (ErrInvalidPartition: from ManualPartitioner or
// a custom one) or a record over the topic's MaxRecordBytes as stored
// (ErrRecordTooLarge; compressed, if the topic has a codec: see
// TopicConfig.MaxRecordBytes) fails the whole call with nothing written.
// Records go in compressed with the topic's TopicConfig.Compression, if it
// names a codec; Publish compresses nothing on a topic of CodecDefault.
//
// Records for the same partition are written as one batch: all or none of
// them become visible, at consecutive offsets, in argument order. Across
// partitions there is no atomicity: if a later partition's write fails,
// earlier ones stand. Publish returns once the records are appended, and
// under SyncAlways once they are durable.
//
// Options.Partitioner places every record, HashPartitioner by default: by
// key. A record's Partition is ignored on the way in and overwritten with
// where it went, unless the partitioner is ManualPartitioner, which honours
// it (set a Partition only with that one). Records the partitioner has no
// preference for (no key; AnyPartition under ManualPartitioner) go together
// to one partition per call, rotating between calls.
func (b *Broker) Publish(ctx context.Context, recs ...*Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch len(recs) {
	case 0:
		return nil
	case 1:
		return b.publishOne(recs[0])
	}
	plan := b.plans.Get().(*publishPlan)
	defer b.plans.Put(plan)
	defer plan.release()
	if err := b.plan(plan, recs); err != nil {
		return err
	}
	for gi := range plan.groups {
		g := &plan.groups[gi]
		encoded := g.stored
		base, err := g.part.Append(encoded)
		if err != nil {
			return g.topic.writeErr(err)
		}
		st := newStamp(g.partition, base, encoded)
		for n := range g.builder.Count() {
			i := g.record(n)
			st.fill(recs[i], n, plan.timestamps[i])
		}
	}
	return nil
}

// publishOne is Publish's allocation-free path for a single record.
func (b *Broker) publishOne(r *Record) error {
	if r == nil {
		return fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	t, err := b.topicForWrite(r.Topic)
	if err != nil {
		return err
	}
	parts := t.partitions()
	partition, err := b.place(t, r, len(parts), nil)
	if err != nil {
		return err
	}
	c := t.config()
	cc := c.codecFor(Compression{})
	ts, _, err := t.accept(r, &callClock{now: b.opts.Now}, c.recordLimit(cc))
	if err != nil {
		return err
	}
	bld := b.builders.Get().(*batch.Builder)
	bld.Reset(0)
	bld.Add(ts, r.Key, r.Value, r.Headers)
	encoded := bld.Finish()
	// A batch of one record: compress checks the record as stored.
	var scratch *[]byte
	if cc.Codec > CodecNone {
		scratch = compressBufs.Get().(*[]byte)
		encoded, *scratch, err = t.compress(encoded, cc, *scratch, c.MaxRecordBytes)
	}
	var base int64
	if err == nil {
		base, err = parts[partition].Append(encoded)
	}
	if err == nil {
		st := newStamp(partition, base, encoded)
		st.fill(r, 0, ts)
	}
	// encoded aliases bld or scratch: no use of it past here.
	putBuilder(&b.builders, bld)
	if scratch != nil {
		putCompressBuf(scratch)
	}
	if err != nil {
		return t.writeErr(err)
	}
	return nil
}

// putBuilder returns bld to pool, unless its buffer grew too large to keep.
func putBuilder(pool *sync.Pool, bld *batch.Builder) {
	if bld.Cap() <= maxPooledBatchBytes {
		pool.Put(bld)
	}
}

// place chooses r's partition. sticky carries the partition chosen for
// keyless records earlier in the same call, per topic.
func (b *Broker) place(t *topic, r *Record, n int, sticky map[*topic]int32) (int32, error) {
	p, err := t.choose(r, b.opts.Partitioner, n)
	if err != nil || p != AnyPartition {
		return p, err
	}
	if n == 1 {
		return 0, nil
	}
	if s, ok := sticky[t]; ok {
		return s, nil
	}
	p = int32((t.sticky.Add(1) - 1) % uint32(n))
	if sticky != nil {
		sticky[t] = p
	}
	return p, nil
}

// publishPlan validates a Publish call's records and encodes them into one
// batch per partition before anything is written, so a bad record fails the
// call whole. Plans are pooled with their buffers: a steady stream of
// Publish calls allocates nothing.
type publishPlan struct {
	groups     []publishGroup
	timestamps []int64 // per record, ms
	sticky     map[*topic]int32
	index      map[*log.Log]int // into groups
}

// A publishGroup is the records of one call bound for one partition.
type publishGroup struct {
	topic     *topic
	part      *log.Log
	partition int32
	builder   batch.Builder
	stored    batch.Batch // the batch as written: builder's, or compressed into compressed
	codec     Compression // the codec the batch is stored with
	limit     int         // the largest record, by the topic's recordLimit
	maxRecord int         // the topic's MaxRecordBytes
	keyed     bool        // the topic is compacted: a record without a key goes to accept, which refuses it
	oversize  bool        // a record over MaxRecordBytes, to check as stored (checkAlone)
	// compressed is scratch for the compressed batch, kept between calls
	// (up to maxPooledBatchBytes).
	compressed []byte
	// The group's records (as many as builder.Count()), in call order:
	// first, first+1, ... while they come in one run (the common case),
	// else listed in records.
	first   int
	listed  bool
	records []int
}

// record returns the index in the call of the group's nth record.
func (g *publishGroup) record(n int) int {
	if !g.listed {
		return g.first + n
	}
	return g.records[n]
}

// add notes the call's record i as the group's next, before it goes into
// the builder.
func (g *publishGroup) add(i int) {
	switch count := g.builder.Count(); {
	case count == 0:
		g.first = i
	case !g.listed && i != g.first+count:
		g.listed, g.records = true, g.records[:0]
		for n := range count {
			g.records = append(g.records, g.first+n)
		}
		fallthrough
	case g.listed:
		g.records = append(g.records, i)
	}
}

// What a pooled plan keeps between calls is bounded, so that one huge call
// does not pin its buffers: records, partitions, and batch bytes per
// partition.
const (
	maxPooledRecords    = 1 << 16
	maxPooledGroups     = 1 << 10
	maxPooledBatchBytes = 4 << 20
)

// reset empties the plan for a call of n records, keeping its buffers.
func (p *publishPlan) reset(n int) {
	if p.sticky == nil {
		p.sticky, p.index = map[*topic]int32{}, map[*log.Log]int{}
	}
	clear(p.sticky)
	clear(p.index)
	if cap(p.timestamps) < n {
		p.timestamps = make([]int64, n)
	}
	p.timestamps = p.timestamps[:n]
	p.groups = p.groups[:0]
}

// release drops the plan's references to topics and partitions, and
// buffers past the pooling bounds, before it goes back to the pool.
func (p *publishPlan) release() {
	if cap(p.timestamps) > maxPooledRecords {
		p.timestamps = nil
	}
	if len(p.groups) > maxPooledGroups {
		p.groups = nil
	}
	for i := range p.groups {
		g := &p.groups[i]
		g.topic, g.part = nil, nil
		if cap(g.records) > maxPooledRecords {
			g.records = nil
		}
		if g.builder.Cap() > maxPooledBatchBytes {
			g.builder = batch.Builder{}
		}
		if cap(g.compressed) > maxPooledBatchBytes {
			g.compressed = nil
		}
		g.stored = nil
	}
}

// group returns the index of a new group for partition of t, reusing the
// buffers a group of an earlier call left in the slice.
func (p *publishPlan) group(t *topic, part *log.Log, partition int32) int {
	if len(p.groups) == cap(p.groups) {
		p.groups = append(p.groups, publishGroup{})
	} else {
		p.groups = p.groups[:len(p.groups)+1]
	}
	g := &p.groups[len(p.groups)-1]
	g.topic, g.part, g.partition = t, part, partition
	c := t.config()
	g.codec = c.codecFor(Compression{})
	g.limit, g.maxRecord, g.keyed = c.recordLimit(g.codec), c.MaxRecordBytes, c.Cleanup.compacts()
	g.first, g.listed, g.oversize = 0, false, false
	g.builder.Reset(0)
	return len(p.groups) - 1
}

// plan validates recs, places each on its partition and encodes it into
// its partition's batch; it writes nothing.
func (b *Broker) plan(plan *publishPlan, recs []*Record) error {
	plan.reset(len(recs))
	clock := callClock{now: b.opts.Now}
	// Records usually come in runs for one topic: look the topic up once
	// per run, and the partition's group only when the partition changes.
	var (
		lastName  string
		lastTopic *topic
		parts     []*log.Log // lastTopic's partitions
		lastPart  *log.Log
		g         *publishGroup
	)
	for i, r := range recs {
		if r == nil {
			return fmt.Errorf("%w: record %d is nil", ErrInvalidRecord, i)
		}
		t := lastTopic
		if t == nil || r.Topic != lastName {
			var err error
			if t, err = b.topicForWrite(r.Topic); err != nil {
				return err
			}
			lastName, lastTopic, parts = r.Topic, t, t.partitions()
		}
		partition, err := b.place(t, r, len(parts), plan.sticky)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if p := parts[partition]; p != lastPart {
			n, ok := plan.index[p]
			if !ok {
				n = plan.group(t, p, partition)
				plan.index[p] = n
			}
			lastPart, g = p, &plan.groups[n]
		}
		ts, size, ok := t.quickAccept(r, &clock, g.limit, g.keyed)
		if !ok {
			var err error
			if ts, size, err = t.accept(r, &clock, g.limit); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
		}
		if size > g.maxRecord {
			g.oversize = true // only where the batch is compressed
		}
		plan.timestamps[i] = ts
		g.add(i)
		g.builder.Add(ts, r.Key, r.Value, r.Headers)
	}
	// Each partition's records go in one atomic batch, which must fit the
	// batch limit: check (and compress) them all before anything is
	// written.
	for i := range plan.groups {
		g := &plan.groups[i]
		if size, limit := g.builder.Len(), g.topic.config().batchLimit(g.codec); size > limit {
			return fmt.Errorf("%w: the call's records for %s make a %d-byte batch, over the %d a batch may hold; publish them in smaller calls",
				ErrRecordTooLarge, TopicPartition{Topic: g.topic.name, Partition: g.partition}, size, limit)
		}
		// A batch of one is checked as stored by compress; in one of
		// several, a record over MaxRecordBytes is checked alone.
		if g.oversize && g.builder.Count() > 1 {
			for n := range g.builder.Count() {
				i := g.record(n)
				if recs[i].encodedSize() <= g.maxRecord {
					continue
				}
				if err := b.checkAlone(g.topic, recs[i], plan.timestamps[i], g.codec, g.maxRecord); err != nil {
					return fmt.Errorf("record %d: %w", i, err)
				}
			}
		}
		var err error
		if g.stored, g.compressed, err = g.topic.compress(g.builder.Finish(), g.codec, g.compressed, g.maxRecord); err != nil {
			if g.builder.Count() == 1 {
				return fmt.Errorf("record %d: %w", g.record(0), err)
			}
			return fmt.Errorf("%s: %w", TopicPartition{Topic: g.topic.name, Partition: g.partition}, err)
		}
	}
	return nil
}
