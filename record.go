package stream

import (
	"time"

	"github.com/embedstream/stream/batch"
)

// Header is a record header: an ordered key/value pair; keys may repeat and
// a nil Value is Kafka's null. Order and duplicates reach consumers unchanged.
type Header = batch.Header

// Record is one message of a topic partition.
//
// A Record returned by a Reader or Consumer aliases the memory-mapped log
// (or, from a compressed batch, the buffer the reader decompressed it
// into): Key, Value and header values are valid only until the next call
// to Next or Poll. Clone what you keep.
type Record struct {
	// Topic is the record's topic.
	Topic string
	// Partition is the partition, filled in by Publish and by reads. On
	// Publish the partitioner places the record (by Key, by default) and
	// Partition is ignored, unless the partitioner is ManualPartitioner:
	// then it names the partition, and AnyPartition leaves the choice to
	// sticky placement.
	Partition int32
	// Offset is the record's position in its partition, set by Publish and
	// by reads.
	Offset int64
	// Key decides the partition for the default partitioners. Nil is
	// "no key"; an empty, non-nil key is a key.
	Key []byte
	// Value is the payload. Nil (Kafka's null, a tombstone) and empty are
	// kept distinct.
	Value []byte
	// Headers are ordered key/value pairs.
	Headers []Header
	// Timestamp is the record's time, with millisecond precision. Zero on
	// Publish means now; a topic with LogAppendTime replaces it with the
	// append time.
	Timestamp time.Time
}

// Clone returns a deep copy of r that stays valid after the next Poll or
// Next.
func (r *Record) Clone() *Record {
	c := *r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	if r.Headers != nil {
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = Header{Key: h.Key, Value: cloneBytes(h.Value)}
		}
	}
	return &c
}

// cloneBytes copies b, keeping nil and empty distinct.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// encodedSize bounds the bytes r takes in a batch, as Kafka's producer
// estimates it to enforce max.request.size.
func (r *Record) encodedSize() int {
	n := len(r.Key) + len(r.Value) + batch.MaxRecordOverhead(len(r.Headers))
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// fromLog fills r from a decoded log record; slices alias the log.
func (r *Record) fromLog(topic string, partition int32, lr *batch.Record) {
	r.Topic = topic
	r.Partition = partition
	r.Offset = lr.Offset
	r.Key = lr.Key
	r.Value = lr.Value
	r.Headers = lr.Headers
	r.Timestamp = time.UnixMilli(lr.Timestamp)
}
