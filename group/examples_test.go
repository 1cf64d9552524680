package group

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The documented examples (KAFKA_SEMANTICS.md items 63-68), plus the edge
// cases every balancer must handle.

func TestDocumentedExamples(t *testing.T) {
	twoByTwo := map[string]int32{"t0": 3, "t1": 3}
	twoMembers := []Member{dynMember("C0", "t0", "t1"), dynMember("C1", "t0", "t1")}
	// Item 65's input: C0{t0}, C1{t0,t1}, C2{t0,t1,t2} over 1/2/3 partitions.
	nested := []Member{dynMember("C0", "t0"), dynMember("C1", "t0", "t1"), dynMember("C2", "t0", "t1", "t2")}
	nestedCounts := map[string]int32{"t0": 1, "t1": 2, "t2": 3}
	// Item 68's input: t0..t3 with 2 partitions each, all subscribed to all.
	four := map[string]int32{"t0": 2, "t1": 2, "t2": 2, "t3": 2}
	all := []string{"t0", "t1", "t2", "t3"}
	item68 := []Member{
		{ID: "C0", Topics: all, Owned: tps(t, "t0p0,t1p1,t3p0")},
		{ID: "C1", Topics: all, Owned: tps(t, "t0p1,t2p0,t3p1")},
		{ID: "C2", Topics: all, Owned: tps(t, "t1p0,t2p1")},
	}

	tests := []struct {
		name       string
		balancers  []Balancer
		members    []Member
		partitions map[string]int32
		want       map[string]string
	}{{
		name:       "63 range",
		balancers:  []Balancer{RangeBalancer{}},
		members:    twoMembers,
		partitions: twoByTwo,
		want:       map[string]string{"C0": "t0p0,t0p1,t1p0,t1p1", "C1": "t0p2,t1p2"},
	}, {
		name:       "64 roundrobin",
		balancers:  []Balancer{RoundRobinBalancer{}},
		members:    twoMembers,
		partitions: twoByTwo,
		want:       map[string]string{"C0": "t0p0,t0p2,t1p1", "C1": "t0p1,t1p0,t1p2"},
	}, {
		name:       "65 roundrobin, nested subscriptions",
		balancers:  []Balancer{RoundRobinBalancer{}},
		members:    nested,
		partitions: nestedCounts,
		want:       map[string]string{"C0": "t0p0", "C1": "t1p0", "C2": "t1p1,t2p0,t2p1,t2p2"},
	}, {
		name:       "67 sticky, nested subscriptions",
		balancers:  []Balancer{StickyBalancer{}, CooperativeStickyBalancer{}},
		members:    nested,
		partitions: nestedCounts,
		want:       map[string]string{"C0": "t0p0", "C1": "t1p0,t1p1", "C2": "t2p0,t2p1,t2p2"},
	}, {
		name:      "67 sticky, C0 leaves",
		balancers: []Balancer{StickyBalancer{}, CooperativeStickyBalancer{}},
		members: []Member{
			{ID: "C1", Topics: []string{"t0", "t1"}, Owned: tps(t, "t1p0,t1p1")},
			{ID: "C2", Topics: []string{"t0", "t1", "t2"}, Owned: tps(t, "t2p0,t2p1,t2p2")},
		},
		partitions: nestedCounts,
		want:       map[string]string{"C1": "t0p0,t1p0,t1p1", "C2": "t2p0,t2p1,t2p2"},
	}, {
		name:       "68 sticky, all members stay",
		balancers:  []Balancer{StickyBalancer{}, CooperativeStickyBalancer{}},
		members:    item68,
		partitions: four,
		want:       map[string]string{"C0": "t0p0,t1p1,t3p0", "C1": "t0p1,t2p0,t3p1", "C2": "t1p0,t2p1"},
	}, {
		name:       "68 sticky, C1 leaves",
		balancers:  []Balancer{StickyBalancer{}, CooperativeStickyBalancer{}},
		members:    []Member{item68[0], item68[2]},
		partitions: four,
		want:       map[string]string{"C0": "t0p0,t1p1,t2p0,t3p0", "C2": "t0p1,t1p0,t2p1,t3p1"},
	}}
	for _, tc := range tests {
		for _, b := range tc.balancers {
			t.Run(tc.name+"/"+b.Name(), func(t *testing.T) {
				want := assignment(t, tc.want)
				require.Equal(t, want, b.Assign(tc.members, tc.partitions))
			})
		}
		if tc.balancers[0].Name() == "sticky" {
			t.Run(tc.name+"/general path", func(t *testing.T) {
				require.Equal(t, assignment(t, tc.want), assignSticky(tc.members, tc.partitions, false))
			})
		}
	}
}

