package segment

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/index"
	"github.com/embedstream/stream/internal/batchtest"
)

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if os.IsNotExist(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// smallBatches returns batches from base whose total stays under
// index.IntervalBytes: no index entry is ever due.
func smallBatches(t *testing.T, rng *rand.Rand, base int64) []batchtest.Batch {
	var out []batchtest.Batch
	ts := int64(1_700_000_000_000)
	for n := 0; ; {
		b := batchtest.Encode(t, base, batchtest.RandomRecords(rng, 3, 50, &ts))
		if n+len(b.Data) >= index.IntervalBytes {
			return out
		}
		n += len(b.Data)
		base = b.Next()
		out = append(out, b)
	}
}

// An active segment makes its index files only when the first entry is
// due; one closed cleanly without them reopens without a rebuild.
func TestIndexFilesDeferred(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	var rebuilds atomic.Int64
	cfg := &Config{Perm: 0o600, MaxBytes: 1 << 20, IndexRebuilds: &rebuilds}
	idx := filepath.Join(dir, FileName(0, IndexSuffix))
	tidx := filepath.Join(dir, FileName(0, TimeIndexSuffix))

	s, err := Create(cfg, dir, 0)
	require.NoError(t, err)
	require.False(t, exists(t, idx) || exists(t, tidx), "no index files before an entry is due")
	batches := smallBatches(t, rng, 0)
	appendAll(t, s, batches)
	require.False(t, exists(t, idx) || exists(t, tidx))
	require.NoError(t, s.Close(true))
	require.False(t, exists(t, idx) || exists(t, tidx), "a clean close makes none")

	s, rec, err := OpenActive(cfg, dir, 0, false)
	require.NoError(t, err)
	require.Equal(t, Recovery{}, rec, "missing files of a small segment are no damage")
	require.Equal(t, batches[len(batches)-1].Next(), s.Next())
	ts, err := s.MaxTimestamp()
	require.NoError(t, err)
	require.Equal(t, modelMaxTS(batches), ts)
	batchtest.RequireRecords(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))

	// Past IntervalBytes the files appear, with their entries.
	more := batchtest.RandomBatches(t, rng, s.Next(), 40, 10, 60)
	appendAll(t, s, more)
	batches = append(batches, more...)
	require.True(t, exists(t, idx) && exists(t, tidx))
	require.NoError(t, s.Close(true))
	s, rec, err = OpenActive(cfg, dir, 0, false)
	require.NoError(t, err)
	require.Equal(t, Recovery{}, rec)
	batchtest.RequireRecords(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))
	require.NoError(t, s.Close(true))
	require.Zero(t, rebuilds.Load())

	// Files that should exist but do not: recovered, counted as a rebuild.
	require.NoError(t, os.Remove(idx))
	require.NoError(t, os.Remove(tidx))
	s, rec, err = OpenActive(cfg, dir, 0, false)
	require.NoError(t, err)
	require.True(t, rec.IndexRebuilt && rec.Scanned)
	batchtest.RequireRecords(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))
	require.NoError(t, s.Close(true))

	// Only one of the two: recovered as well.
	require.NoError(t, os.Remove(tidx))
	s, rec, err = OpenActive(cfg, dir, 0, false)
	require.NoError(t, err)
	require.True(t, rec.IndexRebuilt)
	require.NoError(t, s.Close(true))
}

// Sealing makes both files, so a sealed segment's lazy open finds them.
func TestSealMakesIndexFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	var rebuilds atomic.Int64
	cfg := &Config{Perm: 0o600, MaxBytes: 1 << 20, IndexRebuilds: &rebuilds}
	s, err := Create(cfg, dir, 0)
	require.NoError(t, err)
	batches := smallBatches(t, rng, 0)
	appendAll(t, s, batches)
	require.NoError(t, s.Seal())
	require.True(t, exists(t, filepath.Join(dir, FileName(0, IndexSuffix))))
	require.True(t, exists(t, filepath.Join(dir, FileName(0, TimeIndexSuffix))))
	require.NoError(t, s.Close(true))
	next := batches[len(batches)-1].Next()
	s = OpenSealed(cfg, dir, 0, next, int64(len(batchtest.Concat(batches))))
	require.NoError(t, s.CheckSealed(next))
	ts, err := s.MaxTimestamp()
	require.NoError(t, err)
	require.Equal(t, modelMaxTS(batches), ts)
	_, ok, err := s.FindTime(math.MinInt64, 0, math.MaxInt64)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.Close(false))
	require.Zero(t, rebuilds.Load())
}

// A crash's recovery drops stale index files; a segment it leaves small
// makes none until an entry is due.
func TestRecoveryRemovesStaleIndexFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	cfg := &Config{Perm: 0o600, MaxBytes: 1 << 20}
	s, err := Create(cfg, dir, 0)
	require.NoError(t, err)
	batches := batchtest.RandomBatches(t, rng, 0, 40, 10, 60)
	appendAll(t, s, batches)
	require.NoError(t, s.Close(false))
	// Cut the log under its first index entry, as damage would.
	first := batchtest.Positions(batches)[1]
	require.NoError(t, os.Truncate(logPath(dir, 0), first))
	s, rec, err := OpenActive(cfg, dir, 0, true)
	require.NoError(t, err)
	require.True(t, rec.IndexRebuilt)
	require.False(t, exists(t, filepath.Join(dir, FileName(0, IndexSuffix))))
	require.NoError(t, s.Close(true))
	s, rec, err = OpenActive(cfg, dir, 0, false)
	require.NoError(t, err)
	require.Equal(t, Recovery{}, rec)
	require.Equal(t, batches[0].Next(), s.Next())
	require.NoError(t, s.Close(true))
}
