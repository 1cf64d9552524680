package listener

import (
	"context"
	"errors"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
)

// dataErrCode maps an error of the broker's data path (AppendBatches,
// ReadBatches, InitProducerID) to the Kafka error code a client acts on.
// Errors without a Kafka meaning are logged by the caller and answered
// UNKNOWN_SERVER_ERROR.
func dataErrCode(err error) (code int16, known bool) {
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, stream.ErrTopicNotFound), errors.Is(err, stream.ErrInvalidPartition):
		return kerr.UnknownTopicOrPartition.Code, true
	case errors.Is(err, stream.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code, true
	case errors.Is(err, stream.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code, true
	case errors.Is(err, stream.ErrCorrupt):
		return kerr.CorruptMessage.Code, true
	case errors.Is(err, stream.ErrUnsupported):
		return kerr.UnsupportedCompressionType.Code, true
	case errors.Is(err, stream.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code, true
	case errors.Is(err, stream.ErrInvalidRecord):
		return kerr.InvalidRecord.Code, true
	case errors.Is(err, stream.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code, true
	case errors.Is(err, stream.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code, true
	case errors.Is(err, stream.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code, true
	case errors.Is(err, stream.ErrReadOnly):
		// The broker takes no writes by configuration: not retriable.
		return kerr.PolicyViolation.Code, true
	case errors.Is(err, stream.ErrSyncFailed):
		return kerr.KafkaStorageError.Code, true
	case errors.Is(err, stream.ErrClosed):
		// Closing: the client retries, and finds the broker gone or back.
		return kerr.NotLeaderForPartition.Code, true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code, true
	}
	return kerr.UnknownServerError.Code, false
}
