package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/segment"
)

// EnforceRetention deletes whole sealed segments, oldest first, while they
// are older than the retention time (by their newest record) or while the
// log would still hold at least retentionBytes without them; an active
// segment past the retention time whose predecessors all went is rolled and
// deleted too. Nothing at or past the high watermark is deleted. The log
// start offset moves to the first remaining segment; offsets are never
// reused.
func (l *Log) EnforceRetention() (deleted int, err error) {
	if l.cfg.Retention <= 0 && l.cfg.RetentionBytes <= 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.cfg.ReadOnly {
		return 0, nil
	}
	segs := l.segments()
	var total int64
	for _, s := range segs {
		total += s.Size()
	}
	nowMS := l.cfg.Now().UnixMilli()
	hw := l.hw.Load()
	tooOld := func(s *segment.Segment) (bool, error) {
		if l.cfg.Retention <= 0 || s.Size() == 0 {
			return false, nil
		}
		maxTS, err := s.MaxTimestamp()
		return err == nil && nowMS-maxTS > l.cfg.Retention.Milliseconds(), err
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
		if !expired && l.cfg.RetentionBytes > 0 && total-s.Size() >= l.cfg.RetentionBytes {
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
			if err := l.roll(); err != nil {
				return 0, err
			}
			segs = l.segments()
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	l.cfg.Logger.Info("stream: retention deletes segments", "dir", l.cfg.Dir, "segments", n, "start", segs[n].Base())
	return n, l.dropFirstLocked(segs, n)
}

// dropFirstLocked deletes the first n segments of segs, the current list.
// Callers hold mu.
func (l *Log) dropFirstLocked(segs []*segment.Segment, n int) (err error) {
	// Start first: a reader that sees the new start never looks for a
	// deleted offset in the new list.
	l.start.Store(max(segs[n].Base(), l.start.Load()))
	l.segs.Store(ptr(slices.Clone(segs[n:])))
	for _, s := range segs[:n] {
		// Readers holding views keep their mapping; new reads miss the
		// segment and see the new log start.
		if derr := s.Delete(); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	l.cfg.Stats.SegmentsDeleted.Add(int64(n))
	if l.cfg.Sync == SyncNever {
		return err
	}
	return errors.Join(err, l.cfg.FS.SyncDir(l.cfg.Dir))
}

// The log start offset, once DeleteRecords has moved it past the first
// segment's base, is kept in the log's directory in logStartFile: the
// offset in decimal, replaced whole by a rename. Without the file (or with
// an older, lower value) the log starts at its first segment's base.
const logStartFile = "log-start"

// openStart sets the log start at open: the first segment's base, or the
// start deleteRecords stored if that is higher. A stored start past the
// recovered end (a machine crash took back records it had passed, or
// recovery cut the log) is lowered to the end and stored again, so records
// appended from there are never hidden behind it later. Segments wholly
// below the start, left by a crash in the middle of DeleteRecords, go.
func (l *Log) openStart() error {
	segs := l.segments()
	stored := l.readLogStart()
	l.start.Store(min(max(segs[0].Base(), stored), l.written))
	if l.cfg.ReadOnly {
		return nil
	}
	if stored > l.written {
		l.cfg.Logger.Warn("stream: the stored log start is past the recovered end; starting at the end",
			"dir", l.cfg.Dir, "stored", stored, "end", l.written)
		if err := l.writeLogStart(l.written); err != nil {
			return err
		}
	}
	n := 0
	for n < len(segs)-1 && segs[n].Next() <= l.start.Load() {
		n++
	}
	if n == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropFirstLocked(segs, n)
}

// readLogStart returns the offset logStartFile holds, or -1.
func (l *Log) readLogStart() int64 {
	path := filepath.Join(l.cfg.Dir, logStartFile)
	f, err := l.cfg.FS.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.cfg.Logger.Warn("stream: cannot read the log start offset; starting at the first segment", "file", path, "err", err)
		}
		return -1
	}
	defer f.Close()
	buf := make([]byte, 20)
	n, err := f.ReadAt(buf, 0)
	v, perr := strconv.ParseInt(string(buf[:n]), 10, 64)
	if (err != nil && !errors.Is(err, io.EOF)) || perr != nil || v < 0 {
		l.cfg.Logger.Warn("stream: damaged log start offset; starting at the first segment", "file", path, "err", errors.Join(err, perr))
		return -1
	}
	return v
}

// writeLogStart replaces logStartFile with v.
func (l *Log) writeLogStart(v int64) error {
	path := filepath.Join(l.cfg.Dir, logStartFile)
	tmp := path + ".tmp"
	f, err := l.cfg.FS.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, l.cfg.FilePerm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(strconv.FormatInt(v, 10)), 0)
	if err == nil && l.cfg.Sync != SyncNever {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = l.cfg.FS.Rename(tmp, path)
	}
	if err == nil && l.cfg.Sync != SyncNever {
		err = l.cfg.FS.SyncDir(l.cfg.Dir)
	}
	return err
}

// DeleteRecords moves the log start offset to before (Kafka's
// deleteRecords) and deletes the segments wholly below it; it returns the
// log start offset. before past the high watermark is errs.ErrOffsetOutOfRange;
// at or below the start it changes nothing.
func (l *Log) DeleteRecords(before int64) (int64, error) {
	if l.cfg.Sync != SyncNever {
		// Make what the start passes durable first, so that a machine
		// crash cannot take back records the stored start is past (open
		// would lower it again, but that is the exception).
		if err := l.Sync(); err != nil {
			return l.start.Load(), err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	hw, start := l.hw.Load(), l.start.Load()
	if before > hw {
		return start, fmt.Errorf("%w: delete before offset %d, log has [%d, %d)", errs.ErrOffsetOutOfRange, before, start, hw)
	}
	if before <= start {
		return start, nil
	}
	// Durable first: a crash after it finds the new start, and at worst
	// segments below it that are left to delete.
	if err := l.writeLogStart(before); err != nil {
		return start, fmt.Errorf("delete records in %s: %w", l.cfg.Dir, err)
	}
	l.start.Store(before)
	segs := l.segments()
	n := 0
	for n < len(segs)-1 && segs[n].Next() <= before {
		n++
	}
	if n == len(segs)-1 && segs[n].Size() > 0 && segs[n].Next() <= before {
		// Every record is deleted: roll, so that the active segment can go.
		if err := l.roll(); err != nil {
			return before, err
		}
		segs = l.segments()
		n++
	}
	if n == 0 {
		return before, nil
	}
	return before, l.dropFirstLocked(segs, n)
}
