package group

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Randomized property tests. Every case comes from a fixed seed, so a
// failure names the seed that reproduces it.

// genOptions shapes a random group.
type genOptions struct {
	identical  bool // all members subscribe to the same topics
	maxTopics  int
	maxParts   int // partitions per topic, 0..maxParts
	maxMembers int
	minTopics  int // at least this many topics (≤ maxTopics)
	minMembers int // at least this many members (≤ maxMembers)
}

// randomGroup returns random members (unique IDs, some static, random
// subscriptions, no Owned) and partition counts, including topics with no
// partitions, subscribed topics missing from the map and a topic nobody
// subscribes to.
func randomGroup(r *rand.Rand, o genOptions) ([]Member, map[string]int32) {
	counts := map[string]int32{"unsubscribed": 3}
	topics := make([]string, o.minTopics+r.IntN(o.maxTopics-o.minTopics+1))
	for i := range topics {
		topics[i] = fmt.Sprintf("t%d", i)
		if r.IntN(10) > 0 { // else: missing from the map
			counts[topics[i]] = int32(r.IntN(o.maxParts + 1))
		}
	}
	subset := func() []string {
		var s []string
		for _, t := range topics {
			if r.IntN(2) == 0 {
				s = append(s, t)
			}
		}
		return s
	}
	shared := subset()
	n := o.minMembers + r.IntN(o.maxMembers-o.minMembers+1)
	members := make([]Member, n)
	for i, id := range r.Perm(n) {
		m := Member{ID: fmt.Sprintf("m%02d", id)}
		if r.IntN(3) == 0 {
			m.InstanceID = fmt.Sprintf("i%02d", r.IntN(100))
		}
		if o.identical {
			m.Topics = slices.Clone(shared)
		} else {
			m.Topics = subset()
		}
		members[i] = m
	}
	return members, counts
}

// randomOwned fills Owned: from a previous assignment (perhaps of fewer or
// other members), as random claims (stale, duplicated, out of range,
// unsubscribed), or a mix.
func randomOwned(r *rand.Rand, members []Member, counts map[string]int32) []Member {
	out := make([]Member, len(members))
	copy(out, members)
	switch r.IntN(4) {
	case 0: // nothing owned
	case 1, 2: // a previous balanced assignment over a subset of the members
		var prev []Member
		for _, m := range members {
			if r.IntN(4) > 0 {
				prev = append(prev, m)
			}
		}
		a := StickyBalancer{}.Assign(prev, counts)
		for i := range out {
			out[i].Owned = a[out[i].ID]
		}
	case 3: // garbage, from random generations
		for i := range out {
			out[i].Generation = r.IntN(3)
			for range r.IntN(6) {
				t := fmt.Sprintf("t%d", r.IntN(5))
				out[i].Owned = append(out[i].Owned, TopicPartition{t, int32(r.IntN(10) - 1)})
			}
		}
	}
	return out
}

// eachCase runs f for n seeded random cases.
func eachCase(t *testing.T, n int, f func(t *testing.T, r *rand.Rand)) {
	t.Helper()
	if testing.Short() {
		n /= 10
	}
	for seed := range uint64(n) {
		r := rand.New(rand.NewPCG(seed, 0x67726f7570))
		ok := t.Run("", func(t *testing.T) { f(t, r) })
		if !ok {
			t.Fatalf("failed with seed %d", seed)
		}
	}
}

// subscribedPartitions returns, per topic subscribed by some member with a
// positive count, its partition count.
func subscribedPartitions(members []Member, counts map[string]int32) map[string]int32 {
	out := map[string]int32{}
	for _, m := range members {
		for _, t := range m.Topics {
			if counts[t] > 0 {
				out[t] = counts[t]
			}
		}
	}
	return out
}

