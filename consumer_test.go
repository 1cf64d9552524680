package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// Consumer-group behaviour: Subscribe, Poll, positions, commits, rebalances
// (hand-over, eager and cooperative), liveness, static membership and the
// group introspection calls. Helpers carry a "cg" prefix.
//
// Nothing here waits on the wall clock for a condition: waits are on
// channels fed by callbacks and poll loops (with a generous safety bound,
// tbRecv), and time-dependent behaviour (MaxWait, MaxPollInterval,
// SessionTimeout) runs inside testing/synctest bubbles, where time is
// virtual and advances only when every goroutine is blocked.

// cgTP names a partition.
func cgTP(topic string, p int32) TopicPartition { return TopicPartition{Topic: topic, Partition: p} }

// cgTPs names partitions ps of topic, in the given order.
func cgTPs(topic string, ps ...int32) []TopicPartition {
	out := make([]TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = cgTP(topic, p)
	}
	return out
}

// cgValue is the value cgPublish gives the record at offset off.
func cgValue(topic string, p int32, off int64) string { return fmt.Sprintf("%s/%d/%d", topic, p, off) }

// cgPublish appends n records to one partition in a single batch; each
// record's value names its topic, partition and offset (cgValue). The
// broker must place records where they say (ManualPartitioner, as
// openBroker's default), unless the topic has one partition.
func cgPublish(t testing.TB, b *Broker, topic string, p int32, n int) {
	t.Helper()
	start := tbEnds(t, b, topic)[p]
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: topic, Partition: p, Value: []byte(cgValue(topic, p, start+int64(i)))}
	}
	require.NoError(t, b.Publish(context.Background(), recs...))
	require.Equal(t, p, recs[0].Partition, "cgPublish needs a broker with ManualPartitioner")
}

// cgSubscribe subscribes and closes the consumer at the end of the test.
func cgSubscribe(t testing.TB, b *Broker, group string, topics []string, opts *ConsumerOptions) *Consumer {
	t.Helper()
	c, err := b.Subscribe(group, topics, opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// cgPollN polls until at least n records came back and returns clones of
// them all; the bound is a safety net against hangs.
func cgPollN(t testing.TB, c *Consumer, n int) []*Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, recs, "Poll returned no records and no error")
		for _, r := range recs {
			out = append(out, r.Clone())
		}
	}
	return out
}

// cgOffsets returns the offsets of recs from partition p, in order.
func cgOffsets(recs []*Record, p int32) []int64 {
	var out []int64
	for _, r := range recs {
		if r.Partition == p {
			out = append(out, r.Offset)
		}
	}
	return out
}

// cgCheckValues checks that each record carries the value cgPublish gave it.
func cgCheckValues(t testing.TB, recs []*Record) {
	t.Helper()
	for _, r := range recs {
		require.Equal(t, cgValue(r.Topic, r.Partition, r.Offset), string(r.Value))
	}
}

// cgCommitted returns the group's committed offset of tp as DescribeGroup
// reports it (-1 if none).
func cgCommitted(t testing.TB, b *Broker, group string, tp TopicPartition) int64 {
	t.Helper()
	info, err := b.DescribeGroup(group)
	require.NoError(t, err)
	for _, p := range info.Partitions {
		if p.Topic == tp.Topic && p.Partition == tp.Partition {
			return p.Committed
		}
	}
	return -1
}

