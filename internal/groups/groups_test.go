package groups

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/errs"
)

// t0 is the test clock's start: whole seconds, so that commit times survive
// the catalog's millisecond precision unchanged.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a hand-driven Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// topics is a hand-driven Config.Partitions.
type topics struct {
	mu sync.Mutex
	n  map[string]int32
}

func (p *topics) Partitions(topic string) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[topic]
}

func (p *topics) Set(topic string, n int32) {
	p.mu.Lock()
	p.n[topic] = n
	p.mu.Unlock()
}

// env is a service over a fresh catalog, with its clock and topics.
type env struct {
	s     *Service
	clock *clock
	parts *topics
	cat   *catalog.Catalog
	path  string
}

func openCatalog(t *testing.T, path string, readOnly bool) *catalog.Catalog {
	t.Helper()
	cat, _, err := catalog.Open(path, 0o600, readOnly, true)
	require.NoError(t, err)
	return cat
}

// newEnv returns a service with topics "t" (4 partitions) and "u" (2);
// mod, if not nil, adjusts its config.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{clock: newClock(), parts: &topics{n: map[string]int32{"t": 4, "u": 2}},
		path: filepath.Join(t.TempDir(), catalog.File)}
	e.cat = openCatalog(t, e.path, false)
	t.Cleanup(func() { e.cat.Close(true) })
	cfg := Config{Catalog: e.cat, Partitions: e.parts.Partitions, Now: e.clock.Now, OffsetsRetention: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	e.s = New(cfg)
	return e
}

// req is a dynamic member's join request for topics.
func req(topics ...string) group.JoinRequest {
	return group.JoinRequest{Topics: topics, SessionTimeout: 10 * time.Second, MaxPollInterval: 5 * time.Minute}
}

func (e *env) join(t *testing.T, name string, b group.Balancer, r group.JoinRequest) *Member {
	t.Helper()
	m, err := e.s.Join(name, b, r)
	require.NoError(t, err)
	require.Equal(t, name, m.Group())
	require.True(t, m.Registered())
	return m
}

func (e *env) describe(t *testing.T, name string) Info {
	t.Helper()
	info, err := e.s.Describe(name)
	require.NoError(t, err)
	return info
}

func (e *env) committed(t *testing.T, name string, parts ...TopicPartition) map[TopicPartition]int64 {
	t.Helper()
	offs, err := e.s.Committed(name, parts...)
	require.NoError(t, err)
	return offs
}

func (e *env) names(t *testing.T) []string {
	t.Helper()
	names, err := e.s.Names()
	require.NoError(t, err)
	return names
}

func tp(topic string, p int32) TopicPartition { return TopicPartition{Topic: topic, Partition: p} }

// tps lists partitions of topic.
func tps(topic string, ps ...int32) []TopicPartition {
	out := []TopicPartition{}
	for _, p := range ps {
		out = append(out, tp(topic, p))
	}
	return out
}

func sortedTPs(in []TopicPartition) []TopicPartition {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	if out == nil {
		out = []TopicPartition{}
	}
	return out
}

func minus(a, b []TopicPartition) []TopicPartition {
	var out []TopicPartition
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return sortedTPs(out)
}

func union(a, b []TopicPartition) []TopicPartition {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return sortedTPs(out)
}

// rang reports whether bell has rung, emptying it.
func rang(bell chan struct{}) bool {
	select {
	case <-bell:
		return true
	default:
		return false
	}
}

// driver plays members by hand: Poll, PollDone, carry out the task, Ack.
// It keeps what each member holds by the tasks it carried out, counting a
// partition as held from the moment an Assign hands it over until the
// member acknowledges its Revoke, and after every call checks that no
// partition has two holders, by that account and by the coordinator's
// (Owned).
type driver struct {
	t       *testing.T
	members []*Member
	held    map[*Member][]TopicPartition
	tasks   map[*Member][]group.Task // every Revoke and Assign carried out
}

func newDriver(t *testing.T, members ...*Member) *driver {
	d := &driver{t: t, held: map[*Member][]TopicPartition{}, tasks: map[*Member][]group.Task{}}
	d.add(members...)
	return d
}

// add takes members on, holding what the coordinator says they hold.
func (d *driver) add(members ...*Member) {
	for _, m := range members {
		d.members = append(d.members, m)
		if owned, _, err := m.Owned(); err == nil {
			d.held[m] = sortedTPs(owned)
		}
	}
}

// drop forgets a member (left, evicted or fenced) and what it held.
func (d *driver) drop(m *Member) {
	d.members = slices.DeleteFunc(d.members, func(x *Member) bool { return x == m })
	delete(d.held, m)
}

// check verifies that no partition has two holders.
func (d *driver) check() {
	d.t.Helper()
	byHeld, byCoord := map[TopicPartition]string{}, map[TopicPartition]string{}
	for _, m := range d.members {
		for _, p := range d.held[m] {
			require.NotContains(d.t, byHeld, p, "%s held by %s and %s", p, byHeld[p], m.ID())
			byHeld[p] = m.ID()
		}
		owned, _, err := m.Owned()
		if err != nil {
			continue // evicted or fenced: holds nothing
		}
		for _, p := range owned {
			require.NotContains(d.t, byCoord, p, "%s owned by %s and %s", p, byCoord[p], m.ID())
			byCoord[p] = m.ID()
		}
	}
}

// poll polls m and, for an Assign, counts its partitions as held at once
// (the member may start on them before it acks). It does not ack.
func (d *driver) poll(m *Member) group.Task {
	d.t.Helper()
	task, err := m.Poll()
	require.NoError(d.t, err, "poll %s", m.ID())
	m.PollDone()
	if task.Kind == group.Assign {
		d.held[m] = union(d.held[m], task.Partitions)
	}
	d.check()
	return task
}

// ack acknowledges a Revoke or Assign task m carried out.
func (d *driver) ack(m *Member, task group.Task) {
	d.t.Helper()
	switch task.Kind {
	case group.Revoke:
		require.Subset(d.t, d.held[m], task.Partitions, "%s revokes what it holds", m.ID())
		m.Ack(task)
		d.held[m] = minus(d.held[m], task.Partitions)
		require.Equal(d.t, sortedTPs(task.Owned), d.held[m], "%s: Owned is what is left", m.ID())
	case group.Assign:
		m.Ack(task)
		d.held[m] = sortedTPs(task.Owned)
	default:
		return
	}
	d.tasks[m] = append(d.tasks[m], task)
	owned, gen, err := m.Owned()
	require.NoError(d.t, err)
	require.Equal(d.t, d.held[m], sortedTPs(owned), "%s: the coordinator agrees", m.ID())
	if task.Kind == group.Assign {
		require.Equal(d.t, task.Generation, gen)
	}
	d.check()
}

// step is one turn of m: poll, carry out, ack.
func (d *driver) step(m *Member) group.Task {
	d.t.Helper()
	task := d.poll(m)
	d.ack(m, task)
	return task
}

// settle drives every member round by round until a whole round gives
// each a Fetch task, and returns the generation they fetch in.
func (d *driver) settle() int {
	d.t.Helper()
	for range 20 {
		gen, fetching := -1, true
		for _, m := range d.members {
			task := d.step(m)
			if task.Kind != group.Fetch {
				fetching = false
				continue
			}
			require.Equal(d.t, d.held[m], sortedTPs(task.Owned), "%s fetches what it holds", m.ID())
			if gen == -1 {
				gen = task.Generation
			}
			require.Equal(d.t, gen, task.Generation, "one generation")
		}
		if fetching {
			return gen
		}
	}
	d.t.Fatal("the group did not settle in 20 rounds")
	return 0
}

// owned is what m holds by the driver's account.
func (d *driver) owned(m *Member) []TopicPartition { return sortedTPs(d.held[m]) }

// requireSplit checks that the members hold every partition of topic
// exactly once between them.
func (d *driver) requireSplit(topic string, n int32) {
	d.t.Helper()
	var all []TopicPartition
	for _, m := range d.members {
		all = append(all, d.held[m]...)
	}
	want := []TopicPartition{}
	for p := range n {
		want = append(want, tp(topic, p))
	}
	require.Equal(d.t, want, sortedTPs(all))
}

