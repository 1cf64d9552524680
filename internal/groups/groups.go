// Package groups is the broker's group service: the registry of consumer
// groups, each run by a group.Coordinator (the pure logic of joins,
// generations and assignments), the members that join them, and the offsets
// they commit, checked against the member's generation and ownership before
// the catalog stores them.
//
// A member is a *Member handle, not a consumer type: the in-process Consumer
// holds one, and so can anything else that takes part in a group (a remote
// member of the Kafka listener, whose liveness is its requests). The service
// does no I/O of its own beyond the catalog, and runs no goroutines.
package groups

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/signal"
)

// TopicPartition names one partition of a topic.
type TopicPartition = group.TopicPartition

// Config configures a Service.
type Config struct {
	// Catalog stores committed offsets.
	Catalog *catalog.Catalog
	// Partitions reports a topic's partition count (0 if it does not
	// exist). Coordinators call it under their group's lock: it must not
	// wait for anything that waits for a group.
	Partitions func(topic string) int32
	// Now is the clock.
	Now func() time.Time
	// Logger receives offsets expiry messages.
	Logger *slog.Logger
	// ReadOnly refuses commits and admin changes with errs.ErrReadOnly.
	ReadOnly bool
	// OffsetsRetention is how long a group without members keeps its
	// offsets (see Expire); negative: forever.
	OffsetsRetention time.Duration
	// Wake, if set, is told of a time (by Now) at which Expire may have
	// work that the time it last returned did not cover: a member that
	// could be evicted then, a group that emptied. The owner runs Expire
	// by then. It is called often (at every PollDone) and must be cheap;
	// it may be called with the service's locks held.
	Wake func(due time.Time)
}

// Service is the registry of a broker's groups. It is safe for concurrent
// use.
type Service struct {
	cfg    Config
	opened time.Time // by cfg.Now: offsets expiry counts from here at the latest

	// mu guards groups, and serializes the admin changes of committed
	// offsets (SetOffsets, Delete) with their expiry. Lock order: mu, then
	// a group's mu.
	mu     sync.Mutex
	groups map[string]*state

	// Every group's completed rebalances and evictions since New, those of
	// groups since dropped included (see Totals).
	rebalances, evictions atomic.Int64

	// BeforeJoin, for tests, runs in Join between the group's lookup and
	// the join.
	BeforeJoin func()
}

// state is one group: its coordinator and what the service knows of it.
type state struct {
	s        *Service
	name     string
	balancer string        // the balancer's name: its members', or its last members' while it has none
	changed  signal.Signal // broadcast when the coordinator's state changes
	mu       sync.Mutex    // serializes the coordinator and commits
	coord    *group.Coordinator

	// The group's completed rebalances and evictions while the service
	// kept its state, across coordinators (a new balancer's replaces the
	// old one's); under mu.
	rebalances, evictions int64
}

// do runs fn on the coordinator under the group's lock, stores the
// generation it completed if it did, and wakes waiting members if the
// group changed.
func (g *state) do(fn func(co *group.Coordinator)) {
	g.mu.Lock()
	before, gen := g.coord.Changes(), g.coord.Generation()
	rebalances, evictions := g.coord.Rebalances(), g.coord.Evictions()
	fn(g.coord)
	changed := g.coord.Changes() != before
	if g.coord.Generation() != gen {
		g.s.storeGeneration(g)
	}
	if n := int64(g.coord.Rebalances() - rebalances); n > 0 {
		g.rebalances += n
		g.s.rebalances.Add(n)
	}
	if n := int64(g.coord.Evictions() - evictions); n > 0 {
		g.evictions += n
		g.s.evictions.Add(n)
	}
	g.mu.Unlock()
	if changed {
		g.changed.Broadcast()
	}
}

// storeGeneration stores the generation g's coordinator just completed,
// for descriptions of the group after its members, or the process, are
// gone (Kafka keeps it in __consumer_offsets). A failure is logged: the
// group goes on. Callers hold g.mu.
func (s *Service) storeGeneration(g *state) {
	if s.cfg.ReadOnly {
		return
	}
	rec := catalog.Generation{Generation: g.coord.Generation(), Balancer: g.balancer, Completed: s.cfg.Now()}
	for _, m := range g.coord.Assigned() {
		cm := catalog.Member{ID: m.ID, InstanceID: m.InstanceID, Topics: m.Topics, Assignment: []catalog.Partition{}}
		for _, tp := range m.Assignment {
			cm.Assignment = append(cm.Assignment, catalog.Partition{Topic: tp.Topic, Partition: tp.Partition})
		}
		rec.Members = append(rec.Members, cm)
	}
	if err := s.cfg.Catalog.PutGeneration(g.name, rec); err != nil {
		s.cfg.Logger.Error("stream: storing a group's generation failed", "group", g.name, "generation", rec.Generation, "err", err)
	}
}

