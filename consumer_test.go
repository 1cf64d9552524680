package stream

import (
	"bytes"
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

	"github.com/stretchr/testify/assert"
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
// record's value names its topic, partition and offset (cgValue).
func cgPublish(t testing.TB, b *Broker, topic string, p int32, n int) {
	t.Helper()
	start := tbEnds(t, b, topic)[p]
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: topic, Partition: p, Value: []byte(cgValue(topic, p, start+int64(i)))}
	}
	require.NoError(t, b.Publish(context.Background(), recs...))
}

// cgPublishSized appends one record with a value of size bytes.
func cgPublishSized(t testing.TB, b *Broker, topic string, p int32, size int) {
	t.Helper()
	require.NoError(t, b.Publish(context.Background(), &Record{Topic: topic, Partition: p, Value: make([]byte, size)}))
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

// cgSettled waits until the group is stable with all n partitions held,
// as both the group and the callbacks tell.
func cgSettled(t testing.TB, b *Broker, group string, tr *cgTracker, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		info, err := b.DescribeGroup(group)
		if err != nil || info.State != "Stable" {
			return false
		}
		held := 0
		for _, m := range info.Members {
			held += len(m.Assignment)
		}
		return held == n && len(tr.owners()) == n
	}, 10*time.Second, time.Millisecond, group)
}

// ---------------------------------------------------------------------
// Subscribe and bad input

func TestSubscribeRejectsBadInput(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))

	_, err := b.Subscribe("", []string{"t"}, nil)
	require.ErrorIs(t, err, ErrInvalidGroup)
	_, err = b.Subscribe("g", nil, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.Subscribe("g", []string{}, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.Subscribe("g", []string{"nope"}, nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.Subscribe("g", []string{"t", "nope"}, nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.Subscribe("g", []string{"bad/name"}, nil)
	require.ErrorIs(t, err, ErrInvalidTopic)
	for name, o := range map[string]ConsumerOptions{
		"reset too big":       {Reset: ResetNone + 1},
		"reset negative":      {Reset: -1},
		"auto commit every":   {AutoCommitEvery: -time.Second},
		"max poll records":    {MaxPollRecords: -1},
		"min bytes":           {MinBytes: -1},
		"max wait":            {MaxWait: -time.Second},
		"session timeout":     {SessionTimeout: -time.Second},
		"max poll interval":   {MaxPollInterval: -time.Second},
		"everything negative": {MaxPollRecords: -1, MinBytes: -1},
	} {
		_, err := b.Subscribe("g", []string{"t"}, &o)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	require.Empty(t, b.Groups(), "a refused Subscribe joins nothing")
	_, err = b.DescribeTopic("nope")
	require.ErrorIs(t, err, ErrTopicNotFound, "a refused Subscribe creates no topic")

	// All members of a group use one kind of balancer.
	c := cgSubscribe(t, b, "g", []string{"t"}, nil)
	_, err = b.Subscribe("g", []string{"t"}, &ConsumerOptions{Balancer: CooperativeStickyBalancer{}})
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.NoError(t, c.Close())
	c2 := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Balancer: CooperativeStickyBalancer{}})
	require.NoError(t, c2.Close(), "once the group is empty another balancer may take over")

	require.NoError(t, b.Close())
	_, err = b.Subscribe("g", []string{"t"}, nil)
	require.ErrorIs(t, err, ErrClosed)
}

func TestSubscribeAutoCreatesTopics(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, AutoCreateTopics: true, DefaultTopic: TopicConfig{Partitions: 3}})
	c := cgSubscribe(t, b, "g", []string{"fresh"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, []string{"fresh"}, b.Topics())
	cgPublish(t, b, "fresh", 2, 3)
	recs := cgPollN(t, c, 3)
	cgCheckValues(t, recs)
	require.Equal(t, cgTPs("fresh", 0, 1, 2), c.Assignment())
}

// ---------------------------------------------------------------------
// Poll, positions, MaxPollRecords, MinBytes / MaxWait

func TestPollReturnsEveryRecordInOrderWithinMaxPollRecords(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 3}))
	for p := int32(0); p < 3; p++ {
		for range 5 {
			cgPublish(t, b, "t", p, 10)
		}
	}
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 7})
	require.Empty(t, c.Assignment(), "partitions are assigned at the first Poll")
	_, err := c.Position(cgTP("t", 0))
	require.ErrorIs(t, err, ErrNotAssigned)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var all []*Record
	for len(all) < 150 {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		require.LessOrEqual(t, len(recs), 7, "MaxPollRecords caps one Poll")
		for _, r := range recs {
			all = append(all, r.Clone())
		}
	}
	cgCheckValues(t, all)
	for p := int32(0); p < 3; p++ {
		require.Equal(t, tbRange(0, 50), cgOffsets(all, p), "partition %d: ascending, no gaps, no duplicates", p)
		pos, err := c.Position(cgTP("t", p))
		require.NoError(t, err)
		require.Equal(t, int64(50), pos, "position = last returned + 1")
	}
	require.Equal(t, cgTPs("t", 0, 1, 2), c.Assignment())

	// Nothing left: Poll blocks until its context ends, never returning an
	// empty result.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	recs, err := c.Poll(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, recs)
}

// Poll waits for records with notifications: inside a bubble, a Poll with
// nothing to read is durably blocked, and a Publish wakes it without any
// (virtual) time passing, which a sleep loop could not do.
func TestPollBlocksOnNotificationNotSleepLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
		c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		type result struct {
			recs []*Record
			err  error
		}
		res := make(chan result, 1)
		poll := func() {
			recs, err := c.Poll(t.Context())
			var clones []*Record
			for _, r := range recs {
				clones = append(clones, r.Clone())
			}
			res <- result{clones, err}
		}
		go poll()
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Poll returned with nothing to read: %v", r.err)
		default:
		}
		start := time.Now()
		cgPublish(t, b, "t", 1, 1)
		synctest.Wait()
		select {
		case r := <-res:
			require.NoError(t, r.err)
			require.Len(t, r.recs, 1)
			require.Equal(t, cgValue("t", 1, 0), string(r.recs[0].Value))
		default:
			t.Fatal("a Publish did not wake the blocked Poll")
		}
		require.Zero(t, time.Since(start), "woken by a notification, not a timer")

		// Same for the other partition, after a first fetch.
		go poll()
		synctest.Wait()
		cgPublish(t, b, "t", 0, 2)
		synctest.Wait()
		select {
		case r := <-res:
			require.NoError(t, r.err)
			require.Len(t, r.recs, 2)
		default:
			t.Fatal("a Publish did not wake the blocked Poll")
		}
		require.Zero(t, time.Since(start))
	})
}

func TestPollMinBytesMaxWait(t *testing.T) {
	type result struct {
		n   int
		err error
		at  time.Duration
	}
	// pollAsync polls in a goroutine and reports how many records came
	// back and how much (virtual) time it took.
	pollAsync := func(t *testing.T, c *Consumer) chan result {
		res := make(chan result, 1)
		start := time.Now()
		go func() {
			recs, err := c.Poll(t.Context())
			res <- result{len(recs), err, time.Since(start)}
		}()
		return res
	}
	open := func(t *testing.T, o ConsumerOptions) (*Broker, *Consumer) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		o.Reset = ResetEarliest
		return b, cgSubscribe(t, b, "g", []string{"t"}, &o)
	}

	t.Run("waits up to MaxWait for MinBytes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 1000, MaxWait: 2 * time.Second})
			cgPublishSized(t, b, "t", 0, 10)
			r := <-pollAsync(t, c)
			require.NoError(t, r.err)
			require.Equal(t, 1, r.n)
			require.Equal(t, 2*time.Second, r.at, "returns what it has once MaxWait passed")
		})
	})
	t.Run("returns at once when MinBytes are there", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 100, MaxWait: time.Hour})
			cgPublishSized(t, b, "t", 0, 200)
			r := <-pollAsync(t, c)
			require.NoError(t, r.err)
			require.Equal(t, 1, r.n)
			require.Zero(t, r.at)
		})
	})
	t.Run("MinBytes counts records gathered across fetches", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 100, MaxWait: time.Hour})
			res := pollAsync(t, c)
			cgPublishSized(t, b, "t", 0, 60)
			synctest.Wait()
			select {
			case r := <-res:
				t.Fatalf("returned %d records before MinBytes or MaxWait: %v", r.n, r.err)
			default:
			}
			cgPublishSized(t, b, "t", 0, 60)
			synctest.Wait()
			select {
			case r := <-res:
				require.NoError(t, r.err)
				require.Equal(t, 2, r.n)
				require.Zero(t, r.at, "120 bytes >= MinBytes: no wait for MaxWait")
			default:
				c.Wakeup()
				t.Fatal("Poll still waits although 120 bytes >= MinBytes were gathered")
			}
		})
	})
	t.Run("MaxPollRecords ends the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 1 << 20, MaxWait: time.Hour, MaxPollRecords: 5})
			cgPublish(t, b, "t", 0, 8)
			r := <-pollAsync(t, c)
			require.NoError(t, r.err)
			require.Equal(t, 5, r.n)
			require.Zero(t, r.at)
		})
	})
	t.Run("no records: MaxWait never makes Poll return empty", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, c := open(t, ConsumerOptions{MaxWait: 10 * time.Millisecond})
			res := pollAsync(t, c)
			time.Sleep(time.Hour)
			synctest.Wait()
			select {
			case r := <-res:
				t.Fatalf("Poll returned %d records, %v, with nothing to read", r.n, r.err)
			default:
			}
			c.Wakeup()
			r := <-res
			require.ErrorIs(t, r.err, ErrWakeup)
			require.Zero(t, r.n)
		})
	})
}

