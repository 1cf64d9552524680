package group

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// State is a group's state, as Kafka's classic group coordinator names them.
type State int

// Group states. Kafka's CompletingRebalance (waiting for the leader's
// assignment) has no counterpart: the coordinator computes the assignment
// the moment the last member rejoins, going from PreparingRebalance
// straight to Stable.
const (
	Empty State = iota
	PreparingRebalance
	Stable
	Dead
)

// String returns Kafka's name for the state.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Errors the coordinator returns to members.
var (
	// ErrUnknownMember: the member was evicted (or left); it must rejoin.
	ErrUnknownMember = errors.New("group: unknown member")
	// ErrStaleGeneration: a commit from a member of an earlier generation.
	ErrStaleGeneration = errors.New("group: stale generation")
	// ErrFenced: another member joined with the same static instance id.
	ErrFenced = errors.New("group: fenced by a newer member with the same instance id")
	// ErrNotOwned: a commit for a partition the member does not hold.
	ErrNotOwned = errors.New("group: partition not owned by the member")
)

// JoinRequest describes a member joining.
type JoinRequest struct {
	InstanceID      string        // static membership id; "" for a dynamic member
	Topics          []string      // subscription
	SessionTimeout  time.Duration // how long a departed static member's partitions wait for it
	MaxPollInterval time.Duration // a member that does not poll for this long is evicted
}

// TaskKind says what a member must do next.
type TaskKind int

// Tasks, in the order a member meets them during a rebalance.
const (
	// Fetch: read from the Owned partitions.
	Fetch TaskKind = iota
	// Revoke: give up Partitions (run the revocation callback, commit),
	// then Ack.
	Revoke
	// Assign: take Partitions (run the assignment callback), then Ack.
	Assign
	// Wait: a rebalance waits for other members; poll again when the group
	// changes.
	Wait
)

// Task is the coordinator's answer to Poll. Its slices may be shared with
// the coordinator, which never modifies a slice once handed out: callers
// must not modify them either.
type Task struct {
	Kind       TaskKind
	Partitions []TopicPartition // to revoke or assign
	Owned      []TopicPartition // held after the task is acknowledged
	Generation int
}

// memberState is one member's state.
type memberState struct {
	id, instanceID  string
	topics          []string
	sessionTimeout  time.Duration
	maxPollInterval time.Duration

	owned    []TopicPartition // held, as acknowledged by the member
	target   []TopicPartition // what it should hold in this generation
	gen      int              // generation whose assignment it has acknowledged
	rejoined bool             // has rejoined the rebalance in progress
	inPoll   bool             // inside Poll: alive, however long it waits
	lastSeen time.Time        // last time it returned from Poll (or joined)
	departed time.Time        // static member that closed: when; zero otherwise

	// claim is the last assignment the member acknowledged, of generation
	// claimGen. An eager rebalance's revoke-everything leaves it: it is
	// what the sticky balancer keeps with the member where it can (Kafka's
	// StickyAssignor sends it, with the generation, in the subscription).
	claim    []TopicPartition
	claimGen int
}

// Coordinator is one group's membership, generations and assignments. It is
// pure logic: no goroutines, no I/O, time passed in; callers serialize calls.
//
// Hand-over is safe by construction: a rebalance completes only once every
// member has rejoined, and a member rejoins only after revoking what it must
// give up (everything, for eager balancers; only what moves, for
// cooperative ones, which then take a second rebalance to hand it over). So
// a partition never has two owners at once.
type Coordinator struct {
	balancer   Balancer
	partitions func(topic string) int32

	state      State
	generation int
	members    map[string]*memberState
	nextID     int
	followUp   bool // a cooperative rebalance withheld partitions: run another
	changes    uint64
	fencedIDs  map[string]bool // static members replaced by a newer one
	emptied    time.Time       // when the last member went (left, or its time ran out); see EmptySince
	rebalances uint64          // completed rebalances; see Rebalances
	evictions  uint64          // members removed by their deadlines; see Evictions
}

