package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/groups"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/segment"
)

// TopicPartition names one partition of a topic.
type TopicPartition = group.TopicPartition

// Balancer assigns a group's partitions to its members. Use one of
// RangeBalancer (the default), RoundRobinBalancer, StickyBalancer or
// CooperativeStickyBalancer; all members of a group must use the same kind.
type Balancer = group.Balancer

// The balancers (Kafka's partition.assignment.strategy values).
type (
	// RangeBalancer gives each member a contiguous range of each topic's
	// partitions (Kafka's RangeAssignor). Eager.
	RangeBalancer = group.RangeBalancer
	// RoundRobinBalancer deals all partitions round-robin (RoundRobinAssignor). Eager.
	RoundRobinBalancer = group.RoundRobinBalancer
	// StickyBalancer balances, then keeps partitions where they were (StickyAssignor). Eager.
	StickyBalancer = group.StickyBalancer
	// CooperativeStickyBalancer is StickyBalancer's target reached
	// incrementally: only partitions that move are revoked, and members
	// keep consuming the rest through a rebalance (CooperativeStickyAssignor).
	CooperativeStickyBalancer = group.CooperativeStickyBalancer
)

// OffsetReset says where a consumer starts in a partition that has no
// committed offset, or whose position fell outside the log
// (auto.offset.reset).
type OffsetReset int

const (
	// ResetLatest starts at the log end: only new records (Kafka's default).
	ResetLatest OffsetReset = iota
	// ResetEarliest starts at the log start.
	ResetEarliest
	// ResetNone fails Poll with ErrNoCommittedOffset (no commit) or
	// ErrOffsetOutOfRange (position outside the log).
	ResetNone
)

// ConsumerOptions configure a group member. Zero fields take their defaults.
type ConsumerOptions struct {
	// Reset applies where there is no committed offset or the position is
	// out of range (auto.offset.reset). Default ResetLatest.
	Reset OffsetReset
	// AutoCommit commits the positions of records already returned, inside
	// Poll every AutoCommitEvery, before partitions are revoked, and on
	// Close (enable.auto.commit; note the default here is off).
	AutoCommit bool
	// AutoCommitEvery is the auto-commit interval (auto.commit.interval.ms).
	// Default 5s.
	AutoCommitEvery time.Duration
	// MaxPollRecords caps the records one Poll returns (max.poll.records).
	// Default 500.
	MaxPollRecords int
	// MinBytes makes Poll wait, up to MaxWait, until this many bytes of
	// records are ready (fetch.min.bytes). Default 1.
	MinBytes int
	// MaxWait bounds the wait for MinBytes (fetch.max.wait.ms). Default 500ms.
	// Poll never returns an empty result because of it: with no records at
	// all it keeps waiting, until ctx ends.
	MaxWait time.Duration
	// SessionTimeout is how long a static member's partitions wait for it
	// after it closes before they are reassigned (session.timeout.ms).
	// Default 45s. In-process there are no heartbeats: a member is alive
	// while it is inside Poll or has returned from Poll within
	// MaxPollInterval.
	SessionTimeout time.Duration
	// MaxPollInterval evicts a member that has not called Poll for this long
	// since its last Poll returned (max.poll.interval.ms): its partitions go
	// to the others, its commits fail with ErrStaleGeneration, and its next
	// Poll calls OnLost and rejoins. Default 5 minutes.
	MaxPollInterval time.Duration
	// Balancer assigns partitions (partition.assignment.strategy). Default
	// RangeBalancer{}.
	Balancer Balancer
	// InstanceID makes the member static (group.instance.id): after Close it
	// keeps its partitions for SessionTimeout, and a member subscribing with
	// the same InstanceID within that time gets them back without a
	// rebalance. A second live member with the same InstanceID fences the
	// first (ErrFenced).
	InstanceID string
	// OnAssigned runs inside Poll, on the polling goroutine, with the
	// partitions newly assigned. Eager balancers pass the whole new
	// assignment; cooperative ones only what was added (maybe nothing).
	OnAssigned func(c *Consumer, parts []TopicPartition)
	// OnRevoked runs inside Poll or Close with partitions being taken away,
	// before any other member gets them: commit there (Commit or
	// CommitOffsets) and the new owner starts from that commit. Under an
	// eager balancer every rebalance calls it on every member, with an
	// empty list on one that owns nothing (as Kafka does); cooperative
	// ones only with partitions to give up.
	OnRevoked func(c *Consumer, parts []TopicPartition)
	// OnLost runs inside Poll when the member was evicted: its partitions
	// may already belong to others, so commits fail. Default: nothing.
	//
	// A panic in any of the three goes on up through Poll or Close, as
	// Kafka's poll rethrows a callback's exception, but the rebalance is
	// carried out first: the assignment or revocation applies, the group
	// goes on, and the Consumer stays usable.
	OnLost func(c *Consumer, parts []TopicPartition)
}

