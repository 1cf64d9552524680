package mmap

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Populate brings a preallocated, never written range into the page cache
// in one call, and later writes to the file read back through the mapping.
func TestPopulateMapsPreallocatedPages(t *testing.T) {
	const size = 1 << 20
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, Allocate(f.Fd(), 0, size))
	m, err := Map(f.Fd(), size, false)
	require.NoError(t, err)
	defer Unmap(m)
	resident := func() int {
		vec := make([]byte, size/os.Getpagesize())
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
		require.Zero(t, errno)
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	require.Zero(t, resident(), "nothing read yet")
	Populate(m[:size/2])
	if noPopulate.Load() {
		t.Skip("kernel without MADV_POPULATE_READ (before Linux 5.14)")
	}
	require.GreaterOrEqual(t, resident(), size/2/os.Getpagesize(), "the first half at least (the kernel may read around), at once")
	_, err = f.WriteAt([]byte("written after"), 4096)
	require.NoError(t, err)
	require.Equal(t, "written after", string(m[4096:4096+13]))
	Populate(m[size-4096:]) // past what is populated already: no error either way
	Populate(nil)
}
