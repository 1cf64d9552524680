package log

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/segment"
)

// A follower (Config.Follow) reads a log that another process, its owner,
// writes: it opens like a read-only log, changing nothing on disk, and
// Refresh takes in what the owner did since. Refresh looks at two things:
//
//   - the active segment's file, for batches appended past the known end
//     (see segment.Follow): whole, CRC-checked batches only, so a
//     preallocated, torn or half-written tail is "not written yet";
//   - the directory, for segments the owner rolled (new files after the
//     active one: it was sealed before they were made), deleted (retention,
//     DeleteRecords: files gone from the front), cleaned (new files under
//     the old names, others gone from the middle) and the log-start file
//     DeleteRecords writes. The directory is listed again only when its
//     modification time says it changed, so an idle partition costs two
//     stat calls per refresh.
//
// Whatever does not fit (a file cut below what was read, a segment's file
// replaced, a segment gone from the middle) makes the follower reopen the
// whole log from its files, as Open would.

// mtimeSlack is how long after a directory's modification time a listing
// is not trusted to have seen every change: file systems stamp times from a
// coarse clock (a jiffy; a second on some), so a change just after a
// listing may leave the time as it was. Within the slack the directory is
// listed at every refresh.
const mtimeSlack = 2 * time.Second

// followState is a follower's view of the directory, guarded by mu.
type followState struct {
	dirMod  time.Time // the directory's modification time as of the last listing
	checked time.Time // when that time was read, just before the listing
	// listed holds each segment's file as listed, by base offset: a new
	// file under the active segment's name is another log, and under a
	// sealed one's, the owner's cleaner swapped a cleaned segment in.
	listed  map[int64]os.FileInfo
	start   int64  // the offset the log-start file holds, -1 if none (or damaged)
	lastErr string // the last refresh error logged, so that each is logged once
}

// watchDir records the directory's modification time before a listing.
func (l *Log) watchDir() error {
	fi, err := l.cfg.FS.Lstat(l.cfg.Dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", errs.ErrCorrupt, l.cfg.Dir)
	}
	l.follow.dirMod, l.follow.checked = fi.ModTime(), time.Now()
	return nil
}

// dirChanged reports whether the directory may have changed since the last
// listing, recording the time it has now if so.
func (l *Log) dirChanged() (bool, error) {
	fi, err := l.cfg.FS.Lstat(l.cfg.Dir)
	if err != nil {
		return false, err
	}
	if fi.ModTime().Equal(l.follow.dirMod) && l.follow.checked.Sub(l.follow.dirMod) >= mtimeSlack {
		return false, nil
	}
	l.follow.dirMod, l.follow.checked = fi.ModTime(), time.Now()
	return true, nil
}

// followFiles records what a listing found beside the segments: the active
// file's identity and the log-start file's offset.
func (l *Log) followFiles(files []segmentFile) {
	l.follow.listed = make(map[int64]os.FileInfo, len(files))
	for _, f := range files {
		l.follow.listed[f.base] = f.info
	}
	start, content, err := l.readLogStartFile()
	if err == nil && content == nil {
		l.follow.start = start
	} // else keep the last one read: a damaged or unreadable file may pass
}

// publishLocked makes the segments' contents visible: the high watermark
// moves to their end, and the log start to the first segment, or to the
// stored start once the records it passes have been read (the owner may
// have written both since this follower's last look). Callers hold mu.
func (l *Log) publishLocked() {
	segs := l.segments()
	l.bytes, l.written = 0, 0
	for _, s := range segs {
		l.bytes += s.Size()
	}
	var start int64
	if len(segs) > 0 {
		l.written = segs[len(segs)-1].Next()
		start = segs[0].Base()
	}
	if stored := l.follow.start; stored > start && stored <= l.written {
		start = stored
	}
	start = min(start, l.written)
	// The start moves first, so that a reader seeing the new end never
	// finds a deleted offset below it (as dropFirstLocked orders it).
	l.start.Store(start)
	// The transactions before the end, as the owner orders it: a
	// read_committed reader that sees the new end sees the last stable
	// offset that goes with it.
	l.followTxnsLocked()
	l.hw.Store(l.written)
	l.synced = l.written
}

// Refresh brings a follower's view of the log up to date with its files
// (see above) and wakes readers waiting for records if the high watermark
// or the log start moved, as moved reports. A log that is not a follower
// is always up to date. An error leaves the view as it was (or, for
// damage, reopened); it is logged once, when first met.
func (l *Log) Refresh() (moved bool, err error) {
	if !l.cfg.Follow {
		return false, nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false, errs.ErrClosed
	}
	hw, start := l.hw.Load(), l.start.Load()
	err = l.refreshLocked()
	l.publishLocked()
	moved = l.hw.Load() != hw || l.start.Load() != start
	// A directory gone is a topic deleted: the broker sees to it.
	if err != nil && err.Error() != l.follow.lastErr && !errors.Is(err, os.ErrNotExist) {
		l.cfg.Logger.Warn("stream: following the log failed; trying again at the next refresh", "dir", l.cfg.Dir, "err", err)
	}
	l.follow.lastErr = ""
	if err != nil {
		l.follow.lastErr = err.Error()
	}
	l.mu.Unlock()
	if moved {
		l.appended.Broadcast()
	}
	return moved, err
}

