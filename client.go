package stream

import (
	"context"
	"sync"
	"time"
)

// Client is the part of the API that application code can be written
// against to run unchanged on the embedded Broker (Broker.Client) or on an
// Apache Kafka cluster (the Client of this repository's kafka module, built
// on franz-go). Swap the constructor, keep the code.
//
// What holds on both backends: per-partition order and offsets, keyed
// placement (use KafkaPartitioner on the embedded side to match a cluster's
// default partitioner; the partitioner places every record, and
// Record.Partition counts only under a manual partitioner), consumer groups
// that split partitions and hand them over with OnRevoked before
// OnAssigned, committed offsets as the next offset to read, reset policies.
// What differs: latency (microseconds in-process, a network round trip on
// a cluster), durability (the embedded SyncPolicy versus the cluster's acks
// and replication), and what is not part of Client at all (transactions,
// the embedded-only Stats, Seek by time).
type Client interface {
	// CreateTopic creates a topic (ErrTopicExists if it exists).
	CreateTopic(ctx context.Context, name string, cfg TopicConfig) error
	// DeleteTopic deletes a topic and its records.
	DeleteTopic(ctx context.Context, name string) error
	// AlterTopic changes an existing topic's config (kafka-configs.sh
	// --alter): change edits the current config, as Broker.AlterTopic
	// describes; Partitions and Compact cannot change (ErrInvalidConfig).
	AlterTopic(ctx context.Context, name string, change func(*TopicConfig)) error
	// DeleteRecords deletes a partition's records before offset before
	// (Kafka's deleteRecords) and returns the new log start offset; before
	// past the end is ErrOffsetOutOfRange.
	DeleteRecords(ctx context.Context, topic string, partition int32, before int64) (int64, error)
	// Publish appends records and waits until they are acknowledged, filling
	// in Partition, Offset and Timestamp. The backend's partitioner places
	// each record (Record.Partition is honoured only by a manual one).
	Publish(ctx context.Context, recs ...*Record) error
	// PublishAsync queues a record for batching; done runs once, with the
	// record's outcome, in offset order per partition.
	PublishAsync(ctx context.Context, r *Record, done func(*Record, error))
	// Flush waits for every record queued by PublishAsync before it.
	Flush(ctx context.Context) error
	// Subscribe joins a consumer group.
	Subscribe(group string, topics []string, opts *GroupOptions) (GroupConsumer, error)
	// ReadPartition reads one partition without a group, from an offset
	// (OffsetEarliest, OffsetLatest, AtOffset) up to the end as it is now
	// (io.EOF then).
	ReadPartition(ctx context.Context, topic string, partition int32, from Offset) (PartitionReader, error)
	// Close flushes and releases the client (the embedded client closes its
	// Broker).
	Close() error
}

// GroupOptions are the consumer settings both backends honour.
type GroupOptions struct {
	// Reset: where to start without a committed offset. Default ResetLatest.
	Reset OffsetReset
	// AutoCommit commits returned positions periodically, before
	// revocation and on Close.
	AutoCommit bool
	// MaxPollRecords caps a Poll. Default 500.
	MaxPollRecords int
	// Balancer is the assignor: RangeBalancer (default), RoundRobinBalancer,
	// StickyBalancer or CooperativeStickyBalancer (their Kafka names map to
	// franz-go's balancers on a cluster).
	Balancer Balancer
	// InstanceID makes the member static (group.instance.id).
	InstanceID string
	// OnAssigned, OnRevoked and OnLost run on the polling goroutine; commit
	// in OnRevoked through the GroupConsumer that Subscribe returned.
	OnAssigned, OnRevoked, OnLost func(parts []TopicPartition)
}