// 1. Eager: the first member takes everything; a second one's arrival
// makes it revoke everything, then range splits the topic.
func TestEagerRebalanceRange(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	require.Equal(t, group.Eager, a.Protocol())
	info := e.describe(t, "g")
	require.Equal(t, "PreparingRebalance", info.State)
	require.Zero(t, info.Generation)

	d := newDriver(t, a)
	require.Equal(t, 1, d.settle())
	require.Equal(t, tps("t", 0, 1, 2, 3), d.owned(a))

	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	require.NotEqual(t, a.ID(), b.ID())
	d.add(b)
	require.Equal(t, "PreparingRebalance", e.describe(t, "g").State)

	// The first member's next poll revokes all it holds, kept or not.
	task := d.poll(a)
	require.Equal(t, group.Revoke, task.Kind)
	require.Equal(t, tps("t", 0, 1, 2, 3), sortedTPs(task.Partitions))
	require.Empty(t, task.Owned)
	d.ack(a, task)
	gen := d.settle()
	require.Equal(t, 2, gen)
	d.requireSplit("t", 4)
	// Range: contiguous ranges in member order (dynamic members by id).
	first, second := a, b
	if b.ID() < a.ID() {
		first, second = b, a
	}
	require.Equal(t, tps("t", 0, 1), d.owned(first))
	require.Equal(t, tps("t", 2, 3), d.owned(second))
	for _, m := range []*Member{a, b} {
		last := d.tasks[m][len(d.tasks[m])-1]
		require.Equal(t, group.Assign, last.Kind)
		require.Equal(t, gen, last.Generation)
		require.Equal(t, d.owned(m), sortedTPs(last.Partitions), "eager: the whole assignment is new")
	}

	info = e.describe(t, "g")
	require.Equal(t, "Stable", info.State)
	require.Equal(t, gen, info.Generation)
	require.Equal(t, "range", info.Balancer)
	require.Equal(t, []string{"t"}, info.Subscribed)
	require.Len(t, info.Members, 2)
	require.Equal(t, first.ID(), info.Members[0].ID)
	require.Equal(t, second.ID(), info.Members[1].ID)
	for _, mi := range info.Members {
		require.Equal(t, []string{"t"}, mi.Topics)
		require.Empty(t, mi.InstanceID)
	}
	require.Equal(t, tps("t", 0, 1), sortedTPs(info.Members[0].Assignment))
	require.Equal(t, tps("t", 2, 3), sortedTPs(info.Members[1].Assignment))

	// Stable: polls are fetches, with no change.
	for _, m := range []*Member{a, b} {
		task := d.step(m)
		require.Equal(t, group.Fetch, task.Kind)
		require.Equal(t, gen, task.Generation)
		owned, g, err := m.Owned()
		require.NoError(t, err)
		require.Equal(t, gen, g)
		require.Equal(t, d.owned(m), sortedTPs(owned))
	}

	// Two members joining together settle in one generation.
	e2 := newEnv(t, nil)
	x := e2.join(t, "g", group.RangeBalancer{}, req("t", "u"))
	y := e2.join(t, "g", group.RangeBalancer{}, req("t", "u"))
	d2 := newDriver(t, x, y)
	require.Equal(t, 1, d2.settle())
	require.Equal(t, []TopicPartition{tp("t", 0), tp("t", 1), tp("u", 0)}, d2.owned(x))
	require.Equal(t, []TopicPartition{tp("t", 2), tp("t", 3), tp("u", 1)}, d2.owned(y))
	require.Equal(t, []string{"t", "u"}, e2.describe(t, "g").Subscribed)
}

// A leaving member's partitions go to the others at once; the last one
// leaving empties the group.
func TestLeaveRebalances(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	b.Leave()
	d.drop(b)
	require.Equal(t, gen+1, d.settle())
	require.Equal(t, tps("t", 0, 1, 2, 3), d.owned(a))
	_, err := b.Poll()
	require.ErrorIs(t, err, group.ErrUnknownMember)
	b.Leave() // twice: nothing

	a.Leave()
	info := e.describe(t, "g")
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members)
	require.Equal(t, "range", info.Balancer, "the balancer its last members used")
	require.Empty(t, e.names(t), "no members, no offsets")
}

// Issue #13: under the eager sticky balancer, what a member held before it
// revoked everything to rejoin still counts as its own: a member leaving
// moves only its partitions, one joining only what it takes.
func TestEagerStickyKeepsOwners(t *testing.T) {
	e := newEnv(t, nil)
	e.parts.Set("t", 6)
	sticky := group.StickyBalancer{}
	a := e.join(t, "g", sticky, req("t"))
	b := e.join(t, "g", sticky, req("t"))
	c := e.join(t, "g", sticky, req("t"))
	d := newDriver(t, a, b, c)
	gen := d.settle()
	before := map[*Member][]TopicPartition{a: d.owned(a), b: d.owned(b)}

	c.Leave()
	d.drop(c)
	require.Equal(t, gen+1, d.settle())
	d.requireSplit("t", 6)
	for _, m := range []*Member{a, b} {
		require.Len(t, d.owned(m), 3)
		require.Subset(t, d.owned(m), before[m], "%s keeps what it had", m.ID())
		before[m] = d.owned(m)
	}

	x := e.join(t, "g", sticky, req("t"))
	d.add(x)
	require.Equal(t, gen+2, d.settle())
	d.requireSplit("t", 6)
	for _, m := range []*Member{a, b} {
		require.Len(t, d.owned(m), 2)
		require.Subset(t, before[m], d.owned(m), "%s gives up one partition, keeps the rest", m.ID())
	}
}