func TestItem67Sequence(t *testing.T) {
	// Run the 67 story through the balancer itself: the first assignment
	// becomes Owned for the second.
	counts := map[string]int32{"t0": 1, "t1": 2, "t2": 3}
	members := []Member{dynMember("C0", "t0"), dynMember("C1", "t0", "t1"), dynMember("C2", "t0", "t1", "t2")}
	first := StickyBalancer{}.Assign(members, counts)
	second := StickyBalancer{}.Assign(withOwned(members[1:], first), counts)
	require.Equal(t, assignment(t, map[string]string{"C1": "t0p0,t1p0,t1p1", "C2": "t2p0,t2p1,t2p2"}), second)
}

func TestNamesAndProtocols(t *testing.T) {
	want := []struct {
		name     string
		protocol Protocol
	}{{"range", Eager}, {"roundrobin", Eager}, {"sticky", Eager}, {"cooperative-sticky", Cooperative}}
	bs := Balancers()
	require.Len(t, bs, len(want))
	for i, b := range bs {
		require.Equal(t, want[i].name, b.Name())
		require.Equal(t, want[i].protocol, b.Protocol())
		got, ok := BalancerByName(b.Name())
		require.True(t, ok)
		require.Equal(t, b, got)
	}
	_, ok := BalancerByName("uniform")
	require.False(t, ok)
	require.Equal(t, "eager", Eager.String())
	require.Equal(t, "cooperative", Cooperative.String())
	require.Equal(t, "Protocol(7)", Protocol(7).String())
	require.Equal(t, "orders/3", TopicPartition{"orders", 3}.String())
	require.Equal(t, "my-topic-1/2", TopicPartition{"my-topic-1", 2}.String())
}

func TestSortMembers(t *testing.T) {
	in := []Member{
		{ID: "a"},
		{ID: "z", InstanceID: "i2"},
		{ID: "c"},
		{ID: "b", InstanceID: "i9"},
		{ID: "y", InstanceID: "i1"},
		{ID: "x", InstanceID: "i1"}, // same instance id: by ID
	}
	orig := append([]Member(nil), in...)
	got := SortMembers(in)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	require.Equal(t, []string{"x", "y", "z", "b", "a", "c"}, ids)
	require.Equal(t, orig, in, "input must not be reordered")
	require.Empty(t, SortMembers(nil))
}

func TestStaticMembersSortFirst(t *testing.T) {
	// A static member with a late-sorting ID still comes first: with range
	// it gets the extra partition.
	members := []Member{
		{ID: "aaa", Topics: []string{"t"}},
		{ID: "zzz", InstanceID: "host-1", Topics: []string{"t"}},
	}
	got := RangeBalancer{}.Assign(members, map[string]int32{"t": 3})
	require.Equal(t, assignment(t, map[string]string{"zzz": "tp0,tp1", "aaa": "tp2"}), got)
}

func TestStaticMembersKeepAssignmentAfterRestart(t *testing.T) {
	// Item 85: static members restarting with new member IDs, same count
	// and subscriptions, get the same range/roundrobin assignment.
	counts := map[string]int32{"a": 5, "b": 3, "c": 7}
	before := []Member{
		{ID: "m-17", InstanceID: "host-3", Topics: []string{"a", "b", "c"}},
		{ID: "m-02", InstanceID: "host-1", Topics: []string{"a", "c"}},
		{ID: "m-99", InstanceID: "host-2", Topics: []string{"a", "b", "c"}},
	}
	after := []Member{ // restarted: new IDs that sort the other way round
		{ID: "m-01", InstanceID: "host-3", Topics: []string{"a", "b", "c"}},
		{ID: "m-50", InstanceID: "host-2", Topics: []string{"a", "b", "c"}},
		{ID: "m-98", InstanceID: "host-1", Topics: []string{"a", "c"}},
	}
	byInstance := func(ms []Member, a map[string][]TopicPartition) map[string][]TopicPartition {
		out := map[string][]TopicPartition{}
		for _, m := range ms {
			out[m.InstanceID] = a[m.ID]
		}
		return out
	}
	for _, b := range []Balancer{RangeBalancer{}, RoundRobinBalancer{}} {
		t.Run(b.Name(), func(t *testing.T) {
			require.Equal(t, byInstance(before, b.Assign(before, counts)), byInstance(after, b.Assign(after, counts)))
		})
	}
}

