//go:build unix && !linux && !darwin

package mmap

import "golang.org/x/sys/unix"

// Allocate extends the file to off+n bytes by writing zeros where the OS has
// no preallocation call, so the blocks exist before any mapping reads them.
func Allocate(fd uintptr, off, n int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	for pos := st.Size; pos < off+n; {
		chunk := min(int64(len(zeros)), off+n-pos)
		w, err := unix.Pwrite(int(fd), zeros[:chunk], pos)
		if err != nil {
			return err
		}
		pos += int64(w)
	}
	return nil
}