// A member that rejoined a rebalance but had not taken its new assignment
// when the next one began claims what it held a generation ago. Where that
// conflicts with a member that took the partition since, the later
// generation's claim wins (as in Kafka's sticky assignors); the rest of the
// stale claim still counts.
func TestEagerStickyStaleClaim(t *testing.T) {
	e := newEnv(t, nil)
	e.parts.Set("t", 6)
	sticky := group.StickyBalancer{}
	a := e.join(t, "g", sticky, req("t"))
	b := e.join(t, "g", sticky, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	aHeld := d.owned(a)
	require.Len(t, aHeld, 3)

	// c joins. a and b revoke and rejoin; c's rejoin completes the
	// rebalance. b and c take their assignments, a does not poll again.
	c := e.join(t, "g", sticky, req("t"))
	d.add(c)
	for _, m := range []*Member{a, a, b, b} {
		d.step(m)
	}
	require.Equal(t, group.Wait, d.step(a).Kind, "a has rejoined and waits")
	for _, m := range []*Member{c, b} {
		task := d.step(m)
		require.Equal(t, group.Assign, task.Kind)
		require.Equal(t, gen+1, task.Generation)
	}
	taken := slices.DeleteFunc(slices.Clone(d.owned(c)), func(p TopicPartition) bool { return !slices.Contains(aHeld, p) })
	require.Len(t, taken, 1, "c took one of a's partitions")
	cHeld := d.owned(c)
	require.Len(t, cHeld, 2)
	owned, aGen, err := a.Owned()
	require.NoError(t, err)
	require.Empty(t, owned)
	require.Equal(t, gen, aGen, "a has not taken its assignment")

	// b leaves. a's claim to taken is stale: c keeps it, a keeps the rest
	// of its claim, and only b's partitions move.
	b.Leave()
	d.drop(b)
	require.Equal(t, gen+2, d.settle())
	d.requireSplit("t", 6)
	require.Len(t, d.owned(a), 3)
	require.Subset(t, d.owned(a), minus(aHeld, taken))
	require.Len(t, d.owned(c), 3)
	require.Subset(t, d.owned(c), cHeld, "c keeps what it took, a's stale claim notwithstanding")
}

// 2. Cooperative: members keep what they keep; a moving partition reaches
// its new owner only after the old one acknowledged its revoke.
func TestCooperativeRebalance(t *testing.T) {
	e := newEnv(t, nil)
	coop := group.CooperativeStickyBalancer{}
	a := e.join(t, "g", coop, req("t"))
	require.Equal(t, group.Cooperative, a.Protocol())
	d := newDriver(t, a)
	d.settle()
	require.Equal(t, tps("t", 0, 1, 2, 3), d.owned(a))

	// A second member: a revokes only the two that move, and keeps
	// fetching the others throughout.
	b := e.join(t, "g", coop, req("t"))
	d.add(b)
	before := len(d.tasks[a])
	gen := d.settle()
	d.requireSplit("t", 4)
	require.Len(t, d.owned(a), 2)
	require.Len(t, d.owned(b), 2)
	var revoked []TopicPartition
	for _, task := range d.tasks[a][before:] {
		if task.Kind == group.Revoke {
			revoked = append(revoked, task.Partitions...)
		}
	}
	require.Equal(t, d.owned(b), sortedTPs(revoked), "a revoked exactly what b got")

	// A third member, step by step.
	c := e.join(t, "g", coop, req("t"))
	d.add(c)
	owners := map[*Member][]TopicPartition{a: d.owned(a), b: d.owned(b)}
	var loser *Member
	var revoke group.Task
	for round := 0; loser == nil; round++ {
		require.Less(t, round, 10, "nobody revoked")
		for _, m := range []*Member{a, b, c} {
			task := d.poll(m)
			if task.Kind == group.Revoke {
				loser, revoke = m, task
				break
			}
			if m != c {
				require.NotEqual(t, group.Wait, task.Kind, "cooperative: owners keep fetching")
			}
			d.ack(m, task)
		}
	}
	require.Len(t, revoke.Partitions, 1, "one partition moves to the newcomer")
	moving := revoke.Partitions[0]
	require.Contains(t, owners[loser], moving)
	// While the loser sits on its revoke, nobody else gets the partition.
	for range 3 {
		for _, m := range []*Member{a, b, c} {
			if m == loser {
				continue
			}
			task := d.step(m)
			require.NotContains(t, task.Partitions, moving)
			require.NotContains(t, task.Owned, moving)
			owned, _, err := m.Owned()
			require.NoError(t, err)
			require.NotContains(t, owned, moving)
		}
	}
	owned, _, err := loser.Owned()
	require.NoError(t, err)
	require.Contains(t, owned, moving, "the loser holds it until it acks")
	d.ack(loser, revoke)

	final := d.settle()
	require.Greater(t, final, gen+1, "a follow-up rebalance hands the partition over")
	require.Equal(t, []TopicPartition{moving}, d.owned(c))
	d.requireSplit("t", 4)
	allowed := union(revoked, []TopicPartition{moving})
	for m, had := range owners {
		require.Equal(t, minus(had, []TopicPartition{moving}), d.owned(m), "%s kept the rest", m.ID())
		for _, task := range d.tasks[m] {
			if task.Kind == group.Revoke {
				require.Subset(t, allowed, task.Partitions, "nothing else was revoked")
			}
		}
	}
	info := e.describe(t, "g")
	require.Equal(t, "Stable", info.State)
	require.Equal(t, final, info.Generation)
	require.Equal(t, "cooperative-sticky", info.Balancer)
	require.Len(t, info.Members, 3)
}

// 3. Commits are checked against the member's generation and ownership,
// and stored in the catalog.
func TestCommit(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	require.Equal(t, tps("t", 0, 1), d.owned(a))
	require.Equal(t, tps("t", 2, 3), d.owned(b))

	e.clock.Advance(time.Second)
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 5, tp("t", 1): 7}))
	require.NoError(t, b.Commit(gen, map[TopicPartition]int64{tp("t", 2): 3}))
	want := map[TopicPartition]int64{tp("t", 0): 5, tp("t", 1): 7, tp("t", 2): 3}
	require.Equal(t, want, e.committed(t, "g"))
	require.Equal(t, map[TopicPartition]int64{tp("t", 1): 7}, e.committed(t, "g", tp("t", 1)))
	require.Empty(t, e.committed(t, "g", tp("t", 3)), "never committed: absent")
	require.Empty(t, e.committed(t, "other"))
	last, err := e.cat.LastCommits()
	require.NoError(t, err)
	require.True(t, last["g"].Equal(t0.Add(time.Second)), "stored with the service's clock: %v", last["g"])

	// Wrong generation, either way.
	for _, g := range []int{gen - 1, gen + 1} {
		err := a.Commit(g, map[TopicPartition]int64{tp("t", 0): 6})
		require.ErrorIs(t, err, errs.ErrStaleGeneration, "generation %d", g)
	}
	// A partition it does not hold, alone or with one it does: nothing is
	// stored.
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 2): 1}), errs.ErrNotAssigned)
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1, tp("t", 2): 1}), errs.ErrNotAssigned)
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("u", 0): 1}), errs.ErrNotAssigned, "a topic it does not subscribe to")
	// A negative offset: nothing is stored.
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 9, tp("t", 1): -1}), errs.ErrInvalidArgument)
	require.ErrorIs(t, a.Commit(gen-1, map[TopicPartition]int64{tp("t", 0): -1}), errs.ErrInvalidArgument, "checked first")
	require.Equal(t, want, e.committed(t, "g"))
	// Offset zero is valid.
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 1): 0}))
	want[tp("t", 1)] = 0
	require.Equal(t, want, e.committed(t, "g"))

	// A rebalance: while a revokes (eager: everything), it may still
	// commit what it is revoking, with its generation; once acked, not.
	c := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d.add(c)
	task := d.poll(a)
	require.Equal(t, group.Revoke, task.Kind)
	require.Equal(t, gen, task.Generation)
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 6}), "committing in onPartitionsRevoked")
	want[tp("t", 0)] = 6
	d.ack(a, task)
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 8}), errs.ErrNotAssigned)
	newGen := d.settle()
	require.Greater(t, newGen, gen)
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 8}), errs.ErrStaleGeneration)
	require.Equal(t, want, e.committed(t, "g"))
	for _, m := range []*Member{a, b, c} {
		offs := map[TopicPartition]int64{}
		for _, p := range d.owned(m) {
			offs[p] = int64(10 + p.Partition)
			want[p] = int64(10 + p.Partition)
		}
		require.NoError(t, m.Commit(newGen, offs))
	}
	require.Equal(t, want, e.committed(t, "g"))

	// A member that left is stale.
	c.Leave()
	require.ErrorIs(t, c.Commit(newGen, map[TopicPartition]int64{d.owned(c)[0]: 1}), errs.ErrStaleGeneration)
	a.Leave()
	b.Leave()

	// Stored for good: a fresh open of the catalog sees the offsets.
	require.NoError(t, e.cat.Close(true))
	cat := openCatalog(t, e.path, false)
	offs, err := cat.Committed("g", nil)
	require.NoError(t, err)
	require.Equal(t, want, offs)
	s2 := New(Config{Catalog: cat, Partitions: e.parts.Partitions, Now: e.clock.Now})
	offs, err = s2.Committed("g")
	require.NoError(t, err)
	require.Equal(t, want, offs)
	names, err := s2.Names()
	require.NoError(t, err)
	require.Equal(t, []string{"g"}, names)
	require.NoError(t, cat.Close(true))

	// Read-only: members may join and poll, but commit nothing, and
	// admin changes are refused.
	ro := openCatalog(t, e.path, true)
	defer ro.Close(true)
	var logs bytes.Buffer
	rs := New(Config{Catalog: ro, Partitions: e.parts.Partitions, Now: e.clock.Now, ReadOnly: true, OffsetsRetention: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	m, err := rs.Join("g", group.RangeBalancer{}, req("t"))
	require.NoError(t, err)
	d3 := newDriver(t, m)
	rgen := d3.settle()
	require.ErrorIs(t, m.Commit(rgen, map[TopicPartition]int64{tp("t", 0): 100}), errs.ErrReadOnly)
	require.ErrorIs(t, m.Commit(rgen, map[TopicPartition]int64{tp("t", 0): -1}), errs.ErrReadOnly)
	m.Leave()
	require.ErrorIs(t, rs.SetOffsets("g", map[TopicPartition]int64{tp("t", 0): 0}, nil), errs.ErrReadOnly)
	require.ErrorIs(t, rs.Delete("g"), errs.ErrReadOnly)
	e.clock.Advance(24 * time.Hour)
	rs.Expire() // a read-only service expires nothing, and does not try
	offs, err = rs.Committed("g")
	require.NoError(t, err)
	require.Equal(t, want, offs)
	require.Empty(t, logs.String())
}

// 4. A member that stops polling is evicted once its MaxPollInterval has
// passed; the others take its partitions; it can rejoin.
func TestEviction(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	require.Equal(t, tps("t", 0, 1), d.owned(a))
	require.Equal(t, t0.Add(5*time.Minute), a.NextDeadline(), "due 5 minutes after the last PollDone")

	// b keeps polling; a does not.
	e.clock.Advance(3 * time.Minute)
	require.Equal(t, group.Fetch, d.step(b).Kind)
	require.Equal(t, t0.Add(5*time.Minute), b.NextDeadline(), "a is due first")
	e.clock.Advance(2*time.Minute - time.Nanosecond)
	require.Equal(t, group.Fetch, d.step(b).Kind, "not yet")
	_, _, err := a.Owned()
	require.NoError(t, err)
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))

	e.clock.Advance(time.Nanosecond)
	_, _, err = a.Owned()
	require.ErrorIs(t, err, group.ErrUnknownMember, "evicted as the clock passes its deadline")
	info := e.describe(t, "g")
	require.Len(t, info.Members, 1)
	require.Equal(t, b.ID(), info.Members[0].ID)
	_, err = a.Poll()
	require.ErrorIs(t, err, group.ErrUnknownMember)
	require.NoError(t, a.Fenced(), "evicted is not fenced")
	require.NoError(t, a.RequestRebalance(), "a forgotten member's request is moot")
	err = a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 2})
	require.ErrorIs(t, err, errs.ErrStaleGeneration)
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 1}, e.committed(t, "g"))
	a.PollDone() // a forgotten member's PollDone is ignored
	a.Ack(group.Task{Kind: group.Revoke, Partitions: tps("t", 0)})

	d.drop(a)
	gen2 := d.settle()
	require.Greater(t, gen2, gen)
	require.Equal(t, tps("t", 0, 1, 2, 3), d.owned(b))

	// Rejoin: a new id, and partitions again after a rebalance.
	old := a.ID()
	a.Rejoin()
	require.NotEqual(t, old, a.ID())
	require.True(t, a.Registered())
	d.add(a)
	gen3 := d.settle()
	require.Greater(t, gen3, gen2)
	d.requireSplit("t", 4)
	require.Len(t, d.owned(a), 2)
	require.Len(t, d.owned(b), 2)
	require.NoError(t, a.Commit(gen3, map[TopicPartition]int64{d.owned(a)[0]: 3}))

	// A member inside Poll (no PollDone yet) is never evicted, however
	// long it waits; it is due MaxPollInterval after its PollDone.
	_, err = a.Poll()
	require.NoError(t, err)
	for range 3 {
		e.clock.Advance(4 * time.Minute)
		require.Equal(t, group.Fetch, d.step(b).Kind)
	}
	_, _, err = a.Owned()
	require.NoError(t, err, "waiting in Poll is alive")
	a.PollDone()
	require.Equal(t, e.clock.Now().Add(5*time.Minute), a.NextDeadline())
	require.Equal(t, group.Fetch, d.step(a).Kind)
}

