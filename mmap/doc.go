// Package mmap is a thin layer over the operating system's memory mapping and
// file allocation calls, plus a guard that turns a fault on a mapped page into an
// error.
//
// Mappings made here are plain byte slices. The caller owns their lifetime: a
// slice into a mapping must not be touched after Unmap (the process would crash
// with "unexpected fault address"), so callers reference-count mappings.
//
// Platform code lives in files named after the OS (mmap_linux.go,
// mmap_darwin.go); the rest is shared by every Unix.
package mmap
