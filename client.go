package stream

import (
	"context"
	"fmt"
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
// and replication), and what is not part of Client at all (the
// embedded-only Stats, Seek by time).
//
// Transactions (NewTxProducer, NewTxSession) hold on both backends as
// Kafka defines them: a transaction's records, on any partitions, and the
// group offsets staged with it become visible and committed together at
// Commit, or not at all; readers and groups with ReadCommitted never see
// records of open or aborted transactions and stop at the last stable
// offset (the first offset of the oldest open transaction), so an open
// transaction also holds back the records published after it;
// ReadUncommitted (the default) sees everything, aborted records included.
// Commit and abort markers take one offset per partition and are never
// returned. A transactional ID is one producer at a time: a new producer
// or session with the ID fences the older one, whose open transaction is
// aborted and whose later calls fail with ErrFenced. A transaction left
// open past its TxOptions.Timeout is aborted by the broker (the embedded
// broker then answers ErrTxnTimedOut, a cluster ErrFenced: it fences the
// producer to abort). Durability is each backend's own: the embedded
// broker's meta.db decision and SyncPolicy, or the cluster's transaction
// log and replication.
type Client interface {
	// CreateTopic creates a topic (ErrTopicExists if it exists).
	CreateTopic(ctx context.Context, name string, cfg TopicConfig) error
	// DeleteTopic deletes a topic and its records.
	DeleteTopic(ctx context.Context, name string) error
	// AlterTopic changes an existing topic's config (kafka-configs.sh
	// --alter): change edits the current config, as Broker.AlterTopic
	// describes; Partitions cannot change (ErrInvalidConfig).
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
	// (io.EOF then): the high watermark, or under ReadOptions.Isolation
	// ReadCommitted the last stable offset. At most one ReadOptions may be
	// given (ErrInvalidArgument).
	ReadPartition(ctx context.Context, topic string, partition int32, from Offset, opts ...ReadOptions) (PartitionReader, error)
	// NewTxProducer returns the transactional producer of transactional ID
	// id (transactional.id), fencing any earlier holder of the ID, as
	// Broker.NewTxProducer does. opts may be nil.
	NewTxProducer(ctx context.Context, id string, opts *TxOptions) (TxPublisher, error)
	// NewTxSession joins group as a member consuming topics, with
	// transactional ID id for its outputs (fencing any earlier holder), to
	// consume, transform and publish exactly once, as Broker.NewTxSession
	// does. opts configure the member as Subscribe's do, but AutoCommit
	// must be off (ErrInvalidConfig) and it reads ReadCommitted whatever
	// Isolation says; tx configures the transactions. Both may be nil.
	NewTxSession(ctx context.Context, id, group string, topics []string, opts *GroupOptions, tx *TxOptions) (TransactSession, error)
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
	// Isolation is which records of transactions Poll returns
	// (isolation.level): ReadUncommitted, the default, or ReadCommitted.
	Isolation IsolationLevel
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

// ReadOptions configure ReadPartition. The zero value reads
// ReadUncommitted.
type ReadOptions struct {
	// Isolation is which records of transactions the reader returns, and
	// where it ends: ReadUncommitted (the default) up to the high
	// watermark, ReadCommitted up to the last stable offset, skipping
	// aborted records.
	Isolation IsolationLevel
}

// TxPublisher publishes in transactions, one at a time: Client's
// counterpart of *TxProducer, which the embedded backend wraps (a cluster:
// a franz-go client with a transactional ID).
type TxPublisher interface {
	// Begin starts a transaction. It fails with ErrTxnState while the last
	// one is open, ErrClosed after Close.
	Begin() (Transaction, error)
	// Close aborts the open transaction, if any, and releases the
	// producer. It is idempotent.
	Close() error
}

// Transaction is one transaction of a TxPublisher: Publish records and
// stage group offsets, then Commit or Abort. Its records take offsets at
// once but stay hidden from ReadCommitted readers until Commit.
type Transaction interface {
	// Publish appends records in the transaction, filling in Partition,
	// Offset and Timestamp, as Client.Publish does. It fails with ErrFenced
	// once a newer producer took the transactional ID; a failed write
	// leaves the transaction unable to commit (Commit then aborts).
	Publish(ctx context.Context, recs ...*Record) error
	// CommitOffsets stages offsets (the next offset to read, per
	// partition) for group, committed with the transaction and dropped by
	// its abort (Kafka's sendOffsetsToTransaction without group metadata:
	// on a cluster the group must have no live members).
	CommitOffsets(ctx context.Context, group string, offsets map[TopicPartition]int64) error
	// Commit makes the records visible and the offsets committed, all at
	// once. If the transaction cannot commit it is aborted and Commit
	// returns ErrTxnAborted (or ErrFenced if a newer producer took the
	// ID). Either way the transaction is over.
	Commit(ctx context.Context) error
	// Abort ends the transaction without making anything visible; its
	// records stay readable under ReadUncommitted.
	Abort(ctx context.Context) error
}

// TransactSession is a consume-transform-publish loop that runs exactly
// once (franz-go's GroupTransactSession; *TxSession implements it): Poll
// opens a transaction if none is open, Publish publishes the outputs in it,
// End commits them together with the member's positions. A rebalance that
// takes partitions during a transaction makes End abort and rewind to the
// committed offsets, so every input's outputs are committed once.
type TransactSession interface {
	// Poll returns the next records (ReadCommitted), opening a
	// transaction first if none is open.
	Poll(ctx context.Context) ([]*Record, error)
	// Publish publishes records in the open transaction (ErrTxnState if
	// none is open).
	Publish(ctx context.Context, recs ...*Record) error
	// End commits (commit true) or aborts the open transaction, as
	// TxSession.End describes: committed reports whether it committed; an
	// abort rewinds the member to the committed offsets; err is what the
	// session cannot go on from (ErrFenced, ErrClosed).
	End(ctx context.Context, commit bool) (committed bool, err error)
	// Close aborts the open transaction, if any, and leaves the group.
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
	_ TransactSession = (*TxSession)(nil)
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

// consumerOptions maps GroupOptions (nil: the defaults) to the embedded
// Consumer's.
func consumerOptions(opts *GroupOptions) ConsumerOptions {
	var o GroupOptions
	if opts != nil {
		o = *opts
	}
	co := ConsumerOptions{
		Reset: o.Reset, AutoCommit: o.AutoCommit, MaxPollRecords: o.MaxPollRecords,
		Balancer: o.Balancer, InstanceID: o.InstanceID, Isolation: o.Isolation,
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
	return co
}

func (c *embeddedClient) Subscribe(group string, topics []string, opts *GroupOptions) (GroupConsumer, error) {
	co := consumerOptions(opts)
	c2, err := c.b.Subscribe(group, topics, &co)
	if err != nil {
		return nil, err
	}
	return c2, nil
}

// oneReadOptions returns the ReadOptions among opts: the zero value if
// there are none, ErrInvalidArgument if there are several.
func oneReadOptions(opts []ReadOptions) (ReadOptions, error) {
	switch len(opts) {
	case 0:
		return ReadOptions{}, nil
	case 1:
		return opts[0], nil
	}
	return ReadOptions{}, fmt.Errorf("%w: %d ReadOptions, at most one", ErrInvalidArgument, len(opts))
}

func (c *embeddedClient) ReadPartition(_ context.Context, topic string, partition int32, from Offset, opts ...ReadOptions) (PartitionReader, error) {
	o, err := oneReadOptions(opts)
	if err != nil {
		return nil, err
	}
	r, err := c.b.NewReader(topic, partition, from, &ReaderOptions{StopAtEnd: true, Isolation: o.Isolation})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c *embeddedClient) NewTxProducer(ctx context.Context, id string, opts *TxOptions) (TxPublisher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := c.b.NewTxProducer(id, opts)
	if err != nil {
		return nil, err
	}
	return embeddedTxProducer{p}, nil
}

func (c *embeddedClient) NewTxSession(ctx context.Context, id, group string, topics []string, opts *GroupOptions, tx *TxOptions) (TransactSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := TxSessionOptions{Consumer: consumerOptions(opts)}
	if tx != nil {
		o.Tx = *tx
	}
	s, err := c.b.NewTxSession(id, group, topics, &o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// embeddedTxProducer and embeddedTx adapt *TxProducer and *Tx to
// TxPublisher and Transaction: the calls that need no round trip in
// process take a context on a cluster.
type embeddedTxProducer struct{ p *TxProducer }

func (p embeddedTxProducer) Begin() (Transaction, error) {
	tx, err := p.p.Begin()
	if err != nil {
		return nil, err
	}
	return embeddedTx{tx}, nil
}

func (p embeddedTxProducer) Close() error { return p.p.Close() }

type embeddedTx struct{ tx *Tx }

func (t embeddedTx) Publish(ctx context.Context, recs ...*Record) error {
	return t.tx.Publish(ctx, recs...)
}

func (t embeddedTx) CommitOffsets(ctx context.Context, group string, offsets map[TopicPartition]int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.tx.CommitOffsets(group, offsets)
}

func (t embeddedTx) Commit(ctx context.Context) error { return t.tx.Commit(ctx) }

func (t embeddedTx) Abort(context.Context) error { return t.tx.Abort() }

func (c *embeddedClient) Close() error { return c.b.Close() }
