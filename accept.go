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

// accept checks r against topic t's rules and returns the timestamp (ms)
// it is written with and the bytes it may take in a batch. A record without
// a timestamp gets the clock's. Its own timestamp must not be negative,
// even where LogAppendTime replaces it (as Kafka's producer refuses it),
// and must lie within the topic's MaxTimestampAhead and MaxTimestampBehind
// of the clock.
func (t *topic) accept(r *Record, clock *callClock) (ts int64, size int, err error) {
	if r.Timestamp.IsZero() {
		ts = clock.millis()
	} else {
		ts = r.Timestamp.UnixMilli()
		switch {
		case ts < 0:
			return 0, 0, fmt.Errorf("%w: negative timestamp %v", ErrInvalidRecord, r.Timestamp)
		case t.cfg.LogAppendTime:
			ts = clock.millis()
		case t.aheadMS >= 0 || t.behindMS >= 0:
			now := clock.millis()
			if t.aheadMS >= 0 && ts-now > t.aheadMS || t.behindMS >= 0 && now-ts > t.behindMS {
				return 0, 0, t.timestampErr(ts, now)
			}
		}
	}
	if size = r.encodedSize(); size > t.cfg.MaxRecordBytes {
		return 0, 0, t.tooLarge(size)
	}
	return ts, size, nil
}

// timestampErr says why ts, a record's own timestamp, is outside the
// topic's range around now (both ms).
func (t *topic) timestampErr(ts, now int64) error {
	if ts > now {
		return fmt.Errorf("%w: timestamp %v is more than %v ahead of the broker's clock (MaxTimestampAhead)",
			ErrInvalidRecord, time.UnixMilli(ts).UTC(), t.cfg.MaxTimestampAhead)
	}
	return fmt.Errorf("%w: timestamp %v is more than %v behind the broker's clock (MaxTimestampBehind)",
		ErrInvalidRecord, time.UnixMilli(ts).UTC(), t.cfg.MaxTimestampBehind)
}

func (t *topic) tooLarge(size int) error {
	return fmt.Errorf("%w: %d bytes, topic %q allows %d", ErrRecordTooLarge, size, t.name, t.cfg.MaxRecordBytes)
}

// choose returns the partition r names or its partitioner picks among n,
// or AnyPartition if neither has a preference, for the caller's sticky
// placement. An explicit partition always wins (Kafka's rule).
func (t *topic) choose(r *Record, p Partitioner, n int) (int32, error) {
	part := r.Partition
	if part == AnyPartition {
		if part = p.Partition(r, n); part == AnyPartition {
			return AnyPartition, nil
		}
	}
	if part < 0 || int(part) >= n {
		return 0, t.noPartition(part, n)
	}
	return part, nil
}

// noPartition is the error for a partition number t lacks.
func (t *topic) noPartition(p int32, n int) error {
	return fmt.Errorf("%w: topic %q has no partition %d (it has %d)", ErrInvalidPartition, t.name, p, n)
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
	logAppend bool      // the batch is stamped with its append time:
	appended  time.Time // that time, every record's
}

func newStamp(partition int32, base int64, written batch.Batch) stamp {
	s := stamp{partition: partition, base: base}
	if written.Attributes()&batch.AttrLogAppendTime != 0 {
		s.logAppend, s.appended = true, time.UnixMilli(written.MaxTimestamp())
	}
	return s
}

// fill fills in r, the batch's nth record, accepted with timestamp ts (ms).
func (s *stamp) fill(r *Record, n int, ts int64) {
	r.Partition, r.Offset = s.partition, s.base+int64(n)
	if s.logAppend {
		r.Timestamp = s.appended
		return
	}
	r.Timestamp = time.UnixMilli(ts)
}