// Records a Poll gathered while waiting for MinBytes but did not return
// are not consumed: a Poll that ends with an error (Wakeup, its context,
// Close) leaves the position at the first of them, and no commit, explicit
// or automatic, covers them.
func TestPollGatheredRecordsAreNotLostWhenPollFails(t *testing.T) {
	// start subscribes with a MinBytes no single record reaches, publishes
	// one small record and starts a Poll that gathers it and waits.
	start := func(t *testing.T, o ConsumerOptions) (*Broker, *Consumer, context.CancelFunc, chan error) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		o.Reset, o.MinBytes, o.MaxWait = ResetEarliest, 1000, time.Hour
		c := cgSubscribe(t, b, "g", []string{"t"}, &o)
		cgPublish(t, b, "t", 0, 1)
		ctx, cancel := context.WithCancel(t.Context())
		res := make(chan error, 1)
		go func() {
			recs, err := c.Poll(ctx)
			if err == nil {
				err = fmt.Errorf("Poll returned %d records early", len(recs))
			}
			res <- err
		}()
		synctest.Wait() // it has the record and waits for more bytes
		return b, c, cancel, res
	}
	// rest checks that the next Poll returns offset 0 first.
	rest := func(t *testing.T, b *Broker, c *Consumer) {
		pos, err := c.Position(cgTP("t", 0))
		require.NoError(t, err)
		require.Zero(t, pos, "the gathered record was never returned: the position must not pass it")
		cgPublishSized(t, b, "t", 0, 2000)
		recs := cgPollN(t, c, 2)
		require.Equal(t, []int64{0, 1}, cgOffsets(recs, 0))
	}

	t.Run("wakeup", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, _, res := start(t, ConsumerOptions{})
			c.Wakeup()
			require.ErrorIs(t, <-res, ErrWakeup)
			rest(t, b, c)
		})
	})
	t.Run("context canceled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, cancel, res := start(t, ConsumerOptions{})
			cancel()
			require.ErrorIs(t, <-res, context.Canceled)
			rest(t, b, c)
		})
	})
	t.Run("close with auto-commit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, _, res := start(t, ConsumerOptions{AutoCommit: true})
			require.NoError(t, c.Close())
			require.ErrorIs(t, <-res, ErrClosed)
			require.Equal(t, int64(0), cgCommitted(t, b, "g", cgTP("t", 0)),
				"Close commits the position after the records Poll returned, not after ones it dropped")
		})
	})
	t.Run("auto-commit while gathering", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, _, res := start(t, ConsumerOptions{AutoCommit: true, AutoCommitEvery: time.Second})
			time.Sleep(2 * time.Second)
			cgPublish(t, b, "t", 0, 1) // wakes the Poll: an auto-commit is due
			synctest.Wait()
			require.Equal(t, int64(-1), cgCommitted(t, b, "g", cgTP("t", 0)),
				"auto-commit covers only records already returned: none yet")
			c.Wakeup()
			<-res
		})
	})
}

func TestPollWakeup(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 3)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	ctx := t.Context()

	// A Wakeup before Poll is kept for it; several coalesce.
	c.Wakeup()
	c.Wakeup()
	recs, err := c.Poll(ctx)
	require.ErrorIs(t, err, ErrWakeup)
	require.Empty(t, recs)
	recs = cgPollN(t, c, 3)
	require.Equal(t, []int64{0, 1, 2}, cgOffsets(recs, 0), "a wakeup consumes nothing")

	// A blocked Poll returns ErrWakeup.
	res := make(chan error, 1)
	go func() {
		_, err := c.Poll(ctx)
		res <- err
	}()
	require.Eventually(t, func() bool { return c.state.Load() == consumerPolling }, 10*time.Second, time.Millisecond)
	c.Wakeup()
	require.ErrorIs(t, tbRecv(t, res), ErrWakeup)

	// And the consumer goes on.
	cgPublish(t, b, "t", 0, 1)
	recs = cgPollN(t, c, 1)
	require.Equal(t, []int64{3}, cgOffsets(recs, 0))
}

func TestPollFromTwoGoroutinesIsConcurrentUse(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	res := make(chan error, 1)
	go func() {
		_, err := c.Poll(t.Context())
		res <- err
	}()
	require.Eventually(t, func() bool { return c.state.Load() == consumerPolling }, 10*time.Second, time.Millisecond)
	_, err := c.Poll(t.Context())
	require.ErrorIs(t, err, ErrConcurrentUse)
	select {
	case err := <-res:
		t.Fatalf("the first Poll ended: %v", err)
	default:
	}
	c.Wakeup()
	require.ErrorIs(t, tbRecv(t, res), ErrWakeup)
	cgPublish(t, b, "t", 0, 1)
	require.Len(t, cgPollN(t, c, 1), 1, "the consumer works on after the refused call")
}

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
	tbRetentionTopic(t, b, "t", 400)
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

	b.enforceRetention()
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

// ---------------------------------------------------------------------
// Commits

func TestCommitSemantics(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic("other", TopicConfig{}))
	cgPublish(t, b, "t", 0, 10)
	p0, p1 := cgTP("t", 0), cgTP("t", 1)
	ctx := t.Context()
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 4})

	require.Equal(t, tbRange(0, 4), cgOffsets(cgPollN(t, c, 4), 0))
	require.NoError(t, c.Commit(ctx))
	got, err := c.Committed(ctx, p0, p1)
	require.NoError(t, err)
	// The committed offset is the next one to read. p1 had nothing and its
	// position (ResetEarliest) is known only once fetched, so it may or
	// may not be committed at 0.
	require.Equal(t, int64(4), got[p0])
	if off, ok := got[p1]; ok {
		require.Zero(t, off)
	}
	all, err := c.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, got, all, "no partitions named: all of the group's")
	none, err := c.Committed(ctx, cgTP("other", 0))
	require.NoError(t, err)
	require.Empty(t, none, "never committed: absent")

	// CommitOffsets commits exactly what it is given, even backwards.
	require.NoError(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 2}))
	got, err = c.Committed(ctx, p0)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{p0: 2}, got)
	require.NoError(t, c.CommitOffsets(ctx, nil))

	// Bad commits are refused whole.
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 5, p1: -1}), ErrInvalidArgument)
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 5, cgTP("other", 0): 1}), ErrNotAssigned)
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{cgTP("t", 9): 1}), ErrNotAssigned)
	got, err = c.Committed(ctx, p0)
	require.NoError(t, err)
	require.Equal(t, int64(2), got[p0])

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, c.Commit(canceled), context.Canceled)
	require.ErrorIs(t, c.CommitOffsets(canceled, map[TopicPartition]int64{p0: 3}), context.Canceled)
	_, err = c.Committed(canceled)
	require.ErrorIs(t, err, context.Canceled)

	// A new member reads from the committed offset, exactly.
	require.NoError(t, c.Close())
	c2 := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetLatest})
	require.Equal(t, tbRange(2, 10), cgOffsets(cgPollN(t, c2, 8), 0))
}

