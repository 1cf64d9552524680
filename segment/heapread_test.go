package segment

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/batchtest"
)

// TestSmallActiveSegmentReadsFromMemory: the first read of a small active
// segment goes through a copy in memory, no mapping; once it grew, the next
// read maps it, and the view of the copy still holds its bytes.
func TestSmallActiveSegmentReadsFromMemory(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	dir := t.TempDir()
	s, err := Create(&Config{Perm: 0o600, MaxBytes: 1 << 20}, dir, 0)
	require.NoError(t, err)
	defer s.Close(true)

	mappings := OpenMappings()
	appendAll(t, s, batchtest.RandomBatches(t, rng, 0, 5, 5, 500))
	first, err := s.Read(0, math.MaxInt64, math.MaxInt32)
	require.NoError(t, err)
	require.True(t, s.m.heap)
	require.Equal(t, mappings, OpenMappings())
	want := bytes.Clone(first.Data)

	appendAll(t, s, batchtest.RandomBatches(t, rng, s.Next(), 5, 5, 500))
	second, err := s.Read(0, math.MaxInt64, math.MaxInt32)
	require.NoError(t, err)
	require.False(t, s.m.heap, "a segment read again after it grew is mapped")
	require.Greater(t, OpenMappings(), mappings)
	require.Equal(t, want, first.Data)
	require.Equal(t, want, second.Data[:len(want)])
	first.Release()
	second.Release()
	require.Len(t, readBatches(t, s, 0), 10)
}

// TestFollowerNeverReadsFromMemory: a follower's bytes past what it has
// seen may be a write under way, so it always maps.
func TestFollowerNeverReadsFromMemory(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(&Config{Perm: 0o600, MaxBytes: 1 << 20}, dir, 0)
	require.NoError(t, err)
	defer w.Close(true)
	appendAll(t, w, batchtest.RandomBatches(t, rand.New(rand.NewPCG(4, 4)), 0, 3, 3, 50))
	f, _, err := OpenActive(&Config{Perm: 0o600, MaxBytes: 1 << 20, ReadOnly: true, Follow: true}, dir, 0, false)
	require.NoError(t, err)
	defer f.Close(false)
	v, err := f.Read(0, math.MaxInt64, math.MaxInt32)
	require.NoError(t, err)
	defer v.Release()
	require.NotEmpty(t, v.Data)
	require.False(t, f.m.heap)
}
