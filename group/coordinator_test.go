package group

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The coordinator is pure logic with time passed in: these tests drive it
// the way a Consumer's Poll does, at explicit instants.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// coordSim drives a Coordinator like a set of consumers, checking after
// every acknowledged task that no partition has two owners.
type coordSim struct {
	t   *testing.T
	c   *Coordinator
	now time.Time
	ids []string          // every member id handed out
	log map[string][]Task // the Revoke and Assign tasks each member carried out
}

func newCoordSim(t *testing.T, b Balancer, counts map[string]int32) *coordSim {
	return &coordSim{t: t, now: t0, log: map[string][]Task{},
		c: NewCoordinator(b, func(topic string) int32 { return counts[topic] })}
}

func (s *coordSim) join(req JoinRequest) string {
	if req.Topics == nil {
		req.Topics = []string{"t"}
	}
	id := s.c.Join(s.now, req)
	s.ids = append(s.ids, id)
	return id
}

// poll is one coordinator Poll at s.now.
func (s *coordSim) poll(id string) Task {
	s.t.Helper()
	task, err := s.c.Poll(s.now, id)
	require.NoError(s.t, err)
	return task
}

// ack acknowledges a task and checks ownership.
func (s *coordSim) ack(id string, task Task) {
	s.t.Helper()
	require.NoError(s.t, s.c.Ack(s.now, id, task))
	s.log[id] = append(s.log[id], task)
	s.checkOwnership()
}

// turn is one consumer Poll: carry out Revoke and Assign tasks until the
// coordinator says Fetch or Wait, then leave Poll.
func (s *coordSim) turn(id string) Task {
	s.t.Helper()
	defer s.c.PollDone(s.now, id)
	for range 10 {
		task := s.poll(id)
		if task.Kind == Fetch || task.Kind == Wait {
			return task
		}
		s.ack(id, task)
	}
	s.t.Fatalf("%s: no Fetch or Wait after 10 tasks", id)
	return Task{}
}

// settle runs turns round-robin until, for a whole round, every member
// fetches and none has anything to revoke or take.
func (s *coordSim) settle(ids ...string) {
	s.t.Helper()
	for range 20 {
		acted := 0
		for _, id := range ids {
			acted -= len(s.log[id])
		}
		fetching := true
		for _, id := range ids {
			if s.turn(id).Kind != Fetch {
				fetching = false
			}
		}
		for _, id := range ids {
			acted += len(s.log[id])
		}
		if fetching && acted == 0 && s.c.State() == Stable {
			return
		}
	}
	s.t.Fatalf("members %v did not settle", ids)
}

// owned returns what a member holds, as the coordinator sees it.
func (s *coordSim) owned(id string) []TopicPartition {
	s.t.Helper()
	parts, _, err := s.c.Owned(id)
	require.NoError(s.t, err)
	return parts
}

func (s *coordSim) checkOwnership() {
	s.t.Helper()
	holder := map[TopicPartition]string{}
	for _, id := range s.ids {
		parts, _, err := s.c.Owned(id)
		if err != nil {
			continue
		}
		for _, tp := range parts {
			if other, ok := holder[tp]; ok {
				s.t.Fatalf("%s held by both %s and %s", tp, other, id)
			}
			holder[tp] = id
		}
	}
}

func TestCoordinatorStateNames(t *testing.T) {
	for s, want := range map[State]string{Empty: "Empty", PreparingRebalance: "PreparingRebalance",
		Stable: "Stable", Dead: "Dead", State(9): "State(9)"} {
		require.Equal(t, want, s.String())
	}
}

