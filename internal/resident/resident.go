// Package resident bounds how many members of a set hold operating-system
// resources at once: a broker's segments, each of which may hold a file
// descriptor and a few memory mappings while in use, and gives them back
// (closing, unmapping) when idle. Each counts against a process limit
// (RLIMIT_NOFILE, vm.max_map_count) that 100,000 partitions would exceed.
//
// The set runs CLOCK (second chance): a member used since the hand last
// passed keeps its resources for another turn; one that was not is asked
// to release them. A member in use at that moment refuses (it never
// waits), and the hand moves on, so the bound may be passed briefly by as
// many members as are in use at once.
//
// A member joins the set when it is touched after acquiring resources, and
// leaves when it has released them all. Touching a member that is in the
// set and marked used costs one atomic load: hot paths call Touch on every
// use.
package resident

import (
	"sync"
	"sync/atomic"
)

// Releaser is what a member does when the set evicts it.
type Releaser interface {
	// TryRelease gives back the member's resources unless one of them is
	// in use now, and reports whether it gave back all of them. It must not
	// wait on anything: it runs under the set's lock.
	TryRelease() bool
}

// The bits of Entry.state.
const (
	used   = 1 << iota // touched since the hand last passed
	member             // in the ring
	gone               // removed for good: never joins again
)

// Entry is a member's place in a set; the zero value is a non-member.
type Entry struct {
	state      atomic.Uint32
	prev, next *Entry   // the ring, under Set.mu
	r          Releaser // the member
}

// Init sets the member an entry stands for; it must be called before the
// entry is touched.
func (e *Entry) Init(r Releaser) { e.r = r }

// Set is a bounded set of members holding resources. Its methods are safe
// for concurrent use; a nil *Set bounds nothing.
type Set struct {
	max       int
	mu        sync.Mutex
	n         int    // members in the ring
	hand      *Entry // the next member the clock looks at; nil when empty
	evictions atomic.Int64
}

// New returns a set holding at most limit members (at least 1).
func New(limit int) *Set { return &Set{max: max(limit, 1)} }

// Len is the number of members now.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Evictions counts members that released their resources for others.
func (s *Set) Evictions() int64 { return s.evictions.Load() }

// Touch marks e used, making it a member (and evicting others past the
// bound) if it is not one. Call it after acquiring resources: a member
// evicted between its acquisition and this call joins again here.
func (s *Set) Touch(e *Entry) {
	if s == nil || e.state.Load() == used|member {
		return
	}
	if e.state.CompareAndSwap(member, used|member) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := e.state.Load()
	if st&gone != 0 {
		return
	}
	if st&member != 0 {
		e.state.Store(used | member)
		return
	}
	s.evictLocked()
	if s.hand == nil {
		e.prev, e.next = e, e
		s.hand = e
	} else {
		// Just behind the hand: the last the clock reaches.
		e.prev, e.next = s.hand.prev, s.hand
		e.prev.next, s.hand.prev = e, e
	}
	s.n++
	e.state.Store(used | member)
}

// evictLocked releases members until there is room for one more, passing
// each at most twice (the first pass may only clear its used bit).
func (s *Set) evictLocked() {
	for tries := 2 * s.n; s.n >= s.max && tries > 0; tries-- {
		v := s.hand
		s.hand = v.next
		if v.state.CompareAndSwap(used|member, member) {
			continue // a second chance
		}
		if v.r.TryRelease() && v.state.CompareAndSwap(member, 0) {
			s.unlinkLocked(v)
			s.evictions.Add(1)
		}
		// Otherwise it is in use, or was touched meanwhile: it stays.
	}
}

func (s *Set) unlinkLocked(e *Entry) {
	if e.next == e {
		s.hand = nil
	} else {
		e.prev.next, e.next.prev = e.next, e.prev
		if s.hand == e {
			s.hand = e.next
		}
	}
	e.prev, e.next = nil, nil
	s.n--
}

// Evict asks e's member to release its resources now, taking it out of
// the set if it does, and reports whether it did. It does not wait.
func (s *Set) Evict(e *Entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !e.r.TryRelease() {
		return false
	}
	if st := e.state.Load(); st&member != 0 && e.state.CompareAndSwap(st, 0) {
		s.unlinkLocked(e)
	}
	return true
}

// Remove takes e out for good, when its member closes: later touches do
// not bring it back.
func (s *Set) Remove(e *Entry) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.state.Load()&member != 0 {
		s.unlinkLocked(e)
	}
	e.state.Store(gone)
}