// checkValid checks what holds for every balancer: every member has a
// sorted, non-nil entry; members only get partitions of topics they
// subscribe to that exist; every subscribed partition has exactly one
// owner; nothing else is assigned.
func checkValid(t *testing.T, members []Member, counts map[string]int32, got map[string][]TopicPartition) {
	t.Helper()
	require.Len(t, got, len(members))
	owners := map[TopicPartition]int{}
	for _, m := range members {
		ps, ok := got[m.ID]
		require.True(t, ok, "member %s missing", m.ID)
		require.NotNil(t, ps, "member %s has nil", m.ID)
		require.True(t, slices.IsSortedFunc(ps, compareTP), "member %s unsorted: %v", m.ID, ps)
		for _, tp := range ps {
			require.Contains(t, m.Topics, tp.Topic, "member %s got %v", m.ID, tp)
			require.True(t, tp.Partition >= 0 && tp.Partition < counts[tp.Topic], "member %s got %v", m.ID, tp)
			owners[tp]++
		}
	}
	want := subscribedPartitions(members, counts)
	n := 0
	for topic, count := range want {
		for p := range count {
			require.Equal(t, 1, owners[TopicPartition{topic, p}], "owners of %s-%d", topic, p)
		}
		n += int(count)
	}
	require.Len(t, owners, n, "partitions of unsubscribed topics assigned")
}

// effective returns a member's subscribed topics that have partitions.
func effective(m Member, counts map[string]int32) []string {
	var ts []string
	for _, t := range m.Topics {
		if counts[t] > 0 && !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// checkBalanced checks that members with (identical) subscriptions differ
// by at most one partition.
func checkBalanced(t *testing.T, members []Member, counts map[string]int32, got map[string][]TopicPartition) {
	t.Helper()
	lo, hi := -1, -1
	for _, m := range members {
		if len(effective(m, counts)) == 0 {
			require.Empty(t, got[m.ID])
			continue
		}
		n := len(got[m.ID])
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	require.LessOrEqual(t, hi-lo, 1, "unbalanced: %v", got)
}

func TestPropertyValid(t *testing.T) {
	eachCase(t, 3000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: r.IntN(2) == 0, maxTopics: 4, maxParts: 8, maxMembers: 7})
		members = randomOwned(r, members, counts)
		for _, b := range Balancers() {
			got := b.Assign(members, counts)
			checkValid(t, members, counts, got)
			// The order of members in the input does not matter.
			shuffled := slices.Clone(members)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			require.Equal(t, got, b.Assign(shuffled, counts), b.Name())
		}
	})
}

func TestPropertyBalancedWithIdenticalSubscriptions(t *testing.T) {
	eachCase(t, 3000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: true, maxTopics: 4, maxParts: 12, maxMembers: 9})
		members = randomOwned(r, members, counts)
		// Range is not balanced across topics; see TestPropertyRange.
		for _, b := range []Balancer{RoundRobinBalancer{}, StickyBalancer{}, CooperativeStickyBalancer{}} {
			checkBalanced(t, members, counts, b.Assign(members, counts))
		}
	})
}

func TestPropertyRange(t *testing.T) {
	// Per topic: the subscribers in sorted order get contiguous ranges,
	// the first n%c one longer.
	eachCase(t, 3000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{maxTopics: 4, maxParts: 10, maxMembers: 7})
		got := RangeBalancer{}.Assign(members, counts)
		checkValid(t, members, counts, got)
		sorted := SortMembers(members)
		for topic, n := range subscribedPartitions(members, counts) {
			var subs []Member
			for _, m := range sorted {
				if slices.Contains(m.Topics, topic) {
					subs = append(subs, m)
				}
			}
			c := int32(len(subs))
			next := int32(0)
			for k, m := range subs {
				size := n / c
				if int32(k) < n%c {
					size++
				}
				var mine []int32
				for _, tp := range got[m.ID] {
					if tp.Topic == topic {
						mine = append(mine, tp.Partition)
					}
				}
				want := []int32{}
				for p := next; p < next+size; p++ {
					want = append(want, p)
				}
				if len(mine) == 0 {
					mine = []int32{}
				}
				require.Equal(t, want, mine, "topic %s member %s", topic, m.ID)
				next += size
			}
		}
	})
}