func TestCoordinatorFirstMemberGetsEverything(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	c := s.c
	require.Equal(t, Empty, c.State())
	require.Zero(t, c.Generation())
	require.True(t, c.NextDeadline().IsZero())
	require.Equal(t, Eager, c.Protocol())

	a := s.join(JoinRequest{MaxPollInterval: time.Minute})
	require.Equal(t, PreparingRebalance, c.State())
	require.Equal(t, 1, c.Len())
	require.Equal(t, []string{"t"}, c.Subscribed())
	task := s.poll(a)
	require.Equal(t, Assign, task.Kind)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), task.Partitions)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), task.Owned)
	require.Equal(t, 1, task.Generation)
	require.Equal(t, Stable, c.State())
	require.Equal(t, 1, c.Generation())
	require.Empty(t, s.owned(a), "held only once acknowledged")
	s.ack(a, task)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), s.owned(a))
	task = s.poll(a)
	require.Equal(t, Fetch, task.Kind)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), task.Owned)
	require.NoError(t, c.CheckCommit(s.now, a, 1, tps(t, "tp0,tp3")))
	members := c.Members(s.now)
	require.Equal(t, []MemberInfo{{ID: a, Topics: []string{"t"}, Assignment: tps(t, "tp0,tp1,tp2,tp3")}}, members)
}

// Eager: the old owner revokes everything, and nobody is assigned anything
// until every member has rejoined having given up what it held.
func TestCoordinatorEagerRevokesBeforeAnyoneIsAssigned(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	a := s.join(JoinRequest{})
	s.settle(a)
	b := s.join(JoinRequest{})
	require.Equal(t, PreparingRebalance, s.c.State())

	require.Equal(t, Wait, s.poll(b).Kind, "b waits while a holds everything")
	revoke := s.poll(a)
	require.Equal(t, Revoke, revoke.Kind)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), revoke.Partitions, "eager: all of it")
	require.Empty(t, revoke.Owned)
	require.NoError(t, s.c.CheckCommit(s.now, a, 1, revoke.Partitions), "a may commit what it is revoking")
	require.Equal(t, Wait, s.poll(b).Kind, "still held until a acknowledges")
	require.Equal(t, 1, s.c.Generation())
	s.ack(a, revoke)

	assign := s.poll(a) // a rejoins last: the rebalance completes
	require.Equal(t, Assign, assign.Kind)
	require.Equal(t, tps(t, "tp0,tp1"), assign.Partitions)
	require.Equal(t, 2, assign.Generation)
	s.ack(a, assign)
	assign = s.poll(b)
	require.Equal(t, Assign, assign.Kind)
	require.Equal(t, tps(t, "tp2,tp3"), assign.Partitions)
	s.ack(b, assign)
	s.settle(a, b)
	require.Equal(t, 2, s.c.Generation())
	require.Len(t, s.log[a], 3, "assign, revoke, assign")
}

// Cooperative: only the partitions that move are revoked, and they reach
// their new owner in a follow-up rebalance, after the old owner
// acknowledged giving them up (item 69).
func TestCoordinatorCooperativeTwoStepHandOver(t *testing.T) {
	s := newCoordSim(t, CooperativeStickyBalancer{}, map[string]int32{"t": 4})
	all := tps(t, "tp0,tp1,tp2,tp3")
	a := s.join(JoinRequest{})
	s.settle(a)
	require.Equal(t, all, s.owned(a))
	b := s.join(JoinRequest{})

	wait := s.poll(a)
	require.Contains(t, []TaskKind{Wait, Fetch}, wait.Kind, "nothing to give up before the target is known")
	require.Equal(t, all, wait.Owned, "a keeps its partitions through the rebalance")
	first := s.poll(b) // b rejoins last: generation 2
	require.Equal(t, 2, s.c.Generation())
	require.Equal(t, Assign, first.Kind)
	require.Empty(t, first.Partitions, "the partitions b will get are still a's")
	s.ack(b, first)

	revoke := s.poll(a)
	require.Equal(t, Revoke, revoke.Kind)
	moved := revoke.Partitions
	require.Len(t, moved, 2, "only what moves")
	kept := revoke.Owned
	require.ElementsMatch(t, all, append(slices.Clone(kept), moved...))
	s.ack(a, revoke)
	assign := s.poll(a)
	require.Equal(t, Assign, assign.Kind)
	require.Empty(t, assign.Partitions)
	require.Equal(t, kept, assign.Owned)
	s.ack(a, assign) // everyone caught up: the follow-up rebalance starts
	require.Equal(t, PreparingRebalance, s.c.State())
	require.Equal(t, 2, s.c.Generation())

	require.Equal(t, Wait, s.poll(b).Kind, "b holds nothing: it waits")
	assign = s.poll(a)
	require.Equal(t, 3, s.c.Generation())
	require.Equal(t, Assign, assign.Kind)
	require.Empty(t, assign.Partitions)
	s.ack(a, assign)
	second := s.poll(b)
	require.Equal(t, Assign, second.Kind)
	require.Equal(t, moved, second.Partitions)
	s.ack(b, second)
	s.settle(a, b)
	require.Equal(t, kept, s.owned(a))
	require.Equal(t, moved, s.owned(b))
	for _, task := range s.log[a] {
		if task.Kind == Revoke {
			require.Equal(t, moved, task.Partitions, "a never revokes what it keeps")
		}
	}

	// b leaves: a takes its partitions in one step, revoking nothing.
	s.c.Leave(s.now, b)
	n := len(s.log[a])
	s.settle(a)
	require.Equal(t, all, s.owned(a))
	require.Len(t, s.log[a], n+1)
	require.Equal(t, Assign, s.log[a][n].Kind)
	require.Equal(t, moved, s.log[a][n].Partitions)
}

