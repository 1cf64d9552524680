package index

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs"
)

// TestLoadCopiesToTheHeap: loaded indexes answer as the files did, keep
// answering after the files are cut (they are copies), take appends on the
// heap, and fail validation as opened ones do.
func TestLoadCopiesToTheHeap(t *testing.T) {
	dir := t.TempDir()
	opath, tpath := filepath.Join(dir, "x.index"), filepath.Join(dir, "x.timeindex")
	o, err := CreateOffsets(vfs.Default, opath, 100, 64, testPerm)
	require.NoError(t, err)
	ti, err := CreateTimes(vfs.Default, tpath, 100, 64, testPerm)
	require.NoError(t, err)
	for i := int64(1); i <= 5; i++ {
		require.NoError(t, o.Append(100+10*i, 1000*i))
		require.NoError(t, ti.Append(50*i, 100+10*i))
	}
	require.NoError(t, o.Close(true))
	require.NoError(t, ti.Close(true))

	lo, err := LoadOffsets(vfs.Default, opath, 100, 10000)
	require.NoError(t, err)
	lt, err := LoadTimes(vfs.Default, tpath, 100, 200)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(opath, 0))
	require.NoError(t, os.Truncate(tpath, 0))
	off, pos, err := lo.Lookup(135)
	require.NoError(t, err)
	require.Equal(t, []int64{130, 3000}, []int64{off, pos})
	after, err := lt.Lookup(120)
	require.NoError(t, err)
	require.EqualValues(t, 120, after)
	require.NoError(t, lo.Append(160, 6000))
	require.Equal(t, 6, lo.Len())
	require.NoError(t, lo.Close(false))
	require.NoError(t, lt.Close(false))

	_, err = LoadOffsets(vfs.Default, opath, 100, 10000)
	require.NoError(t, err, "an empty file is an empty index")
	require.NoError(t, os.WriteFile(opath, []byte{0, 0, 0, 1, 0, 0, 0, 0}, testPerm))
	_, err = LoadOffsets(vfs.Default, opath, 100, 10000)
	require.ErrorIs(t, err, ErrInvalid, "position 0")
	_, err = LoadTimes(vfs.Default, filepath.Join(dir, "missing"), 100, 200)
	require.ErrorIs(t, err, os.ErrNotExist)
}