func TestEdgeCases(t *testing.T) {
	tests := []struct {
		name       string
		members    []Member
		partitions map[string]int32
		want       map[string]string
	}{{
		name:       "empty group",
		members:    nil,
		partitions: map[string]int32{"t": 3},
		want:       map[string]string{},
	}, {
		name:       "no topics at all",
		members:    []Member{dynMember("a", "t")},
		partitions: nil,
		want:       map[string]string{"a": ""},
	}, {
		name:       "members without subscriptions",
		members:    []Member{dynMember("a"), dynMember("b", "t"), {ID: "c", Topics: []string{}}},
		partitions: map[string]int32{"t": 2},
		want:       map[string]string{"a": "", "b": "tp0,tp1", "c": ""},
	}, {
		name:       "topic with zero partitions",
		members:    []Member{dynMember("a", "t", "z"), dynMember("b", "t", "z")},
		partitions: map[string]int32{"t": 2, "z": 0},
		want:       map[string]string{"a": "tp0", "b": "tp1"},
	}, {
		name:       "negative partition count",
		members:    []Member{dynMember("a", "n")},
		partitions: map[string]int32{"n": -4},
		want:       map[string]string{"a": ""},
	}, {
		name:       "subscribed topic missing from the map",
		members:    []Member{dynMember("a", "gone", "t")},
		partitions: map[string]int32{"t": 1},
		want:       map[string]string{"a": "tp0"},
	}, {
		name:       "unsubscribed topics are ignored",
		members:    []Member{dynMember("a", "t")},
		partitions: map[string]int32{"t": 1, "other": 5},
		want:       map[string]string{"a": "tp0"},
	}, {
		name:       "more members than partitions: extras idle",
		members:    []Member{dynMember("a", "t"), dynMember("b", "t"), dynMember("c", "t")},
		partitions: map[string]int32{"t": 1},
		want:       map[string]string{"a": "tp0", "b": "", "c": ""},
	}, {
		name:       "duplicate topics in a subscription",
		members:    []Member{dynMember("a", "t", "t")},
		partitions: map[string]int32{"t": 2},
		want:       map[string]string{"a": "tp0,tp1"},
	}, {
		name:       "duplicate member IDs: the first counts",
		members:    []Member{dynMember("a", "t"), dynMember("b", "t"), dynMember("a", "u")},
		partitions: map[string]int32{"t": 2, "u": 3},
		want:       map[string]string{"a": "tp0", "b": "tp1"},
	}}
	for _, tc := range tests {
		for _, b := range Balancers() {
			t.Run(tc.name+"/"+b.Name(), func(t *testing.T) {
				got := b.Assign(tc.members, tc.partitions)
				require.Equal(t, assignment(t, tc.want), got)
				for id, ps := range got {
					require.NotNil(t, ps, "member %s", id)
				}
			})
		}
	}
}

func TestStickyStaleAndInvalidClaims(t *testing.T) {
	counts := map[string]int32{"t": 4, "u": 2}
	members := []Member{
		// a and b both claim tp0 and tp1: the claim goes to a (first in
		// order), so b keeps none of them.
		{ID: "a", Topics: []string{"t"}, Owned: tps(t, "tp0,tp1")},
		{ID: "b", Topics: []string{"t", "u"}, Owned: tps(t, "tp1,tp0,tp7,up0,xp0")},
		// c claims a partition of a topic it no longer subscribes to, and
		// one partition twice.
		{ID: "c", Topics: []string{"t"}, Owned: tps(t, "up1,tp3,tp3")},
	}
	want := assignment(t, map[string]string{"a": "tp0,tp1", "b": "up0,up1", "c": "tp2,tp3"})
	for _, fast := range []bool{true, false} {
		require.Equal(t, want, assignSticky(members, counts, fast), "fast=%v", fast)
	}
	// In the opposite order of claims the outcome is the same: the order
	// of members in the input does not matter.
	rev := []Member{members[2], members[1], members[0]}
	require.Equal(t, want, StickyBalancer{}.Assign(rev, counts))
}

// Of two claims on one partition the later generation's counts, whatever
// the member order; the stale claimant keeps the rest of its claim.
func TestStickyLaterGenerationWins(t *testing.T) {
	counts := map[string]int32{"t": 6}
	members := []Member{
		// a missed generation 4, in which c took tp2 from it.
		{ID: "a", Topics: []string{"t"}, Owned: tps(t, "tp0,tp1,tp2"), Generation: 3},
		{ID: "c", Topics: []string{"t"}, Owned: tps(t, "tp2,tp3,tp4,tp5"), Generation: 4},
	}
	want := assignment(t, map[string]string{"a": "tp0,tp1,tp5", "c": "tp2,tp3,tp4"})
	rev := []Member{members[1], members[0]}
	for _, fast := range []bool{true, false} {
		require.Equal(t, want, assignSticky(members, counts, fast), "fast=%v", fast)
		require.Equal(t, want, assignSticky(rev, counts, fast), "fast=%v", fast)
	}
	// With equal generations the first in SortMembers order keeps it.
	members[1].Generation = 3
	require.Equal(t, assignment(t, map[string]string{"a": "tp0,tp1,tp2", "c": "tp3,tp4,tp5"}),
		StickyBalancer{}.Assign(members, counts))
}

