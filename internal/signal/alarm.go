package signal

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Alarm collects deadlines for one goroutine that does periodic work only
// when some is due. Anyone who learns of work due at a time calls Want; the
// owner waits on C, and when its timer for Next fires calls Take, does the
// work, and Wants whatever the work says is due next. A Want later than one
// already pending costs a single atomic load, so it may be called on hot
// paths. The zero value is not usable: see NewAlarm.
//
// No deadline is lost: a Want that comes while the owner works is kept by
// Take's reset, and one that changes what the work would have seen either
// comes after Take (and is kept) or before the work looked (and is seen).
type Alarm struct {
	next atomic.Int64 // the earliest wanted time in Unix nanoseconds; 0: none
	mu   sync.Mutex   // serializes the slow path of Want with Take
	c    chan struct{}
}

// NewAlarm returns an alarm with nothing wanted.
func NewAlarm() *Alarm { return &Alarm{c: make(chan struct{}, 1)} }

// nanos maps t onto the alarm's clock: never 0, which means none.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, 1)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Want asks for the owner to run by t. If that is sooner than anything
// pending, C is signalled so that the owner re-arms its timer.
func (a *Alarm) Want(t time.Time) {
	n := nanos(t)
	if cur := a.next.Load(); cur != 0 && cur <= n {
		return
	}
	a.mu.Lock()
	if cur := a.next.Load(); cur == 0 || n < cur {
		a.next.Store(n)
		select {
		case a.c <- struct{}{}:
		default: // signalled already
		}
	}
	a.mu.Unlock()
}

// C is signalled when Next moved earlier.
func (a *Alarm) C() <-chan struct{} { return a.c }

// Next returns the earliest time wanted, or the zero time if none is.
func (a *Alarm) Next() time.Time {
	n := a.next.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Take forgets every time wanted so far, before the owner does the work
// they asked for; the owner then Wants what is due next.
func (a *Alarm) Take() {
	a.mu.Lock()
	a.next.Store(0)
	a.mu.Unlock()
}
