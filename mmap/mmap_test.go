//go:build unix

package mmap

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

var sink byte

func mapFile(t *testing.T, size int, writable bool) (string, *os.File, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i%251 + 1)
	}
	require.NoError(t, os.WriteFile(path, data, 0o600))
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	m, err := Map(f.Fd(), size, writable)
	require.NoError(t, err)
	return path, f, m
}

// TestGuardTurnsFaultIntoError: a file truncated under its mapping makes
// the next read of a mapped page SIGBUS; inside Guard that is an error
// wrapping ErrFault, not a crash.
func TestGuardTurnsFaultIntoError(t *testing.T) {
	page := os.Getpagesize()
	path, _, m := mapFile(t, 4*page, false)
	defer Unmap(m)
	require.Equal(t, byte(1), m[0])
	require.NoError(t, os.Truncate(path, 0))

	var got byte
	err := Guard(func() error {
		got = m[2*page+5]
		return nil
	})
	require.ErrorIs(t, err, ErrFault)
	require.Zero(t, got)

	// The guard is off again afterwards, and still works next time.
	require.False(t, debug.SetPanicOnFault(false))
	err = Guard(func() error {
		sink = m[page] // a real load: `_ = m[page]` may be compiled away
		return nil
	})
	require.ErrorIs(t, err, ErrFault)
}

func TestGuardPassesThrough(t *testing.T) {
	want := errors.New("fn failed")
	require.ErrorIs(t, Guard(func() error { return want }), want)
	require.NoError(t, Guard(func() error { return nil }))

	// Panics that are not faults are not swallowed.
	require.PanicsWithValue(t, "boom", func() {
		_ = Guard(func() error { panic("boom") })
	})
	require.Panics(t, func() {
		_ = Guard(func() error {
			var s []byte
			_ = s[3] // an index error is a bug, not a fault
			return nil
		})
	})
	// An enclosing setting is restored.
	old := debug.SetPanicOnFault(true)
	require.NoError(t, Guard(func() error { return nil }))
	require.True(t, debug.SetPanicOnFault(old))
}

func TestMapAllocateSync(t *testing.T) {
	page := os.Getpagesize()
	m, err := Map(0, 0, false)
	require.NoError(t, err)
	require.Nil(t, m, "a zero-length map is nil")
	require.NoError(t, Unmap(nil))

	path, f, w := mapFile(t, page, true)
	require.NoError(t, Advise(w, Sequential))
	w[10] = 0xee
	require.NoError(t, Sync(w))
	require.NoError(t, Unmap(w))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, byte(0xee), data[10], "writes through a shared mapping reach the file")

	// Allocate grows the file and the new range reads as zeros.
	require.NoError(t, Allocate(f.Fd(), int64(page), int64(3*page)))
	st, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, int64(4*page), st.Size())
	r, err := Map(f.Fd(), 4*page, false)
	require.NoError(t, err)
	require.NoError(t, Guard(func() error {
		for _, c := range r[page:] {
			if c != 0 {
				return errors.New("not zero")
			}
		}
		return nil
	}))
	require.NoError(t, Unmap(r))
}
