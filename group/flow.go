package group

import (
	"container/heap"
	"slices"
)

// The sticky assignment for arbitrary subscriptions is a min-cost flow
// problem. Each partition flows to one subscriber; the cost of an assignment
// is
//
//	K·Σ load(m)² + (number of validly owned partitions that change owner)
//
// with K = P+1, so that balance always wins over stickiness. For the sets of
// load vectors that bipartite assignments produce (M-convex sets), the
// vector minimizing the sum of squares is the "most even" one: it also
// minimizes the largest load, maximizes the smallest, and so on (Frank and
// Murota, "Discrete decreasing minimization"). With identical subscriptions
// it is the q/q+1 split.
//
// stickyGeneral starts from a greedy assignment (keep every valid owner,
// give the rest to the least loaded subscriber, topics with fewer
// subscribers first) and then cancels negative-cost cycles in the residual
// graph until none is left, which is exactly the optimality condition. Only
// strictly improving cycles are applied, so when the greedy start is
// already optimal it is what the caller gets. Each canceled cycle lowers the
// cost, so the loop ends; in practice the number of cycles is close to the
// number of partitions that must move, divided by how many of them one
// cycle can carry.
//
// Partitions of one topic with the same previous owner are interchangeable,
// so the graph has one node per such class rather than per partition:
//
//	member u → class c   u gives up one of its c partitions (cost 1 if u owned c, else 0)
//	class c  → hub t     the partition goes to the pool of its topic t (cost 0)
//	class c  → prev(c)   ... or straight back to its previous owner (cost -1)
//	hub t    → member v  v, a subscriber of t, takes it (cost 0)
//	member v → sink      v's load grows by one (cost K·(2l+1))
//	sink     → member u  u's load shrinks by one (cost -K·(2l-1))
//
// A cycle through the sink moves one partition's worth of load from one
// member to another (along a chain of subscribers); a cycle without it swaps
// partitions between members without changing loads.

// flowClass is a set of partitions of one topic with one previous owner.
type flowClass struct {
	topic int32
	prev  int32 // previous owner's member index, -1 if none
	size  int
	// held lists, by member index, the members now holding partitions of
	// the class, and which; no entry is empty.
	held []holding
}

// holding is what one member holds of a class.
type holding struct {
	member int32
	parts  []int32 // ascending
}

// find returns the position of member i in c.held, or where it would go.
func (c *flowClass) find(i int32) (int, bool) {
	return slices.BinarySearchFunc(c.held, i, func(h holding, i int32) int { return int(h.member) - int(i) })
}

// holds returns the partitions of c that member i holds.
func (c *flowClass) holds(i int32) []int32 {
	if k, ok := c.find(i); ok {
		return c.held[k].parts
	}
	return nil
}

// add gives member i the partitions ps of c.
func (c *flowClass) add(i int32, ps ...int32) {
	k, ok := c.find(i)
	if !ok {
		c.held = slices.Insert(c.held, k, holding{member: i})
	}
	h := &c.held[k]
	h.parts = append(h.parts, ps...)
	slices.Sort(h.parts)
}

// take removes the n highest-numbered partitions of c that member i holds
// (it holds at least n) and returns them.
func (c *flowClass) take(i int32, n int) []int32 {
	k, _ := c.find(i)
	h := &c.held[k]
	taken := slices.Clone(h.parts[len(h.parts)-n:])
	h.parts = h.parts[:len(h.parts)-n]
	if len(h.parts) == 0 {
		c.held = slices.Delete(c.held, k, k+1)
	}
	return taken
}

// Edge kinds of the residual graph.
const (
	edgeGive   = iota // member → class
	edgeHub           // class → hub
	edgeBack          // class → previous owner
	edgeTake          // hub → member
	edgeGrow          // member → sink
	edgeShrink        // sink → member
)

// flowEdge is an edge of the residual graph; only edges with room (positive
// residual capacity) are built.
type flowEdge struct {
	from, to int32
	cost     int64
	cap      int
	kind     uint8
}

// unlimited is the capacity of edges that never limit a cycle.
const unlimited = int(^uint(0) >> 1)

