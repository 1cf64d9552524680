package stream

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/groups"
	"github.com/embedstream/stream/segment"
)

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
	walk       batch.Iter        // reused by every fetch
	filter     batch.AbortFilter // ReadCommitted: the aborted transactions of the partition being read
	next       int               // partition to start the next fetch at, for fairness
	damage     *CorruptError     // met by a fetch that had records to return: the next Poll reports it
	revoked    bool              // OnRevoked ran in the current rebalance
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

// Subscribe joins group as a new member consuming topics and returns the
// member. Partitions are assigned at the first Poll (and reassigned as
// members come and go). It fails with ErrInvalidGroup for a bad group name
// (see ErrInvalidGroup), ErrInvalidConfig for no topics or bad options or a balancer that
// differs from the group's, and ErrTopicNotFound / ErrInvalidTopic for the
// topics (unless AutoCreateTopics creates them).
func (b *Broker) Subscribe(groupName string, topics []string, opts *ConsumerOptions) (*Consumer, error) {
	if err := validateGroupName(groupName); err != nil {
		return nil, err
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

// callable reports whether the consumer may be used now.
func (c *Consumer) callable() error {
	if c.state.Load() == consumerClosed {
		return ErrClosed
	}
	return nil
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
	slices.SortFunc(out, compareTopicPartitions)
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
