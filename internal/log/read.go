package log

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/mmap"
	"github.com/embedstream/stream/segment"
)

// Read returns whole batches from the one holding offset on, at most about
// maxBytes (at least one batch), all below the high watermark. An empty
// view at the high watermark means "nothing yet"; wait and retry. Offsets
// that damage made unreadable fail with a *segment.DamageError, which says
// where reading can go on.
func (l *Log) Read(offset int64, maxBytes int) (segment.View, error) {
	return l.read(offset, maxBytes, false)
}

// read is Read, and with committed ReadCommitted: bounded by the last
// stable offset rather than the high watermark.
func (l *Log) read(offset int64, maxBytes int, committed bool) (segment.View, error) {
	refreshed := false
	for {
		hw, start := l.hw.Load(), l.start.Load()
		if offset < start || offset > hw {
			return segment.View{}, fmt.Errorf("%w: offset %d, log has offsets [%d, %d)", errs.ErrOffsetOutOfRange, offset, start, hw)
		}
		upper := hw
		if committed {
			upper = min(hw, l.firstOpen.Load())
		}
		if offset >= upper {
			return segment.View{}, nil
		}
		segs := l.segments()
		i := segmentFor(segs, offset)
		v, err := segs[i].Read(offset, upper, maxBytes)
		if errors.Is(err, segment.ErrClosed) {
			// Retention deleted it (or we are closing): look again.
			if l.isClosed() {
				return segment.View{}, errs.ErrClosed
			}
			continue
		}
		if err != nil && l.cfg.Follow && !refreshed && (errors.Is(err, os.ErrNotExist) || errors.Is(err, mmap.ErrFault)) {
			// A follower read a segment the owner deleted (retention), or
			// a file something cut under it: look at the files again (all
			// of them, for a cut: its directory may not have changed),
			// then retry.
			refreshed = true
			var rerr error
			if errors.Is(err, mmap.ErrFault) {
				rerr = l.reopen()
			} else {
				_, rerr = l.Refresh()
			}
			if rerr == nil {
				continue
			}
		}
		if err != nil {
			if de := (*segment.DamageError)(nil); errors.As(err, &de) && l.lastDamage.Swap(de.Next) != de.Next {
				// Once per damaged range met in a row, not at every retry
				// of a consumer that stays there.
				l.cfg.Stats.CorruptBatches.Add(1)
				l.cfg.Logger.Warn("stream: read met damaged records", "dir", l.cfg.Dir, "from", de.Offset, "to", de.Next-1, "err", de.Err)
			}
			return segment.View{}, fmt.Errorf("read %s at offset %d: %w", l.cfg.Dir, offset, err)
		}
		if len(v.Data) == 0 && i+1 < len(segs) && segs[i+1].Base() < upper {
			// The cleaner removed the rest of this segment's offsets: the
			// next record is in a later segment.
			offset = max(offset, segs[i+1].Base())
			continue
		}
		return v, nil
	}
}

// segmentFor returns the index of the segment holding offset: the last
// whose base is at or below it.
func segmentFor(segs []*segment.Segment, offset int64) int {
	i, found := slices.BinarySearchFunc(segs, offset, func(s *segment.Segment, o int64) int {
		return cmp.Compare(s.Base(), o)
	})
	if !found {
		i--
	}
	return max(i, 0)
}

// OffsetForTime returns the earliest offset from the log start on whose
// timestamp is at or above ts (ms), or -1 if there is none (Kafka's
// offsetsForTimes).
func (l *Log) OffsetForTime(ts int64) (int64, error) {
	for {
		hw, start := l.hw.Load(), l.start.Load()
		retry := false
		for _, s := range l.segments() {
			if s.Base() >= hw {
				break
			}
			if s.Next() <= start {
				continue // deleted by DeleteRecords, or about to go
			}
			maxTS, err := s.MaxTimestamp()
			if err == nil && maxTS < ts {
				continue
			}
			var off int64
			var ok bool
			if err == nil {
				off, ok, err = s.FindTime(ts, start, hw)
			}
			if errors.Is(err, segment.ErrClosed) && !l.isClosed() {
				retry = true // retention deleted it: look again from the new start
				break
			}
			if err != nil {
				return 0, fmt.Errorf("find time in %s: %w", l.cfg.Dir, err)
			}
			if ok {
				return off, nil
			}
		}
		if !retry {
			return -1, nil
		}
	}
}

// OffsetForMaxTimestamp returns the largest record timestamp (ms) of the
// readable log, from the log start to the high watermark, and the first
// offset holding it (Kafka's ListOffsets MAX_TIMESTAMP, KIP-734); -1 and
// -1 if it holds no record. A segment's largest timestamp counts records
// DeleteRecords cut from its front: if one of those held it, the answer
// is the first readable record at or after that time, -1 if none is.
func (l *Log) OffsetForMaxTimestamp() (offset, ts int64, err error) {
	hw, start := l.hw.Load(), l.start.Load()
	ts = math.MinInt64
	for _, s := range l.segments() {
		if s.Base() >= hw {
			break
		}
		if s.Next() <= start {
			continue
		}
		maxTS, err := s.MaxTimestamp()
		if errors.Is(err, segment.ErrClosed) && !l.isClosed() {
			continue // deleted by retention meanwhile: its records are gone
		}
		if err != nil {
			return -1, -1, fmt.Errorf("max timestamp in %s: %w", l.cfg.Dir, err)
		}
		ts = max(ts, maxTS)
	}
	if ts == math.MinInt64 {
		return -1, -1, nil
	}
	offset, err = l.OffsetForTime(ts)
	if err != nil || offset < 0 {
		return -1, -1, err
	}
	return offset, ts, nil
}

// WaitFor blocks until offset is below the high watermark (a record at
// offset is readable), ctx is done, stop is closed (errs.ErrClosed), or the
// partition closes.
func (l *Log) WaitFor(ctx context.Context, offset int64, stop <-chan struct{}) error {
	return l.waitUntil(ctx, stop, func() bool { return l.hw.Load() > offset })
}

// waitUntil blocks until ready, checked at every move of the high
// watermark (and so of the last stable offset), ctx is done, stop is
// closed or the partition closes.
func (l *Log) waitUntil(ctx context.Context, stop <-chan struct{}, ready func() bool) error {
	for !ready() {
		ch := l.appended.Wait()
		if ready() {
			return nil
		}
		if l.isClosed() {
			return errs.ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errs.ErrClosed
		}
	}
	return nil
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
