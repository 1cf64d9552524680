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
// headers, the clock already read for the call, within limit (recordLimit).
// Where it says no, accept decides.
func (t *topic) quickAccept(r *Record, clock *callClock, limit int) (ts int64, size int, ok bool) {
	size = len(r.Key) + len(r.Value) + noHeaderOverhead
	if clock.read && len(r.Headers) == 0 && r.Timestamp == (time.Time{}) && size <= limit {
		return clock.ms, size, true
	}
	return 0, 0, false
}

// accept checks r against topic t's rules and returns the timestamp (ms)
// it is written with and the bytes it may take in a batch. A record without
// a timestamp gets the clock's. Its own timestamp must not be negative,
// even where LogAppendTime replaces it (as Kafka's producer refuses it),
// and must lie within the topic's MaxTimestampAhead and MaxTimestampBehind
// of the clock. Its encoded size must be within limit (recordLimit).
func (t *topic) accept(r *Record, clock *callClock, limit int) (ts int64, size int, err error) {
	c := t.config()
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
		return 0, 0, t.tooLarge(size, limit)
	}
	return ts, size, nil
}

// timestampErr says why ts, a record's own timestamp, is outside the
// topic's range around now (both ms).
func (c *topicConf) timestampErr(ts, now int64) error {
	if ts > now {
		return fmt.Errorf("%w: timestamp %v is more than %v ahead of the broker's clock (MaxTimestampAhead)",
			ErrInvalidRecord, time.UnixMilli(ts).UTC(), c.MaxTimestampAhead)
	}
	return fmt.Errorf("%w: timestamp %v is more than %v behind the broker's clock (MaxTimestampBehind)",
		ErrInvalidRecord, time.UnixMilli(ts).UTC(), c.MaxTimestampBehind)
}

// noHeaderOverhead is Record.encodedSize's overhead for a record without
// headers.
var noHeaderOverhead = batch.MaxRecordOverhead(0)

// tooLarge is the error for a record of size bytes over limit, the topic's
// MaxRecordBytes.
func (t *topic) tooLarge(size, limit int) error {
	return fmt.Errorf("%w: %d bytes, topic %q allows %d", ErrRecordTooLarge, size, t.name, limit)
}

// Compression on the accept path. MaxRecordBytes applies to a record as
// stored, as Kafka's max.message.bytes does to a batch: uncompressed, to
// each record's encoded size as it is accepted; compressed, to the batch
// once compressed (store), which for a batch of one record is the record
// as stored. A compressed batch of several records, as one Publish call or
// a Producer batch makes, is bounded as an uncompressed one is
// (maxBatchBytes), and its records together by what a compressed batch may
// expand to (batch.MaxUncompressedBytes), which bounds each record too.

// codecFor is the compression a batch its writer compresses with w is
// stored with: the topic's, unless the topic keeps the writer's.
func (c *topicConf) codecFor(w Compression) Compression {
	if c.Compression.Codec != CodecDefault {
		return c.Compression
	}
	return w
}

// recordLimit is the largest record (as Record.encodedSize counts it)
// accepted into a batch stored with cc.
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

// compress returns b, a batch as a Builder finished it (uncompressed), as
// the topic stores it when written with cc: compressed into buf, scratch
// returned (perhaps grown) for reuse, and checked as stored (see above).
func (t *topic) compress(b batch.Batch, cc Compression, buf []byte) (batch.Batch, []byte, error) {
	if cc.Codec <= CodecNone {
		return b, buf, nil
	}
	out, err := batch.Compress(buf[:0], b, cc.Codec.wire(), cc.Level)
	if err != nil {
		// The level was validated: records past what a compressed batch
		// may expand to.
		return nil, buf, fmt.Errorf("%w: %w", ErrRecordTooLarge, err)
	}
	if err := t.checkStored(out); err != nil {
		return nil, out, err
	}
	return out, out, nil
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

// checkStored applies the size limits to a compressed batch as stored.
func (t *topic) checkStored(b batch.Batch) error {
	c := t.config()
	if b.NumRecords() == 1 {
		if size := len(b) - batch.HeaderSize; size > c.MaxRecordBytes {
			return fmt.Errorf("%w: %d bytes as compressed with %v, topic %q allows %d",
				ErrRecordTooLarge, size, codecOf(b.Codec()), t.name, c.MaxRecordBytes)
		}
		return nil
	}
	if limit := c.maxBatchBytes(); len(b) > limit {
		return fmt.Errorf("%w: a batch of %d records takes %d bytes as compressed with %v, over the %d a batch of topic %q may hold",
			ErrRecordTooLarge, b.NumRecords(), len(b), codecOf(b.Codec()), limit, t.name)
	}
	return nil
}

// conform returns b, a batch its writer encoded (compressed or not), as
// the topic stores it: recompressed, through buf as compress uses it, if
// the topic has a codec of its own that b was not written with (Kafka's
// broker does the same), else as it is.
func (t *topic) conform(b batch.Batch, buf []byte) (batch.Batch, []byte, error) {
	cc := t.config().Compression
	if cc.Codec == CodecDefault || cc.Codec.wire() == b.Codec() {
		return b, buf, nil
	}
	plain := b
	if b.Codec() != batch.None {
		var err error
		if plain, err = batch.Decompress(nil, b); err != nil {
			return nil, buf, err
		}
	}
	return t.compress(plain, cc, buf)
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