func TestCoordinatorLeave(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	a, b := s.join(JoinRequest{}), s.join(JoinRequest{})
	s.settle(a, b)
	require.Equal(t, 1, s.c.Generation())
	s.c.Leave(s.now, b)
	require.Equal(t, PreparingRebalance, s.c.State())
	_, err := s.c.Poll(s.now, b)
	require.ErrorIs(t, err, ErrUnknownMember)
	s.settle(a)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), s.owned(a))
	require.Equal(t, 2, s.c.Generation())
	s.c.Leave(s.now, a)
	require.Equal(t, Empty, s.c.State())
	require.Zero(t, s.c.Len())
	require.Equal(t, 2, s.c.Generation(), "the generation survives an empty group")
	s.c.Leave(s.now, a) // twice: nothing
	require.Equal(t, Empty, s.c.State())
}

// MaxPollInterval: a member out of Poll that long is evicted; a member
// inside Poll never is. NextDeadline says when the next eviction is due.
func TestCoordinatorEvictionAndNextDeadline(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 2})
	a := s.join(JoinRequest{MaxPollInterval: 10 * time.Second})
	b := s.join(JoinRequest{MaxPollInterval: 20 * time.Second})
	s.settle(a, b) // both left Poll at t0
	gen := s.c.Generation()
	require.Equal(t, t0.Add(10*time.Second), s.c.NextDeadline())

	s.poll(a) // a is inside Poll: only b can be evicted
	require.Equal(t, t0.Add(20*time.Second), s.c.NextDeadline())
	s.c.Expire(t0.Add(time.Hour - time.Nanosecond)) // b's deadline long passed...
	require.Equal(t, 1, s.c.Len(), "...so b is gone, but a, inside Poll, stays")
	_, err := s.c.Poll(t0.Add(time.Hour), b)
	require.ErrorIs(t, err, ErrUnknownMember)
	require.ErrorIs(t, s.c.CheckCommit(t0.Add(time.Hour), b, gen, tps(t, "tp1")), ErrStaleGeneration)
	require.True(t, s.c.NextDeadline().IsZero(), "a is inside Poll: nothing can expire")

	// a leaves Poll at t0+2s and is evicted exactly MaxPollInterval later.
	s2 := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 2})
	a = s2.join(JoinRequest{MaxPollInterval: 10 * time.Second})
	b = s2.join(JoinRequest{MaxPollInterval: 20 * time.Second})
	s2.settle(a, b)
	s2.now = t0.Add(time.Second)
	s2.poll(a)
	s2.c.PollDone(t0.Add(2*time.Second), a)
	require.Equal(t, t0.Add(12*time.Second), s2.c.NextDeadline())
	s2.c.Expire(t0.Add(12*time.Second - time.Nanosecond))
	require.Equal(t, 2, s2.c.Len())
	require.Equal(t, Stable, s2.c.State())
	s2.c.Expire(t0.Add(12 * time.Second))
	require.Equal(t, 1, s2.c.Len())
	require.Equal(t, PreparingRebalance, s2.c.State())
	_, err = s2.c.Poll(t0.Add(12*time.Second), a)
	require.ErrorIs(t, err, ErrUnknownMember, "its next Poll must rejoin")
	require.ErrorIs(t, s2.c.CheckCommit(t0.Add(12*time.Second), a, gen, tps(t, "tp0")), ErrStaleGeneration)
	s2.now = t0.Add(12 * time.Second)
	s2.settle(b)
	require.Equal(t, tps(t, "tp0,tp1"), s2.owned(b))

	// Eviction also happens as a side effect of any member's call.
	a = s2.join(JoinRequest{MaxPollInterval: 10 * time.Second})
	s2.settle(a, b)
	s2.now = s2.now.Add(15 * time.Second) // a missed its deadline, b not
	s2.turn(b)
	require.Equal(t, 1, s2.c.Len())

	// No MaxPollInterval: never evicted, no deadline.
	s3 := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 1})
	z := s3.join(JoinRequest{})
	s3.settle(z)
	require.True(t, s3.c.NextDeadline().IsZero())
	s3.c.Expire(t0.Add(1000 * time.Hour))
	require.Equal(t, 1, s3.c.Len())
}