func (o *ConsumerOptions) withDefaults() (ConsumerOptions, error) {
	var opts ConsumerOptions
	if o != nil {
		opts = *o
	}
	if opts.Reset < ResetLatest || opts.Reset > ResetNone {
		return opts, fmt.Errorf("%w: offset reset %d", ErrInvalidConfig, opts.Reset)
	}
	if opts.AutoCommitEvery < 0 || opts.MaxPollRecords < 0 || opts.MinBytes < 0 || opts.MaxWait < 0 ||
		opts.SessionTimeout < 0 || opts.MaxPollInterval < 0 {
		return opts, fmt.Errorf("%w: negative consumer option", ErrInvalidConfig)
	}
	if opts.AutoCommitEvery == 0 {
		opts.AutoCommitEvery = 5 * time.Second
	}
	if opts.MaxPollRecords == 0 {
		opts.MaxPollRecords = 500
	}
	if opts.MinBytes == 0 {
		opts.MinBytes = 1
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 500 * time.Millisecond
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 45 * time.Second
	}
	if opts.MaxPollInterval == 0 {
		opts.MaxPollInterval = 5 * time.Minute
	}
	if opts.Balancer == nil {
		opts.Balancer = RangeBalancer{}
	}
	return opts, nil
}

// Consumer is a member of a consumer group: Subscribe returns one. Poll,
// Commit and the other calls are meant for one goroutine; Close and Wakeup
// may come from any.
type Consumer struct {
	b      *Broker
	m      *groups.Member
	opts   ConsumerOptions
	topics []string

	// Polling-goroutine state.
	gen        int
	owned      []TopicPartition
	pos        map[TopicPartition]*position
	paused     map[TopicPartition]bool
	views      []segment.View // pinned until the next Poll: returned records alias them
	slab       []Record
	out        []*Record
	walk       batch.Iter // reused by every fetch
	next       int        // partition to start the next fetch at, for fairness
	revoked    bool       // OnRevoked ran in the current rebalance
	lastCommit time.Time

	state   atomic.Int32  // consumerIdle, consumerPolling, consumerClosing or consumerClosed
	wake    chan struct{} // Wakeup; capacity 1
	bell    chan struct{} // rung by the group and the partitions Poll waits on; capacity 1
	stop    chan struct{} // closed by Close
	pollMu  sync.Mutex    // held by a running Poll; Close waits on it
	closeMu sync.Mutex
}

const (
	consumerIdle int32 = iota
	consumerPolling
	consumerClosing // Close runs: callbacks may still Commit
	consumerClosed
)

// position is where the consumer reads a partition next.
type position struct {
	next   int64 // next offset to return; valid when known
	known  bool  // false: resolve from the committed offset or the reset policy
	seek   OffsetReset
	seekTo bool // a SeekToBeginning/End waits for the next Poll
	part   *log.Log
	topic  *topic
}

