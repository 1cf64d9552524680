package listener

import (
	"fmt"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want *kerr.Error
	}{
		{fmt.Errorf("topic %q: %w", "x", stream.ErrTopicNotFound), kerr.UnknownTopicOrPartition},
		{stream.ErrInvalidTopic, kerr.InvalidTopicException},
		{stream.ErrTopicExists, kerr.TopicAlreadyExists},
		{fmt.Errorf("wrapped: %w", stream.ErrInvalidConfig), kerr.InvalidConfig},
		{stream.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{stream.ErrReadOnly, kerr.PolicyViolation},
		{kerr.InvalidReplicationFactor, kerr.InvalidReplicationFactor},
		{fmt.Errorf("no sentinel"), kerr.UnknownServerError},
	} {
		require.Equal(t, tc.want.Code, errorCode(tc.err), "%v", tc.err)
	}
	require.Zero(t, errorCode(nil))
	require.Nil(t, errorMessage(nil))
	require.Equal(t, "x", *errorMessage(fmt.Errorf("x")))
}