// stickyGeneral is the sticky assignment for arbitrary subscriptions.
func (in *groupInput) stickyGeneral(prev []int32) []int32 {
	owner := slices.Clone(prev)
	load := make([]int, len(in.members))
	for _, o := range owner {
		if o >= 0 {
			load[o]++
		}
	}
	// Topics with fewer subscribers first: their partitions have fewer
	// places to go.
	order := make([]int, len(in.topics))
	for t := range order {
		order[t] = t
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(in.subscribers[a]) - len(in.subscribers[b]) })
	h := &loadHeap{load: load}
	for _, t := range order {
		h.members = append(h.members[:0], in.subscribers[t]...)
		heap.Init(h)
		for p := in.start[t]; p < in.start[t]+int(in.counts[t]); p++ {
			if owner[p] >= 0 {
				continue
			}
			i := h.members[0] // least loaded, first in member order
			owner[p] = i
			load[i]++
			heap.Fix(h, 0)
		}
	}
	in.optimize(prev, owner)
	return owner
}

// optimize turns owner, any valid assignment, into an optimal one (least
// cost as described above) by canceling negative cycles; prev gives the
// previous owners (-1 for none).
func (in *groupInput) optimize(prev, owner []int32) {
	nm := len(in.members)
	load := make([]int64, nm)
	for _, o := range owner {
		load[o]++
	}

	// Group the partitions into classes, numbered in partition order.
	var classes []*flowClass
	classOf := make(map[int64]*flowClass)
	for t := range in.topics {
		for p := in.start[t]; p < in.start[t]+int(in.counts[t]); p++ {
			key := int64(t)*int64(nm+1) + int64(prev[p]+1)
			c := classOf[key]
			if c == nil {
				c = &flowClass{topic: int32(t), prev: prev[p]}
				classOf[key] = c
				classes = append(classes, c)
			}
			c.size++
			c.add(owner[p], int32(p))
		}
	}

	g := &flowGraph{in: in, classes: classes, load: load, k: int64(in.total) + 1}
	for {
		g.build()
		cycle := g.negativeCycle()
		if cycle == nil {
			break
		}
		g.cancel(cycle)
	}

	for _, c := range classes {
		for _, h := range c.held {
			for _, p := range h.parts {
				owner[p] = h.member
			}
		}
	}
}

// flowGraph is the residual graph of the current assignment.
type flowGraph struct {
	in      *groupInput
	classes []*flowClass
	load    []int64 // load[i] is the number of partitions member i holds
	k       int64   // weight of balance over stickiness
	edges   []flowEdge

	// Node numbering: classes, then topic hubs, then members, then the sink.
	hub0, member0, sink int32
}

// build rebuilds the edges from the current assignment.
func (g *flowGraph) build() {
	in := g.in
	g.hub0 = int32(len(g.classes))
	g.member0 = g.hub0 + int32(len(in.topics))
	g.sink = g.member0 + int32(len(in.members))
	g.edges = g.edges[:0]
	for ci, c := range g.classes {
		cn := int32(ci)
		for _, h := range c.held {
			cost := int64(0)
			if h.member == c.prev {
				cost = 1
			}
			g.edges = append(g.edges, flowEdge{from: g.member0 + h.member, to: cn, cost: cost, cap: len(h.parts), kind: edgeGive})
		}
		g.edges = append(g.edges, flowEdge{from: cn, to: g.hub0 + c.topic, cap: unlimited, kind: edgeHub})
		if c.prev >= 0 {
			if room := c.size - len(c.holds(c.prev)); room > 0 {
				g.edges = append(g.edges, flowEdge{from: cn, to: g.member0 + c.prev, cost: -1, cap: room, kind: edgeBack})
			}
		}
	}
	for t, subs := range in.subscribers {
		for _, i := range subs {
			g.edges = append(g.edges, flowEdge{from: g.hub0 + int32(t), to: g.member0 + i, cap: unlimited, kind: edgeTake})
		}
	}
	for i, ts := range in.memberTopics {
		if len(ts) == 0 {
			continue
		}
		l := g.load[i]
		m := g.member0 + int32(i)
		g.edges = append(g.edges, flowEdge{from: m, to: g.sink, cost: g.k * (2*l + 1), cap: 1, kind: edgeGrow})
		if l > 0 {
			g.edges = append(g.edges, flowEdge{from: g.sink, to: m, cost: -g.k * (2*l - 1), cap: 1, kind: edgeShrink})
		}
	}
}