func TestStickyKeepsOwnersOverQuota(t *testing.T) {
	// 7 partitions, 3 members: quotas 3,2,2. b owned 4 and a owned 3, so
	// the extra place goes to b (it keeps 3), a keeps 2, c gets the rest.
	counts := map[string]int32{"t": 7}
	members := []Member{
		{ID: "a", Topics: []string{"t"}, Owned: tps(t, "tp0,tp1,tp2")},
		{ID: "b", Topics: []string{"t"}, Owned: tps(t, "tp3,tp4,tp5,tp6")},
		{ID: "c", Topics: []string{"t"}},
	}
	want := assignment(t, map[string]string{"a": "tp0,tp1", "b": "tp3,tp4,tp5", "c": "tp2,tp6"})
	require.Equal(t, want, StickyBalancer{}.Assign(members, counts))
	got := assignSticky(members, counts, false)
	require.Equal(t, cost(t, members, counts, want), cost(t, members, counts, got))
}

func TestStickyGeneralBalancesAlongChains(t *testing.T) {
	// a can only take t, c only u; b takes both. a starts with everything
	// of t, c has nothing: balancing needs a → b (a t partition) and
	// b → c (a u partition), a chain no single move makes.
	counts := map[string]int32{"t": 4, "u": 2}
	members := []Member{
		{ID: "a", Topics: []string{"t"}, Owned: tps(t, "tp0,tp1,tp2,tp3")},
		{ID: "b", Topics: []string{"t", "u"}, Owned: tps(t, "up0,up1")},
		{ID: "c", Topics: []string{"u"}},
	}
	got := StickyBalancer{}.Assign(members, counts)
	require.Equal(t, assignment(t, map[string]string{"a": "tp0,tp1", "b": "tp2,tp3", "c": "up0,up1"}), got)
}

func TestInputsNotModified(t *testing.T) {
	members := []Member{
		{ID: "b", Topics: []string{"u", "t", "t"}, Owned: tps(t, "tp3,tp0,up1")},
		{ID: "a", InstanceID: "s", Topics: []string{"t"}, Owned: tps(t, "tp0,tp1")},
	}
	counts := map[string]int32{"t": 4, "u": 2}
	keep := func() ([]Member, map[string]int32) {
		ms := make([]Member, len(members))
		for i, m := range members {
			m.Topics = append([]string(nil), m.Topics...)
			m.Owned = append([]TopicPartition(nil), m.Owned...)
			ms[i] = m
		}
		cs := map[string]int32{}
		for k, v := range counts {
			cs[k] = v
		}
		return ms, cs
	}
	wantMembers, wantCounts := keep()
	for _, b := range Balancers() {
		b.Assign(members, counts)
		require.Equal(t, wantMembers, members, b.Name())
		require.Equal(t, wantCounts, counts, b.Name())
	}
}

func TestCooperativeStepExample(t *testing.T) {
	// Item 69: a partition moving A → B is revoked from A in generation N
	// (nobody holds it), and B gets it in N+1.
	current := assignment(t, map[string]string{"A": "tp0,tp1,tp2,tp3", "gone": "tp4,tp5"})
	target := assignment(t, map[string]string{"A": "tp0,tp1", "B": "tp2,tp3,tp4", "C": "tp5"})
	step, followUp := CooperativeStep(current, target)
	require.True(t, followUp)
	// tp4, tp5 belonged to a leaving member: given at once.
	require.Equal(t, assignment(t, map[string]string{"A": "tp0,tp1", "B": "tp4", "C": "tp5"}), step)
	step2, followUp2 := CooperativeStep(step, target)
	require.False(t, followUp2)
	require.Equal(t, target, step2)

	same, followUp3 := CooperativeStep(target, target)
	require.False(t, followUp3)
	require.Equal(t, target, same)

	empty, followUp4 := CooperativeStep(nil, nil)
	require.False(t, followUp4)
	require.Empty(t, empty)
}

func TestCooperativeStepStaleDoubleOwnership(t *testing.T) {
	// Both A and B think they own tp0; the target gives it to B. A must
	// revoke it first.
	current := assignment(t, map[string]string{"A": "tp0", "B": "tp0"})
	target := assignment(t, map[string]string{"A": "", "B": "tp0"})
	step, followUp := CooperativeStep(current, target)
	require.True(t, followUp)
	require.Equal(t, assignment(t, map[string]string{"A": "", "B": ""}), step)
}

func TestDiff(t *testing.T) {
	added, removed := Diff(tps(t, "tp2,tp0,up1"), tps(t, "up1,tp3,tp0"))
	require.Equal(t, tps(t, "tp3"), added)
	require.Equal(t, tps(t, "tp2"), removed)
	added, removed = Diff(nil, nil)
	require.NotNil(t, added)
	require.NotNil(t, removed)
	require.Empty(t, added)
	require.Empty(t, removed)
}
