package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/segment"
)

// Transactions (Kafka's KIP-98), as one partition sees them. A
// transactional batch opens its producer's transaction in the log, if it
// has none open; a control batch (EndTxn) closes it, as a commit or an
// abort. The log tracks:
//
//   - the open transactions, producer ID → first offset, whose minimum
//     bounds the last stable offset (LSO): read_committed readers see
//     nothing at or past it, so an open transaction's records, and all
//     records after them, wait for its end;
//   - the aborted transactions (producer ID, first offset, marker offset),
//     which read_committed readers skip (AbortedTxns, batch.AbortFilter).
//
// Neither needs reading the whole log at Open. Two kinds of file keep them,
// beside the segments:
//
// <base>.txnindex is Kafka's aborted transaction index of the segment at
// base: the aborted transactions whose ABORT marker is in that segment,
// in marker order, 34 bytes each, big-endian:
//
//	int16  version           0
//	int64  producerId
//	int64  firstOffset       the transaction's first offset in the partition
//	int64  lastOffset        its ABORT marker's offset
//	int64  lastStableOffset  the LSO once the marker was written
//
// It is written whole (to a temporary file, then renamed) when its segment
// seals and, for the active segment, at a clean Close; a segment without
// aborted transactions has none. Kafka's broker writes and reads the same
// files.
//
// <offset>.txnstate is a snapshot of the open transactions as of offset
// (every batch below it counted): "EMBT", a version byte (1), a uint32
// count, then per transaction its producer ID (int64), epoch (int16) and
// first offset (int64), and a CRC-32C (Castagnoli) of all that before it.
// Only a log that has held a transactional batch has snapshots: the first
// such batch writes one at the active segment's base (nothing open), each
// roll one at the new segment's base, and a clean Close one at the log's
// end. Open takes the newest snapshot at or below the end and reads the
// batch headers after it, normally none (after a clean close) or the
// active segment's; the files are ours (Kafka's own producer snapshots are
// named .snapshot and ignored here).

// File suffixes of the transaction files. Part of the on-disk format.
const (
	TxnIndexSuffix = ".txnindex"
	TxnStateSuffix = ".txnstate"
)

const (
	txnIndexEntry = 34
	txnStateMagic = "EMBT"
	txnStateEntry = 8 + 2 + 8
)

// OpenTxn is a transaction open in a log.
type OpenTxn struct {
	ProducerID  int64
	Epoch       int16
	FirstOffset int64
}

// AbortedTxnEntry is an aborted transaction as the txnindex keeps it.
type AbortedTxnEntry struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64 // its ABORT marker's offset
	LastStable  int64 // the LSO after the marker
}

// txns is a log's transaction state. open and flagged are guarded by the
// log's mu; aborted by abortMu (readers consult it without mu).
type txns struct {
	loaded  bool
	flagged bool // the log holds (or held) transactional batches: it keeps snapshots
	open    map[int64]OpenTxn
	end     int64 // batches below it are counted (a follower catches up from here)
}

// abortedList is every aborted transaction of a log, by marker offset.
type abortedList struct {
	entries []AbortedTxnEntry
	// maxSpan bounds LastOffset - FirstOffset, so that a lookup by range
	// reads only the entries whose marker is near it.
	maxSpan int64
}

func (a *abortedList) add(e AbortedTxnEntry) {
	if n := len(a.entries); n > 0 && a.entries[n-1].LastOffset >= e.LastOffset {
		// Out of order only when files and a scan meet: keep one of each.
		i := sort.Search(n, func(i int) bool { return a.entries[i].LastOffset >= e.LastOffset })
		if i < n && a.entries[i].LastOffset == e.LastOffset {
			return
		}
		a.entries = slices.Insert(a.entries, i, e)
	} else {
		a.entries = append(a.entries, e)
	}
	a.maxSpan = max(a.maxSpan, e.LastOffset-e.FirstOffset)
}

// LastStable is the log's last stable offset: the high watermark, or the
// first offset of its oldest open transaction if that is lower. Records at
// or past it are not shown to read_committed readers.
// It is never below the log start, which DeleteRecords may move past an
// open transaction's first offset.
func (l *Log) LastStable() int64 {
	return max(l.start.Load(), min(l.hw.Load(), l.firstOpen.Load()))
}

// retainBound is where retention stops: it never deletes what readers
// cannot see yet, nor part of an open transaction, whose records would
// then become visible without their start.
func (l *Log) retainBound() int64 { return min(l.hw.Load(), l.firstOpen.Load()) }

