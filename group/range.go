package group

// RangeBalancer is Kafka's RangeAssignor ("range", Eager), the Java
// client's default. It works per topic: the members subscribed to a topic,
// in SortMembers order, split its P partitions into contiguous ranges, each
// member getting P/C of them (C subscribers) and the first P%C one extra.
//
// Range is balanced per topic, not across topics: with several topics the
// first members collect the extra partition of each, so C0,C1 over t0,t1
// with 3 partitions each gives C0=[t0p0,t0p1,t1p0,t1p1], C1=[t0p2,t1p2].
// Its reward is co-partitioning: members subscribed to the same topics get
// the same partition numbers of each. The zero value is ready to use.
type RangeBalancer struct{}

// Name returns "range".
func (RangeBalancer) Name() string { return "range" }

// Protocol returns Eager.
func (RangeBalancer) Protocol() Protocol { return Eager }

// Assign implements Balancer.
func (RangeBalancer) Assign(members []Member, partitions map[string]int32) map[string][]TopicPartition {
	in := normalize(members, partitions)
	owner := make([]int32, in.total)
	for t, subs := range in.subscribers {
		n, c := int(in.counts[t]), len(subs)
		per, extra := n/c, n%c
		p := in.start[t]
		for k, m := range subs {
			size := per
			if k < extra {
				size++
			}
			for range size {
				owner[p] = m
				p++
			}
		}
	}
	return in.result(members, owner)
}
