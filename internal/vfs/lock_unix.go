//go:build unix

package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/embedstream/stream/internal/errs"
)

// Lock takes an exclusive (or shared) flock on name without waiting. flock
// locks belong to the open file, so a second Lock in the same process fails
// just as one in another process does. A shared lock of a missing file
// takes no lock and creates nothing.
func (osFS) Lock(name string, perm os.FileMode, shared bool) (io.Closer, error) {
	flag, how := os.O_RDWR|os.O_CREATE, unix.LOCK_EX
	if shared {
		flag, how = os.O_RDONLY, unix.LOCK_SH
	}
	f, err := OpenOSFile(name, flag|unix.O_NOFOLLOW, perm)
	if shared && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", errs.ErrLocked, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil // closing the file drops the flock
}