// Subscribe joins group as a new member consuming topics and returns the
// member. Partitions are assigned at the first Poll (and reassigned as
// members come and go). It fails with ErrInvalidGroup for an empty group
// name, ErrInvalidConfig for no topics or bad options or a balancer that
// differs from the group's, and ErrTopicNotFound / ErrInvalidTopic for the
// topics (unless AutoCreateTopics creates them).
func (b *Broker) Subscribe(groupName string, topics []string, opts *ConsumerOptions) (*Consumer, error) {
	if groupName == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalidGroup)
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%w: no topics to subscribe to", ErrInvalidConfig)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		if _, err := b.topicForWrite(t); err != nil {
			if errors.Is(err, ErrReadOnly) {
				if _, err = b.topic(t); err == nil {
					continue
				}
			}
			return nil, err
		}
	}
	c := &Consumer{
		b: b, opts: o, topics: slices.Clone(topics),
		pos: map[TopicPartition]*position{}, paused: map[TopicPartition]bool{},
		wake: make(chan struct{}, 1), bell: make(chan struct{}, 1), stop: make(chan struct{}),
		lastCommit: b.opts.Now(),
	}
	req := group.JoinRequest{InstanceID: o.InstanceID, Topics: c.topics,
		SessionTimeout: o.SessionTimeout, MaxPollInterval: o.MaxPollInterval}
	m, err := b.groups.Join(groupName, o.Balancer, req)
	if err != nil {
		return nil, err
	}
	c.m = m
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		m.Leave()
		return nil, ErrClosed
	}
	b.consumers[c] = struct{}{}
	return c, nil
}

// enter marks the consumer as polling, or says why it cannot.
func (c *Consumer) enter() error {
	if c.state.CompareAndSwap(consumerIdle, consumerPolling) {
		return nil
	}
	if c.state.Load() == consumerPolling {
		return fmt.Errorf("%w: Consumer used from two goroutines at once", ErrConcurrentUse)
	}
	return ErrClosed
}

// Poll returns the next records from the member's partitions, at most
// MaxPollRecords, in offset order per partition, blocking until there are
// some, ctx ends (its error), Wakeup is called (ErrWakeup) or the consumer
// or broker closes (ErrClosed). Rebalance callbacks run inside it, on the
// calling goroutine, before it fetches.
//
// The returned records, and the slices in them, are valid until the next
// Poll or Close: they alias the memory-mapped log. Clone what you keep.
func (c *Consumer) Poll(ctx context.Context) ([]*Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	// A panic in a rebalance callback goes on up to the caller, as Kafka's
	// poll throws a callback's exception, but this runs first: the member
	// stays usable and keeps its place in the group.
	done := false
	defer func() {
		if !done {
			c.m.PollDone()
			c.state.CompareAndSwap(consumerPolling, consumerIdle)
			c.unfetch()
		}
	}()
	recs, err := c.poll(ctx)
	done = true
	c.m.PollDone()
	if !c.state.CompareAndSwap(consumerPolling, consumerIdle) {
		err = ErrClosed // Close came meanwhile; it finishes once we are out
	}
	if err != nil {
		// Records gathered but not handed out are not consumed: the next
		// Poll (or a commit, or Close's auto-commit) starts before them.
		c.unfetch()
		return nil, err
	}
	return recs, nil
}

// unfetch moves positions back to the first record gathered for the
// current Poll and drops the records.
func (c *Consumer) unfetch() {
	for _, r := range c.out {
		if ps := c.pos[TopicPartition{Topic: r.Topic, Partition: r.Partition}]; ps != nil && r.Offset < ps.next {
			ps.next = r.Offset
		}
	}
	c.release()
}

