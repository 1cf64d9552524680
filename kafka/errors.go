package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Error is an error from the cluster or from franz-go, carrying the
// embedstream sentinel it corresponds to. errors.Is matches both: the
// sentinel (stream.ErrTopicNotFound, ...) for portable code, and the
// original (a *kerr.Error such as kerr.UnknownTopicOrPartition, or a kgo
// error) for code that wants Kafka's detail.
type Error struct {
	// Kind is the embedstream sentinel, for example stream.ErrTopicExists.
	Kind error
	// Err is what the cluster or franz-go returned.
	Err error
}

// Error implements error.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Err.Error() }

// Unwrap returns both the sentinel and the original error, for errors.Is
// and errors.As.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// kgo's "partition has no prior committed offset", which it does not export.
const noCommitText = "partition has no prior committed offset"

// invalidChoiceText is what kgo fails a record with when the partitioner
// picked a partition the topic does not have.
const invalidChoiceText = "invalid record partitioning choice"

// mapErr maps an error from kgo, kadm or the cluster to the embedstream
// sentinel it corresponds to, keeping the original reachable. Errors with no
// counterpart, and context errors, are returned as they are.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var mapped *Error
	if errors.As(err, &mapped) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	kind := kindOf(err)
	if kind == nil {
		return err
	}
	return &Error{Kind: kind, Err: err}
}

func kindOf(err error) error {
	switch {
	case errors.Is(err, kgo.ErrClientClosed):
		return stream.ErrClosed
	case errors.Is(err, kerr.TopicAlreadyExists):
		return stream.ErrTopicExists
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return stream.ErrTopicNotFound
	case errors.Is(err, kerr.OffsetOutOfRange):
		return stream.ErrOffsetOutOfRange
	case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.StaleMemberEpoch):
		return stream.ErrStaleGeneration
	case errors.Is(err, kerr.RebalanceInProgress):
		return stream.ErrRebalanceInProgress
	case errors.Is(err, kerr.FencedInstanceID), errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		// A producer is fenced by a newer one with its transactional ID
		// (PRODUCER_FENCED; INVALID_PRODUCER_EPOCH from older versions).
		return stream.ErrFenced
	case errors.Is(err, kerr.InvalidTxnState):
		return stream.ErrTxnState
	case errors.Is(err, kerr.TransactionAbortable):
		return stream.ErrTxnAborted
	case errors.Is(err, kerr.InvalidTransactionTimeout):
		return stream.ErrInvalidConfig
	case errors.Is(err, kerr.InvalidTopicException):
		return stream.ErrInvalidTopic
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return stream.ErrRecordTooLarge
	case errors.Is(err, kerr.InvalidPartitions), errors.Is(err, kerr.InvalidReplicationFactor),
		errors.Is(err, kerr.InvalidConfig), errors.Is(err, kerr.PolicyViolation):
		return stream.ErrInvalidConfig
	case errors.Is(err, kerr.InvalidTimestamp), errors.Is(err, kerr.InvalidRecord):
		return stream.ErrInvalidRecord
	case errors.Is(err, kerr.NonEmptyGroup):
		return stream.ErrGroupNotEmpty
	case errors.Is(err, kerr.InvalidGroupID):
		return stream.ErrInvalidGroup
	case strings.Contains(err.Error(), noCommitText):
		return stream.ErrNoCommittedOffset
	case strings.Contains(err.Error(), invalidChoiceText):
		return stream.ErrInvalidPartition
	}
	return nil
}

// errorf wraps a sentinel with detail, as the embedded backend does.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