// A commit made inside OnAssigned belongs to the new generation and
// succeeds (Kafka's onPartitionsAssigned may commit).
func TestCommitInsideOnAssigned(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 10)
	tp := cgTP("t", 0)
	errs := make(chan error, 1)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
		OnAssigned: func(c *Consumer, parts []TopicPartition) {
			errs <- c.CommitOffsets(context.Background(), map[TopicPartition]int64{tp: 6})
		}})
	recs := cgPollN(t, c, 4)
	require.NoError(t, tbRecv(t, errs))
	require.Equal(t, tbRange(6, 10), cgOffsets(recs, 0), "reading starts at the commit made in OnAssigned")
}

func TestCommitsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 50)
	cgPublish(t, b, "t", 1, 50)
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 30})
	require.NoError(t, err)
	first := cgPollN(t, c, 40)
	require.NoError(t, c.Commit(t.Context()))
	committed, err := c.Committed(t.Context())
	require.NoError(t, err)
	for p := int32(0); p < 2; p++ {
		offs := cgOffsets(first, p)
		if len(offs) > 0 {
			require.Equal(t, offs[len(offs)-1]+1, committed[cgTP("t", p)])
		}
	}
	require.NoError(t, c.Close())
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"g"}, b.Groups())
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members)
	require.Len(t, info.Partitions, len(committed))
	for _, p := range info.Partitions {
		require.Equal(t, committed[cgTP(p.Topic, p.Partition)], p.Committed)
		require.Equal(t, int64(50), p.End)
		require.Equal(t, 50-p.Committed, p.Lag)
	}

	cgPublish(t, b, "t", 0, 10)
	cgPublish(t, b, "t", 1, 10)
	// ResetLatest: were the commits lost, it would skip to the end.
	c = cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetLatest})
	want := 120 - int(committed[cgTP("t", 0)]+committed[cgTP("t", 1)])
	second := cgPollN(t, c, want)
	require.Len(t, second, want)
	cgCheckValues(t, second)
	for p := int32(0); p < 2; p++ {
		require.Equal(t, tbRange(committed[cgTP("t", p)], 60), cgOffsets(second, p), "partition %d resumes at its commit", p)
	}
}

func TestAutoCommit(t *testing.T) {
	clock := newTBClock(time.Unix(1_700_000_000, 0))
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock.Now})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 40)
	tp := cgTP("t", 0)
	seen := make(chan int64, 1)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
		AutoCommit: true, AutoCommitEvery: time.Minute, MaxPollRecords: 10,
		OnRevoked: func(c *Consumer, parts []TopicPartition) {
			got, _ := c.Committed(context.Background(), tp)
			seen <- got[tp]
		}})

	require.Equal(t, tbRange(0, 10), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(-1), cgCommitted(t, b, "g", tp), "not due yet")
	require.Equal(t, tbRange(10, 20), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(-1), cgCommitted(t, b, "g", tp), "not due yet")

	clock.Set(clock.Now().Add(time.Minute))
	require.Equal(t, tbRange(20, 30), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(20), cgCommitted(t, b, "g", tp),
		"due: the Poll committed what earlier Polls returned, before fetching")
	require.Equal(t, tbRange(30, 40), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(20), cgCommitted(t, b, "g", tp), "the interval starts again")

	// Close commits, before OnRevoked, which sees it (item 75).
	require.NoError(t, c.Close())
	require.Equal(t, int64(40), tbRecv(t, seen))
	require.Equal(t, int64(40), cgCommitted(t, b, "g", tp))

	// Without AutoCommit nothing is committed for you.
	c = cgSubscribe(t, b, "manual", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	cgPollN(t, c, 40)
	clock.Set(clock.Now().Add(2 * time.Minute))
	cgPublish(t, b, "t", 0, 1)
	cgPollN(t, c, 1)
	require.NoError(t, c.Close())
	require.Equal(t, int64(-1), cgCommitted(t, b, "manual", tp))
}

// Auto-commit runs before a revocation, so the new owner starts after the
// records the old one was given.
func TestAutoCommitBeforeRevocation(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 5)
	cgPublish(t, b, "t", 1, 5)
	tr := newCGTracker()
	a := cgStart(t, b, tr, "a", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest, AutoCommit: true, AutoCommitEvery: time.Hour,
		OnRevoked: func(*Consumer, []TopicPartition) {}}, nil) // no manual commit
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "assigned"))
	got := cgDelivered{}
	got.add(t, a.take(t, 10)...)

	bm := cgStart(t, b, tr, "b", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "revoked"))
	require.Equal(t, cgTPs("t", 0), a.expect(t, "assigned"))
	require.Equal(t, cgTPs("t", 1), bm.expect(t, "assigned"))
	cgPublish(t, b, "t", 0, 1)
	cgPublish(t, b, "t", 1, 1)
	got.add(t, a.take(t, 1)...)
	recs := bm.take(t, 1)
	require.Equal(t, int64(5), recs[0].Offset, "b starts where a's auto-commit left p1")
	got.add(t, recs...)
	a.close(t)
	bm.close(t)
	got.add(t, drain(a.recs, bm.recs)...)
	tr.check(t)
	got.exactlyOnce(t, "t", []int64{6, 6})
}

// ---------------------------------------------------------------------
// Rebalancing and hand-over

// Eager (range): every rebalance revokes everything, then assigns; the old
// owner's OnRevoked (with its commit) comes before the new owner's
// OnAssigned, on each member's own goroutine; Close hands over at once.
func TestEagerHandOver(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 4}))
	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 10)
	}
	all := cgTPs("t", 0, 1, 2, 3)
	tr := newCGTracker()
	got := cgDelivered{}

	a := cgStart(t, b, tr, "a", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	require.Equal(t, all, a.expect(t, "assigned"))
	got.add(t, a.take(t, 40)...)

	bm := cgStart(t, b, tr, "b", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	require.Equal(t, all, a.expect(t, "revoked"))
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "assigned"))
	require.Equal(t, cgTPs("t", 2, 3), bm.expect(t, "assigned"))
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, 2, info.Generation)
	require.Len(t, info.Members, 2)

	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 10)
	}
	fromA, fromB := a.take(t, 20), bm.take(t, 20)
	for p := int32(2); p < 4; p++ {
		require.Equal(t, tbRange(10, 20), cgOffsets(fromB, p), "b starts at a's commit in OnRevoked")
		require.Empty(t, cgOffsets(fromA, p))
	}
	got.add(t, fromA...)
	got.add(t, fromB...)

	// b leaves: its OnRevoked runs inside Close; a gets everything at once.
	bm.close(t)
	require.Equal(t, cgTPs("t", 2, 3), bm.expect(t, "revoked"))
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "revoked"))
	require.Equal(t, all, a.expect(t, "assigned"))
	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 5)
	}
	got.add(t, a.take(t, 20)...)
	a.close(t)
	require.Equal(t, all, a.expect(t, "revoked"))
	got.add(t, drain(a.recs, bm.recs)...)
	tr.check(t)
	got.exactlyOnce(t, "t", []int64{25, 25, 25, 25})
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

