package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMapErr(t *testing.T) {
	for in, want := range map[error]error{
		kgo.ErrClientClosed:            stream.ErrClosed,
		kerr.TopicAlreadyExists:        stream.ErrTopicExists,
		kerr.UnknownTopicOrPartition:   stream.ErrTopicNotFound,
		kerr.UnknownTopicID:            stream.ErrTopicNotFound,
		kerr.OffsetOutOfRange:          stream.ErrOffsetOutOfRange,
		kerr.IllegalGeneration:         stream.ErrStaleGeneration,
		kerr.UnknownMemberID:           stream.ErrStaleGeneration,
		kerr.StaleMemberEpoch:          stream.ErrStaleGeneration,
		kerr.RebalanceInProgress:       stream.ErrRebalanceInProgress,
		kerr.FencedInstanceID:          stream.ErrFenced,
		kerr.ProducerFenced:            stream.ErrFenced,
		kerr.InvalidProducerEpoch:      stream.ErrFenced,
		kerr.InvalidTxnState:           stream.ErrTxnState,
		kerr.TransactionAbortable:      stream.ErrTxnAborted,
		kerr.InvalidTransactionTimeout: stream.ErrInvalidConfig,
		kerr.InvalidTopicException:     stream.ErrInvalidTopic,
		kerr.MessageTooLarge:           stream.ErrRecordTooLarge,
		kerr.RecordListTooLarge:        stream.ErrRecordTooLarge,
		kerr.InvalidPartitions:         stream.ErrInvalidConfig,
		kerr.InvalidReplicationFactor:  stream.ErrInvalidConfig,
		kerr.InvalidConfig:             stream.ErrInvalidConfig,
		kerr.InvalidTimestamp:          stream.ErrInvalidRecord,
		kerr.NonEmptyGroup:             stream.ErrGroupNotEmpty,
		kerr.InvalidGroupID:            stream.ErrInvalidGroup,
		errors.New(noCommitText):       stream.ErrNoCommittedOffset,
		fmt.Errorf("%s of 3 from 2 available", invalidChoiceText): stream.ErrInvalidPartition,
	} {
		got := mapErr(fmt.Errorf("wrapped: %w", in))
		require.ErrorIs(t, got, want, "%v", in)
		require.ErrorIs(t, got, in, "the original stays reachable: %v", in)
		require.Same(t, got, mapErr(got), "mapping twice changes nothing")
	}
	require.Nil(t, mapErr(nil))
	for _, as := range []error{context.Canceled, context.DeadlineExceeded, kerr.NotCoordinator, errors.New("other")} {
		require.Equal(t, as, mapErr(as), "%v is returned as it is", as)
	}
}
