// Package stream is an embedded, durable streaming engine with Kafka's model:
// topics split into partitions, each partition an append-only log of records
// addressed by offset, kept in a directory on local disk. There is no server:
// a Broker is a value in your process.
//
//	b, err := stream.Open(dir, nil)
//	b.CreateTopic("orders", stream.TopicConfig{Partitions: 3})
//	rec := &stream.Record{Topic: "orders", Key: k, Value: v}
//	err = b.Publish(ctx, rec) // placed by k; rec.Partition, rec.Offset filled in
//	r, err := b.NewReader("orders", rec.Partition, stream.OffsetEarliest, nil)
//	first, err := r.Next(ctx)
//
// The types: a Broker owns a directory and its topics (Open, Close,
// CreateTopic, Publish); a Producer batches records asynchronously; a Reader
// replays one partition from an offset or a time; a Consumer is a member of
// a consumer group (Subscribe, Poll, Commit); a Table is a key→latest-value
// view of a topic kept in memory (OpenTable, Get, WaitChange); Records carry a key, a value,
// headers and a timestamp. A Partitioner places every published record,
// as in the Go Kafka clients (franz-go, sarama): HashPartitioner by default
// (by key), KafkaPartitioner for the Java client's placement, and
// ManualPartitioner, the only one that honours Record.Partition. Client is
// the interface this package and the kafka module's cluster adapter both
// implement.
//
// Batches may be stored compressed with Kafka's codecs (gzip, snappy, lz4,
// zstd): TopicConfig.Compression is the topic's compression.type,
// ProducerOptions.Compression the producer's; reads decompress
// transparently. See Codec, and TopicConfig.MaxRecordBytes for how the
// size limit applies to a compressed record.
//
// Every constructor takes a pointer to an options struct, nil for the
// defaults: Open (Options), NewProducer (ProducerOptions), Subscribe
// (ConsumerOptions), NewReader (ReaderOptions). Zero fields take their
// defaults, each documented with the Kafka setting it mirrors, and an
// out-of-range value fails the call with ErrInvalidConfig.
//
// # Packages
//
// This package is the public API and the glue between the packages that do
// the work: batch (Kafka's record-batch format and the one record walk
// every read takes), segment and index (one segment file and its sparse
// indexes), group (the consumer-group coordinator and balancers, pure
// logic), and, internal to the module, log (one partition's log), catalog
// (the bbolt metadata store), groups (the group service), and vfs (the
// file-system seam every file operation goes through).
//
// # Durability
//
// A SyncPolicy decides when appended data is fsynced: SyncInterval (the
// default) every Options.SyncInterval, SyncNever when the OS decides, and
// SyncAlways before Publish returns, with concurrent publishers sharing one
// fsync. A process crash loses nothing that was appended under any policy; a
// machine crash loses at most what the policy left unsynced. Under SyncAlways
// records become visible to readers only once durable. An fsync failure is
// final for its partition: writes then fail with ErrSyncFailed, because the
// kernel may already have dropped the unsynced pages and a retried fsync
// would report success for data that is gone.
//
// # Transactions
//
// A TxProducer publishes records to any partitions, and stages consumer
// groups' offsets, in transactions that commit or abort whole (Kafka's
// transactions, KIP-98 and KIP-447): a consume-transform-publish step
// happens exactly once when its outputs and its input's offsets commit
// together (TxSession runs that loop). Records of a transaction take their
// offsets when published; readers and consumers with ReadCommitted see
// them only once it commits, never if it aborts, and nothing at or past a
// partition's last stable offset (the first offset of its oldest open
// transaction); ReadUncommitted, the default, sees every record at once.
// A commit writes one marker per partition, which takes an offset but is
// never returned.
//
// A commit is durable when it returns: the partitions' records (under
// SyncAlways; fsynced together), then the decision and the offsets in one
// bbolt transaction, then the markers. After a crash, Open writes the
// markers a decided commit is missing and aborts every transaction still
// open, so a transaction is never half visible. A transactional ID is one
// producer at a time: a new one fences the old (ErrFenced); a transaction
// open past its timeout is aborted by the broker (ErrTxnTimedOut). The
// records are stored as Kafka stores them (transactional batches, control
// batches, and Kafka's aborted transaction index beside each segment), and
// Kafka clients reach the same transactions through the listener.
//
// # Recovery
//
// Damage costs only the damaged bytes. On Open after a crash, each
// partition's active segment is scanned batch by batch (length, CRC-32C,
// offsets in sequence) and a torn tail, the bytes after the last valid batch
// when no valid batch follows them, is cut; the indexes are rebuilt. Sealed
// segments have their tails verified. A cleanly closed segment that does not
// match what its close left is recovered the same way. A damaged batch that
// valid batches follow stays in place: the records before and after it read
// normally, and reads report its offsets as a *CorruptError (ErrCorrupt)
// that says where reading goes on. A damaged meta.db is set aside (renamed
// meta.db.damaged-<UTC time>) and rebuilt from the topic directories:
// committed offsets and topic configs are lost, records are not. Damage
// never stops an Open; it is logged (Options.Logger) and counted
// (Broker.Stats). README's Guarantees say what damage to each kind of file
// costs.
//
// # Caveats
//
// Records read from a log alias the memory-mapped segment file, or, for
// compressed batches, a buffer of the Reader's (or Consumer's) that they
// are decompressed into and that the next call reuses: either way a
// Record returned by Reader.Next, and its Key, Value and header values,
// are valid only until the next call to Next or Close (for Consumer.Poll,
// the next Poll or Close). Copy what you keep with Record.Clone, or, for
// many records, an Arena. Records passed to Publish are not kept after the
// call; Producer.Publish copies a record's key, value and headers before it
// returns, and fills in and hands back the Record itself in its callback.
//
// One Broker owns a directory at a time (ErrLocked otherwise); open a copy,
// or a stopped application's directory, with Options.ReadOnly, and a
// running application's with Options.Follow.
//
// # Following a live directory
//
// A follower (Options.Follow) reads a directory that another Broker owns
// and writes, in this process or another: tools (streamctl's read
// commands), dashboards, a second process replaying what the application
// publishes. It takes no lock and writes nothing, so it never stops the
// owner from opening, and the owner may restart, crash and recover under
// it. It learns everything from the files: topics and partitions from the
// topic directories, records and offsets from the segment files, looked at
// again every Options.FollowInterval (or at Broker.Refresh), and topic
// configs and committed offsets from copies of meta.db, which it never
// opens (bbolt's lock would block the owner).
//
// A follower cannot know what is not on disk: records in a Producer's
// linger buffer or still being written; the owner's consumer groups' live
// members (DescribeGroup shows the follower's own, usually none, and, from
// meta.db, each group's last completed generation with its members and
// assignments: GroupInfo.Last); offsets committed, generations completed
// and topic configs altered after its last copy of meta.db
// (ErrMetadataUnavailable when none can be read). It sees records up to a
// FollowInterval after the owner appends them, and under SyncAlways before
// they are durable. Records it returns alias the owner's files like any
// read; the owner never cuts records it wrote, and a follower's reads and
// walks of records fault into errors if something else does.
package stream
