package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/segment"
)

// logConfig configures one partition's log.
type logConfig struct {
	dir            string
	fs             vfs.FS
	filePerm       os.FileMode
	dirPerm        os.FileMode
	segmentBytes   int64
	segmentAge     time.Duration
	retention      time.Duration
	retentionBytes int64
	maxBatchBytes  int  // largest batch append accepts (Kafka's max.message.bytes)
	logAppendTime  bool // stamp batches with the append time (LogAppendTime)
	sync           SyncPolicy
	readOnly       bool
	now            func() time.Time
	logger         *slog.Logger
	stats          *logStats // shared by the broker's partitions; may be nil
}

// logStats are counters shared by every partition of a broker.
type logStats struct {
	recordsIn, bytesIn, batchesIn   atomic.Int64
	recordsOut, bytesOut            atomic.Int64
	fsyncs                          atomic.Int64
	truncations, truncatedBytes     atomic.Int64
	indexRebuilds                   atomic.Int64
	segmentsRolled, segmentsDeleted atomic.Int64
}

// partition is one partition's log: an ordered list of segments of which
// the last one (the active segment) takes appends.
//
// Offsets [start, hw) are readable. Under SyncAlways hw trails the written
// end until an fsync covers it; otherwise hw is the written end.
type partition struct {
	cfg    logConfig
	segcfg *segment.Config

	// segs is the copy-on-write segment list, oldest first, never empty
	// unless the partition is read-only and has no data. Readers load it
	// without locks; the writer replaces it under mu.
	segs  atomic.Pointer[[]*segment.Segment]
	start atomic.Int64 // log start offset: first offset still stored
	hw    atomic.Int64 // high watermark: offsets below it are visible

	mu          sync.Mutex // serializes writers: append, roll, retention, close
	written     int64      // next offset to assign (the log end offset)
	activeSince time.Time  // when the active segment got its first batch, for SegmentAge
	closed      bool
	failed      error // sticky: a failed fsync stops writes for good

	// Group commit: one goroutine at a time fsyncs; others wait on syncCond
	// for synced to pass their offset.
	syncMu   sync.Mutex
	syncCond *sync.Cond
	syncing  bool
	synced   int64 // offsets below it are durable
	dirty    atomic.Bool

	appended signal // broadcast when hw moves or the partition closes
}