// Cooperative-sticky: only what moves is revoked, and it reaches its new
// owner in a second rebalance; OnAssigned runs once per rebalance, with
// only what was added (items 69-71).
func TestCooperativeHandOver(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 4}))
	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 10)
	}
	all := cgTPs("t", 0, 1, 2, 3)
	tr := newCGTracker()
	got := cgDelivered{}
	opts := ConsumerOptions{Reset: ResetEarliest, Balancer: CooperativeStickyBalancer{}}

	a := cgStart(t, b, tr, "a", "g", []string{"t"}, opts, nil)
	require.Equal(t, all, a.expect(t, "assigned"))
	got.add(t, a.take(t, 40)...)

	bm := cgStart(t, b, tr, "b", "g", []string{"t"}, opts, nil)
	moved := a.expect(t, "revoked")
	require.Len(t, moved, 2, "only the partitions that move are revoked")
	require.Empty(t, a.expect(t, "assigned"), "first rebalance: nothing new for a")
	require.Empty(t, bm.expect(t, "assigned"), "first rebalance: the moving partitions were still held")
	require.Equal(t, moved, bm.expect(t, "assigned"), "second rebalance: b gets them")
	require.Empty(t, a.expect(t, "assigned"), "second rebalance: a keeps what it has")
	kept := slices.DeleteFunc(slices.Clone(all), func(tp TopicPartition) bool { return slices.Contains(moved, tp) })
	require.Equal(t, kept, a.assignment())
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, 3, info.Generation)

	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 10)
	}
	fromA, fromB := a.take(t, 20), bm.take(t, 20)
	for _, tp := range moved {
		require.Equal(t, tbRange(10, 20), cgOffsets(fromB, tp.Partition), "b starts at a's commit")
	}
	for _, tp := range kept {
		require.Equal(t, tbRange(10, 20), cgOffsets(fromA, tp.Partition))
	}
	got.add(t, fromA...)
	got.add(t, fromB...)

	// b leaves: a gets the partitions back without revoking its own.
	bm.close(t)
	require.Equal(t, moved, bm.expect(t, "revoked"))
	require.Equal(t, moved, a.expect(t, "assigned"))
	a.noEvents(t)
	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 5)
	}
	got.add(t, a.take(t, 20)...)
	a.close(t)
	require.Equal(t, all, a.expect(t, "revoked"))
	got.add(t, drain(a.recs, bm.recs)...)
	tr.check(t)
	got.exactlyOnce(t, "t", []int64{25, 25, 25, 25})
}

// A cooperative member keeps consuming the partitions it keeps while a
// rebalance waits for a slow member to rejoin.
func TestCooperativeMembersKeepConsumingDuringRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 4}))
		tr := newCGTracker()
		opts := ConsumerOptions{Reset: ResetEarliest, Balancer: CooperativeStickyBalancer{}}
		a := cgStart(t, b, tr, "a", "g", []string{"t"}, opts, nil)
		a.expect(t, "assigned")
		bm := cgStart(t, b, tr, "b", "g", []string{"t"}, opts, nil)
		a.expect(t, "revoked")
		a.expect(t, "assigned")
		bm.expect(t, "assigned")
		bm.expect(t, "assigned")
		a.expect(t, "assigned")
		kept := a.assignment()
		require.Len(t, kept, 2)

		bm.freeze() // b is busy: it will rejoin late
		c := cgStart(t, b, tr, "c", "g", []string{"t"}, opts, nil)
		synctest.Wait()
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		require.Equal(t, "PreparingRebalance", info.State)
		for _, tp := range kept {
			cgPublish(t, b, "t", tp.Partition, 1)
		}
		synctest.Wait()
		select {
		case r := <-a.recs:
			require.Contains(t, kept, cgTP(r.Topic, r.Partition))
		default:
			t.Error("a stopped consuming the partitions it keeps while the rebalance waits for b")
		}
		bm.unfreeze()
		synctest.Wait()
		c.expect(t, "assigned")
		tr.check(t)
	})
}

// What the old owner commits in OnRevoked is what the new owner reads.
func TestRevokeCommitIsWhatNewOwnerReads(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 10)
	cgPublish(t, b, "t", 1, 10)
	tr := newCGTracker()
	a := cgStart(t, b, tr, "a", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest,
		OnRevoked: func(c *Consumer, parts []TopicPartition) {
			offs := map[TopicPartition]int64{}
			for _, tp := range parts {
				offs[tp] = 3
			}
			if err := c.CommitOffsets(context.Background(), offs); err != nil {
				tr.problem("commit in OnRevoked: %v", err)
			}
		}}, nil)
	a.expect(t, "assigned")
	a.take(t, 20)
	positions := make(chan map[TopicPartition]int64, 1)
	bm := cgStart(t, b, tr, "b", "g", []string{"t"}, ConsumerOptions{Reset: ResetLatest,
		OnAssigned: func(c *Consumer, parts []TopicPartition) {
			pos := map[TopicPartition]int64{}
			for _, tp := range parts {
				pos[tp], _ = c.Position(tp)
			}
			positions <- pos
		}}, nil)
	require.Equal(t, cgTPs("t", 1), bm.expect(t, "assigned"))
	require.Equal(t, map[TopicPartition]int64{cgTP("t", 1): 3}, tbRecv(t, positions))
	recs := bm.take(t, 7)
	require.Equal(t, tbRange(3, 10), cgOffsets(recs, 1))
	tr.check(t)
}

// A member that gets an assignment and, inside OnAssigned, sees a new
// member join, still gives the partitions up (OnRevoked) before anyone
// else gets them.
func TestAssignmentInterruptedByJoin(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 4}))
	tr := newCGTracker()
	joined := make(chan *Consumer, 1)
	var once sync.Once
	a := cgStart(t, b, tr, "a", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest,
		OnAssigned: func(c *Consumer, parts []TopicPartition) {
			once.Do(func() {
				// A second member joins while a runs its first OnAssigned.
				c2, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
					OnAssigned: func(c *Consumer, parts []TopicPartition) { tr.assign("b", parts) },
					OnRevoked:  func(c *Consumer, parts []TopicPartition) { tr.revoke("b", parts) }})
				if err != nil {
					tr.problem("subscribe: %v", err)
				}
				joined <- c2
			})
		}}, nil)
	all := cgTPs("t", 0, 1, 2, 3)
	require.Equal(t, all, a.expect(t, "assigned"))
	c2 := tbRecv(t, joined)
	t.Cleanup(func() { c2.Close() })
	res := make(chan error, 1)
	go func() {
		_, err := c2.Poll(t.Context()) // assigned, then blocks: nothing to read
		res <- err
	}()
	require.Equal(t, all, a.expect(t, "revoked"), "a held all four: it must revoke them")
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "assigned"))
	require.Eventually(t, func() bool { return len(tr.owners()) == 4 }, 10*time.Second, time.Millisecond)
	require.NoError(t, c2.Close())
	require.ErrorIs(t, tbRecv(t, res), ErrClosed)
	tr.check(t)
}

// ---------------------------------------------------------------------
// Liveness: MaxPollInterval

// A member that stops polling is evicted after MaxPollInterval: its
// partitions move to the others, which start at its last commit (so only
// records it got after that commit are delivered twice), its commits fail
// with ErrStaleGeneration, and its next Poll runs OnLost and rejoins.
func TestStalledMemberIsEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
		p0, p1 := cgTP("t", 0), cgTP("t", 1)
		tr := newCGTracker()
		opts := ConsumerOptions{Reset: ResetEarliest, MaxPollInterval: 10 * time.Second}
		a := cgStart(t, b, tr, "a", "g", []string{"t"}, opts, nil)
		require.Equal(t, []TopicPartition{p0, p1}, a.expect(t, "assigned"))
		bm := cgStart(t, b, tr, "b", "g", []string{"t"}, opts, nil)
		require.Equal(t, []TopicPartition{p0, p1}, a.expect(t, "revoked"))
		require.Equal(t, []TopicPartition{p0}, a.expect(t, "assigned"))
		require.Equal(t, []TopicPartition{p1}, bm.expect(t, "assigned"))

		cgPublish(t, b, "t", 0, 5)
		cgPublish(t, b, "t", 1, 5)
		require.Equal(t, tbRange(0, 5), cgOffsets(a.take(t, 5), 0))
		require.Equal(t, tbRange(0, 5), cgOffsets(bm.take(t, 5), 1))
		bm.freeze()
		require.NoError(t, bm.c.Commit(t.Context()))
		bm.unfreeze()
		cgPublish(t, b, "t", 1, 3)
		require.Equal(t, tbRange(5, 8), cgOffsets(bm.take(t, 3), 1), "processed, not committed")
		// Both now wait inside Poll; a polls once more, so it last looked at
		// the group while b was inside Poll too.
		synctest.Wait()
		cgPublish(t, b, "t", 0, 1)
		require.Equal(t, []int64{5}, cgOffsets(a.take(t, 1), 0))
		synctest.Wait()

		// b hangs, outside Poll. Not evicted before MaxPollInterval; by
		// twice that it is (an implementation may check late, never early).
		bm.freeze()
		tr.release("b")
		oldID := bm.c.MemberID()
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		a.noEvents(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, []TopicPartition{p0}, a.expect(t, "revoked"), "b was not evicted after 2 x MaxPollInterval")
		require.Equal(t, []TopicPartition{p0, p1}, a.expect(t, "assigned"))
		require.Equal(t, tbRange(5, 8), cgOffsets(a.take(t, 3), 1),
			"a starts at b's last commit: only what b got after it comes again")
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		require.Equal(t, "Stable", info.State)
		require.Len(t, info.Members, 1)
		require.Equal(t, []TopicPartition{p0, p1}, info.Members[0].Assignment)

		// b's commits fail now; a's stand.
		require.ErrorIs(t, bm.c.Commit(t.Context()), ErrStaleGeneration)
		require.ErrorIs(t, bm.c.CommitOffsets(t.Context(), map[TopicPartition]int64{p1: 8}), ErrStaleGeneration)
		require.Equal(t, int64(5), cgCommitted(t, b, "g", p1))

		// b comes back: OnLost, then it rejoins as a new member.
		bm.unfreeze()
		require.Equal(t, []TopicPartition{p1}, bm.expect(t, "lost"))
		require.Equal(t, []TopicPartition{p1}, bm.expect(t, "assigned"))
		require.Equal(t, []TopicPartition{p0, p1}, a.expect(t, "revoked"))
		require.Equal(t, []TopicPartition{p0}, a.expect(t, "assigned"))
		require.NotEqual(t, oldID, bm.c.MemberID())
		cgPublish(t, b, "t", 1, 2)
		require.Equal(t, tbRange(8, 10), cgOffsets(bm.take(t, 2), 1), "b starts at a's commit")
		bm.noRecords(t)
		a.noRecords(t)
		tr.check(t)
	})
}