func (c *Consumer) poll(ctx context.Context) ([]*Record, error) {
	c.release()
	var deadline time.Time
	gathered := 0 // bytes of records gathered so far, for MinBytes
	for {
		select {
		case <-c.stop:
			return nil, ErrClosed
		case <-c.wake:
			return nil, ErrWakeup
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.opts.AutoCommit && len(c.out) == 0 && c.b.opts.Now().Sub(c.lastCommit) >= c.opts.AutoCommitEvery {
			// Only with nothing gathered: positions then cover exactly the
			// records already returned.
			c.autoCommit(nil)
		}
		// Register before looking, so that no change can slip by; a ring
		// left from an earlier wait only costs a look.
		select {
		case <-c.bell:
		default:
		}
		c.m.Notify(c.bell)
		task, err := c.m.Poll()
		switch {
		case errors.Is(err, group.ErrUnknownMember):
			c.lost()
			continue
		case errors.Is(err, group.ErrFenced):
			return nil, fmt.Errorf("%w: instance id %q", ErrFenced, c.opts.InstanceID)
		case err != nil:
			return nil, err
		}
		if task.Kind != group.Fetch && len(c.out) > 0 {
			// Records gathered while waiting for MinBytes go out first; the
			// group's news is handled at the next Poll (nothing was
			// acknowledged, so the coordinator asks again).
			return c.out, nil
		}
		switch task.Kind {
		case group.Revoke:
			c.b.opts.Logger.Info("stream: partitions revoked", "group", c.m.Group(), "member", c.m.ID(), "partitions", len(task.Partitions))
			c.revokeAndAck(task)
			continue
		case group.Assign:
			c.b.opts.Logger.Info("stream: partitions assigned", "group", c.m.Group(), "member", c.m.ID(),
				"generation", task.Generation, "added", len(task.Partitions), "owned", len(task.Owned))
			c.assign(task)
			continue
		case group.Wait:
			if err := c.waitFor(ctx, time.Time{}); err != nil {
				return nil, err
			}
			continue
		}
		// Fetch.
		bytes, err := c.fetch()
		if err != nil {
			return nil, err
		}
		gathered += bytes
		if len(c.out) > 0 {
			if gathered >= c.opts.MinBytes || len(c.out) >= c.opts.MaxPollRecords {
				return c.out, nil
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(c.opts.MaxWait)
			} else if !time.Now().Before(deadline) {
				return c.out, nil
			}
			// Keep what we have and wait for more: the next fetch starts
			// from the advanced positions.
		}
		ready := false
		for _, tp := range c.owned {
			ps := c.pos[tp]
			if c.paused[tp] || ps == nil || ps.part == nil {
				continue
			}
			ps.part.Notify(c.bell)
			if ps.known && ps.part.HighWatermark() > ps.next {
				ready = true // arrived since the fetch
			}
		}
		if ready {
			continue
		}
		if err := c.waitFor(ctx, deadline); err != nil {
			if errors.Is(err, errDeadline) {
				return c.out, nil
			}
			return nil, err
		}
	}
}

var errDeadline = errors.New("deadline")

// waitFor blocks until the bell rings (the group changed, or a partition
// Poll registered with moved), ctx ends, Wakeup, Close, the deadline
// (errDeadline), or the group's next eviction check is due.
func (c *Consumer) waitFor(ctx context.Context, deadline time.Time) error {
	var timer *time.Timer
	var timerC <-chan time.Time
	if !deadline.IsZero() {
		timer = time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		timerC = timer.C
	}
	var evict <-chan time.Time
	if due := c.m.NextDeadline(); !due.IsZero() {
		t := time.NewTimer(max(due.Sub(c.b.opts.Now()), 0))
		defer t.Stop()
		evict = t.C
	}
	select {
	case <-c.bell:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.wake:
		return ErrWakeup
	case <-c.stop:
		return ErrClosed
	case <-timerC:
		return errDeadline
	case <-evict:
	}
	return nil
}

// fetch appends records from the owned, unpaused partitions to c.out, up to
// MaxPollRecords, and returns the bytes of record values and keys added.
func (c *Consumer) fetch() (int, error) {
	n := len(c.owned)
	total := 0
	for i := 0; i < n && len(c.out) < c.opts.MaxPollRecords; i++ {
		tp := c.owned[(c.next+i)%n]
		if c.paused[tp] {
			continue
		}
		added, err := c.fetchPartition(tp)
		if err != nil {
			return total, err
		}
		total += added
	}
	if n > 0 {
		c.next = (c.next + 1) % n
	}
	return total, nil
}

func (c *Consumer) fetchPartition(tp TopicPartition) (int, error) {
	ps, err := c.resolve(tp)
	if err != nil {
		return 0, err
	}
	v, err := ps.part.Read(ps.next, 1<<20)
	if errors.Is(err, ErrOffsetOutOfRange) {
		// Retention moved the log start past us, or the log lost its tail.
		if err := c.reset(tp, ps, err); err != nil {
			return 0, err
		}
		v, err = ps.part.Read(ps.next, 1<<20)
	}
	if err != nil {
		if errors.Is(err, ErrClosed) && ps.topic.deleted.Load() {
			return 0, nil // the topic is gone; a rebalance follows
		}
		return 0, err
	}
	if len(v.Data) == 0 {
		return 0, nil
	}
	c.views = append(c.views, v)
	c.b.stats.BytesOut.Add(int64(len(v.Data)))
	bytes, count := 0, 0
	c.walk.Reset(v.Data, ps.next)
	var lr batch.Record
	for len(c.out) < c.opts.MaxPollRecords && c.walk.Next(&lr) {
		r := c.record()
		r.fromLog(tp.Topic, tp.Partition, &lr)
		c.out = append(c.out, r)
		// Every record counts, a keyless tombstone too: Kafka's
		// fetch.min.bytes counts what the fetch returns.
		bytes += max(len(lr.Key)+len(lr.Value), 1)
		count++
	}
	ps.next = c.walk.Offset() // past what it returned and the markers it skipped
	if err := c.walk.Err(); err != nil {
		return bytes, fmt.Errorf("%s at offset %d: %w", tp, ps.next, err)
	}
	c.b.stats.RecordsOut.Add(int64(count))
	return bytes, nil
}

// record returns the next reusable Record of this Poll's result.
func (c *Consumer) record() *Record {
	i := len(c.out)
	if i == len(c.slab) {
		c.slab = append(c.slab, make([]Record, max(16, len(c.slab)))...)
		// Records handed out earlier in this Poll point into the old slab:
		// they stay valid (the old array lives on); later ones use the new.
	}
	return &c.slab[i]
}

// resolve makes tp's position known: a pending seek, else the committed
// offset, else the reset policy.
func (c *Consumer) resolve(tp TopicPartition) (*position, error) {
	ps := c.pos[tp]
	if ps == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotAssigned, tp)
	}
	if ps.part == nil {
		t, p, err := c.b.partitionLog(tp.Topic, tp.Partition)
		if err != nil {
			return nil, err
		}
		ps.topic, ps.part = t, p
	}
	if ps.seekTo {
		ps.seekTo = false
		return ps, c.applyReset(ps, ps.seek)
	}
	if ps.known {
		return ps, nil
	}
	committed, err := c.b.groups.Committed(c.m.Group(), tp)
	if err != nil {
		return nil, err
	}
	if off, ok := committed[tp]; ok {
		ps.next, ps.known = off, true
		start, end := ps.part.StartOffset(), ps.part.HighWatermark()
		if off < start || off > end {
			// Committed past what survived a crash, or before retention:
			// out of range, and the reset policy decides.
			return ps, c.reset(tp, ps, fmt.Errorf("%w: committed offset %d of %s, log has [%d, %d)", ErrOffsetOutOfRange, off, tp, start, end))
		}
		return ps, nil
	}
	if c.opts.Reset == ResetNone {
		return nil, fmt.Errorf("%w: group %q, %s", ErrNoCommittedOffset, c.m.Group(), tp)
	}
	return ps, c.applyReset(ps, c.opts.Reset)
}