// EmptySince is when the group lost its last member: the time it left, or
// the deadline it missed, however much later the eviction was noticed.
func TestCoordinatorEmptySince(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 2})
	require.True(t, s.c.EmptySince().IsZero(), "never had a member")
	a := s.join(JoinRequest{MaxPollInterval: 10 * time.Second})
	b := s.join(JoinRequest{MaxPollInterval: 20 * time.Second})
	s.settle(a, b) // both left Poll at t0
	require.True(t, s.c.EmptySince().IsZero(), "has members")
	s.c.Expire(t0.Add(time.Hour))
	require.Zero(t, s.c.Len())
	require.Equal(t, t0.Add(20*time.Second), s.c.EmptySince(), "b, the last to go, went at its deadline")

	a = s.join(JoinRequest{})
	require.True(t, s.c.EmptySince().IsZero())
	s.now = t0.Add(2 * time.Hour)
	s.c.Leave(s.now, a)
	require.Equal(t, s.now, s.c.EmptySince(), "left")

	// A departed static member empties the group when its SessionTimeout
	// runs out.
	st := s.join(JoinRequest{InstanceID: "s", SessionTimeout: 30 * time.Second})
	s.settle(st)
	s.c.Leave(s.now, st)
	require.Equal(t, 1, s.c.Len(), "its place is kept")
	require.Equal(t, s.now.Add(30*time.Second), s.c.NextDeadline())
	s.c.Expire(s.now.Add(time.Hour))
	require.Equal(t, s.now.Add(30*time.Second), s.c.EmptySince())
}

// Static membership: a static member that leaves keeps its partitions for
// SessionTimeout; coming back in time, it gets them again without a
// rebalance; a duplicate live instance is fenced.
func TestCoordinatorStaticMembership(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	static := JoinRequest{InstanceID: "s", SessionTimeout: 30 * time.Second, MaxPollInterval: time.Minute}
	d := s.join(JoinRequest{MaxPollInterval: time.Minute})
	st := s.join(static)
	s.settle(d, st)
	require.Equal(t, tps(t, "tp0,tp1"), s.owned(st), "static members sort first")
	require.Equal(t, tps(t, "tp2,tp3"), s.owned(d))
	gen := s.c.Generation()

	s.now = t0.Add(time.Second)
	s.c.Leave(s.now, st)
	require.Equal(t, Stable, s.c.State(), "no rebalance")
	require.Equal(t, gen, s.c.Generation())
	require.Equal(t, 2, s.c.Len(), "the static member still belongs")
	require.Equal(t, t0.Add(31*time.Second), s.c.NextDeadline())
	members := s.c.Members(s.now)
	require.Equal(t, "s", members[0].InstanceID)
	require.Empty(t, members[0].Assignment)
	require.ErrorIs(t, s.c.CheckCommit(s.now, st, gen, tps(t, "tp0")), ErrStaleGeneration)
	n := len(s.log[d])
	require.Equal(t, Fetch, s.turn(d).Kind)

	s.now = t0.Add(20 * time.Second)
	st2 := s.join(static)
	require.NotEqual(t, st, st2)
	require.Equal(t, Stable, s.c.State(), "back in time: no rebalance")
	require.Equal(t, gen, s.c.Generation())
	assign := s.poll(st2)
	require.Equal(t, Assign, assign.Kind)
	require.Equal(t, tps(t, "tp0,tp1"), assign.Partitions)
	require.Equal(t, gen, assign.Generation)
	s.ack(st2, assign)
	s.settle(d, st2)
	require.Len(t, s.log[d], n, "d revoked and got nothing")
	_, err := s.c.Poll(s.now, st)
	require.ErrorIs(t, err, ErrFenced, "the old member id is replaced")

	// Away too long: removed, and its partitions move.
	s.c.Leave(s.now, st2)
	left := s.now
	s.c.Expire(left.Add(30*time.Second - time.Nanosecond))
	require.Equal(t, 2, s.c.Len())
	require.Equal(t, Stable, s.c.State())
	s.c.Expire(left.Add(30 * time.Second))
	require.Equal(t, 1, s.c.Len())
	require.Equal(t, PreparingRebalance, s.c.State())
	s.now = left.Add(30 * time.Second)
	s.settle(d)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), s.owned(d))
	require.Equal(t, gen+1, s.c.Generation())
}

