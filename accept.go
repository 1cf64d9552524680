package stream

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/embedstream/stream/batch"
)

// The accept path: what every record goes through on its way into a log,
// whichever call brought it (Publish, the batching Producer): the topic's
// rules for timestamps and size, the choice of partition, the append, and
// once written its Partition, Offset and Timestamp filled in. The error
// texts are written here once.

// callClock reads the broker's clock at most once per call, and only if a
// record needs it: records of a call share the reading.
type callClock struct {
	now  func() time.Time
	ms   int64
	read bool
}

func (c *callClock) millis() int64 {
	if c.read {
		return c.ms
	}
	return c.readNow()
}

func (c *callClock) readNow() int64 {
	c.ms, c.read = c.now().UnixMilli(), true
	return c.ms
}

// quickAccept is accept for the common case, small enough to be inlined
// into the callers' loops: a record without a timestamp of its own or
// headers, the clock already read for the call, within limit (recordLimit),
// with a key if keyed (the topic is compacted). Where it says no, accept
// decides.
func (t *topic) quickAccept(r *Record, clock *callClock, limit int, keyed bool) (ts int64, size int, ok bool) {
	size = len(r.Key) + len(r.Value) + noHeaderOverhead
	if clock.read && len(r.Headers) == 0 && r.Timestamp == (time.Time{}) && size <= limit && (r.Key != nil || !keyed) {
		return clock.ms, size, true
	}
	return 0, 0, false
}

// accept checks r against topic t's rules and returns the timestamp (ms)
// it is written with and the bytes it may take in a batch. On a compacted
// topic it must have a key (an empty one is a key), as Kafka's broker
// rules. A record without a timestamp gets the clock's. Its own timestamp
// must not be negative, even where LogAppendTime replaces it (as Kafka's
// producer refuses it), and must lie within the topic's MaxTimestampAhead
// and MaxTimestampBehind of the clock. Its encoded size must be within
// limit (recordLimit); one over MaxRecordBytes, possible only where the
// topic stores it compressed, is still to be checked as stored
// (checkStored, checkAlone).
func (t *topic) accept(r *Record, clock *callClock, limit int) (ts int64, size int, err error) {
	c := t.config()
	if r.Key == nil && c.Cleanup.compacts() {
		return 0, 0, c.keyless(t.name, -1)
	}
	if r.Timestamp.IsZero() {
		ts = clock.millis()
	} else {
		ts = r.Timestamp.UnixMilli()
		switch {
		case ts < 0:
			return 0, 0, fmt.Errorf("%w: negative timestamp %v", ErrInvalidRecord, r.Timestamp)
		case c.LogAppendTime:
			ts = clock.millis()
		case c.aheadMS >= 0 || c.behindMS >= 0:
			now := clock.millis()
			if c.aheadMS >= 0 && ts-now > c.aheadMS || c.behindMS >= 0 && now-ts > c.behindMS {
				return 0, 0, c.timestampErr(ts, now)
			}
		}
	}
	if size = r.encodedSize(); size > limit {
		if limit < c.MaxRecordBytes {
			// Stored compressed: past what a compressed batch may hold.
			return 0, 0, fmt.Errorf("%w: %d bytes, over the %d a compressed batch may expand to (batch.MaxUncompressedBytes)",
				ErrRecordTooLarge, size, limit)
		}
		return 0, 0, t.tooLarge(size, limit)
	}
	return ts, size, nil
}

// timestampErr says why ts, a record's own timestamp, is outside the
// topic's range around now (both ms).
func (c *topicConf) timestampErr(ts, now int64) error {
	if ts > now {
		return fmt.Errorf("%w: timestamp %v is more than %v ahead of the broker's clock (MaxTimestampAhead)",
			ErrInvalidTimestamp, time.UnixMilli(ts).UTC(), c.MaxTimestampAhead)
	}
	return fmt.Errorf("%w: timestamp %v is more than %v behind the broker's clock (MaxTimestampBehind)",
		ErrInvalidTimestamp, time.UnixMilli(ts).UTC(), c.MaxTimestampBehind)
}

// keyless is the error for a record without a key on a compacted topic,
// in Kafka's words, with the partition where known (else -1).
func (c *topicConf) keyless(topic string, partition int32) error {
	where := fmt.Sprintf("topic %q", topic)
	if partition >= 0 {
		where = "topic partition " + TopicPartition{Topic: topic, Partition: partition}.String()
	}
	return fmt.Errorf("%w: compacted topic (cleanup.policy=%v) cannot accept message without key in %s", ErrInvalidRecord, c.Cleanup, where)
}