// New returns an empty service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Wake == nil {
		cfg.Wake = func(time.Time) {}
	}
	return &Service{cfg: cfg, opened: cfg.Now(), groups: map[string]*state{}}
}

// lookup returns a group's state, creating it, for a member using balancer.
func (s *Service) lookup(name string, balancer group.Balancer) (*state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if ok && g.balancer != balancer.Name() && s.members(g) == 0 {
		ok = false // nobody left who uses the old balancer
	}
	if !ok {
		old := g
		g = &state{s: s, name: name, balancer: balancer.Name(), coord: group.NewCoordinator(balancer, s.cfg.Partitions)}
		if old != nil { // its counts go on
			old.mu.Lock()
			g.rebalances, g.evictions = old.rebalances, old.evictions
			old.mu.Unlock()
		}
		// Generations go on from the last one stored, as after a Kafka
		// coordinator's restart.
		last, found, err := s.cfg.Catalog.LastGeneration(name)
		if err != nil {
			return nil, err
		}
		if found {
			g.coord.ResumeAt(last.Generation)
		}
		s.groups[name] = g
	} else if g.balancer != balancer.Name() {
		return nil, fmt.Errorf("%w: group %q uses the %s balancer, not %s", errs.ErrInvalidConfig, name, g.balancer, balancer.Name())
	}
	return g, nil
}

// Join makes a new member of group name, which uses balancer (every member
// of a group must use the same kind: errs.ErrInvalidConfig otherwise).
// Partitions are assigned at the member's first Poll.
func (s *Service) Join(name string, balancer group.Balancer, req group.JoinRequest) (*Member, error) {
	m := &Member{s: s, name: name, balancer: balancer, req: req}
	if err := m.join(); err != nil {
		return nil, err
	}
	return m, nil
}

// members reports how many members g has, after evicting those whose time
// is up: a member that stopped polling long ago does not keep its group
// from admin changes.
func (s *Service) members(g *state) int {
	var n int
	g.do(func(co *group.Coordinator) {
		co.Expire(s.cfg.Now())
		n = co.Len()
	})
	return n
}

// TopicChanged starts a rebalance in every group subscribed to topic: its
// partitions changed (added, or the topic deleted).
func (s *Service) TopicChanged(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		g.do(func(co *group.Coordinator) {
			if slices.Contains(co.Subscribed(), topic) {
				co.Rebalance()
			}
		})
	}
}

// Info describes a group: its membership and its committed offsets.
type Info struct {
	State      string // Empty, PreparingRebalance, Stable or Dead
	Generation int    // the live one, or the last stored if the group is not live here
	Balancer   string // its members' balancer, or its last members'; "" if none is known
	Members    []group.MemberInfo
	Subscribed []string                 // every topic a member subscribes to, sorted
	Committed  map[TopicPartition]int64 // the next offset to read, per partition
	Last       *Generation              // the last completed generation as stored; nil if none
	// Completed rebalances and evicted members (see group.Coordinator's
	// Rebalances and Evictions) while the service has kept the group's
	// state: since New, or since the group was last dropped (Delete,
	// Expire). Zero for a group it does not hold.
	Rebalances, Evictions int64
}

// Generation is a completed generation: its members and what each was
// assigned.
type Generation struct {
	Generation int
	Balancer   string
	Completed  time.Time
	Members    []group.MemberInfo // Assignment: what the generation assigned
}