// refreshLocked takes in the directory's changes, then the active
// segment's appends. Callers hold mu.
func (l *Log) refreshLocked() error {
	changed, err := l.dirChanged()
	if err != nil {
		return err
	}
	if changed {
		if err := l.relistLocked(); err != nil {
			return err
		}
	}
	segs := l.segments()
	if len(segs) == 0 {
		return nil
	}
	active := segs[len(segs)-1]
	damaged, err := active.Follow()
	if damaged > 0 {
		l.cfg.Stats.CorruptBatches.Add(int64(damaged))
		l.cfg.Logger.Warn("stream: damaged batches in a followed segment: reads report their offsets as corrupt",
			"dir", l.cfg.Dir, "segment", active.Base(), "ranges", damaged)
	}
	if errors.Is(err, segment.ErrShrunk) {
		l.cfg.Logger.Warn("stream: a followed segment was cut below what was read; reopening the log", "dir", l.cfg.Dir, "err", err)
		return l.reloadLocked()
	}
	return err
}

// relistLocked lists the directory and fits the segments to it: segments
// gone from the front are dropped, and if files follow the active segment
// it is reopened sealed (the owner seals before it creates the next) and
// the new ones are opened. Anything else that changed makes it reopen the
// log. Callers hold mu.
func (l *Log) relistLocked() error {
	files, err := l.listSegments()
	if err != nil {
		return err
	}
	old := l.segments()
	keep := 0 // old segments still there: a suffix of old, files[:keep]
	if len(old) > 0 {
		active := old[len(old)-1].Base()
		j := slices.IndexFunc(files, func(f segmentFile) bool { return f.base == active })
		switch {
		case j < 0 && (len(files) == 0 || files[0].base > active):
			// Every segment of ours went (retention after a roll).
		case j < 0 || j >= len(old):
			return l.reloadLocked() // not what the owner does: start again
		default:
			keep = j + 1
			for i, f := range files[:keep] {
				if f.base != old[len(old)-keep+i].Base() {
					return l.reloadLocked() // one went from the middle
				}
			}
			for _, f := range files[:keep] {
				if !os.SameFile(f.info, l.follow.listed[f.base]) {
					// The active file replaced: another log; a sealed
					// one: a cleaned segment under the same name.
					return l.reloadLocked()
				}
			}
		}
	}
	drop := len(old) - keep
	var added []*segment.Segment
	if keep < len(files) {
		if keep > 0 {
			// The active segment was sealed: its file has its final size.
			last := files[keep-1]
			sealed, err := l.openSealed(last.base, files[keep].base, last.info.Size())
			if err != nil {
				return err
			}
			added = append(added, sealed)
		}
		more, err := l.openSegments(files[keep:], false)
		if err != nil {
			closeSegments(added)
			return err
		}
		added = append(added, more...)
	}
	l.followFiles(files)
	if drop == 0 && len(added) == 0 {
		return nil
	}
	segs := slices.Clone(old[drop:])
	gone := slices.Clone(old[:drop])
	if keep > 0 && len(added) > 0 {
		gone = append(gone, segs[len(segs)-1]) // replaced by its sealed self
		segs = segs[:len(segs)-1]
	}
	segs = append(segs, added...)
	l.segs.Store(&segs)
	// Readers still in them retry on the new list (segment.ErrClosed);
	// views already handed out keep their mappings.
	closeSegments(gone)
	return nil
}

// openSealed opens a segment the owner has sealed, ending where next
// begins, and checks its tail as after a crash (a follower never knows it
// was clean); a damaged tail is recovered in memory.
func (l *Log) openSealed(base, next, size int64) (*segment.Segment, error) {
	s := segment.OpenSealed(l.segcfg, l.cfg.Dir, base, next, size)
	if err := l.checkSealedOne(s, next); err != nil {
		s.Close(false)
		return nil, err
	}
	return s, nil
}

// reopen reopens a follower's log from its files (see reloadLocked) and
// wakes its readers: a read met a file cut under it.
func (l *Log) reopen() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errs.ErrClosed
	}
	l.cfg.Logger.Warn("stream: a followed segment file was cut under a read; reopening the log", "dir", l.cfg.Dir)
	err := l.reloadLocked()
	l.publishLocked()
	l.mu.Unlock()
	l.appended.Broadcast()
	return err
}

// reloadLocked reopens the log from its files, as Open does, replacing the
// segments (views keep theirs). Callers hold mu.
func (l *Log) reloadLocked() error {
	if err := l.watchDir(); err != nil {
		return err
	}
	files, err := l.listSegments()
	if err != nil {
		return err
	}
	segs, err := l.openSegments(files, false)
	if err != nil {
		return err
	}
	old := l.segments()
	l.segs.Store(&segs)
	l.followFiles(files)
	closeSegments(old)
	return nil
}
