package vfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenOSFile: OpenOSFile behaves as os.OpenFile for what the engine
// uses: creation with perm, O_EXCL, errors that errors.Is recognises,
// reads and writes at offsets, directories.
func TestOpenOSFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	_, err := OpenOSFile(path, os.O_RDONLY, 0)
	require.ErrorIs(t, err, os.ErrNotExist)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, path, pe.Path)

	f, err := OpenOSFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	require.NoError(t, err)
	require.Equal(t, path, f.Name())
	_, err = f.WriteAt([]byte("hello"), 3)
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = f.ReadAt(buf, 3)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))
	require.NoError(t, f.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640)&^umask(t), fi.Mode().Perm())
	require.Equal(t, int64(8), fi.Size())

	_, err = OpenOSFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	require.ErrorIs(t, err, os.ErrExist)

	d, err := OpenOSFile(dir, os.O_RDONLY, 0)
	require.NoError(t, err)
	names, err := d.Readdirnames(-1)
	require.NoError(t, err)
	require.Equal(t, []string{"f"}, names)
	require.NoError(t, d.Close())
}

// umask returns the process's umask, as a file created 0777 shows it.
func umask(t *testing.T) os.FileMode {
	path := filepath.Join(t.TempDir(), "u")
	require.NoError(t, os.WriteFile(path, nil, 0o777))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return 0o777 &^ fi.Mode().Perm()
}