func TestPropertyRoundRobinMatchesReference(t *testing.T) {
	eachCase(t, 3000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{maxTopics: 4, maxParts: 10, maxMembers: 7})
		// The reference: Kafka's loop, literally.
		want := map[string][]TopicPartition{}
		for _, m := range members {
			want[m.ID] = []TopicPartition{}
		}
		var all []TopicPartition
		for topic, n := range subscribedPartitions(members, counts) {
			for p := range n {
				all = append(all, TopicPartition{topic, p})
			}
		}
		slices.SortFunc(all, compareTP)
		sorted := SortMembers(members)
		i := 0
		for _, tp := range all {
			for !slices.Contains(sorted[i%len(sorted)].Topics, tp.Topic) {
				i++
			}
			id := sorted[i%len(sorted)].ID
			want[id] = append(want[id], tp)
			i++
		}
		for _, ps := range want {
			slices.SortFunc(ps, compareTP)
		}
		require.Equal(t, want, RoundRobinBalancer{}.Assign(members, counts))
	})
}

// stickyCost is what the sticky assignors optimize: first the sum of
// squared loads (smaller is more balanced), then the number of validly
// owned partitions that change owner.
type stickyCost struct {
	sumSquares int
	moved      int
}

// validOwners returns the previous owner of each partition as the sticky
// assignors see it: claims of subscribed, existing partitions, the latest
// Generation winning, then the first member in SortMembers order.
func validOwners(members []Member, counts map[string]int32) map[TopicPartition]string {
	prev, gen := map[TopicPartition]string{}, map[TopicPartition]int{}
	for _, m := range SortMembers(members) {
		for _, tp := range m.Owned {
			if !slices.Contains(m.Topics, tp.Topic) || tp.Partition < 0 || tp.Partition >= counts[tp.Topic] {
				continue
			}
			if _, taken := prev[tp]; !taken || m.Generation > gen[tp] {
				prev[tp], gen[tp] = m.ID, m.Generation
			}
		}
	}
	return prev
}

func cost(t testing.TB, members []Member, counts map[string]int32, a map[string][]TopicPartition) stickyCost {
	t.Helper()
	prev := validOwners(members, counts)
	var c stickyCost
	for id, ps := range a {
		c.sumSquares += len(ps) * len(ps)
		for _, tp := range ps {
			if o, ok := prev[tp]; ok && o != id {
				c.moved++
			}
		}
	}
	return c
}

// bruteForce returns the least cost over every assignment of each
// subscribed partition to one of its subscribers.
func bruteForce(members []Member, counts map[string]int32) stickyCost {
	prev := validOwners(members, counts)
	type choice struct {
		tp   TopicPartition
		subs []int
	}
	var parts []choice
	for topic, n := range subscribedPartitions(members, counts) {
		var subs []int
		for i, m := range members {
			if slices.Contains(m.Topics, topic) {
				subs = append(subs, i)
			}
		}
		for p := range n {
			parts = append(parts, choice{TopicPartition{topic, p}, subs})
		}
	}
	load := make([]int, len(members))
	best := stickyCost{sumSquares: -1}
	var walk func(k, moved int)
	walk = func(k, moved int) {
		if k == len(parts) {
			sq := 0
			for _, l := range load {
				sq += l * l
			}
			c := stickyCost{sq, moved}
			if best.sumSquares < 0 || c.sumSquares < best.sumSquares || (c.sumSquares == best.sumSquares && c.moved < best.moved) {
				best = c
			}
			return
		}
		for _, i := range parts[k].subs {
			m := moved
			if o, ok := prev[parts[k].tp]; ok && o != members[i].ID {
				m++
			}
			load[i]++
			walk(k+1, m)
			load[i]--
		}
	}
	walk(0, 0)
	if best.sumSquares < 0 {
		best.sumSquares = 0
	}
	return best
}