// noHeaderOverhead is Record.encodedSize's overhead for a record without
// headers.
var noHeaderOverhead = batch.MaxRecordOverhead(0)

// tooLarge is the error for a record of size bytes over limit, the topic's
// MaxRecordBytes.
func (t *topic) tooLarge(size, limit int) error {
	return fmt.Errorf("%w: %d bytes, topic %q allows %d", ErrRecordTooLarge, size, t.name, limit)
}

// Compression on the accept path, and the size rule (documented for users
// on TopicConfig.MaxRecordBytes). MaxRecordBytes bounds each record as
// stored, as Kafka's max.message.bytes bounds a batch:
//
//   - stored uncompressed, by its encoded size (Record.encodedSize), as it
//     is accepted;
//   - stored compressed, a record within MaxRecordBytes uncompressed is
//     always accepted (compression never refuses what an uncompressed
//     topic takes); a larger one only if, compressed alone with the codec
//     it is stored with (a batch of one record, which max.message.bytes
//     judges as Kafka does), its records take at most MaxRecordBytes.
//
// The verdict on a record never depends on the records it shares a batch
// with: a batch of one is checked once compressed (checkStored); in a
// Publish batch of several, each record over MaxRecordBytes is compressed
// alone to check it (checkAlone); the Producer gives such a record a batch
// of its own. Besides, the records of a compressed batch together take at
// most batch.MaxUncompressedBytes (what a reader decompresses a batch to at
// most), which bounds each record too (recordLimit, batchLimit), and a
// batch as stored takes at most maxBatchBytes, compressed or not.

// codecFor is the compression a batch its writer compresses with w is
// stored with: the topic's, unless the topic keeps the writer's
// (CodecDefault). Where the codecs agree the writer's level stands: Kafka's
// broker recompresses only a batch of another codec.
func (c *topicConf) codecFor(w Compression) Compression {
	if c.Compression.Codec == CodecDefault || c.Compression.Codec == w.Codec {
		return w
	}
	return c.Compression
}

// recordLimit is the largest record (as Record.encodedSize counts it)
// accepted into a batch stored with cc; compressed, a record over
// MaxRecordBytes still has to pass checkStored or checkAlone.
func (c *topicConf) recordLimit(cc Compression) int {
	if cc.Codec <= CodecNone {
		return c.MaxRecordBytes
	}
	return batch.MaxUncompressedBytes
}

// batchLimit is the largest batch, as built and before compression, that a
// call may make for one partition when stored with cc.
func (c *topicConf) batchLimit(cc Compression) int {
	if cc.Codec <= CodecNone {
		return c.maxBatchBytes()
	}
	return batch.HeaderSize + batch.MaxUncompressedBytes
}

// compress returns b, a batch as a Builder finished it (uncompressed) of
// records accepted under a MaxRecordBytes of maxRecord, as the topic
// stores it when written with cc: as it is if cc is none (accept checked
// its records), else compressed into buf (whose contents are replaced) and
// checked as stored (checkStored). It returns buf, perhaps grown, for
// reuse; the batch returned aliases it or b.
func (t *topic) compress(b batch.Batch, cc Compression, buf []byte, maxRecord int) (batch.Batch, []byte, error) {
	if cc.Codec <= CodecNone {
		return b, buf, nil
	}
	if n := len(b) - batch.HeaderSize; n > batch.MaxUncompressedBytes {
		return nil, buf, fmt.Errorf("%w: a batch of %d records takes %d bytes uncompressed, over the %d a compressed batch may expand to (batch.MaxUncompressedBytes)",
			ErrRecordTooLarge, b.NumRecords(), n, batch.MaxUncompressedBytes)
	}
	out, err := batch.Compress(buf[:0], b, cc.Codec.wire(), cc.Level)
	if err != nil {
		// Not a limit of the records': a codec or level this build does
		// not know (a catalog written by a newer one).
		return nil, buf, fmt.Errorf("compress with %v: %w", cc, err)
	}
	return out, out, t.checkStored(b, out, maxRecord)
}