// reset handles an out-of-range position by the reset policy.
func (c *Consumer) reset(tp TopicPartition, ps *position, cause error) error {
	if c.opts.Reset == ResetNone {
		return cause
	}
	return c.applyReset(ps, c.opts.Reset)
}

func (c *Consumer) applyReset(ps *position, how OffsetReset) error {
	start, end := ps.part.StartOffset(), ps.part.HighWatermark()
	if how == ResetEarliest {
		ps.next = start
	} else {
		ps.next = end
	}
	ps.known = true
	return nil
}

// release unpins the views behind the previous Poll's records.
func (c *Consumer) release() {
	for i := range c.views {
		c.views[i].Release()
	}
	clear(c.views)
	c.views = c.views[:0]
	clear(c.out)
	c.out = c.out[:0]
}

// revoke gives partitions up: auto-commit, then OnRevoked, then forget them.
func (c *Consumer) revoke(parts []TopicPartition) {
	defer func() { // even if OnRevoked panics: the partitions are gone
		for _, tp := range parts {
			if ps := c.pos[tp]; ps != nil && ps.part != nil {
				ps.part.Forget(c.bell)
			}
			delete(c.pos, tp)
			delete(c.paused, tp)
		}
		c.owned, _ = group.Diff(parts, c.owned) // owned, less what was revoked
	}()
	if c.opts.AutoCommit {
		c.autoCommit(parts)
	}
	if c.opts.OnRevoked != nil && len(parts) > 0 {
		c.opts.OnRevoked(c, slices.Clone(parts))
	}
}