// A member with MaxPollInterval 0 is never evicted.
func TestNoMaxPollInterval(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, group.JoinRequest{Topics: []string{"t"}})
	d := newDriver(t, a)
	d.settle()
	require.True(t, a.NextDeadline().IsZero())
	e.clock.Advance(1000 * time.Hour)
	require.Equal(t, group.Fetch, d.step(a).Kind)
}

// 5. Static membership: a newer member with the same instance id takes
// over and fences the older one.
func TestStaticMembershipFencing(t *testing.T) {
	e := newEnv(t, nil)
	static := func(id string) group.JoinRequest {
		r := req("t")
		r.InstanceID = id
		return r
	}
	a := e.join(t, "g", group.RangeBalancer{}, static("i1"))
	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	require.Equal(t, tps("t", 0, 1), d.owned(a), "static members sort first")
	require.NoError(t, a.Fenced())
	info := e.describe(t, "g")
	require.Equal(t, "i1", info.Members[0].InstanceID)

	// The same instance, back (a restart): same partitions, no rebalance.
	a2 := e.join(t, "g", group.RangeBalancer{}, static("i1"))
	require.NotEqual(t, a.ID(), a2.ID())
	_, err := a.Poll()
	require.ErrorIs(t, err, group.ErrFenced)
	require.ErrorIs(t, a.Fenced(), errs.ErrFenced)
	_, _, err = a.Owned()
	require.ErrorIs(t, err, group.ErrFenced)
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}), errs.ErrFenced)
	require.ErrorIs(t, a.RequestRebalance(), errs.ErrFenced)
	require.Empty(t, e.committed(t, "g"))
	d.drop(a)
	d.add(a2)
	require.Equal(t, group.Fetch, d.step(b).Kind, "the others are not disturbed")
	task := d.step(a2)
	require.Equal(t, group.Assign, task.Kind)
	require.Equal(t, gen, task.Generation, "same generation")
	require.Equal(t, tps("t", 0, 1), sortedTPs(task.Owned))
	require.Equal(t, gen, d.settle())
	require.NoError(t, a2.Commit(gen, map[TopicPartition]int64{tp("t", 0): 4}))
	require.ErrorIs(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 5}), errs.ErrFenced, "fencing is final")
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 4}, e.committed(t, "g"))
	require.Equal(t, gen, e.describe(t, "g").Generation)
	require.Len(t, e.describe(t, "g").Members, 2)

	// A static member that leaves keeps its place for its SessionTimeout:
	// its partitions wait for it, the others keep theirs.
	a2.Leave()
	d.drop(a2)
	require.Equal(t, e.clock.Now().Add(10*time.Second), b.NextDeadline())
	require.Equal(t, group.Fetch, d.step(b).Kind)
	require.Equal(t, tps("t", 2, 3), d.owned(b))
	require.ErrorIs(t, e.s.SetOffsets("g", map[TopicPartition]int64{tp("t", 0): 0}, nil), errs.ErrGroupNotEmpty,
		"a departed static member is still a member")
	// Back in time: same partitions, no rebalance.
	e.clock.Advance(5 * time.Second)
	a3 := e.join(t, "g", group.RangeBalancer{}, static("i1"))
	d.add(a3)
	require.Equal(t, gen, d.settle())
	require.Equal(t, tps("t", 0, 1), d.owned(a3))
	// Gone for longer than its SessionTimeout: the others get its share.
	a3.Leave()
	d.drop(a3)
	e.clock.Advance(10 * time.Second)
	require.Greater(t, d.settle(), gen)
	require.Equal(t, tps("t", 0, 1, 2, 3), d.owned(b))

	// The same instance with another subscription: a rebalance.
	x := e.join(t, "g", group.RangeBalancer{}, static("i2"))
	d.add(x)
	g2 := d.settle()
	r := static("i2")
	r.Topics = []string{"t", "u"}
	x2 := e.join(t, "g", group.RangeBalancer{}, r)
	_, err = x.Poll()
	require.ErrorIs(t, err, group.ErrFenced)
	d.drop(x)
	d.add(x2)
	require.Greater(t, d.settle(), g2)
	require.Equal(t, []TopicPartition{tp("t", 0), tp("t", 1), tp("u", 0), tp("u", 1)}, d.owned(x2))
}

