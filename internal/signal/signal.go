// Package signal wakes goroutines waiting for a change: a log's high
// watermark moving, a group's state changing, a producer's batches
// completing (Signal); and the broker's background goroutine when work
// falls due sooner than it planned (Alarm).
package signal

import (
	"slices"
	"sync"
)

// Signal wakes every goroutine waiting for a change. A waiter either takes
// a channel closed at the next Broadcast (Wait), allocated only when someone
// waits so that writers pay nothing while nobody listens, or registers a
// bell of its own (Notify), which costs no allocation per wait and lets one
// goroutine wait on many signals with a single select. The zero value is
// ready to use.
type Signal struct {
	mu      sync.Mutex
	ch      chan struct{}
	bells   []chan struct{}
	watches []chan struct{} // rung at every Broadcast until Unwatch
}

// Wait returns a channel closed at the next Broadcast.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify rings bell, a channel of capacity 1, at the next Broadcast. A ring
// may come for a change its owner has already seen: owners look again
// after every ring.
func (s *Signal) Notify(bell chan struct{}) {
	s.mu.Lock()
	if !slices.Contains(s.bells, bell) {
		s.bells = append(s.bells, bell)
	}
	s.mu.Unlock()
}

// Forget drops bell, registered by a waiter that is going away.
func (s *Signal) Forget(bell chan struct{}) {
	s.mu.Lock()
	if i := slices.Index(s.bells, bell); i >= 0 {
		s.bells = slices.Delete(s.bells, i, i+1)
	}
	s.mu.Unlock()
}

// Watch rings bell, a channel of capacity 1, at every Broadcast until
// Unwatch: for a waiter that looks again after each ring for a while (a
// long poll), without registering again each time.
func (s *Signal) Watch(bell chan struct{}) {
	s.mu.Lock()
	if !slices.Contains(s.watches, bell) {
		s.watches = append(s.watches, bell)
	}
	s.mu.Unlock()
}

// Unwatch drops bell, registered with Watch.
func (s *Signal) Unwatch(bell chan struct{}) {
	s.mu.Lock()
	if i := slices.Index(s.watches, bell); i >= 0 {
		s.watches = slices.Delete(s.watches, i, i+1)
	}
	s.mu.Unlock()
}

// Bells reports how many bells wait for the next Broadcast (Notify and
// Watch).
func (s *Signal) Bells() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bells) + len(s.watches)
}

// Broadcast wakes every waiter: it closes the Wait channel and rings every
// bell once, then forgets them.
func (s *Signal) Broadcast() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	for _, bell := range s.bells {
		select {
		case bell <- struct{}{}:
		default: // rung already
		}
	}
	clear(s.bells)
	s.bells = s.bells[:0]
	for _, bell := range s.watches {
		select {
		case bell <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}
