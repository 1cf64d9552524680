//go:build unix

package mmap

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// ErrFault is returned by Guard when the guarded function touched a mapped
// page the kernel could not supply (an I/O error under the mapping, or a file
// truncated by someone else).
var ErrFault = errors.New("mmap: fault reading mapped memory")

// Map maps length bytes of the file behind fd, from offset 0, shared. The
// mapping may be longer than the file: pages past the file's end exist but
// must never be touched (SIGBUS). A zero length returns a nil slice.
func Map(fd uintptr, length int, writable bool) ([]byte, error) {
	if length == 0 {
		return nil, nil
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(fd), 0, length, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", length, err)
	}
	return b, nil
}

// Unmap releases a mapping made by Map. Every slice into it becomes invalid.
func Unmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return nil
}

// Advice is a hint to the kernel about how a mapping will be read.
type Advice int

const (
	// Normal is the default read-ahead.
	Normal Advice = unix.MADV_NORMAL
	// Sequential asks for aggressive read-ahead: replay reads a segment front to back.
	Sequential Advice = unix.MADV_SEQUENTIAL
	// WillNeed asks the kernel to start reading the range in now.
	WillNeed Advice = unix.MADV_WILLNEED
	// Random turns read-ahead off, for index lookups.
	Random Advice = unix.MADV_RANDOM
)

// Advise passes a read-pattern hint for b, which must lie within a mapping.
// It is only a hint: errors are returned but callers may ignore them.
func Advise(b []byte, advice Advice) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Madvise(b, int(advice))
}

// Sync flushes the dirty pages of a writable mapping to its file and waits.
func Sync(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Msync(b, unix.MS_SYNC)
}

// Guard runs fn with debug.SetPanicOnFault on, so that a fault on a mapped
// page (an I/O error, a file shrunk underneath us) makes fn return an error
// wrapping ErrFault instead of killing the process. Other panics propagate.
//
// Guard costs two runtime calls; wrap whole scans, not single reads.
func Guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if a, ok := re.(interface{ Addr() uintptr }); ok {
					err = fmt.Errorf("%w at address %#x: %v", ErrFault, a.Addr(), re)
					return
				}
			}
			panic(r)
		}
	}()
	return fn()
}