func TestCoordinatorDuplicateStaticMemberIsFenced(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 2})
	req := JoinRequest{InstanceID: "x", SessionTimeout: time.Minute}
	a := s.join(req)
	s.settle(a)
	gen := s.c.Generation()
	a2 := s.join(req) // a is still live
	require.Equal(t, gen, s.c.Generation())
	require.Equal(t, 1, s.c.Len())
	_, err := s.c.Poll(s.now, a)
	require.ErrorIs(t, err, ErrFenced)
	require.ErrorIs(t, s.c.CheckCommit(s.now, a, gen, tps(t, "tp0")), ErrFenced)
	require.ErrorIs(t, s.c.Ack(s.now, a, Task{Kind: Revoke}), ErrFenced)
	s.settle(a2)
	require.Equal(t, tps(t, "tp0,tp1"), s.owned(a2))
	s.c.Leave(s.now, a) // a fenced member leaving changes nothing
	require.Equal(t, 1, s.c.Len())
	require.Equal(t, Stable, s.c.State())
}

// A rebalance while a static member is away must not leave it a target
// that others were given meanwhile.
func TestCoordinatorStaticMemberReturnsAfterRebalance(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 2})
	static := JoinRequest{InstanceID: "s", SessionTimeout: time.Hour}
	st := s.join(static)
	d := s.join(JoinRequest{})
	s.settle(st, d)
	require.Equal(t, tps(t, "tp0"), s.owned(st))
	s.c.Leave(s.now, st)
	e := s.join(JoinRequest{}) // a rebalance while st is away
	s.settle(d, e)
	st2 := s.join(static)
	s.settle(d, e, st2) // checkOwnership runs after every acknowledged task
	held := 0
	for _, id := range []string{d, e, st2} {
		held += len(s.owned(id))
	}
	require.Equal(t, 2, held)
}

// Eager sticky: members revoke everything to rejoin, yet keep what they
// held where they can; a static member away during the rebalance keeps its
// partitions waiting for it, and gets them back on its return.
func TestCoordinatorEagerStickyKeepsClaims(t *testing.T) {
	s := newCoordSim(t, StickyBalancer{}, map[string]int32{"t": 6})
	static := JoinRequest{InstanceID: "s", SessionTimeout: time.Hour}
	st := s.join(static)
	a, b := s.join(JoinRequest{}), s.join(JoinRequest{})
	s.settle(st, a, b)
	held := map[string][]TopicPartition{st: s.owned(st), a: s.owned(a), b: s.owned(b)}
	for _, id := range []string{st, a, b} {
		require.Len(t, held[id], 2)
	}

	s.c.Leave(s.now, st)
	c := s.join(JoinRequest{}) // a rebalance while st is away
	s.settle(a, b, c)
	// Two members keep two partitions each: st (static members sort
	// first) and a; b gives one up to c.
	require.Equal(t, held[a], s.owned(a))
	require.Len(t, s.owned(b), 1)
	require.Subset(t, held[b], s.owned(b))
	require.Len(t, s.owned(c), 1)
	require.Subset(t, held[b], s.owned(c))

	st2 := s.join(static)
	require.Equal(t, Stable, s.c.State())
	s.settle(a, b, c, st2)
	require.Equal(t, held[st], s.owned(st2))

	// Back during a rebalance (so with one): the claim is the instance's,
	// not the member id's.
	s.c.Leave(s.now, st2)
	e := s.join(JoinRequest{})
	require.Equal(t, PreparingRebalance, s.c.State())
	st3 := s.join(static)
	s.settle(a, b, c, e, st3)
	require.Equal(t, held[st], s.owned(st3))
}