// assign carries out an Assign task: the assignment applies and is
// acknowledged before OnAssigned runs (as Kafka's SyncGroup completes
// before onPartitionsAssigned: the callback may already Commit or Seek),
// and even if the empty OnRevoked of an eager rebalance panics.
func (c *Consumer) assign(task group.Task) {
	apply := func() {
		c.revoked = false
		c.gen, c.owned = task.Generation, task.Owned
		for _, tp := range task.Owned {
			if c.pos[tp] == nil {
				c.pos[tp] = &position{}
			}
		}
		c.m.Ack(task)
	}
	if c.gen > 0 && !c.revoked && c.opts.OnRevoked != nil && c.m.Protocol() == group.Eager {
		// Kafka's eager rebalance starts with onPartitionsRevoked on
		// every member, one that owns nothing included.
		func() {
			defer apply()
			c.opts.OnRevoked(c, []TopicPartition{})
		}()
	} else {
		apply()
	}
	if c.opts.OnAssigned != nil {
		c.opts.OnAssigned(c, slices.Clone(task.Partitions))
	}
}

// revokeAndAck carries out a Revoke task and acknowledges it, even if
// OnRevoked panics: the rebalance must go on for the other members.
func (c *Consumer) revokeAndAck(task group.Task) {
	defer c.m.Ack(task)
	c.revoked = true
	c.revoke(task.Partitions)
}

// lost handles eviction: OnLost, forget everything, rejoin.
func (c *Consumer) lost() {
	c.b.opts.Logger.Warn("stream: member was evicted from its group; rejoining", "group", c.m.Group(), "member", c.m.ID(), "partitions", len(c.owned))
	defer func() { // even if OnLost panics
		c.release() // gathered records are from partitions it lost
		clear(c.pos)
		clear(c.paused)
		c.m.Rejoin()
		c.gen, c.owned = 0, nil
	}()
	if c.opts.OnLost != nil && len(c.owned) > 0 {
		c.opts.OnLost(c, slices.Clone(c.owned))
	}
}

// autoCommit commits the positions of parts (all owned if nil); failures
// are logged, not returned (Kafka's rule).
func (c *Consumer) autoCommit(parts []TopicPartition) {
	c.lastCommit = c.b.opts.Now()
	if err := c.commitPositions(parts); err != nil {
		c.b.opts.Logger.Warn("stream: auto-commit failed", "group", c.m.Group(), "member", c.m.ID(), "err", err)
	}
}

// positions returns the known positions of parts (all owned if nil).
func (c *Consumer) positions(parts []TopicPartition) map[TopicPartition]int64 {
	if parts == nil {
		parts = c.owned
	}
	out := make(map[TopicPartition]int64, len(parts))
	for _, tp := range parts {
		if ps := c.pos[tp]; ps != nil && ps.known && !ps.seekTo {
			out[tp] = ps.next
		}
	}
	return out
}

func (c *Consumer) commitPositions(parts []TopicPartition) error {
	offs := c.positions(parts)
	if len(offs) == 0 {
		return c.fencedErr()
	}
	return c.commit(offs)
}

