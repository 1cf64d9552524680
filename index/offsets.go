package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/embedstream/stream/internal/vfs"
)

// OffsetEntrySize is the size of one .index entry. Part of the on-disk format.
const OffsetEntrySize = 8

// Offsets is a segment's sparse offset index: batch first offsets to file
// positions. One goroutine appends; any number look up concurrently.
type Offsets struct {
	s    *store
	base int64
}

// MaxEntries is the number of entries an index reserves for a segment of
// segmentBytes: one per IntervalBytes, plus room for the batch that
// overshoots the limit.
func MaxEntries(segmentBytes int64) int {
	return int(segmentBytes/IntervalBytes) + 2
}

// CreateOffsets creates an empty offset index at path for a segment starting
// at base, with room for maxEntries entries.
func CreateOffsets(fs vfs.FS, path string, base int64, maxEntries int, perm os.FileMode) (*Offsets, error) {
	x := &Offsets{s: newStore(fs, path, OffsetEntrySize, maxEntries, perm), base: base}
	return x, x.s.create()
}

// OpenOffsets opens an existing offset index and validates it against the
// segment it describes: entries strictly increasing, positions inside
// logSize. Any failure is ErrInvalid (or the file error): rebuild the index.
func OpenOffsets(fs vfs.FS, path string, base int64, maxEntries int, logSize int64, writable bool, perm os.FileMode) (*Offsets, error) {
	x := &Offsets{s: newStore(fs, path, OffsetEntrySize, maxEntries, perm), base: base}
	if err := x.s.open(writable); err != nil {
		return nil, err
	}
	if err := x.validate(logSize); err != nil {
		x.s.close(false)
		return nil, err
	}
	return x, nil
}

// LoadOffsets reads an existing offset index onto the heap and validates
// it as OpenOffsets does, for a segment whose files another process owns
// and may cut or replace at any time: lookups then never touch the file.
// The index takes further entries on the heap.
func LoadOffsets(fs vfs.FS, path string, base int64, logSize int64) (*Offsets, error) {
	x := &Offsets{s: newStore(fs, path, OffsetEntrySize, math.MaxInt32, 0), base: base}
	if err := x.s.load(); err != nil {
		return nil, err
	}
	if err := x.validate(logSize); err != nil {
		return nil, err
	}
	return x, nil
}

// NewMemoryOffsets returns an empty offset index held on the heap, for a
// segment whose directory may not be written.
func NewMemoryOffsets(base int64) *Offsets {
	x := &Offsets{s: newStore(nil, "", OffsetEntrySize, math.MaxInt32, 0), base: base}
	x.s.useHeap()
	return x
}

func (x *Offsets) validate(logSize int64) error {
	data, err := x.s.view()
	if err != nil {
		return err
	}
	defer x.s.mu.RUnlock()
	var prevRel, prevPos uint32
	for i := 0; i < len(data); i += OffsetEntrySize {
		rel := binary.BigEndian.Uint32(data[i:])
		pos := binary.BigEndian.Uint32(data[i+4:])
		if pos == 0 || int64(pos) >= logSize || (i > 0 && (rel <= prevRel || pos <= prevPos)) {
			return fmt.Errorf("%w: %s: entry %d (offset +%d, position %d)", ErrInvalid, x.s.path, i/OffsetEntrySize, rel, pos)
		}
		prevRel, prevPos = rel, pos
	}
	return nil
}

// Append records that the batch starting at offset sits at pos. Offsets and
// positions must grow strictly; ErrFull means the segment must roll.
func (x *Offsets) Append(offset, pos int64) error {
	rel := offset - x.base
	if rel < 0 || rel > math.MaxUint32 || pos <= 0 || pos > math.MaxUint32 {
		return fmt.Errorf("index: entry (offset %d, position %d) out of range for base %d", offset, pos, x.base)
	}
	var e [OffsetEntrySize]byte
	binary.BigEndian.PutUint32(e[0:], uint32(rel))
	binary.BigEndian.PutUint32(e[4:], uint32(pos))
	return x.s.append(e[:])
}

// Lookup returns the greatest indexed batch start at or before offset, as
// (offset, position); with no such entry it returns (base, 0), the segment's
// start. Scanning the log from there finds offset.
func (x *Offsets) Lookup(offset int64) (int64, int64, error) {
	data, err := x.s.view()
	if err != nil {
		return 0, 0, err
	}
	defer x.s.mu.RUnlock()
	n := len(data) / OffsetEntrySize
	if offset < x.base { // before subtracting: offset - base may overflow
		return x.base, 0, nil
	}
	rel := offset - x.base
	if rel > math.MaxUint32 {
		rel = math.MaxUint32
	}
	// i = number of entries with relativeOffset <= rel.
	i := sort.Search(n, func(i int) bool {
		return int64(binary.BigEndian.Uint32(data[i*OffsetEntrySize:])) > rel
	})
	if i == 0 {
		return x.base, 0, nil
	}
	e := data[(i-1)*OffsetEntrySize:]
	return x.base + int64(binary.BigEndian.Uint32(e)), int64(binary.BigEndian.Uint32(e[4:])), nil
}

// TruncateAfter drops entries for positions at or past pos, after the log
// was cut there.
func (x *Offsets) TruncateAfter(pos int64) error {
	data, err := x.s.view()
	if err != nil {
		return err
	}
	n := len(data) / OffsetEntrySize
	i := sort.Search(n, func(i int) bool {
		return int64(binary.BigEndian.Uint32(data[i*OffsetEntrySize+4:])) >= pos
	})
	x.s.mu.RUnlock()
	x.s.truncate(i)
	return nil
}

// NewDeferredOffsets returns an empty offset index for path, writable like
// CreateOffsets's, whose file is created only when the first entry is appended
// or the index is sealed: a small active segment never needs one.
func NewDeferredOffsets(fs vfs.FS, path string, base int64, maxEntries int, perm os.FileMode) *Offsets {
	x := &Offsets{s: newStore(fs, path, OffsetEntrySize, maxEntries, perm), base: base}
	x.s.createDeferred()
	return x
}

// TryRelease unmaps the index file unless a lookup or append is using it
// now, and reports whether it did; the next use maps it again.
func (x *Offsets) TryRelease() bool { return x.s.tryRelease() }

// Deferred reports whether the index's file has not been created yet.
func (x *Offsets) Deferred() bool { return x.s.isDeferred() }

// Len reports the number of entries.
func (x *Offsets) Len() int { return x.s.len() }

// SetNoSync makes Sync and Seal skip msync and fsync, for logs whose policy
// leaves flushing to the OS. Seal still trims the file.
func (x *Offsets) SetNoSync(v bool) {
	x.s.mu.Lock()
	x.s.noSync = v
	x.s.mu.Unlock()
}

// Cap reports the number of entries the index has room for.
func (x *Offsets) Cap() int { return x.s.maxEntries }

// Reset drops every entry, to rebuild the index from the log.
func (x *Offsets) Reset() { x.s.reset() }

// Sync makes the entries durable.
func (x *Offsets) Sync() error { return x.s.sync() }

// Seal cuts the file to its entries, syncs it and makes the index read-only.
func (x *Offsets) Seal() error { return x.s.seal() }

// Close releases the index. With trim, a writable file is first cut to its
// entries, as Seal does, so that a clean reopen can trust it.
func (x *Offsets) Close(trim bool) error { return x.s.close(trim) }