// goid returns the calling goroutine's id, to check which goroutine runs
// the rebalance callbacks.
func goid() uint64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)])
	s = strings.TrimPrefix(s, "goroutine ")
	id, _ := strconv.ParseUint(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// cgTracker follows who owns which partition as the callbacks tell it, and
// records every breach of the hand-over rule: a partition assigned to a
// member while another still holds it (has not revoked it, lost it or been
// marked as released because it was evicted or fenced).
type cgTracker struct {
	mu       sync.Mutex
	owner    map[TopicPartition]string
	released map[string]bool
	problems []string
}

func newCGTracker() *cgTracker {
	return &cgTracker{owner: map[TopicPartition]string{}, released: map[string]bool{}}
}

func (tr *cgTracker) problem(format string, args ...any) {
	tr.mu.Lock()
	tr.problems = append(tr.problems, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func (tr *cgTracker) assign(who string, parts []TopicPartition) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, tp := range parts {
		if o, ok := tr.owner[tp]; ok && o != who && !tr.released[o] {
			tr.problems = append(tr.problems, fmt.Sprintf("%s was assigned %s while %s still held it", who, tp, o))
		}
		tr.owner[tp] = who
	}
}

func (tr *cgTracker) revoke(who string, parts []TopicPartition) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, tp := range parts {
		switch o := tr.owner[tp]; {
		case o == who:
			delete(tr.owner, tp)
		case !tr.released[who]:
			tr.problems = append(tr.problems, fmt.Sprintf("%s revoked %s, held by %q", who, tp, o))
		}
	}
}

func (tr *cgTracker) lost(who string, parts []TopicPartition) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, tp := range parts {
		if tr.owner[tp] == who {
			delete(tr.owner, tp)
		}
	}
}

// release lets others take who's partitions without a revocation: it was
// evicted or fenced.
func (tr *cgTracker) release(who string) {
	tr.mu.Lock()
	tr.released[who] = true
	tr.mu.Unlock()
}

func (tr *cgTracker) isReleased(who string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.released[who]
}

func (tr *cgTracker) owners() map[TopicPartition]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make(map[TopicPartition]string, len(tr.owner))
	for tp, o := range tr.owner {
		out[tp] = o
	}
	return out
}

func (tr *cgTracker) check(t testing.TB) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.Empty(t, tr.problems)
}

// cgEvent is one rebalance callback.
type cgEvent struct {
	kind  string // "assigned", "revoked" or "lost"
	parts []TopicPartition
}

// cgMember is a group member polling in a loop on its own goroutine, the
// way an application runs one. It reports callbacks on events and clones
// of the records it polled on recs. Unless the options set OnRevoked, it
// commits its positions there (the usual Kafka pattern). Every callback
// must run on the loop goroutine (inside Poll, or inside Close, which the
// loop calls itself when asked to stop), and every record Poll returns must
// come from a partition in the member's assignment.
type cgMember struct {
	t      testing.TB
	name   string
	c      *Consumer
	tr     *cgTracker
	recs   chan *Record
	events chan cgEvent
	ended  chan error    // the error that ended the poll loop, if one did
	closed chan error    // Close's result, once the loop closed the consumer
	exited chan struct{} // closed when the loop goroutine returns

	freezeReq chan chan struct{}
	thaw      chan struct{}
	quit      chan struct{}
	stopOnce  sync.Once
	loopID    atomic.Uint64
	// afterPoll, if set, runs on the loop goroutine after each Poll's
	// records were reported.
	afterPoll func(c *Consumer)
}

// cgStart subscribes a member and starts its poll loop; recs may be shared
// between members (nil: a channel of its own).
func cgStart(t testing.TB, b *Broker, tr *cgTracker, name, group string, topics []string, opts ConsumerOptions, recs chan *Record) *cgMember {
	t.Helper()
	if recs == nil {
		recs = make(chan *Record, 1<<16)
	}
	m := &cgMember{t: t, name: name, tr: tr, recs: recs, events: make(chan cgEvent, 1024),
		ended: make(chan error, 1), closed: make(chan error, 1), exited: make(chan struct{}), freezeReq: make(chan chan struct{}, 1), thaw: make(chan struct{}), quit: make(chan struct{})}
	user := opts
	opts.OnAssigned = func(c *Consumer, parts []TopicPartition) {
		m.onLoop("OnAssigned")
		tr.assign(name, parts)
		for _, tp := range parts {
			if !slices.Contains(c.Assignment(), tp) {
				tr.problem("%s: OnAssigned(%v) but Assignment() = %v", name, parts, c.Assignment())
			}
		}
		if user.OnAssigned != nil {
			user.OnAssigned(c, parts)
		}
		m.events <- cgEvent{"assigned", parts}
	}
	opts.OnRevoked = func(c *Consumer, parts []TopicPartition) {
		m.onLoop("OnRevoked")
		if user.OnRevoked != nil {
			user.OnRevoked(c, parts)
		} else if err := c.Commit(context.Background()); err != nil && !tr.isReleased(name) {
			tr.problem("%s: commit in OnRevoked(%v): %v", name, parts, err)
		}
		tr.revoke(name, parts)
		m.events <- cgEvent{"revoked", parts}
	}
	opts.OnLost = func(c *Consumer, parts []TopicPartition) {
		m.onLoop("OnLost")
		tr.lost(name, parts)
		if user.OnLost != nil {
			user.OnLost(c, parts)
		}
		m.events <- cgEvent{"lost", parts}
	}
	c, err := b.Subscribe(group, topics, &opts)
	require.NoError(t, err)
	m.c = c
	started := make(chan struct{})
	go m.loop(started)
	<-started
	t.Cleanup(m.cleanup)
	return m
}

