package log

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnsyncedSignalSurvivesConcurrentSyncs checks that OnUnsynced, which
// arms the broker's only SyncInterval timer, is never lost: a sync racing
// an append used to clear the dirty flag before the append set it, leaving
// it set with nothing to sync, so no later append signalled again and
// their data waited for Close. The window is narrow: this catches a
// regression only some of the time, under -race most often.
func TestUnsyncedSignalSurvivesConcurrentSyncs(t *testing.T) {
	cfg := testLog(t)
	cfg.Sync = SyncInterval
	var signalled bool
	var mu sync.Mutex
	cfg.OnUnsynced = func() {
		mu.Lock()
		signalled = true
		mu.Unlock()
	}
	p := openTestLog(t, cfg, false)

	stop := make(chan struct{})
	syncerDone := make(chan struct{})
	go func() { // syncs as often as it can, racing the appends
		defer close(syncerDone)
		for {
			select {
			case <-stop:
				return
			default:
				require.NoError(t, p.Sync())
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if _, err := p.Append(encode(w*1000000+i, 1, 100)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-syncerDone

	// Everything is synced now; the next append must signal again.
	require.NoError(t, p.Sync())
	mu.Lock()
	signalled = false
	mu.Unlock()
	_, err := p.Append(encode(1, 1, 100))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.True(t, signalled, "an append after a full sync did not signal OnUnsynced: its data would wait for Close")
}
