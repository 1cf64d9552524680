package stream

import (
	"errors"
	"fmt"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/segment"
)

// The batch seam: record batches in Kafka's format in and out of a
// partition as they are, for a Kafka wire-protocol front end (the listener
// module): Produce appends what a producer sent (AppendBatches), Fetch
// serves whole batches from the mapped segments (ReadBatches) and waits on
// NotifyAppend, InitProducerId hands out producer IDs (InitProducerID).

// AppendResult is what AppendBatches wrote.
type AppendResult struct {
	BaseOffset     int64     // offset of the first record appended; for a duplicate, the original's
	LogAppendTime  time.Time // the batches' append time if the topic stamps LogAppendTime, else zero
	LogStartOffset int64
	Duplicate      bool // an idempotent producer's retry of batches already stored: nothing was written
}

// AppendBatches appends record batches in Kafka's format (magic 2), as a
// Kafka producer sent them (a Produce request's records for one
// partition): as Kafka's broker does since Produce v3, exactly one batch.
// It goes through the accept path of Publish: the topic must exist
// (ErrTopicNotFound, unless Options.AutoCreateTopics), the partition too
// (ErrInvalidPartition), the broker be writable (ErrReadOnly, ErrClosed).
// The batch is checked whole before anything is written: framing, magic
// and CRC (wrapping ErrCorrupt); a record count matching its offsets, no
// control batch, sane producer fields (ErrInvalidRecord); on a compacted
// topic, a key on every record (a *RecordError listing those without,
// wrapping ErrInvalidRecord, as Kafka's INVALID_RECORD record errors);
// a codec Kafka defines (ErrUnsupported); the topic's MaxRecordBytes and
// batch size (ErrRecordTooLarge, as TopicConfig.MaxRecordBytes describes;
// a batch of several records is refused only for a record that is too
// large alone); record timestamps within MaxTimestampAhead and
// MaxTimestampBehind (ErrInvalidRecord).
//
// The batch is stored as sent, records not re-encoded, with its base
// offset assigned by the log and its partition leader epoch set to 0; a
// LogAppendTime topic stamps it (attribute bit 3 and max timestamp, as
// Kafka does); a topic whose Compression names a codec other than the
// batch's stores it recompressed with that codec. These header fields are
// rewritten in place in batches, which the caller must not reuse.
//
// A batch with a producer ID (an idempotent producer's, see
// InitProducerID) is checked against what the partition remembers of that
// producer (its epoch and last five batches, rebuilt from the log after a
// restart, forgotten a day after its last batch as Kafka's
// producer.id.expiration.ms): a retry of one of those batches is not
// written again and gets the original's offset with Duplicate set; a gap
// in its sequence fails with ErrOutOfOrderSequence, an older epoch with
// ErrInvalidProducerEpoch.
//
// A transactional batch (attribute bit 4) must come from a producer whose
// transaction is open and added the partition (InitTransactions,
// AddTxnPartitions): ErrTxnState otherwise, ErrFenced from an instance a
// newer one fenced. Its records stay hidden from read_committed readers
// until EndTxn.
//
// It returns once the batch is appended, and under SyncAlways once it is
// durable.
func (b *Broker) AppendBatches(topic string, partition int32, batches []byte) (AppendResult, error) {
	t, err := b.topicForWrite(topic)
	if err != nil {
		return AppendResult{}, err
	}
	part, err := t.partition(partition)
	if err != nil {
		return AppendResult{}, err
	}
	in, err := batch.Parse(batches)
	if err != nil {
		return AppendResult{}, err
	}
	if len(in) != len(batches) {
		return AppendResult{}, fmt.Errorf("%w: %d bytes after the batch: a produce request holds one batch per partition", ErrInvalidRecord, len(batches)-len(in))
	}
	scratch := compressBufs.Get().(*[]byte)
	defer putCompressBuf(scratch)
	stored, err := b.acceptBatch(t, partition, in, scratch)
	if err != nil {
		return AppendResult{}, err
	}
	stored.SetPartitionLeaderEpoch(0)
	var tp *txnPart
	if stored.IsTransactional() {
		// Held through the append: the transaction cannot end between the
		// check and the batch, which would then open a transaction nobody
		// ends.
		var e *txnEntry
		if e, tp, err = b.txns.txnAppendCheck(stored.ProducerID(), stored.ProducerEpoch(), part); err != nil {
			return AppendResult{}, err
		}
		defer e.mu.Unlock()
	}
	res, err := part.AppendProduced(stored)
	if err != nil {
		return AppendResult{}, t.writeErr(err)
	}
	if tp != nil {
		tp.last = max(tp.last, res.End)
	}
	out := AppendResult{BaseOffset: res.Base, LogStartOffset: res.Start, Duplicate: res.Duplicate}
	if res.AppendTime >= 0 {
		out.LogAppendTime = time.UnixMilli(res.AppendTime)
	}
	return out, nil
}