// A member that acknowledges an assignment after a new rebalance began
// holds it (its consumer ran OnAssigned and may fetch): it must revoke it
// before anybody else is assigned any of it.
func TestCoordinatorAssignmentAcknowledgedDuringNextRebalance(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	a := s.join(JoinRequest{})
	assign := s.poll(a)
	require.Equal(t, Assign, assign.Kind)
	b := s.join(JoinRequest{}) // between a's Poll and its Ack
	s.ack(a, assign)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), s.owned(a), "a carried out the assignment: it holds the partitions")
	require.Equal(t, Wait, s.poll(b).Kind)
	revoke := s.poll(a)
	require.Equal(t, Revoke, revoke.Kind)
	require.Equal(t, tps(t, "tp0,tp1,tp2,tp3"), revoke.Partitions)
}

func TestCoordinatorCheckCommit(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	a, b := s.join(JoinRequest{}), s.join(JoinRequest{})
	s.settle(a, b)
	gen := s.c.Generation()
	require.NoError(t, s.c.CheckCommit(s.now, a, gen, tps(t, "tp0,tp1")))
	require.NoError(t, s.c.CheckCommit(s.now, a, gen, nil))
	require.ErrorIs(t, s.c.CheckCommit(s.now, a, gen, tps(t, "tp2")), ErrNotOwned)
	require.ErrorIs(t, s.c.CheckCommit(s.now, a, gen, tps(t, "xp0")), ErrNotOwned)
	require.ErrorIs(t, s.c.CheckCommit(s.now, a, gen-1, tps(t, "tp0")), ErrStaleGeneration)
	require.ErrorIs(t, s.c.CheckCommit(s.now, "member-99", gen, tps(t, "tp0")), ErrStaleGeneration)

	// A rebalance starts: until a revokes, it still holds and may commit.
	c := s.join(JoinRequest{})
	require.NoError(t, s.c.CheckCommit(s.now, a, gen, tps(t, "tp0")))
	s.settle(a, b, c)
	require.ErrorIs(t, s.c.CheckCommit(s.now, a, gen, tps(t, "tp0")), ErrStaleGeneration, "an earlier generation")
	require.NoError(t, s.c.CheckCommit(s.now, a, s.c.Generation(), s.owned(a)))
}

func TestCoordinatorRebalanceAndResubscribe(t *testing.T) {
	counts := map[string]int32{"t": 2, "u": 2}
	s := newCoordSim(t, RangeBalancer{}, counts)
	a := s.join(JoinRequest{Topics: []string{"t"}})
	s.settle(a)
	require.Equal(t, tps(t, "tp0,tp1"), s.owned(a))

	counts["t"] = 3 // partitions added
	s.c.Rebalance()
	require.Equal(t, PreparingRebalance, s.c.State())
	s.settle(a)
	require.Equal(t, tps(t, "tp0,tp1,tp2"), s.owned(a))

	s.c.Resubscribe(a, []string{"u", "t", "u"})
	require.Equal(t, []string{"t", "u"}, s.c.Subscribed())
	s.settle(a)
	require.Equal(t, tps(t, "tp0,tp1,tp2,up0,up1"), s.owned(a))

	// Members with different subscriptions only get their topics.
	b := s.join(JoinRequest{Topics: []string{"u"}})
	s.settle(a, b)
	for _, tp := range s.owned(b) {
		require.Equal(t, "u", tp.Topic)
	}
	require.Len(t, append(s.owned(a), s.owned(b)...), 5)
}