// NewCoordinator returns an empty group using balancer; partitions reports a
// topic's partition count (0 if it does not exist).
func NewCoordinator(balancer Balancer, partitions func(topic string) int32) *Coordinator {
	return &Coordinator{balancer: balancer, partitions: partitions, members: map[string]*memberState{}}
}

// State returns the group's state.
func (c *Coordinator) State() State { return c.state }

// Generation returns the current generation: 0 before the first
// assignment, unless the group resumed (ResumeAt).
func (c *Coordinator) Generation() int { return c.generation }

// ResumeAt makes a group restored from storage go on from generation gen:
// its next rebalance completes generation gen+1, as a Kafka coordinator
// loading a group does. It has no effect once the group has members or a
// generation of its own.
func (c *Coordinator) ResumeAt(gen int) {
	if len(c.members) == 0 && c.generation == 0 && gen > 0 {
		c.generation = gen
	}
}

// Protocol returns the balancer's protocol.
func (c *Coordinator) Protocol() Protocol { return c.balancer.Protocol() }

// Changes counts state changes; callers use it to know when to wake
// members waiting in Poll.
func (c *Coordinator) Changes() uint64 { return c.changes }

func (c *Coordinator) changed() { c.changes++ }

// Rebalances counts the rebalances this coordinator completed (each a new
// generation), for monitoring: a group that keeps rebalancing has a member
// that keeps coming and going. A static member taking its place back
// without a rebalance (KIP-345) is not one.
func (c *Coordinator) Rebalances() uint64 { return c.rebalances }

// Evictions counts the members this coordinator removed because their time
// ran out: a member that did not poll within its MaxPollInterval, or a
// departed static member not back within its SessionTimeout. Members that
// left, and static members replaced by a newer instance, are not counted.
func (c *Coordinator) Evictions() uint64 { return c.evictions }

// Join adds a member and returns its id. A static member (InstanceID set)
// whose instance id is already in the group takes over that member's
// partitions without a rebalance if its subscription is unchanged; the
// member it replaces, if still live, is fenced. Any other join starts a
// rebalance.
func (c *Coordinator) Join(now time.Time, req JoinRequest) string {
	c.expire(now)
	c.nextID++
	id := "member-" + strconv.Itoa(c.nextID)
	m := &memberState{id: id, instanceID: req.InstanceID, topics: slices.Clone(req.Topics),
		sessionTimeout: req.SessionTimeout, maxPollInterval: req.MaxPollInterval, lastSeen: now}
	slices.Sort(m.topics)
	m.topics = slices.Compact(m.topics)
	if req.InstanceID != "" {
		for oldID, old := range c.members {
			if old.instanceID != req.InstanceID {
				continue
			}
			delete(c.members, oldID)
			m.claim, m.claimGen = old.claim, old.claimGen // same instance, same claim
			if slices.Equal(old.topics, m.topics) && c.state == Stable {
				// Same member back (or replacing a stuck one): same
				// partitions, no rebalance (KIP-345).
				m.owned, m.target, m.gen = nil, old.target, c.generation-1
				c.members[id] = m
				c.fenced(oldID)
				c.changed()
				return id
			}
			c.fenced(oldID)
			break
		}
	}
	c.members[id] = m
	c.startRebalance()
	return id
}

// fencedIDs remembers replaced static members so their calls fail with
// ErrFenced rather than ErrUnknownMember.
func (c *Coordinator) fenced(id string) {
	if c.fencedIDs == nil {
		c.fencedIDs = map[string]bool{}
	}
	c.fencedIDs[id] = true
}

func (c *Coordinator) startRebalance() {
	live := 0
	for _, m := range c.members {
		m.rejoined = false
		if m.departed.IsZero() {
			live++
		}
	}
	c.followUp = false
	if live == 0 {
		c.state = Empty
		for _, m := range c.members {
			m.target = nil
		}
	} else {
		c.state = PreparingRebalance
	}
	c.changed()
}

// lookup returns a member, or why it is not one.
func (c *Coordinator) lookup(id string) (*memberState, error) {
	if m, ok := c.members[id]; ok {
		return m, nil
	}
	if c.fencedIDs[id] {
		return nil, ErrFenced
	}
	return nil, ErrUnknownMember
}