// A member inside Poll is alive however long it waits.
func TestMemberBlockedInPollIsNotEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		tr := newCGTracker()
		a := cgStart(t, b, tr, "a", "g", []string{"t"}, ConsumerOptions{MaxPollInterval: time.Second}, nil)
		a.expect(t, "assigned")
		time.Sleep(time.Hour)
		synctest.Wait()
		a.noEvents(t)
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		require.Equal(t, 1, info.Generation)
		require.Len(t, info.Members, 1)
	})
}

// An evicted member that closes without polling again runs OnLost, not
// OnRevoked: its partitions are no longer its own (Kafka's onLeavePrepare).
func TestEvictedMemberCloseRunsOnLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
		tr := newCGTracker()
		opts := ConsumerOptions{Reset: ResetEarliest, MaxPollInterval: 10 * time.Second}
		a := cgStart(t, b, tr, "a", "g", []string{"t"}, opts, nil)
		a.expect(t, "assigned")
		bm := cgStart(t, b, tr, "b", "g", []string{"t"}, opts, nil)
		a.expect(t, "revoked")
		a.expect(t, "assigned")
		require.Equal(t, cgTPs("t", 1), bm.expect(t, "assigned"))
		bm.freeze()
		tr.release("b")
		time.Sleep(11 * time.Second)
		_, err := b.DescribeGroup("g") // looking runs the eviction check
		require.NoError(t, err)
		synctest.Wait()
		a.expect(t, "revoked")
		require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "assigned"))

		bm.close(t)
		ev := tbRecv(t, bm.events)
		require.Equal(t, "lost", ev.kind, "evicted: OnLost(%v), got %s", ev.parts, ev.kind)
		require.Equal(t, cgTPs("t", 1), ev.parts)
	})
}

// ---------------------------------------------------------------------
// Static membership

// A static member that closes and comes back within SessionTimeout gets
// the same partitions, without a rebalance.
func TestStaticMemberReturnsWithoutRebalance(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 4}))
	tr := newCGTracker()
	static := ConsumerOptions{Reset: ResetEarliest, InstanceID: "s", SessionTimeout: time.Hour}
	s := cgStart(t, b, tr, "s", "g", []string{"t"}, static, nil)
	s.expect(t, "assigned")
	d := cgStart(t, b, tr, "d", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	s.expect(t, "revoked")
	mine := s.expect(t, "assigned")
	require.Equal(t, cgTPs("t", 0, 1), mine, "static members sort first")
	require.Equal(t, cgTPs("t", 2, 3), d.expect(t, "assigned"))
	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 5)
	}
	got := cgDelivered{}
	got.add(t, s.take(t, 10)...)
	got.add(t, d.take(t, 10)...)
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	gen := info.Generation

	s.close(t)
	require.Equal(t, mine, s.expect(t, "revoked"))
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, gen, info.Generation, "a static member's Close does not rebalance")
	require.Equal(t, "Stable", info.State)
	require.ErrorIs(t, b.DeleteGroup("g"), ErrGroupNotEmpty, "the static member still belongs")

	s2 := cgStart(t, b, tr, "s2", "g", []string{"t"}, static, nil)
	require.Equal(t, mine, s2.expect(t, "assigned"))
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, gen, info.Generation, "it comes back without a rebalance")
	d.noEvents(t)
	for p := int32(0); p < 4; p++ {
		cgPublish(t, b, "t", p, 5)
	}
	got.add(t, s2.take(t, 10)...)
	got.add(t, d.take(t, 10)...)
	s2.close(t)
	d.close(t)
	got.add(t, drain(s.recs, s2.recs, d.recs)...)
	tr.check(t)
	got.exactlyOnce(t, "t", []int64{10, 10, 10, 10})
}

// A static member away longer than SessionTimeout loses its partitions.
func TestStaticMemberSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
		tr := newCGTracker()
		static := ConsumerOptions{Reset: ResetEarliest, InstanceID: "s", SessionTimeout: 30 * time.Second}
		s := cgStart(t, b, tr, "s", "g", []string{"t"}, static, nil)
		s.expect(t, "assigned")
		d := cgStart(t, b, tr, "d", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
		s.expect(t, "revoked")
		s.expect(t, "assigned")
		require.Equal(t, cgTPs("t", 1), d.expect(t, "assigned"))
		s.close(t)
		s.expect(t, "revoked")
		start := time.Now()
		time.Sleep(29 * time.Second)
		synctest.Wait()
		d.noEvents(t)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, cgTPs("t", 1), d.expect(t, "revoked"))
		require.Equal(t, cgTPs("t", 0, 1), d.expect(t, "assigned"))
		require.Equal(t, 30*time.Second, time.Since(start))
		tr.check(t)
	})
}

// A second live member with the same InstanceID fences the first: its
// Poll and commits fail with ErrFenced, and the newcomer takes over.
func TestStaticDuplicateIsFenced(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	tr := newCGTracker()
	static := ConsumerOptions{Reset: ResetEarliest, InstanceID: "s", SessionTimeout: time.Hour}
	s1 := cgStart(t, b, tr, "s1", "g", []string{"t"}, static, nil)
	require.Equal(t, cgTPs("t", 0, 1), s1.expect(t, "assigned"))
	tr.release("s1")
	s2 := cgStart(t, b, tr, "s2", "g", []string{"t"}, static, nil)
	require.Equal(t, cgTPs("t", 0, 1), s2.expect(t, "assigned"))
	err := tbRecv(t, s1.ended)
	require.ErrorIs(t, err, ErrFenced, "the blocked Poll of the older member ends")
	require.ErrorIs(t, s1.c.Commit(t.Context()), ErrFenced)
	_, err = s1.c.Poll(t.Context())
	require.ErrorIs(t, err, ErrFenced, "fencing is final")
	s1.close(t)
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Len(t, info.Members, 1)
	require.Equal(t, "s", info.Members[0].InstanceID)
	require.Equal(t, cgTPs("t", 0, 1), info.Members[0].Assignment)
	cgPublish(t, b, "t", 0, 1)
	require.Len(t, s2.take(t, 1), 1)
}

