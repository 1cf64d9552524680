// Package segment reads and writes log segments: files of Kafka record
// batches (see package batch) laid back to back, each batch a self-checking
// unit, with two sparse indexes (see package index) beside each file.
//
// Damage costs only the damaged bytes. Recovery (OpenActive, Recover) cuts
// a torn tail: the bytes after the last batch that passes its checks when no
// valid batch follows them. A damaged batch that valid batches follow is
// left in place and passed over, by recovery and by reads alike; Read
// reports the offsets it cannot return as a *DamageError.
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/index"
	"github.com/embedstream/stream/internal/resident"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/mmap"
)

// File name suffixes. A segment's files are named by its base offset, 20
// digits, zero-padded: 00000000000000000000.log. Part of the on-disk format.
const (
	LogSuffix       = ".log"
	IndexSuffix     = ".index"
	TimeIndexSuffix = ".timeindex"
)

// ErrClosed reports use of a segment that was closed or deleted.
var ErrClosed = errors.New("segment: closed")

// ErrSealed reports an append to a segment that no longer takes writes.
var ErrSealed = errors.New("segment: sealed")

// ErrSyncFailed reports a failed fsync of the log. It is sticky: the kernel
// may have dropped the unsynced pages, so the segment takes no more writes.
var ErrSyncFailed = errors.New("segment: fsync failed")

// DamageError reports offsets a read cannot return because their batch
// fails its checks or is missing; reading can go on at Next. It wraps
// batch.ErrCorrupt.
type DamageError struct {
	Segment int64 // the segment's base offset
	Offset  int64 // the offset asked for
	Next    int64 // the first offset after the damage
	Err     error // what was found
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("segment %d: offsets [%d, %d) unreadable: %v", e.Segment, e.Offset, e.Next, e.Err)
}

// Unwrap returns what was found, which wraps batch.ErrCorrupt.
func (e *DamageError) Unwrap() error { return e.Err }

// errNeedsRecovery says a cleanly closed segment does not match what the
// clean close left: it must be recovered as after a crash.
var errNeedsRecovery = errors.New("segment: needs recovery")

// FileName returns the name of base's file with the given suffix.
func FileName(base int64, suffix string) string { return fmt.Sprintf("%020d%s", base, suffix) }

