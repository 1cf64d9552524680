package segment

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/batchtest"
)

// TestFollowActiveSegment: a follower's segment takes what the writer
// appends at each Follow, across a clean close that trims the tail under
// it; a file cut below what it read is ErrShrunk.
func TestFollowActiveSegment(t *testing.T) {
	dir := scratchDir(t)
	rng := rand.New(rand.NewPCG(1, 2))
	w, err := Create(fastConfig(1<<20), dir, 0)
	require.NoError(t, err)
	batches := batchtest.RandomBatches(t, rng, 0, 40, 5, 300)
	appendAll(t, w, batches[:10])

	cfg := fastConfig(1 << 20)
	cfg.ReadOnly, cfg.Follow = true, true
	f, _, err := OpenActive(cfg, dir, 0, true)
	require.NoError(t, err)
	defer f.Close(false)
	require.Equal(t, w.Next(), f.Next())

	appendAll(t, w, batches[10:30])
	damaged, err := f.Follow()
	require.NoError(t, err)
	require.Zero(t, damaged)
	require.Equal(t, w.Next(), f.Next())
	require.Equal(t, w.Size(), f.Size())
	require.Equal(t, readBatches(t, w, 0), readBatches(t, f, 0))

	require.NoError(t, w.Close(true)) // trims the preallocated tail
	require.Equal(t, f.Size(), fileSize(t, logPath(dir, 0)))
	_, err = f.Follow()
	require.NoError(t, err)
	require.Equal(t, batches[29].Next(), f.Next())

	// Another writer appends (the owner reopened).
	w, _, err = OpenActive(fastConfig(1<<20), dir, 0, false)
	require.NoError(t, err)
	appendAll(t, w, batches[30:])
	_, err = f.Follow()
	require.NoError(t, err)
	require.Equal(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, f, 0)))
	require.NoError(t, w.Close(true))

	require.NoError(t, os.Truncate(logPath(dir, 0), 0)) // every page gone: reads fault
	_, err = f.Follow()
	require.ErrorIs(t, err, ErrShrunk)
	_, err = f.Read(batches[39].Base(), batches[39].Next(), 1<<20)
	require.Error(t, err, "the cut batch faults inside the guard")

	require.NoError(t, f.Seal())
	_, err = f.Follow()
	require.ErrorIs(t, err, ErrSealed)
	_, err = w.Follow()
	require.Error(t, err, "not a follower's")
}

// TestFollowIndexesOnTheHeap: a follower's sealed segment reads its index
// files onto the heap, so the owner recreating them cannot fault it.
func TestFollowIndexesOnTheHeap(t *testing.T) {
	dir := scratchDir(t)
	rng := rand.New(rand.NewPCG(3, 4))
	w, err := Create(fastConfig(1<<20), dir, 0)
	require.NoError(t, err)
	batches := batchtest.RandomBatches(t, rng, 0, 60, 5, 400)
	appendAll(t, w, batches)
	require.NoError(t, w.Seal())
	next := batches[len(batches)-1].Next()

	cfg := fastConfig(1 << 20)
	cfg.ReadOnly, cfg.Follow = true, true
	f := OpenSealed(cfg, dir, 0, next, w.Size())
	defer f.Close(false)
	require.NoError(t, f.CheckSealed(next))
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix} {
		require.NoError(t, os.Truncate(f.path(suffix), 0)) // what a rebuild's create does
	}
	got := readBatches(t, f, 0)
	require.Len(t, got, len(batches))
	off, ok, err := f.FindTime(batches[30].Data.MaxTimestamp(), 0, next)
	require.NoError(t, err)
	require.True(t, ok)
	require.LessOrEqual(t, off, batches[30].Data.LastOffset())
}
