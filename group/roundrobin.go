package group

// RoundRobinBalancer is Kafka's RoundRobinAssignor ("roundrobin", Eager).
// It lists every subscribed partition sorted by (topic, partition) and deals
// them one at a time, cyclically, over the members in SortMembers order; a
// member not subscribed to a partition's topic is skipped (and the deal
// continues from the member after the one that took it).
//
// With identical subscriptions the counts differ by at most one. With
// different subscriptions it can be far from balanced: C0{t0}, C1{t0,t1},
// C2{t0,t1,t2} over 1/2/3 partitions gives C0=[t0p0], C1=[t1p0],
// C2=[t1p1,t2p0,t2p1,t2p2]; StickyBalancer does better there. The zero
// value is ready to use.
type RoundRobinBalancer struct{}

// Name returns "roundrobin".
func (RoundRobinBalancer) Name() string { return "roundrobin" }

// Protocol returns Eager.
func (RoundRobinBalancer) Protocol() Protocol { return Eager }

// Assign implements Balancer.
func (RoundRobinBalancer) Assign(members []Member, partitions map[string]int32) map[string][]TopicPartition {
	in := normalize(members, partitions)
	owner := make([]int32, in.total)
	next := int32(0) // the member the deal continues with
	m := int32(len(in.members))
	for t := range in.topics {
		ti := int32(t)
		for p := in.start[t]; p < in.start[t]+int(in.counts[t]); p++ {
			// Every listed topic has a subscriber, so this ends.
			for !in.subscribed(next, ti) {
				next = (next + 1) % m
			}
			owner[p] = next
			next = (next + 1) % m
		}
	}
	return in.result(members, owner)
}
