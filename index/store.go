package index

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/mmap"
)

// IntervalBytes is how much log, at least, lies between two index entries
// (Kafka's index.interval.bytes).
const IntervalBytes = 4096

// ErrInvalid reports an index file that failed validation; callers rebuild it
// from the log.
var ErrInvalid = errors.New("index: invalid index file")

// ErrFull reports an index with no room for another entry; callers roll the
// segment.
var ErrFull = errors.New("index: full")

// ErrClosed reports use of a closed index.
var ErrClosed = errors.New("index: closed")

const (
	minGrow = 4 << 10
	maxGrow = 1 << 20
)

// store is a file of fixed-size entries behind a lazily made mapping. The
// writer holds mu to append; lookups hold it shared.
type store struct {
	fs        vfs.FS
	path      string
	entrySize int
	perm      os.FileMode

	mu         sync.RWMutex
	data       []byte // mapping (or heap copy) of the file; nil until first use
	heap       bool   // data is a heap buffer: the directory is read-only
	writable   bool   // the file may still grow: its segment is active
	n          int    // entries in use; n*entrySize <= alloc <= len(data)
	alloc      int    // bytes the file holds (allocated) now
	maxEntries int    // capacity of the reservation for an active index
	closed     bool
	noSync     bool // skip msync and fsync: the log's policy leaves flushing to the OS
	// deferred: the file does not exist yet; the first entry (or seal)
	// creates it. An active segment that stays under IntervalBytes never
	// needs one.
	deferred bool
}

func newStore(fs vfs.FS, path string, entrySize, maxEntries int, perm os.FileMode) *store {
	return &store{fs: fs, path: path, entrySize: entrySize, maxEntries: maxEntries, perm: perm}
}

// create makes an empty, writable index file, replacing any old one.
func (s *store) create() error {
	f, err := s.fs.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, s.perm)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.writable = true
	s.n, s.alloc = 0, 0
	return nil
}

// createDeferred makes an empty, writable index whose file is created
// when the first entry is appended (or the index is sealed).
func (s *store) createDeferred() {
	s.writable, s.deferred = true, true
	s.n, s.alloc = 0, 0
}

// materializeLocked creates a deferred file. Callers hold mu exclusively.
func (s *store) materializeLocked() error {
	if !s.deferred {
		return nil
	}
	if err := s.create(); err != nil {
		return err
	}
	s.deferred = false
	return nil
}

// open adopts an existing file: its size must be a whole number of entries.
// A writable store may grow; a read-only one is never written.
func (s *store) open(writable bool) error {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := s.fs.OpenFile(s.path, flag, s.perm)
	if err != nil {
		return err
	}
	size, err := f.Size()
	closeErr := f.Close()
	if err != nil {
		return err
	}
	if closeErr != nil {
		return closeErr
	}
	if size%int64(s.entrySize) != 0 || (writable && size/int64(s.entrySize) > int64(s.maxEntries)) {
		return fmt.Errorf("%w: %s: size %d", ErrInvalid, s.path, size)
	}
	s.writable = writable
	s.n = int(size) / s.entrySize
	s.alloc = int(size)
	return nil
}

// load reads the file's entries onto the heap, for an index whose file
// another process owns: a copy cannot fault when the owner cuts or
// recreates the file, as a mapping would. The copy takes further entries
// on the heap. A file cut while it is read loses only the entries past the
// cut, and a partial entry at the end is left out.
func (s *store) load() error {
	f, err := s.fs.OpenFile(s.path, os.O_RDONLY, s.perm)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	n -= n % s.entrySize
	s.heap, s.writable = true, true
	s.data, s.n, s.alloc = buf[:n], n/s.entrySize, n
	return nil
}

// useHeap switches to an in-memory index, for a directory we may not write.
func (s *store) useHeap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unmapLocked()
	s.heap, s.writable = true, true
	s.data = nil
	s.n, s.alloc = 0, 0
}

// mapLocked makes the mapping if it does not exist yet. Callers hold mu
// exclusively.
func (s *store) mapLocked() error {
	if s.data != nil || s.heap {
		return nil
	}
	length := s.alloc
	if s.writable {
		length = s.maxEntries * s.entrySize
	}
	if length == 0 {
		return nil
	}
	flag := os.O_RDONLY
	if s.writable {
		flag = os.O_RDWR
	}
	f, err := s.fs.OpenFile(s.path, flag, s.perm)
	if err != nil {
		return err
	}
	// The mapping outlives the descriptor; keeping no descriptor open lets
	// thousands of partitions stay within the process's file limit.
	data, err := f.Map(length, s.writable)
	if err = errors.Join(err, f.Close()); err != nil {
		_ = mmap.Unmap(data)
		return err
	}
	s.data = data
	openMappings.Add(1)
	return nil
}

