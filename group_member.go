package stream

import (
	"fmt"
	"time"

	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/groups"
)

// GroupMember is a member of a consumer group that is not a *Consumer: a
// remote member of the Kafka listener, say, which drives the group's
// coordinator itself through the task protocol (Poll, then Ack each Revoke
// or Assign task once carried out; see group.Coordinator.Poll). It shares
// the group with in-process Consumers under the same guarantees: a
// partition has one owner at a time, a partition moves only once its owner
// acknowledged giving it up, and commits are fenced by generation.
//
// Liveness is the caller's: a member out of Poll for longer than its
// JoinRequest.MaxPollInterval (since PollDone or its last Ack) is evicted
// and the others rebalance. A remote member calls PollDone at every
// request it makes, so its session timeout plays that part.
//
// Its calls are meant for one goroutine at a time.
type GroupMember struct {
	b *Broker
	m *groups.Member
}

// JoinGroup makes a new member of group name, using balancer, with req's
// subscription and timeouts (MaxPollInterval is the eviction deadline,
// SessionTimeout how long a departed static member's partitions wait). It
// fails with ErrInvalidGroup for a bad group name, ErrInvalidConfig for a
// nil balancer, negative timeouts, or a balancer that differs from that of
// the group's current members, and ErrClosed once the broker is closed.
// Topics need not exist: a topic without partitions assigns nothing.
func (b *Broker) JoinGroup(name string, balancer Balancer, req group.JoinRequest) (*GroupMember, error) {
	if err := validateGroupName(name); err != nil {
		return nil, err
	}
	switch {
	case balancer == nil:
		return nil, fmt.Errorf("%w: no balancer", ErrInvalidConfig)
	case req.SessionTimeout < 0 || req.MaxPollInterval < 0:
		return nil, fmt.Errorf("%w: negative timeout", ErrInvalidConfig)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	m, err := b.groups.Join(name, balancer, req)
	if err != nil {
		return nil, err
	}
	return &GroupMember{b: b, m: m}, nil
}

// ID is the member's id in the group, unique within it while the broker
// runs.
func (gm *GroupMember) ID() string { return gm.m.ID() }

// Group is the member's group's name.
func (gm *GroupMember) Group() string { return gm.m.Group() }

// Protocol is the group's rebalance protocol, fixed by its balancer.
func (gm *GroupMember) Protocol() group.Protocol { return gm.m.Protocol() }

// Poll asks the coordinator what the member must do next (see
// group.Coordinator.Poll); during a rebalance it counts as the member
// rejoining. It fails with group.ErrUnknownMember once the member was
// evicted or left (it must join again, as a new member), and
// group.ErrFenced once a newer member with its instance id replaced it.
// The member counts as inside Poll, and cannot be evicted, until PollDone.
func (gm *GroupMember) Poll() (group.Task, error) { return gm.m.Poll() }

// PollDone marks the member as out of Poll and alive now: its
// MaxPollInterval counts from now. It is also how a member that does not
// poll (one only heartbeating) shows it is alive.
func (gm *GroupMember) PollDone() { gm.m.PollDone() }

// Ack acknowledges a Revoke or Assign task the member has carried out.
func (gm *GroupMember) Ack(task group.Task) { gm.m.Ack(task) }

// State returns the group's state and current generation without taking
// part in a rebalance: a member learns of one from it (PreparingRebalance)
// and rejoins by Polling.
func (gm *GroupMember) State() (group.State, int) { return gm.m.State() }

// Resubscribe changes the member's subscription (a Kafka client rejoining
// with other topics): the group rebalances.
func (gm *GroupMember) Resubscribe(topics []string) { gm.m.Resubscribe(topics) }

// Owned reports what the coordinator says the member holds, and the
// generation of its last acknowledged assignment; the error
// (group.ErrUnknownMember, group.ErrFenced) says why it holds nothing.
func (gm *GroupMember) Owned() ([]TopicPartition, int, error) { return gm.m.Owned() }

// Commit stores offsets (the next offset to read, per partition) for the
// member in generation, the one of its last acknowledged assignment. It
// fails with ErrStaleGeneration for another generation or an evicted
// member, ErrNotAssigned for a partition the member does not hold,
// ErrFenced once replaced, ErrInvalidArgument for a negative offset,
// ErrReadOnly or ErrClosed.
func (gm *GroupMember) Commit(generation int, offsets map[TopicPartition]int64) error {
	gm.b.mu.RLock() // Close waits: the catalog stays open
	defer gm.b.mu.RUnlock()
	if err := gm.b.checkWritable(); err != nil {
		return err
	}
	return gm.m.Commit(generation, offsets)
}

// Notify rings bell (a channel of capacity 1) at the group's next change.
func (gm *GroupMember) Notify(bell chan struct{}) { gm.m.Notify(bell) }

// Forget drops a bell registered with Notify.
func (gm *GroupMember) Forget(bell chan struct{}) { gm.m.Forget(bell) }

// NextDeadline is when the group next evicts a member unless it shows
// itself alive, or the zero time: a member waiting for a rebalance
// wakes then and Polls, which runs the eviction.
func (gm *GroupMember) NextDeadline() time.Time { return gm.m.NextDeadline() }

// Leave takes the member out of its group: the others rebalance at once (a
// static member's partitions instead wait SessionTimeout for it). Later
// calls fail as for an evicted member.
func (gm *GroupMember) Leave() { gm.m.Leave() }
