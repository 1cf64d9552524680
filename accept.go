package stream

import (
	"errors"
	"fmt"
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
// headers, the clock already read for the call, within the size limit.
// Where it says no, accept decides.
func (t *topic) quickAccept(r *Record, clock *callClock) (ts int64, size int, ok bool) {
	size = len(r.Key) + len(r.Value) + noHeaderOverhead
	if clock.read && len(r.Headers) == 0 && r.Timestamp == (time.Time{}) && size <= t.config().MaxRecordBytes {
		return clock.ms, size, true
	}
	return 0, 0, false
}

// accept checks r against topic t's rules and returns the timestamp (ms)
// it is written with and the bytes it may take in a batch. A record without
// a timestamp gets the clock's. Its own timestamp must not be negative,
// even where LogAppendTime replaces it (as Kafka's producer refuses it),
// and must lie within the topic's MaxTimestampAhead and MaxTimestampBehind
// of the clock.
func (t *topic) accept(r *Record, clock *callClock) (ts int64, size int, err error) {
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
	if size = r.encodedSize(); size > c.MaxRecordBytes {
		return 0, 0, t.tooLarge(size, c.MaxRecordBytes)
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