// openMappings counts live index mappings in the process: each counts
// against the kernel's vm.max_map_count.
var openMappings atomic.Int64

// OpenMappings reports how many index mappings are live in the process.
func OpenMappings() int64 { return openMappings.Load() }

// tryRelease unmaps the file unless a lookup or an append is using it
// now; the next use maps it again.
func (s *store) tryRelease() bool {
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	if !s.heap { // a heap copy holds no mapping, and is all there is
		s.unmapLocked()
	}
	return true
}

// view returns the entries in use, mapped, with mu held shared; callers must
// call s.mu.RUnlock when done.
func (s *store) view() ([]byte, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	if s.data == nil && s.n > 0 && !s.heap {
		s.mu.RUnlock()
		s.mu.Lock()
		err := ErrClosed
		if !s.closed { // Close may have run while no lock was held
			err = s.mapLocked()
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return nil, ErrClosed
		}
	}
	return s.data[:s.n*s.entrySize], nil
}

// append adds one encoded entry.
func (s *store) append(entry []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.writable {
		return fmt.Errorf("index: %s is sealed", s.path)
	}
	if s.n >= s.maxEntries {
		return ErrFull
	}
	end := (s.n + 1) * s.entrySize
	if s.heap {
		s.data = append(s.data[:s.n*s.entrySize], entry...)
		s.n++
		return nil
	}
	if err := s.materializeLocked(); err != nil {
		return err
	}
	if end > s.alloc {
		grow := min(max(s.alloc, minGrow), maxGrow)
		grow = min(grow, s.maxEntries*s.entrySize-s.alloc)
		grow = max(grow, end-s.alloc)
		if err := s.allocate(int64(s.alloc), int64(grow)); err != nil {
			return err
		}
		s.alloc += grow
	}
	if err := s.mapLocked(); err != nil {
		return err
	}
	copy(s.data[s.n*s.entrySize:end], entry)
	s.n++
	return nil
}

func (s *store) allocate(off, n int64) error {
	f, err := s.fs.OpenFile(s.path, os.O_RDWR, s.perm)
	if err != nil {
		return err
	}
	return errors.Join(f.Allocate(off, n), f.Close())
}

// reset drops every entry, for a rebuild. The file keeps its allocation.
func (s *store) reset() {
	s.mu.Lock()
	s.n = 0
	s.mu.Unlock()
}

// truncate drops entries from i on.
func (s *store) truncate(i int) {
	s.mu.Lock()
	s.n = min(s.n, i)
	s.mu.Unlock()
}

// seal cuts the file to its entries and syncs it; the index is read-only
// from then on.
func (s *store) seal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.writable || s.heap {
		s.writable = false
		return nil
	}
	// A sealed segment's indexes exist, empty or not: a missing one is
	// rebuilt when the segment is first read.
	if err := s.materializeLocked(); err != nil {
		return err
	}
	if err := s.syncLocked(true); err != nil {
		return err
	}
	s.writable = false
	s.alloc = s.n * s.entrySize
	return nil
}

// sync makes the entries durable. Indexes can always be rebuilt, so this only
// spares a rebuild after a crash.
func (s *store) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.heap || !s.writable || s.deferred {
		return nil
	}
	return s.syncLocked(false)
}

func (s *store) syncLocked(trim bool) error {
	if s.noSync {
		if !trim {
			return nil
		}
		f, err := s.fs.OpenFile(s.path, os.O_RDWR, s.perm)
		if err != nil {
			return err
		}
		return errors.Join(f.Truncate(int64(s.n*s.entrySize)), f.Close())
	}
	if s.data != nil {
		if err := mmap.Sync(s.data[:s.alloc]); err != nil {
			return fmt.Errorf("msync %s: %w", s.path, err)
		}
	}
	f, err := s.fs.OpenFile(s.path, os.O_RDWR, s.perm)
	if err != nil {
		return err
	}
	if trim {
		if err := f.Truncate(int64(s.n * s.entrySize)); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	return errors.Join(f.Sync(), f.Close())
}

// close releases the mapping. With trim, the file is first cut to its entries
// so a clean reopen can trust its size.
func (s *store) close(trim bool) error {
	var err error
	if trim && s.writable && !s.heap && !s.deferred {
		err = s.seal()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return err
	}
	s.closed = true
	s.unmapLocked()
	return err
}

func (s *store) unmapLocked() {
	if s.data != nil && !s.heap {
		_ = mmap.Unmap(s.data)
		openMappings.Add(-1)
	}
	s.data = nil
}

// isDeferred reports whether the file has not been created yet.
func (s *store) isDeferred() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.deferred
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}
