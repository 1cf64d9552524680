package group

import (
	"cmp"
	"slices"
	"strconv"
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String formats tp as "topic/partition" ("orders/3"), the form every
// message of this module uses. Unlike Kafka's "topic-partition" it cannot
// be misread: a topic name may end in '-' and digits but holds no '/'.
// It is also the partition's directory under the data directory's topics/.
func (tp TopicPartition) String() string {
	return tp.Topic + "/" + strconv.FormatInt(int64(tp.Partition), 10)
}

// compareTP orders partitions by topic, then partition number: the order of
// every slice this package returns.
func compareTP(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Member is a group member as the assignor sees it.
type Member struct {
	// ID is the member id the coordinator handed out: unique in the group,
	// new on every (re)join of a dynamic member.
	ID string
	// InstanceID is the static membership id (Kafka's group.instance.id), ""
	// for a dynamic member. It survives restarts, so sorting by it gives a
	// restarted static member the same place and the same range/roundrobin
	// assignment.
	InstanceID string
	// Topics is the subscription. Duplicates are ignored.
	Topics []string
	// Owned is what the member holds now or, under the eager protocol,
	// held until it revoked everything to rejoin. Only the sticky assignors
	// read it; entries for topics the member no longer subscribes to, or
	// for partitions that no longer exist, are ignored.
	Owned []TopicPartition
	// Generation is the generation whose assignment Owned comes from
	// (Kafka's generation in the sticky assignors' subscription data).
	// When members claim the same partition, the claim of the latest
	// generation counts: the others are stale, from a member that missed
	// an assignment since. Only the sticky assignors read it.
	Generation int
}

// Protocol is a rebalance protocol: how members give up partitions.
type Protocol int

const (
	// Eager: at the start of every rebalance each member revokes everything
	// it owns (onPartitionsRevoked(all)), then receives its full new
	// assignment (onPartitionsAssigned(all)). Simple, but the whole group
	// stops consuming for the rebalance.
	Eager Protocol = iota
	// Cooperative (incremental): a member revokes only the partitions that
	// move away from it and keeps consuming the rest; a moving partition
	// reaches its new owner in a follow-up rebalance, after the old owner
	// gave it up. See CooperativeStep.
	Cooperative
)

// String returns "eager" or "cooperative".
func (p Protocol) String() string {
	switch p {
	case Eager:
		return "eager"
	case Cooperative:
		return "cooperative"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// Balancer computes an assignment.
//
// Implementations are pure functions of their arguments: they keep no state,
// do no I/O, do not modify the members or the map they are given, and return
// the same assignment for the same input (the order of members in the input
// slice does not matter).
type Balancer interface {
	// Name is Kafka's protocol name for the assignor: "range",
	// "roundrobin", "sticky" or "cooperative-sticky".
	Name() string
	// Protocol tells whether the assignor is used with the Eager or the
	// Cooperative rebalance protocol.
	Protocol() Protocol
	// Assign maps every member ID to its partitions (sorted by topic then
	// partition; empty slice, not missing, for members with none).
	// partitions gives each topic's partition count; topics nobody
	// subscribes to are ignored; subscribed topics missing from the map
	// (or with a count ≤ 0) have no partitions. Member IDs should be
	// unique; if one repeats, only its first occurrence in members counts.
	Assign(members []Member, partitions map[string]int32) map[string][]TopicPartition
}

// Compile-time checks that the four balancers implement Balancer.
var (
	_ Balancer = RangeBalancer{}
	_ Balancer = RoundRobinBalancer{}
	_ Balancer = StickyBalancer{}
	_ Balancer = CooperativeStickyBalancer{}
)

// Balancers returns one of each balancer, in the order Kafka lists them:
// range, roundrobin, sticky, cooperative-sticky.
func Balancers() []Balancer {
	return []Balancer{RangeBalancer{}, RoundRobinBalancer{}, StickyBalancer{}, CooperativeStickyBalancer{}}
}

// BalancerByName returns the balancer with Kafka's protocol name name
// ("range", "roundrobin", "sticky", "cooperative-sticky"), or false if there
// is none.
func BalancerByName(name string) (Balancer, bool) {
	for _, b := range Balancers() {
		if b.Name() == name {
			return b, true
		}
	}
	return nil, false
}

// SortMembers orders members as Kafka's assignors do: static members by
// InstanceID first, then dynamic members by ID. Members with equal
// InstanceIDs are ordered by ID. It returns a sorted copy; members is not
// modified.
func SortMembers(members []Member) []Member {
	sorted := slices.Clone(members)
	slices.SortStableFunc(sorted, compareMembers)
	return sorted
}

// compareMembers is the order of SortMembers (Kafka's MemberInfo.compareTo).
func compareMembers(a, b Member) int {
	aStatic, bStatic := a.InstanceID != "", b.InstanceID != ""
	switch {
	case aStatic && !bStatic:
		return -1
	case !aStatic && bStatic:
		return 1
	case aStatic && bStatic:
		if c := cmp.Compare(a.InstanceID, b.InstanceID); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.ID, b.ID)
}

// CooperativeStep takes the current ownership (member -> owned) and a target
// assignment (from a balancer) and returns what each member may hold in this
// generation: the target minus every partition that still has a different
// current owner. Such a partition must first be revoked by its current owner
// and is given out in the next rebalance, so followUp reports whether
// anything was withheld, that is, whether the coordinator must run another
// rebalance once the revocations are done.
//
// A current owner that is absent from target (it is leaving the group) does
// not hold its partitions back: they may be given to their new owner at once.
// A member that currently holds a partition not in its target simply loses
// it in step (it revokes it in this generation).
//
// step has exactly the keys of target, each with a sorted, non-nil slice.
// Applying step and then, after the revocations, calling CooperativeStep
// again with step as the current ownership yields target with followUp
// false: every move completes in two rebalances (Kafka's KIP-429).
func CooperativeStep(current, target map[string][]TopicPartition) (step map[string][]TopicPartition, followUp bool) {
	// owners[tp] lists the current owners that stay in the group.
	owners := make(map[TopicPartition][]string)
	for id, owned := range current {
		if _, stays := target[id]; !stays {
			continue
		}
		for _, tp := range owned {
			if os := owners[tp]; !slices.Contains(os, id) {
				owners[tp] = append(os, id)
			}
		}
	}
	step = make(map[string][]TopicPartition, len(target))
	for id, want := range target {
		may := make([]TopicPartition, 0, len(want))
		for _, tp := range want {
			if heldElsewhere(owners[tp], id) {
				followUp = true
				continue
			}
			may = append(may, tp)
		}
		slices.SortFunc(may, compareTP)
		step[id] = slices.CompactFunc(may, func(a, b TopicPartition) bool { return a == b })
	}
	return step, followUp
}

// heldElsewhere reports whether owners names a member other than id.
func heldElsewhere(owners []string, id string) bool {
	for _, o := range owners {
		if o != id {
			return true
		}
	}
	return false
}

// Diff returns the partitions in next but not in prev (added) and in prev but
// not in next (removed), each sorted: what a cooperative member passes to
// onPartitionsAssigned and onPartitionsRevoked. Both slices are non-nil.
func Diff(prev, next []TopicPartition) (added, removed []TopicPartition) {
	in := func(s []TopicPartition) map[TopicPartition]bool {
		m := make(map[TopicPartition]bool, len(s))
		for _, tp := range s {
			m[tp] = true
		}
		return m
	}
	inPrev, inNext := in(prev), in(next)
	added, removed = []TopicPartition{}, []TopicPartition{}
	for tp := range inNext {
		if !inPrev[tp] {
			added = append(added, tp)
		}
	}
	for tp := range inPrev {
		if !inNext[tp] {
			removed = append(removed, tp)
		}
	}
	slices.SortFunc(added, compareTP)
	slices.SortFunc(removed, compareTP)
	return added, removed
}

// groupInput is the normalized input shared by the balancers.
type groupInput struct {
	// members holds the members with unique IDs, in SortMembers order;
	// a member's index in it is its identity in the algorithms below.
	members []Member
	// topics lists, sorted, the topics that at least one member subscribes
	// to and that have at least one partition.
	topics []string
	// counts[t] is the partition count of topics[t], ≥ 1.
	counts []int32
	// start[t] is the global index of partition 0 of topics[t]; partitions
	// are numbered 0..total-1 in (topic, partition) order.
	start []int
	// subscribers[t] lists, ascending, the indices of the members
	// subscribed to topics[t]; never empty.
	subscribers [][]int32
	// memberTopics[i] lists, ascending, the indices of the topics member i
	// subscribes to (those with partitions only).
	memberTopics [][]int32
	// total is the number of partitions in topics.
	total int
	// index maps a topic name to its index in topics.
	index map[string]int32
}

// normalize deduplicates members by ID (the first occurrence wins), sorts
// them, and indexes the subscribed topics that have partitions.
func normalize(members []Member, partitions map[string]int32) *groupInput {
	seen := make(map[string]bool, len(members))
	unique := make([]Member, 0, len(members))
	for _, m := range members {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		unique = append(unique, m)
	}
	in := &groupInput{members: SortMembers(unique)}

	topicSet := make(map[string]bool)
	for _, m := range in.members {
		for _, t := range m.Topics {
			if partitions[t] > 0 {
				topicSet[t] = true
			}
		}
	}
	in.topics = make([]string, 0, len(topicSet))
	for t := range topicSet {
		in.topics = append(in.topics, t)
	}
	slices.Sort(in.topics)
	index := make(map[string]int32, len(in.topics))
	in.index = index
	in.counts = make([]int32, len(in.topics))
	in.start = make([]int, len(in.topics))
	for i, t := range in.topics {
		index[t] = int32(i)
		in.counts[i] = partitions[t]
		in.start[i] = in.total
		in.total += int(partitions[t])
	}

	in.subscribers = make([][]int32, len(in.topics))
	in.memberTopics = make([][]int32, len(in.members))
	for i, m := range in.members {
		var ts []int32
		for _, t := range m.Topics {
			if ti, ok := index[t]; ok {
				ts = append(ts, ti)
			}
		}
		slices.Sort(ts)
		ts = slices.Compact(ts)
		in.memberTopics[i] = ts
		for _, ti := range ts {
			in.subscribers[ti] = append(in.subscribers[ti], int32(i))
		}
	}
	return in
}

// topicOf returns the topic index of global partition p.
func (in *groupInput) topicOf(p int) int32 {
	// start is ascending; find the last topic starting at or before p.
	i, found := slices.BinarySearch(in.start, p)
	if !found {
		i--
	}
	// Topics have ≥ 1 partition, so starts are distinct.
	return int32(i)
}

// tp returns the TopicPartition of global partition p.
func (in *groupInput) tp(p int) TopicPartition {
	t := in.topicOf(p)
	return TopicPartition{Topic: in.topics[t], Partition: int32(p - in.start[t])}
}

// subscribed reports whether member i subscribes to topic t.
func (in *groupInput) subscribed(i, t int32) bool {
	_, ok := slices.BinarySearch(in.subscribers[t], i)
	return ok
}

// emptyResult maps every ID in members to an empty, non-nil slice.
func emptyResult(members []Member) map[string][]TopicPartition {
	out := make(map[string][]TopicPartition, len(members))
	for _, m := range members {
		out[m.ID] = []TopicPartition{}
	}
	return out
}

// result turns owner (global partition -> member index) into Assign's map.
// Partitions are appended in global order, so each slice comes out sorted.
func (in *groupInput) result(members []Member, owner []int32) map[string][]TopicPartition {
	out := emptyResult(members)
	for p, o := range owner {
		id := in.members[o].ID
		out[id] = append(out[id], in.tp(p))
	}
	return out
}
