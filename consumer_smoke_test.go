package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConsumerSmoke(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, &Options{Sync: SyncNever}) // keys spread the records
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 4}))
	for i := 0; i < 100; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c1, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	seen := map[string]bool{}
	for len(seen) < 100 {
		recs, err := c1.Poll(ctx)
		require.NoError(t, err)
		for _, r := range recs {
			seen[string(r.Value)] = true
		}
	}
	require.Len(t, c1.Assignment(), 4)
	require.NoError(t, c1.Commit(ctx))
	got, err := c1.Committed(ctx)
	require.NoError(t, err)
	t.Logf("committed %v positions %v", got, c1.positions(nil))
	// A second member joins: c1 must give up two partitions at its next Poll.
	assigned := make(chan []TopicPartition, 1)
	c2, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
		OnAssigned: func(c *Consumer, parts []TopicPartition) { assigned <- parts }})
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := c2.Poll(ctx) // blocks: everything is committed; the assignment arrives first
		done <- err
	}()
	for len(c1.Assignment()) != 2 {
		pctx, pcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := c1.Poll(pctx)
		pcancel()
		if err != nil && pctx.Err() == nil {
			require.NoError(t, err)
		}
	}
	require.Len(t, <-assigned, 2)
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Stable", info.State)
	require.Len(t, info.Members, 2)
	for _, p := range info.Partitions {
		require.Zero(t, p.Lag, "%+v", p)
	}
	require.NoError(t, c1.Close())
	require.NoError(t, c2.Close())
	require.ErrorIs(t, <-done, ErrClosed)
	require.Equal(t, []string{"g"}, b.Groups())
}

func TestSeekToCommittedRewinds(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	for i := 0; i < 5; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte(fmt.Sprint(i))}))
	}
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 2})
	require.NoError(t, err)
	defer c.Close()
	recs, err := c.Poll(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.NoError(t, c.Commit(t.Context())) // committed 2
	recs, err = c.Poll(t.Context())
	require.NoError(t, err)
	require.Equal(t, "2", string(recs[0].Value))
	require.NoError(t, c.SeekToCommitted())
	recs, err = c.Poll(t.Context())
	require.NoError(t, err)
	require.Equal(t, "2", string(recs[0].Value), "rewound to the commit")
	pos, err := c.Position(TopicPartition{Topic: "t"})
	require.NoError(t, err)
	require.Equal(t, int64(4), pos)
}
