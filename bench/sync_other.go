//go:build !linux

package main

import "os"

// fdatasync is fsync where there is no fdatasync, as embedstream does.
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate does nothing where there is no fallocate: writes extend the
// file.
func preallocate(*os.File, int64, int64) error { return nil }
