package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync skips the metadata flush that fsync adds: our files are
// preallocated, so their size rarely changes and the data is what matters.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
