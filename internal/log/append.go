package log

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/segment"
)

// Append writes one encoded batch (see batch.Builder) at the end of the
// log, assigning its offsets, and returns its base offset. Under SyncAlways
// it returns once the batch is durable.
func (l *Log) Append(b batch.Batch) (int64, error) {
	base, _, _, err := l.append(b, false, true)
	return base, err
}

// append is Append, and with produced AppendProduced: then a batch with a
// producer ID is checked against its producer's state, and the remembered
// batch it repeats returned (nothing written) if it is a retry; a
// transactional one opens its producer's transaction. Without wait it
// returns before an fsync under SyncAlways, with the end to wait for
// (WaitDurable).
func (l *Log) append(b batch.Batch, produced, wait bool) (int64, int64, *producerBatch, error) {
	if limit := l.settings().MaxBatchBytes; len(b) > limit {
		return 0, 0, nil, fmt.Errorf("%w: batch of %d bytes exceeds %d", errs.ErrRecordTooLarge, len(b), limit)
	}
	// Batches come from batch.Builder, whose CRC is right by construction;
	// the header and length checks catch a misuse before it reaches disk.
	if err := batch.CheckHeader(b); err != nil {
		return 0, 0, nil, err
	}
	if b.Size() != len(b) {
		return 0, 0, nil, fmt.Errorf("%w: batch of %d bytes says %d", batch.ErrCorrupt, len(b), b.Size())
	}
	l.mu.Lock()
	pid := int64(-1)
	if produced {
		pid = b.ProducerID()
	}
	if pid >= 0 {
		if err := l.writableLocked(); err != nil {
			l.mu.Unlock()
			return 0, 0, nil, err
		}
		e, err := l.producerLocked(pid, l.cfg.Now().UnixMilli())
		var dup *producerBatch
		if err == nil {
			dup, err = e.check(pid, b)
		}
		if err != nil || dup != nil {
			var orig producerBatch
			if dup != nil {
				orig = *dup
			}
			// A retry is answered as its original was: under SyncAlways
			// once that is durable (a retry may come while the original
			// still waits for its fsync). What is written now covers it.
			end, always := l.written, l.settings().Sync == SyncAlways
			l.mu.Unlock()
			if err != nil {
				return 0, 0, nil, err
			}
			if always && wait {
				if err := l.waitDurable(end); err != nil {
					return 0, 0, nil, err
				}
			}
			return orig.base, end, &orig, nil
		}
	}
	txnal := pid >= 0 && b.IsTransactional()
	if txnal {
		if err := l.beginTxnAppendLocked(); err != nil {
			l.mu.Unlock()
			return 0, 0, nil, err
		}
	}
	wasEmpty := l.bytes == 0
	base, err := l.appendLocked(b)
	if err != nil {
		l.mu.Unlock()
		return 0, 0, nil, err
	}
	if pid >= 0 {
		l.prod.record(pid, b)
	}
	if txnal {
		l.noteTxnBatchLocked(b)
	}
	end := l.written
	// Retention may be due sooner than its owner knows: time retention
	// has records to age, or size retention was left to do (SyncAlways
	// keeps what is not yet durable).
	set := l.settings()
	retain := (set.Retention > 0 && wasEmpty) || l.sizeRetentionDueLocked()
	if set.Sync != SyncAlways {
		l.raiseHW(end)
		// Marked dirty under mu: a sync between the unlock and the mark
		// would cover these bytes, clear the flag, and leave it set with
		// nothing to sync, so later appends would never signal again.
		first := !l.dirty.Swap(true)
		l.mu.Unlock()
		if first && set.Sync == SyncInterval && l.cfg.OnUnsynced != nil {
			l.cfg.OnUnsynced()
		}
		l.appended.Broadcast()
		l.retentionChanged(retain)
		return base, end, nil, nil
	}
	if !wait {
		l.dirty.Store(true)
	}
	l.mu.Unlock()
	if wait {
		err = l.waitDurable(end)
	}
	l.retentionChanged(retain)
	return base, end, nil, err
}

// writableLocked says why the log takes no writes now, if it does not.
// Callers hold mu.
func (l *Log) writableLocked() error {
	switch {
	case l.closed:
		return errs.ErrClosed
	case l.cfg.ReadOnly:
		return errs.ErrReadOnly
	}
	return l.failed
}