// acceptBatch checks in, a batch whose framing and CRC passed, against
// topic t's rules, and returns it as the topic stores it: in itself, or
// recompressed into scratch. partition is where it goes, for messages.
func (b *Broker) acceptBatch(t *topic, partition int32, in batch.Batch, scratch *[]byte) (batch.Batch, error) {
	c := t.config()
	n := in.NumRecords()
	switch attrs := in.Attributes(); {
	case n <= 0 || int64(n)-1 != int64(in.LastOffsetDelta()):
		return nil, fmt.Errorf("%w: a batch of %d records with last offset delta %d", ErrInvalidRecord, n, in.LastOffsetDelta())
	case attrs&batch.AttrControl != 0:
		return nil, fmt.Errorf("%w: a control batch from a producer", ErrInvalidRecord)
	case attrs&batch.AttrTransactional != 0 && in.ProducerID() < 0:
		return nil, fmt.Errorf("%w: a transactional batch without a producer ID", ErrInvalidRecord)
	case !in.Codec().Valid():
		return nil, fmt.Errorf("%w: compression codec %d", ErrUnsupported, int8(in.Codec()))
	}
	if pid := in.ProducerID(); pid < -1 || pid >= 0 && (in.ProducerEpoch() < 0 || in.BaseSequence() < 0) {
		return nil, fmt.Errorf("%w: producer ID %d, epoch %d, base sequence %d", ErrInvalidRecord, pid, in.ProducerEpoch(), in.BaseSequence())
	}
	if limit := c.maxBatchBytes(); len(in) > limit {
		return nil, fmt.Errorf("%w: a batch of %d bytes, over the %d a batch of topic %q may hold", ErrRecordTooLarge, len(in), limit, t.name)
	}
	want := in.Codec()
	if c.Compression.Codec != CodecDefault {
		want = c.Compression.Codec.wire()
	}
	checkTimes := !c.LogAppendTime && (c.aheadMS >= 0 || c.behindMS >= 0)
	// The records are decoded only where that is needed: uncompressed
	// (cheap), recompressed (decompressed anyway), to apply
	// MaxTimestampBehind (only the records tell the oldest), where the
	// stored records may hold one over MaxRecordBytes, or on a compacted
	// topic (every record needs a key). A compressed batch kept as sent
	// is otherwise judged by its header, as its CRC vouches for it:
	// readers decode it, and report damage, as for any batch.
	plain := in
	if in.Codec() != batch.None && (want != in.Codec() || checkTimes && c.behindMS >= 0 ||
		len(in)-batch.HeaderSize > c.MaxRecordBytes || c.Cleanup.compacts()) {
		var err error
		if plain, err = batch.Decompress((*scratch)[:0], in); err != nil {
			return nil, err
		}
		*scratch = plain
	}
	stored := in
	if want != in.Codec() {
		if want == batch.None {
			stored = plain
		} else {
			// Into scratch, after plain if plain is there: never into
			// the spare capacity of in, which may be the caller's.
			dst := (*scratch)[:0]
			if plain.Codec() == batch.None && &plain[0] != &in[0] {
				dst = plain[len(plain):]
			}
			out, err := batch.Compress(dst, plain, want, c.Compression.Level)
			if err != nil {
				return nil, fmt.Errorf("compress with %v: %w", c.Compression, err)
			}
			stored = out
		}
	}
	if plain.Codec() == batch.None {
		if err := b.checkRecords(t, partition, c, plain, stored, checkTimes); err != nil {
			return nil, err
		}
	} else if c.aheadMS >= 0 && checkTimes {
		if ts, now := in.MaxTimestamp(), b.opts.Now().UnixMilli(); ts-now > c.aheadMS {
			return nil, c.timestampErr(ts, now)
		}
	}
	if limit := c.maxBatchBytes(); len(stored) > limit {
		return nil, fmt.Errorf("%w: a batch of %d bytes as stored, over the %d a batch of topic %q may hold", ErrRecordTooLarge, len(stored), limit, t.name)
	}
	return stored, nil
}

