//go:build unix

package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// OpenOSFile opens a file as os.OpenFile does, in fewer system calls:
// os.OpenFile tries to register every file with the runtime's network
// poller, which refuses regular files and directories, at the cost of four
// fcntls and an epoll_ctl per open; os.NewFile asks one fcntl. The file is
// in blocking mode, as regular files are anyway. perm's permission bits
// are used (not setuid, setgid or sticky).
func OpenOSFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == nil {
			return os.NewFile(uintptr(fd), name), nil
		}
		if err != unix.EINTR {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
}
