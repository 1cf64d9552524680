package group

import (
	"container/heap"
	"slices"
)

// StickyBalancer is Kafka's StickyAssignor ("sticky", Eager). Its
// assignment is, first, as balanced as the subscriptions allow and, second,
// keeps as many partitions as possible with their previous owners
// (Member.Owned), so that a rebalance moves few partitions.
//
// Balanced means: with identical subscriptions the partition counts of the
// members differ by at most one; in general the vector of counts is the most
// even one the subscriptions permit (no partition can be passed along a
// chain of subscribers from a member with k+2 or more partitions to one with
// k or fewer). Among the balanced assignments it picks one that keeps the
// most previous owners.
//
// Where several assignments are equally good the choice is deterministic,
// and it starts from this: every member keeps what it validly owned; the
// other partitions go one by one to the least loaded subscriber, ties to the
// first in SortMembers order (topics with fewer subscribers first, each
// topic's partitions in order). Only strictly better changes are made from
// there, a member over its share giving up its highest-numbered partitions
// first. (With identical subscriptions, a member over its share keeps its
// lowest-numbered partitions, and the members that owned the most keep the
// q+1 places.)
//
// A partition claimed in Owned by two members (stale information, say from a
// member that missed a generation) counts as owned by the one with the
// latest Generation only, by the first of them in SortMembers order if
// their generations are equal. Owned partitions of topics the member no longer
// subscribes to, or that no longer exist, are ignored.
//
// The result is deterministic for the same input. Identical subscriptions,
// the common case, take O(P log M) time for P partitions and M members;
// different subscriptions need a min-cost-flow search whose cost grows with
// the number of partitions that must move. The zero value is ready to use.
type StickyBalancer struct{}

// Name returns "sticky".
func (StickyBalancer) Name() string { return "sticky" }

// Protocol returns Eager.
func (StickyBalancer) Protocol() Protocol { return Eager }

// Assign implements Balancer.
func (StickyBalancer) Assign(members []Member, partitions map[string]int32) map[string][]TopicPartition {
	return assignSticky(members, partitions, true)
}

// CooperativeStickyBalancer is Kafka's CooperativeStickyAssignor
// ("cooperative-sticky", Cooperative). Assign returns the same target as
// StickyBalancer; the cooperative part is how the coordinator applies it:
// a partition moving from A to B is only revoked from A in this generation
// and reaches B in the next one. CooperativeStep computes what each member
// may hold meanwhile. The zero value is ready to use.
type CooperativeStickyBalancer struct{}

// Name returns "cooperative-sticky".
func (CooperativeStickyBalancer) Name() string { return "cooperative-sticky" }

// Protocol returns Cooperative.
func (CooperativeStickyBalancer) Protocol() Protocol { return Cooperative }

// Assign implements Balancer. It returns the target assignment, the same as
// StickyBalancer's; pass it through CooperativeStep before handing it out.
func (CooperativeStickyBalancer) Assign(members []Member, partitions map[string]int32) map[string][]TopicPartition {
	return assignSticky(members, partitions, true)
}

// assignSticky is the sticky assignment; fast allows the shortcut for
// identical subscriptions (tests turn it off to check both paths agree).
func assignSticky(members []Member, partitions map[string]int32, fast bool) map[string][]TopicPartition {
	in := normalize(members, partitions)
	prev := in.previousOwners()
	var owner []int32
	if fast && in.identicalSubscriptions() {
		owner = in.stickyIdentical(prev)
	} else {
		owner = in.stickyGeneral(prev)
	}
	return in.result(members, owner)
}

// previousOwners returns, per global partition, the index of the member that
// validly owns it (subscribed, partition exists; of several claimants the
// one with the latest generation, then the first in member order), or -1.
func (in *groupInput) previousOwners() []int32 {
	prev := make([]int32, in.total)
	for p := range prev {
		prev[p] = -1
	}
	for i, m := range in.members {
		for _, tp := range m.Owned {
			t, ok := in.index[tp.Topic]
			if !ok || tp.Partition < 0 || tp.Partition >= in.counts[t] || !in.subscribed(int32(i), t) {
				continue
			}
			if p := in.start[t] + int(tp.Partition); prev[p] < 0 || m.Generation > in.members[prev[p]].Generation {
				prev[p] = int32(i)
			}
		}
	}
	return prev
}

