package listener

import (
	"context"
	"errors"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode is the Kafka error code a client gets for err, one of the
// stream package's sentinels (or a *kerr.Error, passed through): the one
// place the listener maps the broker's errors onto the wire. nil is 0; an
// error nothing here names is UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// knownErrorCode is errorCode, and whether the error has a Kafka meaning:
// callers log those that do not.
func knownErrorCode(err error) (int16, bool) {
	code := errorCode(err)
	return code, code != kerr.UnknownServerError.Code
}

// errorMessage is the ErrorMessage of responses that have one: the
// broker's own words, which say more than the code (nil without an error).
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// errorCodes maps sentinels to codes, tried in order: an error wrapping
// several gets the first one's.
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{stream.ErrTopicNotFound, kerr.UnknownTopicOrPartition},
	// Kafka answers a partition the topic lacks as an unknown one.
	{stream.ErrInvalidPartition, kerr.UnknownTopicOrPartition},
	{stream.ErrInvalidTopic, kerr.InvalidTopicException},
	{stream.ErrTopicExists, kerr.TopicAlreadyExists},
	{stream.ErrInvalidConfig, kerr.InvalidConfig},
	{stream.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{stream.ErrRecordTooLarge, kerr.MessageTooLarge},
	{stream.ErrInvalidTimestamp, kerr.InvalidTimestamp}, // before ErrInvalidRecord, which it wraps
	{stream.ErrInvalidRecord, kerr.InvalidRecord},
	{stream.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{stream.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{stream.ErrCorrupt, kerr.CorruptMessage},
	{stream.ErrUnsupported, kerr.UnsupportedCompressionType},
	{stream.ErrInvalidArgument, kerr.InvalidRequest},
	// A read-only broker (ReadOnly, Follow) refuses writes for good:
	// a non-retriable code, so clients do not retry for ever.
	{stream.ErrReadOnly, kerr.PolicyViolation},
	// Retriable: the partition refuses writes until the broker reopens.
	{stream.ErrSyncFailed, kerr.KafkaStorageError},
	{stream.ErrClosed, kerr.BrokerNotAvailable},
	// A follower's meta.db copy may be readable next time.
	{stream.ErrMetadataUnavailable, kerr.CoordinatorNotAvailable},
	{stream.ErrStaleGeneration, kerr.IllegalGeneration},
	{stream.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{stream.ErrFenced, kerr.FencedInstanceID}, // a static member's; txnErrorCode maps a producer's
	{stream.ErrTxnState, kerr.InvalidTxnState},
	{stream.ErrInvalidProducerID, kerr.InvalidProducerIDMapping},
	// Decided and durable, not yet visible everywhere: a retried EndTxn
	// of the commit succeeds.
	{stream.ErrTxnIncomplete, kerr.KafkaStorageError},
	// Kafka bumps a timed-out transaction's epoch: the producer's next
	// call is refused as from an old epoch, which KIP-588 clients recover
	// from by initializing again.
	{stream.ErrTxnTimedOut, kerr.InvalidProducerEpoch},
	{stream.ErrGroupNotEmpty, kerr.NonEmptyGroup},
	{stream.ErrInvalidGroup, kerr.InvalidGroupID},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// txnErrorCode is errorCode for the transaction coordinator's answers
// (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
// EndTxn) in a request of the given version: there stream.ErrFenced is the
// producer's, fenced by a newer instance of its transactional ID:
// PRODUCER_FENCED from fencedSince on, INVALID_PRODUCER_EPOCH before it,
// as Kafka answers older clients (librdkafka sends AddPartitionsToTxn v0).
func txnErrorCode(err error, version, fencedSince int16) int16 {
	if errors.Is(err, stream.ErrFenced) {
		return fencedCode(version, fencedSince)
	}
	return errorCode(err)
}

// fencedCode is the code for a fenced producer in a request of version:
// PRODUCER_FENCED from fencedSince, the version that introduced it.
func fencedCode(version, fencedSince int16) int16 {
	if version >= fencedSince {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}
