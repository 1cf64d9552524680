package log

import "time"

// waitDurable blocks until offsets below end are on disk, fsyncing itself
// if no other goroutine is: concurrent publishers share each fsync.
func (l *Log) waitDurable(end int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for l.synced < end {
		if !l.syncing {
			if err := l.syncOnceLocked(); err != nil {
				return err
			}
			continue
		}
		l.syncCond.Wait()
	}
	return nil
}

// WaitDurable blocks until offsets below end are durable, fsyncing if
// needed (under SyncAlways, what AppendTxn left; under the other policies
// it syncs only if asked for data not yet synced).
func (l *Log) WaitDurable(end int64) error {
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed != nil {
		return failed
	}
	return l.waitDurable(end)
}

// Durable reports whether offsets below end are durable, or left to the
// OS by the policy (SyncNever), so that nothing would make them so.
func (l *Log) Durable(end int64) bool {
	if l.Policy() == SyncNever {
		return true
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.synced >= end
}

// Sync makes everything written so far durable (the SyncInterval tick and
// Close use it).
func (l *Log) Sync() error {
	l.mu.Lock()
	end, failed := l.written, l.failed
	l.mu.Unlock()
	if failed != nil {
		return failed
	}
	if !l.dirty.Load() && l.Policy() != SyncAlways {
		return nil
	}
	return l.waitDurable(end)
}

// syncOnceLocked runs one fsync of the active segment with syncMu released
// while it works, then publishes what it covered. Callers hold syncMu and
// have checked that no sync is running.
func (l *Log) syncOnceLocked() error {
	l.syncing = true
	l.syncMu.Unlock()

	l.mu.Lock()
	segs := l.segments()
	active, upto, failed := segs[len(segs)-1], l.written, l.failed
	l.dirty.Store(false)
	l.mu.Unlock()
	// Sealed segments were synced when they rolled, so the active one holds
	// all that may be unsynced.
	err := failed
	if err == nil {
		began := time.Now()
		err = active.Sync()
		l.cfg.Stats.Fsyncs.Add(1)
		l.cfg.Stats.FsyncLatency.Observe(time.Since(began))
	}
	if err != nil && failed == nil {
		l.mu.Lock()
		err = l.fail(err)
		l.mu.Unlock()
	}

	l.syncMu.Lock()
	l.syncing = false
	l.syncCond.Broadcast()
	if err != nil {
		return err
	}
	if upto > l.synced {
		l.synced = upto
		// Under SyncAlways the high watermark waits for this; under the
		// others appends moved it already. Raised whatever the policy now,
		// so records appended under SyncAlways are not left unseen when the
		// policy changed while they waited.
		if l.raiseHW(upto) {
			l.appended.Broadcast()
		}
	}
	return nil
}