// Poll is a member's turn: it tells the member what to do next. The member
// acts on a Revoke or Assign task, then calls Ack, then Polls again. Poll
// also marks the member as inside its poll loop until PollDone.
func (c *Coordinator) Poll(now time.Time, id string) (Task, error) {
	c.expire(now)
	m, err := c.lookup(id)
	if err != nil {
		return Task{}, err
	}
	m.inPoll, m.lastSeen = true, now
	if !m.departed.IsZero() {
		return Task{}, ErrUnknownMember
	}
	// Give up first: what the member holds but must not (an eager
	// rebalance revokes everything; a cooperative one only what moves).
	if revoke := c.toRevoke(m); len(revoke) > 0 {
		return Task{Kind: Revoke, Partitions: revoke, Owned: without(m.owned, revoke), Generation: m.gen}, nil
	}
	if c.state == PreparingRebalance {
		if !m.rejoined {
			m.rejoined = true
			c.changed()
		}
		if c.maybeComplete() {
			return c.Poll(now, id)
		}
		if c.balancer.Protocol() == Cooperative && len(m.owned) > 0 && m.gen == c.generation {
			// Cooperative: keep consuming what it holds while the others
			// rejoin; nothing of it moves before it revokes.
			return Task{Kind: Fetch, Owned: m.owned, Generation: m.gen}, nil
		}
		return Task{Kind: Wait, Owned: m.owned, Generation: m.gen}, nil
	}
	if m.gen < c.generation {
		added, _ := Diff(m.owned, m.target)
		return Task{Kind: Assign, Partitions: added, Owned: slices.Clone(m.target), Generation: c.generation}, nil
	}
	return Task{Kind: Fetch, Owned: m.owned, Generation: m.gen}, nil
}

// toRevoke lists what m must give up now.
func (c *Coordinator) toRevoke(m *memberState) []TopicPartition {
	if len(m.owned) == 0 {
		return nil
	}
	if c.state == PreparingRebalance && c.balancer.Protocol() == Eager {
		return slices.Clone(m.owned)
	}
	if m.gen < c.generation || c.state == PreparingRebalance {
		_, removed := Diff(m.owned, m.target)
		return removed
	}
	return nil
}

// Ack records that the member carried out task.
func (c *Coordinator) Ack(now time.Time, id string, task Task) error {
	m, err := c.lookup(id)
	if err != nil {
		return err
	}
	m.lastSeen = now
	switch task.Kind {
	case Revoke:
		m.owned = without(m.owned, task.Partitions)
		c.changed()
		if c.state == PreparingRebalance && m.rejoined {
			c.maybeComplete()
		}
	case Assign:
		// The member took the partitions even if another rebalance began
		// since its Poll: it holds them now, and must revoke them in that
		// rebalance before anyone else gets them.
		if task.Generation == c.generation {
			m.owned, m.gen = slices.Clone(task.Owned), task.Generation
			m.claim, m.claimGen = m.owned, m.gen
			c.changed()
			if c.state == Stable && c.followUp && c.allCaughtUp() {
				c.startRebalance()
			}
		}
	}
	return nil
}

// PollDone marks the member as out of Poll: from now on MaxPollInterval
// counts.
func (c *Coordinator) PollDone(now time.Time, id string) {
	m, ok := c.members[id]
	if !ok {
		return
	}
	before := c.NextDeadline()
	m.inPoll, m.lastSeen = false, now
	if after := c.NextDeadline(); !after.IsZero() && (before.IsZero() || after.Before(before)) {
		c.changed() // members waiting in Poll must re-arm their eviction timers
	}
}

// allCaughtUp reports whether every live member holds exactly its target.
func (c *Coordinator) allCaughtUp() bool {
	for _, m := range c.members {
		if m.departed.IsZero() && (m.gen < c.generation || !slices.Equal(m.owned, m.target)) {
			return false
		}
	}
	return true
}

