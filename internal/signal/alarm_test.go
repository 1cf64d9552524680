package signal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An alarm keeps the earliest time wanted and signals only when that moves
// earlier; Take forgets it for the owner's next round.
func TestAlarm(t *testing.T) {
	a := NewAlarm()
	signalled := func() bool {
		select {
		case <-a.C():
			return true
		default:
			return false
		}
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	require.True(t, a.Next().IsZero())
	require.False(t, signalled())

	a.Want(t0.Add(time.Hour))
	require.True(t, signalled())
	require.True(t, a.Next().Equal(t0.Add(time.Hour)))
	a.Want(t0.Add(2 * time.Hour))
	require.False(t, signalled(), "later than pending: nothing to re-arm")
	a.Want(t0)
	require.True(t, signalled())
	require.True(t, a.Next().Equal(t0))

	a.Take()
	require.True(t, a.Next().IsZero())
	a.Want(t0.Add(time.Hour))
	require.True(t, signalled(), "after Take any time is news")

	// Times outside the clock's range are kept in it, never as "none".
	a.Take()
	a.Want(time.Time{})
	require.False(t, a.Next().IsZero())
	require.True(t, signalled())
}

// Want on a hot path allocates nothing once a sooner time is pending.
func TestAlarmWantAllocatesNothing(t *testing.T) {
	a := NewAlarm()
	now := time.Now()
	a.Want(now)
	require.Zero(t, testing.AllocsPerRun(100, func() { a.Want(now.Add(time.Minute)) }))
}