// A rebalance while a static member is away must not hand its partitions
// out twice: when it returns, nobody else may still hold what it gets.
func TestStaticMemberReturnsAfterRebalance(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	tr := newCGTracker()
	static := ConsumerOptions{Reset: ResetEarliest, InstanceID: "s", SessionTimeout: time.Hour}
	s := cgStart(t, b, tr, "s", "g", []string{"t"}, static, nil)
	s.expect(t, "assigned")
	d := cgStart(t, b, tr, "d", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	s.expect(t, "revoked")
	require.Equal(t, cgTPs("t", 0), s.expect(t, "assigned"))
	require.Equal(t, cgTPs("t", 1), d.expect(t, "assigned"))
	s.close(t)
	s.expect(t, "revoked")

	// While s is away, another member joins: a rebalance.
	e := cgStart(t, b, tr, "e", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	d.expect(t, "revoked")
	d.expect(t, "assigned")
	e.expect(t, "assigned")
	require.Eventually(t, func() bool { // stable, every assignment acknowledged
		info, err := b.DescribeGroup("g")
		if err != nil || info.State != "Stable" {
			return false
		}
		held := 0
		for _, m := range info.Members {
			held += len(m.Assignment)
		}
		return held == len(tr.owners())
	}, 10*time.Second, time.Millisecond)

	s2 := cgStart(t, b, tr, "s2", "g", []string{"t"}, static, nil)
	// Whatever happens next (s2 gets partitions, with or without a
	// rebalance), no partition may have two owners.
	s2.expect(t, "assigned")
	tr.check(t)
	cgSettled(t, b, "g", tr, 2)
	s2.close(t)
	d.close(t)
	e.close(t)
	tr.check(t)
}

// ---------------------------------------------------------------------
// Introspection

func TestDescribeGroupGroupsDeleteGroup(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 4)
	cgPublish(t, b, "t", 1, 2)
	p0, p1 := cgTP("t", 0), cgTP("t", 1)
	ctx := t.Context()

	_, err := b.DescribeGroup("")
	require.ErrorIs(t, err, ErrInvalidGroup)
	require.ErrorIs(t, b.DeleteGroup(""), ErrInvalidGroup)
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, GroupInfo{Group: "g", State: "Dead"}, info, "an unknown group")
	require.Empty(t, b.Groups())

	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "PreparingRebalance", info.State, "joined, not yet polled")
	require.Zero(t, info.Generation)
	require.Len(t, info.Members, 1)
	require.Empty(t, info.Members[0].Assignment)
	require.Equal(t, []GroupPartitionInfo{
		{Topic: "t", Partition: 0, Committed: -1, End: 4, Lag: -1},
		{Topic: "t", Partition: 1, Committed: -1, End: 2, Lag: -1},
	}, info.Partitions)
	require.Equal(t, []string{"g"}, b.Groups())

	cgPollN(t, c, 6)
	require.NoError(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 2}))
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Stable", info.State)
	require.Equal(t, 1, info.Generation)
	require.Equal(t, "range", info.Balancer)
	require.Equal(t, []MemberInfo{{ID: c.MemberID(), Topics: []string{"t"}, Assignment: []TopicPartition{p0, p1}}}, info.Members)
	require.Equal(t, []GroupPartitionInfo{
		{Topic: "t", Partition: 0, Committed: 2, End: 4, Lag: 2}, // item 90: 4 - 2 = 2
		{Topic: "t", Partition: 1, Committed: -1, End: 2, Lag: -1},
	}, info.Partitions)

	cgPublish(t, b, "t", 1, 3)
	require.NoError(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p1: 1}))
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, GroupPartitionInfo{Topic: "t", Partition: 1, Committed: 1, End: 5, Lag: 4}, info.Partitions[1])

	require.ErrorIs(t, b.DeleteGroup("g"), ErrGroupNotEmpty)
	got, err := c.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{p0: 2, p1: 1}, got, "a refused DeleteGroup keeps the offsets")

	require.NoError(t, c.Close())
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members)
	require.Equal(t, int64(2), info.Partitions[0].Committed, "offsets outlive the members")
	require.Equal(t, []string{"g"}, b.Groups())

	require.NoError(t, b.DeleteGroup("g"))
	require.Empty(t, b.Groups())
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Dead", info.State)
	require.Empty(t, info.Partitions)
	c = cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	recs := cgPollN(t, c, 9)
	require.Equal(t, tbRange(0, 4), cgOffsets(recs, 0), "the deleted offsets are gone")

	// Several groups, sorted.
	c2 := cgSubscribe(t, b, "a-group", []string{"t"}, nil)
	require.Equal(t, []string{"a-group", "g"}, b.Groups())
	require.NoError(t, c2.Close())
	require.Equal(t, []string{"g"}, b.Groups(), "no members, no offsets: not listed")

	require.NoError(t, b.Close())
	_, err = b.DescribeGroup("g")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, b.DeleteGroup("g"), ErrClosed)
	require.Empty(t, b.Groups())
}

// ---------------------------------------------------------------------
// Races (run with -race)

// Members come and go while records are published concurrently, for an
// eager and a cooperative group over the same topic: every record reaches
// each group exactly once (commits in OnRevoked, graceful closes), no
// partition ever has two owners, and introspection and Wakeup from other
// goroutines are safe.
func TestGroupChurnRace(t *testing.T) {
	b := openBroker(t, "", nil)
	const parts, total = 8, 2000
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts}))
	ctx := t.Context()

	pubDone := make(chan error, 1)
	go func() {
		for i := range total {
			if err := b.Publish(ctx, &Record{Topic: "t", Partition: AnyPartition, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
				pubDone <- err
				return
			}
		}
		pubDone <- nil
	}()
	stopSide := make(chan struct{})
	var side sync.WaitGroup
	defer side.Wait()
	defer close(stopSide)
	side.Add(1)
	go func() { // introspection from another goroutine
		defer side.Done()
		for {
			select {
			case <-stopSide:
				return
			default:
			}
			for _, g := range b.Groups() {
				if _, err := b.DescribeGroup(g); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
			}
			runtime.Gosched()
		}
	}()

	type groupRun struct {
		name    string
		opts    ConsumerOptions
		tr      *cgTracker
		recs    chan *Record
		members []*cgMember
		seen    map[string]int
	}
	runs := []*groupRun{
		{name: "eager", opts: ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 50}},
		{name: "coop", opts: ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 50, Balancer: CooperativeStickyBalancer{}}},
	}
	for _, r := range runs {
		r.tr, r.recs, r.seen = newCGTracker(), make(chan *Record, 2*total), map[string]int{}
	}
	start := func(r *groupRun) {
		name := fmt.Sprintf("%s-%d", r.name, len(r.members))
		r.members = append(r.members, cgStart(t, b, r.tr, name, r.name, []string{"t"}, r.opts, r.recs))
	}
	settled := func(r *groupRun) { cgSettled(t, b, r.name, r.tr, parts) }
	collect := func(r *groupRun, upTo int) {
		for len(r.seen) < upTo {
			select {
			case rec := <-r.recs:
				r.seen[string(rec.Value)]++
			case <-time.After(10 * time.Second):
				info, _ := b.DescribeGroup(r.name)
				t.Fatalf("%s: %d of %d records delivered; group %+v", r.name, len(r.seen), upTo, info)
			}
		}
	}

	for _, r := range runs {
		for range 3 {
			start(r)
		}
	}
	for step := 0; step < 4; step++ {
		for _, r := range runs {
			settled(r)
			collect(r, (step+1)*total/8)
			r.members[len(r.members)-1].c.Wakeup() // harmless from any goroutine
			if step%2 == 0 {
				start(r)
			} else {
				r.members[step/2].close(t)
			}
		}
	}
	require.NoError(t, tbRecv(t, pubDone))
	for _, r := range runs {
		settled(r)
		collect(r, total)
		for _, m := range r.members {
			m.stop()
			tbRecv(t, m.exited)
		}
		for _, rec := range drain(r.recs) {
			r.seen[string(rec.Value)]++
		}
		require.Len(t, r.seen, total, r.name)
		for v, n := range r.seen {
			require.Equal(t, 1, n, "%s: %s delivered %d times", r.name, v, n)
		}
		r.tr.check(t)
	}
}

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