// checkRecords walks plain, the batch uncompressed, stored as stored:
// record offsets in sequence, timestamps (checkTimes), the size rule of
// MaxRecordBytes, and keys on a compacted topic (a *RecordError naming
// every record without one, as Kafka's record errors do).
func (b *Broker) checkRecords(t *topic, partition int32, c *topicConf, plain, stored batch.Batch, checkTimes bool) error {
	var now int64
	if checkTimes {
		now = b.opts.Now().UnixMilli()
	}
	keyed := c.Cleanup.compacts()
	var keyless []int
	it := plain.Records()
	var r batch.Record
	i := int64(0)
	for ; it.Next(&r); i++ {
		if r.Offset != plain.BaseOffset()+i {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, r.Offset-plain.BaseOffset())
		}
		if keyed && r.Key == nil {
			keyless = append(keyless, int(i))
		}
		if checkTimes {
			switch ts := r.Timestamp; {
			case ts < 0:
				return fmt.Errorf("%w: record %d has negative timestamp %d", ErrInvalidTimestamp, i, ts)
			case c.aheadMS >= 0 && ts-now > c.aheadMS, c.behindMS >= 0 && now-ts > c.behindMS:
				return c.timestampErr(ts, now)
			}
		}
		if size := batch.RecordSize(r.Timestamp-plain.BaseTimestamp(), i, r.Key, r.Value, r.Headers); size > c.MaxRecordBytes {
			if err := b.checkBig(t, c, plain, stored, &r, size); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if i != int64(plain.NumRecords()) {
		return fmt.Errorf("%w: batch announces %d records, holds %d", ErrInvalidRecord, plain.NumRecords(), i)
	}
	if keyless != nil {
		return &RecordError{Records: keyless, Err: c.keyless(t.name, partition)}
	}
	return nil
}

// checkBig applies the size rule to r, a record of plain over
// MaxRecordBytes: refused if stored uncompressed; stored compressed, if
// its batch (or a batch of its own, for a batch of several) compressed
// takes more than MaxRecordBytes too.
func (b *Broker) checkBig(t *topic, c *topicConf, plain, stored batch.Batch, r *batch.Record, size int) error {
	if stored.Codec() == batch.None {
		return t.tooLarge(size, c.MaxRecordBytes)
	}
	if plain.NumRecords() == 1 {
		return t.checkStored(plain, stored, c.MaxRecordBytes)
	}
	bld := b.builders.Get().(*batch.Builder)
	defer putBuilder(&b.builders, bld)
	bld.Reset(0)
	bld.Add(r.Timestamp, r.Key, r.Value, r.Headers)
	alone := compressBufs.Get().(*[]byte)
	defer putCompressBuf(alone)
	var err error
	_, *alone, err = t.compress(bld.Finish(), codecOf(stored.Codec()).withLevel(c.Compression.Level), *alone, c.MaxRecordBytes)
	return err
}

// withLevel is a Compression of codec c at level.
func (c Codec) withLevel(level int) Compression { return Compression{Codec: c, Level: level} }

// InitProducerID allocates a producer ID, durably (never handed out twice,
// across restarts), with epoch 0, for an idempotent producer's batches
// (AppendBatches). It fails with ErrReadOnly on a read-only broker.
func (b *Broker) InitProducerID() (id int64, epoch int16, err error) {
	if err := b.writable(); err != nil {
		return 0, 0, err
	}
	id, err = b.meta.NextProducerID(b.opts.Now())
	if err != nil {
		return 0, 0, fmt.Errorf("allocate a producer ID: %w", err)
	}
	return id, 0, nil
}

// Batches is whole record batches read from a partition, aliasing its
// mapped segment until Release.
type Batches struct {
	// Data is whole batches laid back to back, in Kafka's format, the
	// first holding the offset asked for (it may start before it). Empty
	// at the high watermark.
	Data           []byte
	HighWatermark  int64 // the partition's high watermark when read
	LogStartOffset int64 // its log start offset when read
	// LastStableOffset is the partition's last stable offset when read
	// (Kafka's LSO, read_committed's bound): at most HighWatermark.
	LastStableOffset int64
	// AbortedTxns, from ReadCommittedBatches only, are the aborted
	// transactions whose records Data may hold: a read_committed reader
	// skips them (batch.AbortFilter), as a Fetch response's aborted
	// transactions tell a Kafka consumer to.
	AbortedTxns []batch.AbortedTxn

	view segment.View
}

// Release unpins the mapped segment: Data must not be used afterwards.
// It may be called more than once.
func (v *Batches) Release() {
	v.view.Release()
	v.Data = nil
}

// maxDamageSkips bounds how many damaged ranges one ReadBatches passes over.
const maxDamageSkips = 64

// ReadBatches returns whole batches of a partition from the one holding
// offset on (Kafka clients skip the records before offset), at least one
// batch and about maxBytes, all below the high watermark: empty Data at
// the high watermark. It fails with ErrTopicNotFound, ErrInvalidPartition,
// or ErrOffsetOutOfRange below the log start or above the high watermark.
// Damaged ranges are passed over (logged and counted in Stats, as a Reader
// does): the batches after them come back, and a Kafka client sees a gap in
// the offsets as after compaction. The bytes are not decoded.
func (b *Broker) ReadBatches(topic string, partition int32, offset int64, maxBytes int) (*Batches, error) {
	return b.readBatches(topic, partition, offset, maxBytes, false)
}

// ReadCommittedBatches is ReadBatches for a read_committed reader (a
// Fetch with isolation level 1): the batches stop at the last stable
// offset (empty Data there), and AbortedTxns lists the aborted
// transactions among them. Control batches and aborted records are in
// Data, as Kafka's broker sends them: the reader skips them.
func (b *Broker) ReadCommittedBatches(topic string, partition int32, offset int64, maxBytes int) (*Batches, error) {
	return b.readBatches(topic, partition, offset, maxBytes, true)
}

func (b *Broker) readBatches(topic string, partition int32, offset int64, maxBytes int, committed bool) (*Batches, error) {
	part, err := b.partitionForRead(topic, partition)
	if err != nil {
		return nil, err
	}
	for skips := 0; ; skips++ {
		info := part.Info()
		var v segment.View
		if committed {
			v, err = part.ReadCommitted(offset, maxBytes)
		} else {
			v, err = part.Read(offset, maxBytes)
		}
		var de *segment.DamageError
		if errors.As(err, &de) && skips < maxDamageSkips && de.Next > offset {
			offset = de.Next
			continue
		}
		if errors.Is(err, ErrOffsetOutOfRange) && skips > 0 {
			// Skipped past the end (damage at the tail): nothing to read.
			return &Batches{HighWatermark: info.End, LogStartOffset: info.Start, LastStableOffset: min(info.End, part.LastStable())}, nil
		}
		if err != nil {
			return nil, corruptError(topic, partition, err)
		}
		hw := max(info.End, lastOffset(v.Data)+1)
		out := &Batches{Data: v.Data, view: v, HighWatermark: hw, LogStartOffset: info.Start, LastStableOffset: min(hw, part.LastStable())}
		if committed && len(v.Data) >= batch.HeaderSize {
			// From the first batch's start: Data may begin before offset.
			if out.AbortedTxns, err = part.AbortedTxns(batch.Batch(v.Data).BaseOffset(), lastOffset(v.Data)+1); err != nil {
				v.Release()
				return nil, err
			}
		}
		var records int64
		for data := v.Data; len(data) >= batch.HeaderSize; data = data[batch.Batch(data).Size():] {
			records += int64(batch.Batch(data).NumRecords())
		}
		part.CountOut(records, int64(len(v.Data)))
		return out, nil
	}
}

// lastOffset is the last offset of data's last batch, or -1.
func lastOffset(data []byte) int64 {
	last := int64(-1)
	for len(data) >= batch.HeaderSize {
		bt := batch.Batch(data)
		size := bt.Size()
		if size < batch.HeaderSize || size > len(data) {
			break // not whole batches: the caller's walk reports it
		}
		last = bt.LastOffset()
		data = data[size:]
	}
	return last
}

// partitionForRead returns a partition's log for a read: no auto-create.
func (b *Broker) partitionForRead(name string, partition int32) (*log.Log, error) {
	if b.down.Load() {
		return nil, ErrClosed
	}
	var t *topic
	if view := b.topicsView.Load(); view != nil {
		t = (*view)[name]
	}
	if t == nil {
		var err error
		if t, err = b.topic(name); err != nil { // the error for the name
			return nil, err
		}
	}
	return t.partition(partition)
}

// NotifyAppend rings bell (capacity 1) when the partition's high watermark
// moves (or it closes), every time until stop, which unregisters it. A ring
// may come for a change the owner has seen already: look again after each.
// Register before looking, so no change falls in between.
func (b *Broker) NotifyAppend(topic string, partition int32, bell chan struct{}) (stop func(), err error) {
	part, err := b.partitionForRead(topic, partition)
	if err != nil {
		return nil, err
	}
	part.Watch(bell)
	return func() { part.Unwatch(bell) }, nil
}