// Many members joining and leaving in every order never put a partition in
// two hands, for every balancer.
func TestCoordinatorChurnKeepsSingleOwnership(t *testing.T) {
	for _, bal := range Balancers() {
		t.Run(bal.Name(), func(t *testing.T) {
			s := newCoordSim(t, bal, map[string]int32{"t": 6, "u": 3})
			var live []string
			for step := range 12 {
				s.now = s.now.Add(time.Second)
				if step%3 == 2 && len(live) > 1 {
					s.c.Leave(s.now, live[0])
					live = live[1:]
					// A static member's partitions wait for it
					// SessionTimeout; let that pass.
					s.now = s.now.Add(time.Minute)
					s.c.Expire(s.now)
				} else {
					req := JoinRequest{Topics: []string{"t", "u"}}
					if step%4 == 1 {
						req.InstanceID, req.SessionTimeout = fmt.Sprintf("i%d", step), time.Minute
					}
					if step%5 == 3 {
						req.Topics = []string{"u", "t"}
					}
					live = append(live, s.join(req))
				}
				// Members poll in a rotating order, some several times.
				order := append(slices.Clone(live[step%len(live):]), live[:step%len(live)]...)
				for _, id := range order {
					s.turn(id)
				}
				s.settle(live...)
				held := 0
				for _, id := range live {
					held += len(s.owned(id))
				}
				require.Equal(t, 9, held, "step %d: every partition held", step)
			}
		})
	}
}

// RequestRebalance (enforceRebalance) starts a rebalance from Stable, does
// nothing while one is under way, and refuses a non-member.
func TestCoordinatorRequestRebalance(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 2})
	c := s.c
	a := s.join(JoinRequest{MaxPollInterval: time.Minute})
	s.turn(a)
	require.Equal(t, Stable, c.State())
	require.Equal(t, 1, c.Generation())
	require.NoError(t, c.RequestRebalance(s.now, a))
	require.Equal(t, PreparingRebalance, c.State())
	changes := c.Changes()
	require.NoError(t, c.RequestRebalance(s.now, a))
	require.Equal(t, changes, c.Changes(), "already under way: nothing more")
	s.turn(a)
	require.Equal(t, Stable, c.State())
	require.Equal(t, 2, c.Generation())
	require.Equal(t, tps(t, "tp0,tp1"), s.owned(a))
	require.ErrorIs(t, c.RequestRebalance(s.now, "nobody"), ErrUnknownMember)
}

// Rebalances counts completed rebalances only; Evictions counts members
// whose time ran out, not those that left or went away statically and came
// back in time.
func TestCoordinatorCountsRebalancesAndEvictions(t *testing.T) {
	s := newCoordSim(t, RangeBalancer{}, map[string]int32{"t": 4})
	counts := func(rebalances, evictions uint64) {
		t.Helper()
		require.Equal(t, rebalances, s.c.Rebalances(), "rebalances")
		require.Equal(t, evictions, s.c.Evictions(), "evictions")
	}
	counts(0, 0)
	a := s.join(JoinRequest{MaxPollInterval: time.Minute})
	counts(0, 0) // under way, not completed
	s.settle(a)
	counts(1, 0)
	b := s.join(JoinRequest{MaxPollInterval: time.Minute})
	s.settle(a, b)
	counts(2, 0)
	st := s.join(JoinRequest{InstanceID: "s", SessionTimeout: 30 * time.Second, MaxPollInterval: time.Minute})
	s.settle(a, b, st)
	counts(3, 0)

	// A static member going away waits for its SessionTimeout: no
	// rebalance; at its end it is evicted, and the others rebalance.
	s.c.Leave(s.now, st)
	counts(3, 0)
	s.now = s.now.Add(30 * time.Second)
	s.settle(a, b)
	counts(4, 1)

	// Leaving is no eviction.
	s.c.Leave(s.now, b)
	s.settle(a)
	counts(5, 1)

	// a stops polling: evicted, and the group is empty, so no rebalance
	// completes.
	s.now = s.now.Add(time.Minute)
	s.c.Expire(s.now)
	require.Equal(t, Empty, s.c.State())
	counts(5, 2)
}
