package segment

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/batchtest"
)

// TestSmallActiveSegmentReadsFromMemory: an active segment's first
// heapReadMax bytes are read through a copy grown as the segment grows, with
// no mapping; views taken along the way keep their bytes; past heapReadMax
// reads go through a mapping, and the earlier views still hold.
func TestSmallActiveSegmentReadsFromMemory(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	dir := t.TempDir()
	s, err := Create(&Config{Perm: 0o600, MaxBytes: 1 << 20}, dir, 0)
	require.NoError(t, err)
	defer s.Close(true)

	type held struct {
		v    View
		want []byte
	}
	var views []held
	mappings := OpenMappings()
	for s.Size() <= heapReadMax {
		b := batchtest.RandomBatches(t, rng, s.Next(), 1, 5, 500)[0]
		_, err := s.Append(b.Data)
		require.NoError(t, err)
		v, err := s.Read(0, math.MaxInt64, math.MaxInt32)
		require.NoError(t, err)
		if s.Size() <= heapReadMax {
			require.True(t, s.m.heap, "at %d bytes", s.Size())
			require.Equal(t, mappings, OpenMappings())
		} else {
			require.False(t, s.m.heap, "at %d bytes", s.Size())
		}
		views = append(views, held{v, bytes.Clone(v.Data)})
	}
	require.Greater(t, OpenMappings(), mappings)
	for _, h := range views {
		require.Equal(t, h.want, h.v.Data)
		h.v.Release()
	}
	require.Len(t, readBatches(t, s, 0), len(views))
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
