package streamtest_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

// member polls in its own goroutine until its consumer closes, recording
// each assignment the group gives it and the values it consumed, and
// committing after each Poll.
type member struct {
	c    *stream.Consumer
	done chan struct{}

	mu          sync.Mutex
	assignments [][]stream.TopicPartition
	values      []string
}

func startMember(t *testing.T, b *stream.Broker, group string, opts *stream.ConsumerOptions, topic string) *member {
	m := &member{done: make(chan struct{})}
	opts.OnAssigned = func(c *stream.Consumer, _ []stream.TopicPartition) {
		m.mu.Lock()
		m.assignments = append(m.assignments, c.Assignment())
		m.mu.Unlock()
	}
	m.c = streamtest.Subscribe(t, b, group, opts, topic)
	go func() {
		defer close(m.done)
		for {
			recs, err := m.c.Poll(context.Background())
			if errors.Is(err, stream.ErrClosed) {
				return
			}
			m.mu.Lock()
			m.values = append(m.values, streamtest.Values(recs)...)
			m.mu.Unlock()
			if err := m.c.Commit(context.Background()); err != nil && !errors.Is(err, stream.ErrClosed) {
				panic(err) // a commit of the test's own members never fails
			}
		}
	}()
	return m
}

func (m *member) assignment() []stream.TopicPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.assignments) == 0 {
		return nil
	}
	return m.assignments[len(m.assignments)-1]
}

func (m *member) stop() {
	m.c.Close()
	<-m.done
}

func parts(topic string, ps ...int32) []stream.TopicPartition {
	out := make([]stream.TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = stream.TopicPartition{Topic: topic, Partition: p}
	}
	return out
}

// A consumer group rebalances when a member joins, and evicts a member that
// stops polling for MaxPollInterval, all in virtual time: the test takes
// milliseconds of real time for two virtual minutes.
func TestSynctestRebalanceAndEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 4}),
			streamtest.WithOptions(&stream.Options{Partitioner: stream.ManualPartitioner{}}))
		opts := streamtest.ConsumerOptions()
		opts.MaxPollInterval = time.Minute

		// One member: it gets all four partitions.
		first := startMember(t, b, "billing", opts, "orders")
		synctest.Wait()
		require.Equal(t, parts("orders", 0, 1, 2, 3), first.assignment())

		// A second member joins and polls once: the range balancer splits
		// the partitions two and two. That Poll returns when its context
		// ends, after a virtual second, so the member then stops polling.
		opts2 := streamtest.ConsumerOptions()
		opts2.MaxPollInterval = time.Minute
		second := streamtest.Subscribe(t, b, "billing", opts2, "orders")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := second.Poll(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		synctest.Wait()
		require.Equal(t, parts("orders", 0, 1), first.assignment())
		require.Equal(t, parts("orders", 2, 3), second.Assignment())
		lastPoll := time.Now()
		require.Equal(t, time.Second, lastPoll.Sub(start), "no real time passes in the bubble")

		// Records published now reach both members' partitions...
		for p := range int32(4) {
			streamtest.PublishRecords(t, b, &stream.Record{Topic: "orders", Partition: p, Value: []byte{'0' + byte(p)}})
		}
		synctest.Wait()
		first.mu.Lock()
		require.Equal(t, []string{"0", "1"}, slices.Sorted(slices.Values(first.values)))
		first.mu.Unlock()

		// ...but the second member stopped polling. Just before
		// MaxPollInterval it still holds its partitions; just after, the
		// group has evicted it and the first member owns everything,
		// including the records the second never read.
		time.Sleep(time.Until(lastPoll.Add(time.Minute - time.Millisecond)))
		synctest.Wait()
		require.Equal(t, parts("orders", 0, 1), first.assignment())
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, parts("orders", 0, 1, 2, 3), first.assignment())
		first.mu.Lock()
		require.Equal(t, []string{"0", "1", "2", "3"}, slices.Sorted(slices.Values(first.values)))
		first.mu.Unlock()
		require.Equal(t, time.Second+time.Minute+time.Millisecond, time.Since(start))

		// The evicted member's commits fail; its next Poll rejoins (and
		// rebalances again).
		require.ErrorIs(t, second.Commit(context.Background()), stream.ErrStaleGeneration)

		first.stop()
	})
}