// fencedErr is ErrFenced if a newer member with the same instance id has
// replaced this one, else nil: a commit with nothing to commit is a no-op,
// but fencing is final whatever the call.
func (c *Consumer) fencedErr() error { return c.m.Fenced() }

// commit stores offsets after the group accepts the member's right to.
func (c *Consumer) commit(offs map[TopicPartition]int64) error {
	return c.m.Commit(c.gen, offs)
}

// callable reports whether the consumer may be used now.
func (c *Consumer) callable() error {
	if c.state.Load() == consumerClosed {
		return ErrClosed
	}
	return nil
}

// Commit commits the position of every assigned partition: the offset
// after the last record Poll returned from it (Kafka's commitSync). It
// fails with ErrStaleGeneration if the member was evicted or the group moved
// on without it.
func (c *Consumer) Commit(ctx context.Context) error {
	if err := c.callable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commitPositions(nil)
}

// CommitOffsets commits exactly the given offsets (the next offset to read,
// per partition), which must be assigned to this member (ErrNotAssigned).
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error {
	if err := c.callable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(offsets) == 0 {
		return c.fencedErr()
	}
	return c.commit(offsets)
}

// Committed returns the group's committed offsets for parts (all the
// group's if none are named). Partitions never committed are absent.
func (c *Consumer) Committed(ctx context.Context, parts ...TopicPartition) (map[TopicPartition]int64, error) {
	if err := c.callable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.b.groups.Committed(c.m.Group(), parts...)
}

// assignedPos returns the position state of an assigned partition.
func (c *Consumer) assignedPos(tp TopicPartition) (*position, error) {
	if err := c.callable(); err != nil {
		return nil, err
	}
	ps := c.pos[tp]
	if ps == nil || !slices.Contains(c.owned, tp) {
		return nil, fmt.Errorf("%w: %s", ErrNotAssigned, tp)
	}
	return ps, nil
}

// Seek makes the next Poll read tp from offset (the last Seek wins). An
// offset outside the log is handled by the reset policy at that Poll.
func (c *Consumer) Seek(tp TopicPartition, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidArgument, offset)
	}
	ps, err := c.assignedPos(tp)
	if err != nil {
		return err
	}
	ps.next, ps.known, ps.seekTo = offset, true, false
	return nil
}

// SeekToBeginning makes the next Poll read parts (all assigned if none)
// from the log start as it is then.
func (c *Consumer) SeekToBeginning(parts ...TopicPartition) error {
	return c.seekTo(ResetEarliest, parts)
}

// SeekToEnd makes the next Poll read parts (all assigned if none) from the
// log end as it is then: only records published later.
func (c *Consumer) SeekToEnd(parts ...TopicPartition) error {
	return c.seekTo(ResetLatest, parts)
}

func (c *Consumer) seekTo(how OffsetReset, parts []TopicPartition) error {
	states, err := c.assignedPositions(parts)
	for _, ps := range states {
		ps.seek, ps.seekTo = how, true
	}
	return err
}

// SeekToCommitted makes the next Poll read parts (all assigned if none)
// from the group's committed offsets again (or the reset policy where
// there are none): a rewind after the records polled could not be
// processed.
func (c *Consumer) SeekToCommitted(parts ...TopicPartition) error {
	states, err := c.assignedPositions(parts)
	for _, ps := range states {
		ps.known, ps.seekTo = false, false
	}
	return err
}

// assignedPositions returns the position states of parts (all assigned
// if none), or none and an error if one is not assigned.
func (c *Consumer) assignedPositions(parts []TopicPartition) ([]*position, error) {
	if len(parts) == 0 {
		parts = c.owned
	}
	states := make([]*position, 0, len(parts))
	for _, tp := range parts {
		ps, err := c.assignedPos(tp)
		if err != nil {
			return nil, err
		}
		states = append(states, ps)
	}
	return states, c.callable()
}

// Position returns the offset of the next record Poll will return from tp,
// resolving a pending seek, the committed offset or the reset policy.
func (c *Consumer) Position(tp TopicPartition) (int64, error) {
	if _, err := c.assignedPos(tp); err != nil {
		return 0, err
	}
	ps, err := c.resolve(tp)
	if err != nil {
		return 0, err
	}
	return ps.next, nil
}