// maybeComplete finishes a rebalance once every live member has rejoined
// and revoked what it had to: it computes the assignment and bumps the
// generation.
func (c *Coordinator) maybeComplete() bool {
	if c.state != PreparingRebalance {
		return false
	}
	var in []Member
	for _, m := range c.members {
		if m.departed.IsZero() && (!m.rejoined || len(c.toRevoke(m)) > 0) {
			return false
		}
		// A departed static member keeps its place until its
		// SessionTimeout: what it is assigned waits for it (KIP-345).
		owned, gen := m.owned, m.gen
		if c.balancer.Protocol() == Eager {
			// Every live member revoked everything to get here: what
			// it held before is what stays with it where it can.
			owned, gen = m.claim, m.claimGen
		}
		in = append(in, Member{ID: m.id, InstanceID: m.instanceID, Topics: m.topics, Owned: owned, Generation: gen})
	}
	counts := map[string]int32{}
	for _, m := range in {
		for _, t := range m.Topics {
			if _, ok := counts[t]; !ok {
				counts[t] = c.partitions(t)
			}
		}
	}
	target := c.balancer.Assign(in, counts)
	if c.balancer.Protocol() == Cooperative {
		current := map[string][]TopicPartition{}
		for _, m := range c.members {
			current[m.id] = m.owned // departed static members still hold theirs
		}
		target, c.followUp = CooperativeStep(current, target)
	}
	c.generation++
	c.rebalances++
	for id, m := range c.members {
		m.target = target[id]
		m.rejoined = false
	}
	c.state = Stable
	c.changed()
	return true
}

// Leave removes a member. A dynamic member's partitions go to the others
// at once (a rebalance); a static member's wait SessionTimeout for it to
// come back (no rebalance).
func (c *Coordinator) Leave(now time.Time, id string) {
	m, ok := c.members[id]
	if !ok {
		return
	}
	if m.instanceID != "" && m.sessionTimeout > 0 && c.state == Stable {
		m.departed, m.inPoll, m.owned = now, false, nil
		m.gen = -1
		c.changed()
		return
	}
	delete(c.members, id)
	if len(c.members) == 0 {
		c.emptied = now
	}
	c.startRebalance()
}

// EmptySince returns when the group lost its last member: the time it left,
// or the time its MaxPollInterval or (for a departed static member)
// SessionTimeout ran out, however much later the eviction was noticed. It
// is the zero time while the group has members, or if it never had any.
// Offsets expiry counts from it, as Kafka's does from the time a group
// became Empty.
func (c *Coordinator) EmptySince() time.Time {
	if len(c.members) > 0 {
		return time.Time{}
	}
	return c.emptied
}

// Expire evicts members that stopped polling for longer than their
// MaxPollInterval, and departed static members not back within their
// SessionTimeout, rebalancing if any went.
func (c *Coordinator) Expire(now time.Time) { c.expire(now) }

// RequestRebalance starts a rebalance on a member's request (Kafka's
// enforceRebalance), unless one is already under way.
func (c *Coordinator) RequestRebalance(now time.Time, id string) error {
	c.expire(now)
	m, err := c.lookup(id)
	if err != nil {
		return err
	}
	if !m.departed.IsZero() {
		return ErrUnknownMember
	}
	if c.state == Stable {
		c.startRebalance()
	}
	return nil
}

func (c *Coordinator) expire(now time.Time) {
	gone := false
	var last time.Time // when the last of those evicted had to go
	for id, m := range c.members {
		if due := m.deadline(); !due.IsZero() && !now.Before(due) {
			delete(c.members, id)
			c.evictions++
			gone = true
			if due.After(last) {
				last = due
			}
		}
	}
	if gone {
		if len(c.members) == 0 {
			c.emptied = last
		}
		c.startRebalance()
	}
}

// deadline is when the member is evicted unless it polls (or, departed,
// comes back) first; zero while it waits inside Poll, or without a
// MaxPollInterval.
func (m *memberState) deadline() time.Time {
	switch {
	case !m.departed.IsZero():
		return m.departed.Add(m.sessionTimeout)
	case !m.inPoll && m.maxPollInterval > 0:
		return m.lastSeen.Add(m.maxPollInterval)
	}
	return time.Time{}
}