func (m *cgMember) onLoop(callback string) {
	if id := goid(); id != m.loopID.Load() {
		m.tr.problem("%s: %s ran on goroutine %d, not the member's own (%d)", m.name, callback, id, m.loopID.Load())
	}
}

func (m *cgMember) loop(started chan struct{}) {
	defer close(m.exited)
	m.loopID.Store(goid())
	close(started)
	ctx := context.Background()
	for {
		select {
		case ack := <-m.freezeReq:
			close(ack)
			select {
			case <-m.thaw:
			case <-m.quit:
				m.closed <- m.c.Close()
				return
			}
		case <-m.quit:
			m.closed <- m.c.Close()
			return
		default:
		}
		recs, err := m.c.Poll(ctx)
		if errors.Is(err, ErrWakeup) {
			continue
		}
		if err != nil {
			// Polling is over (fenced, or the broker closed); Close
			// still runs here, on the member's goroutine, when asked.
			m.ended <- err
			<-m.quit
			m.closed <- m.c.Close()
			return
		}
		owned := m.c.Assignment()
		for _, r := range recs {
			if !slices.Contains(owned, cgTP(r.Topic, r.Partition)) {
				m.tr.problem("%s: Poll returned %s-%d@%d outside its assignment %v", m.name, r.Topic, r.Partition, r.Offset, owned)
			}
			m.recs <- r.Clone()
		}
		if m.afterPoll != nil {
			m.afterPoll(m.c)
		}
	}
}

// freeze stops the member polling (as if it hung or crashed) and returns
// once it is out of Poll: from then on the test goroutine may call its
// Consumer.
func (m *cgMember) freeze() {
	ack := make(chan struct{})
	m.freezeReq <- ack
	m.c.Wakeup()
	tbRecv(m.t, ack)
}

// unfreeze lets a frozen member poll again.
func (m *cgMember) unfreeze() { m.thaw <- struct{}{} }

// stop makes the loop Close the consumer, on its own goroutine.
func (m *cgMember) stop() {
	m.stopOnce.Do(func() {
		close(m.quit)
		m.c.Wakeup()
	})
}

// close stops the member and requires a clean Close.
func (m *cgMember) close(t testing.TB) {
	t.Helper()
	m.stop()
	require.NoError(t, tbRecv(t, m.closed))
}

// cleanup stops the member at the end of a test and waits for its loop.
func (m *cgMember) cleanup() {
	m.stop()
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.t.Errorf("%s: the poll loop did not end", m.name)
	}
}

// assignment returns the member's assignment, read while it is frozen
// (Assignment belongs to the polling goroutine).
func (m *cgMember) assignment() []TopicPartition {
	m.freeze()
	defer m.unfreeze()
	return m.c.Assignment()
}

// expect returns the member's next callback, which must be of kind.
func (m *cgMember) expect(t testing.TB, kind string) []TopicPartition {
	t.Helper()
	select {
	case ev := <-m.events:
		require.Equal(t, kind, ev.kind, "%s: got %s(%v), want %s", m.name, ev.kind, ev.parts, kind)
		return ev.parts
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no %s callback", m.name, kind)
		return nil
	}
}