// Describe describes a group. A group unknown to the service is Dead, or
// Empty if it has committed offsets. A group without members keeps the
// balancer its last members used, for as long as the service keeps its
// state (until Delete, Expire dropping it, or a member joining with
// another balancer).
func (s *Service) Describe(name string) (Info, error) {
	s.mu.Lock()
	g := s.groups[name]
	s.mu.Unlock()
	info := Info{State: group.Dead.String()}
	if g != nil {
		g.do(func(co *group.Coordinator) {
			info.Members = co.Members(s.cfg.Now())
			info.State, info.Generation, info.Subscribed = co.State().String(), co.Generation(), co.Subscribed()
			info.Balancer = g.balancer
		})
		g.mu.Lock()
		info.Rebalances, info.Evictions = g.rebalances, g.evictions
		g.mu.Unlock()
	}
	var err error
	if info.Committed, err = s.cfg.Catalog.Committed(name, nil); err != nil {
		return info, err
	}
	last, found, err := s.cfg.Catalog.LastGeneration(name)
	if err != nil {
		return info, err
	}
	if found {
		info.Last = &Generation{Generation: last.Generation, Balancer: last.Balancer, Completed: last.Completed}
		for _, m := range last.Members {
			mi := group.MemberInfo{ID: m.ID, InstanceID: m.InstanceID, Topics: m.Topics}
			for _, p := range m.Assignment {
				mi.Assignment = append(mi.Assignment, TopicPartition{Topic: p.Topic, Partition: p.Partition})
			}
			info.Last.Members = append(info.Last.Members, mi)
		}
		info.Generation = max(info.Generation, last.Generation)
	}
	if g == nil && (len(info.Committed) > 0 || found) {
		info.State = group.Empty.String()
	}
	return info, nil
}

// Totals returns every group's completed rebalances and evicted members
// since New, those of groups dropped since included: counters that never go
// down.
func (s *Service) Totals() (rebalances, evictions int64) {
	return s.rebalances.Load(), s.evictions.Load()
}

// Names returns the names of groups with members or committed offsets,
// sorted.
func (s *Service) Names() ([]string, error) {
	names := map[string]bool{}
	s.mu.Lock()
	for name, g := range s.groups {
		if s.members(g) > 0 {
			names[name] = true
		}
	}
	s.mu.Unlock()
	stored, err := s.cfg.Catalog.Groups()
	for _, n := range stored {
		names[n] = true
	}
	return slices.Sorted(maps.Keys(names)), err
}

// Committed returns a group's committed offsets for parts (all if none
// are named). Partitions never committed are absent.
func (s *Service) Committed(name string, parts ...TopicPartition) (map[TopicPartition]int64, error) {
	return s.cfg.Catalog.Committed(name, parts)
}

