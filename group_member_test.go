package stream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/embedstream/stream/group"
	"github.com/stretchr/testify/require"
)

// A GroupMember and a Consumer share a group: the member drives the task
// protocol itself, the two split the partitions, and commits are fenced by
// generation and ownership.
func TestGroupMemberWithConsumer(t *testing.T) {
	b, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))

	gm, err := b.JoinGroup("g", RangeBalancer{}, group.JoinRequest{Topics: []string{"t"}, MaxPollInterval: time.Minute})
	require.NoError(t, err)
	task, err := gm.Poll()
	require.NoError(t, err)
	require.Equal(t, group.Assign, task.Kind)
	require.Len(t, task.Owned, 2)
	gm.Ack(task)
	gm.PollDone()
	first := task.Generation

	assigned := make(chan []TopicPartition, 4)
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{OnAssigned: func(_ *Consumer, p []TopicPartition) { assigned <- p }})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan error, 1)
	go func() { _, err := c.Poll(ctx); polled <- err }()

	// The Consumer's join starts a rebalance: the eager member revokes
	// everything, then takes its share.
	bell := make(chan struct{}, 1)
	gm.Notify(bell)
	defer gm.Forget(bell)
	require.Eventually(t, func() bool { s, _ := gm.State(); return s == group.PreparingRebalance }, 10*time.Second, time.Millisecond)
	require.NoError(t, gm.Commit(first, map[TopicPartition]int64{{Topic: "t", Partition: 1}: 0}), "commits before the rejoin are allowed")
	var owned []TopicPartition
	for owned == nil {
		// A bell rings once per Notify: register again before each look,
		// or a change between two looks is missed and Wait waits for ever.
		gm.Notify(bell)
		task, err := gm.Poll()
		require.NoError(t, err)
		switch task.Kind {
		case group.Revoke, group.Assign:
			gm.Ack(task)
			if task.Kind == group.Assign {
				owned = task.Owned
			}
		case group.Wait:
			<-bell
		}
	}
	gm.PollDone()
	require.Len(t, owned, 1)
	require.Len(t, <-assigned, 1)
	_, gen, err := gm.Owned()
	require.NoError(t, err)
	require.Greater(t, gen, first)
	require.ErrorIs(t, gm.Commit(first, map[TopicPartition]int64{owned[0]: 0}), ErrStaleGeneration)
	other := TopicPartition{Topic: "t", Partition: 1 - owned[0].Partition}
	require.ErrorIs(t, gm.Commit(gen, map[TopicPartition]int64{other: 0}), ErrNotAssigned)
	require.NoError(t, gm.Commit(gen, map[TopicPartition]int64{owned[0]: 0}))

	gm.Leave()
	_, err = gm.Poll()
	require.ErrorIs(t, err, group.ErrUnknownMember)
	cancel()
	require.True(t, errors.Is(<-polled, context.Canceled))
}

func TestJoinGroupErrors(t *testing.T) {
	b, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	req := group.JoinRequest{Topics: []string{"t"}}
	_, err = b.JoinGroup("", RangeBalancer{}, req)
	require.ErrorIs(t, err, ErrInvalidGroup)
	_, err = b.JoinGroup("g", nil, req)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.JoinGroup("g", RangeBalancer{}, group.JoinRequest{MaxPollInterval: -1})
	require.ErrorIs(t, err, ErrInvalidConfig)
	gm, err := b.JoinGroup("g", RangeBalancer{}, req)
	require.NoError(t, err)
	_, err = b.JoinGroup("g", RoundRobinBalancer{}, req)
	require.ErrorIs(t, err, ErrInvalidConfig, "the group's members use range")
	gm.Leave()
	require.NoError(t, b.Close())
	_, err = b.JoinGroup("g", RangeBalancer{}, req)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, gm.Commit(0, nil), ErrClosed)
}