// noEvents requires that no callback is pending.
func (m *cgMember) noEvents(t testing.TB) {
	t.Helper()
	select {
	case ev := <-m.events:
		t.Fatalf("%s: unexpected %s(%v)", m.name, ev.kind, ev.parts)
	default:
	}
}

// take receives n records from the member.
func (m *cgMember) take(t testing.TB, n int) []*Record {
	t.Helper()
	out := make([]*Record, n)
	for i := range out {
		out[i] = tbRecv(t, m.recs)
	}
	return out
}

// noRecords requires that no record is pending.
func (m *cgMember) noRecords(t testing.TB) {
	t.Helper()
	select {
	case r := <-m.recs:
		t.Fatalf("%s: unexpected record %s-%d@%d", m.name, r.Topic, r.Partition, r.Offset)
	default:
	}
}

// cgDelivered counts deliveries per partition and offset.
type cgDelivered map[TopicPartition]map[int64]int

func (d cgDelivered) add(t testing.TB, recs ...*Record) {
	t.Helper()
	cgCheckValues(t, recs)
	for _, r := range recs {
		tp := cgTP(r.Topic, r.Partition)
		if d[tp] == nil {
			d[tp] = map[int64]int{}
		}
		d[tp][r.Offset]++
	}
}

// exactlyOnce requires that each partition's offsets [0, ends[p]) were
// delivered exactly once, and nothing else.
func (d cgDelivered) exactlyOnce(t testing.TB, topic string, ends []int64) {
	t.Helper()
	for p, end := range ends {
		tp := cgTP(topic, int32(p))
		for off := int64(0); off < end; off++ {
			require.Equal(t, 1, d[tp][off], "%s@%d delivered %d times", tp, off, d[tp][off])
		}
		require.Len(t, d[tp], int(end), "%s: offsets delivered beyond its end", tp)
	}
}

// drain returns what is left in the channels (their writers have ended).
func drain(chs ...chan *Record) []*Record {
	var out []*Record
	for _, ch := range chs {
		for {
			select {
			case r := <-ch:
				out = append(out, r)
				continue
			default:
			}
			break
		}
	}
	return out
}

// ---------------------------------------------------------------------
// Subscribe and bad input

func TestSubscribeAutoCreatesTopics(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, AutoCreateTopics: true, DefaultTopic: TopicConfig{Partitions: 3}})
	c := cgSubscribe(t, b, "g", []string{"fresh"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, []string{"fresh"}, b.Topics())
	cgPublish(t, b, "fresh", 2, 3)
	recs := cgPollN(t, c, 3)
	cgCheckValues(t, recs)
	require.Equal(t, cgTPs("fresh", 0, 1, 2), c.Assignment())
}

// ---------------------------------------------------------------------
// Poll, positions, MaxPollRecords, MinBytes / MaxWait

func TestConsumerClose(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 2)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	cgPollN(t, c, 2)

	// Close from another goroutine ends a blocked Poll.
	res := make(chan error, 1)
	go func() {
		_, err := c.Poll(t.Context())
		res <- err
	}()
	require.Eventually(t, func() bool { return c.state.Load() == consumerPolling }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	require.ErrorIs(t, tbRecv(t, res), ErrClosed)
	require.NoError(t, c.Close(), "Close twice is safe")

	ctx := t.Context()
	tp := cgTP("t", 0)
	_, err := c.Poll(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, c.Commit(ctx), ErrClosed)
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{tp: 1}), ErrClosed)
	_, err = c.Committed(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, c.Seek(tp, 0), ErrClosed)
	require.ErrorIs(t, c.SeekToBeginning(), ErrClosed)
	require.ErrorIs(t, c.SeekToEnd(tp), ErrClosed)
	_, err = c.Position(tp)
	require.ErrorIs(t, err, ErrClosed)
	require.Empty(t, c.Assignment())
	c.Wakeup() // harmless

	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Empty", info.State, "the member left")
	require.Empty(t, info.Members)

	// Closing the broker closes its consumers and ends their Polls.
	c2 := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	cgPollN(t, c2, 2)
	go func() {
		_, err := c2.Poll(ctx)
		res <- err
	}()
	require.Eventually(t, func() bool { return c2.state.Load() == consumerPolling }, 10*time.Second, time.Millisecond)
	require.NoError(t, b.Close())
	require.ErrorIs(t, tbRecv(t, res), ErrClosed)
	_, err = c2.Poll(ctx)
	require.ErrorIs(t, err, ErrClosed)
}

