package stream

// Fetching and positions: Seek, SeekToBeginning / SeekToEnd, reset policies, out-of-range handling.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------------
// Seek, Pause, reset policies

func TestSeek(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.CreateTopic("other", TopicConfig{}))
	cgPublish(t, b, "t", 0, 20)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 5})
	tp := cgTP("t", 0)
	require.ErrorIs(t, c.Seek(tp, 3), ErrNotAssigned, "nothing is assigned before the first Poll")

	require.Equal(t, tbRange(0, 5), cgOffsets(cgPollN(t, c, 5), 0))
	require.NoError(t, c.Seek(tp, 12))
	require.NoError(t, c.Seek(tp, 15), "the last seek wins")
	pos, err := c.Position(tp)
	require.NoError(t, err)
	require.Equal(t, int64(15), pos)
	require.Equal(t, tbRange(15, 20), cgOffsets(cgPollN(t, c, 5), 0))

	require.ErrorIs(t, c.Seek(tp, -1), ErrInvalidArgument)
	require.ErrorIs(t, c.Seek(cgTP("other", 0), 0), ErrNotAssigned)
	require.ErrorIs(t, c.Seek(cgTP("t", 1), 0), ErrNotAssigned)
	require.ErrorIs(t, c.SeekToBeginning(cgTP("other", 0)), ErrNotAssigned)
	require.ErrorIs(t, c.SeekToEnd(cgTP("other", 0)), ErrNotAssigned)
	_, err = c.Position(cgTP("other", 0))
	require.ErrorIs(t, err, ErrNotAssigned)
	pos, err = c.Position(tp)
	require.NoError(t, err)
	require.Equal(t, int64(20), pos, "refused seeks change nothing")

	// Back to the start, all assigned partitions by default.
	require.NoError(t, c.SeekToBeginning())
	require.Equal(t, tbRange(0, 5), cgOffsets(cgPollN(t, c, 5), 0))
	require.NoError(t, c.SeekToBeginning(tp))
	pos, err = c.Position(tp)
	require.NoError(t, err)
	require.Zero(t, pos)

	// SeekToEnd is evaluated lazily, at the next Poll or Position.
	require.NoError(t, c.SeekToEnd())
	cgPublish(t, b, "t", 0, 2)
	pos, err = c.Position(tp)
	require.NoError(t, err)
	require.Equal(t, int64(22), pos)
	cgPublish(t, b, "t", 0, 1)
	require.Equal(t, []int64{22}, cgOffsets(cgPollN(t, c, 1), 0))

	// The log end is a valid position: an empty fetch, no reset.
	require.NoError(t, c.Seek(tp, 23))
	cgPublish(t, b, "t", 0, 1)
	require.Equal(t, []int64{23}, cgOffsets(cgPollN(t, c, 1), 0))

	// Past the end: the reset policy decides at the next Poll.
	require.NoError(t, c.Seek(tp, 1000))
	require.Equal(t, tbRange(0, 5), cgOffsets(cgPollN(t, c, 5), 0), "ResetEarliest")

	// ... and ResetNone reports it.
	cn := cgSubscribe(t, b, "none", []string{"t"}, &ConsumerOptions{Reset: ResetNone, MaxPollRecords: 5})
	ctx := t.Context()
	_, err = cn.Poll(ctx)
	require.ErrorIs(t, err, ErrNoCommittedOffset)
	require.NoError(t, cn.Seek(tp, 10))
	require.Equal(t, tbRange(10, 15), cgOffsets(cgPollN(t, cn, 5), 0))
	require.NoError(t, cn.Seek(tp, 1000))
	_, err = cn.Poll(ctx)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
}

