package stream

import (
	"errors"
	"fmt"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/segment"
)

// Errors returned by embedstream, grouped by when they occur. Test for them
// with errors.Is: returned errors wrap them with detail (topic, partition,
// offset, path). Messages name a partition as "topic/partition" (see
// TopicPartition.String) and a range of offsets as "offsets [start, end)",
// end excluded.

// Errors of the broker's lifecycle and state.
var (
	// ErrClosed is returned by every call on a Broker, Producer, Consumer or
	// Reader after its Close, and by calls blocked in one when it closes.
	ErrClosed = errs.ErrClosed

	// ErrLocked is returned by Open when another Broker, in this process or
	// another, holds the directory. A follower (Options.Follow) takes no
	// lock and never gets it.
	ErrLocked = errs.ErrLocked

	// ErrReadOnly is returned by writes to a Broker opened with
	// Options.ReadOnly or Options.Follow.
	ErrReadOnly = errs.ErrReadOnly

	// ErrMetadataUnavailable is returned by a follower's calls that need
	// meta.db (committed offsets, group lists, Refresh) when no consistent
	// copy of it could be read: it is damaged (the owner sets it aside at
	// its next Open), or the owner committed faster than it could be
	// copied. It may pass: call again.
	ErrMetadataUnavailable = errs.ErrMetadataUnavailable

	// ErrSyncFailed is returned by every write to a partition after an fsync
	// of it failed: the kernel may have dropped the unsynced data, so the
	// partition refuses writes until the broker is reopened (and recovers).
	ErrSyncFailed = errs.ErrSyncFailed

	// ErrConcurrentUse is returned when an object meant for one goroutine
	// (a Reader, a Consumer's Poll) is used from two at once (Kafka's
	// ConcurrentModificationException).
	ErrConcurrentUse = errors.New("stream: concurrent use")
)

// Errors of bad input: returned before anything is written.
var (
	// ErrInvalidConfig is returned for out-of-range options (Options,
	// ProducerOptions, ConsumerOptions, ReaderOptions) or topic settings.
	ErrInvalidConfig = errs.ErrInvalidConfig

	// ErrInvalidTopic is returned for a topic name outside Kafka's rules:
	// 1 to 249 characters of [a-zA-Z0-9._-], not "." or "..".
	ErrInvalidTopic = errors.New("stream: invalid topic name")

	// ErrTopicNotFound is returned for a topic that does not exist (and is
	// not auto-created).
	ErrTopicNotFound = errors.New("stream: topic not found")

	// ErrTopicExists is returned by CreateTopic for a name already in use.
	ErrTopicExists = errors.New("stream: topic already exists")

	// ErrInvalidPartition is returned for a partition number the topic does
	// not have.
	ErrInvalidPartition = errors.New("stream: invalid partition")

	// ErrInvalidRecord is returned by Publish for a nil record, a
	// timestamp that is negative or outside the topic's accepted range,
	// or a record without a key on a compacted topic (TopicConfig.Cleanup).
	ErrInvalidRecord = errors.New("stream: invalid record")

	// ErrInvalidTimestamp is the ErrInvalidRecord (it wraps it) for a
	// record whose timestamp lies outside the topic's MaxTimestampAhead or
	// MaxTimestampBehind of the broker's clock (Kafka's
	// InvalidTimestampException).
	ErrInvalidTimestamp = fmt.Errorf("%w: timestamp out of range", ErrInvalidRecord)

	// ErrRecordTooLarge is returned when a record (or a batch) exceeds the
	// topic's MaxRecordBytes. Nothing of the call is written.
	ErrRecordTooLarge = errs.ErrRecordTooLarge

	// ErrInvalidArgument is returned for a negative timestamp or offset
	// given as a position to read from or commit, and for a nil change
	// to AlterTopic.
	ErrInvalidArgument = errs.ErrInvalidArgument

	// ErrInvalidGroup is returned, wherever a group name is taken, for one
	// a Kafka client could not send (empty, over 32767 bytes, not UTF-8)
	// or that holds a control character such as a newline.
	ErrInvalidGroup = errors.New("stream: invalid group")
)

// Errors of idempotent producers (AppendBatches): nothing of the batch is
// written.
var (
	// ErrOutOfOrderSequence is returned for an idempotent producer's batch
	// whose sequence does not follow the last one the partition stored for
	// that producer and epoch, and is not a retry of one of the last five
	// (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER): a batch in between was lost.
	ErrOutOfOrderSequence = errs.ErrOutOfOrderSequence

	// ErrInvalidProducerEpoch is returned for an idempotent producer's batch
	// with an epoch below the one the partition knows for its producer ID:
	// a newer instance of the producer took over (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errs.ErrInvalidProducerEpoch
)

