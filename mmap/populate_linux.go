package mmap

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noPopulate is set once the kernel has refused MADV_POPULATE_READ (it
// came in Linux 5.14), so later calls cost nothing.
var noPopulate atomic.Bool

// Populate maps the pages of b, which must lie within a file mapping, into
// the process now, as reading them would, in one call rather than a page
// fault each; pages the file has no data for yet read as zeros and are
// updated in place by later writes. It is an optimisation only: where the
// kernel cannot (before Linux 5.14, past the end of the file) it does
// nothing, and the pages fault in when read.
func Populate(b []byte) {
	if len(b) == 0 || noPopulate.Load() {
		return
	}
	if err := unix.Madvise(b, unix.MADV_POPULATE_READ); err == unix.EINVAL || err == unix.ENOSYS {
		noPopulate.Store(true)
	}
}