func TestPropertyStickyOptimalSmall(t *testing.T) {
	// Against exhaustive search, for any subscriptions and claims: as
	// balanced as possible, and then as few moves as possible.
	eachCase(t, 1500, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: r.IntN(4) == 0, minTopics: 1, maxTopics: 3, maxParts: 4, minMembers: 2, maxMembers: 4})
		if len(subscribedPartitionsList(members, counts)) > 7 {
			return // keep the search small
		}
		members = randomOwned(r, members, counts)
		want := bruteForce(members, counts)
		for _, fast := range []bool{true, false} {
			got := assignSticky(members, counts, fast)
			checkValid(t, members, counts, got)
			require.Equal(t, want, cost(t, members, counts, got), "fast=%v", fast)
		}
	})
}

func subscribedPartitionsList(members []Member, counts map[string]int32) []TopicPartition {
	var out []TopicPartition
	for topic, n := range subscribedPartitions(members, counts) {
		for p := range n {
			out = append(out, TopicPartition{topic, p})
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}

// checkNoImprovingChain checks the balance condition for arbitrary
// subscriptions: no partition can be passed along a chain of members (each
// handing one of its partitions to a subscriber of that partition's topic)
// from a member with l partitions to one with l-2 or fewer.
func checkNoImprovingChain(t *testing.T, members []Member, counts map[string]int32, got map[string][]TopicPartition) {
	t.Helper()
	for _, from := range members {
		seen := map[string]bool{from.ID: true}
		queue := []string{from.ID}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			if len(got[u]) <= len(got[from.ID])-2 {
				t.Fatalf("a chain moves load from %s (%d) to %s (%d): %v", from.ID, len(got[from.ID]), u, len(got[u]), got)
			}
			for _, tp := range got[u] {
				for _, w := range members {
					if !seen[w.ID] && slices.Contains(w.Topics, tp.Topic) {
						seen[w.ID] = true
						queue = append(queue, w.ID)
					}
				}
			}
		}
	}
}

func TestPropertyStickyBalancedGeneral(t *testing.T) {
	eachCase(t, 1500, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{maxTopics: 5, maxParts: 12, maxMembers: 9})
		members = randomOwned(r, members, counts)
		got := StickyBalancer{}.Assign(members, counts)
		checkValid(t, members, counts, got)
		checkNoImprovingChain(t, members, counts, got)
	})
}

func TestPropertyStickyFastPathMatchesGeneral(t *testing.T) {
	// With identical subscriptions both algorithms must reach the same
	// (optimal) cost; the general one is checked against brute force above.
	eachCase(t, 1000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: true, maxTopics: 4, maxParts: 20, maxMembers: 9})
		members = randomOwned(r, members, counts)
		fast := assignSticky(members, counts, true)
		general := assignSticky(members, counts, false)
		checkValid(t, members, counts, general)
		checkBalanced(t, members, counts, general)
		require.Equal(t, cost(t, members, counts, fast), cost(t, members, counts, general))
	})
}

// minMoves is the fewest moves a balanced assignment allows with identical
// subscriptions: with q = P/M and r = P%M, the r members that own the most
// keep up to q+1, the others up to q.
func minMoves(members []Member, counts map[string]int32) int {
	prev := validOwners(members, counts)
	owned := map[string]int{}
	for _, o := range prev {
		owned[o]++
	}
	var subscribers []int
	for _, m := range members {
		if len(effective(m, counts)) > 0 {
			subscribers = append(subscribers, owned[m.ID])
		}
	}
	if len(subscribers) == 0 {
		return 0
	}
	total := len(subscribedPartitionsList(members, counts))
	q, r := total/len(subscribers), total%len(subscribers)
	slices.Sort(subscribers)
	slices.Reverse(subscribers)
	moved := 0
	for k, n := range subscribers {
		quota := q
		if k < r {
			quota++
		}
		moved += max(0, n-quota)
	}
	return moved
}

