package group

import (
	"fmt"
	"testing"
)

// benchGroup returns n members subscribed to all of topics topics holding
// parts partitions in total.
func benchGroup(n, topics, parts int) ([]Member, map[string]int32) {
	counts := map[string]int32{}
	var names []string
	for t := range topics {
		name := fmt.Sprintf("topic-%02d", t)
		names = append(names, name)
		counts[name] = int32(parts / topics)
	}
	members := make([]Member, n)
	for i := range members {
		members[i] = Member{ID: fmt.Sprintf("member-%04d", i), Topics: names}
	}
	return members, counts
}

// BenchmarkSticky measures StickyBalancer.Assign for a fresh group, for the
// rebalance after one member left (everyone else owning its previous
// partitions) and after one joined; "mixed" gives half the members only
// half the topics, which takes the general (min-cost-flow) path.
func BenchmarkSticky(b *testing.B) {
	for _, size := range []struct{ members, topics, parts int }{{8, 4, 64}, {100, 10, 10_000}} {
		members, counts := benchGroup(size.members, size.topics, size.parts)
		prev := StickyBalancer{}.Assign(members, counts)
		owned := withOwned(members, prev)
		mixed := withOwned(members, prev)
		for i := range mixed {
			if i%2 == 1 {
				mixed[i].Topics = mixed[i].Topics[:size.topics/2]
			}
		}
		cases := []struct {
			name    string
			members []Member
		}{
			{"fresh", members},
			{"leave", owned[1:]},
			{"join", append(owned[:len(owned):len(owned)], Member{ID: "new", Topics: members[0].Topics})},
			{"mixed", mixed},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("%dx%d/%s", size.members, size.parts, c.name), func(b *testing.B) {
				for b.Loop() {
					StickyBalancer{}.Assign(c.members, counts)
				}
			})
		}
	}
}

// BenchmarkEager gives range and roundrobin for comparison.
func BenchmarkEager(b *testing.B) {
	members, counts := benchGroup(100, 10, 10_000)
	for _, bal := range []Balancer{RangeBalancer{}, RoundRobinBalancer{}} {
		b.Run(bal.Name()+"/100x10000", func(b *testing.B) {
			for b.Loop() {
				bal.Assign(members, counts)
			}
		})
	}
}