// OpenTxns lists the transactions open in the log.
func (l *Log) OpenTxns() ([]OpenTxn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.loadTxnsLocked(); err != nil {
		return nil, err
	}
	out := make([]OpenTxn, 0, len(l.txn.open))
	for _, t := range l.txn.open {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b OpenTxn) int { return int(a.FirstOffset - b.FirstOffset) })
	return out, nil
}

// AbortedTxns returns the aborted transactions a read_committed reader of
// offsets [from, to) must know: those that end at or after from and begin
// before to.
func (l *Log) AbortedTxns(from, to int64) ([]batch.AbortedTxn, error) {
	if err := l.ensureTxns(); err != nil {
		return nil, err
	}
	l.abortMu.Lock()
	defer l.abortMu.Unlock()
	a := &l.aborted
	i := sort.Search(len(a.entries), func(i int) bool { return a.entries[i].LastOffset >= from })
	var out []batch.AbortedTxn
	for ; i < len(a.entries); i++ {
		e := a.entries[i]
		if e.LastOffset-a.maxSpan >= to {
			break // every later one began at or after to
		}
		if e.FirstOffset < to {
			out = append(out, batch.AbortedTxn{ProducerID: e.ProducerID, FirstOffset: e.FirstOffset})
		}
	}
	return out, nil
}

// ensureTxns loads the transaction state if it is not yet.
func (l *Log) ensureTxns() error {
	if l.txnLoaded.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loadTxnsLocked()
}

// followTxnsLocked brings a follower's transaction state up to its new
// end, before the end is published: it counts the batches the owner
// appended since, or, if the log was cut or begun again under it, reads
// the state anew. A failure is logged; the state then waits for the next
// refresh, and read_committed readers with it. Callers hold mu.
func (l *Log) followTxnsLocked() {
	if !l.txn.loaded {
		return // loaded by Open, after the first publish
	}
	var err error
	switch end := l.written; {
	case end < l.txn.end:
		l.txn.loaded = false
		err = l.loadTxnsLocked()
	case end > l.txn.end:
		if err = l.scanHeaders(l.txn.end, end, l.noteTxnBatchLocked); err == nil {
			l.txn.end = end
		}
	}
	if err != nil {
		l.cfg.Logger.Warn("stream: following transactions failed", "dir", l.cfg.Dir, "err", err)
		l.firstOpen.Store(min(l.firstOpen.Load(), l.txn.end)) // hold readers at what was counted
	}
}

// ReadCommitted is Read for a read_committed reader: it returns batches
// below the last stable offset only, and an empty view at it.
func (l *Log) ReadCommitted(offset int64, maxBytes int) (segment.View, error) {
	if err := l.ensureTxns(); err != nil {
		return segment.View{}, err
	}
	return l.read(offset, maxBytes, true)
}

// WaitForStable blocks until offset is below the last stable offset, ctx
// is done, stop is closed (errs.ErrClosed), or the partition closes.
func (l *Log) WaitForStable(ctx context.Context, offset int64, stop <-chan struct{}) error {
	if err := l.ensureTxns(); err != nil {
		return err
	}
	return l.waitUntil(ctx, stop, func() bool { return l.LastStable() > offset })
}

// EndTxn writes the marker that ends producer pid's open transaction in
// the log, a commit or an abort, and returns its offset; -1 if pid has no
// transaction open here (it was ended already: EndTxn may be repeated).
// The marker carries epoch, which fences the producer's older epochs from
// the partition. It is visible once EndTxn returns. Under SyncAlways it is
// also durable then if durable is set, fsynced with the transaction's
// records if they are not yet; without durable, when everything before it
// is durable it is made visible without an fsync of its own: for a caller
// whose decision, stored durably elsewhere, writes it again should a
// machine crash lose it (and for aborts, which Open redoes anyway).
func (l *Log) EndTxn(pid int64, epoch int16, commit bool, coordinatorEpoch int32, durable bool) (int64, error) {
	l.mu.Lock()
	if err := l.loadTxnsLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	open, ok := l.txn.open[pid]
	if !ok {
		l.mu.Unlock()
		return -1, nil
	}
	marker := batch.EndTxnMarker(pid, max(epoch, open.Epoch), commit, coordinatorEpoch, l.cfg.Now().UnixMilli())
	base, err := l.appendLocked(marker)
	if err != nil {
		l.mu.Unlock()
		return 0, err
	}
	l.noteTxnBatchLocked(marker)
	if l.prod.loaded {
		l.prod.fence(pid, marker.ProducerEpoch(), marker.MaxTimestamp())
	}
	end := l.written
	set := l.settings()
	visible := set.Sync != SyncAlways
	if !visible && !durable {
		l.syncMu.Lock()
		visible = l.synced >= base
		l.syncMu.Unlock()
	}
	if visible {
		l.raiseHW(end)
	}
	if set.Sync != SyncAlways {
		first := !l.dirty.Swap(true)
		l.mu.Unlock()
		if first && set.Sync == SyncInterval && l.cfg.OnUnsynced != nil {
			l.cfg.OnUnsynced()
		}
	} else {
		l.dirty.Store(true)
		l.mu.Unlock()
	}
	l.appended.Broadcast()
	if !visible {
		// Another producer's records before the marker wait for an fsync
		// nobody else may run soon: run it.
		if err := l.waitDurable(end); err != nil {
			return base, err
		}
	}
	return base, nil
}

