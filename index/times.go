package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/embedstream/stream/internal/vfs"
)

// TimeEntrySize is the size of one .timeindex entry. Part of the on-disk format.
const TimeEntrySize = 12

// Times is a segment's sparse time index: running maximum timestamps to the
// offset at which they were reached. Every record at or before an entry's
// offset has a timestamp at or below the entry's timestamp.
type Times struct {
	s    *store
	base int64
}

// CreateTimes creates an empty time index at path.
func CreateTimes(fs vfs.FS, path string, base int64, maxEntries int, perm os.FileMode) (*Times, error) {
	x := &Times{s: newStore(fs, path, TimeEntrySize, maxEntries, perm), base: base}
	return x, x.s.create()
}

// OpenTimes opens an existing time index and validates it: timestamps and
// offsets strictly increasing, offsets at or below lastOffset (the segment's
// last offset). Any failure is ErrInvalid (or the file error): rebuild.
func OpenTimes(fs vfs.FS, path string, base, lastOffset int64, maxEntries int, writable bool, perm os.FileMode) (*Times, error) {
	x := &Times{s: newStore(fs, path, TimeEntrySize, maxEntries, perm), base: base}
	if err := x.s.open(writable); err != nil {
		return nil, err
	}
	if err := x.validate(lastOffset); err != nil {
		x.s.close(false)
		return nil, err
	}
	return x, nil
}

// LoadTimes reads an existing time index onto the heap and validates it as
// OpenTimes does; see LoadOffsets.
func LoadTimes(fs vfs.FS, path string, base, lastOffset int64) (*Times, error) {
	x := &Times{s: newStore(fs, path, TimeEntrySize, math.MaxInt32, 0), base: base}
	if err := x.s.load(); err != nil {
		return nil, err
	}
	if err := x.validate(lastOffset); err != nil {
		return nil, err
	}
	return x, nil
}

// NewMemoryTimes returns an empty time index held on the heap.
func NewMemoryTimes(base int64) *Times {
	x := &Times{s: newStore(nil, "", TimeEntrySize, math.MaxInt32, 0), base: base}
	x.s.useHeap()
	return x
}

func (x *Times) validate(lastOffset int64) error {
	data, err := x.s.view()
	if err != nil {
		return err
	}
	defer x.s.mu.RUnlock()
	var prevTS int64
	var prevRel uint32
	for i := 0; i < len(data); i += TimeEntrySize {
		ts := int64(binary.BigEndian.Uint64(data[i:]))
		rel := binary.BigEndian.Uint32(data[i+8:])
		if x.base+int64(rel) > lastOffset || (i > 0 && (ts <= prevTS || rel <= prevRel)) {
			return fmt.Errorf("%w: %s: entry %d (time %d, offset +%d)", ErrInvalid, x.s.path, i/TimeEntrySize, ts, rel)
		}
		prevTS, prevRel = ts, rel
	}
	return nil
}

// Append records that the largest timestamp up to offset is ts. It is a
// no-op unless ts exceeds the last entry's timestamp, so callers may offer
// every batch.
func (x *Times) Append(ts, offset int64) error {
	rel := offset - x.base
	if rel < 0 || rel > math.MaxUint32 {
		return fmt.Errorf("index: time entry offset %d out of range for base %d", offset, x.base)
	}
	if last, lastOff, ok, err := x.Last(); err != nil {
		return err
	} else if ok && (ts <= last || offset <= lastOff) {
		return nil
	}
	var e [TimeEntrySize]byte
	binary.BigEndian.PutUint64(e[0:], uint64(ts))
	binary.BigEndian.PutUint32(e[8:], uint32(rel))
	return x.s.append(e[:])
}

// Last returns the newest entry: the segment's largest indexed timestamp.
func (x *Times) Last() (ts, offset int64, ok bool, err error) {
	data, err := x.s.view()
	if err != nil {
		return 0, 0, false, err
	}
	defer x.s.mu.RUnlock()
	if len(data) == 0 {
		return 0, 0, false, nil
	}
	e := data[len(data)-TimeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), x.base + int64(binary.BigEndian.Uint32(e[8:])), true, nil
}

// Lookup returns the offset after which the first record with a timestamp
// at or above ts must lie: the offset of the last entry whose timestamp is
// below ts, or base-1 when there is none. Scan forward from the next offset.
func (x *Times) Lookup(ts int64) (int64, error) {
	_, offset, err := x.LookupEntry(ts)
	return offset, err
}

// LookupEntry is Lookup returning the entry's timestamp too (ts-1 is
// returned with base-1), so callers can check the entry against the log.
func (x *Times) LookupEntry(ts int64) (entryTS, offset int64, err error) {
	data, err := x.s.view()
	if err != nil {
		return 0, 0, err
	}
	defer x.s.mu.RUnlock()
	n := len(data) / TimeEntrySize
	i := sort.Search(n, func(i int) bool {
		return int64(binary.BigEndian.Uint64(data[i*TimeEntrySize:])) >= ts
	})
	if i == 0 {
		return ts - 1, x.base - 1, nil
	}
	e := data[(i-1)*TimeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), x.base + int64(binary.BigEndian.Uint32(e[8:])), nil
}

// TruncateAfter drops entries for offsets at or past offset.
func (x *Times) TruncateAfter(offset int64) error {
	data, err := x.s.view()
	if err != nil {
		return err
	}
	n := len(data) / TimeEntrySize
	i := sort.Search(n, func(i int) bool {
		return x.base+int64(binary.BigEndian.Uint32(data[i*TimeEntrySize+8:])) >= offset
	})
	x.s.mu.RUnlock()
	x.s.truncate(i)
	return nil
}

// NewDeferredTimes returns an empty time index for path, writable like
// CreateTimes's, whose file is created only when the first entry is appended
// or the index is sealed: a small active segment never needs one.
func NewDeferredTimes(fs vfs.FS, path string, base int64, maxEntries int, perm os.FileMode) *Times {
	x := &Times{s: newStore(fs, path, TimeEntrySize, maxEntries, perm), base: base}
	x.s.createDeferred()
	return x
}

// TryRelease unmaps the index file unless a lookup or append is using it
// now, and reports whether it did; the next use maps it again.
func (x *Times) TryRelease() bool { return x.s.tryRelease() }

// Deferred reports whether the index's file has not been created yet.
func (x *Times) Deferred() bool { return x.s.isDeferred() }

// Len reports the number of entries.
func (x *Times) Len() int { return x.s.len() }

// SetNoSync makes Sync and Seal skip msync and fsync, for logs whose policy
// leaves flushing to the OS. Seal still trims the file.
func (x *Times) SetNoSync(v bool) {
	x.s.mu.Lock()
	x.s.noSync = v
	x.s.mu.Unlock()
}

// Cap reports the number of entries the index has room for.
func (x *Times) Cap() int { return x.s.maxEntries }

// Reset drops every entry, to rebuild the index from the log.
func (x *Times) Reset() { x.s.reset() }

// Sync makes the entries durable.
func (x *Times) Sync() error { return x.s.sync() }

// Seal cuts the file to its entries, syncs it and makes the index read-only.
func (x *Times) Seal() error { return x.s.seal() }

// Close releases the index; see Offsets.Close.
func (x *Times) Close(trim bool) error { return x.s.close(trim) }
