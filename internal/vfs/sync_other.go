//go:build !linux

package vfs

import "os"

// fdatasync is fsync where the OS has no fdatasync. On macOS os.File.Sync
// issues F_FULLFSYNC, which is what durability there requires.
func fdatasync(f *os.File) error { return f.Sync() }
