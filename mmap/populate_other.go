//go:build unix && !linux

package mmap

// Populate would map the pages of b into the process ahead of reads; this
// OS has no call for it, so they fault in when read.
func Populate(b []byte) {}
