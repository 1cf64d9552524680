package kafka

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ToKgo converts a record to franz-go's, for producing. Key, Value and
// header values are shared, not copied: nil stays nil (Kafka's null) and an
// empty slice stays empty. A zero Timestamp is left zero, for franz-go to
// stamp with the time of producing. Partition is copied as it is; only the
// Client's partitioner knows whether it is explicit (see Client.Publish).
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

// explicitKey marks, in a kgo.Record's Context, a record whose Partition
// was set by the caller (not stream.AnyPartition).
type explicitKey struct{}

// explicit is what the partitioner reads from an explicitly placed record,
// and what it leaves for the promise: whether the partition was valid.
type explicit struct {
	invalid atomic.Bool
}

func markExplicit(ctx context.Context, kr *kgo.Record) *explicit {
	e := &explicit{}
	if ctx == nil {
		ctx = context.Background()
	}
	kr.Context = context.WithValue(ctx, explicitKey{}, e)
	return e
}

func explicitOf(kr *kgo.Record) *explicit {
	if kr.Context == nil {
		return nil
	}
	e, _ := kr.Context.Value(explicitKey{}).(*explicit)
	return e
}

// partitioner honours an explicit Record.Partition and leaves the rest to
// base (by default franz-go's StickyKeyPartitioner with Kafka's murmur2
// hasher: keyed records land where the Java client and
// stream.KafkaPartitioner put them, keyless ones stick to a partition per
// batch).
type partitioner struct{ base kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{base: p.base.ForTopic(topic)}
}

type topicPartitioner struct{ base kgo.TopicPartitioner }

func (t *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	if explicitOf(r) != nil {
		return true
	}
	return t.base.RequiresConsistency(r)
}

func (t *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if e := explicitOf(r); e != nil {
		if int(r.Partition) >= n {
			e.invalid.Store(true)
			return -1 // kgo fails the record; the promise reports ErrInvalidPartition
		}
		return int(r.Partition)
	}
	return t.base.Partition(r, n)
}

// OnNewBatch forwards to a base partitioner that sticks to a partition per
// batch.
func (t *topicPartitioner) OnNewBatch() {
	if nb, ok := t.base.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
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
	if r.Partition < stream.AnyPartition {
		return errorf(stream.ErrInvalidPartition, "partition %d of %q", r.Partition, r.Topic)
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