// noteTxnBatchLocked updates the transaction state with b, a batch just
// appended (or, for a follower, just seen). Callers hold mu and have
// loaded the state.
func (l *Log) noteTxnBatchLocked(b batch.Batch) {
	l.abortMu.Lock()
	changed := applyTxnBatch(l.txn.open, &l.aborted, b)
	l.abortMu.Unlock()
	if changed {
		l.setFirstOpenLocked()
	}
	l.txn.end = max(l.txn.end, b.LastOffset()+1)
}

// applyTxnBatch folds b into open and aborted, reporting whether open
// changed.
func applyTxnBatch(open map[int64]OpenTxn, aborted *abortedList, b batch.Batch) bool {
	if !b.IsTransactional() {
		return false
	}
	pid := b.ProducerID()
	t, ok := open[pid]
	if !b.IsControl() {
		if !ok {
			open[pid] = OpenTxn{ProducerID: pid, Epoch: b.ProducerEpoch(), FirstOffset: b.BaseOffset()}
		}
		return !ok
	}
	if !ok {
		return false
	}
	delete(open, pid)
	if typ, err := b.ControlType(); err == nil && typ == batch.ControlAbort {
		first := b.BaseOffset() + 1
		for _, o := range open {
			first = min(first, o.FirstOffset)
		}
		aborted.add(AbortedTxnEntry{ProducerID: pid, FirstOffset: t.FirstOffset, LastOffset: b.BaseOffset(), LastStable: first})
	}
	return true
}

func (l *Log) setFirstOpenLocked() {
	first := int64(math.MaxInt64)
	for _, t := range l.txn.open {
		first = min(first, t.FirstOffset)
	}
	l.firstOpen.Store(first)
}

// beginTxnAppendLocked readies the log for a transactional batch: the
// state loaded and, the first time, the log marked as transactional by a
// snapshot at its active segment's base. Callers hold mu.
func (l *Log) beginTxnAppendLocked() error {
	if err := l.loadTxnsLocked(); err != nil {
		return err
	}
	if l.txn.flagged {
		return nil
	}
	segs := l.segments()
	active := segs[len(segs)-1]
	// Nothing before a first transactional batch was transactional: the
	// open set at the active segment's base is empty.
	if err := l.writeTxnState(active.Base(), nil); err != nil {
		return err
	}
	l.txn.flagged = true
	return nil
}