// ---------------------------------------------------------------------
// Seek, Pause, reset policies

func TestPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
		cgPublish(t, b, "t", 0, 5)
		cgPublish(t, b, "t", 1, 5)
		p0, p1 := cgTP("t", 0), cgTP("t", 1)
		c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
			OnAssigned: func(c *Consumer, parts []TopicPartition) { c.Pause(p0) }})
		recs := cgPollN(t, c, 5)
		require.Len(t, recs, 5)
		require.Equal(t, tbRange(0, 5), cgOffsets(recs, 1))
		require.Empty(t, cgOffsets(recs, 0), "no records from a paused partition")
		require.Equal(t, []TopicPartition{p0}, c.Paused())
		pos, err := c.Position(p0)
		require.NoError(t, err)
		require.Zero(t, pos, "pausing keeps the position")

		// Only the paused partition has records: Poll blocks.
		res := make(chan int, 1)
		poll := func() {
			recs, err := c.Poll(t.Context())
			if err != nil {
				res <- -1
				return
			}
			res <- len(recs)
		}
		go poll()
		cgPublish(t, b, "t", 0, 1)
		synctest.Wait()
		select {
		case n := <-res:
			t.Fatalf("Poll returned %d records from a paused partition", n)
		default:
		}
		c.Wakeup()
		require.Equal(t, -1, <-res)

		c.Pause(cgTP("t", 7), cgTP("x", 0)) // not assigned: no effect
		require.Equal(t, []TopicPartition{p0}, c.Paused())
		c.Resume(p1) // not paused: no effect
		require.Equal(t, []TopicPartition{p0}, c.Paused())
		c.Resume(p0)
		require.Empty(t, c.Paused())
		require.Equal(t, tbRange(0, 6), cgOffsets(cgPollN(t, c, 6), 0))
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		require.Equal(t, 1, info.Generation, "pausing does not rebalance")
	})
}

// ---------------------------------------------------------------------
// Races (run with -race)

// Close may come from another goroutine while the polling goroutine is
// between Polls, looking at its assignment. The poller reads, then parks;
// once it is parked (seen in a goroutine dump, which orders nothing), Close
// runs: under -race any unsynchronized write of what the poller read is
// reported, whatever the scheduling.
func TestCloseWhilePollerIsBetweenPollsRace(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 3)
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	cgPollN(t, c, 3)
	release := make(chan struct{})
	done := make(chan struct{})
	go func() { // the polling goroutine, between two Polls
		defer close(done)
		_ = c.Assignment()
		cgParkAfterRead(release)
	}()
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "cgParkAfterRead")
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	close(release)
	<-done
}

//go:noinline
func cgParkAfterRead(release chan struct{}) { <-release }

// The same with Commit and Position in a poll loop, for many consumers.
func TestCloseWhilePollerCommitsRace(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	for range 20 {
		cgPublish(t, b, "t", 0, 10)
		cgPublish(t, b, "t", 1, 10)
	}
	for i := range 10 {
		c, err := b.Subscribe(fmt.Sprintf("g%d", i), []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 3})
		require.NoError(t, err)
		polled := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			ctx := context.Background()
			for n := 0; ; n++ {
				if _, err := c.Poll(ctx); err != nil {
					done <- err
					return
				}
				if n == 0 {
					close(polled)
				}
				if err := c.Commit(ctx); err != nil {
					done <- err
					return
				}
				_, _ = c.Position(cgTP("t", 0))
			}
		}()
		tbRecv(t, polled)
		require.NoError(t, c.Close())
		err = tbRecv(t, done)
		if !errors.Is(err, ErrClosed) {
			// A Commit that started while Close ran may instead find the
			// member gone from the group.
			require.ErrorIs(t, err, ErrStaleGeneration)
		}
	}
}