// 6. Admin: offsets change only in groups without members; listing and
// describing cover groups known only by their offsets.
func TestAdmin(t *testing.T) {
	e := newEnv(t, nil)
	// zeta: members, no offsets; mid: members and offsets; alpha: offsets
	// only.
	z := e.join(t, "zeta", group.RangeBalancer{}, req("t"))
	newDriver(t, z).settle()
	m := e.join(t, "mid", group.RangeBalancer{}, req("t"))
	d := newDriver(t, m)
	gen := d.settle()
	require.NoError(t, m.Commit(gen, map[TopicPartition]int64{tp("t", 0): 5}))
	require.NoError(t, e.s.SetOffsets("alpha", map[TopicPartition]int64{tp("t", 1): 3, tp("u", 0): 0}, nil))
	require.Equal(t, []string{"alpha", "mid", "zeta"}, e.names(t))

	// With members: refused, nothing changes.
	require.ErrorIs(t, e.s.SetOffsets("mid", map[TopicPartition]int64{tp("t", 0): 1}, nil), errs.ErrGroupNotEmpty)
	require.ErrorIs(t, e.s.Delete("mid"), errs.ErrGroupNotEmpty)
	require.ErrorIs(t, e.s.Delete("zeta"), errs.ErrGroupNotEmpty)
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 5}, e.committed(t, "mid"))
	require.Equal(t, []string{"alpha", "mid", "zeta"}, e.names(t))

	// Invalid offsets: refused, nothing stored.
	require.ErrorIs(t, e.s.SetOffsets("alpha", map[TopicPartition]int64{tp("t", 1): 9, tp("t", 2): -1}, nil), errs.ErrInvalidArgument)
	require.Equal(t, map[TopicPartition]int64{tp("t", 1): 3, tp("u", 0): 0}, e.committed(t, "alpha"))

	// Describe: an unknown group is Dead, one known by offsets Empty.
	info := e.describe(t, "nope")
	require.Equal(t, Info{State: "Dead", Committed: map[TopicPartition]int64{}}, info)
	info = e.describe(t, "alpha")
	require.Equal(t, Info{State: "Empty", Committed: map[TopicPartition]int64{tp("t", 1): 3, tp("u", 0): 0}}, info)
	info = e.describe(t, "mid")
	require.Equal(t, "Stable", info.State)
	require.Equal(t, "range", info.Balancer)
	require.Len(t, info.Members, 1)

	// Once its members left: SetOffsets overwrites what it names.
	m.Leave()
	d.drop(m)
	info = e.describe(t, "mid")
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members)
	require.Equal(t, "range", info.Balancer, "kept while the group is Empty")
	require.Equal(t, []string{"alpha", "mid", "zeta"}, e.names(t), "mid still has offsets")
	require.NoError(t, e.s.SetOffsets("mid", map[TopicPartition]int64{tp("t", 0): 1, tp("t", 3): 2}, nil))
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 1, tp("t", 3): 2}, e.committed(t, "mid"))
	// ... and a member joining afterwards finds them.
	m2 := e.join(t, "mid", group.RangeBalancer{}, req("t"))
	d.add(m2)
	gen2 := d.settle()
	require.Equal(t, tps("t", 0, 1, 2, 3), d.owned(m2))
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 1, tp("t", 3): 2}, e.committed(t, "mid", d.owned(m2)...))
	require.NoError(t, m2.Commit(gen2, map[TopicPartition]int64{tp("t", 0): 7}))
	m2.Leave()
	d.drop(m2)

	// Delete: offsets gone, not listed, Dead.
	require.NoError(t, e.s.Delete("mid"))
	require.Empty(t, e.committed(t, "mid"))
	require.Equal(t, []string{"alpha", "zeta"}, e.names(t))
	require.Equal(t, Info{State: "Dead", Committed: map[TopicPartition]int64{}}, e.describe(t, "mid"))
	require.False(t, m2.Registered(), "its group was dropped")
	require.NoError(t, e.s.Delete("alpha"))
	require.NoError(t, e.s.Delete("never-existed"))
	require.Equal(t, []string{"zeta"}, e.names(t))
	z.Leave()
	require.NoError(t, e.s.Delete("zeta"))
	require.Empty(t, e.names(t))

	// A join after Delete starts afresh.
	n := e.join(t, "mid", group.RangeBalancer{}, req("t"))
	require.Equal(t, 1, newDriver(t, n).settle())
	require.Empty(t, e.committed(t, "mid"))
}

// 7. Every member of a group uses one balancer, until the group is empty.
func TestBalancerMismatch(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a)
	gen := d.settle()
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 3}))

	for _, b := range []group.Balancer{group.RoundRobinBalancer{}, group.StickyBalancer{}, group.CooperativeStickyBalancer{}} {
		_, err := e.s.Join("g", b, req("t"))
		require.ErrorIs(t, err, errs.ErrInvalidConfig, b.Name())
	}
	info := e.describe(t, "g")
	require.Len(t, info.Members, 1, "the refused members did not join")
	require.Equal(t, gen, info.Generation)
	require.Equal(t, group.Fetch, d.step(a).Kind)
	// Other groups are independent.
	e.join(t, "other", group.RoundRobinBalancer{}, req("t")).Leave()

	a.Leave()
	require.Equal(t, "range", e.describe(t, "g").Balancer, "Empty: the last balancer is kept")
	b := e.join(t, "g", group.RoundRobinBalancer{}, req("t"))
	require.False(t, a.Registered(), "the empty group's state was replaced")
	require.Equal(t, group.Eager, b.Protocol())
	d2 := newDriver(t, b)
	d2.settle()
	info = e.describe(t, "g")
	require.Equal(t, "roundrobin", info.Balancer)
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 3}, e.committed(t, "g"), "offsets outlive the balancer")
	_, err := e.s.Join("g", group.RangeBalancer{}, req("t"))
	require.ErrorIs(t, err, errs.ErrInvalidConfig)

	// A departed static member still holds the balancer.
	b.Leave()
	s := req("t")
	s.InstanceID = "i"
	c := e.join(t, "g", group.CooperativeStickyBalancer{}, s)
	require.Equal(t, group.Cooperative, c.Protocol())
	newDriver(t, c).settle()
	c.Leave()
	_, err = e.s.Join("g", group.RangeBalancer{}, req("t"))
	require.ErrorIs(t, err, errs.ErrInvalidConfig, "its session is not over")
	e.clock.Advance(10 * time.Second)
	e.describe(t, "g") // expires it
	r := e.join(t, "g", group.RangeBalancer{}, req("t"))
	require.Equal(t, "range", e.describe(t, "g").Balancer)
	r.Leave()
}

// 8. TopicChanged rebalances the groups subscribed to the topic, and only
// those.
func TestTopicChanged(t *testing.T) {
	e := newEnv(t, nil)
	e.parts.Set("t", 2)
	a := e.join(t, "g1", group.RangeBalancer{}, req("t"))
	b := e.join(t, "g1", group.RangeBalancer{}, req("t"))
	d1 := newDriver(t, a, b)
	gen1 := d1.settle()
	require.Equal(t, tps("t", 0), d1.owned(a))
	require.Equal(t, tps("t", 1), d1.owned(b))
	x := e.join(t, "g2", group.RangeBalancer{}, req("u"))
	d2 := newDriver(t, x)
	gen2 := d2.settle()
	y := e.join(t, "g3", group.CooperativeStickyBalancer{}, req("t", "u"))
	d3 := newDriver(t, y)
	gen3 := d3.settle()
	require.Equal(t, []TopicPartition{tp("t", 0), tp("t", 1), tp("u", 0), tp("u", 1)}, d3.owned(y))

	bells := map[string]chan struct{}{"g1": make(chan struct{}, 1), "g2": make(chan struct{}, 1), "g3": make(chan struct{}, 1)}
	a.Notify(bells["g1"])
	x.Notify(bells["g2"])
	y.Notify(bells["g3"])

	e.parts.Set("t", 4)
	e.s.TopicChanged("t")
	require.True(t, rang(bells["g1"]))
	require.False(t, rang(bells["g2"]), "g2 does not subscribe to t")
	require.True(t, rang(bells["g3"]))
	require.Equal(t, "PreparingRebalance", e.describe(t, "g1").State)
	require.Equal(t, "Stable", e.describe(t, "g2").State)

	// Eager: everything is revoked, then the new partitions split.
	for _, m := range []*Member{a, b} {
		had := d1.owned(m)
		task := d1.step(m)
		require.Equal(t, group.Revoke, task.Kind)
		require.Equal(t, had, sortedTPs(task.Partitions))
	}
	require.Equal(t, gen1+1, d1.settle())
	d1.requireSplit("t", 4)
	require.Equal(t, tps("t", 0, 1), d1.owned(a))
	require.Equal(t, tps("t", 2, 3), d1.owned(b))

	// g2 was not disturbed.
	task := d2.step(x)
	require.Equal(t, group.Fetch, task.Kind)
	require.Equal(t, gen2, task.Generation)
	require.Equal(t, gen2, e.describe(t, "g2").Generation)

	// Cooperative: y keeps fetching what it has and gains the new ones.
	require.Greater(t, d3.settle(), gen3)
	require.Equal(t, []TopicPartition{tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3), tp("u", 0), tp("u", 1)}, d3.owned(y))
	for _, task := range d3.tasks[y] {
		require.NotEqual(t, group.Revoke, task.Kind, "nothing revoked")
	}

	// A topic deleted (no partitions): its subscribers give up its
	// partitions.
	e.parts.Set("u", 0)
	e.s.TopicChanged("u")
	require.Equal(t, gen1+1, e.describe(t, "g1").Generation)
	require.Equal(t, "Stable", e.describe(t, "g1").State, "g1 does not subscribe to u")
	require.Equal(t, "PreparingRebalance", e.describe(t, "g2").State)
	d2.settle()
	require.Empty(t, d2.owned(x))
	d3.settle()
	require.Equal(t, tps("t", 0, 1, 2, 3), d3.owned(y))

	// A topic nobody subscribes to: nothing happens.
	e.s.TopicChanged("nobody")
	for name := range bells {
		require.Equal(t, "Stable", e.describe(t, name).State)
	}
}

