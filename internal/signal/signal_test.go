package signal

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A bell registered with Notify rings once per broadcast, at most one ring
// pending however many broadcasts; Forget stops it; Wait's channel closes.
func TestSignalBellsAndChannels(t *testing.T) {
	var s Signal
	bell, other := make(chan struct{}, 1), make(chan struct{}, 1)
	s.Notify(bell)
	s.Notify(bell) // once only
	s.Notify(other)
	require.Equal(t, 2, s.Bells())
	ch := s.Wait()
	s.Broadcast()
	s.Broadcast() // nobody registered again: nothing more rings
	require.Len(t, bell, 1)
	require.Len(t, other, 1)
	<-ch
	require.Zero(t, s.Bells(), "a broadcast consumes the registrations")
	<-bell
	s.Notify(bell)
	s.Notify(other)
	s.Forget(other)
	s.Broadcast()
	require.Len(t, bell, 1)
	require.Len(t, other, 1, "the ring from before only: forgotten bells are not rung")
}

func TestWatchRingsUntilUnwatch(t *testing.T) {
	var s Signal
	bell := make(chan struct{}, 1)
	s.Watch(bell)
	s.Watch(bell) // once only
	require.Equal(t, 1, s.Bells())
	for range 2 {
		s.Broadcast()
		s.Broadcast() // a ring not yet taken is not doubled
		<-bell
		require.Empty(t, bell)
	}
	s.Unwatch(bell)
	require.Zero(t, s.Bells())
	s.Broadcast()
	require.Empty(t, bell)
}
