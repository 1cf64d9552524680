package stream

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/segment"
)

// Every message names a partition as "topic/partition" and a range of
// offsets as "offsets [start, end)": the error types, and the errors the
// API returns where a partition or a range is involved.
func TestErrorMessageFormats(t *testing.T) {
	found := errors.New("CRC mismatch")
	require.Equal(t, "orders/2", TopicPartition{Topic: "orders", Partition: 2}.String())
	require.Equal(t, "stream: orders/2: offsets [10, 20) unreadable: CRC mismatch",
		(&CorruptError{Topic: "orders", Partition: 2, Offset: 10, Next: 20, Err: found}).Error())
	require.Equal(t, "segment 0: offsets [10, 20) unreadable: CRC mismatch",
		(&segment.DamageError{Segment: 0, Offset: 10, Next: 20, Err: found}).Error())

	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("orders", TopicConfig{Partitions: 2, SegmentBytes: 4096}))
	for range 3 {
		cgPublish(t, b, "orders", 1, 1)
	}
	msg := func(err error, target error) string {
		t.Helper()
		require.ErrorIs(t, err, target)
		return err.Error()
	}

	_, err := b.NewReader("orders", 1, AtOffset(9), nil)
	require.Equal(t, "stream: offset out of range: offset 9 of orders/1, log has offsets [0, 3)", msg(err, ErrOffsetOutOfRange))
	require.Equal(t, "stream: offset out of range: offset 9 for orders/1, log has offsets [0, 3)",
		msg(b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "orders", Partition: 1}: 9}), ErrOffsetOutOfRange))
	_, err = b.DeleteRecords("orders", 1, 9)
	require.Equal(t, "orders/1: stream: offset out of range: delete before offset 9, log has offsets [0, 3)", msg(err, ErrOffsetOutOfRange))
	require.Equal(t, `stream: invalid partition: orders/7: topic "orders" has 2 partitions`,
		msg(b.Publish(t.Context(), &Record{Topic: "orders", Partition: 7}), ErrInvalidPartition))

	c := cgSubscribe(t, b, "g", []string{"orders"}, &ConsumerOptions{Reset: ResetNone})
	require.Equal(t, `stream: no committed offset: group "g", orders/0`, msg(func() error { _, err := c.Poll(t.Context()); return err }(), ErrNoCommittedOffset))
	require.Equal(t, "stream: partition not assigned to this consumer: nope/0", msg(c.Seek(TopicPartition{Topic: "nope"}, 0), ErrNotAssigned))

	// A Reader whose records went: the log's message, with the partition.
	rd, err := b.NewReader("orders", 1, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	_, err = b.DeleteRecords("orders", 1, 3)
	require.NoError(t, err)
	_, err = rd.Next(t.Context())
	require.Equal(t, "orders/1: stream: offset out of range: offset 0, log has offsets [3, 3)", msg(err, ErrOffsetOutOfRange))
}
