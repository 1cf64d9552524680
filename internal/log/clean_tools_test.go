package log

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestParseCleanerFiles checks the parsers tools read the cleaner's files
// with: the checkpoint a round wrote, and swap files as swap writes them.
func TestParseCleanerFiles(t *testing.T) {
	cfg := compactLog(t)
	l := openTestLog(t, cfg, false)
	now := time.Now()
	for i := range 500 {
		_, err := l.Append(keyed(now.UnixMilli(), kv{key: fmt.Sprintf("k%d", i%10), value: "some value"}))
		require.NoError(t, err)
	}
	res, err := l.Clean(t.Context(), now, NewKeyMap(1<<20), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	data, err := os.ReadFile(filepath.Join(cfg.Dir, CheckpointFile))
	require.NoError(t, err)
	sparse, firstDirty, lastRun, ok := ParseCheckpoint(data)
	require.True(t, ok)
	require.Equal(t, res.End, firstDirty)
	require.Equal(t, l.sparse.Load(), sparse)
	require.Equal(t, now.UnixMilli(), lastRun)
	_, _, _, ok = ParseCheckpoint(append(data[:len(data)-1:len(data)-1], 'x'))
	require.False(t, ok)
	require.NoError(t, l.Close(true))

	// A swap file as swap writes it, through readSwap's parser.
	body := []byte("0 120 1\n120 300 0\n")
	sw := fmt.Appendf(body, "%08x\n", crc32.Checksum(body, castagnoli))
	ranges, ok := ParseSwap(sw)
	require.True(t, ok)
	require.Equal(t, [][2]int64{{0, 120}, {120, 300}}, ranges)
	sw[0] = '1'
	_, ok = ParseSwap(sw)
	require.False(t, ok)
}
