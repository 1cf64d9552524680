// Package kafka is embedstream's stream.Client on an Apache Kafka cluster,
// built on franz-go (kgo for producing and consuming, kadm for admin).
// Application code written against stream.Client runs unchanged on the
// embedded broker (stream.Broker.Client) and on a cluster; only the
// constructor differs:
//
//	b, _ := stream.Open(dir, &stream.Options{Partitioner: stream.KafkaPartitioner{}})
//	var c stream.Client = b.Client()
//	// or
//	c, err := kafka.New(ctx, kafka.Options{Brokers: []string{"localhost:9092"}})
//
// The module's tests run the shared conformance suite
// (github.com/embedstream/stream/conformance) against an in-process cluster
// (franz-go's kfake), so the behaviour below is checked on every change.
//
// # What maps how
//
// Records map field for field both ways (ToKgo, FromKgo): topic, partition,
// offset, key, value, headers (order and repeated keys kept) and timestamp
// (milliseconds). A nil key or value is Kafka's null and an empty one stays
// empty; the same holds for header values.
//
// Placement: Options.Partitioner places every record, as franz-go's and the
// embedded backend's partitioners do; Record.Partition is ignored. The
// default is franz-go's StickyKeyPartitioner with Kafka's murmur2: a keyed
// record lands where the Java client puts it, and where
// stream.KafkaPartitioner puts it on the embedded side; keyless records
// stick to one partition per batch (as the embedded KIP-794 placement
// does). With kgo.ManualPartitioner() (stream.ManualPartitioner on the
// embedded side) a record goes to the partition it names; one left at
// stream.AnyPartition is placed stickily, and a partition the topic lacks
// fails the record with stream.ErrInvalidPartition.
//
// Publish produces and waits for the acknowledgement (franz-go's defaults:
// idempotent, acks from all in-sync replicas); PublishAsync produces with a
// promise that calls done, in offset order per partition; Flush waits for
// every queued record and its callback.
//
// Topics: CreateTopic maps TopicConfig to topic settings (Partitions,
// retention.ms, retention.bytes, segment.bytes, segment.ms,
// max.message.bytes, message.timestamp.type, message.timestamp.after.max.ms,
// message.timestamp.before.max.ms, cleanup.policy, compression.type and
// compression.<codec>.level) with the cluster's default replication factor; AlterTopic changes those settings
// with IncrementalAlterConfigs (a field made zero goes back to the cluster's
// default); DeleteTopic deletes; DeleteRecords moves a partition's start
// (kadm.DeleteRecords).
//
// Consumer groups: each Subscribe is a franz-go group member of its own.
// Balancers map by their Kafka names (range, roundrobin, sticky,
// cooperative-sticky) to franz-go's; the default is range, as on the
// embedded side. The member blocks rebalances while the application holds
// the records of a Poll (kgo.BlockRebalanceOnPoll) and allows them at the
// next Poll, and franz-go's OnPartitionsAssigned/Revoked/Lost callbacks are
// handed to the goroutine in Poll (or Close) to run GroupOptions' callbacks
// there: like the embedded Consumer, callbacks run on the polling
// goroutine, OnRevoked before any other member gets the partitions, and a
// commit made in OnRevoked is where the next owner starts. Eager balancers
// revoke everything at each rebalance; cooperative-sticky revokes only what
// moves.
//
// Offsets: positions are the offset after the last record Poll returned (or
// what Seek set, or where the partition started); Commit commits them,
// CommitOffsets commits exact offsets, Committed reads the group's. The
// reset policies map to kgo.ConsumeResetOffset: ResetEarliest to the log
// start, ResetLatest to the log end, ResetNone to no reset, under which
// Poll fails with stream.ErrNoCommittedOffset for a partition without a
// commit (and stream.ErrOffsetOutOfRange for a position outside the log)
// until Seek sets a position. AutoCommit commits inside Poll every 5 s,
// before partitions are revoked and on Close, as the embedded Consumer
// does (franz-go's own auto-commit is off).
//
// ReadPartition is a direct (group-less) franz-go consumer of one
// partition, from an offset to the high watermark as it was when the reader
// was made, then io.EOF. stream.AtTime works too (ListOffsets by time).
//
// Transactions: NewTxProducer is a franz-go client with
// kgo.TransactionalID (TxOptions.Timeout as kgo.TransactionTimeout) that
// initializes its ID before returning, fencing an older holder as the
// embedded broker does; its Begin, Publish and Commit/Abort are
// BeginTransaction, produce and EndTransaction, and
// Transaction.CommitOffsets sends AddOffsetsToTxn and TxnOffsetCommit
// itself (franz-go commits transactional offsets only for a group member),
// so the producer keeps to the classic protocol (EndTxn and
// TxnOffsetCommit up to version 4), which every cluster serves.
// NewTxSession is kgo.NewGroupTransactSession, reading read_committed;
// its rebalance callbacks run on franz-go's goroutine. GroupOptions.Isolation
// maps to kgo.FetchIsolationLevel, and ReadPartition's ReadOptions to a
// read_committed fetch that ends at the last stable offset. Transaction
// markers are never returned.
//
// Errors are *Error values that match both the embedstream sentinel and
// Kafka's error with errors.Is: kerr.TopicAlreadyExists is
// stream.ErrTopicExists, UnknownTopicOrPartition stream.ErrTopicNotFound,
// OffsetOutOfRange stream.ErrOffsetOutOfRange, IllegalGeneration and
// UnknownMemberID stream.ErrStaleGeneration, RebalanceInProgress
// stream.ErrRebalanceInProgress, FencedInstanceID, ProducerFenced and
// InvalidProducerEpoch stream.ErrFenced, InvalidTxnState
// stream.ErrTxnState, TransactionAbortable stream.ErrTxnAborted,
// InvalidTopicException stream.ErrInvalidTopic, MessageTooLarge
// stream.ErrRecordTooLarge, invalid partitions, replication factors and
// configs stream.ErrInvalidConfig; every call on a closed Client, member or
// reader returns stream.ErrClosed. Bad input fails before anything is sent,
// with the embedded backend's errors (stream.ErrInvalidRecord,
// stream.ErrInvalidTopic, stream.ErrInvalidPartition, stream.ErrInvalidGroup,
// stream.ErrNotAssigned).
//
// # What differs from the embedded backend
//
//   - Latency and durability: every call is a network round trip, and a
//     record is durable as the cluster's acks and replication make it
//     (TopicConfig.Sync is ignored).
//   - Publish with several records is not one atomic batch per partition: a
//     failure can leave some written (the first error is returned).
//   - PublishAsync's context also bounds the queued record: if it ends
//     before the record is sent, the record fails with its error.
//   - On a LogAppendTime topic, Publish reports the producer's timestamp;
//     the cluster's shows when the record is read back.
//   - Liveness: a member is alive while it heartbeats (franz-go does, in the
//     background), not while it polls; one that holds its records longer
//     than the rebalance timeout (kgo.RebalanceTimeout, 60 s by default)
//     while the group rebalances is dropped, its commits then fail with
//     stream.ErrStaleGeneration, and its next Poll rejoins. A member learns
//     of a rebalance at its next heartbeat (kgo.HeartbeatInterval, 3 s by
//     default), so hand-overs take that long; the embedded group is
//     immediate.
//   - A transaction the cluster aborted at its timeout fences its producer:
//     later calls fail with stream.ErrFenced, where the embedded broker
//     says stream.ErrTxnTimedOut. Transaction.CommitOffsets takes offsets
//     only for a group without live members.
//   - ResetLatest resolves "the end" when the partition is assigned, not
//     at its first fetch.
//   - Records from Poll and Next do not alias anything: they stay valid
//     after the next call (Clone is harmless but unneeded).
//   - A cluster deletes topics asynchronously, compacts topics
//     (TopicConfig.Cleanup) on its own schedule, and keeps group offsets
//     for its offsets.retention.minutes.
//
// Compression: batches are compressed in Kafka's framings on both sides,
// so either reads what the other wrote. Options.Compression is the
// producer's codec (stream.ProducerOptions.Compression's counterpart;
// uncompressed by default, not franz-go's snappy), and
// TopicConfig.Compression the topic's, which the cluster applies.
//
// Options.Opts passes franz-go options (TLS, SASL, timeouts, heartbeats,
// logging) to every franz-go client the Client makes; Client.Kgo,
// Client.Admin and GroupConsumer.Kgo reach franz-go for what stream.Client
// does not cover.
package kafka
