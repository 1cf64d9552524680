package stream

// Group membership and rebalances: hand-over, callbacks, eviction, static members, fencing.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

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

// Issue #13: the eager sticky balancer keeps partitions where they were in
// a live group. Members revoke everything at the start of an eager
// rebalance, yet what they held still counts as theirs for the assignment:
// a member leaving moves only its own partitions, one joining takes only
// what the others must give up, and a member slow to rejoin (the group
// waits for it) keeps what it had.
func TestEagerStickyKeepsPartitionsInALiveGroup(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 6}))
	tr := newCGTracker()
	opts := ConsumerOptions{Reset: ResetEarliest, Balancer: StickyBalancer{}}
	ms := map[string]*cgMember{}
	start := func(name string) {
		ms[name] = cgStart(t, b, tr, name, "g", []string{"t"}, opts, nil)
	}
	// moved counts the partitions whose owner differs between two
	// snapshots of tr.owners(), and checks how many each member holds.
	moved := func(before, after map[TopicPartition]string, counts map[string]int) int {
		t.Helper()
		n := 0
		for p := int32(0); p < 6; p++ {
			if before[cgTP("t", p)] != after[cgTP("t", p)] {
				n++
			}
		}
		held := map[string]int{}
		for _, o := range after {
			held[o]++
		}
		require.Equal(t, counts, held)
		return n
	}

	for _, name := range []string{"a", "b", "c"} {
		start(name)
	}
	cgSettled(t, b, "g", tr, 6)
	before := tr.owners()

	// c leaves: only its two partitions move.
	ms["c"].close(t)
	cgSettled(t, b, "g", tr, 6)
	after := tr.owners()
	require.Equal(t, 2, moved(before, after, map[string]int{"a": 3, "b": 3}), "before %v, after %v", before, after)
	for tp, o := range before {
		if o != "c" {
			require.Equal(t, o, after[tp], "%s stayed with its owner, who stayed", tp)
		}
	}

	// d joins: a and b give up one partition each, nothing else moves.
	before = after
	start("d")
	cgSettled(t, b, "g", tr, 6)
	after = tr.owners()
	require.Equal(t, 2, moved(before, after, map[string]int{"a": 2, "b": 2, "d": 2}), "before %v, after %v", before, after)

	// a hangs outside Poll when e joins: the rebalance waits for it
	// (b and d revoke, a still holds its partitions), and once a is back
	// only the one partition e needs moves.
	before = after
	ms["a"].freeze()
	start("e")
	require.Eventually(t, func() bool {
		for _, o := range tr.owners() {
			if o != "a" {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "b and d revoke while a hangs")
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "PreparingRebalance", info.State)
	ms["a"].unfreeze()
	cgSettled(t, b, "g", tr, 6)
	after = tr.owners()
	require.Equal(t, 1, moved(before, after, map[string]int{"a": 2, "b": 2, "d": 1, "e": 1}), "before %v, after %v", before, after)
	for tp, o := range before {
		if o == "a" {
			require.Equal(t, "a", after[tp], "the slow member keeps %s", tp)
		}
	}
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
		// a alone, a and b, a alone again: three rebalances, one eviction.
		require.Equal(t, int64(3), info.Rebalances)
		require.Equal(t, int64(1), info.Evictions)
		st := b.Stats()
		require.Equal(t, int64(3), st.Rebalances)
		require.Equal(t, int64(1), st.Evictions)

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
	require.Equal(t, "range", info.Balancer, "the balancer its last members used")
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
	b := openBroker(t, "", &Options{Sync: SyncNever}) // keys spread the records
	const parts, total = 8, 2000
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts}))
	ctx := t.Context()

	pubDone := make(chan error, 1)
	go func() {
		for i := range total {
			if err := b.Publish(ctx, &Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
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