// negativeCycle returns the edges (indices into g.edges, in cycle order) of
// a negative-cost cycle, or nil if there is none. It runs Bellman-Ford from
// a virtual source joined to every node and looks for a cycle in the
// predecessor graph after every pass: any such cycle is negative, and one
// appears within a pass or two of the first relaxations along it.
func (g *flowGraph) negativeCycle() []int32 {
	n := int(g.sink) + 1
	dist := make([]int64, n)
	parent := make([]int32, n)
	for v := range parent {
		parent[v] = -1
	}
	stamp := make([]int32, n)
	for range n + 1 {
		changed := false
		for ei, e := range g.edges {
			if d := dist[e.from] + e.cost; d < dist[e.to] {
				dist[e.to] = d
				parent[e.to] = int32(ei)
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if c := g.parentCycle(parent, stamp); c != nil {
			return c
		}
	}
	return nil // unreachable: n passes without convergence leave a cycle
}

// parentCycle returns a cycle of the predecessor graph if it has a negative
// one. stamp is scratch space of one int32 per node.
func (g *flowGraph) parentCycle(parent, stamp []int32) []int32 {
	clear(stamp)
	for start := range parent {
		id := int32(start) + 1
		v := int32(start)
		for stamp[v] == 0 && parent[v] >= 0 {
			stamp[v] = id
			v = g.edges[parent[v]].from
		}
		if stamp[v] != id {
			continue
		}
		// v lies on a cycle; walk it once, backwards.
		var cycle []int32
		var cost int64
		for u := v; ; {
			e := parent[u]
			cycle = append(cycle, e)
			cost += g.edges[e].cost
			if u = g.edges[e].from; u == v {
				break
			}
		}
		if cost >= 0 { // cannot happen with strict relaxations; be safe
			continue
		}
		slices.Reverse(cycle)
		return cycle
	}
	return nil
}

// cancel pushes as much as the cycle allows around it.
func (g *flowGraph) cancel(cycle []int32) {
	// Through the sink, the cycle moves load from the member it shrinks
	// to the member it grows. Moving a second unit along the same path
	// costs 4K more than the first (the loads came closer); keep going
	// while that stays negative and the other edges have room.
	amount := unlimited
	var path int64
	shrink, grow := int32(-1), int32(-1)
	for _, ei := range cycle {
		switch e := g.edges[ei]; e.kind {
		case edgeShrink:
			shrink = e.to - g.member0
		case edgeGrow:
			grow = e.from - g.member0
		default:
			amount = min(amount, e.cap)
			path += e.cost
		}
	}
	if shrink >= 0 {
		lu, lv := g.load[shrink], g.load[grow]
		n := 1
		for n < amount && g.k*(2*(lv+int64(n))+1)-g.k*(2*(lu-int64(n))-1)+path < 0 {
			n++
		}
		amount = n
	}
	// Every class node on the cycle is entered by a give edge from the
	// member that loses partitions and left towards the member that gains
	// them, directly (back edge) or through its topic's hub.
	for j, ei := range cycle {
		e := g.edges[ei]
		if e.kind != edgeGive {
			continue
		}
		c := g.classes[e.to]
		from := e.from - g.member0
		var to int32
		next := g.edges[cycle[(j+1)%len(cycle)]]
		if next.kind == edgeBack {
			to = c.prev
		} else { // hub, then take
			to = g.edges[cycle[(j+2)%len(cycle)]].to - g.member0
		}
		g.move(c, from, to, amount)
	}
}

// move transfers the n highest-numbered partitions of class c that member
// from holds to member to.
func (g *flowGraph) move(c *flowClass, from, to int32, n int) {
	c.add(to, c.take(from, n)...)
	g.load[from] -= int64(n)
	g.load[to] += int64(n)
}
