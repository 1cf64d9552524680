package index

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs"
)

// FuzzOpenIndex feeds arbitrary bytes as .index and .timeindex files to the
// validating opens. Neither may panic; an index they accept must answer
// lookups consistently with its entries (what recovery relies on before
// trusting an index instead of rebuilding it).
func FuzzOpenIndex(f *testing.F) {
	valid := func(entries ...[2]uint32) []byte {
		var b []byte
		for _, e := range entries {
			b = binary.BigEndian.AppendUint32(b, e[0])
			b = binary.BigEndian.AppendUint32(b, e[1])
		}
		return b
	}
	f.Add(valid(), int64(100), int64(0))
	f.Add(valid([2]uint32{3, 4096}, [2]uint32{9, 8200}), int64(10000), int64(1000))
	f.Add(valid([2]uint32{3, 4096}, [2]uint32{2, 8200}), int64(10000), int64(0)) // not increasing
	f.Add(make([]byte, 24), int64(100), int64(5))                                // zero-filled
	f.Add([]byte{1, 2, 3}, int64(100), int64(0))                                 // partial entry

	f.Fuzz(func(t *testing.T, data []byte, logSize, base int64) {
		if len(data) > 1<<16 || base < 0 || base > math.MaxInt64/2 || logSize < 0 {
			return
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "x.index")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		if x, err := OpenOffsets(vfs.Default, path, base, len(data)/OffsetEntrySize+2, logSize, false, 0o600); err == nil {
			n := x.Len()
			require.Equal(t, len(data)/OffsetEntrySize, n)
			prev := int64(-1)
			for i := 0; i < n; i++ {
				rel := int64(binary.BigEndian.Uint32(data[i*OffsetEntrySize:]))
				pos := int64(binary.BigEndian.Uint32(data[i*OffsetEntrySize+4:]))
				require.Greater(t, pos, prev, "accepted entries grow")
				require.Less(t, pos, logSize, "accepted positions lie in the log")
				off, got, err := x.Lookup(base + rel)
				require.NoError(t, err)
				require.Equal(t, base+rel, off)
				require.Equal(t, pos, got)
				prev = pos
			}
			require.NoError(t, x.Close(false))
		}
		tpath := filepath.Join(dir, "x.timeindex")
		require.NoError(t, os.WriteFile(tpath, data, 0o600))
		last := base + logSize // any bound works for the check
		if x, err := OpenTimes(vfs.Default, tpath, base, last, len(data)/TimeEntrySize+2, false, 0o600); err == nil {
			n := x.Len()
			require.Equal(t, len(data)/TimeEntrySize, n)
			for i := 0; i < n; i++ {
				ts := int64(binary.BigEndian.Uint64(data[i*TimeEntrySize:]))
				rel := int64(binary.BigEndian.Uint32(data[i*TimeEntrySize+8:]))
				require.LessOrEqual(t, base+rel, last)
				// Lookup of a timestamp just above an entry's answers at or
				// after that entry's offset.
				if ts < math.MaxInt64 {
					after, err := x.Lookup(ts + 1)
					require.NoError(t, err)
					require.GreaterOrEqual(t, after, base+rel)
				}
			}
			require.NoError(t, x.Close(false))
		}
	})
}