// 9. Offsets expiry: a group without members loses its offsets once
// OffsetsRetention has passed since the latest of its last commit, the
// service's start and the time it lost its last member.
func TestExpireOffsets(t *testing.T) {
	e := newEnv(t, nil)
	// Committed before the service started: counts from its start.
	require.NoError(t, e.cat.CommitOffsets("before", map[TopicPartition]int64{tp("t", 0): 1}, t0.Add(-48*time.Hour)))

	// "left": commits at t0, its last member leaves 10 minutes later.
	l := e.join(t, "left", group.RangeBalancer{}, group.JoinRequest{Topics: []string{"t"}})
	ld := newDriver(t, l)
	gen := ld.settle()
	require.NoError(t, l.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))
	// "live": keeps a member throughout.
	live := e.join(t, "live", group.RangeBalancer{}, group.JoinRequest{Topics: []string{"t"}})
	lived := newDriver(t, live)
	lgen := lived.settle()
	require.NoError(t, live.Commit(lgen, map[TopicPartition]int64{tp("t", 0): 1}))
	// "evicted": seen alive by a check 4 minutes in, evicted at 5 minutes
	// (MaxPollInterval), which is when it emptied however late the
	// eviction is noticed.
	ev := e.join(t, "evicted", group.RangeBalancer{}, req("t"))
	evd := newDriver(t, ev)
	egen := evd.settle()
	require.NoError(t, ev.Commit(egen, map[TopicPartition]int64{tp("t", 0): 1}))
	// "admin": offsets only, set at t0+30m.

	e.clock.Advance(4 * time.Minute)
	e.s.Expire()
	e.clock.Advance(6 * time.Minute)
	l.Leave()
	e.clock.Advance(20 * time.Minute)
	require.NoError(t, e.s.SetOffsets("admin", map[TopicPartition]int64{tp("t", 0): 1}, nil))
	require.Equal(t, []string{"admin", "before", "evicted", "left", "live"}, e.names(t))

	has := func(name string) bool {
		t.Helper()
		return len(e.committed(t, name)) > 0
	}
	at := func(d time.Duration) {
		t.Helper()
		e.clock.Advance(t0.Add(d).Sub(e.clock.Now()))
		require.Equal(t, group.Fetch, lived.step(live).Kind, "live keeps polling")
		e.s.Expire()
	}
	at(time.Hour - time.Millisecond)
	require.True(t, has("before"), "the service started less than the retention ago")
	at(time.Hour)
	require.False(t, has("before"))
	require.Equal(t, Info{State: "Dead", Committed: map[TopicPartition]int64{}}, e.describe(t, "before"))
	require.True(t, has("left"))
	require.True(t, has("evicted"))
	at(time.Hour + 5*time.Minute - time.Millisecond)
	require.True(t, has("evicted"), "its member's MaxPollInterval ran out at t0+5m")
	at(time.Hour + 5*time.Minute)
	require.False(t, has("evicted"))
	_, err := ev.Poll()
	require.ErrorIs(t, err, group.ErrUnknownMember)
	require.False(t, ev.Registered(), "its group was dropped")
	at(time.Hour + 10*time.Minute - time.Millisecond)
	require.True(t, has("left"), "its last member left at t0+10m")
	require.True(t, l.Registered())
	at(time.Hour + 10*time.Minute)
	require.False(t, has("left"))
	require.False(t, l.Registered(), "the empty group was dropped")
	require.Equal(t, Info{State: "Dead", Committed: map[TopicPartition]int64{}}, e.describe(t, "left"))
	at(time.Hour + 30*time.Minute - time.Millisecond)
	require.True(t, has("admin"))
	at(time.Hour + 30*time.Minute)
	require.False(t, has("admin"))
	at(1000 * time.Hour)
	require.True(t, has("live"), "a group with members keeps its offsets")
	require.Equal(t, []string{"live"}, e.names(t))

	// A member joining a dropped group is registered in the new one.
	l2 := e.join(t, "left", group.RangeBalancer{}, req("t"))
	require.True(t, l2.Registered())
	require.Equal(t, 1, newDriver(t, l2).settle(), "a fresh group")
	l2.Leave()

	// Zero retention: a group expires as soon as it is empty, never while
	// it has members.
	zero := newEnv(t, func(c *Config) { c.OffsetsRetention = 0 })
	k := zero.join(t, "k", group.RangeBalancer{}, req("t"))
	kgen := newDriver(t, k).settle()
	require.NoError(t, k.Commit(kgen, map[TopicPartition]int64{tp("t", 0): 1}))
	zero.s.Expire()
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 1}, zero.committed(t, "k"))
	k.Leave()
	zero.s.Expire()
	require.Empty(t, zero.committed(t, "k"))

	// Negative retention: never.
	forever := newEnv(t, func(c *Config) { c.OffsetsRetention = -1 })
	require.NoError(t, forever.s.SetOffsets("kept", map[TopicPartition]int64{tp("t", 0): 1}, nil))
	forever.clock.Advance(100 * 365 * 24 * time.Hour)
	forever.s.Expire()
	require.Equal(t, map[TopicPartition]int64{tp("t", 0): 1}, forever.committed(t, "kept"))
}

// Expire returns when it next has work, and Config.Wake hears of work that
// comes sooner: a member's MaxPollInterval running (none while it waits in
// Poll, so a group of waiting members needs no timer), a departed static
// member's SessionTimeout, a memberless group's offsets aging.
func TestExpireDeadlines(t *testing.T) {
	var wakes []time.Time
	e := newEnv(t, func(c *Config) { c.Wake = func(due time.Time) { wakes = append(wakes, due) } })
	require.True(t, e.s.Expire().IsZero(), "nothing to do")

	m := e.join(t, "g", group.RangeBalancer{}, req("t"))
	require.Equal(t, []time.Time{t0.Add(5 * time.Minute)}, wakes, "joined: evicted unless it polls")
	require.Equal(t, t0.Add(5*time.Minute), e.s.Expire())
	_, err := m.Poll()
	require.NoError(t, err)
	require.True(t, e.s.Expire().IsZero(), "waiting in Poll: no deadline")

	e.clock.Advance(time.Minute)
	m.PollDone()
	require.Equal(t, t0.Add(6*time.Minute), wakes[len(wakes)-1])
	require.Equal(t, t0.Add(6*time.Minute), e.s.Expire())
	gen := newDriver(t, m).settle()
	require.NoError(t, m.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))

	// Evicted at its deadline, noticed later: its offsets age from the
	// deadline.
	e.clock.Advance(20 * time.Minute)
	require.Equal(t, t0.Add(6*time.Minute+time.Hour), e.s.Expire())
	e.clock.Advance(time.Hour)
	require.True(t, e.s.Expire().IsZero(), "expired: nothing left")
	require.Empty(t, e.committed(t, "g"))

	// A static member that leaves keeps its place for its SessionTimeout.
	static := req("t")
	static.InstanceID = "a"
	a := e.join(t, "s", group.RangeBalancer{}, static)
	newDriver(t, a).settle()
	a.Leave()
	now := e.clock.Now()
	require.Equal(t, now.Add(10*time.Second), wakes[len(wakes)-1])
	require.Equal(t, now.Add(10*time.Second), e.s.Expire())
	e.clock.Advance(10 * time.Second)
	require.True(t, e.s.Expire().IsZero(), "gone, and no offsets: forgotten")

	// An admin commit starts the offsets' aging.
	require.NoError(t, e.s.SetOffsets("admin", map[TopicPartition]int64{tp("t", 0): 1}, nil))
	now = e.clock.Now()
	require.Equal(t, now.Add(time.Hour), wakes[len(wakes)-1])
	require.WithinDuration(t, now.Add(time.Hour), e.s.Expire(), 0, "the catalog's time, in its location")

	// A dynamic member's leaving empties its group now.
	d := e.join(t, "d", group.RangeBalancer{}, req("t"))
	d.Leave()
	require.Equal(t, now, wakes[len(wakes)-1])
}

