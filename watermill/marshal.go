package embedwatermill

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/embedstream/stream"
)

// UUIDHeader is the record header that carries the message UUID; it is the
// one Watermill's Kafka Pub/Sub uses, so that both read each other's
// records. Metadata may not use it (stream.ErrInvalidArgument).
const UUIDHeader = "_watermill_message_uuid"

// PartitionKeyFunc returns the record key of msg published to topic: the
// key picks the partition, so messages with one key stay in order. The
// empty string is a key too (all such messages share a partition), as for
// Kafka's producers.
type PartitionKeyFunc func(topic string, msg *message.Message) (string, error)

// KeyFromMetadata returns a PartitionKeyFunc that takes the key from the
// metadata field, so the publisher decides ordering per message (a message
// without the field has the empty key).
func KeyFromMetadata(field string) PartitionKeyFunc {
	return func(_ string, msg *message.Message) (string, error) {
		return msg.Metadata.Get(field), nil
	}
}

// marshal makes the record of msg: payload as value, UUID and metadata as
// headers, the key from partitionKey (nil: no key).
func marshal(topic string, msg *message.Message, partitionKey PartitionKeyFunc) (*stream.Record, error) {
	if _, ok := msg.Metadata[UUIDHeader]; ok {
		return nil, fmt.Errorf("%w: metadata %q is reserved for the message UUID", stream.ErrInvalidArgument, UUIDHeader)
	}
	r := &stream.Record{Topic: topic, Value: msg.Payload, Headers: make([]stream.Header, 0, 1+len(msg.Metadata))}
	r.Headers = append(r.Headers, stream.Header{Key: UUIDHeader, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		r.Headers = append(r.Headers, stream.Header{Key: k, Value: []byte(v)})
	}
	if partitionKey != nil {
		key, err := partitionKey(topic, msg)
		if err != nil {
			return nil, fmt.Errorf("embedwatermill: partition key of message %s: %w", msg.UUID, err)
		}
		r.Key = []byte(key) // non-nil even when empty: a key
	}
	return r, nil
}

// delivery is a received record, copied out of the log (a Poll's records
// are valid only until the next Poll): each delivery attempt makes a fresh
// message of it.
type delivery struct {
	uuid     string
	payload  []byte
	metadata message.Metadata
	origin   Origin
}

// unmarshal copies r into a delivery.
func unmarshal(r *stream.Record) delivery {
	d := delivery{
		payload:  clone(r.Value),
		metadata: make(message.Metadata, len(r.Headers)),
		origin: Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp, Key: clone(r.Key)},
	}
	for _, h := range r.Headers {
		if h.Key == UUIDHeader {
			d.uuid = string(h.Value)
		} else {
			d.metadata[h.Key] = string(h.Value)
		}
	}
	return d
}

// clone copies b, keeping nil nil.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// message returns a new message of d, with its own metadata map (a handler
// may change it) and ctx as its context.
func (d *delivery) message(ctx context.Context) *message.Message {
	msg := message.NewMessage(d.uuid, d.payload)
	for k, v := range d.metadata {
		msg.Metadata[k] = v
	}
	msg.SetContext(context.WithValue(ctx, originKey{}, d.origin))
	return msg
}

// Origin is where a received message was read: its record's place in the
// log. OriginFromContext returns it from the message's context.
type Origin struct {
	Topic     string    // the topic subscribed to
	Partition int32     // the record's partition
	Offset    int64     // the record's offset in it (an Ack commits Offset+1)
	Timestamp time.Time // the record's timestamp (its publish time, or the append time)
	Key       []byte    // the record key (nil: the record had none)
}

type originKey struct{}

// OriginFromContext returns the Origin of a message a Subscriber delivered,
// from msg.Context() (ok false for any other context): for logging, or for
// handlers that deduplicate by partition and offset.
func OriginFromContext(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}