func TestPropertyStickyMinimalMovesIdentical(t *testing.T) {
	// Any claims, identical subscriptions: balanced, and exactly the
	// unavoidable number of moves.
	eachCase(t, 3000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: true, maxTopics: 4, maxParts: 16, maxMembers: 9})
		members = randomOwned(r, members, counts)
		for _, b := range []Balancer{StickyBalancer{}, CooperativeStickyBalancer{}} {
			got := b.Assign(members, counts)
			checkBalanced(t, members, counts, got)
			require.Equal(t, minMoves(members, counts), cost(t, members, counts, got).moved)
		}
	})
}

func TestPropertyStickyLeaveJoin(t *testing.T) {
	// A group living through joins and leaves, each generation's
	// assignment becoming the next one's Owned. No partition moves between
	// two members that both stay unless balance needs it.
	eachCase(t, 300, func(t *testing.T, r *rand.Rand) {
		identical := r.IntN(2) == 0
		members, counts := randomGroup(r, genOptions{identical: identical, maxTopics: 4, maxParts: 16, maxMembers: 8})
		topics := members2topics(members)
		next := 100
		var a map[string][]TopicPartition
		for range 10 {
			switch {
			case len(members) > 0 && r.IntN(2) == 0: // one leaves
				i := r.IntN(len(members))
				members = slices.Delete(members, i, i+1)
			default: // one joins
				m := Member{ID: fmt.Sprintf("m%03d", next)}
				next++
				if identical && len(members) > 0 {
					m.Topics = slices.Clone(members[0].Topics)
				} else {
					for _, t := range topics {
						if r.IntN(2) == 0 {
							m.Topics = append(m.Topics, t)
						}
					}
				}
				members = append(members, m)
			}
			members = withOwned(members, a)
			a = StickyBalancer{}.Assign(members, counts)
			checkValid(t, members, counts, a)
			checkNoImprovingChain(t, members, counts, a)
			if identical {
				checkBalanced(t, members, counts, a)
				require.Equal(t, minMoves(members, counts), cost(t, members, counts, a).moved)
			} else if len(subscribedPartitionsList(members, counts)) <= 7 && len(members) <= 4 {
				require.Equal(t, bruteForce(members, counts), cost(t, members, counts, a))
			}
		}
	})
}

// members2topics returns the topics any member subscribes to.
func members2topics(members []Member) []string {
	var ts []string
	for _, m := range members {
		for _, t := range m.Topics {
			if !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	slices.Sort(ts)
	return ts
}

func TestPropertyStickyLeaveJoinOneStep(t *testing.T) {
	// The brief's bound, spelled out for one leave or one join from a
	// balanced sticky assignment with identical subscriptions: the
	// partitions that move off members that stay are exactly the excess
	// over the new quotas.
	eachCase(t, 2000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: true, maxTopics: 3, maxParts: 30, maxMembers: 10})
		if len(members) == 0 {
			return
		}
		before := StickyBalancer{}.Assign(members, counts)
		after := withOwned(members, before)
		if r.IntN(2) == 0 {
			i := r.IntN(len(after))
			after = slices.Delete(after, i, i+1)
		} else {
			after = append(after, Member{ID: "new", Topics: slices.Clone(members[0].Topics)})
		}
		got := StickyBalancer{}.Assign(after, counts)
		checkBalanced(t, after, counts, got)
		moved := 0
		for _, m := range after {
			for _, tp := range before[m.ID] {
				if !slices.Contains(got[m.ID], tp) {
					moved++
				}
			}
		}
		require.Equal(t, minMoves(after, counts), moved)
	})
}