// Lag returns how many records of tp lie past the member's position: the
// partition's end (high watermark) minus the position (Kafka's currentLag).
// It fails with ErrNotAssigned for a partition the member does not hold.
func (c *Consumer) Lag(tp TopicPartition) (int64, error) {
	pos, err := c.Position(tp)
	if err != nil {
		return 0, err
	}
	return max(c.pos[tp].part.HighWatermark()-pos, 0), nil
}

// EnforceRebalance asks the group to rebalance (Kafka's enforceRebalance),
// say after a change that should move partitions; it does nothing if a
// rebalance is already under way. The rebalance runs in the members' next
// Polls, this one's included.
func (c *Consumer) EnforceRebalance() error {
	if err := c.callable(); err != nil {
		return err
	}
	return c.m.RequestRebalance()
}

// Assignment returns the partitions the member holds, sorted.
func (c *Consumer) Assignment() []TopicPartition {
	if c.callable() != nil {
		return nil
	}
	return slices.Clone(c.owned)
}

// Pause stops Poll returning records from parts until Resume; positions
// are kept and the group does not rebalance. Pauses end with a revocation.
func (c *Consumer) Pause(parts ...TopicPartition) {
	for _, tp := range parts {
		if slices.Contains(c.owned, tp) {
			c.paused[tp] = true
		}
	}
}

// Resume undoes Pause; resuming a partition that is not paused does nothing.
func (c *Consumer) Resume(parts ...TopicPartition) {
	for _, tp := range parts {
		delete(c.paused, tp)
	}
}

// Paused returns the paused partitions.
func (c *Consumer) Paused() []TopicPartition {
	var out []TopicPartition
	for tp := range c.paused {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// Wakeup makes a blocked Poll (or the next one) return ErrWakeup. It is
// safe from any goroutine.
func (c *Consumer) Wakeup() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// MemberID returns the member's id in the group (it changes when an
// evicted member rejoins).
func (c *Consumer) MemberID() string { return c.m.ID() }

// Close leaves the group: with AutoCommit it commits the positions, then
// runs OnRevoked for the assigned partitions, then leaves, so the other
// members rebalance at once (a static member instead keeps its partitions
// for SessionTimeout). A Poll blocked in another goroutine returns
// ErrClosed first. Close is safe to call more than once.
func (c *Consumer) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	for {
		s := c.state.Load()
		if s == consumerClosed || s == consumerClosing {
			return nil
		}
		if c.state.CompareAndSwap(s, consumerClosing) {
			break
		}
	}
	close(c.stop)
	// Wait out a running Poll: the callbacks below must not race it.
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	defer c.state.Store(consumerClosed)
	_, gen, err := c.m.Owned()
	lost := err != nil || gen != c.gen // evicted or fenced: the partitions are no longer ours
	// The member leaves even if a callback below panics (the panic goes on
	// to Close's caller).
	defer c.leave()
	switch {
	case len(c.owned) == 0:
	case lost:
		if c.opts.OnLost != nil {
			c.opts.OnLost(c, slices.Clone(c.owned))
		}
	default:
		if c.opts.AutoCommit {
			if err := c.commitPositions(nil); err != nil {
				c.b.opts.Logger.Warn("stream: commit on close failed", "group", c.m.Group(), "member", c.m.ID(), "err", err)
			}
		}
		if c.opts.OnRevoked != nil {
			c.opts.OnRevoked(c, slices.Clone(c.owned))
		}
	}
	return nil
}

// leave takes a closing member out of its group and the broker.
func (c *Consumer) leave() {
	c.m.Leave()
	c.m.Forget(c.bell)
	for _, ps := range c.pos {
		if ps.part != nil {
			ps.part.Forget(c.bell)
		}
	}
	c.release()
	// c.owned stays: the polling goroutine may still read it (Assignment
	// returns nil once closed).
	c.b.mu.Lock()
	delete(c.b.consumers, c)
	c.b.mu.Unlock()
}