// checkStored applies the size limits to stored, batch b (uncompressed)
// compressed, b's records accepted under a MaxRecordBytes of maxRecord: a
// batch of one record is refused if the record is over maxRecord both
// uncompressed and compressed; any batch, if it is over maxBatchBytes as
// stored.
func (t *topic) checkStored(b, stored batch.Batch, maxRecord int) error {
	if b.NumRecords() == 1 {
		plain, size := len(b)-batch.HeaderSize, len(stored)-batch.HeaderSize
		if plain > maxRecord && size > maxRecord {
			return fmt.Errorf("%w: %d bytes, %d compressed with %v, topic %q allows %d",
				ErrRecordTooLarge, plain, size, codecOf(stored.Codec()), t.name, maxRecord)
		}
	}
	if limit := t.config().maxBatchBytes(); len(stored) > limit {
		return fmt.Errorf("%w: a batch of %d records takes %d bytes as stored (%v), over the %d a batch of topic %q may hold",
			ErrRecordTooLarge, stored.NumRecords(), len(stored), codecOf(stored.Codec()), limit, t.name)
	}
	return nil
}

// checkAlone applies checkStored to r, accepted with timestamp ts under a
// MaxRecordBytes of maxRecord, as a batch of its own stored with cc: for a
// record over maxRecord in a batch of several (see above). Its buffers are
// pooled.
func (b *Broker) checkAlone(t *topic, r *Record, ts int64, cc Compression, maxRecord int) error {
	bld := b.builders.Get().(*batch.Builder)
	bld.Reset(0)
	bld.Add(ts, r.Key, r.Value, r.Headers)
	scratch := compressBufs.Get().(*[]byte)
	var err error
	_, *scratch, err = t.compress(bld.Finish(), cc, *scratch, maxRecord)
	putCompressBuf(scratch)
	putBuilder(&b.builders, bld)
	return err
}

// compressBufs pools scratch for compressed batches, as *[]byte.
var compressBufs = sync.Pool{New: func() any { return new([]byte) }}

// putCompressBuf returns scratch to compressBufs, unless it grew too large
// to keep.
func putCompressBuf(b *[]byte) {
	if cap(*b) <= maxPooledBatchBytes {
		compressBufs.Put(b)
	}
}

// choose returns the partition p picks for r among n, or AnyPartition if
// it has no preference, for the caller's sticky placement. The partitioner
// always decides: r.Partition counts only where p reads it
// (ManualPartitioner).
func (t *topic) choose(r *Record, p Partitioner, n int) (int32, error) {
	part := p.Partition(r, n)
	if part == AnyPartition {
		return AnyPartition, nil
	}
	if part < 0 || int(part) >= n {
		return 0, t.noPartition(part, n)
	}
	return part, nil
}

// noPartition is the error for a partition number t lacks.
func (t *topic) noPartition(p int32, n int) error {
	return fmt.Errorf("%w: %s: topic %q has %d partitions", ErrInvalidPartition, TopicPartition{Topic: t.name, Partition: p}, t.name, n)
}

// writeErr maps an append error: a log closed under us because the topic
// was deleted reads as ErrTopicNotFound.
func (t *topic) writeErr(err error) error {
	if errors.Is(err, ErrClosed) && t.deleted.Load() {
		return fmt.Errorf("%w: %q (deleted)", ErrTopicNotFound, t.name)
	}
	return err
}

// stamp fills in the records of a written batch: their partition, offsets
// from the batch's base, and timestamps, which under LogAppendTime are the
// batch's append time.
type stamp struct {
	partition int32
	base      int64
	appendTS  int64 // the batch's append time (ms), or -1
	lastMS    int64 // the timestamp last converted to last, or -1
	last      time.Time
}

func newStamp(partition int32, base int64, written batch.Batch) stamp {
	s := stamp{partition: partition, base: base, appendTS: -1, lastMS: -1}
	if written.Attributes()&batch.AttrLogAppendTime != 0 {
		s.appendTS = written.MaxTimestamp()
	}
	return s
}

// fill fills in r, the batch's nth record, accepted with timestamp ts (ms).
// Records of a batch mostly share one timestamp: it is converted once.
func (s *stamp) fill(r *Record, n int, ts int64) {
	if s.appendTS >= 0 {
		ts = s.appendTS
	}
	if ts != s.lastMS {
		s.lastMS, s.last = ts, time.UnixMilli(ts)
	}
	r.Partition, r.Offset, r.Timestamp = s.partition, s.base+int64(n), s.last
}