// openPartition opens (creating if needed) the log in cfg.dir. Unless
// clean (the last shutdown closed every log properly), the active segment
// is scanned and cut after its last valid batch, and every sealed segment's
// tail is verified.
func openPartition(cfg logConfig, clean bool) (*partition, error) {
	if cfg.fs == nil {
		cfg.fs = vfs.Default
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.stats == nil {
		cfg.stats = new(logStats)
	}
	p := &partition{cfg: cfg, segcfg: &segment.Config{
		FS: cfg.fs, Perm: cfg.filePerm, MaxBytes: cfg.segmentBytes, ReadOnly: cfg.readOnly,
		NoSync: cfg.sync == SyncNever,
	}}
	p.syncCond = sync.NewCond(&p.syncMu)
	if !cfg.readOnly {
		if _, err := cfg.fs.Lstat(cfg.dir); errors.Is(err, os.ErrNotExist) {
			// A new directory is durable only once its parent's entry is.
			if err := cfg.fs.MkdirAll(cfg.dir, cfg.dirPerm); err != nil {
				return nil, err
			}
			if cfg.sync != SyncNever {
				if err := cfg.fs.SyncDir(filepath.Dir(cfg.dir)); err != nil {
					return nil, err
				}
			}
		} else if err != nil {
			return nil, err
		}
	}
	if fi, err := cfg.fs.Lstat(cfg.dir); err == nil && !fi.IsDir() {
		// Refuse symbolic links: a partition's data never leaves the data directory.
		return nil, fmt.Errorf("%w: %s is not a directory", ErrCorrupt, cfg.dir)
	}
	bases, sizes, err := p.listSegments()
	if err != nil {
		return nil, err
	}
	var segs []*segment.Segment
	closeAll := func() {
		for _, s := range segs {
			s.Close(false)
		}
	}
	for i := 0; i < len(bases)-1; i++ {
		segs = append(segs, segment.OpenSealed(p.segcfg, cfg.dir, bases[i], bases[i+1], sizes[i]))
	}
	if len(bases) > 0 {
		active, rec, err := segment.OpenActive(p.segcfg, cfg.dir, bases[len(bases)-1], !clean)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open %s: %w", cfg.dir, err)
		}
		p.noteRecovery(active, rec)
		segs = append(segs, active)
	}
	if !clean {
		if segs, err = p.checkSealed(segs); err != nil {
			closeAll()
			return nil, err
		}
	}
	if len(segs) == 0 && !cfg.readOnly {
		s, err := segment.Create(p.segcfg, cfg.dir, 0)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	p.segs.Store(&segs)
	if len(segs) > 0 {
		p.written = segs[len(segs)-1].Next()
		if err := p.openStart(); err != nil {
			closeAll()
			return nil, err
		}
	}
	p.hw.Store(p.written)
	p.synced = p.written
	p.activeSince = cfg.now()
	return p, nil
}

// listSegments finds the segment files in the directory, sorted by base
// offset, and removes leftovers (index files without a log) of an
// interrupted deletion.
func (p *partition) listSegments() (bases, sizes []int64, err error) {
	entries, err := p.cfg.fs.ReadDir(p.cfg.dir)
	if err != nil {
		if p.cfg.readOnly && errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	logs := map[int64]bool{}
	for _, e := range entries {
		name := e.Name()
		if base, ok := segment.ParseFileName(name, segment.LogSuffix); ok {
			if !e.Type().IsRegular() {
				return nil, nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(p.cfg.dir, name))
			}
			info, err := e.Info()
			if err != nil {
				return nil, nil, err
			}
			bases = append(bases, base)
			sizes = append(sizes, info.Size())
			logs[base] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		base, isIndex := segment.ParseFileName(name, segment.IndexSuffix)
		if !isIndex {
			base, isIndex = segment.ParseFileName(name, segment.TimeIndexSuffix)
		}
		if isIndex && !logs[base] && !p.cfg.readOnly {
			if err := p.cfg.fs.Remove(filepath.Join(p.cfg.dir, name)); err != nil {
				return nil, nil, err
			}
		}
	}
	return bases, sizes, nil // ReadDir sorts by name: 20-digit names sort by offset
}

// checkSealed verifies the tail of each sealed segment after an unclean
// shutdown. The first that fails is recovered (cut after its last good
// batch) and becomes the active segment; every later one is dropped, since
// offsets must stay contiguous.
func (p *partition) checkSealed(segs []*segment.Segment) ([]*segment.Segment, error) {
	for i := 0; i < len(segs)-1; i++ {
		err := segs[i].CheckSealed(segs[i+1].Base())
		if err == nil {
			continue
		}
		if !errors.Is(err, batch.ErrCorrupt) {
			// Not damage (an I/O error, no memory for a mapping): cutting
			// here would throw away good records.
			return segs, fmt.Errorf("check %s segment %d: %w", p.cfg.dir, segs[i].Base(), err)
		}
		p.cfg.logger.Warn("stream: damaged sealed segment", "dir", p.cfg.dir, "segment", segs[i].Base(), "err", err)
		rec, rerr := segs[i].Recover()
		if rerr != nil {
			return segs, fmt.Errorf("recover %s segment %d: %w", p.cfg.dir, segs[i].Base(), rerr)
		}
		p.noteRecovery(segs[i], rec)
		if segs[i].Next() == segs[i+1].Base() {
			// Nothing needed cutting after all: seal it again and go on.
			if err := segs[i].Seal(); err != nil {
				return segs, err
			}
			continue
		}
		p.cfg.logger.Warn("stream: cutting the log after the damaged segment",
			"dir", p.cfg.dir, "segment", segs[i].Base(), "dropped segments", len(segs)-i-1)
		for _, later := range segs[i+1:] {
			p.cfg.stats.truncatedBytes.Add(later.Size())
			if p.cfg.readOnly {
				later.Close(false)
			} else if err := later.Delete(); err != nil {
				return segs, err
			}
		}
		segs = segs[:i+1]
		if !p.cfg.readOnly {
			if err := p.cfg.fs.SyncDir(p.cfg.dir); err != nil {
				return segs, err
			}
		}
		break
	}
	return segs, nil
}

func (p *partition) noteRecovery(s *segment.Segment, rec segment.Recovery) {
	if rec.IndexRebuilt {
		p.cfg.stats.indexRebuilds.Add(1)
	}
	if rec.Truncated > 0 {
		p.cfg.stats.truncations.Add(1)
		p.cfg.stats.truncatedBytes.Add(rec.Truncated)
		p.cfg.logger.Warn("stream: recovery cut a damaged log tail",
			"dir", p.cfg.dir, "segment", s.Base(), "bytes", rec.Truncated, "cause", rec.Cause)
	}
}

func (p *partition) segments() []*segment.Segment { return *p.segs.Load() }

// append writes one encoded batch (see batch.Builder) at the end of the
// log, assigning its offsets, and returns its base offset. Under SyncAlways
// it returns once the batch is durable.
func (p *partition) append(b batch.Batch) (int64, error) {
	if len(b) > p.cfg.maxBatchBytes {
		return 0, fmt.Errorf("%w: batch of %d bytes exceeds %d", ErrRecordTooLarge, len(b), p.cfg.maxBatchBytes)
	}
	// Batches come from batch.Builder, whose CRC is right by construction;
	// the header and length checks catch a misuse before it reaches disk.
	if err := batch.CheckHeader(b); err != nil {
		return 0, err
	}
	if b.Size() != len(b) {
		return 0, fmt.Errorf("%w: batch of %d bytes says %d", batch.ErrCorrupt, len(b), b.Size())
	}
	p.mu.Lock()
	base, err := p.appendLocked(b)
	if err != nil {
		p.mu.Unlock()
		return 0, err
	}
	end := p.written
	if p.cfg.sync != SyncAlways {
		p.hw.Store(end)
		p.mu.Unlock()
		p.dirty.Store(true)
		p.appended.broadcast()
		return base, nil
	}
	p.mu.Unlock()
	return base, p.waitDurable(end)
}

// writableLocked says why the log takes no writes now, if it does not.
// Callers hold mu.
func (p *partition) writableLocked() error {
	switch {
	case p.closed:
		return ErrClosed
	case p.cfg.readOnly:
		return ErrReadOnly
	}
	return p.failed
}

func (p *partition) appendLocked(b batch.Batch) (int64, error) {
	if err := p.writableLocked(); err != nil {
		return 0, err
	}
	segs := p.segments()
	active := segs[len(segs)-1]
	now := p.cfg.now()
	if p.shouldRoll(active, b, now) {
		if err := p.roll(); err != nil {
			return 0, err
		}
		segs = p.segments()
		active = segs[len(segs)-1]
	}
	base := p.written
	b.SetBaseOffset(base)
	if p.cfg.logAppendTime {
		b.SetLogAppendTime(now.UnixMilli())
	}
	if active.Size() == 0 {
		p.activeSince = now
	}
	if _, err := active.Append(b); err != nil {
		return 0, err
	}
	p.written = b.LastOffset() + 1
	st := p.cfg.stats
	st.batchesIn.Add(1)
	st.recordsIn.Add(int64(b.NumRecords()))
	st.bytesIn.Add(int64(len(b)))
	return base, nil
}

func (p *partition) shouldRoll(active *segment.Segment, b batch.Batch, now time.Time) bool {
	if active.Sealed() {
		return true // a roll sealed it but could not create the next one
	}
	size := active.Size()
	if size == 0 {
		return false
	}
	return size+int64(len(b)) > p.cfg.segmentBytes ||
		(p.cfg.segmentAge > 0 && now.Sub(p.activeSince) >= p.cfg.segmentAge) ||
		p.written+int64(b.LastOffsetDelta())-active.Base() > math.MaxUint32 ||
		active.IndexFull()
}

// roll seals the active segment and starts a new one at the log end.
// Callers hold mu.
func (p *partition) roll() error {
	segs := p.segments()
	active := segs[len(segs)-1]
	if err := active.Seal(); err != nil {
		if errors.Is(err, segment.ErrSyncFailed) || active.Sealed() {
			return p.fail(err)
		}
		return err // trimming failed before any fsync: the segment still takes writes
	}
	if p.cfg.sync != SyncNever {
		p.cfg.stats.fsyncs.Add(1)
	}
	next, err := segment.Create(p.segcfg, p.cfg.dir, p.written)
	if err != nil {
		return err
	}
	p.segs.Store(ptr(append(slices.Clip(segs), next)))
	p.cfg.stats.segmentsRolled.Add(1)
	return nil
}

func ptr[T any](v T) *T { return &v }

// fail records a sync failure: from now on every write returns it.
func (p *partition) fail(err error) error {
	if p.failed == nil {
		p.failed = fmt.Errorf("%w: %s: %w", ErrSyncFailed, p.cfg.dir, err)
		p.cfg.logger.Error("stream: fsync failed; partition stops taking writes", "dir", p.cfg.dir, "err", err)
	}
	return p.failed
}

// waitDurable blocks until offsets below end are on disk, fsyncing itself
// if no other goroutine is: concurrent publishers share each fsync.
func (p *partition) waitDurable(end int64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	for p.synced < end {
		if !p.syncing {
			if err := p.syncOnceLocked(); err != nil {
				return err
			}
			continue
		}
		p.syncCond.Wait()
	}
	return nil
}

// sync makes everything written so far durable (the SyncInterval tick and
// Close use it).
func (p *partition) sync() error {
	p.mu.Lock()
	end, failed := p.written, p.failed
	p.mu.Unlock()
	if failed != nil {
		return failed
	}
	if !p.dirty.Load() && p.cfg.sync != SyncAlways {
		return nil
	}
	return p.waitDurable(end)
}

// syncOnceLocked runs one fsync of the active segment with syncMu released
// while it works, then publishes what it covered. Callers hold syncMu and
// have checked that no sync is running.
func (p *partition) syncOnceLocked() error {
	p.syncing = true
	p.syncMu.Unlock()

	p.mu.Lock()
	segs := p.segments()
	active, upto, failed := segs[len(segs)-1], p.written, p.failed
	p.dirty.Store(false)
	p.mu.Unlock()
	// Sealed segments were synced when they rolled, so the active one holds
	// all that may be unsynced.
	err := failed
	if err == nil {
		err = active.Sync()
		p.cfg.stats.fsyncs.Add(1)
	}
	if err != nil && failed == nil {
		p.mu.Lock()
		err = p.fail(err)
		p.mu.Unlock()
	}

	p.syncMu.Lock()
	p.syncing = false
	p.syncCond.Broadcast()
	if err != nil {
		return err
	}
	if upto > p.synced {
		p.synced = upto
		if p.cfg.sync == SyncAlways {
			p.hw.Store(upto)
			p.appended.broadcast()
		}
	}
	return nil
}

// read returns whole batches from the one holding offset on, at most about
// maxBytes (at least one batch), all below the high watermark. An empty
// view at the high watermark means "nothing yet"; wait and retry.
func (p *partition) read(offset int64, maxBytes int) (segment.View, error) {
	for {
		hw, start := p.hw.Load(), p.start.Load()
		if offset < start || offset > hw {
			return segment.View{}, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, start, hw)
		}
		if offset == hw {
			return segment.View{}, nil
		}
		segs := p.segments()
		i := segmentFor(segs, offset)
		v, err := segs[i].Read(offset, hw, maxBytes)
		if errors.Is(err, segment.ErrClosed) {
			// Retention deleted it (or we are closing): look again.
			if p.isClosed() {
				return segment.View{}, ErrClosed
			}
			continue
		}
		if err != nil {
			return segment.View{}, fmt.Errorf("read %s at offset %d: %w", p.cfg.dir, offset, err)
		}
		return v, nil
	}
}

// segmentFor returns the index of the segment holding offset: the last
// whose base is at or below it.
func segmentFor(segs []*segment.Segment, offset int64) int {
	i, found := slices.BinarySearchFunc(segs, offset, func(s *segment.Segment, o int64) int {
		return compareInt64(s.Base(), o)
	})
	if !found {
		i--
	}
	return max(i, 0)
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// offsetForTime returns the earliest offset whose timestamp is at or above
// ts (ms), or -1 if there is none (Kafka's offsetsForTimes).
func (p *partition) offsetForTime(ts int64) (int64, error) {
	for {
		hw := p.hw.Load()
		retry := false
		for _, s := range p.segments() {
			if s.Base() >= hw {
				break
			}
			maxTS, err := s.MaxTimestamp()
			if err == nil && maxTS < ts {
				continue
			}
			var off int64
			var ok bool
			if err == nil {
				off, ok, err = s.FindTime(ts, hw)
			}
			if errors.Is(err, segment.ErrClosed) && !p.isClosed() {
				retry = true
				break
			}
			if err != nil {
				return 0, fmt.Errorf("find time in %s: %w", p.cfg.dir, err)
			}
			if ok {
				if start := p.start.Load(); off < start {
					// Deleted by deleteRecords: the answer is the first
					// record from the start on that is new enough.
					return p.firstAtOrAfter(start, ts)
				}
				return off, nil
			}
		}
		if !retry {
			return -1, nil
		}
	}
}

// firstAtOrAfter scans from offset from for the first record whose
// timestamp is at or after ts, or returns -1.
func (p *partition) firstAtOrAfter(from, ts int64) (int64, error) {
	var it batch.Iter
	var r batch.Record
	for {
		v, err := p.read(from, 1<<20)
		if errors.Is(err, ErrOffsetOutOfRange) && from < p.start.Load() {
			from = p.start.Load() // retention or deleteRecords moved the start meanwhile
			continue
		}
		if err != nil {
			return 0, err
		}
		if len(v.Data) == 0 {
			return -1, nil
		}
		found := int64(-1)
		it.Reset(v.Data, from)
		it.SkipOlder(ts)
		if it.Next(&r) {
			found = r.Offset
		}
		from = it.Offset()
		if err := it.Err(); err != nil {
			v.Release()
			return 0, err
		}
		v.Release()
		if found >= 0 {
			return found, nil
		}
	}
}

// waitFor blocks until offset is below the high watermark (a record at
// offset is readable), ctx is done, stop is closed (ErrClosed), or the
// partition closes.
func (p *partition) waitFor(ctx context.Context, offset int64, stop <-chan struct{}) error {
	for p.hw.Load() <= offset {
		ch := p.appended.wait()
		if p.hw.Load() > offset {
			return nil
		}
		if p.isClosed() {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return ErrClosed
		}
	}
	return nil
}

func (p *partition) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// enforceRetention deletes whole sealed segments, oldest first, while they
// are older than the retention time (by their newest record) or while the
// log would still hold at least retentionBytes without them; an active
// segment past the retention time whose predecessors all went is rolled and
// deleted too. Nothing at or past the high watermark is deleted. The log
// start offset moves to the first remaining segment; offsets are never
// reused.
func (p *partition) enforceRetention() (deleted int, err error) {
	if p.cfg.retention <= 0 && p.cfg.retentionBytes <= 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cfg.readOnly {
		return 0, nil
	}
	segs := p.segments()
	var total int64
	for _, s := range segs {
		total += s.Size()
	}
	nowMS := p.cfg.now().UnixMilli()
	hw := p.hw.Load()
	tooOld := func(s *segment.Segment) (bool, error) {
		if p.cfg.retention <= 0 || s.Size() == 0 {
			return false, nil
		}
		maxTS, err := s.MaxTimestamp()
		return err == nil && nowMS-maxTS > p.cfg.retention.Milliseconds(), err
	}
	n := 0
	for ; n < len(segs)-1; n++ { // the active segment is handled below
		s := segs[n]
		if s.Next() > hw {
			break // never what readers cannot see yet (SyncAlways before its fsync)
		}
		expired, err := tooOld(s)
		if err != nil {
			return 0, err
		}
		if !expired && p.cfg.retentionBytes > 0 && total-s.Size() >= p.cfg.retentionBytes {
			expired = true
		}
		if !expired {
			break
		}
		total -= s.Size()
	}
	if active := segs[len(segs)-1]; n == len(segs)-1 && active.Next() <= hw {
		// Everything before the active segment went, and the active one
		// is past retention too: as Kafka does, roll so that it can go,
		// or a quiet topic (no roll by size or SegmentAge) would keep its
		// records forever.
		expired, err := tooOld(active)
		if err != nil {
			return 0, err
		}
		if expired {
			if err := p.roll(); err != nil {
				return 0, err
			}
			segs = p.segments()
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	p.cfg.logger.Info("stream: retention deletes segments", "dir", p.cfg.dir, "segments", n, "start", segs[n].Base())
	return n, p.dropFirstLocked(segs, n)
}

// dropFirstLocked deletes the first n segments of segs, the current list.
// Callers hold mu.
func (p *partition) dropFirstLocked(segs []*segment.Segment, n int) (err error) {
	// Start first: a reader that sees the new start never looks for a
	// deleted offset in the new list.
	p.start.Store(max(segs[n].Base(), p.start.Load()))
	p.segs.Store(ptr(slices.Clone(segs[n:])))
	for _, s := range segs[:n] {
		// Readers holding views keep their mapping; new reads miss the
		// segment and see the new log start.
		if derr := s.Delete(); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	p.cfg.stats.segmentsDeleted.Add(int64(n))
	if p.cfg.sync == SyncNever {
		return err
	}
	return errors.Join(err, p.cfg.fs.SyncDir(p.cfg.dir))
}

// The log start offset, once deleteRecords has moved it past the first
// segment's base, is kept in the partition directory in logStartFile: the
// offset in decimal, replaced whole by a rename. Without the file (or with
// an older, lower value) the log starts at its first segment's base.
const logStartFile = "log-start"

// openStart sets the log start at open: the first segment's base, or the
// start deleteRecords stored if that is higher. A stored start past the
// recovered end (a machine crash took back records it had passed, or
// recovery cut the log) is lowered to the end and stored again, so records
// appended from there are never hidden behind it later. Segments wholly
// below the start, left by a crash in the middle of deleteRecords, go.
func (p *partition) openStart() error {
	segs := p.segments()
	stored := p.readLogStart()
	p.start.Store(min(max(segs[0].Base(), stored), p.written))
	if p.cfg.readOnly {
		return nil
	}
	if stored > p.written {
		p.cfg.logger.Warn("stream: the stored log start is past the recovered end; starting at the end",
			"dir", p.cfg.dir, "stored", stored, "end", p.written)
		if err := p.writeLogStart(p.written); err != nil {
			return err
		}
	}
	n := 0
	for n < len(segs)-1 && segs[n].Next() <= p.start.Load() {
		n++
	}
	if n == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropFirstLocked(segs, n)
}

// readLogStart returns the offset logStartFile holds, or -1.
func (p *partition) readLogStart() int64 {
	path := filepath.Join(p.cfg.dir, logStartFile)
	f, err := p.cfg.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.cfg.logger.Warn("stream: cannot read the log start offset; starting at the first segment", "file", path, "err", err)
		}
		return -1
	}
	defer f.Close()
	buf := make([]byte, 20)
	n, err := f.ReadAt(buf, 0)
	v, perr := strconv.ParseInt(string(buf[:n]), 10, 64)
	if (err != nil && !errors.Is(err, io.EOF)) || perr != nil || v < 0 {
		p.cfg.logger.Warn("stream: damaged log start offset; starting at the first segment", "file", path, "err", errors.Join(err, perr))
		return -1
	}
	return v
}

// writeLogStart replaces logStartFile with v.
func (p *partition) writeLogStart(v int64) error {
	path := filepath.Join(p.cfg.dir, logStartFile)
	tmp := path + ".tmp"
	f, err := p.cfg.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, p.cfg.filePerm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(strconv.FormatInt(v, 10)), 0)
	if err == nil && p.cfg.sync != SyncNever {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = p.cfg.fs.Rename(tmp, path)
	}
	if err == nil && p.cfg.sync != SyncNever {
		err = p.cfg.fs.SyncDir(p.cfg.dir)
	}
	return err
}

// deleteRecords moves the log start offset to before (Kafka's
// deleteRecords) and deletes the segments wholly below it; it returns the
// log start offset. before past the high watermark is ErrOffsetOutOfRange;
// at or below the start it changes nothing.
func (p *partition) deleteRecords(before int64) (int64, error) {
	if p.cfg.sync != SyncNever {
		// Make what the start passes durable first, so that a machine
		// crash cannot take back records the stored start is past (open
		// would lower it again, but that is the exception).
		if err := p.sync(); err != nil {
			return p.start.Load(), err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return 0, err
	}
	hw, start := p.hw.Load(), p.start.Load()
	if before > hw {
		return start, fmt.Errorf("%w: delete before offset %d, log has [%d, %d)", ErrOffsetOutOfRange, before, start, hw)
	}
	if before <= start {
		return start, nil
	}
	// Durable first: a crash after it finds the new start, and at worst
	// segments below it that are left to delete.
	if err := p.writeLogStart(before); err != nil {
		return start, fmt.Errorf("delete records in %s: %w", p.cfg.dir, err)
	}
	p.start.Store(before)
	segs := p.segments()
	n := 0
	for n < len(segs)-1 && segs[n].Next() <= before {
		n++
	}
	if n == len(segs)-1 && segs[n].Size() > 0 && segs[n].Next() <= before {
		// Every record is deleted: roll, so that the active segment can go.
		if err := p.roll(); err != nil {
			return before, err
		}
		segs = p.segments()
		n++
	}
	if n == 0 {
		return before, nil
	}
	return before, p.dropFirstLocked(segs, n)
}

// info reports the log's start and end offsets, bytes and segment count.
func (p *partition) info() (start, end, bytes int64, segments int) {
	segs := p.segments()
	for _, s := range segs {
		bytes += s.Size()
	}
	return p.start.Load(), p.hw.Load(), bytes, len(segs)
}

// close syncs (unless the policy is SyncNever or a sync failed) and closes
// every segment. With clean, active segments are trimmed so the next open
// can trust them without a scan. Readers blocked in waitFor return ErrClosed.
func (p *partition) close(clean bool) error {
	var err error
	if !p.cfg.readOnly && p.cfg.sync != SyncNever {
		err = p.sync()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	clean = clean && err == nil && p.failed == nil && !p.cfg.readOnly
	for _, s := range p.segments() {
		serr := s.Close(clean)
		if errors.Is(serr, segment.ErrSyncFailed) {
			serr = p.fail(serr) // trimming the active segment failed its fsync
		}
		err = errors.Join(err, serr)
	}
	p.appended.broadcast()
	return err
}

// signal wakes every goroutine waiting for a change. A waiter either takes
// a channel closed at the next broadcast (wait), allocated only when someone
// waits so that writers pay nothing while nobody listens, or registers a
// bell of its own (notify), which costs no allocation per wait and lets one
// goroutine wait on many signals with a single select.
type signal struct {
	mu    sync.Mutex
	ch    chan struct{}
	bells []chan struct{}
}

// wait returns a channel closed at the next broadcast.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// notify rings bell, a channel of capacity 1, at the next broadcast. A ring
// may come for a change its owner has already seen: owners look again
// after every ring.
func (s *signal) notify(bell chan struct{}) {
	s.mu.Lock()
	if !slices.Contains(s.bells, bell) {
		s.bells = append(s.bells, bell)
	}
	s.mu.Unlock()
}

// forget drops bell, registered by a waiter that is going away.
func (s *signal) forget(bell chan struct{}) {
	s.mu.Lock()
	if i := slices.Index(s.bells, bell); i >= 0 {
		s.bells = slices.Delete(s.bells, i, i+1)
	}
	s.mu.Unlock()
}

func (s *signal) broadcast() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	for _, bell := range s.bells {
		select {
		case bell <- struct{}{}:
		default: // rung already
		}
	}
	clear(s.bells)
	s.bells = s.bells[:0]
	s.mu.Unlock()
}
