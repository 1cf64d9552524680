package mmap

import "golang.org/x/sys/unix"

// Allocate reserves disk blocks for [off, off+n) of the file and extends its
// size to cover them, so that later writes and reads through a mapping cannot
// fail for lack of space (a sparse file turns a full disk into SIGBUS).
func Allocate(fd uintptr, off, n int64) error {
	for {
		err := unix.Fallocate(int(fd), 0, off, n)
		if err != unix.EINTR {
			return err
		}
	}
}