// An ExpireOffsets between a Join's lookup of the group and its join drops
// the state the Join found: the Join still returns a member of the group's
// registered state.
func TestJoinRacingExpireOffsets(t *testing.T) {
	e := newEnv(t, nil)

	// A group known only by its offsets.
	require.NoError(t, e.s.SetOffsets("g", map[TopicPartition]int64{tp("t", 0): 1}, nil))
	e.clock.Advance(2 * time.Hour)
	calls := 0
	e.s.BeforeJoin = func() {
		calls++
		if calls == 1 {
			e.s.Expire()
		}
	}
	m := e.join(t, "g", group.RangeBalancer{}, req("t"))
	require.Equal(t, 2, calls, "the join was retried")
	require.True(t, m.Registered())
	require.Empty(t, e.committed(t, "g"), "expired in the gap")
	info := e.describe(t, "g")
	require.Len(t, info.Members, 1)
	require.Equal(t, m.ID(), info.Members[0].ID)
	// A second member shares its coordinator.
	e.s.BeforeJoin = nil
	m2 := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, m, m2)
	d.settle()
	d.requireSplit("t", 4)
	m.Leave()
	m2.Leave()

	// A group whose state the service still has, empty.
	x := e.join(t, "h", group.RangeBalancer{}, req("t"))
	gen := newDriver(t, x).settle()
	require.NoError(t, x.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))
	x.Leave()
	e.clock.Advance(2 * time.Hour)
	calls = 0
	e.s.BeforeJoin = func() {
		calls++
		if calls == 1 {
			e.s.Expire()
		}
	}
	y := e.join(t, "h", group.RangeBalancer{}, req("t"))
	require.Equal(t, 2, calls)
	require.True(t, y.Registered())
	require.False(t, x.Registered())
	require.Empty(t, e.committed(t, "h"))
	require.Len(t, e.describe(t, "h").Members, 1)

	// A Delete in the gap, likewise.
	y.Leave()
	calls = 0
	e.s.BeforeJoin = func() {
		calls++
		if calls == 1 {
			require.NoError(t, e.s.Delete("h"))
		}
	}
	z := e.join(t, "h", group.RangeBalancer{}, req("t"))
	require.Equal(t, 2, calls)
	require.True(t, z.Registered())
	require.Len(t, e.describe(t, "h").Members, 1)

	// Nothing in the gap: one lookup.
	calls = 0
	e.s.BeforeJoin = func() { calls++ }
	z2 := e.join(t, "h", group.RangeBalancer{}, req("t"))
	require.Equal(t, 1, calls)
	require.Len(t, e.describe(t, "h").Members, 2)
	require.True(t, z.Registered() && z2.Registered())
}

// 10. Notify rings a bell at the group's next change; Forget stops it.
func TestNotify(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a)
	d.settle()

	bell, forgotten, other := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{}, 1)
	a.Notify(bell)
	a.Notify(forgotten)
	a.Forget(forgotten)
	// A poll that changes nothing rings nothing...
	task, err := a.Poll()
	require.NoError(t, err)
	require.Equal(t, group.Fetch, task.Kind)
	require.False(t, rang(bell))
	// ... but its PollDone does if it brings an eviction deadline forward
	// (here: the first one), so that waiters re-arm their timers.
	a.PollDone()
	require.True(t, rang(bell))
	a.Notify(bell)
	// Another group's changes do not ring it.
	x := e.join(t, "other", group.RangeBalancer{}, req("t"))
	x.Notify(other)
	require.False(t, rang(bell))

	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	require.True(t, rang(bell), "a member joined")
	require.False(t, rang(forgotten))
	require.False(t, rang(other))
	// One ring per registration.
	d.add(b)
	d.step(a)
	require.False(t, rang(bell))

	// Registered again: a revoke acknowledged, a member leaving, a
	// rebalance requested all ring.
	a.Notify(bell)
	d.settle()
	require.True(t, rang(bell))
	a.Notify(bell)
	require.NoError(t, a.RequestRebalance())
	require.True(t, rang(bell))
	d.settle()
	a.Notify(bell)
	b.Leave()
	d.drop(b)
	require.True(t, rang(bell))
	d.settle()
	// A member's eviction, found by a poll of another, rings too.
	c := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d.add(c)
	d.settle()
	e.clock.Advance(4 * time.Minute)
	require.Equal(t, group.Fetch, d.step(a).Kind)
	a.Notify(bell)
	e.clock.Advance(time.Minute)
	task, err = a.Poll()
	require.NoError(t, err)
	require.Equal(t, group.Revoke, task.Kind, "c is gone: a rebalance begins")
	require.True(t, rang(bell))
	_, _, err = c.Owned()
	require.ErrorIs(t, err, group.ErrUnknownMember)
}

// RequestRebalance starts a rebalance of a stable group, and only then.
func TestRequestRebalance(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	require.NoError(t, b.RequestRebalance())
	require.Equal(t, "PreparingRebalance", e.describe(t, "g").State)
	require.NoError(t, a.RequestRebalance(), "already under way")
	task := d.step(a)
	require.Equal(t, group.Revoke, task.Kind)
	require.Equal(t, gen+1, d.settle(), "one rebalance")
	d.requireSplit("t", 4)
}

// Err maps the coordinator's errors onto the engine's sentinels and passes
// any other through.
func TestErr(t *testing.T) {
	require.NoError(t, Err(nil))
	for in, want := range map[error]error{
		group.ErrUnknownMember:   errs.ErrStaleGeneration,
		group.ErrStaleGeneration: errs.ErrStaleGeneration,
		group.ErrFenced:          errs.ErrFenced,
		group.ErrNotOwned:        errs.ErrNotAssigned,
	} {
		got := Err(fmt.Errorf("wrapped: %w", in))
		require.ErrorIs(t, got, want, "%v", in)
	}
	other := errors.New("other")
	require.Equal(t, other, Err(other))
}

