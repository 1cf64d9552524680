//go:build unix

package stream

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile is the name of the file whose flock marks a directory in use.
const lockFile = "LOCK"

// lockDir takes an exclusive (or, read-only, shared) flock on DIR/LOCK
// without waiting. flock locks belong to the open file, so a second Open in
// the same process fails just as one in another process does. A read-only
// broker on a directory with no LOCK file takes no lock and writes nothing.
func lockDir(dir string, readOnly bool, perm os.FileMode) (*os.File, error) {
	path := dir + string(os.PathSeparator) + lockFile
	flag, how := os.O_RDWR|os.O_CREATE, unix.LOCK_EX
	if readOnly {
		flag, how = os.O_RDONLY, unix.LOCK_SH
	}
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW, perm)
	if readOnly && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// unlockDir releases the lock; closing the file drops the flock.
func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