// GroupConsumer is a consumer group member; *Consumer implements it.
type GroupConsumer interface {
	Poll(ctx context.Context) ([]*Record, error)
	Commit(ctx context.Context) error
	CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error
	Committed(ctx context.Context, parts ...TopicPartition) (map[TopicPartition]int64, error)
	Seek(tp TopicPartition, offset int64) error
	Assignment() []TopicPartition
	// EnforceRebalance asks the group to rebalance; it runs in the
	// members' next Polls.
	EnforceRebalance() error
	Close() error
}

// PartitionReader reads one partition in order; *Reader implements it.
type PartitionReader interface {
	Next(ctx context.Context) (*Record, error)
	Close() error
}

var (
	_ GroupConsumer   = (*Consumer)(nil)
	_ PartitionReader = (*Reader)(nil)
	_ Client          = (*embeddedClient)(nil)
)

// Client returns the broker as a Client. Its Close closes the broker.
func (b *Broker) Client() Client { return &embeddedClient{b: b} }

// embeddedClient adapts a Broker to Client; PublishAsync goes through one
// lazily made Producer.
type embeddedClient struct {
	b    *Broker
	once sync.Once
	p    *Producer
	err  error // NewProducer's, on a closed broker
}

func (c *embeddedClient) CreateTopic(_ context.Context, name string, cfg TopicConfig) error {
	return c.b.CreateTopic(name, cfg)
}

func (c *embeddedClient) DeleteTopic(_ context.Context, name string) error {
	return c.b.DeleteTopic(name)
}

func (c *embeddedClient) AlterTopic(_ context.Context, name string, change func(*TopicConfig)) error {
	return c.b.AlterTopic(name, change)
}

func (c *embeddedClient) DeleteRecords(_ context.Context, topic string, partition int32, before int64) (int64, error) {
	return c.b.DeleteRecords(topic, partition, before)
}

func (c *embeddedClient) Publish(ctx context.Context, recs ...*Record) error {
	return c.b.Publish(ctx, recs...)
}

func (c *embeddedClient) producer() (*Producer, error) {
	// The broker's partitioner, so PublishAsync places keys as Publish does
	// (with KafkaPartitioner: as a Kafka cluster does).
	c.once.Do(func() {
		c.p, c.err = c.b.NewProducer(&ProducerOptions{Linger: time.Millisecond, Partitioner: c.b.opts.Partitioner})
	})
	return c.p, c.err
}

func (c *embeddedClient) PublishAsync(ctx context.Context, r *Record, done func(*Record, error)) {
	p, err := c.producer()
	if err != nil {
		if done != nil {
			done(r, err)
		}
		return
	}
	p.Publish(ctx, r, done)
}

func (c *embeddedClient) Flush(ctx context.Context) error {
	p, err := c.producer()
	if err != nil {
		return err
	}
	return p.Flush(ctx)
}

func (c *embeddedClient) Subscribe(group string, topics []string, opts *GroupOptions) (GroupConsumer, error) {
	var o GroupOptions
	if opts != nil {
		o = *opts
	}
	co := &ConsumerOptions{
		Reset: o.Reset, AutoCommit: o.AutoCommit, MaxPollRecords: o.MaxPollRecords,
		Balancer: o.Balancer, InstanceID: o.InstanceID,
	}
	if f := o.OnAssigned; f != nil {
		co.OnAssigned = func(_ *Consumer, parts []TopicPartition) { f(parts) }
	}
	if f := o.OnRevoked; f != nil {
		co.OnRevoked = func(_ *Consumer, parts []TopicPartition) { f(parts) }
	}
	if f := o.OnLost; f != nil {
		co.OnLost = func(_ *Consumer, parts []TopicPartition) { f(parts) }
	}
	c2, err := c.b.Subscribe(group, topics, co)
	if err != nil {
		return nil, err
	}
	return c2, nil
}

func (c *embeddedClient) ReadPartition(_ context.Context, topic string, partition int32, from Offset) (PartitionReader, error) {
	r, err := c.b.NewReader(topic, partition, from, &ReaderOptions{StopAtEnd: true})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c *embeddedClient) Close() error { return c.b.Close() }
