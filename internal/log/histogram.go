package log

import (
	"sync/atomic"
	"time"
)

// FsyncBounds are the upper bounds (inclusive) of the fsync latency
// histogram's buckets, from a fast SSD's flush to a stalled disk's; the last
// bucket counts what exceeds them all. Fixed, so that observing is one
// atomic add per bucket, count and sum, without a lock.
var FsyncBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond,
}

// Histogram counts durations in the buckets of FsyncBounds. Safe for
// concurrent use; the zero value is empty.
type Histogram struct {
	counts [len(FsyncBounds) + 1]atomic.Int64
	sum    atomic.Int64 // nanoseconds
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := len(FsyncBounds)
	for j, b := range FsyncBounds {
		if d <= b {
			i = j
			break
		}
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the counts per bucket (len(FsyncBounds)+1, not
// cumulative) and the sum. Each is read atomically, not all at once: an
// observation made meanwhile may be in the counts and not yet in the sum.
func (h *Histogram) Snapshot() (counts []int64, sum time.Duration) {
	counts = make([]int64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, time.Duration(h.sum.Load())
}
