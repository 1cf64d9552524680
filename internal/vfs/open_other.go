//go:build !unix

package vfs

import "os"

// OpenOSFile opens a file as os.OpenFile does.
func OpenOSFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
