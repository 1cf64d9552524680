package kafka

import (
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ToKgo converts a record to franz-go's, for producing. Key, Value and
// header values are shared, not copied: nil stays nil (Kafka's null) and an
// empty slice stays empty. A zero Timestamp is left zero, for franz-go to
// stamp with the time of producing. Partition is copied as it is, for a
// partitioner that reads it (kgo.ManualPartitioner); the others ignore it.
func ToKgo(r *stream.Record) *kgo.Record {
	kr := &kgo.Record{
		Topic:     r.Topic,
		Key:       r.Key,
		Value:     r.Value,
		Timestamp: r.Timestamp,
		Partition: r.Partition,
	}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return kr
}

// FromKgo converts a record franz-go consumed (or produced) to ours: topic,
// partition, offset, key, value, headers (in order, duplicates kept) and
// timestamp (millisecond precision). Slices are shared, not copied; a
// record from franz-go stays valid for as long as it is referenced, so,
// unlike the embedded backend's, records from this package's Poll and Next
// never need Clone.
func FromKgo(kr *kgo.Record) *stream.Record {
	r := &stream.Record{
		Topic:     kr.Topic,
		Partition: kr.Partition,
		Offset:    kr.Offset,
		Key:       kr.Key,
		Value:     kr.Value,
		Timestamp: kr.Timestamp,
	}
	if len(kr.Headers) > 0 {
		r.Headers = make([]stream.Header, len(kr.Headers))
		for i, h := range kr.Headers {
			r.Headers[i] = stream.Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

// partitioner places every record (as kgo does) with base, the Options'
// partitioner, and gives base's answers the stream.Partitioner meanings:
// stream.AnyPartition (what kgo.ManualPartitioner returns for a record left
// at it) is "no preference", placed stickily by fallback; any other number
// outside the topic fails the record, noted in refused so that the promise
// reports stream.ErrInvalidPartition.
type partitioner struct {
	base    kgo.Partitioner
	refused *refusals
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{
		base:     p.base.ForTopic(topic),
		fallback: kgo.StickyPartitioner().ForTopic(topic),
		refused:  p.refused,
	}
}

type topicPartitioner struct {
	base, fallback kgo.TopicPartitioner
	refused        *refusals
}

func (t *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return t.base.RequiresConsistency(r)
}

func (t *topicPartitioner) Partition(r *kgo.Record, n int) int {
	switch p := t.base.Partition(r, n); {
	case p >= 0 && p < n:
		return p
	case p == int(stream.AnyPartition):
		return t.fallback.Partition(r, n)
	default:
		t.refused.add(r, p, n)
		return -1 // kgo fails the record; finish reports ErrInvalidPartition
	}
}

// OnNewBatch moves on the sticky placements, base's if it has one, when kgo
// starts a new batch (KIP-480).
func (t *topicPartitioner) OnNewBatch() {
	if nb, ok := t.base.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
	if nb, ok := t.fallback.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

// refusals are the records the partitioner failed, with the partition it
// was asked for, until finish takes them: the promise only says that
// partitioning failed.
type refusals struct{ m sync.Map } // *kgo.Record -> refusal

type refusal struct{ partition, partitions int }

func (rs *refusals) add(r *kgo.Record, partition, partitions int) {
	rs.m.Store(r, refusal{partition, partitions})
}

// take returns and forgets r's refusal, if it was refused.
func (rs *refusals) take(r *kgo.Record) (refusal, bool) {
	v, ok := rs.m.LoadAndDelete(r)
	if !ok {
		return refusal{}, false
	}
	return v.(refusal), true
}

// validTopic applies Kafka's topic name rules: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func validTopic(name string) error {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return errorf(stream.ErrInvalidTopic, "%q", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errorf(stream.ErrInvalidTopic, "%q", name)
		}
	}
	return nil
}

// validRecord checks what the embedded backend checks before writing
// anything; the cluster checks the rest.
func validRecord(r *stream.Record) error {
	if r == nil {
		return errorf(stream.ErrInvalidRecord, "nil record")
	}
	if err := validTopic(r.Topic); err != nil {
		return err
	}
	if !r.Timestamp.IsZero() && r.Timestamp.UnixMilli() < 0 {
		return errorf(stream.ErrInvalidRecord, "negative timestamp %v", r.Timestamp)
	}
	return nil
}

// offsetKind is a stream.Offset taken apart.
type offsetKind int

const (
	fromEarliest offsetKind = iota
	fromLatest
	fromOffset
	fromTime
)

// parseOffset takes a stream.Offset apart.
func parseOffset(o stream.Offset) (offsetKind, int64, time.Time, error) {
	if n, ok := o.Exact(); ok {
		if n < 0 {
			return 0, 0, time.Time{}, errorf(stream.ErrInvalidArgument, "negative offset %d", n)
		}
		return fromOffset, n, time.Time{}, nil
	}
	if t, ok := o.Time(); ok {
		return fromTime, 0, t, nil
	}
	if o.IsLatest() {
		return fromLatest, 0, time.Time{}, nil
	}
	return fromEarliest, 0, time.Time{}, nil
}
