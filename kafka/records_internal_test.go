package kafka

import (
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// TestParseOffset checks how ReadPartition takes a stream.Offset apart.
func TestParseOffset(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 30, 0, 123_456_789, time.FixedZone("X", 5*3600+1800))
	for _, c := range []struct {
		in   stream.Offset
		kind offsetKind
		n    int64
		t    time.Time
	}{
		{stream.OffsetEarliest, fromEarliest, 0, time.Time{}},
		{stream.Offset{}, fromEarliest, 0, time.Time{}},
		{stream.OffsetLatest, fromLatest, 0, time.Time{}},
		{stream.AtOffset(0), fromOffset, 0, time.Time{}},
		{stream.AtOffset(1 << 40), fromOffset, 1 << 40, time.Time{}},
		{stream.AtTime(at), fromTime, 0, at},
	} {
		kind, n, tm, err := parseOffset(c.in)
		require.NoError(t, err, c.in.String())
		require.Equal(t, c.kind, kind, c.in.String())
		require.Equal(t, c.n, n, c.in.String())
		require.True(t, c.t.Equal(tm), "%s: %v", c.in, tm)
	}
	_, _, _, err := parseOffset(stream.AtOffset(-1))
	require.ErrorIs(t, err, stream.ErrInvalidArgument)
}

func TestValidTopic(t *testing.T) {
	for _, ok := range []string{"a", "orders", "a.b_c-D9", "x"} {
		require.NoError(t, validTopic(ok), ok)
	}
	long := make([]byte, 250)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", ".", "..", "a b", "a/b", "ü", string(long)} {
		require.ErrorIs(t, validTopic(bad), stream.ErrInvalidTopic, bad)
	}
	require.NoError(t, validTopic(string(long[:249])))
}