// whileEmpty runs an admin change of group name's offsets, under s.mu so
// that expiry cannot interleave. It fails with errs.ErrGroupNotEmpty while
// the group has members: admin changes wait until it has none, as in Kafka.
func (s *Service) whileEmpty(name string, change func() error) error {
	if s.cfg.ReadOnly {
		return errs.ErrReadOnly
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[name]; g != nil {
		if n := s.members(g); n > 0 {
			return fmt.Errorf("%w: %q has %d members", errs.ErrGroupNotEmpty, name, n)
		}
	}
	return change()
}

// Delete drops a group and its committed offsets. It fails with
// errs.ErrGroupNotEmpty while the group has members.
func (s *Service) Delete(name string) error {
	return s.whileEmpty(name, func() error {
		delete(s.groups, name)
		return s.cfg.Catalog.DeleteGroup(name)
	})
}

// SetOffsets overwrites a group's committed offsets for the given
// partitions (kafka-consumer-groups.sh --reset-offsets). It fails with
// errs.ErrGroupNotEmpty while the group has members, then with check's
// error, which the caller uses to check the offsets against the logs.
func (s *Service) SetOffsets(name string, offsets map[TopicPartition]int64, check func() error) error {
	return s.whileEmpty(name, func() error {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if err := checkOffsets(offsets); err != nil {
			return err
		}
		now := s.cfg.Now()
		if err := s.store(name, offsets, now); err != nil {
			return err
		}
		if s.cfg.OffsetsRetention >= 0 {
			s.cfg.Wake(now.Add(s.cfg.OffsetsRetention)) // stored for a group without members
		}
		return nil
	})
}

func checkOffsets(offsets map[TopicPartition]int64) error {
	for tp, off := range offsets {
		if off < 0 {
			return fmt.Errorf("%w: negative offset %d for %s", errs.ErrInvalidArgument, off, tp)
		}
	}
	return nil
}

// store writes committed offsets: the one place that does, for members'
// commits and admin changes alike.
func (s *Service) store(name string, offsets map[TopicPartition]int64, now time.Time) error {
	return s.cfg.Catalog.CommitOffsets(name, offsets, now)
}

// Expire is the service's clean-up, run when the time it last returned (or
// a time given to Config.Wake) comes. Groups that have had no member and no
// commit for OffsetsRetention lose their offsets (Kafka's offsets expiry).
// A group empties when its last member leaves or, for one that stopped
// polling, when its MaxPollInterval ran out (see
// group.Coordinator.EmptySince); for a group that was empty when the
// service started, the time counts from then: never sooner than Kafka
// would. Groups with neither members nor offsets are forgotten (they are
// Dead, as in Kafka).
//
// It returns when it next has work (by Now), or the zero time if it has
// none until something changes: a member reaching its deadline (never one
// waiting inside Poll, which has none), or a memberless group's offsets
// reaching OffsetsRetention.
func (s *Service) Expire() (next time.Time) {
	// Under s.mu throughout: SetOffsets and Delete hold it too, so no admin
	// commit lands between the look and the delete.
	s.mu.Lock()
	defer s.mu.Unlock()
	last, err := s.cfg.Catalog.LastCommits()
	if err != nil {
		s.cfg.Logger.Error("stream: offsets expiry failed", "err", err)
		return s.cfg.Now() // try again at the next check
	}
	now := s.cfg.Now()
	expires := s.cfg.OffsetsRetention >= 0 && !s.cfg.ReadOnly
	empty := map[string]time.Time{} // groups without members but with offsets: since when
	for name, committed := range last {
		empty[name] = later(committed, s.opened)
	}
	for name, g := range s.groups {
		var members int
		var due, emptied time.Time
		g.do(func(co *group.Coordinator) {
			co.Expire(now) // evicted members and departed static ones go first
			members, due, emptied = co.Len(), co.NextDeadline(), co.EmptySince()
		})
		since, committed := empty[name]
		switch {
		case members > 0:
			delete(empty, name) // active groups keep their offsets
			next = earliest(next, due)
		case !committed:
			delete(s.groups, name) // a Join or Rejoin that raced this joins afresh
		default:
			empty[name] = later(since, emptied)
		}
	}
	if !s.cfg.ReadOnly {
		s.forgetGenerations(last)
	}
	if !expires {
		return next
	}
	for name, since := range empty {
		if due := since.Add(s.cfg.OffsetsRetention); now.Before(due) {
			next = earliest(next, due)
			continue
		}
		if err := s.cfg.Catalog.DeleteGroup(name); err != nil {
			s.cfg.Logger.Error("stream: offsets expiry failed", "group", name, "err", err)
			next = earliest(next, now)
			continue
		}
		delete(s.groups, name) // a Join or Rejoin that raced this joins afresh
		s.cfg.Logger.Info("stream: group offsets expired", "group", name, "last commit", last[name],
			"retention", s.cfg.OffsetsRetention)
	}
	return next
}

// earliest returns the earlier of two times, the zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// forgetGenerations drops the stored generations of groups with neither
// members nor offsets (those without offsets in last that the service
// does not hold): they are Dead, and keep nothing. Callers hold s.mu.
func (s *Service) forgetGenerations(last map[string]time.Time) {
	names, err := s.cfg.Catalog.GenerationGroups()
	if err != nil {
		s.cfg.Logger.Error("stream: forgetting dead groups failed", "err", err)
		return
	}
	for _, name := range names {
		if _, ok := last[name]; ok || s.groups[name] != nil {
			continue
		}
		if err := s.cfg.Catalog.DeleteGeneration(name); err != nil {
			s.cfg.Logger.Error("stream: forgetting a dead group failed", "group", name, "err", err)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Member is one member of a group: the handle through which it polls the
// coordinator for tasks, acknowledges them, commits and leaves. Its calls
// are meant for the goroutine that drives the member.
type Member struct {
	s        *Service
	name     string
	balancer group.Balancer
	req      group.JoinRequest
	g        *state // the group's state it joined
	id       string // the coordinator's id; a new one at every Rejoin
}

// Group is the member's group's name.
func (m *Member) Group() string { return m.name }

// ID is the member's id in the group; it changes when the member rejoins.
func (m *Member) ID() string { return m.id }

// Registered reports whether the member's group is the one the service
// has under its name: a member always is, once Join or Rejoin returned,
// until its group, once empty, is dropped (Delete, Expire) or replaced (a
// member joining with another balancer).
func (m *Member) Registered() bool {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.s.groups[m.g.name] == m.g
}

// Rejoin joins the group again as a new member with the same request, after
// the coordinator forgot the member (evicted: Poll returned
// group.ErrUnknownMember). If the group was dropped meanwhile (offsets
// expiry, Delete) it joins the group's current state; if that now uses
// another balancer, it fails with errs.ErrInvalidConfig.
func (m *Member) Rejoin() error { return m.join() }

// join joins the group's current state, again if that is dropped or
// replaced between the lookup and the join: once joined it is neither, so
// a member never sits in a coordinator of its own.
func (m *Member) join() error {
	for {
		g, err := m.s.lookup(m.name, m.balancer)
		if err != nil {
			return err
		}
		if m.s.BeforeJoin != nil {
			m.s.BeforeJoin()
		}
		m.g = g
		g.do(func(co *group.Coordinator) { m.id = co.Join(m.s.cfg.Now(), m.req) })
		m.wakeAtDeadline() // until its first Poll, MaxPollInterval runs
		if m.Registered() {
			return nil
		}
		m.Leave()
	}
}

// Poll asks the coordinator what the member must do next; see
// group.Coordinator.Poll. Its errors are the coordinator's (group.ErrFenced,
// group.ErrUnknownMember).
func (m *Member) Poll() (group.Task, error) {
	var task group.Task
	var err error
	m.g.do(func(co *group.Coordinator) { task, err = co.Poll(m.s.cfg.Now(), m.id) })
	return task, err
}

// PollDone tells the coordinator the member's Poll returned: its
// MaxPollInterval runs from now.
func (m *Member) PollDone() {
	m.g.do(func(co *group.Coordinator) { co.PollDone(m.s.cfg.Now(), m.id) })
	m.wakeAtDeadline()
}

// wakeAtDeadline tells Config.Wake when the member, out of Poll from now
// on, could be evicted.
func (m *Member) wakeAtDeadline() {
	if d := m.req.MaxPollInterval; d > 0 {
		m.s.cfg.Wake(m.s.cfg.Now().Add(d))
	}
}

// Ack acknowledges a Revoke or Assign task the member has carried out.
func (m *Member) Ack(task group.Task) {
	m.g.do(func(co *group.Coordinator) { co.Ack(m.s.cfg.Now(), m.id, task) })
}

// Protocol is the group's rebalance protocol, fixed by its balancer.
func (m *Member) Protocol() group.Protocol {
	var p group.Protocol
	m.g.do(func(co *group.Coordinator) { p = co.Protocol() })
	return p
}

// NextDeadline is when the coordinator next needs a look (an eviction
// falls due), or zero.
func (m *Member) NextDeadline() time.Time {
	var due time.Time
	m.g.do(func(co *group.Coordinator) { due = co.NextDeadline() })
	return due
}

// State returns the group's state and the coordinator's generation,
// after expiring whoever is due: a remote member asks it to learn of a
// rebalance without taking part in it (Poll would count it as rejoined).
func (m *Member) State() (state group.State, generation int) {
	m.g.do(func(co *group.Coordinator) {
		co.Expire(m.s.cfg.Now())
		state, generation = co.State(), co.Generation()
	})
	return state, generation
}

// Resubscribe changes the member's subscription: a rebalance.
func (m *Member) Resubscribe(topics []string) {
	m.req.Topics = slices.Clone(topics)
	m.g.do(func(co *group.Coordinator) { co.Resubscribe(m.id, topics) })
}

// Owned reports what the coordinator says the member holds and in which
// generation, after expiring whoever is due; the error says why it holds
// nothing (evicted or fenced).
func (m *Member) Owned() (owned []TopicPartition, generation int, err error) {
	m.g.do(func(co *group.Coordinator) {
		co.Expire(m.s.cfg.Now())
		owned, generation, err = co.Owned(m.id)
	})
	return owned, generation, err
}

// Fenced returns errs.ErrFenced if a newer member with the same instance id
// replaced this one, else nil: a commit with nothing to commit is a no-op,
// but fencing is final whatever the call.
func (m *Member) Fenced() error {
	var err error
	m.g.do(func(co *group.Coordinator) { _, _, err = co.Owned(m.id) })
	if errors.Is(err, group.ErrFenced) {
		return Err(err)
	}
	return nil
}

// RequestRebalance asks the group to rebalance (Kafka's enforceRebalance).
// A member the group forgot gets nil: its next Poll rejoins, which
// rebalances anyway.
func (m *Member) RequestRebalance() error {
	var err error
	m.g.do(func(co *group.Coordinator) { err = co.RequestRebalance(m.s.cfg.Now(), m.id) })
	if errors.Is(err, group.ErrUnknownMember) {
		return nil
	}
	return Err(err)
}

// Commit stores offsets (the next offset to read, per partition) for the
// member of the given generation, once the coordinator accepts its right
// to: it must be current (errs.ErrStaleGeneration otherwise), hold every
// partition (errs.ErrNotAssigned), and not be fenced (errs.ErrFenced).
func (m *Member) Commit(generation int, offsets map[TopicPartition]int64) error {
	if m.s.cfg.ReadOnly {
		return errs.ErrReadOnly
	}
	if err := checkOffsets(offsets); err != nil {
		return err
	}
	parts := slices.Collect(maps.Keys(offsets))
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	// Under the group lock: no rebalance can complete between the check
	// and the write, so a new owner always reads this commit.
	now := m.s.cfg.Now()
	if err := m.g.coord.CheckCommit(now, m.id, generation, parts); err != nil {
		return Err(err)
	}
	return m.s.store(m.g.name, offsets, now)
}

// Notify rings bell (a channel of capacity 1) at the group's next change;
// see signal.Signal.Notify.
func (m *Member) Notify(bell chan struct{}) { m.g.changed.Notify(bell) }

// Forget drops a bell registered with Notify.
func (m *Member) Forget(bell chan struct{}) { m.g.changed.Forget(bell) }

// Leave takes the member out of its group: the others rebalance at once
// (a static member's partitions instead wait for it for its
// SessionTimeout).
func (m *Member) Leave() {
	var due time.Time
	m.g.do(func(co *group.Coordinator) {
		now := m.s.cfg.Now()
		co.Leave(now, m.id)
		due = co.NextDeadline() // a departed static member's SessionTimeout
		if co.Len() == 0 {
			due = now // its offsets start to age, or it is forgotten
		}
	})
	if !due.IsZero() {
		m.s.cfg.Wake(due)
	}
}

// Err maps the coordinator's errors onto the engine's sentinels: a member
// evicted or of an old generation is stale, one replaced by a newer member
// with its instance id is fenced, a partition it does not hold is not
// assigned.
func Err(err error) error {
	switch {
	case errors.Is(err, group.ErrStaleGeneration), errors.Is(err, group.ErrUnknownMember):
		return fmt.Errorf("%w: %v", errs.ErrStaleGeneration, err)
	case errors.Is(err, group.ErrFenced):
		return fmt.Errorf("%w: %v", errs.ErrFenced, err)
	case errors.Is(err, group.ErrNotOwned):
		return fmt.Errorf("%w: %v", errs.ErrNotAssigned, err)
	}
	return err
}

// TxnOffsets is a transaction's offsets for one group and the member that
// sent them, checked as a commit of that member is (KIP-447: a zombie of
// an earlier generation cannot commit through a transaction). An empty
// MemberID is not checked, as Kafka does not for clients before
// TxnOffsetCommit v3.
type TxnOffsets struct {
	Group      string
	MemberID   string
	Generation int
	Offsets    map[TopicPartition]int64
}

// CommitTxn checks each group's member's right to commit its offsets and,
// under every group's lock (taken in name order), calls write, which
// stores them with the transaction's decision. No rebalance completes
// between the checks and the write: a new owner reads the offsets the
// transaction committed.
func (s *Service) CommitTxn(sets []TxnOffsets, write func(now time.Time) error) error {
	if s.cfg.ReadOnly {
		return errs.ErrReadOnly
	}
	sets = slices.Clone(sets)
	slices.SortFunc(sets, func(a, b TxnOffsets) int { return strings.Compare(a.Group, b.Group) })
	var locked []*state
	defer func() {
		for _, g := range locked {
			g.mu.Unlock()
		}
	}()
	now := s.cfg.Now()
	for i, set := range sets {
		if err := checkOffsets(set.Offsets); err != nil {
			return err
		}
		if i > 0 && sets[i-1].Group == set.Group {
			return fmt.Errorf("%w: group %q twice in one transaction", errs.ErrInvalidArgument, set.Group)
		}
		s.mu.Lock()
		g := s.groups[set.Group]
		s.mu.Unlock()
		if g == nil {
			if set.MemberID != "" {
				return errs.ErrStaleGeneration // the group is gone, and its members with it
			}
			continue
		}
		g.mu.Lock()
		locked = append(locked, g)
		if set.MemberID == "" {
			continue
		}
		if err := g.coord.CheckCommit(now, set.MemberID, set.Generation, slices.Collect(maps.Keys(set.Offsets))); err != nil {
			return Err(err)
		}
	}
	return write(now)
}