// loadTxnsLocked reads the transaction state once: every segment's
// aborted transaction index, and the open transactions from the newest
// snapshot and the batch headers after it. Callers hold mu.
func (l *Log) loadTxnsLocked() error {
	if l.txn.loaded {
		return nil
	}
	entries, err := l.cfg.FS.ReadDir(l.cfg.Dir)
	if err != nil && !l.cfg.ReadOnly {
		return err
	}
	end := l.written
	var snaps []int64
	var stale []string // snapshots past the end: a cut tail's
	var aborted abortedList
	for _, e := range entries {
		name := e.Name()
		if off, ok := segment.ParseFileName(name, TxnStateSuffix); ok {
			if off <= end {
				snaps = append(snaps, off)
			} else {
				stale = append(stale, name)
			}
		}
		if base, ok := segment.ParseFileName(name, TxnIndexSuffix); ok {
			list, err := l.readTxnIndex(base)
			if err != nil {
				return err
			}
			for _, e := range list {
				if e.LastOffset < end {
					aborted.add(e)
				}
			}
		}
	}
	if !l.cfg.ReadOnly {
		// Recovery cut the log below them: they describe offsets that will
		// be written again, by other batches.
		for _, name := range stale {
			if err := l.cfg.FS.Remove(filepath.Join(l.cfg.Dir, name)); err != nil {
				return err
			}
		}
	}
	open := map[int64]OpenTxn{}
	flagged := len(snaps) > 0 || len(stale) > 0
	if flagged {
		from := l.start.Load()
		for i := len(snaps) - 1; i >= 0; i-- {
			set, err := l.readTxnState(snaps[i])
			if err == nil {
				from = snaps[i]
				for _, t := range set {
					open[t.ProducerID] = t
				}
				break
			}
			l.cfg.Logger.Warn("stream: damaged transaction snapshot ignored", "dir", l.cfg.Dir, "offset", snaps[i], "err", err)
		}
		err := l.scanHeaders(max(from, l.start.Load()), end, func(b batch.Batch) { applyTxnBatch(open, &aborted, b) })
		if err != nil {
			return fmt.Errorf("load transactions of %s: %w", l.cfg.Dir, err)
		}
		if len(snaps) == 0 && !l.cfg.ReadOnly {
			// Only cut ones were left: keep the log marked as
			// transactional, with what the scan found.
			if err := l.writeTxnState(end, open); err != nil {
				return err
			}
		}
	}
	l.txn = txns{loaded: true, flagged: flagged, open: open, end: end}
	l.setFirstOpenLocked()
	l.abortMu.Lock()
	l.aborted = aborted
	l.abortMu.Unlock()
	l.txnLoaded.Store(true)
	return nil
}

// scanHeaders calls fn with each whole batch from offset from up to end,
// in order, passing over damaged ranges.
func (l *Log) scanHeaders(from, end int64, fn func(batch.Batch)) error {
	for _, s := range l.segments() {
		for offset := max(s.Base(), from); offset < min(s.Next(), end); {
			v, err := s.Read(offset, end, 1<<20)
			var de *segment.DamageError
			if errors.As(err, &de) {
				offset = de.Next
				continue
			}
			if err != nil {
				return err
			}
			if len(v.Data) == 0 {
				v.Release()
				break
			}
			for data := v.Data; len(data) >= batch.HeaderSize; {
				b := batch.Batch(data[:batch.Batch(data).Size()])
				data = data[len(b):]
				offset = b.LastOffset() + 1
				if b.LastOffset() >= from {
					fn(b)
				}
			}
			v.Release()
		}
	}
	return nil
}

// sealTxnLocked runs as segment old seals and next begins at base: it
// writes old's aborted transaction index and a snapshot at base. Callers
// hold mu.
func (l *Log) sealTxnLocked(old, base int64) error {
	if !l.txn.loaded || !l.txn.flagged {
		return nil
	}
	if err := l.writeTxnIndex(old, base); err != nil {
		return err
	}
	if err := l.writeTxnState(base, l.txn.open); err != nil {
		return err
	}
	return l.dropTxnStatesLocked(base)
}

// closeTxnLocked runs at a clean Close: the active segment's aborted
// transaction index and a snapshot at the end, so that the next Open
// reads no batch. Callers hold mu.
func (l *Log) closeTxnLocked() error {
	if !l.txn.loaded || !l.txn.flagged || l.cfg.ReadOnly {
		return nil
	}
	segs := l.segments()
	if err := l.writeTxnIndex(segs[len(segs)-1].Base(), l.written); err != nil {
		return err
	}
	if err := l.writeTxnState(l.written, l.txn.open); err != nil {
		return err
	}
	return l.dropTxnStatesLocked(l.written)
}