// The service is safe for concurrent use: members driven by goroutines of
// their own, with commits, admin calls, topic changes and expiry running
// alongside, end in a consistent group (run with -race).
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, nil)
	const workers, rounds = 4, 40
	var wg sync.WaitGroup
	final := make([]*Member, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bell := make(chan struct{}, 1)
			var m *Member
			for i := range rounds {
				if m == nil {
					var err error
					m, err = e.s.Join("g", group.CooperativeStickyBalancer{}, req("t"))
					if err != nil {
						t.Error(err)
						return
					}
				}
				m.Notify(bell)
				task, err := m.Poll()
				m.PollDone()
				switch {
				case errors.Is(err, group.ErrUnknownMember):
					m.Rejoin()
					continue
				case err != nil:
					t.Error(err)
					return
				}
				switch task.Kind {
				case group.Revoke, group.Assign:
					m.Ack(task)
				case group.Fetch:
					offs := map[TopicPartition]int64{}
					for _, p := range task.Owned {
						offs[p] = int64(i)
					}
					err := m.Commit(task.Generation, offs)
					if err != nil && !errors.Is(err, errs.ErrStaleGeneration) && !errors.Is(err, errs.ErrNotAssigned) {
						t.Error(err)
					}
				}
				if i%10 == 9 && w%2 == 0 {
					m.Leave()
					m = nil
				}
				m2, err := e.s.Join("g", group.CooperativeStickyBalancer{}, req("t"))
				if err != nil {
					t.Error(err)
					return
				}
				m2.Leave()
			}
			final[w] = m
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range rounds {
			e.s.Expire()
			e.s.TopicChanged("t")
			_, err := e.s.Describe("g")
			if err != nil {
				t.Error(err)
			}
			if _, err := e.s.Names(); err != nil {
				t.Error(err)
			}
			err = e.s.SetOffsets("g", map[TopicPartition]int64{tp("t", 0): int64(i)}, nil)
			if err != nil && !errors.Is(err, errs.ErrGroupNotEmpty) {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	d := newDriver(t)
	for _, m := range final {
		if m != nil {
			require.True(t, m.Registered())
			d.add(m)
		}
	}
	require.NotEmpty(t, d.members)
	d.settle()
	d.requireSplit("t", 4)
	info := e.describe(t, "g")
	require.Equal(t, "Stable", info.State)
	require.Len(t, info.Members, len(d.members))
	ids := map[string]bool{}
	for _, mi := range info.Members {
		ids[mi.ID] = true
	}
	for _, m := range d.members {
		require.True(t, ids[m.ID()])
	}
}

// An evicted member whose empty group was dropped meanwhile (offsets
// expiry, Delete, a new balancer) rejoins the group's current state, never
// the dropped one: no partition gets two owners.
func TestRejoinAfterTheGroupWasDropped(t *testing.T) {
	for _, how := range []string{"expiry", "delete", "balancer"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, nil)
			a := e.join(t, "g", group.RangeBalancer{}, req("t"))
			da := newDriver(t, a)
			gen := da.settle()
			require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))
			e.clock.Advance(2 * time.Hour)
			balancer := group.Balancer(group.RangeBalancer{})
			switch how {
			case "expiry":
				e.s.Expire() // a is evicted, the group's offsets and state dropped
			case "delete":
				require.Equal(t, group.Empty.String(), e.describe(t, "g").State) // evicts a
				require.NoError(t, e.s.Delete("g"))
			case "balancer":
				balancer = group.RoundRobinBalancer{}
			}
			b := e.join(t, "g", balancer, req("t"))
			require.False(t, a.Registered())
			_, err := a.Poll()
			require.ErrorIs(t, err, group.ErrUnknownMember)
			err = a.Rejoin()
			if how == "balancer" {
				require.ErrorIs(t, err, errs.ErrInvalidConfig, "the group is another balancer's now")
				return
			}
			require.NoError(t, err)
			require.True(t, a.Registered())
			d := newDriver(t, a, b) // checks no partition has two owners
			d.settle()
			d.requireSplit("t", 4)
		})
	}
}

// Expire evicts members whose time is up and wakes the group's waiters.
func TestExpireWakesTheGroup(t *testing.T) {
	e := newEnv(t, nil)
	never := group.JoinRequest{Topics: []string{"t"}, SessionTimeout: time.Second}
	a := e.join(t, "g", group.RangeBalancer{}, never)
	b := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a, b)
	gen := d.settle()
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))
	bell := make(chan struct{}, 1)
	a.Notify(bell)
	e.clock.Advance(6 * time.Minute) // b is past its MaxPollInterval
	e.s.Expire()
	require.True(t, rang(bell), "the eviction rang")
	require.Equal(t, group.PreparingRebalance.String(), e.describe(t, "g").State)
}

// Committing nothing stores nothing: no group without offsets appears.
func TestEmptyCommitStoresNothing(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	d := newDriver(t, a)
	gen := d.settle()
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{}))
	a.Leave()
	require.NoError(t, e.s.SetOffsets("h", nil, nil))
	e.s.Expire() // forgets "g": no members, no offsets
	require.Empty(t, e.names(t))
	require.Equal(t, Info{State: group.Dead.String(), Committed: map[TopicPartition]int64{}}, e.describe(t, "g"))
	require.Equal(t, Info{State: group.Dead.String(), Committed: map[TopicPartition]int64{}}, e.describe(t, "h"))
}

// A member past its MaxPollInterval no longer counts, whether or not
// anything has evicted it yet.
func TestTimedOutMembersDoNotCount(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	newDriver(t, a).settle()
	e.clock.Advance(time.Hour)
	require.Empty(t, e.names(t))
	require.NoError(t, e.s.SetOffsets("g", map[TopicPartition]int64{tp("t", 0): 3}, nil))
	require.Equal(t, []string{"g"}, e.names(t))
	e.join(t, "g", group.RoundRobinBalancer{}, req("t")) // the old balancer went with a
}

// Expire forgets groups with neither members nor offsets.
func TestExpireForgetsEmptyGroups(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	newDriver(t, a).settle()
	a.Leave()
	require.Equal(t, group.Empty.String(), e.describe(t, "g").State)
	e.s.Expire()
	require.Equal(t, Info{State: group.Dead.String(), Committed: map[TopicPartition]int64{}}, e.describe(t, "g"))
	require.Empty(t, e.s.groups)
}

// Each completed rebalance is stored with what it assigned; a new service
// on the same catalog describes it and goes on from its generation; a group
// that never committed is forgotten, record included, once empty.
func TestGenerationsAreStored(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join(t, "g", group.RoundRobinBalancer{}, group.JoinRequest{InstanceID: "i", Topics: []string{"u"}, MaxPollInterval: time.Minute})
	gen := newDriver(t, a).settle()
	info := e.describe(t, "g")
	require.NotNil(t, info.Last)
	require.Equal(t, Generation{Generation: gen, Balancer: "roundrobin", Completed: t0, Members: []group.MemberInfo{{
		ID: a.ID(), InstanceID: "i", Topics: []string{"u"}, Assignment: []TopicPartition{tp("u", 0), tp("u", 1)},
	}}}, *info.Last)
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("u", 0): 1}))
	a.Leave()

	s2 := New(Config{Catalog: e.cat, Partitions: e.parts.Partitions, Now: e.clock.Now, OffsetsRetention: time.Hour})
	info, err := s2.Describe("g")
	require.NoError(t, err)
	require.Equal(t, group.Empty.String(), info.State)
	require.Equal(t, gen, info.Generation, "the stored generation, with no live state")
	require.Empty(t, info.Members)
	b, err := s2.Join("g", group.RangeBalancer{}, req("u"))
	require.NoError(t, err)
	next := newDriver(t, b).settle()
	require.Equal(t, gen+1, next, "generations go on from the stored one")
	require.Equal(t, next, e.describe(t, "g").Last.Generation, "both services read the one catalog")

	// A group that never committed: Dead once empty, with nothing stored.
	c := e.join(t, "nocommit", group.RangeBalancer{}, req("t"))
	newDriver(t, c).settle()
	require.NotNil(t, e.describe(t, "nocommit").Last)
	c.Leave()
	e.s.Expire()
	require.Equal(t, Info{State: group.Dead.String(), Committed: map[TopicPartition]int64{}}, e.describe(t, "nocommit"))
	require.NotNil(t, e.describe(t, "g").Last, "a group with offsets keeps it")
}

// A group's rebalance and eviction counts go on when a new balancer's
// coordinator replaces its state, and start again once the group is
// dropped; the service's totals never go down.
func TestRebalanceAndEvictionCounts(t *testing.T) {
	e := newEnv(t, nil)
	counts := func(name string, rebalances, evictions, totalRebalances, totalEvictions int64) {
		t.Helper()
		info := e.describe(t, name)
		require.Equal(t, [2]int64{rebalances, evictions}, [2]int64{info.Rebalances, info.Evictions}, "the group's")
		r, ev := e.s.Totals()
		require.Equal(t, [2]int64{totalRebalances, totalEvictions}, [2]int64{r, ev}, "the totals")
	}
	counts("g", 0, 0, 0, 0)
	a := e.join(t, "g", group.RangeBalancer{}, req("t"))
	gen := newDriver(t, a).settle()
	counts("g", 1, 0, 1, 0)
	require.NoError(t, a.Commit(gen, map[TopicPartition]int64{tp("t", 0): 1}))
	a.Leave()
	counts("g", 1, 0, 1, 0) // emptied: no rebalance completes

	b := e.join(t, "g", group.RoundRobinBalancer{}, req("t"))
	newDriver(t, b).settle()
	counts("g", 2, 0, 2, 0)

	// b stops polling: evicted, found by the service's expiry.
	e.clock.Advance(5 * time.Minute)
	e.s.Expire()
	require.Empty(t, e.describe(t, "g").Members)
	counts("g", 2, 1, 2, 1)

	require.NoError(t, e.s.Delete("g"))
	counts("g", 0, 0, 2, 1)
}
