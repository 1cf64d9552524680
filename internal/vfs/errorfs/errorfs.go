// Package errorfs wraps a vfs.FS and makes chosen operations fail, so tests can
// drive every error path of the engine: ENOSPC on write, EIO on fsync, a failed
// mmap, a short write. Injectors compose: Ops filters by operation, OnPath by
// file name, OnIndex fires once on the Nth call, and Toggle switches faults on
// and off while a test runs.
package errorfs

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/embedstream/stream/internal/vfs"
)

// Op names a file-system operation that can fail.
type Op string

// Operations that can be made to fail.
const (
	OpOpen     Op = "open"
	OpRead     Op = "read"
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpAllocate Op = "allocate"
	OpTruncate Op = "truncate"
	OpMap      Op = "map"
	OpRename   Op = "rename"
	OpRemove   Op = "remove"
	OpMkdir    Op = "mkdir"
	OpSyncDir  Op = "syncdir"
	OpLock     Op = "lock"
)

// Injector decides whether an operation on a path fails, and how.
type Injector interface {
	MaybeError(op Op, path string) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op Op, path string) error

// MaybeError implements Injector.
func (f InjectorFunc) MaybeError(op Op, path string) error { return f(op, path) }

// ShortWrite wraps an error injected on OpWrite: half of the bytes are written
// before the error is returned, as a disk that fills mid-write does.
type ShortWrite struct{ Err error }

// Error implements error.
func (e ShortWrite) Error() string { return "short write: " + e.Err.Error() }

// Unwrap returns the injected error.
func (e ShortWrite) Unwrap() error { return e.Err }

// Ops fails every call of the listed operations with err.
func Ops(err error, ops ...Op) Injector {
	return InjectorFunc(func(op Op, _ string) error {
		for _, o := range ops {
			if o == op {
				return err
			}
		}
		return nil
	})
}

// OnPath restricts inj to paths containing substr.
func OnPath(substr string, inj Injector) Injector {
	return InjectorFunc(func(op Op, path string) error {
		if !strings.Contains(path, substr) {
			return nil
		}
		return inj.MaybeError(op, path)
	})
}

// Counter fires the wrapped injector only on the Nth (0-based) call that the
// wrapped injector would fail, and counts how many such calls were seen. It
// serves Pebble-style sweeps: run with n = 0, 1, 2, ... until Calls is at
// most n (the run met no nth failure point), and every one has been visited.
type Counter struct {
	inj   Injector
	n     int64
	calls atomic.Int64
}

// OnIndex returns a Counter that fires inj on its nth matching call only.
func OnIndex(n int, inj Injector) *Counter { return &Counter{inj: inj, n: int64(n)} }

// MaybeError implements Injector.
func (c *Counter) MaybeError(op Op, path string) error {
	err := c.inj.MaybeError(op, path)
	if err == nil {
		return nil
	}
	if c.calls.Add(1)-1 == c.n {
		return err
	}
	return nil
}

// Calls reports how many matching calls were seen.
func (c *Counter) Calls() int { return int(c.calls.Load()) }

// Toggle passes through to its injector only while enabled.
type Toggle struct {
	inj Injector
	on  atomic.Bool
}

// NewToggle returns a Toggle around inj, initially off.
func NewToggle(inj Injector) *Toggle { return &Toggle{inj: inj} }

// Enable turns faults on.
func (t *Toggle) Enable() { t.on.Store(true) }

// Disable turns faults off: the fault has cleared.
func (t *Toggle) Disable() { t.on.Store(false) }

// MaybeError implements Injector.
func (t *Toggle) MaybeError(op Op, path string) error {
	if !t.on.Load() {
		return nil
	}
	return t.inj.MaybeError(op, path)
}

// FS wraps Inner, consulting Inject before each operation.
type FS struct {
	Inner  vfs.FS
	Inject Injector
}

// Wrap returns an FS over inner (vfs.Default if nil).
func Wrap(inner vfs.FS, inj Injector) *FS {
	if inner == nil {
		inner = vfs.Default
	}
	return &FS{Inner: inner, Inject: inj}
}

func (fs *FS) fail(op Op, path string) error {
	if err := fs.Inject.MaybeError(op, path); err != nil {
		return &os.PathError{Op: string(op), Path: path, Err: err}
	}
	return nil
}

// OpenFile implements vfs.FS.
func (fs *FS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if err := fs.fail(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := fs.Inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs}, nil
}

// Remove implements vfs.FS.
func (fs *FS) Remove(name string) error {
	if err := fs.fail(OpRemove, name); err != nil {
		return err
	}
	return fs.Inner.Remove(name)
}

// RemoveAll implements vfs.FS.
func (fs *FS) RemoveAll(name string) error {
	if err := fs.fail(OpRemove, name); err != nil {
		return err
	}
	return fs.Inner.RemoveAll(name)
}

// Rename implements vfs.FS; injectors see the old name.
func (fs *FS) Rename(oldname, newname string) error {
	if err := fs.fail(OpRename, oldname); err != nil {
		return err
	}
	return fs.Inner.Rename(oldname, newname)
}

// MkdirAll implements vfs.FS.
func (fs *FS) MkdirAll(name string, perm os.FileMode) error {
	if err := fs.fail(OpMkdir, name); err != nil {
		return err
	}
	return fs.Inner.MkdirAll(name, perm)
}

// ReadDir implements vfs.FS.
func (fs *FS) ReadDir(name string) ([]os.DirEntry, error) {
	if err := fs.fail(OpRead, name); err != nil {
		return nil, err
	}
	return fs.Inner.ReadDir(name)
}

// Stat implements vfs.FS.
func (fs *FS) Stat(name string) (os.FileInfo, error) { return fs.Inner.Stat(name) }

// Lstat implements vfs.FS.
func (fs *FS) Lstat(name string) (os.FileInfo, error) { return fs.Inner.Lstat(name) }

// Lock implements vfs.FS.
func (fs *FS) Lock(name string, perm os.FileMode, shared bool) (io.Closer, error) {
	if err := fs.fail(OpLock, name); err != nil {
		return nil, err
	}
	return fs.Inner.Lock(name, perm, shared)
}

// SyncDir implements vfs.FS.
func (fs *FS) SyncDir(name string) error {
	if err := fs.fail(OpSyncDir, name); err != nil {
		return err
	}
	return fs.Inner.SyncDir(name)
}

type file struct {
	vfs.File
	fs *FS
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(OpWrite, f.Name()); err != nil {
		var sw ShortWrite
		if errors.As(err, &sw) {
			n, _ := f.File.WriteAt(p[:len(p)/2], off)
			return n, err
		}
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *file) Sync() error {
	if err := f.fs.fail(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *file) Truncate(size int64) error {
	if err := f.fs.fail(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *file) Allocate(off, n int64) error {
	if err := f.fs.fail(OpAllocate, f.Name()); err != nil {
		return err
	}
	return f.File.Allocate(off, n)
}

func (f *file) Map(length int, writable bool) ([]byte, error) {
	if err := f.fs.fail(OpMap, f.Name()); err != nil {
		return nil, err
	}
	return f.File.Map(length, writable)
}