func TestPropertyCooperativeStep(t *testing.T) {
	eachCase(t, 3000, func(t *testing.T, r *rand.Rand) {
		members, counts := randomGroup(r, genOptions{identical: r.IntN(2) == 0, maxTopics: 4, maxParts: 10, maxMembers: 7})
		members = randomOwned(r, members, counts)
		current := map[string][]TopicPartition{}
		for _, m := range members {
			current[m.ID] = m.Owned
		}
		// Some current owners are leaving: they appear in current only.
		all := subscribedPartitionsList(members, counts)
		for i := range r.IntN(3) {
			var owned []TopicPartition
			for _, tp := range all {
				if r.IntN(4) == 0 {
					owned = append(owned, tp)
				}
			}
			current[fmt.Sprintf("leaving%d", i)] = owned
		}
		target := CooperativeStickyBalancer{}.Assign(members, counts)

		step, followUp := CooperativeStep(current, target)
		require.Len(t, step, len(target))
		withheld := false
		for id, want := range target {
			got, ok := step[id]
			require.True(t, ok)
			require.NotNil(t, got)
			require.True(t, slices.IsSortedFunc(got, compareTP))
			for _, tp := range got {
				require.Contains(t, want, tp, "step gives %s %v beyond the target", id, tp)
				// Never to a member while another (staying) member owns it.
				for o, owned := range current {
					if _, stays := target[o]; stays && o != id {
						require.NotContains(t, owned, tp, "%v given to %s while %s owns it", tp, id, o)
					}
				}
			}
			for _, tp := range want {
				if slices.Contains(got, tp) {
					continue
				}
				withheld = true
				// Withheld only because a staying member owns it.
				owned := false
				for o, ps := range current {
					if _, stays := target[o]; stays && o != id && slices.Contains(ps, tp) {
						owned = true
					}
				}
				require.True(t, owned, "%v withheld from %s for no reason", tp, id)
			}
		}
		require.Equal(t, withheld, followUp)

		// After the revocations the members hold exactly step; the
		// follow-up rebalance completes the move.
		step2, followUp2 := CooperativeStep(step, target)
		require.False(t, followUp2)
		require.Equal(t, target, step2)

		same, followUp3 := CooperativeStep(target, target)
		require.False(t, followUp3)
		require.Equal(t, target, same)
	})
}

// randomStart returns a random valid assignment of in's partitions.
func randomStart(r *rand.Rand, in *groupInput) []int32 {
	owner := make([]int32, in.total)
	for p := range owner {
		subs := in.subscribers[in.topicOf(p)]
		owner[p] = subs[r.IntN(len(subs))]
	}
	return owner
}

func TestPropertyOptimizeFromAnyStart(t *testing.T) {
	// The cycle canceling reaches the optimum from any starting point, not
	// just from the greedy one (which is often optimal already).
	eachCase(t, 1500, func(t *testing.T, r *rand.Rand) {
		small := r.IntN(2) == 0
		o := genOptions{minTopics: 1, maxTopics: 5, maxParts: 12, minMembers: 1, maxMembers: 9, identical: r.IntN(4) == 0}
		if small {
			o = genOptions{minTopics: 1, maxTopics: 3, maxParts: 4, minMembers: 2, maxMembers: 4, identical: r.IntN(4) == 0}
		}
		members, counts := randomGroup(r, o)
		members = randomOwned(r, members, counts)
		if small && len(subscribedPartitionsList(members, counts)) > 7 {
			return
		}
		in := normalize(members, counts)
		prev := in.previousOwners()
		owner := randomStart(r, in)
		in.optimize(prev, owner)
		got := in.result(members, owner)
		checkValid(t, members, counts, got)
		checkNoImprovingChain(t, members, counts, got)
		want := cost(t, members, counts, StickyBalancer{}.Assign(members, counts))
		if small {
			want = bruteForce(members, counts)
		}
		require.Equal(t, want, cost(t, members, counts, got))
	})
}