// A fenced member's Commit reports ErrFenced even when it has no position
// to commit (it was replaced before its first fetch).
func TestFencedCommitWithNothingToCommit(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	static := &ConsumerOptions{Reset: ResetEarliest, InstanceID: "s", SessionTimeout: time.Hour}
	old, err := b.Subscribe("g", []string{"t"}, static)
	require.NoError(t, err)
	defer old.Close()
	newer, err := b.Subscribe("g", []string{"t"}, static)
	require.NoError(t, err)
	defer newer.Close()
	require.ErrorIs(t, old.Commit(t.Context()), ErrFenced)
	require.ErrorIs(t, old.CommitOffsets(t.Context(), nil), ErrFenced)
	require.NoError(t, newer.Commit(t.Context()), "nothing to commit is a no-op")
}

// A member blocked in Poll over many partitions wakes for a record in any
// of them, and Close leaves no registration behind.
func TestPollWakesForAnyOfManyPartitions(t *testing.T) {
	b := openBroker(t, "", nil)
	const parts = 12
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts}))
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetLatest})
	require.NoError(t, err)
	for _, p := range []int32{parts - 1, 0, 5} { // the first Poll joins, then parks
		done := make(chan []*Record)
		go func() {
			recs, err := c.Poll(t.Context())
			assert.NoError(t, err)
			done <- recs
		}()
		_, part, err := b.partitionLog("t", p)
		require.NoError(t, err)
		require.Eventually(t, func() bool { // parked, registered with every partition
			part.appended.mu.Lock()
			defer part.appended.mu.Unlock()
			return len(part.appended.bells) == 1
		}, 10*time.Second, time.Millisecond)
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: p, Value: []byte("v")}))
		recs := <-done
		require.Len(t, recs, 1)
		require.Equal(t, p, recs[0].Partition)
	}
	require.NoError(t, c.Close())
	for p := range int32(parts) {
		_, part, err := b.partitionLog("t", p)
		require.NoError(t, err)
		part.appended.mu.Lock()
		require.Empty(t, part.appended.bells, "partition %d", p)
		part.appended.mu.Unlock()
	}
}

// Item 74: a rebalance callback's panic goes up through Poll or Close, but
// the assignment still applies, the member stays usable, and the group
// never stalls waiting for it.
func TestPanickingCallbacksLeaveTheGroupWorking(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: []byte("a")},
		&Record{Topic: "t", Partition: 1, Value: []byte("b")}))
	var panicAssign, panicRevoke atomic.Bool
	panicAssign.Store(true)
	panicRevoke.Store(true)
	opts := &ConsumerOptions{Reset: ResetEarliest, MaxWait: 10 * time.Millisecond,
		OnAssigned: func(*Consumer, []TopicPartition) {
			if panicAssign.Swap(false) {
				panic("assigned")
			}
		},
		OnRevoked: func(*Consumer, []TopicPartition) {
			if panicRevoke.Swap(false) {
				panic("revoked")
			}
		}}
	c1, err := b.Subscribe("g", []string{"t"}, opts)
	require.NoError(t, err)
	pollPanics := func(c *Consumer) (recovered any) {
		defer func() { recovered = recover() }()
		_, _ = c.Poll(t.Context())
		return nil
	}
	require.Equal(t, "assigned", pollPanics(c1))
	require.ElementsMatch(t, cgTPs("t", 0, 1), c1.Assignment(), "the assignment applies")
	recs, err := c1.Poll(t.Context())
	require.NoError(t, err, "the member is usable after the panic")
	require.Len(t, recs, 2)

	// A second member joins: c1's OnRevoked panics, and the rebalance
	// still completes.
	c2, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxWait: 10 * time.Millisecond})
	require.NoError(t, err)
	defer c2.Close()
	c2done := make(chan error, 1)
	go func() {
		for {
			if _, err := c2.Poll(t.Context()); err != nil {
				c2done <- err
				return
			}
			if len(c2.Assignment()) == 1 {
				c2done <- nil
				return
			}
		}
	}()
	require.Eventually(t, func() bool {
		if r := pollPanics(c1); r != nil {
			require.Equal(t, "revoked", r)
		}
		return len(c1.Assignment()) == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, <-c2done, "the other member got its share")

	// Close: a panicking OnRevoked goes up, and the member has left.
	panicRevoke.Store(true)
	require.PanicsWithValue(t, "revoked", func() { c1.Close() })
	_, err = c1.Poll(t.Context())
	require.ErrorIs(t, err, ErrClosed)
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Len(t, info.Members, 1, "c1 left the group")
}

// Items 70 and 71: an eager rebalance calls OnRevoked on every member, one
// that owns nothing included (with an empty list), before OnAssigned; a
// cooperative one calls it only with partitions to give up.
func TestOnRevokedForMembersOwningNothing(t *testing.T) {
	for _, balancer := range []Balancer{RangeBalancer{}, CooperativeStickyBalancer{}} {
		t.Run(fmt.Sprintf("%T", balancer), func(t *testing.T) {
			b := openBroker(t, "", nil)
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))
			events := map[*Consumer][]string{} // all callbacks run on this goroutine
			opts := ConsumerOptions{Balancer: balancer,
				OnAssigned: func(c *Consumer, parts []TopicPartition) {
					events[c] = append(events[c], fmt.Sprintf("assigned %v", parts))
				},
				OnRevoked: func(c *Consumer, parts []TopicPartition) {
					events[c] = append(events[c], fmt.Sprintf("revoked %v", parts))
				}}
			// settle polls the members in turns until the group is stable
			// in a newer generation than from, and a few turns more for
			// every member to take its part of it.
			settle := func(from int, cs ...*Consumer) int {
				t.Helper()
				done := -1
				for turn := range 500 {
					if turn == done {
						info, err := b.DescribeGroup("g")
						require.NoError(t, err)
						return info.Generation
					}
					for _, c := range cs {
						ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
						_, err := c.Poll(ctx)
						cancel()
						if err != nil {
							require.ErrorIs(t, err, context.DeadlineExceeded)
						}
					}
					info, err := b.DescribeGroup("g")
					require.NoError(t, err)
					if done < 0 && info.State == "Stable" && info.Generation > from {
						done = turn + 3
					}
				}
				t.Fatal("the group did not settle")
				return 0
			}
			a := cgSubscribe(t, b, "g", []string{"t"}, &opts)
			gen := settle(0, a)
			c := cgSubscribe(t, b, "g", []string{"t"}, &opts)
			gen = settle(gen, a, c)
			idle := a
			if len(a.Assignment()) == 1 {
				idle = c
			}
			require.Empty(t, idle.Assignment())
			clear(events)
			third := cgSubscribe(t, b, "g", []string{"t"}, &opts) // another rebalance
			settle(gen, a, c, third)
			got := events[idle]
			require.NotEmpty(t, got)
			if _, cooperative := balancer.(CooperativeStickyBalancer); !cooperative {
				require.Equal(t, "revoked []", got[0], "eager: revoked first, even owning nothing")
				require.Contains(t, got[len(got)-1], "assigned")
			} else {
				for _, e := range got {
					require.NotContains(t, e, "revoked", "cooperative: only partitions to give up")
				}
			}
		})
	}
}

// Items 59 and 76: Lag is the end minus the position; EnforceRebalance
// makes the group rebalance at the members' next Polls.
func TestLagAndEnforceRebalance(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))
	tp := TopicPartition{Topic: "t", Partition: 0}
	var revoked, assigned int
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 3,
		OnAssigned: func(*Consumer, []TopicPartition) { assigned++ },
		OnRevoked:  func(*Consumer, []TopicPartition) { revoked++ }})
	_, err := c.Lag(tp)
	require.ErrorIs(t, err, ErrNotAssigned, "before the assignment")
	cgPublish(t, b, "t", 0, 10)
	recs, err := c.Poll(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 3)
	lag, err := c.Lag(tp)
	require.NoError(t, err)
	require.Equal(t, int64(7), lag)
	_, err = c.Lag(TopicPartition{Topic: "t", Partition: 5})
	require.ErrorIs(t, err, ErrNotAssigned)

	require.NoError(t, c.Commit(t.Context())) // an eager rebalance drops positions: resume from here
	before, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.NoError(t, c.EnforceRebalance())
	require.NoError(t, c.EnforceRebalance(), "a second request while one is under way does nothing")
	recs, err = c.Poll(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, int64(3), recs[0].Offset, "from the commit")
	after, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, before.Generation+1, after.Generation)
	require.Equal(t, 1, revoked)
	require.Equal(t, 2, assigned)
	lag, err = c.Lag(tp)
	require.NoError(t, err)
	require.Equal(t, int64(4), lag)

	require.NoError(t, c.Close())
	require.ErrorIs(t, c.EnforceRebalance(), ErrClosed)
	_, err = c.Lag(tp)
	require.ErrorIs(t, err, ErrClosed)
}