// DelayPoll makes the code under test slow between polls, which gets its
// consumer evicted after MaxPollInterval: the eviction a slow handler would
// cause in production, shown here in virtual time.
func TestSynctestDelayPollEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 2}))
		streamtest.Publish(t, b, "orders", "a")

		var lost []stream.TopicPartition
		opts := streamtest.ConsumerOptions()
		opts.MaxPollInterval = 30 * time.Second
		opts.OnLost = func(_ *stream.Consumer, p []stream.TopicPartition) { lost = p }
		slow := &streamtest.FaultyConsumer{Consumer: streamtest.Subscribe(t, b, "g", opts, "orders")}
		recs, err := slow.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, streamtest.Values(recs))
		require.NoError(t, slow.Commit(t.Context()))

		other := startMember(t, b, "g", streamtest.ConsumerOptions(), "orders")
		// The slow member must poll to give up its partitions to the
		// newcomer (an eager rebalance).
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		_, _ = slow.Poll(ctx)
		cancel()
		synctest.Wait()
		require.Len(t, other.assignment(), 1)

		slow.DelayPoll(time.Minute)
		start := time.Now()
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute+time.Millisecond)
		_, err = slow.Poll(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Minute+time.Millisecond, time.Since(start))
		require.Len(t, lost, 1, "the delayed Poll found the member evicted")
		require.Equal(t, 3, slow.Polls())
		other.stop()
	})
}

// Producer lingers and static members' session timeouts run on the
// bubble's clock too.
func TestSynctestProducerLingerAndSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("t", stream.TopicConfig{Partitions: 2}))
		p := mustProducer(b, &stream.ProducerOptions{Linger: time.Hour})
		defer p.Close()
		start := time.Now()
		written := make(chan time.Duration, 1)
		p.Publish(t.Context(), &stream.Record{Topic: "t", Value: []byte("x")}, func(_ *stream.Record, err error) {
			require.NoError(t, err)
			written <- time.Since(start)
		})
		time.Sleep(2 * time.Hour)
		require.Equal(t, time.Hour, <-written, "written when the linger expired")

		// A static member that closes keeps its partitions for
		// SessionTimeout (1s with ConsumerOptions), then they move.
		static := streamtest.ConsumerOptions()
		static.InstanceID = "a"
		a := streamtest.Subscribe(t, b, "g", static, "t")
		_, err := a.Poll(t.Context())
		require.NoError(t, err)
		other := startMember(t, b, "g", streamtest.ConsumerOptions(), "t")
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		_, _ = a.Poll(ctx)
		cancel()
		synctest.Wait()
		require.Equal(t, parts("t", 1), other.assignment())

		require.NoError(t, a.Close())
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, parts("t", 1), other.assignment(), "within the session timeout")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, parts("t", 0, 1), other.assignment(), "after it")
		other.stop()
	})
}

// A member waiting in Poll must evict a peer that stops polling even when
// nothing else happens in the group meanwhile: the waiter armed its
// eviction timer when the peer was still inside Poll (no deadline yet), so
// the peer's leaving Poll must wake it to re-arm (Coordinator.PollDone
// signals a change when it creates the earliest deadline). A regression
// test: without that signal the peer kept its partitions for ever.
func TestSynctestEvictionOfAQuietPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 2}))
		opts := streamtest.ConsumerOptions()
		quiet := streamtest.Subscribe(t, b, "g", opts, "orders")
		busy := startMember(t, b, "g", streamtest.ConsumerOptions(), "orders")
		// quiet polls once, for a second, then stops polling.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := quiet.Poll(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		synctest.Wait()
		require.Equal(t, parts("orders", 1), busy.assignment())

		time.Sleep(time.Minute) // MaxPollInterval is 10s
		synctest.Wait()
		require.Equal(t, parts("orders", 0, 1), busy.assignment(), "quiet should have been evicted")
		busy.stop()
	})
}
