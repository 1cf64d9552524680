package streamtest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

var errBoom = errors.New("boom")

func rec(topic, v string) *stream.Record {
	return &stream.Record{Topic: topic, Value: []byte(v)}
}

func TestFaultyPublisher(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	p := streamtest.NewFaultyPublisher(b)
	ctx := t.Context()

	require.NoError(t, p.Publish(ctx, rec("t", "1")), "no faults: calls go through")

	// Queued faults apply in order, one per call.
	errA, errB := errors.New("a"), errors.New("b")
	p.FailNext(errA)
	p.FailNextAfterWrite(errB)
	p.FailNext(errA)
	require.ErrorIs(t, p.Publish(ctx, rec("t", "lost")), errA)
	require.ErrorIs(t, p.Publish(ctx, rec("t", "2")), errB, "written, but reported as failed")
	require.ErrorIs(t, p.Publish(ctx, rec("t", "lost")), errA)
	require.NoError(t, p.Publish(ctx, rec("t", "3")))
	require.Equal(t, []string{"1", "2", "3"}, streamtest.Values(streamtest.Records(t, b, "t")))

	// FailAlways, once the queue is used up, until Heal.
	p.FailNext(errA)
	p.FailAlways(errB)
	require.ErrorIs(t, p.Publish(ctx, rec("t", "lost")), errA)
	require.ErrorIs(t, p.Publish(ctx, rec("t", "lost")), errB)
	require.ErrorIs(t, p.Publish(ctx, rec("t", "lost")), errB)
	p.Heal()
	require.NoError(t, p.Publish(ctx, rec("t", "4")))
	require.Equal(t, []string{"1", "2", "3", "4"}, streamtest.Values(streamtest.Records(t, b, "t")))
	require.Equal(t, 9, p.Calls())

	// A real error of the broker comes through, also after a write fault.
	p.FailNextAfterWrite(errA)
	require.ErrorIs(t, p.Publish(ctx, rec("missing", "x")), stream.ErrTopicNotFound)
	require.ErrorIs(t, p.Publish(ctx, rec("missing", "x")), stream.ErrTopicNotFound)

	require.Panics(t, func() { p.FailNext(nil) })
}

func TestFaultyPublisherConcurrent(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	p := &streamtest.FaultyPublisher{Publisher: b}
	for range 10 {
		p.FailNext(errBoom)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := p.Publish(context.Background(), rec("t", "x")); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 10, failed)
	require.Len(t, streamtest.Records(t, b, "t"), 30)
	require.Equal(t, 40, p.Calls())
}

func TestFaultyCommitter(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
	streamtest.Publish(t, b, "t", "a", "b")
	c := streamtest.Subscribe(t, b, "g", nil, "t")
	fc := &streamtest.FaultyCommitter{Committer: c}
	_, err := c.Poll(t.Context())
	require.NoError(t, err)

	fc.FailNextCommit(stream.ErrRebalanceInProgress)
	require.ErrorIs(t, fc.Commit(t.Context()), stream.ErrRebalanceInProgress)
	require.Empty(t, streamtest.Committed(t, b, "g"), "a failed commit commits nothing")
	require.NoError(t, fc.Commit(t.Context()))
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: "t"}: 2}, streamtest.Committed(t, b, "g"))

	fc.FailCommits(errBoom)
	require.ErrorIs(t, fc.Commit(t.Context()), errBoom)
	require.ErrorIs(t, fc.Commit(t.Context()), errBoom)
	fc.Heal()
	require.NoError(t, fc.Commit(t.Context()))
	require.Equal(t, 5, fc.Calls())
}

func TestFaultyPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
		streamtest.Publish(t, b, "t", "a")
		c := streamtest.Subscribe(t, b, "g", nil, "t")
		fp := &streamtest.FaultyPoller{Poller: c}

		fp.FailNextPoll(errBoom)
		fp.DelayPoll(time.Hour)
		_, err := fp.Poll(t.Context())
		require.ErrorIs(t, err, errBoom)

		start := time.Now()
		recs, err := fp.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, streamtest.Values(recs))
		require.Equal(t, time.Hour, time.Since(start), "delayed, in virtual time")
		// An hour is past MaxPollInterval: the member was evicted when it
		// came back, rejoined, and may commit in its new generation.
		require.NoError(t, c.Commit(t.Context()))

		// A delay ends with the context (again evicting the member: it
		// committed, so it does not see "a" again).
		fp.DelayPoll(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start = time.Now()
		_, err = fp.Poll(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Minute, time.Since(start))

		fp.FailNextPoll(errBoom)
		fp.Heal()
		streamtest.Publish(t, b, "t", "b")
		recs, err = fp.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, streamtest.Values(recs))
		require.Equal(t, 4, fp.Calls())
	})
}

func TestFaultyConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{}))
		streamtest.Publish(t, b, "t", "a")
		fc := &streamtest.FaultyConsumer{Consumer: streamtest.Subscribe(t, b, "g", nil, "t")}

		fc.FailNextPoll(errBoom)
		_, err := fc.Poll(t.Context())
		require.ErrorIs(t, err, errBoom)
		fc.DelayPoll(time.Second) // virtual
		recs, err := fc.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, streamtest.Values(recs))

		fc.FailNextCommit(errBoom)
		require.ErrorIs(t, fc.Commit(t.Context()), errBoom)
		require.Empty(t, streamtest.Committed(t, b, "g"))
		fc.FailCommits(errBoom)
		require.ErrorIs(t, fc.Commit(t.Context()), errBoom)
		fc.Heal()
		require.NoError(t, fc.Commit(t.Context()))
		require.Len(t, streamtest.Committed(t, b, "g"), 1)
		require.Equal(t, 2, fc.Polls())
		require.Equal(t, 3, fc.Commits())
	})
}
