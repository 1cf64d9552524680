package stream

import (
	"bytes"
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
// Next: two allocations, the Record and one buffer its key, value and
// header values share (three with headers). To keep many records, an Arena
// copies them for a fraction of an allocation each.
func (r *Record) Clone() *Record {
	c := *r
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Value)
	}
	buf := make([]byte, 0, n)
	c.Key, buf = carve(buf, r.Key)
	c.Value, buf = carve(buf, r.Value)
	if r.Headers != nil {
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i].Key = h.Key
			c.Headers[i].Value, buf = carve(buf, h.Value)
		}
	}
	return &c
}

// carve copies b to the end of buf, which has room for it, and returns the
// copy, capped so that appending to it cannot overwrite what follows, and
// buf. nil stays nil and empty stays empty.
func carve(buf, b []byte) (cp, rest []byte) {
	if b == nil {
		return nil, buf
	}
	if len(b) == 0 {
		return []byte{}, buf // not buf[n:n]: buf may be nil
	}
	n := len(buf)
	buf = append(buf, b...)
	return buf[n:len(buf):len(buf)], buf
}

// Arena copies records into blocks of memory it allocates as they fill,
// for a handler that keeps the records it reads: a copy costs a fraction
// of an allocation, where Record.Clone costs two. A record an Arena copied
// stays valid while it is referenced, and keeps its blocks (64 KiB of
// bytes, 256 records) in memory as long as it does: an Arena suits records
// kept and dropped together (a batch, a window, a test's expectations).
// Values over 8 KiB get a buffer of their own. The zero Arena is ready to
// use; it is not safe for concurrent use.
type Arena struct {
	recs    []Record
	bytes   []byte
	headers []Header
}

const (
	arenaRecords = 256
	arenaBytes   = 64 << 10
	arenaHeaders = 256
)

// Clone returns a deep copy of r, as Record.Clone, in the arena's memory.
func (a *Arena) Clone(r *Record) *Record {
	if len(a.recs) == 0 {
		a.recs = make([]Record, arenaRecords)
	}
	c := &a.recs[0]
	a.recs = a.recs[1:]
	*c = *r
	c.Key = a.copy(r.Key)
	c.Value = a.copy(r.Value)
	if r.Headers != nil {
		switch n := len(r.Headers); {
		case n == 0:
			c.Headers = []Header{}
		case n > arenaHeaders/8:
			c.Headers = make([]Header, n)
		default:
			if cap(a.headers)-len(a.headers) < n {
				a.headers = make([]Header, 0, arenaHeaders)
			}
			at := len(a.headers)
			a.headers = a.headers[:at+n]
			c.Headers = a.headers[at : at+n : at+n]
		}
		for i, h := range r.Headers {
			c.Headers[i] = Header{Key: h.Key, Value: a.copy(h.Value)}
		}
	}
	return c
}

// copy returns a copy of b in the arena's memory (a buffer of its own if
// large).
func (a *Arena) copy(b []byte) []byte {
	switch {
	case b == nil:
		return nil
	case len(b) > arenaBytes/8:
		return bytes.Clone(b)
	case cap(a.bytes)-len(a.bytes) < len(b):
		a.bytes = make([]byte, 0, arenaBytes)
	}
	cp, rest := carve(a.bytes, b)
	a.bytes = rest
	return cp
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
