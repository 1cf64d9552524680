package log

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/segment"
)

// EnforceRetention deletes whole sealed segments, oldest first, while they
// are older than the retention time (by their newest record) or while the
// log would still hold at least RetentionBytes without them; an active
// segment past the retention time whose predecessors all went is rolled and
// deleted too. Nothing at or past the high watermark is deleted. The log
// start offset moves to the first remaining segment; offsets are never
// reused. Size retention also runs as appends grow the log (see
// retainBytesLocked); time retention runs only here.
func (l *Log) EnforceRetention() (deleted int, err error) {
	if set := l.settings(); set.Retention <= 0 && set.RetentionBytes <= 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.cfg.ReadOnly {
		return 0, nil
	}
	set := l.settings() // as of now: Reconfigure holds mu to change them
	segs := l.segments()
	var total int64
	for _, s := range segs {
		total += s.Size()
	}
	nowMS := l.cfg.Now().UnixMilli()
	hw := l.retainBound()
	tooOld := func(s *segment.Segment) (bool, error) {
		if set.Retention <= 0 || s.Size() == 0 {
			return false, nil
		}
		maxTS, err := s.MaxTimestamp()
		return err == nil && nowMS-maxTS > set.Retention.Milliseconds(), err
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
		if !expired && set.RetentionBytes > 0 && total-s.Size() >= set.RetentionBytes {
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

// RetentionDue returns when EnforceRetention may next delete something, by
// the log's clock: now if size retention has segments to delete, else the
// first instant at which the oldest segment's newest record is past
// Retention; the zero time if nothing can be deleted until the log changes
// (no retention, no records, or timestamps too far ahead to ever age).
// That is all a periodic check needs to wait for: time retention deletes
// oldest first, so the oldest segment holds the next deadline; segment
// rolls by SegmentAge happen at appends, and need no timer.
func (l *Log) RetentionDue() time.Time {
	if set := l.settings(); (set.Retention <= 0 && set.RetentionBytes <= 0) || l.cfg.ReadOnly {
		return time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return time.Time{}
	}
	retention := l.settings().Retention // as of now: Reconfigure holds mu to change it
	if l.sizeRetentionDueLocked() {
		return l.cfg.Now()
	}
	segs := l.segments()
	if retention <= 0 || segs[0].Size() == 0 {
		return time.Time{} // EnforceRetention stops at an empty first segment
	}
	maxTS, err := segs[0].MaxTimestamp()
	if err != nil {
		return l.cfg.Now() // EnforceRetention meets the error and reports it
	}
	// EnforceRetention deletes once nowMS - maxTS > Retention in ms.
	ms := retention.Milliseconds()
	if maxTS > math.MaxInt64-ms-1 {
		return time.Time{}
	}
	return time.UnixMilli(maxTS + ms + 1)
}

// sizeRetentionDueLocked reports whether size retention has a segment to
// delete: the rule of EnforceRetention and retainBytesLocked, but for the
// high watermark, which only delays it. Callers hold mu.
func (l *Log) sizeRetentionDueLocked() bool {
	r := l.settings().RetentionBytes
	segs := l.segments()
	return r > 0 && len(segs) > 1 && l.bytes-segs[0].Size() >= r
}

// retentionChanged tells the owner (Config.OnRetention) of the log's
// retention deadline if changed says it may have come earlier.
func (l *Log) retentionChanged(changed bool) {
	if changed && l.cfg.OnRetention != nil {
		if due := l.RetentionDue(); !due.IsZero() {
			l.cfg.OnRetention(due)
		}
	}
}

// retainBytesLocked applies size retention (EnforceRetention's rule) as an
// append takes the log past it, so that a burst cannot fill the disk far
// past RetentionBytes before the next periodic check: the log stays within
// its oldest segment of RetentionBytes, Kafka's bound right after its check.
// Time retention stays with EnforceRetention: records age without appends,
// so a quiet log needs the periodic check anyway. A failure to delete is
// logged, not returned: the append is not at fault, and the list and start
// have moved already. Callers hold mu.
func (l *Log) retainBytesLocked() {
	segs := l.segments()
	total := l.bytes
	hw, limit := l.retainBound(), l.settings().RetentionBytes
	n := 0
	// Never what readers cannot see yet (SyncAlways before its fsync).
	for n < len(segs)-1 && segs[n].Next() <= hw && total-segs[n].Size() >= limit {
		total -= segs[n].Size()
		n++
	}
	if n == 0 {
		return
	}
	l.cfg.Logger.Info("stream: retention deletes segments", "dir", l.cfg.Dir, "segments", n, "start", segs[n].Base())
	if err := l.dropFirstLocked(segs, n); err != nil {
		l.cfg.Logger.Error("stream: retention failed", "dir", l.cfg.Dir, "err", err)
	}
}

// dropFirstLocked deletes the first n segments of segs, the current list.
// Callers hold mu.
func (l *Log) dropFirstLocked(segs []*segment.Segment, n int) (err error) {
	// Start first: a reader that sees the new start never looks for a
	// deleted offset in the new list.
	l.start.Store(max(segs[n].Base(), l.start.Load()))
	l.segs.Store(ptr(slices.Clone(segs[n:])))
	if l.txn.loaded {
		bases := make([]int64, n)
		for i, s := range segs[:n] {
			bases[i] = s.Base()
		}
		err = l.dropTxnIndexesLocked(bases, segs[n].Base())
	} else {
		for _, s := range segs[:n] {
			// Unloaded, the log may still have indexes (from Kafka, say).
			if rerr := l.cfg.FS.Remove(filepath.Join(l.cfg.Dir, segment.FileName(s.Base(), TxnIndexSuffix))); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}
	for _, s := range segs[:n] {
		l.bytes -= s.Size()
		// Readers holding views keep their mapping; new reads miss the
		// segment and see the new log start.
		if derr := s.Delete(); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	l.cfg.Stats.SegmentsDeleted.Add(int64(n))
	if l.settings().Sync == SyncNever {
		return err
	}
	return errors.Join(err, l.cfg.FS.SyncDir(l.cfg.Dir))
}

// The log start offset, once DeleteRecords has moved it past the first
// segment's base, is kept in the log's directory in logStartFile, replaced
// whole by a rename: the offset in decimal, a space, and the CRC-32C
// (Castagnoli) of those digits in 8 lowercase hex digits, so that a flipped
// digit, which would still read as an offset, is seen as damage. A file of
// digits alone (written before the checksum) is read as the offset. Without
// the file (or with an older, lower value) the log starts at its first
// segment's base.
const logStartFile = "log-start"

// maxLogStartLen is the longest content logStartFile can have: the digits
// of the largest int64, a space and the checksum.
const maxLogStartLen = 19 + 1 + 8

// StartFile is the log-start file's name, for tools that read a log's
// directory (streamctl verify).
const StartFile = logStartFile

// ParseStart reads a log-start file's content: the offset, and whether the
// content holds one that passes its checks.
func ParseStart(content []byte) (int64, bool) {
	if len(content) > maxLogStartLen {
		return -1, false
	}
	return parseLogStart(content)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// formatLogStart is logStartFile's content for offset v.
func formatLogStart(v int64) []byte {
	digits := strconv.FormatInt(v, 10)
	return fmt.Appendf(nil, "%s %08x", digits, crc32.Checksum([]byte(digits), castagnoli))
}

// parseLogStart reads logStartFile's content; ok is false if it holds no
// offset or its checksum does not match.
func parseLogStart(b []byte) (v int64, ok bool) {
	digits, _, checked := strings.Cut(string(b), " ")
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v < 0 || strconv.FormatInt(v, 10) != digits {
		return -1, false
	}
	if checked && string(b) != string(formatLogStart(v)) {
		return -1, false // the checksum, or anything else, differs
	}
	return v, true
}

// openStart sets the log start at open: the first segment's base, or the
// start DeleteRecords stored if that is higher and at most the recovered
// end. Segments wholly below it, left by a crash in the middle of
// DeleteRecords, go.
//
// A stored start past the recovered end is not trusted: a bit flip,
// garbage, or a machine crash under SyncNever (which can keep the file yet
// take back the records it had passed) would otherwise delete every
// segment. Like a start that is not a number (garbage, a negative number,
// nothing), it is ignored: the log starts at its first segment, deleting
// nothing, and the reset is logged and counted in Stats.LogStartResets.
// Records that DeleteRecords had deleted may reappear; that costs far less
// than losing the partition. A read-write open then replaces the file with
// the first segment's base, so that the damage is not met again; a
// read-only one changes nothing on disk. A file that cannot be read at all
// (an I/O error, which may pass) is ignored and counted too, but left as
// it is.
func (l *Log) openStart() error {
	segs := l.segments()
	first := segs[0].Base()
	stored, damaged, rerr := int64(-1), false, error(nil)
	if !l.noStartFile {
		stored, damaged, rerr = l.readLogStart()
	}
	if stored > l.written {
		l.cfg.Logger.Warn("stream: the stored log start is past the end; ignoring it and starting at the first segment",
			"dir", l.cfg.Dir, "stored", stored, "end", l.written, "start", first)
		stored, damaged = -1, true
	}
	l.start.Store(max(first, stored))
	if damaged || rerr != nil {
		l.cfg.Stats.LogStartResets.Add(1)
	}
	if l.cfg.ReadOnly {
		return nil
	}
	if damaged {
		if err := l.writeLogStart(first); err != nil {
			return fmt.Errorf("replace the damaged log start of %s: %w", l.cfg.Dir, err)
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

// readLogStart returns the offset logStartFile holds, or -1 if it holds
// none. damaged says the file holds no offset (garbage, a negative number,
// nothing); rerr says it could not be read, which may pass (an I/O error),
// so the file is left as it is.
func (l *Log) readLogStart() (start int64, damaged bool, rerr error) {
	path := filepath.Join(l.cfg.Dir, logStartFile)
	start, content, rerr := l.readLogStartFile()
	switch {
	case rerr != nil:
		l.cfg.Logger.Warn("stream: cannot read the log start offset; starting at the first segment", "file", path, "err", rerr)
	case start < 0 && content != nil:
		l.cfg.Logger.Warn("stream: damaged log start offset; starting at the first segment",
			"file", path, "content", fmt.Sprintf("%q", content))
		return -1, true, nil
	}
	return start, false, rerr
}

// readLogStartFile reads logStartFile without a word: the offset it holds,
// or -1 and what it holds instead (nil if there is no file), or an error
// reading it.
func (l *Log) readLogStartFile() (start int64, content []byte, err error) {
	f, err := l.cfg.FS.OpenFile(filepath.Join(l.cfg.Dir, logStartFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil, nil
	}
	if err != nil {
		return -1, nil, err
	}
	defer f.Close()
	buf := make([]byte, maxLogStartLen+1) // one more, to see content too long
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return -1, nil, err
	}
	v, ok := parseLogStart(buf[:n])
	if !ok || n > maxLogStartLen {
		return -1, buf[:n], nil
	}
	return v, nil, nil
}

// writeLogStart replaces logStartFile with v.
func (l *Log) writeLogStart(v int64) error {
	path := filepath.Join(l.cfg.Dir, logStartFile)
	tmp := path + ".tmp"
	f, err := l.cfg.FS.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, l.cfg.FilePerm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(formatLogStart(v), 0)
	if err == nil && l.settings().Sync != SyncNever {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = l.cfg.FS.Rename(tmp, path)
	}
	if err == nil && l.settings().Sync != SyncNever {
		err = l.cfg.FS.SyncDir(l.cfg.Dir)
	}
	return err
}

// DeleteRecords moves the log start offset to before (Kafka's
// deleteRecords) and deletes the segments wholly below it; it returns the
// log start offset. before past the high watermark is errs.ErrOffsetOutOfRange;
// at or below the start it changes nothing.
func (l *Log) DeleteRecords(before int64) (int64, error) {
	if l.Policy() != SyncNever {
		// Make what the start passes durable first, so that a machine
		// crash cannot take back records the stored start is past (open
		// would take such a start for damage and ignore it).
		if err := l.Sync(); err != nil {
			return l.start.Load(), err
		}
	}
	// Once unlocked: the new first segment may hold older records than
	// the old one did.
	moved := false
	defer func() { l.retentionChanged(moved && l.settings().Retention > 0) }()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	hw, start := l.hw.Load(), l.start.Load()
	if before > hw {
		return start, fmt.Errorf("%w: delete before offset %d, log has offsets [%d, %d)", errs.ErrOffsetOutOfRange, before, start, hw)
	}
	if before <= start {
		return start, nil
	}
	moved = true
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
