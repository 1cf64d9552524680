package segment

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// fuzzLog is the segment FuzzRecoverSegment damages: ten batches with
// offsets from 0, over 8 KiB so the indexes have entries.
func fuzzLog(tb testing.TB) []batchtest.Batch {
	rng := rand.New(rand.NewPCG(2024, 1))
	batches := batchtest.RandomBatches(tb, rng, 0, 10, 8, 250)
	require.Greater(tb, len(batchtest.Concat(batches)), 2*4096)
	return batches
}

// FuzzRecoverSegment writes a valid segment, truncates it at cut (if cut is
// inside it) and writes patch at at (which may extend the file), then
// recovers it. Recovery must succeed; every batch it returns must pass its
// checks and come from the file; every batch the damage left untouched must
// be among them (unless the patch planted valid batches of its own); only a
// tail is cut; and the segment must take appends.
func FuzzRecoverSegment(f *testing.F) {
	batches := fuzzLog(f)
	data := batchtest.Concat(batches)
	pos := batchtest.Positions(batches)
	size := uint32(len(data))
	f.Add(size, uint32(0), []byte(nil))                                                     // intact
	f.Add(uint32(pos[9]+30), uint32(0), []byte(nil))                                        // torn last batch
	f.Add(size, uint32(pos[3]+20), []byte{0xde, 0xad})                                      // bad CRC in batch 3
	f.Add(size, uint32(pos[5]+13), []byte{0x7f})                                            // leader epoch only: kept
	f.Add(size, size, make([]byte, 300))                                                    // preallocated zeros
	f.Add(size, size, []byte(batchtest.Encode(f, batches[9].Next(), sampleRecords()).Data)) // one more good batch
	f.Add(size, size, []byte(batchtest.Encode(f, 5, sampleRecords()).Data))                 // a batch out of sequence

	f.Fuzz(func(t *testing.T, cut, at uint32, patch []byte) {
		if len(patch) > 1<<16 {
			return
		}
		dmg := bytes.Clone(data)
		if cut < size {
			dmg = dmg[:cut]
		}
		if p := int(at % uint32(len(dmg)+1)); p+len(patch) > len(dmg) {
			dmg = append(dmg[:p], patch...)
		} else {
			copy(dmg[p:], patch)
		}
		// Which original batches are untouched, and whether any batch that
		// passes its checks is not one of them (planted by the patch).
		intact := map[int64]bool{}
		for k, b := range batches {
			if pos[k+1] <= int64(len(dmg)) && bytes.Equal(dmg[pos[k]:pos[k+1]], b.Data) {
				intact[pos[k]] = true
			}
		}
		planted := false
		for p := 0; p < len(dmg); p++ {
			q, ok := batch.Find(dmg[p:], func(int, int64) bool { return true })
			if !ok {
				break
			}
			p += q
			planted = planted || !intact[int64(p)]
		}

		dir := scratchDir(t)
		require.NoError(t, os.WriteFile(logPath(dir, 0), dmg, 0o600))
		cfg := fastConfig(1 << 20)
		s, rec, err := OpenActive(cfg, dir, 0, true)
		require.NoError(t, err)
		got := readBatches(t, s, 0) // each passed Parse
		kept := map[string]bool{}
		for _, b := range got {
			require.True(t, bytes.Contains(dmg[:s.Size()], b), "a returned batch comes from the file")
			kept[string(b)] = true
		}
		if !planted {
			for k, b := range batches {
				if intact[pos[k]] {
					require.True(t, kept[string(b.Data)], "untouched batch %d is kept", k)
				}
			}
		}
		if allZeroBytes(dmg[s.Size():]) {
			require.Zero(t, rec.Truncated)
		} else {
			require.Equal(t, int64(len(dmg))-s.Size(), rec.Truncated)
		}
		reopenAndAppend(t, cfg, dir, s, got2bytes(got), s.Next())
	})
}
