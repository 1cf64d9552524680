package log

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A bound is inclusive; what exceeds every bound goes to the last bucket.
func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	counts, sum := h.Snapshot()
	require.Len(t, counts, len(FsyncBounds)+1)
	require.Zero(t, sum)

	h.Observe(0)
	h.Observe(FsyncBounds[0])
	h.Observe(FsyncBounds[0] + 1)
	h.Observe(time.Millisecond)
	h.Observe(time.Hour)
	counts, sum = h.Snapshot()
	want := make([]int64, len(FsyncBounds)+1)
	want[0] = 2                // 0 and exactly the first bound
	want[1] = 1                // just above it
	want[3] = 1                // 1ms, the fourth bound
	want[len(FsyncBounds)] = 1 // an hour: above them all
	require.Equal(t, want, counts)
	require.Equal(t, 2*FsyncBounds[0]+1+time.Millisecond+time.Hour, sum)
}

// Concurrent observers lose nothing.
func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Observe(time.Duration(i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	counts, sum := h.Snapshot()
	var n int64
	for _, c := range counts {
		n += c
	}
	require.Equal(t, int64(8000), n)
	require.Equal(t, 8*time.Duration(999*1000/2)*time.Microsecond, sum)
}