// NextDeadline returns when the next eviction could happen (a member
// reaching its MaxPollInterval, a departed static member its
// SessionTimeout), or the zero time if none is pending: members waiting
// inside Poll have none, so a group whose members all wait sets no timer.
// Members waiting in a rebalance wake then and poll, which runs the
// eviction.
func (c *Coordinator) NextDeadline() time.Time {
	var next time.Time
	for _, m := range c.members {
		if t := m.deadline(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// CheckCommit validates a commit from member id of generation gen for the
// given partitions: only a current member may commit partitions it holds.
// During a rebalance members commit what they are revoking (Kafka allows it
// before the rejoin), so only a stale generation fails.
func (c *Coordinator) CheckCommit(now time.Time, id string, gen int, parts []TopicPartition) error {
	c.expire(now)
	m, err := c.lookup(id)
	if err != nil {
		if errors.Is(err, ErrUnknownMember) {
			return fmt.Errorf("%w: member %s is no longer in the group", ErrStaleGeneration, id)
		}
		return err
	}
	if gen != m.gen || !m.departed.IsZero() {
		return fmt.Errorf("%w: generation %d, member is at %d", ErrStaleGeneration, gen, m.gen)
	}
	for _, tp := range parts {
		if !slices.Contains(m.owned, tp) {
			return fmt.Errorf("%w: %s", ErrNotOwned, tp)
		}
	}
	return nil
}

// Owned returns what the member holds, or an error if it is not a member.
func (c *Coordinator) Owned(id string) ([]TopicPartition, int, error) {
	m, err := c.lookup(id)
	if err != nil {
		return nil, 0, err
	}
	return slices.Clone(m.owned), m.gen, nil
}

// Resubscribe changes a member's subscription, or re-runs the assignment
// when topics gained partitions (pass the same topics): a rebalance.
func (c *Coordinator) Resubscribe(id string, topics []string) {
	if m, ok := c.members[id]; ok {
		m.topics = slices.Compact(slices.Sorted(slices.Values(topics)))
		c.startRebalance()
	}
}

// Rebalance forces a rebalance (partitions were added to a subscribed topic).
func (c *Coordinator) Rebalance() {
	if len(c.members) > 0 {
		c.startRebalance()
	}
}

// MemberInfo describes one member.
type MemberInfo struct {
	ID         string
	InstanceID string
	Topics     []string
	Assignment []TopicPartition // what it holds now
}

// Members describes the members, sorted as assignors sort them.
func (c *Coordinator) Members(now time.Time) []MemberInfo {
	c.expire(now)
	return c.describe(func(m *memberState) []TopicPartition { return m.owned })
}

// Assigned describes the members, sorted as Members sorts them, each with
// what the current generation assigns it (Assignment), which it may not
// hold yet: the generation's assignment, as a description of the
// generation rather than of the moment.
func (c *Coordinator) Assigned() []MemberInfo {
	return c.describe(func(m *memberState) []TopicPartition { return m.target })
}

// describe lists the members in assignor order, each with the partitions
// held picks.
func (c *Coordinator) describe(held func(*memberState) []TopicPartition) []MemberInfo {
	var in []Member
	for _, m := range c.members {
		in = append(in, Member{ID: m.id, InstanceID: m.instanceID})
	}
	var out []MemberInfo
	for _, s := range SortMembers(in) {
		m := c.members[s.ID]
		out = append(out, MemberInfo{ID: m.id, InstanceID: m.instanceID, Topics: slices.Clone(m.topics), Assignment: slices.Clone(held(m))})
	}
	return out
}

// Subscribed returns every topic some member subscribes to, sorted.
func (c *Coordinator) Subscribed() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.topics...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Len reports the number of members, departed static ones included.
func (c *Coordinator) Len() int { return len(c.members) }

// without returns a minus b, sorted.
func without(a, b []TopicPartition) []TopicPartition {
	rest, _ := Diff(b, a)
	return rest
}