// identicalSubscriptions reports whether every member that subscribes to
// some topic with partitions subscribes to the same such topics.
func (in *groupInput) identicalSubscriptions() bool {
	var first []int32
	for _, ts := range in.memberTopics {
		switch {
		case len(ts) == 0:
		case first == nil:
			first = ts
		case !slices.Equal(first, ts):
			return false
		}
	}
	return true
}

// stickyIdentical is the sticky assignment when all subscribing members
// share one subscription, so any of them can take any partition. With M
// such members and P partitions each gets q = P/M, r = P%M of them q+1.
// Keeping the most means giving the r extra places to the members that
// owned the most; each member keeps its lowest-numbered owned partitions up
// to its quota and the rest go, in order, to the least loaded member.
func (in *groupInput) stickyIdentical(prev []int32) []int32 {
	owner := make([]int32, in.total)
	var eligible []int32
	for i, ts := range in.memberTopics {
		if len(ts) > 0 {
			eligible = append(eligible, int32(i))
		}
	}
	if len(eligible) == 0 {
		return owner // no topics, so no partitions
	}
	q, r := in.total/len(eligible), in.total%len(eligible)

	owned := make([][]int32, len(in.members))
	for p, o := range prev {
		if o >= 0 {
			owned[o] = append(owned[o], int32(p))
		}
	}
	// The r members owning the most (more than q) get quota q+1; extra
	// counts the q+1 places left for whoever is filled last.
	quota := make([]int, len(in.members))
	var rich []int32
	for _, i := range eligible {
		quota[i] = q
		if len(owned[i]) > q {
			rich = append(rich, i)
		}
	}
	slices.SortStableFunc(rich, func(a, b int32) int { return len(owned[b]) - len(owned[a]) })
	extra := r
	for _, i := range rich[:min(r, len(rich))] {
		quota[i] = q + 1
		extra--
	}

	for p := range owner {
		owner[p] = -1
	}
	load := make([]int, len(in.members))
	for _, i := range eligible {
		for _, p := range owned[i][:min(len(owned[i]), quota[i])] {
			owner[p] = i
		}
		load[i] = min(len(owned[i]), quota[i])
	}
	canTake := func(i int32) bool {
		return load[i] < quota[i] || (load[i] == q && quota[i] == q && extra > 0)
	}
	h := &loadHeap{load: load}
	for _, i := range eligible {
		if canTake(i) {
			h.members = append(h.members, i)
		}
	}
	heap.Init(h)
	for p, o := range owner {
		if o >= 0 {
			continue
		}
		for !canTake(h.members[0]) { // only the extra places run out
			heap.Pop(h)
		}
		i := h.members[0]
		if load[i] == quota[i] {
			quota[i]++
			extra--
		}
		owner[p] = i
		load[i]++
		if canTake(i) {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return owner
}

// loadHeap is a min-heap of member indices by (load, index).
type loadHeap struct {
	members []int32
	load    []int
}

// Len implements heap.Interface.
func (h *loadHeap) Len() int { return len(h.members) }

// Less implements heap.Interface: by load, then member order.
func (h *loadHeap) Less(a, b int) bool {
	x, y := h.members[a], h.members[b]
	if h.load[x] != h.load[y] {
		return h.load[x] < h.load[y]
	}
	return x < y
}

// Swap implements heap.Interface.
func (h *loadHeap) Swap(a, b int) { h.members[a], h.members[b] = h.members[b], h.members[a] }

// Push implements heap.Interface.
func (h *loadHeap) Push(x any) { h.members = append(h.members, x.(int32)) }

// Pop implements heap.Interface.
func (h *loadHeap) Pop() any {
	x := h.members[len(h.members)-1]
	h.members = h.members[:len(h.members)-1]
	return x
}
