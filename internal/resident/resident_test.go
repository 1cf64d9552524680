package resident

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

type fake struct {
	e        Entry
	busy     atomic.Bool
	held     atomic.Bool // holds resources
	released atomic.Int32
}

func newFake() *fake {
	m := &fake{}
	m.e.Init(m)
	return m
}

func (m *fake) TryRelease() bool {
	if m.busy.Load() {
		return false
	}
	m.held.Store(false)
	m.released.Add(1)
	return true
}

func (m *fake) use(s *Set) {
	m.held.Store(true)
	s.Touch(&m.e)
}

func TestBoundAndSecondChance(t *testing.T) {
	s := New(3)
	ms := make([]*fake, 10)
	for i := range ms {
		ms[i] = newFake()
		ms[i].use(s)
		require.LessOrEqual(t, s.Len(), 3)
	}
	held := 0
	for _, m := range ms {
		if m.held.Load() {
			held++
		}
	}
	require.Equal(t, 3, held, "every member past the bound gave its resources back")
	require.Equal(t, int64(7), s.Evictions())
	require.True(t, ms[9].held.Load(), "the newest stays")

	// A member in use refuses, and the clock takes another.
	for _, m := range ms[7:] {
		m.busy.Store(true)
	}
	extra := newFake()
	extra.use(s)
	require.Equal(t, 4, s.Len(), "all were busy: the bound is passed, not waited for")
	for _, m := range ms[7:] {
		require.True(t, m.held.Load())
		m.busy.Store(false)
	}
	another := newFake()
	another.use(s)
	require.LessOrEqual(t, s.Len(), 4)

	// A member used since the hand passed gets a second chance.
	s = New(3)
	a, b, c, d, e := newFake(), newFake(), newFake(), newFake(), newFake()
	a.use(s)
	b.use(s)
	c.use(s)
	d.use(s) // clears every used bit, evicts a
	require.False(t, a.held.Load())
	b.use(s) // used again since
	e.use(s) // passes b, evicts c
	require.True(t, b.held.Load())
	require.False(t, c.held.Load())
	require.True(t, d.held.Load() && e.held.Load())

	// Removed members leave and do not come back.
	s.Remove(&b.e)
	require.Equal(t, 2, s.Len())
	b.use(s)
	require.Equal(t, 2, s.Len())

	// Evict releases at once and leaves, unless in use.
	d.busy.Store(true)
	require.False(t, s.Evict(&d.e))
	d.busy.Store(false)
	require.True(t, s.Evict(&d.e))
	require.False(t, d.held.Load())
	require.Equal(t, 1, s.Len())

	var nilSet *Set
	nilSet.Touch(&c.e)
	nilSet.Remove(&c.e)
}

func TestConcurrentTouches(t *testing.T) {
	s := New(8)
	ms := make([]*fake, 64)
	for i := range ms {
		ms[i] = newFake()
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				m := ms[(i*7+g*13)%len(ms)]
				m.busy.Store(true)
				m.use(s)
				m.busy.Store(false)
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, s.Len(), 8+4, "past the bound by at most the members in use")
	n := 0
	for _, m := range ms {
		if m.e.state.Load()&member == 0 {
			continue
		}
		n++
	}
	require.Equal(t, s.Len(), n)
}
