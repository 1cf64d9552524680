// Package vfs is the seam between the storage engine and the operating system:
// every file the engine creates, writes, syncs, maps or deletes goes through an
// FS, so tests can substitute one that injects faults (see errorfs).
package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/embedstream/stream/mmap"
)

// FS is the set of file-system operations the engine uses.
type FS interface {
	// OpenFile opens or creates a file, as os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove deletes a file or an empty directory.
	Remove(name string) error
	// RemoveAll deletes a directory tree.
	RemoveAll(name string) error
	// Rename moves a file, replacing any file at newname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(name string, perm os.FileMode) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]os.DirEntry, error)
	// Stat describes a file, following symbolic links.
	Stat(name string) (os.FileInfo, error)
	// Lstat describes a file without following a final symbolic link.
	Lstat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creates, renames, removes) durable.
	SyncDir(name string) error
	// Lock takes an exclusive (or, with shared, a shared) lock on the file
	// name without waiting, creating the file unless shared; it fails with
	// errs.ErrLocked while another holder's lock conflicts, in this process
	// or another. A shared lock of a missing file is no lock: nil, nil.
	// Closing the returned Closer releases the lock.
	Lock(name string, perm os.FileMode, shared bool) (io.Closer, error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Name is the path the file was opened with.
	Name() string
	// Sync makes the file's data durable (fdatasync where the OS has it).
	Sync() error
	// Truncate sets the file's size.
	Truncate(size int64) error
	// Allocate reserves blocks for [off, off+n) and grows the file to cover them.
	Allocate(off, n int64) error
	// Size reports the file's current size.
	Size() (int64, error)
	// Map maps the first length bytes of the file (see mmap.Map); the caller
	// releases the mapping with mmap.Unmap.
	Map(length int, writable bool) ([]byte, error)
}

// Default is the operating system's file system.
var Default FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := OpenOSFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Lstat(name string) (os.FileInfo, error)       { return os.Lstat(name) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }

func (osFS) SyncDir(name string) error {
	d, err := OpenOSFile(filepath.Clean(name), os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return fdatasync(f.File) }

func (f osFile) Allocate(off, n int64) error { return mmap.Allocate(f.Fd(), off, n) }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (f osFile) Map(length int, writable bool) ([]byte, error) {
	return mmap.Map(f.Fd(), length, writable)
}
