package streamtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
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

// deadlockChild names the child test TestSynctestWaitingForNothingFailsFast
// runs in a process of its own.
const deadlockChild = "STREAMTEST_DEADLOCK_CHILD"

// A test waiting for a record that never comes fails at once, with
// synctest's deadlock report, rather than running virtual time until go
// test's timeout: an idle broker arms no timer, even with SyncInterval,
// time retention, a Producer and a group with committed offsets about, and
// a consumer waiting in Poll has no deadline. synctest reports a deadlock
// by panicking, which ends the test binary, so the waiting test runs in a
// child process.
func TestSynctestWaitingForNothingFailsFast(t *testing.T) {
	if os.Getenv(deadlockChild) != "" {
		waitForNothing(t)
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSynctestWaitingForNothingFailsFast$", "-test.timeout=30s", "-test.count=1")
	cmd.Env = append(os.Environ(), deadlockChild+"=1")
	raw, err := cmd.CombinedOutput()
	out := string(raw[:min(len(raw), 4096)]) // the report's head says it all
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child must fail: %s", out)
	require.NoError(t, ctx.Err(), "the child ran on: %s", out)
	require.Contains(t, out, "deadlock: all goroutines in bubble are blocked", "synctest's deadlock report")
	require.Contains(t, string(raw), "stream.(*Consumer).Poll", "the report shows where the test waits")
	t.Logf("the child failed as it should in %v", time.Since(start).Round(time.Millisecond))
}

// waitForNothing is the child: it Polls with nothing published, as a test
// of code that expects a record would.
func waitForNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := streamtest.NewBroker(t,
			streamtest.WithOptions(&stream.Options{Sync: stream.SyncInterval, SyncInterval: time.Second,
				RetentionCheckInterval: time.Minute, OffsetsRetention: time.Hour}),
			streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 2, Retention: time.Hour}))
		p := mustProducer(b, &stream.ProducerOptions{Linger: time.Second})
		defer p.Close()
		require.NoError(t, b.SetCommittedOffsets("billing", map[stream.TopicPartition]int64{{Topic: "orders"}: 0}))
		require.NoError(t, b.DeleteGroup("billing"))
		c := streamtest.Subscribe(t, b, "billing", nil, "orders")
		_, err := c.Poll(t.Context()) // blocks for ever: synctest panics
		t.Errorf("Poll returned %v", err)
	})
}

// Where there is work, virtual time runs it: SyncInterval fsyncs written
// data, time retention deletes records once they pass Retention, a group's
// offsets expire OffsetsRetention after its last member left, at the
// instants RetentionCheckInterval's schedule gives, as tickers started at
// Open would. (That nothing is armed once nothing is left to do is
// TestSynctestWaitingForNothingFailsFast's part.)
func TestSynctestBackgroundWorkRunsInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		b := streamtest.NewBroker(t,
			streamtest.WithOptions(&stream.Options{Sync: stream.SyncInterval, SyncInterval: time.Second,
				RetentionCheckInterval: time.Minute, OffsetsRetention: 2 * time.Hour}),
			streamtest.WithTopic("orders", stream.TopicConfig{Retention: time.Hour}))
		streamtest.Publish(t, b, "orders", "a")
		fsyncs := b.Stats().Fsyncs
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, fsyncs+1, b.Stats().Fsyncs, "synced a SyncInterval later")

		// Consumed and committed; the member leaves at start+1s.
		c := streamtest.Subscribe(t, b, "billing", nil, "orders")
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, streamtest.Values(recs))
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())

		// A Poll with a deadline waits exactly that long: no other timer
		// wakes it.
		c = streamtest.Subscribe(t, b, "other", nil, "orders")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		recs, err = c.Poll(ctx)
		cancel()
		require.NoError(t, err)
		require.Len(t, recs, 1)
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
		_, err = c.Poll(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Minute+time.Second, time.Since(start))
		require.NoError(t, c.Close())

		// The record is past Retention at start+1h+1ms: the check at
		// start+61m deletes it.
		startOffset := func() int64 {
			info, err := b.DescribeTopic("orders")
			require.NoError(t, err)
			return info.Partitions[0].StartOffset
		}
		time.Sleep(time.Until(start.Add(61*time.Minute - time.Millisecond)))
		synctest.Wait()
		require.Zero(t, startOffset())
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, int64(1), startOffset(), "deleted at the first check past Retention")

		// billing's offsets expire 2h after its member left (start+1s): at
		// the check of start+2h1m.
		time.Sleep(time.Until(start.Add(2*time.Hour + time.Minute - time.Millisecond)))
		synctest.Wait()
		require.NotEmpty(t, streamtest.Committed(t, b, "billing"))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Empty(t, streamtest.Committed(t, b, "billing"), "expired")
	})
}