func TestResetPolicies(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 5)
	tp := cgTP("t", 0)
	ctx := t.Context()

	// Earliest: the log start; the committed offset is not touched.
	ce := cgSubscribe(t, b, "earliest", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, tbRange(0, 5), cgOffsets(cgPollN(t, ce, 5), 0))
	committed, err := ce.Committed(ctx, tp)
	require.NoError(t, err)
	require.Empty(t, committed, "a reset changes the position only")

	// Latest (the default): the log end when assigned.
	positions := make(chan int64, 1)
	cl := cgSubscribe(t, b, "latest", []string{"t"}, &ConsumerOptions{
		OnAssigned: func(c *Consumer, parts []TopicPartition) {
			pos, err := c.Position(tp)
			if err != nil {
				pos = -1
			}
			positions <- pos
		}})
	res := make(chan []int64, 1)
	go func() {
		recs, _ := cl.Poll(ctx)
		res <- cgOffsets(recs, 0)
	}()
	require.Equal(t, int64(5), tbRecv(t, positions))
	cgPublish(t, b, "t", 0, 1)
	require.Equal(t, []int64{5}, tbRecv(t, res))

	// None: no committed offset is an error, until there is one.
	cn := cgSubscribe(t, b, "none", []string{"t"}, &ConsumerOptions{Reset: ResetNone})
	_, err = cn.Poll(ctx)
	require.ErrorIs(t, err, ErrNoCommittedOffset)
	_, err = cn.Position(tp)
	require.ErrorIs(t, err, ErrNoCommittedOffset)
	require.Equal(t, []TopicPartition{tp}, cn.Assignment())
	require.NoError(t, cn.CommitOffsets(ctx, map[TopicPartition]int64{tp: 2}))
	require.Equal(t, tbRange(2, 6), cgOffsets(cgPollN(t, cn, 4), 0))
}

// Retention moving the log start past a committed offset or a position:
// ResetEarliest / ResetLatest resume at the new start / the end, ResetNone
// fails with ErrOffsetOutOfRange; the committed offset stays as it was.
func TestOutOfRangeAfterRetention(t *testing.T) {
	b := openBroker(t, "", nil)
	tbRetentionTopic(t, b, "t")
	tp := cgTP("t", 0)
	ctx := t.Context()
	for _, g := range []string{"early", "latest", "none"} {
		c, err := b.Subscribe(g, []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		require.NoError(t, err)
		cgPollN(t, c, 1)
		require.NoError(t, c.CommitOffsets(ctx, map[TopicPartition]int64{tp: 0}))
		require.NoError(t, c.Close())
	}
	live := cgSubscribe(t, b, "live", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 1})
	require.Equal(t, []int64{0}, cgOffsets(cgPollN(t, live, 1), 0))

	// The rolls of the fill run size retention: no periodic check needed.
	tbRetentionFill(t, b, "t", 100, 400)
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	start, end := info.Partitions[0].StartOffset, info.Partitions[0].EndOffset
	require.Positive(t, start)
	require.Equal(t, int64(400), end)

	recs := cgPollN(t, live, 1)
	require.Equal(t, start, recs[0].Offset, "a position below the log start resets to it")
	require.Equal(t, fmt.Sprintf("v%d", start), string(recs[0].Value))

	early := cgSubscribe(t, b, "early", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, start, cgPollN(t, early, 1)[0].Offset)
	require.Equal(t, int64(0), cgCommitted(t, b, "early", tp), "the reset does not commit")

	latest := cgSubscribe(t, b, "latest", []string{"t"}, &ConsumerOptions{Reset: ResetLatest,
		OnAssigned: func(c *Consumer, parts []TopicPartition) { c.Pause(parts...) }})
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, err = latest.Poll(short) // gets the assignment, pauses, times out
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	pos, err := latest.Position(tp)
	require.NoError(t, err)
	require.Equal(t, end, pos)

	none := cgSubscribe(t, b, "none", []string{"t"}, &ConsumerOptions{Reset: ResetNone})
	_, err = none.Poll(ctx)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Equal(t, int64(0), cgCommitted(t, b, "none", tp))

	// A committed offset past the log end is out of range too.
	require.NoError(t, early.CommitOffsets(ctx, map[TopicPartition]int64{tp: 1000}))
	require.NoError(t, early.Close())
	again := cgSubscribe(t, b, "early", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, start, cgPollN(t, again, 1)[0].Offset)
}
