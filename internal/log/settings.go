package log

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/segment"
)

// Reconfigure replaces the log's settings while it is open, beside appends
// and reads: a topic's config altered at run time. The caller validates
// them (as for Open). Each takes effect at its next use:
//
//   - MaxBatchBytes and LogAppendTime at the next Append;
//   - SegmentBytes and SegmentAge at the next Append's roll check (a new
//     SegmentBytes below the active segment's size rolls it then; the
//     preallocation and index sizes of a segment are those it was made
//     with);
//   - RetentionBytes at the next Append or EnforceRetention, Retention at
//     the next EnforceRetention; a change of either tells the owner the
//     new RetentionDue (Config.OnRetention);
//   - Sync at once: records written before the change are made durable as
//     the new policy promises. Leaving SyncNever fsyncs what it left to the
//     OS (the active segment, sealed segments, the log-start file and the
//     directory's entries); entering SyncAlways fsyncs the active segment
//     before returning, so everything readers can see is durable, as that
//     policy promises; leaving SyncAlways makes records that were waiting
//     for their fsync visible.
//
// An fsync failure is returned after the settings changed, and, as any
// failed fsync does, stops the log taking writes (errs.ErrSyncFailed).
// A closed log returns errs.ErrClosed, a read-only one errs.ErrReadOnly,
// and neither changes.
func (l *Log) Reconfigure(s Settings) error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return errs.ErrClosed
	case l.cfg.ReadOnly:
		l.mu.Unlock()
		return errs.ErrReadOnly
	}
	old := l.settings()
	l.set.Store(&s)
	if s.SegmentBytes != old.SegmentBytes || (s.Sync == SyncNever) != (old.Sync == SyncNever) {
		c := *l.segcfg
		c.MaxBytes, c.NoSync = s.SegmentBytes, s.Sync == SyncNever
		l.segcfg = &c
	}
	var err error
	if old.Sync == SyncNever && s.Sync != SyncNever && l.failed == nil {
		if err = l.syncLazyLocked(); err != nil {
			err = l.fail(err)
		}
	}
	if old.Sync == SyncAlways && s.Sync != SyncAlways && l.raiseHW(l.written) {
		l.appended.Broadcast()
	}
	end := l.written
	l.mu.Unlock()
	// The owner's retention deadline may come sooner under the new limits.
	l.retentionChanged(s.Retention != old.Retention || s.RetentionBytes != old.RetentionBytes)
	if err == nil && s.Sync.strictness() > old.Sync.strictness() {
		// Into SyncInterval or SyncAlways from a laxer policy: what is
		// written is made durable now, not at the next tick or append.
		err = l.waitDurable(end)
	}
	if s.Sync == SyncInterval && old.Sync != SyncInterval && l.dirty.Load() && l.cfg.OnUnsynced != nil {
		// Appended during the change, after the fsync above looked: the
		// owner's timer must know, as an append's first dirtying tells it.
		l.cfg.OnUnsynced()
	}
	return err
}

// strictness orders the policies by what they promise: SyncNever,
// SyncInterval, SyncAlways.
func (p SyncPolicy) strictness() int {
	switch p {
	case SyncNever:
		return 0
	case SyncAlways:
		return 2
	}
	return 1
}

// syncLazyLocked fsyncs what SyncNever left to the OS, other than the
// active segment's data (see Reconfigure): sealed segments it sealed
// without an fsync, the log-start file, and the directory's entries of
// the files it made or removed. Callers hold mu.
func (l *Log) syncLazyLocked() error {
	fs := l.cfg.FS
	if l.lazySealed {
		segs := l.segments()
		for _, s := range segs[:len(segs)-1] {
			if err := syncFile(fs, filepath.Join(l.cfg.Dir, segment.FileName(s.Base(), segment.LogSuffix))); err != nil {
				return err
			}
		}
		l.lazySealed = false
	}
	if err := syncFile(fs, filepath.Join(l.cfg.Dir, logStartFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fs.SyncDir(l.cfg.Dir)
}

// syncFile fsyncs the file at path, which is not open for writing.
func syncFile(fs vfs.FS, path string) error {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