// dropTxnStatesLocked deletes the snapshots older than the one at keep,
// which supersedes them.
func (l *Log) dropTxnStatesLocked(keep int64) error {
	entries, err := l.cfg.FS.ReadDir(l.cfg.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if off, ok := segment.ParseFileName(e.Name(), TxnStateSuffix); ok && off < keep {
			if err := l.cfg.FS.Remove(filepath.Join(l.cfg.Dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropTxnIndexes deletes the aborted transaction indexes of deleted
// segments and forgets their entries. Callers hold mu.
func (l *Log) dropTxnIndexesLocked(bases []int64, start int64) error {
	var err error
	for _, base := range bases {
		if rerr := l.cfg.FS.Remove(filepath.Join(l.cfg.Dir, segment.FileName(base, TxnIndexSuffix))); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	l.abortMu.Lock()
	i := sort.Search(len(l.aborted.entries), func(i int) bool { return l.aborted.entries[i].LastOffset >= start })
	l.aborted.entries = slices.Delete(l.aborted.entries, 0, i)
	l.abortMu.Unlock()
	return err
}

// writeTxnIndex writes the aborted transaction index of the segment at
// base, which holds offsets below next: its entries, or no file if none.
func (l *Log) writeTxnIndex(base, next int64) error {
	buf := l.txnIndexBytes(base, next, nil)
	if len(buf) == 0 {
		return nil
	}
	return l.writeWhole(segment.FileName(base, TxnIndexSuffix), buf)
}

// readTxnIndex reads the aborted transaction index of the segment at
// base. Entries past damage (a cut file, an entry that cannot be) are
// dropped with a warning: their transactions' records then read as
// committed, the damage's cost.
func (l *Log) readTxnIndex(base int64) ([]AbortedTxnEntry, error) {
	data, err := l.readFile(segment.FileName(base, TxnIndexSuffix))
	if err != nil {
		return nil, err
	}
	var out []AbortedTxnEntry
	for len(data) >= txnIndexEntry {
		e := AbortedTxnEntry{
			ProducerID:  int64(binary.BigEndian.Uint64(data[2:])),
			FirstOffset: int64(binary.BigEndian.Uint64(data[10:])),
			LastOffset:  int64(binary.BigEndian.Uint64(data[18:])),
			LastStable:  int64(binary.BigEndian.Uint64(data[26:])),
		}
		if binary.BigEndian.Uint16(data) != 0 || e.FirstOffset < 0 || e.FirstOffset > e.LastOffset || e.LastOffset < base {
			break
		}
		out = append(out, e)
		data = data[txnIndexEntry:]
	}
	if len(data) > 0 {
		l.cfg.Logger.Warn("stream: damaged aborted transaction index; its later entries are lost", "dir", l.cfg.Dir, "segment", base)
		l.cfg.Stats.CorruptBatches.Add(1)
	}
	return out, nil
}

// writeTxnState writes the snapshot of open at offset.
func (l *Log) writeTxnState(offset int64, open map[int64]OpenTxn) error {
	buf := append([]byte(txnStateMagic), 1)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(open)))
	for _, t := range open {
		buf = binary.BigEndian.AppendUint64(buf, uint64(t.ProducerID))
		buf = binary.BigEndian.AppendUint16(buf, uint16(t.Epoch))
		buf = binary.BigEndian.AppendUint64(buf, uint64(t.FirstOffset))
	}
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	return l.writeWhole(segment.FileName(offset, TxnStateSuffix), buf)
}

var errBadTxnState = errors.New("bad transaction snapshot")

func (l *Log) readTxnState(offset int64) ([]OpenTxn, error) {
	data, err := l.readFile(segment.FileName(offset, TxnStateSuffix))
	if err != nil {
		return nil, err
	}
	if len(data) < 4+1+4+4 || string(data[:4]) != txnStateMagic || data[4] != 1 {
		return nil, errBadTxnState
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errBadTxnState
	}
	n := int(binary.BigEndian.Uint32(body[5:]))
	rest := body[9:]
	if len(rest) != n*txnStateEntry {
		return nil, errBadTxnState
	}
	out := make([]OpenTxn, n)
	for i := range out {
		e := rest[i*txnStateEntry:]
		out[i] = OpenTxn{
			ProducerID:  int64(binary.BigEndian.Uint64(e)),
			Epoch:       int16(binary.BigEndian.Uint16(e[8:])),
			FirstOffset: int64(binary.BigEndian.Uint64(e[10:])),
		}
		if out[i].FirstOffset < 0 || out[i].FirstOffset >= offset {
			return nil, errBadTxnState
		}
	}
	return out, nil
}

// readFile reads a small file of the log's directory whole.
func (l *Log) readFile(name string) ([]byte, error) {
	f, err := l.cfg.FS.OpenFile(filepath.Join(l.cfg.Dir, name), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

// writeWhole replaces a small file of the log's directory by a rename, so
// that a crash leaves the old content or the new, synced unless the
// policy is SyncNever.
func (l *Log) writeWhole(name string, data []byte) error {
	if l.cfg.ReadOnly {
		return nil
	}
	path := filepath.Join(l.cfg.Dir, name)
	tmp := path + ".tmp"
	f, err := l.cfg.FS.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, l.cfg.FilePerm)
	if err != nil {
		return err
	}
	sync := l.settings().Sync != SyncNever
	_, err = f.WriteAt(data, 0)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.cfg.FS.Rename(tmp, path)
	}
	if err == nil && sync {
		err = l.cfg.FS.SyncDir(l.cfg.Dir)
	}
	if err != nil {
		_ = l.cfg.FS.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