func (l *Log) appendLocked(b batch.Batch) (int64, error) {
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	segs := l.segments()
	active := segs[len(segs)-1]
	now := l.cfg.Now()
	set := l.settings()
	if l.shouldRoll(set, active, b, now) {
		if err := l.roll(); err != nil {
			return 0, err
		}
		segs = l.segments()
		active = segs[len(segs)-1]
	}
	base := l.written
	b.SetBaseOffset(base)
	if set.LogAppendTime {
		b.SetLogAppendTime(now.UnixMilli())
	}
	if active.Size() == 0 {
		l.activeSince = now
	}
	if _, err := active.Append(b); err != nil {
		return 0, err
	}
	l.written = b.LastOffset() + 1
	l.bytes += int64(len(b))
	if r := set.RetentionBytes; r > 0 && len(segs) > 1 && l.bytes-segs[0].Size() >= r {
		// Size retention's rule, applied as the log grows rather than only
		// by the periodic check: a burst never takes a partition more than
		// its oldest segment past RetentionBytes.
		l.retainBytesLocked()
	}
	records, size := int64(b.NumRecords()), int64(len(b))
	l.recordsIn.Add(records)
	l.bytesIn.Add(size)
	st := l.cfg.Stats
	st.BatchesIn.Add(1)
	st.RecordsIn.Add(records)
	st.BytesIn.Add(size)
	return base, nil
}

func (l *Log) shouldRoll(set *Settings, active *segment.Segment, b batch.Batch, now time.Time) bool {
	if active.Sealed() {
		return true // a roll sealed it but could not create the next one
	}
	size := active.Size()
	if size == 0 {
		return false
	}
	age := set.SegmentAge
	if set.Compact && set.MaxCompactionLag > 0 && (age == 0 || set.MaxCompactionLag < age) {
		// Kafka's KIP-354: the active segment is never cleaned, so it rolls
		// in time for its records to be cleaned within the lag.
		age = set.MaxCompactionLag
	}
	return size+int64(len(b)) > set.SegmentBytes ||
		(age > 0 && now.Sub(l.activeSince) >= age) ||
		l.written+int64(b.LastOffsetDelta())-active.Base() > math.MaxUint32 ||
		active.IndexFull()
}

// roll seals the active segment and starts a new one at the log end.
// Callers hold mu.
func (l *Log) roll() error {
	segs := l.segments()
	active := segs[len(segs)-1]
	syncs := l.settings().Sync != SyncNever
	if l.lazyActive && syncs && !active.Sealed() {
		// Made under SyncNever, whose Seal skips the fsync that the
		// policy now asks for.
		if err := active.Sync(); err != nil {
			return l.fail(err)
		}
	}
	began := time.Now()
	if err := active.Seal(); err != nil {
		if errors.Is(err, segment.ErrSyncFailed) || active.Sealed() {
			return l.fail(err)
		}
		return err // trimming failed before any fsync: the segment still takes writes
	}
	if err := l.sealTxnLocked(active.Base(), l.written); err != nil {
		return err
	}
	if syncs {
		l.cfg.Stats.Fsyncs.Add(1)
		l.cfg.Stats.FsyncLatency.Observe(time.Since(began))
	} else {
		l.lazySealed = true
	}
	next, err := segment.Create(l.segcfg, l.cfg.Dir, l.written)
	if err != nil {
		return err
	}
	l.lazyActive = l.segcfg.NoSync
	l.segs.Store(ptr(append(slices.Clip(segs), next)))
	l.cfg.Stats.SegmentsRolled.Add(1)
	if l.cfg.OnRoll != nil && l.settings().Compact {
		l.cfg.OnRoll()
	}
	return nil
}

// raiseHW moves the high watermark up to end, never down: appends and the
// fsyncs of SyncAlways both move it, and a change of policy between them
// must not take back what readers were shown.
func (l *Log) raiseHW(end int64) bool {
	for {
		hw := l.hw.Load()
		if hw >= end {
			return false
		}
		if l.hw.CompareAndSwap(hw, end) {
			return true
		}
	}
}

func ptr[T any](v T) *T { return &v }

// fail records a sync failure: from now on every write returns it.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %s: %w", errs.ErrSyncFailed, l.cfg.Dir, err)
		l.cfg.Logger.Error("stream: fsync failed; partition stops taking writes", "dir", l.cfg.Dir, "err", err)
	}
	return l.failed
}
