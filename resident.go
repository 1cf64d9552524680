package stream

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/embedstream/stream/internal/resident"
)

// What one segment may hold while resident: the active segment's file
// descriptor (appends), and mappings of its log (reads) and its two
// indexes. Part of how the default bound is derived.
const (
	segmentFDs      = 1
	segmentMappings = 3
)

// minOpenSegments is the least default bound, whatever the limits say.
const minOpenSegments = 64

// newResidentSet makes the broker's bound on segments holding resources
// (Options.MaxOpenSegments).
func newResidentSet(o *Options) *resident.Set {
	n := o.MaxOpenSegments
	if n == 0 {
		n = defaultMaxOpenSegments()
	}
	return resident.New(n)
}

// defaultMaxOpenSegments, read once per process (a unit test's broker
// should not pay for reading /proc), leaves half of the process's descriptors
// (RLIMIT_NOFILE) and half of its mappings (vm.max_map_count) to the rest
// of the program: sockets, other files, the Go heap's own mappings.
var defaultMaxOpenSegments = sync.OnceValue(func() int {
	n := 1 << 30
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 1<<31 {
		n = min(n, int(lim.Cur)/2/segmentFDs)
	}
	n = min(n, maxMapCount()/2/segmentMappings)
	return max(n, minOpenSegments)
})

// maxMapCount is the kernel's limit on a process's mappings; 65530, the
// Linux default, where it cannot be read.
func maxMapCount() int {
	const linuxDefault = 65530
	data, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		return linuxDefault
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n <= 0 {
		return linuxDefault
	}
	return n
}
