// Package group is the logic of consumer groups: the Coordinator of one
// group (members joining and leaving, generations, rebalances, eviction,
// static membership, the right to commit) and the partition assignors it
// runs. Given the members of a group, what each subscribes to and what each
// owns now, and the partition count of every topic, a Balancer decides which
// member consumes which partition. Every partition of a subscribed topic
// gets exactly one owner, only among the members subscribed to its topic;
// members beyond the number of partitions stay idle.
//
// The package is pure logic: no goroutines, no I/O, and the time passed in
// to every Coordinator call. The broker's group service (internal/groups)
// serializes the calls, stores committed offsets and wakes the members.
//
// # Assignors
//
// The four balancers are Kafka's, under Kafka's protocol names. Range and
// roundrobin produce exactly the Java client's assignments. The sticky ones
// pursue the same goals as Java's (balance first, then keep owners) and
// reproduce its documented examples, but they solve the problem exactly
// where Java's heuristic may fall short, and among equally good assignments
// they may pick a different one.
// All of them see the members in one order, SortMembers: static members
// (with a group.instance.id) by InstanceID first, then dynamic members by
// ID. Since a static member keeps its InstanceID across restarts, it keeps
// its place, and range and roundrobin give it the same partitions again.
//
//   - RangeBalancer ("range", the Java default) works topic by topic: the
//     subscribers of a topic split it into contiguous ranges, the first ones
//     one partition longer. Balanced per topic only.
//   - RoundRobinBalancer ("roundrobin") deals all partitions, sorted by
//     (topic, partition), one by one over the members in order, skipping
//     those not subscribed. Balanced when subscriptions are identical.
//   - StickyBalancer ("sticky") is as balanced as the subscriptions allow
//     and, among balanced assignments, keeps as many partitions as possible
//     with the member that owned them (Member.Owned).
//   - CooperativeStickyBalancer ("cooperative-sticky") computes the same
//     target as StickyBalancer but is used with the cooperative protocol.
//
// # Eager and cooperative rebalancing
//
// Under the Eager protocol (range, roundrobin, sticky) every rebalance
// starts with every member revoking everything it owns; the new assignment
// is then handed out whole. Nothing is owned twice, but the whole group
// stops consuming for the rebalance, even for partitions that end up where
// they were (sticky only saves the state a member would have to rebuild).
// The coordinator remembers what each member held before it revoked, with
// the generation it got it in, and gives the balancer that as Member.Owned
// and Member.Generation, as Kafka's StickyAssignor carries both in each
// member's subscription.
//
// Under the Cooperative protocol (cooperative-sticky, Kafka's KIP-429)
// members keep consuming what they keep. A partition moving from A to B is
// only revoked from A in the rebalance that decides the move, with nobody
// holding it in that generation; once A has given it up (committing its
// offsets in onPartitionsRevoked), a follow-up rebalance hands it to B. The
// coordinator gets the target from the balancer and passes it through
// CooperativeStep, which withholds the moving partitions and says whether
// a follow-up is needed. Diff gives the partitions a member gains and
// loses, for its onPartitionsAssigned and onPartitionsRevoked callbacks.
//
// # Caveats
//
// Member IDs must be unique; when one repeats, only its first occurrence
// counts. Ownership claims are only hints: claims for unsubscribed or
// missing partitions are ignored, and of two members claiming one partition
// only the one with the later Generation keeps the claim (the first in
// SortMembers order, if the generations are equal). The balancers never
// modify their arguments and are deterministic: the same members (in any
// order) and partition counts give the same assignment.
package group