// Errors of reading.
var (
	// ErrOffsetOutOfRange is returned when reading at an offset below the
	// log start (deleted by retention or DeleteRecords) or above the log
	// end.
	ErrOffsetOutOfRange = errs.ErrOffsetOutOfRange

	// ErrCorrupt is returned when stored data fails its checksum or
	// structure checks while being read, always inside a *CorruptError that
	// says which offsets are lost and where reading goes on. Recovery on
	// Open cuts a damaged log tail instead of returning it.
	ErrCorrupt = errs.ErrCorrupt

	// ErrUnsupported is returned by Reader.Next and Consumer.Poll at a
	// record batch that passes its CRC but names a compression codec that
	// is none of Kafka's (5, 6 or 7 in attribute bits 0-2). Batches of
	// Kafka's codecs (gzip, snappy, lz4, zstd) are read: see Codec. A
	// Reader returns the records before it first; both then stay at the
	// batch, returning ErrUnsupported again, rather than skip records a
	// newer version might read.
	ErrUnsupported = errs.ErrUnsupported
)

// Errors of consumer groups.
var (
	// ErrNoCommittedOffset is returned by Poll under ResetNone for an
	// assigned partition the group never committed.
	ErrNoCommittedOffset = errors.New("stream: no committed offset")

	// ErrStaleGeneration is returned by commits from a member the group
	// moved on without: evicted (MaxPollInterval), or of an earlier
	// generation. Its next Poll rejoins.
	ErrStaleGeneration = errs.ErrStaleGeneration

	// ErrRebalanceInProgress is returned by a commit while the group is
	// assigning partitions; Poll, then retry. The embedded broker computes
	// an assignment the moment the last member rejoins and so never returns
	// it; a Kafka cluster, through the kafka adapter's Client, does.
	ErrRebalanceInProgress = errs.ErrRebalanceInProgress

	// ErrWakeup is returned by a Poll interrupted by Consumer.Wakeup.
	ErrWakeup = errors.New("stream: wakeup")

	// ErrFenced is returned to a static member (ConsumerOptions.InstanceID)
	// replaced by a newer member with the same instance id. It is final:
	// Close the consumer.
	ErrFenced = errs.ErrFenced

	// ErrNotAssigned is returned for a partition the consumer does not hold
	// (Seek, Position, CommitOffsets).
	ErrNotAssigned = errs.ErrNotAssigned

	// ErrGroupNotEmpty is returned by DeleteGroup and SetCommittedOffsets
	// while the group has members.
	ErrGroupNotEmpty = errs.ErrGroupNotEmpty
)

// CorruptError reports offsets of a partition that cannot be read because
// the batch holding them failed its checks (or was lost with a damaged
// segment tail), or its records do not decode: for a compressed batch,
// records that do not decompress, or would expand past
// batch.MaxUncompressedBytes (64 MiB; decompression stops there, so a
// "zip bomb" costs no more memory than that). Records before and after
// the damage read normally; only the damaged batch is lost. It wraps
// ErrCorrupt.
//
// A Reader reports it once and then goes on at Next. A Consumer stays at
// Offset, reporting it at every Poll, until the caller moves on with
// Seek(TopicPartition{Topic, Partition}, Next) (or decides otherwise): as
// with Kafka's CorruptRecordException, a group never skips records unasked.
type CorruptError struct {
	Topic     string
	Partition int32
	Offset    int64 // the first offset that cannot be read
	Next      int64 // the first offset after the damage: where reading can go on
	Err       error // what was found; wraps ErrCorrupt
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("stream: %s: offsets [%d, %d) unreadable: %v", TopicPartition{Topic: e.Topic, Partition: e.Partition}, e.Offset, e.Next, e.Err)
}

// Unwrap returns what was found, which wraps ErrCorrupt.
func (e *CorruptError) Unwrap() error { return e.Err }

// RecordError is the error AppendBatches returns for a batch refused for
// some of its records, Kafka's record errors (KIP-467): records without a
// key on a compacted topic. Nothing of the batch is written. A Kafka
// front end answers it as INVALID_RECORD with record_errors naming each
// record. It wraps Err, which wraps ErrInvalidRecord.
type RecordError struct {
	Records []int // the refused records' indexes in the batch, from 0, ascending
	Err     error // why each was refused
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%v (records %v of the batch)", e.Err, e.Records)
}

// Unwrap returns why the records were refused, which wraps
// ErrInvalidRecord.
func (e *RecordError) Unwrap() error { return e.Err }

// walkError is the error of a walk over batches (which passed their CRC)
// that stopped early: a *CorruptError for records it could not decode,
// reading going on after their batch, else (ErrUnsupported) where it was.
func walkError(topic string, partition int32, it *batch.Iter) error {
	err := it.Err()
	if errors.Is(err, ErrCorrupt) {
		return &CorruptError{Topic: topic, Partition: partition, Offset: it.Offset(), Next: it.Resume(), Err: err}
	}
	return fmt.Errorf("%s at offset %d: %w", TopicPartition{Topic: topic, Partition: partition}, it.Offset(), err)
}

// corruptError turns a read error that met damage into a *CorruptError, or
// returns it as it is.
func corruptError(topic string, partition int32, err error) error {
	var de *segment.DamageError
	if !errors.As(err, &de) {
		return err
	}
	return &CorruptError{Topic: topic, Partition: partition, Offset: de.Offset, Next: de.Next, Err: err}
}