// Item 96: deleting a topic drops every group's offsets for it (a topic
// created again under the name starts without them) and rebalances the
// groups that subscribed to it. Item 48: a record larger than a fetch's
// byte budget is still delivered.
func TestDeleteTopicDropsOffsetsAndRebalances(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, MaxRecordBytes: 3 << 20}))
	require.NoError(t, b.CreateTopic("u", TopicConfig{}))
	big := make([]byte, 2<<20) // past the 1 MiB a fetch asks for
	big[len(big)-1] = 7
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: big}))
	cgPublish(t, b, "u", 0, 1)
	c := cgSubscribe(t, b, "g", []string{"t", "u"}, &ConsumerOptions{Reset: ResetEarliest})
	got := cgPollN(t, c, 2)
	var sawBig bool
	for _, r := range got {
		sawBig = sawBig || bytes.Equal(r.Value, big)
	}
	require.True(t, sawBig, "the oversized record came through whole")
	require.NoError(t, c.Commit(t.Context()))
	committed, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Contains(t, committed, TopicPartition{Topic: "t", Partition: 0})

	before, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.NoError(t, b.DeleteTopic("t"))
	committed, err = b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{{Topic: "u", Partition: 0}: 1}, committed, "only u's offset is left")
	require.Eventually(t, func() bool { // the member's Polls carry out the rebalance
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		defer cancel()
		_, _ = c.Poll(ctx)
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		return info.Generation > before.Generation && info.State == "Stable" &&
			slices.Equal(c.Assignment(), []TopicPartition{{Topic: "u", Partition: 0}})
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())

	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	committed, err = b.CommittedOffsets("g")
	require.NoError(t, err)
	require.NotContains(t, committed, TopicPartition{Topic: "t", Partition: 0}, "gone for good, across a restart")
}

// Item 88: a group with no member keeps its offsets for OffsetsRetention
// (7 days by default) after it emptied or last committed, whichever is
// later, then loses them; a group with members never does; negative keeps
// them forever; after a restart the clock starts again at Open.
func TestOffsetsExpire(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := openBroker(t, dir, &Options{Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 3)
	commitAndLeave := func(group string) {
		c := cgSubscribe(t, b, group, []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		cgPollN(t, c, 3)
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())
	}
	commitAndLeave("gone")
	// A member alive all along (a MaxPollInterval longer than the test's
	// jumps of the clock; otherwise the expiry check would evict it first).
	stay := cgSubscribe(t, b, "active", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollInterval: 365 * 24 * time.Hour})
	cgPollN(t, stay, 3)
	require.NoError(t, stay.Commit(t.Context()))
	has := func(b *Broker, group string) bool {
		offs, err := b.CommittedOffsets(group)
		require.NoError(t, err)
		return len(offs) > 0
	}

	advance(DefaultOffsetsRetention - time.Minute)
	b.expireOffsets()
	require.True(t, has(b, "gone"), "not yet")
	advance(2 * time.Minute)
	b.expireOffsets()
	require.False(t, has(b, "gone"), "empty for 7 days: expired")
	require.True(t, has(b, "active"), "a group with a member keeps its offsets")
	require.NotContains(t, b.Groups(), "gone")
	c := cgSubscribe(t, b, "gone", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, int64(0), cgPollN(t, c, 1)[0].Offset, "back: from the reset policy")
	require.NoError(t, c.Close())
	require.NoError(t, stay.Close())

	// After a restart the empty time counts from Open.
	commitAndLeave("gone")
	require.NoError(t, b.Close())
	advance(30 * 24 * time.Hour)
	b = openBroker(t, dir, &Options{Now: clock})
	b.expireOffsets()
	require.True(t, has(b, "gone"), "empty since before Open: the clock starts at Open")
	advance(DefaultOffsetsRetention + time.Second)
	b.expireOffsets()
	require.False(t, has(b, "gone"))
	require.False(t, has(b, "active"), "empty since Open, like any other")
	require.NoError(t, b.Close())

	forever := openBroker(t, dir, &Options{Now: clock, OffsetsRetention: -1})
	commit := func() {
		c, err := forever.Subscribe("kept", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		require.NoError(t, err)
		cgPollN(t, c, 1)
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())
	}
	commit()
	advance(365 * 24 * time.Hour)
	forever.expireOffsets()
	require.True(t, has(forever, "kept"))
}

// The empty OnRevoked of an eager rebalance panicking (callback code that
// expects a non-empty list) still lets the assignment apply, once.
func TestEagerEmptyOnRevokedPanicStillAssigns(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: []byte("a")}))
	opts := &ConsumerOptions{Balancer: RangeBalancer{}, Reset: ResetEarliest, MaxWait: 5 * time.Millisecond,
		OnRevoked: func(c *Consumer, parts []TopicPartition) {
			_ = parts[0].Topic // user code expecting a non-empty list
		}}
	poll := func(c *Consumer) (r any) {
		defer func() { r = recover() }()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		defer cancel()
		_, _ = c.Poll(ctx)
		return nil
	}
	a := cgSubscribe(t, b, "g", []string{"t"}, opts)
	c := cgSubscribe(t, b, "g", []string{"t"}, opts)
	for range 50 {
		poll(a)
		poll(c)
	}
	owner, idle := a, c
	if len(c.Assignment()) == 1 {
		owner, idle = c, a
	}
	require.Empty(t, idle.Assignment())
	require.NoError(t, owner.Close()) // its OnRevoked gets a non-empty list
	panics := 0
	for range 50 {
		if poll(idle) != nil {
			panics++
		}
	}
	require.Equal(t, 1, panics, "the panic surfaces once")
	require.Len(t, idle.Assignment(), 1, "and the assignment applied")
}

// Offsets expiry (or DeleteGroup) dropping an empty group's state while a
// Subscribe is between looking it up and joining must not leave that
// member in a coordinator of its own: every member of a group shares one.
func TestSubscribeRacingOffsetsExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock, RetentionCheckInterval: time.Hour, OffsetsRetention: time.Millisecond})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))

	// Deterministic: the expiry runs exactly in the gap.
	require.NoError(t, b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: 0}))
	now.Add(10)
	b.beforeJoin = func() { b.beforeJoin = nil; b.expireOffsets() }
	c, err := b.Subscribe("g", []string{"t"}, nil)
	require.NoError(t, err)
	c2, err := b.Subscribe("g", []string{"t"}, nil)
	require.NoError(t, err)
	require.Same(t, c.g, c2.g, "one coordinator for the group")
	require.NoError(t, c.Close())
	require.NoError(t, c2.Close())

	// And with real goroutines.
	for range 300 {
		require.NoError(t, b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: 0}))
		now.Add(10)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.expireOffsets() }()
		c, err := b.Subscribe("g", []string{"t"}, nil)
		require.NoError(t, err)
		wg.Wait()
		b.mu.RLock()
		same := b.groups["g"] == c.g
		b.mu.RUnlock()
		require.True(t, same, "the member is in the group's coordinator")
		require.NoError(t, c.Close())
		now.Add(10)
		b.expireOffsets()
	}
}

// A member evicted for not polling empties its group then, not at its last
// commit: expiry counts from when the check last saw it alive.
func TestOffsetsExpireAfterEviction(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := openBroker(t, "", &Options{Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 1)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollInterval: time.Hour})
	cgPollN(t, c, 1)
	require.NoError(t, c.Commit(t.Context()))
	advance(30 * time.Minute)
	b.expireOffsets() // alive: seen now
	advance(DefaultOffsetsRetention - time.Minute)
	b.expireOffsets() // evicted long ago, but seen alive 7 days - 1 minute ago
	offs, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.NotEmpty(t, offs)
	advance(2 * time.Minute)
	b.expireOffsets()
	offs, err = b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Empty(t, offs)
}
