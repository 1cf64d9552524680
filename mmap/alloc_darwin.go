package mmap

import "golang.org/x/sys/unix"

// Allocate reserves disk blocks for [off, off+n) of the file and extends its
// size to cover them. macOS has no fallocate: F_PREALLOCATE reserves the
// blocks (contiguous if possible, else any), then ftruncate sets the size.
func Allocate(fd uintptr, off, n int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return err
	}
	end := off + n
	if end <= st.Size {
		return nil
	}
	store := unix.Fstore_t{Flags: unix.F_ALLOCATECONTIG, Posmode: unix.F_PEOFPOSMODE, Offset: 0, Length: end - st.Size}
	if err := unix.FcntlFstore(fd, unix.F_PREALLOCATE, &store); err != nil {
		store.Flags = unix.F_ALLOCATEALL
		if err := unix.FcntlFstore(fd, unix.F_PREALLOCATE, &store); err != nil {
			return err
		}
	}
	return unix.Ftruncate(int(fd), end)
}