// ParseFileName is FileName's inverse: the base offset in a file name with
// the given suffix, and whether the name is one.
func ParseFileName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(filepath.Base(name), suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// Config is shared by the segments of one log.
type Config struct {
	// FS is the file system; nil means vfs.Default.
	FS vfs.FS
	// Perm is the mode of created files.
	Perm os.FileMode
	// MaxBytes is the size at which the log rolls segments; it sizes the
	// preallocation steps, the read mapping and the index reservations.
	MaxBytes int64
	// ReadOnly forbids any change to the files: damage found by recovery is
	// skipped in memory and indexes are rebuilt on the heap.
	ReadOnly bool
	// Follow reads files another process owns and writes (implies
	// ReadOnly): their indexes are read onto the heap rather than mapped, so
	// that the owner cutting or recreating one cannot fault a lookup, and an
	// active segment takes what the owner appends through Follow.
	Follow bool
	// NoSync skips the fsyncs of sealing and of directory changes, for logs
	// whose policy leaves flushing to the OS. Sync still syncs.
	NoSync bool
	// IndexRebuilds, if set, counts indexes rebuilt when first used (a
	// sealed segment's are opened lazily); Recovery reports those rebuilt
	// on open.
	IndexRebuilds *atomic.Int64
	// Sparse, if set, is an offset below which segments may skip offsets:
	// a log cleaner removed batches from them, between their batches and
	// at their end. Their batches need only ascend, reads pass over the
	// gaps, and a segment that ends before the next begins is whole. Other
	// segments' batches must follow each other offset by offset, which is
	// how damage that removed whole batches is seen.
	Sparse *atomic.Int64
	// Resident, if set, bounds how many segments (of every log sharing
	// it) hold a file descriptor or mappings at once: the others give
	// them back and take them again when next used (see TryRelease).
	Resident *resident.Set
	// Writer, if set, is the lock the segments' writer holds around
	// Append, Seal, Close and Delete (the log's): an active segment gives
	// back its file and mappings only while it can take that lock.
	// Without one, an active segment keeps them.
	Writer *sync.Mutex
}

func (c *Config) fs() vfs.FS {
	if c.FS == nil {
		return vfs.Default
	}
	return c.FS
}

const (
	minAllocStep = 64 << 10
	maxAllocStep = 16 << 20
)

// Segment is one log file and its two indexes. One goroutine writes (the
// log's writer, which serializes Append, Sync, Seal); reads are safe from
// any number of goroutines at once and see only whole batches.
type Segment struct {
	cfg     *Config
	base    int64
	logPath string

	size atomic.Int64 // bytes of whole batches; readers never look past it
	// verified is a position below which every batch has passed its CRC
	// check in this process (on recovery, on an earlier read, or because we
	// encoded it ourselves): reads check each byte from disk once, not on
	// every fetch.
	verified atomic.Int64
	next     atomic.Int64 // offset after the last record
	maxTS    atomic.Int64 // largest record timestamp, math.MinInt64 if unknown or empty

	// Writer state. f is the active segment's descriptor: nil once
	// sealed, and while released (see TryRelease) until the writer needs
	// it again. Written under fileMu and mu by the writer.
	active     atomic.Bool // takes appends: not sealed or closed
	f          vfs.File
	capacity   atomic.Int64          // bytes the file holds, preallocated tail included; read by populateAhead
	sinceIndex int64                 // log bytes appended since the last index entry
	syncErr    atomic.Pointer[error] // sticky: after a failed fsync the file's state is unknown
	fileMu     sync.Mutex            // held to fsync or close f: Sync runs beside the writer

	// loadMu serializes opening (or rebuilding) the indexes, which happens
	// lazily for sealed segments, and closing them.
	loadMu  sync.Mutex
	indexed atomic.Bool // offsets and times are ready; fast path for readers
	// noIndexFiles: the active segment was opened without index files
	// (none was due before its clean close). Set during open.
	noIndexFiles bool
	listed       *Listing // what the log's listing showed, during open only
	offsets      *index.Offsets
	times        *index.Times

	mu     sync.Mutex // guards m and closed
	m      *mapping   // cached read mapping, nil until first read
	closed bool

	res resident.Entry // the segment's place in cfg.Resident
}

// mapping is a reference-counted read-only mapping of a log file. The
// segment holds one reference while it caches the mapping; each read view
// holds another, so unmapping waits until no slice into it is in use.
type mapping struct {
	data      []byte
	refs      atomic.Int32
	populated atomic.Int64 // bytes from 0 mapped in by populateAhead
	heap      bool         // data is a copy in memory (see heapReadMax), not a mapping
}

func (m *mapping) release() {
	if m.refs.Add(-1) == 0 && m.data != nil && !m.heap {
		_ = mmap.Unmap(m.data)
		openMappings.Add(-1)
	}
}

// openMappings counts live log mappings in the process: each one counts
// against the kernel's vm.max_map_count.
var openMappings atomic.Int64

// OpenMappings reports how many segment log mappings are live in the process.
func OpenMappings() int64 { return openMappings.Load() }

// View is a read-only window onto whole batches of a segment. Data aliases
// the mapped file and stays valid until Release.
type View struct {
	Data []byte
	m    *mapping
}

// Release unpins the view. Data must not be used afterwards.
func (v *View) Release() {
	if v.m != nil {
		v.m.release()
		v.m = nil
	}
	v.Data = nil
}

// sparse reports whether the segment may skip offsets (Config.Sparse).
func (s *Segment) sparse() bool {
	return s.cfg.Sparse != nil && s.base < s.cfg.Sparse.Load()
}

func (s *Segment) path(suffix string) string {
	return filepath.Join(filepath.Dir(s.logPath), FileName(s.base, suffix))
}

func newSegment(cfg *Config, dir string, base int64) *Segment {
	s := &Segment{cfg: cfg, base: base, logPath: filepath.Join(dir, FileName(base, LogSuffix))}
	s.res.Init(s)
	s.next.Store(base)
	s.maxTS.Store(math.MinInt64)
	return s
}

// Create makes a new, empty, active segment starting at base.
func Create(cfg *Config, dir string, base int64) (*Segment, error) {
	if cfg.ReadOnly {
		return nil, fmt.Errorf("segment: create %d: read-only", base)
	}
	s := newSegment(cfg, dir, base)
	fs := cfg.fs()
	f, err := fs.OpenFile(s.logPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, cfg.Perm)
	if err != nil {
		return nil, err
	}
	s.f = f
	s.active.Store(true)
	s.deferIndexes()
	if !cfg.NoSync {
		if err = fs.SyncDir(dir); err != nil {
			return nil, errors.Join(err, s.closeFiles(false))
		}
	}
	s.indexed.Store(true)
	if cfg.Resident != nil {
		// Under a bound, a segment holds its descriptor from its first
		// append (see file), not from its creation: a new topic's idle
		// partitions hold none.
		s.f = nil
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// OpenSealed adopts a segment that was sealed and is known to hold size
// bytes of batches with offsets [base, next). Nothing is read until first
// use; indexes are opened (or rebuilt) then.
func OpenSealed(cfg *Config, dir string, base, next, size int64) *Segment {
	s := newSegment(cfg, dir, base)
	s.size.Store(size)
	s.next.Store(next)
	s.capacity.Store(size)
	return s
}

// Recovery reports what opening a segment found.
type Recovery struct {
	// Truncated is the number of bytes cut from the end of the log because
	// they did not form valid, consecutive batches.
	Truncated int64 // a zero-filled (preallocated, never written) tail is cut but not counted
	// Cause is why the cut was made, nil if nothing was cut.
	Cause error
	// IndexRebuilt is set when an index was missing or invalid.
	IndexRebuilt bool
	// Damaged counts damaged ranges left in place because valid batches
	// follow them; reads report them as a *DamageError.
	Damaged int
	// Scanned is set when the whole log was scanned: asked for, or because
	// a cleanly closed segment did not match what its close left.
	Scanned bool
}

// OpenActive opens the segment that takes appends. With recover, every
// batch is checked (bounds, CRC, offsets in sequence from base), a torn tail
// is cut (see the package doc) and the indexes are rebuilt. Without it, the
// file was closed cleanly: the indexes and the batches after the last index
// entry are checked, and if they do not match what a clean close leaves,
// the segment is recovered as with recover.
func OpenActive(cfg *Config, dir string, base int64, recover bool) (*Segment, Recovery, error) {
	return openActive(cfg, dir, base, recover, nil)
}

// Listing is what a directory listing showed of an active segment's files.
type Listing struct {
	Size int64 // the log file's size
	// The index files' sizes, -1 if missing. Empty ones are as good as
	// missing: files made by an older version before any entry was due.
	IndexSize, TimeIndexSize int64
}

// OpenActiveListed is OpenActive for a segment whose files were just
// listed: a cleanly closed one is opened without a system call unless it
// has batches after its last index entry to read (an empty one costs
// none), and holds no descriptor until its first append.
func OpenActiveListed(cfg *Config, dir string, base int64, listed Listing, recover bool) (*Segment, Recovery, error) {
	return openActive(cfg, dir, base, recover, &listed)
}

func openActive(cfg *Config, dir string, base int64, recover bool, listed *Listing) (*Segment, Recovery, error) {
	s := newSegment(cfg, dir, base)
	s.active.Store(true)
	s.listed = listed
	var fileSize int64
	if listed != nil && !recover && !cfg.Follow {
		fileSize = listed.Size
	} else {
		f, err := s.file()
		if err != nil {
			return nil, Recovery{}, err
		}
		if fileSize, err = f.Size(); err != nil {
			return nil, Recovery{}, errors.Join(err, f.Close())
		}
	}
	var err error
	s.capacity.Store(fileSize)
	s.size.Store(fileSize)
	var rec Recovery
	if recover {
		rec, err = s.recover(fileSize, false)
	} else if rec, err = s.loadTail(); errors.Is(err, errNeedsRecovery) {
		rec, err = s.recover(fileSize, true)
	}
	s.listed = nil
	if err != nil {
		return nil, rec, errors.Join(err, s.closeFiles(false))
	}
	return s, rec, nil
}

// file returns the active segment's descriptor, opening it again if it was
// released. Only the writer (or, while opening, the owner) calls it.
func (s *Segment) file() (vfs.File, error) {
	if f := s.f; f != nil {
		return f, nil
	}
	flag := os.O_RDWR
	if s.cfg.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := s.cfg.fs().OpenFile(s.logPath, flag, s.cfg.Perm)
	if err != nil {
		return nil, err
	}
	s.fileMu.Lock()
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
	s.fileMu.Unlock()
	return f, nil
}

// descriptorLocked returns a descriptor of the log to read, map or sync it
// through: the writer's while it holds one, else one of its own, which done
// closes. s.mu or s.fileMu is held (each guards f against the writer).
func (s *Segment) descriptorLocked() (f vfs.File, done func(), err error) {
	if s.f != nil {
		return s.f, func() {}, nil
	}
	if f, err = s.cfg.fs().OpenFile(s.logPath, os.O_RDONLY, s.cfg.Perm); err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}

// preadLocked reads the log's bytes [pos, end) into memory; s.mu is held.
// A file that ends before end is reported as a mapping's fault would be.
func (s *Segment) preadLocked(pos, end int64) ([]byte, error) {
	f, done, err := s.descriptorLocked()
	if err != nil {
		return nil, err
	}
	defer done()
	buf := make([]byte, end-pos)
	if _, err := f.ReadAt(buf, pos); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %w", mmap.ErrFault, err)
		}
		return nil, fmt.Errorf("segment %d: read: %w", s.base, err)
	}
	return buf, nil
}

// TryRelease gives back what the segment holds of the operating system's
// (the active segment's descriptor, its index and read mappings) unless
// its writer, an index load or a lookup is using it right now: it never
// waits (see resident.Releaser). It reports whether it gave back
// everything. The segment keeps its state and takes what it needs again
// on its next use; views already handed out keep their mappings.
//
// An active segment's preallocated tail is cut as a clean close cuts it,
// so an idle partition holds no more disk than its batches.
func (s *Segment) TryRelease() bool {
	if s.active.Load() {
		if s.cfg.Writer == nil || !s.cfg.Writer.TryLock() {
			return false
		}
		defer s.cfg.Writer.Unlock()
	}
	if !s.loadMu.TryLock() {
		return false
	}
	defer s.loadMu.Unlock()
	if !s.fileMu.TryLock() {
		return false
	}
	defer s.fileMu.Unlock()
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	all := true
	// The read mapping goes first: truncating a file while it is mapped
	// makes the kernel zap the mapped pages past the cut, another TLB
	// shootdown on top of the munmap's.
	if s.m != nil {
		s.m.release()
		s.m = nil
	}
	if f := s.f; f != nil {
		size := s.size.Load()
		if !s.cfg.ReadOnly && s.capacity.Load() > size && s.syncFailure() == nil {
			if err := f.Truncate(size); err != nil {
				return false // keep the file; the writer finds out on its next call
			}
			s.capacity.Store(size)
		}
		_ = f.Close() // its data is in the page cache, fsynced by Sync as before
		s.f = nil
	}
	if s.offsets != nil {
		all = s.offsets.TryRelease() && all
	}
	if s.times != nil {
		all = s.times.TryRelease() && all
	}
	return all
}

// Release gives back what the segment holds now, as TryRelease, and leaves
// the resident set (Config.Resident) if it did.
func (s *Segment) Release() bool {
	if s.cfg.Resident == nil {
		return s.TryRelease()
	}
	return s.cfg.Resident.Evict(&s.res)
}

// touch tells the resident set the segment was used (and may hold
// resources): one atomic load when it is known to be.
func (s *Segment) touch() { s.cfg.Resident.Touch(&s.res) }

// recover scans the whole log, cuts a torn tail, passes over damage that
// valid batches follow, and rebuilds the indexes from what remains.
// afterClean says the segment was closed cleanly, so even a zero tail is
// damage: a clean close trims the preallocation.
func (s *Segment) recover(fileSize int64, afterClean bool) (Recovery, error) {
	rec := Recovery{Scanned: true}
	if err := s.resetIndexes(); err != nil {
		return rec, err
	}
	rec.IndexRebuilt = true
	m, err := s.mapping(fileSize)
	if err != nil {
		return rec, err
	}
	defer m.release()
	if m.heap {
		// The copy holds what a cut below removes, and appends then
		// overwrite: reads after recovery start from the file again.
		defer s.dropMapping()
	}
	var found scanResult
	var preallocated bool
	err = mmap.Guard(func() error {
		found = s.scan(m.data[:fileSize])
		preallocated = !afterClean && allZero(m.data[found.end:fileSize])
		return nil
	})
	valid := found.end
	rec.Cause, rec.Damaged = found.cause, found.damaged
	if err == nil && rec.Cause != nil && !errors.Is(rec.Cause, batch.ErrCorrupt) {
		err = rec.Cause // writing an index failed: not damage to the log
	}
	if err != nil {
		// The log could not be read (a fault under the mapping) or indexed:
		// fail rather than cut what may be good data.
		rec.Cause = err
		return rec, err
	}
	if preallocated {
		// A zero tail after a crash is unused preallocation, not damage.
		rec.Cause = nil
	}
	if valid < fileSize {
		if !preallocated {
			rec.Truncated = fileSize - valid
		}
		if !s.cfg.ReadOnly {
			// Cut, rather than overwrite later: a stale batch left past the
			// new end could otherwise pass for data after the next crash.
			f, err := s.file()
			if err == nil {
				err = f.Truncate(valid)
			}
			if err != nil {
				return rec, err
			}
			s.capacity.Store(valid)
		}
	}
	if !s.cfg.ReadOnly && !s.cfg.NoSync {
		// What survived a process crash may still be only in the page
		// cache: make it durable before anyone reads it as committed.
		// Under SyncNever nothing is promised against a machine crash, so
		// the kernel writes it back in its own time, as it does appends.
		f, err := s.file()
		if err != nil {
			return rec, err
		}
		if err := f.Sync(); err != nil {
			return rec, s.setSyncFailure(err)
		}
	}
	s.size.Store(valid)
	s.verified.Store(valid)
	if found.firstBad >= 0 {
		s.verified.Store(found.firstBad) // reads must check from the damage on
	}
	s.indexed.Store(true)
	return rec, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// scanResult is what a scan of a segment's batches found.
type scanResult struct {
	end      int64 // after the last batch that passed its checks
	damaged  int   // damaged ranges passed over because valid batches follow
	firstBad int64 // position of the first of them, -1 if none
	cause    error // why the scan stopped before the end of the data, or nil
}

// scan walks the batches of data from position 0, checks them (CRC
// included) and indexes them. Damage that valid batches follow is passed
// over; the scan stops at damage nothing valid follows, a torn tail.
func (s *Segment) scan(data []byte) scanResult {
	r := scanResult{firstBad: -1}
	var pos int64
	expect := s.base
	for pos < int64(len(data)) {
		b, err := batchAt(data, pos, expect, true, s.sparse())
		if err != nil {
			next, ok := resync(data, pos, expect)
			if !ok {
				r.cause = fmt.Errorf("at position %d: %w", pos, err)
				return r
			}
			if r.firstBad < 0 {
				r.firstBad = pos
			}
			r.damaged++
			pos, expect = next, batch.Batch(data[next:]).BaseOffset()
			continue
		}
		if err := s.indexBatch(b, pos); err != nil {
			r.cause = err
			return r
		}
		pos += int64(len(b))
		expect = b.LastOffset() + 1
		r.end = pos
	}
	return r
}

// batchAt returns the batch at pos in data, which must start at offset
// expect, or (sparse) at or after it. With verify its CRC is checked, else
// only its header.
func batchAt(data []byte, pos, expect int64, verify, sparse bool) (batch.Batch, error) {
	var b batch.Batch
	var err error
	if verify {
		b, err = batch.Parse(data[pos:])
	} else if err = batch.CheckHeader(data[pos:]); err == nil {
		b = batch.Batch(data[pos : pos+int64(batch.Batch(data[pos:]).Size())])
	}
	if err == nil && b.BaseOffset() != expect && !(sparse && b.BaseOffset() > expect) {
		err = fmt.Errorf("%w: offset %d, expected %d", batch.ErrCorrupt, b.BaseOffset(), expect)
	}
	return b, err
}

// resync finds where valid batches go on after damage at pos, expect being
// the offset the damaged batch should start at: the first batch after pos
// that passes its checks (see batch.Find) and plausibly follows, its offset
// past expect by no more than the skipped bytes can hold (see maxOffsets).
// Framing is not trusted to find it: a damaged length could skip good
// batches. A zero tail (unused preallocation, or zeros written over the
// end) holds none.
func resync(data []byte, pos, expect int64) (int64, bool) {
	if allZero(data[pos:]) {
		return 0, false
	}
	from := pos + 1
	p, ok := batch.Find(data[from:], func(p int, base int64) bool {
		return base > expect && base-expect <= maxOffsets(from+int64(p)-pos)
	})
	return from + int64(p), ok
}

// minRecordBytes is the smallest a record can be: one byte for each of its
// length, attributes, timestamp and offset deltas, key and value lengths
// and header count.
const minRecordBytes = 7

// maxOffsets bounds the offsets n bytes of batches can take. Uncompressed,
// a record takes at least a byte of them; compressed, a batch (a header at
// least) may hold as many records as fit in batch.MaxUncompressedBytes, a
// few bytes of zstd standing for thousands of offsets.
func maxOffsets(n int64) int64 {
	batches := (n + batch.HeaderSize - 1) / batch.HeaderSize
	return max(n, batches*(batch.MaxUncompressedBytes/minRecordBytes))
}

// indexBatch records a batch at pos in the indexes and in-memory state.
func (s *Segment) indexBatch(b batch.Batch, pos int64) error {
	ts := max(s.maxTS.Load(), b.MaxTimestamp())
	if s.sinceIndex >= index.IntervalBytes && pos > 0 {
		if err := s.offsets.Append(b.BaseOffset(), pos); err != nil {
			return err
		}
		// A full time index only makes time lookups scan further; the
		// segment rolls (IndexFull) before that matters.
		if s.times.Len() < s.times.Cap()-1 {
			if err := s.times.Append(ts, b.LastOffset()); err != nil {
				return err
			}
		}
		s.sinceIndex = 0
	}
	s.sinceIndex += int64(len(b))
	s.maxTS.Store(ts)
	s.next.Store(b.LastOffset() + 1)
	return nil
}

// resetIndexes starts both indexes afresh, on disk or (read-only) on the heap.
// Callers hold loadMu or own the segment exclusively (during open).
func (s *Segment) resetIndexes() error {
	if s.offsets != nil {
		s.offsets.Close(false)
	}
	if s.times != nil {
		s.times.Close(false)
	}
	s.sinceIndex = 0
	s.maxTS.Store(math.MinInt64)
	s.next.Store(s.base)
	s.offsets, s.times = nil, nil
	s.indexed.Store(false)
	if s.cfg.ReadOnly {
		s.offsets, s.times = index.NewMemoryOffsets(s.base), index.NewMemoryTimes(s.base)
		return nil
	}
	// The old files are stale: remove them, or a clean close before the
	// new ones are due would leave them for the next open to trust.
	fs := s.cfg.fs()
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix} {
		if err := fs.Remove(s.path(suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	s.deferIndexes()
	return nil
}

// deferIndexes installs empty writable indexes whose files are created
// when the first entry is due (see indexBatch) or the segment is sealed: a
// segment smaller than index.IntervalBytes never makes any while active.
func (s *Segment) deferIndexes() {
	fs := s.cfg.fs()
	maxEntries := index.MaxEntries(max(s.cfg.MaxBytes, s.capacity.Load()))
	s.setIndexes(index.NewDeferredOffsets(fs, s.path(IndexSuffix), s.base, maxEntries, s.cfg.Perm),
		index.NewDeferredTimes(fs, s.path(TimeIndexSuffix), s.base, maxEntries, s.cfg.Perm))
}

// indexesDeferred reports whether the active segment's index files were
// never made: no entry was due yet.
func (s *Segment) indexesDeferred() bool {
	return s.offsets != nil && s.offsets.Deferred()
}

// setIndexes installs opened indexes, passing on the sync policy.
func (s *Segment) setIndexes(offsets *index.Offsets, times *index.Times) {
	offsets.SetNoSync(s.cfg.NoSync)
	times.SetNoSync(s.cfg.NoSync)
	s.offsets, s.times = offsets, times
}

// ensureIndexes opens the indexes of a trusted log, or rebuilds them
// (without CRC checks, the log having been verified before) if they are
// missing or invalid, and reports whether it rebuilt them.
func (s *Segment) ensureIndexes() (rebuilt bool, err error) {
	if s.indexed.Load() {
		return false, nil
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.indexed.Load() {
		return false, nil
	}
	if s.isClosed() {
		return false, ErrClosed
	}
	size := s.size.Load()
	if s.openIndexesLocked(size) {
		s.indexed.Store(true)
		return false, nil
	}
	// Missing or invalid: rebuild from the log, which is the truth.
	if s.cfg.IndexRebuilds != nil {
		s.cfg.IndexRebuilds.Add(1)
	}
	return true, s.rebuildLocked(size)
}

// openIndexesLocked opens the index files and reports whether they are
// valid for a log of size bytes. Callers hold loadMu.
func (s *Segment) openIndexesLocked(size int64) bool {
	fs := s.cfg.fs()
	maxEntries := index.MaxEntries(max(s.cfg.MaxBytes, size))
	active := s.active.Load()
	writable := active && !s.cfg.ReadOnly
	lastOffset := s.next.Load() - 1
	if active {
		lastOffset = math.MaxInt64 // active: the tail scan finds the end later
	}
	var offsets *index.Offsets
	var times *index.Times
	var err error
	if active && s.indexFilesMissing() {
		// An active segment whose first entry was never due: no files,
		// no rebuild. loadTail checks that none was due.
		if writable {
			s.deferIndexes()
		} else {
			s.setIndexes(index.NewMemoryOffsets(s.base), index.NewMemoryTimes(s.base))
		}
		s.noIndexFiles = true
		return true
	}
	if s.cfg.Follow {
		offsets, err = index.LoadOffsets(fs, s.path(IndexSuffix), s.base, size)
		if err == nil {
			times, err = index.LoadTimes(fs, s.path(TimeIndexSuffix), s.base, lastOffset)
		}
		if err != nil {
			return false
		}
	} else {
		offsets, err = index.OpenOffsets(fs, s.path(IndexSuffix), s.base, maxEntries, size, writable, s.cfg.Perm)
		if err != nil {
			return false
		}
		times, err = index.OpenTimes(fs, s.path(TimeIndexSuffix), s.base, lastOffset, maxEntries, writable, s.cfg.Perm)
		if err != nil {
			offsets.Close(false)
			return false
		}
	}
	s.setIndexes(offsets, times) // resetIndexes closes them if the check fails
	return s.checkIndexesLocked(size) == nil
}

// indexFilesMissing reports whether neither index file exists.
func (s *Segment) indexFilesMissing() bool {
	if s.listed != nil {
		return s.listed.IndexSize <= 0 && s.listed.TimeIndexSize <= 0
	}
	fs := s.cfg.fs()
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix} {
		if _, err := fs.Lstat(s.path(suffix)); !errors.Is(err, os.ErrNotExist) {
			return false
		}
	}
	return true
}

// checkIndexesLocked checks freshly opened indexes against the log beyond
// what their own validation can see: a non-empty segment was closed with a
// final time entry, and the last offset entry (which reopening and
// MaxTimestamp start from) points at a batch with that offset.
func (s *Segment) checkIndexesLocked(size int64) error {
	if size > 0 && s.times.Len() == 0 {
		return fmt.Errorf("%w: segment %d: empty time index", index.ErrInvalid, s.base)
	}
	off, pos, err := s.offsets.Lookup(math.MaxInt64)
	if err != nil || pos == 0 {
		return err
	}
	m, err := s.mapping(size)
	if err != nil {
		return err
	}
	defer m.release()
	return mmap.Guard(func() error {
		if !entryOK(m.data[:size], off, pos) {
			return fmt.Errorf("%w: segment %d: no batch %d at position %d", index.ErrInvalid, s.base, off, pos)
		}
		return nil
	})
}

// entryOK reports whether a batch with base offset off starts at pos in data
// (whole batches of the log). Index entries are caches, not checksummed:
// one is used only once its batch is found where it says.
func entryOK(data []byte, off, pos int64) bool {
	return pos >= 0 && pos < int64(len(data)) && batch.CheckHeader(data[pos:]) == nil && batch.Batch(data[pos:]).BaseOffset() == off
}

// rebuildLocked rebuilds both indexes of a sealed segment from the first
// size bytes of its log, checking CRCs: damage is left out of the indexes
// and met by reads (see Read), which is all it costs. Callers hold loadMu;
// readers wait for it, as indexed stays false until the indexes are whole.
func (s *Segment) rebuildLocked(size int64) error {
	next := s.next.Load()
	if err := s.resetIndexes(); err != nil {
		return err
	}
	s.indexed.Store(false)
	m, err := s.mapping(size)
	if err != nil {
		return err
	}
	defer m.release()
	err = mmap.Guard(func() error {
		if found := s.scan(m.data[:size]); found.cause != nil && !errors.Is(found.cause, batch.ErrCorrupt) {
			return found.cause // an index write failed
		}
		return nil
	})
	if !s.active.Load() {
		// The segment still ends where the next begins: offsets lost with
		// a damaged tail are reported by reads, not taken for the end.
		s.next.Store(next)
	}
	if err != nil {
		return err
	}
	if !s.active.Load() && !s.cfg.ReadOnly {
		// Sealed: finish the files as Seal does (final time entry, trimmed),
		// or the next open would find the preallocated tail and rebuild
		// again. They are a cache: failing to keep them is not an error.
		if ts := s.maxTS.Load(); ts != math.MinInt64 {
			_ = s.times.Append(ts, s.next.Load()-1)
		}
		_ = s.offsets.Seal()
		_ = s.times.Seal()
	}
	s.indexed.Store(true)
	return nil
}

func (s *Segment) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// loadTail opens the indexes of a cleanly closed active segment and reads
// the batches after the last index entry to learn the next offset, the
// largest timestamp and where the next index entry is due. It returns
// errNeedsRecovery if the files do not match what a clean close leaves.
func (s *Segment) loadTail() (Recovery, error) {
	s.loadMu.Lock()
	ok := s.openIndexesLocked(s.size.Load())
	s.loadMu.Unlock()
	if !ok {
		return Recovery{}, errNeedsRecovery
	}
	s.indexed.Store(true)
	missing, due := s.noIndexFiles, false
	err := s.scanTail(func(b batch.Batch, pos int64) {
		s.next.Store(b.LastOffset() + 1)
		s.sinceIndex = pos + int64(len(b))
		// Without index files no entry may have been due: the first
		// batch past IntervalBytes makes them.
		due = due || (missing && pos >= index.IntervalBytes)
	})
	if err == nil && due {
		err = fmt.Errorf("%w: segment %d: index files missing", index.ErrInvalid, s.base)
	}
	if err == nil {
		// A time entry past the log's end would swallow later lookups.
		if _, last, ok, terr := s.times.Last(); terr != nil {
			err = terr
		} else if ok && last >= s.next.Load() {
			err = fmt.Errorf("%w: segment %d: time entry at offset %d past the end", index.ErrInvalid, s.base, last)
		}
	}
	if errors.Is(err, batch.ErrCorrupt) || errors.Is(err, index.ErrInvalid) {
		// The log or its indexes are not what the clean close left.
		return Recovery{}, errNeedsRecovery
	}
	return Recovery{}, err
}

// scanTail calls fn for each batch from the last offset index entry to the
// end, checking each (CRC included) and folding the time index's newest
// timestamp and the batches' into maxTS: the time index may have lost
// entries no validation can see. It stops at the first batch that fails,
// whose timestamp could not be trusted.
func (s *Segment) scanTail(fn func(b batch.Batch, pos int64)) error {
	from, pos, err := s.offsets.Lookup(math.MaxInt64)
	if err != nil {
		return err
	}
	if ts, _, ok, err := s.times.Last(); err != nil {
		return err
	} else if ok {
		s.maxTS.Store(max(s.maxTS.Load(), ts))
	}
	size := s.size.Load()
	if pos >= size {
		return nil
	}
	data, release, err := s.tail(pos, size)
	if err != nil {
		return err
	}
	defer release()
	expect := from
	entryPos := pos
	return mmap.Guard(func() error {
		for pos < size {
			b, err := batchAt(data, pos-entryPos, expect, true, s.sparse())
			if err != nil {
				return fmt.Errorf("segment %d at position %d: %w", s.base, pos, err)
			}
			s.maxTS.Store(max(s.maxTS.Load(), b.MaxTimestamp()))
			fn(b, pos-entryPos)
			pos += int64(len(b))
			expect = b.LastOffset() + 1
		}
		return nil
	})
}

// maxTailRead is the largest tail scanTail reads into memory rather than
// through the segment's mapping, when it has none yet.
const maxTailRead = 256 << 10

// tail returns the file's bytes [pos, size). A short tail of a segment not
// mapped yet (a partition opening) is read with one pread into memory:
// mapping it would cost a page fault now and, as the mapping is soon given
// back, an munmap, whose TLB shootdown costs more than the read (it was
// half the time of opening 100,000 partitions).
func (s *Segment) tail(pos, size int64) (data []byte, release func(), err error) {
	s.mu.Lock()
	if s.m == nil && size-pos <= maxTailRead {
		defer s.mu.Unlock()
		data, err := s.preadLocked(pos, size)
		return data, func() {}, err
	}
	s.mu.Unlock()
	m, err := s.mapping(size)
	if err != nil {
		return nil, nil, err
	}
	return m.data[pos:size], m.release, nil
}

// CheckSealed verifies the end of a sealed segment after an unclean
// shutdown: every batch after the last index entry must pass its CRC, end
// exactly at the file's end and reach offset next. It reports an error
// describing the first problem; callers then Recover the segment.
func (s *Segment) CheckSealed(next int64) error {
	defer s.touch()
	if _, err := s.ensureIndexes(); err != nil {
		return err
	}
	last := s.base
	err := s.scanTail(func(b batch.Batch, pos int64) { last = b.LastOffset() + 1 })
	if err == nil && (last > next || last < next && !s.sparse()) {
		err = fmt.Errorf("%w: segment %d ends at offset %d, next segment starts at %d", batch.ErrCorrupt, s.base, last, next)
	}
	return err
}

// Recover scans a sealed segment whose tail failed CheckSealed, cuts a torn
// tail, rebuilds its indexes and seals it again. It still ends at next, the
// next segment's base: offsets a cut tail held are one more damaged range,
// which reads report (see Read).
func (s *Segment) Recover(next int64) (Recovery, error) {
	defer s.touch()
	s.active.Store(true) // until Seal, below
	f, err := s.file()
	if err != nil {
		s.active.Store(false)
		return Recovery{}, err
	}
	size, err := f.Size()
	if err != nil {
		return Recovery{}, err
	}
	s.capacity.Store(size)
	s.size.Store(size)
	s.dropMapping()
	rec, err := s.recover(size, false)
	if err == nil {
		err = s.Seal()
	}
	if err == nil && s.next.Load() < next {
		rec.Damaged++
		s.next.Store(next)
	}
	return rec, err
}

// Base is the segment's first offset.
func (s *Segment) Base() int64 { return s.base }

// Next is the offset after the segment's last record.
func (s *Segment) Next() int64 { return s.next.Load() }

// Size is the number of bytes of batches in the segment.
func (s *Segment) Size() int64 { return s.size.Load() }

// MaxTimestamp returns the largest record timestamp in the segment (ms), or
// math.MinInt64 if the segment is empty.
func (s *Segment) MaxTimestamp() (int64, error) {
	if s.size.Load() == 0 {
		return s.maxTS.Load(), nil
	}
	defer s.touch()
	// Indexes first: while a lazy rebuild runs, maxTS is partial.
	if _, err := s.ensureIndexes(); err != nil {
		return 0, err
	}
	if ts := s.maxTS.Load(); ts != math.MinInt64 {
		return ts, nil
	}
	err := s.scanTail(func(b batch.Batch, pos int64) {})
	if errors.Is(err, batch.ErrCorrupt) {
		// Damage in the tail: its timestamps cannot be trusted, and reads
		// report it; what was found before it stands.
		err = nil
	}
	return s.maxTS.Load(), err
}

// Append writes one batch, whose base offset must be Next() (or, in a
// sparse segment, at least Next()), at the end of the segment and indexes
// it. On error nothing is visible and the segment
// takes further appends at the same place; only a failed Sync is final.
func (s *Segment) Append(b batch.Batch) (int64, error) {
	if !s.active.Load() || s.cfg.ReadOnly {
		return 0, ErrSealed
	}
	if err := s.syncFailure(); err != nil {
		return 0, err
	}
	if next := s.next.Load(); b.BaseOffset() != next && !(s.sparse() && b.BaseOffset() > next) {
		return 0, fmt.Errorf("segment %d: append at offset %d, expected %d", s.base, b.BaseOffset(), next)
	}
	f, err := s.file()
	if err != nil {
		return 0, fmt.Errorf("segment %d: %w", s.base, err)
	}
	pos := s.size.Load()
	end := pos + int64(len(b))
	if capacity := s.capacity.Load(); end > capacity && end <= minAllocStep {
		// A segment's first minAllocStep bytes extend the file as they
		// are written: a small one (a test's, one of many partitions that
		// each take a record now and then) has no preallocated tail to cut
		// when it closes or gives back its file (see TryRelease), a
		// truncate that costs more than the write while the file is
		// mapped, and needs no fallocate either.
		s.capacity.Store(end)
	} else if end > capacity {
		step := min(max(capacity, minAllocStep), maxAllocStep)
		newCap := max(end, capacity+step)
		if s.cfg.MaxBytes > 0 {
			newCap = min(newCap, max(end, s.cfg.MaxBytes))
		}
		if err := f.Allocate(capacity, newCap-capacity); err != nil {
			return 0, fmt.Errorf("segment %d: preallocate: %w", s.base, err)
		}
		s.capacity.Store(newCap)
	}
	if _, err := s.ensureIndexes(); err != nil {
		return 0, err
	}
	saved, savedTS := s.sinceIndex, s.maxTS.Load()
	if err := s.indexBatch(b, pos); err != nil {
		// The offset entry may have gone in before the time entry failed:
		// drop it, or the retry would add it twice (an invalid index).
		s.offsets.TruncateAfter(pos)
		s.times.TruncateAfter(b.BaseOffset())
		s.sinceIndex = saved
		s.maxTS.Store(savedTS)
		s.next.Store(b.BaseOffset())
		return 0, fmt.Errorf("segment %d: index: %w", s.base, err)
	}
	if _, err := f.WriteAt(b, pos); err != nil {
		// Nothing became visible; the index entry (if any) points at bytes
		// we will write again, so drop it.
		s.offsets.TruncateAfter(pos)
		s.times.TruncateAfter(b.BaseOffset())
		s.sinceIndex = saved
		s.maxTS.Store(savedTS)
		s.next.Store(b.BaseOffset())
		return 0, fmt.Errorf("segment %d: write: %w", s.base, err)
	}
	s.size.Store(end)
	if s.verified.Load() == pos {
		s.advanceVerified(end) // we encoded it: its CRC matches by construction
	}
	s.touch()
	return pos, nil
}

// IndexFull reports that the indexes have no room left: the log must roll.
func (s *Segment) IndexFull() bool {
	if !s.indexed.Load() {
		return false
	}
	// The reservation was sized when the index was made; the log may have
	// grown past MaxBytes since, so ask the index, not the formula.
	return s.offsets.Len() >= s.offsets.Cap()-1 || s.times.Len() >= s.times.Cap()-2
}

// Sync makes everything appended so far durable. A failure is sticky: the
// kernel may have dropped the dirty pages, so no later sync could be trusted.
//
// Sync may run on another goroutine than the writer's: the file it syncs
// cannot be closed under it.
func (s *Segment) Sync() error {
	if err := s.syncFailure(); err != nil {
		return err
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if !s.active.Load() {
		return nil // sealed: Seal synced it
	}
	// Released (TryRelease), any descriptor of the file syncs what was
	// written through the one closed.
	f, done, err := s.descriptorLocked()
	if err != nil {
		return s.setSyncFailure(err)
	}
	defer done()
	if err := f.Sync(); err != nil {
		return s.setSyncFailure(err)
	}
	return nil
}

func (s *Segment) syncFailure() error {
	if p := s.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Segment) setSyncFailure(err error) error {
	err = fmt.Errorf("segment %d: %w: %w", s.base, ErrSyncFailed, err)
	s.syncErr.CompareAndSwap(nil, &err)
	return s.syncFailure()
}

// Seal ends appends: the preallocated tail is cut, the log and indexes are
// synced, and the file is closed (reads continue through the mapping).
func (s *Segment) Seal() error {
	if !s.active.Load() {
		return nil
	}
	defer s.touch() // the final time entry may have mapped its index
	if err := s.syncFailure(); err != nil {
		return err
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if err := s.trimLocked(true); err != nil {
		return err
	}
	// Readers consult f (under mu) to decide how much to map; Sync uses it
	// under fileMu.
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.f != nil {
		err = s.f.Close()
	}
	s.f = nil
	s.active.Store(false)
	return err
}

// Sealed reports whether the segment no longer takes appends.
func (s *Segment) Sealed() bool { return !s.active.Load() }

// trimLocked records the final time entry, cuts the log and indexes to their
// contents and syncs them all. Unless seal, index files never made stay
// so: the next open scans the small segment instead.
func (s *Segment) trimLocked(seal bool) error {
	if s.cfg.ReadOnly {
		return nil
	}
	size := s.size.Load()
	if s.offsets != nil && (seal || !s.indexesDeferred()) {
		if ts := s.maxTS.Load(); ts != math.MinInt64 {
			if err := s.times.Append(ts, s.next.Load()-1); err != nil && !errors.Is(err, index.ErrFull) {
				return err
			}
		}
		if err := errors.Join(s.offsets.Seal(), s.times.Seal()); err != nil {
			return err
		}
	}
	if s.capacity.Load() != size {
		f, err := s.file()
		if err == nil {
			err = f.Truncate(size)
		}
		if err != nil {
			return err
		}
		s.capacity.Store(size)
	}
	if s.cfg.NoSync {
		return nil
	}
	f, err := s.file()
	if err != nil {
		return err
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if err := f.Sync(); err != nil {
		return s.setSyncFailure(err)
	}
	return nil
}

// Close releases the segment's files. With clean, an active segment is
// first trimmed and synced so the next open can trust it without a scan.
// Views already handed out stay valid until released.
func (s *Segment) Close(clean bool) error {
	s.loadMu.Lock()
	var err error
	if clean && s.active.Load() && s.syncFailure() == nil {
		err = s.trimLocked(false)
	}
	s.loadMu.Unlock()
	return errors.Join(err, s.closeFiles(false))
}

func (s *Segment) closeFiles(trim bool) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	var errs []error
	s.fileMu.Lock()
	s.mu.Lock()
	if s.f != nil {
		errs = append(errs, s.f.Close())
		s.f = nil
	}
	s.active.Store(false)
	s.mu.Unlock()
	s.fileMu.Unlock()
	s.cfg.Resident.Remove(&s.res)
	if s.offsets != nil {
		errs = append(errs, s.offsets.Close(trim))
	}
	if s.times != nil {
		errs = append(errs, s.times.Close(trim))
	}
	s.indexed.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		s.m.release()
		s.m = nil
	}
	s.closed = true
	return errors.Join(errs...)
}

// Delete closes the segment and removes its files. Views already handed out
// stay valid until released: the mapping outlives the directory entry.
func (s *Segment) Delete() error {
	err := s.closeFiles(false)
	fs := s.cfg.fs()
	for _, suffix := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		if rmErr := fs.Remove(s.path(suffix)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	return err
}

// mapping returns the read mapping, covering at least end bytes, with a
// reference the caller must release.
func (s *Segment) mapping(end int64) (*mapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.m == nil || int64(len(s.m.data)) < end {
		if s.readsFromHeap(end) {
			if err := s.readHeapLocked(end); err != nil {
				return nil, err
			}
			s.m.refs.Add(1)
			return s.m, nil
		}
		length := end
		if s.active.Load() {
			// Active: reserve the whole segment's address range once, so
			// growth needs no remap. Pages past the file's end are never read.
			length = max(end, s.cfg.MaxBytes)
		}
		if length == 0 {
			return &mapping{refs: atomic.Int32{}}, nil
		}
		if length > math.MaxInt {
			return nil, fmt.Errorf("segment %d: %d bytes cannot be mapped", s.base, length)
		}
		f, done, err := s.descriptorLocked()
		if err != nil {
			return nil, err
		}
		defer done()
		data, err := f.Map(int(length), false)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", s.base, err)
		}
		m := &mapping{data: data}
		m.refs.Store(1)
		openMappings.Add(1)
		if s.m != nil {
			s.m.release()
		}
		s.m = m
	}
	s.m.refs.Add(1)
	return s.m, nil
}

// heapReadMax is the size up to which an active segment not read before is
// read through a copy in memory rather than mapped. Mapping costs a page
// fault per page and, when the mapping goes (the segment released under
// Config.Resident, or closed), an munmap whose TLB shootdown dwarfs a small
// read: most of what reading a small partition once cost, a unit test's or
// one of 100,000. A segment read again after it grew is mapped: a reader
// tailing it is better served by the mapping (see populateAhead) than by a
// pread per wake-up. Views of the copy stay valid as those of a mapping do.
const heapReadMax = 64 << 10

// readsFromHeap reports whether a read up to end goes through a copy in
// memory: the first read of an owner's small active segment, whose bytes
// before its size never change once written (a follower's may be a write
// still under way).
func (s *Segment) readsFromHeap(end int64) bool {
	return s.m == nil && end <= heapReadMax && !s.cfg.Follow && s.active.Load()
}

// readHeapLocked makes s.m a copy of the file's first end bytes; s.mu is
// held.
func (s *Segment) readHeapLocked(end int64) error {
	buf, err := s.preadLocked(0, end)
	if err != nil {
		return err
	}
	s.m = &mapping{data: buf, heap: true}
	s.m.refs.Store(1)
	return nil
}

// Readers tailing the log would take a page fault for every new page the
// writer fills: a page written with pwrite after the reader's mapping last
// faulted is not in its page tables. Mapping the preallocated pages ahead
// of the log's end in bulk, before they are written, moves that cost off
// the path from a write to a waiting reader: one call per 16 pages instead
// of a fault each. The price is at most populateWindow bytes of page cache
// per partition being read that the writer has not filled yet (zeros, clean,
// reclaimable, and cut with the preallocated tail when the segment seals).
const (
	populateWindow = 64 << 10 // bytes mapped ahead of the end at a time
	populateMargin = 16 << 10 // start the next window this close to the mark
)

// populateAhead maps in the pages after size, up to the file's preallocated
// end, once size comes within populateMargin of what is mapped already.
func (s *Segment) populateAhead(m *mapping, size int64) {
	if m.heap {
		return
	}
	done := m.populated.Load()
	if size+populateMargin <= done {
		return
	}
	start := max(done, size) &^ (pageSize - 1)
	end := min(size+populateWindow, s.capacity.Load(), int64(len(m.data)))
	if end <= max(start, done) || !m.populated.CompareAndSwap(done, end) {
		return // nothing preallocated ahead, or another reader does it
	}
	mmap.Populate(m.data[start:end])
}

// pageSize aligns populateAhead's ranges; a larger real page size only
// makes the kernel round the start down.
var pageSize = int64(os.Getpagesize())

// dropMapping forgets the cached mapping; holders keep theirs.
func (s *Segment) dropMapping() {
	s.mu.Lock()
	if s.m != nil {
		s.m.release()
		s.m = nil
	}
	s.mu.Unlock()
}

// Read returns a view of whole batches starting with the one that holds
// offset, ending before limit (an offset: what readers may see) and after
// roughly maxBytes (at least one batch is returned, however large). Every
// batch in the view has passed its CRC check. An empty view means no batch
// at or after offset is visible yet, or, in a sparse segment (see
// Config.Sparse), none is left in it: reading goes on at the next segment.
//
// The view ends before a damaged batch; a read that starts at one fails
// with a *DamageError saying where reading can go on. Damage before the
// batch holding offset is passed over.
func (s *Segment) Read(offset, limit int64, maxBytes int) (View, error) {
	v, err := s.read(offset, limit, maxBytes)
	s.touch()
	return v, err
}

func (s *Segment) read(offset, limit int64, maxBytes int) (View, error) {
	size := s.size.Load()
	if offset >= limit {
		return View{}, nil
	}
	if size == 0 {
		return View{}, s.lostTail(offset, limit, 0)
	}
	// Indexes before next: while a lazy rebuild runs, next is partial.
	if _, err := s.ensureIndexes(); err != nil {
		return View{}, err
	}
	if offset >= s.next.Load() {
		return View{}, nil
	}
	entry, pos, err := s.offsets.Lookup(offset)
	if err != nil {
		return View{}, idxErr(err)
	}
	m, err := s.mapping(size)
	if err != nil {
		return View{}, err
	}
	s.populateAhead(m, size)
	// A damaged entry must not send the scan into the middle of a batch or
	// past the records asked for: fall back to earlier entries.
	err = mmap.Guard(func() error {
		for pos > 0 && !entryOK(m.data[:size], entry, pos) {
			var err error
			if entry, pos, err = s.offsets.Lookup(entry - 1); err != nil {
				return idxErr(err)
			}
		}
		return nil
	})
	if err != nil {
		m.release()
		return View{}, err
	}
	var start, end int64 = -1, pos
	scanStart, verified, sparse := pos, s.verified.Load(), s.sparse()
	expect, passed := entry, false
	err = mmap.Guard(func() error {
		for end < size {
			b, err := batchAt(m.data[:size], end, expect, end >= verified, sparse)
			if err != nil {
				if start >= 0 {
					break // return the good batches; the next read meets the damage
				}
				err = fmt.Errorf("position %d: %w", end, err)
				next, ok := resync(m.data[:size], end, expect)
				if !ok {
					return &DamageError{Segment: s.base, Offset: offset, Next: max(min(s.next.Load(), limit), offset+1), Err: err}
				}
				nb := batch.Batch(m.data[next:])
				if nb.BaseOffset() > offset {
					return &DamageError{Segment: s.base, Offset: offset, Next: min(nb.BaseOffset(), limit), Err: err}
				}
				end, pos, expect, passed = next, next, nb.BaseOffset(), true
				continue
			}
			if b.BaseOffset() >= limit {
				break
			}
			expect = b.LastOffset() + 1
			if start < 0 {
				if b.LastOffset() < offset {
					end += int64(len(b))
					pos = end
					continue
				}
				start = end
			}
			end += int64(len(b))
			if end-start >= int64(maxBytes) {
				break
			}
		}
		return nil
	})
	if err == nil && start < 0 {
		err = s.lostTail(offset, limit, end)
	}
	if err != nil || start < 0 {
		m.release()
		return View{}, err
	}
	if scanStart <= verified && !passed {
		s.advanceVerified(end)
	}
	return View{Data: m.data[start:end:end], m: m}, nil
}

// idxErr maps an index closed under a reader to ErrClosed, which readers
// treat as "the segment went away: look again".
func idxErr(err error) error {
	if errors.Is(err, index.ErrClosed) {
		return ErrClosed
	}
	return err
}

// advanceVerified moves the verified mark up to pos, never down.
func (s *Segment) advanceVerified(pos int64) {
	for {
		v := s.verified.Load()
		if v >= pos || s.verified.CompareAndSwap(v, pos) {
			return
		}
	}
}

// lostTail is the error of a read at offset that found no batch holding it
// in the segment's first end bytes: a *DamageError if the segment claims the
// offset (its tail was cut, lost or emptied), else nil (not written yet, or
// in a sparse segment removed by a cleaner: the reader goes on at the next
// segment).
func (s *Segment) lostTail(offset, limit, end int64) error {
	next := min(s.next.Load(), limit)
	if offset >= next || s.sparse() {
		return nil
	}
	return &DamageError{Segment: s.base, Offset: offset, Next: next,
		Err: fmt.Errorf("%w: the log ends at position %d, before offset %d", batch.ErrCorrupt, end, offset)}
}

// timeEntryOK checks a time index entry against the log, which index
// validation cannot: the largest timestamp up to offset is ts, so the batch
// holding offset has none above it. A flipped timestamp or offset would
// otherwise make lookups start past the records they look for.
func (s *Segment) timeEntryOK(ts, offset int64) bool {
	v, err := s.Read(offset, offset+1, 1)
	if err != nil || len(v.Data) == 0 {
		return false
	}
	defer v.Release()
	ok := false
	_ = mmap.Guard(func() error {
		b := batch.Batch(v.Data)
		ok = b.BaseOffset() <= offset && offset <= b.LastOffset() && b.MaxTimestamp() <= ts
		return nil
	})
	return ok
}

// FindTime returns the first offset in [from, limit) whose record
// timestamp is at or above ts; ok is false if the segment has none.
func (s *Segment) FindTime(ts, from, limit int64) (offset int64, ok bool, err error) {
	defer s.touch()
	if _, err := s.ensureIndexes(); err != nil {
		return 0, false, err
	}
	entryTS, after, err := s.times.LookupEntry(ts)
	if err != nil {
		return 0, false, idxErr(err)
	}
	if after >= s.base && !s.timeEntryOK(entryTS, after) {
		after = s.base - 1 // a damaged entry: scan the whole segment
	}
	var it batch.Iter
	var r batch.Record
	for from := max(after+1, from); from < limit; {
		v, err := s.Read(from, limit, 1<<20)
		if de := (*DamageError)(nil); errors.As(err, &de) {
			// Damaged batches have no trustworthy timestamps: pass them.
			from = de.Next
			continue
		}
		if err != nil || len(v.Data) == 0 {
			return 0, false, err
		}
		err = mmap.Guard(func() error {
			it.Reset(v.Data, from)
			it.SkipOlder(ts)
			it.KeepControl()
			if it.Next(&r) && r.Offset < limit {
				offset, ok = r.Offset, true
			}
			at := from
			from = it.Offset()
			if next := it.Resume(); errors.Is(it.Err(), batch.ErrCorrupt) && next > at {
				// Records that do not decode (a compressed batch that does
				// not decompress, say): pass them as damage, as reads do.
				from = next
				return nil
			}
			return it.Err()
		})
		v.Release()
		if err != nil || ok {
			return offset, ok, err
		}
	}
	return 0, false, nil
}
