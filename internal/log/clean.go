package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/mmap"
	"github.com/embedstream/stream/segment"
)

// Log compaction (Kafka's log cleaner, cleanup.policy=compact).
//
// A round (Clean) keeps the latest record of each key in the sealed
// segments below the round's bound, and removes the rest:
//
//  1. The bound is the first offset the round may not touch: the active
//     segment's base, the last stable offset (an open transaction's records
//     are not decided yet), and, with MinCompactionLag, the first sealed
//     segment holding a record younger than that; rounded down to a
//     segment's base. Segments wholly below it are cleanable.
//  2. The dirty part, from the first dirty offset (where the last round
//     ended) to the bound, is read into a KeyMap: key → offset of its
//     latest record. Aborted transactions' records and control batches put
//     nothing. A full map ends the round's reach early, at the record that
//     did not fit; what follows is left as it is.
//  3. Every cleanable segment from the log start is rewritten, in groups of
//     consecutive segments of at most SegmentBytes each becoming one new
//     segment named by the group's first base offset. A record stays if
//     the map has no later offset for its key; a record without a key
//     goes; a tombstone (null value) stays until its batch's delete horizon
//     (set to the round's time + DeleteRetention by the first round that
//     keeps it) has passed. Records of aborted transactions go. A
//     transaction marker stays while its transaction has records in the
//     round's input; once none is left it is spent, gets a delete horizon
//     as a tombstone does, and goes after it (an ABORT marker with its
//     aborted transaction's index entry), unless it follows the last data
//     batch of a producer the log still remembers. A batch keeps its base offset and
//     offset span (batch.Filter); one emptied goes, unless it is the last
//     batch of an idempotent producer the log still remembers, whose
//     sequence it carries: that one stays as an empty header.
//
// Offsets never change, so a cleaned log has gaps: its cleaned segments are
// sparse (segment.Config.Sparse) below the sparse bound, and reads pass
// over the gaps.
//
// # Files, and a crash at any point
//
// The new segments are written whole, with their indexes and aborted
// transaction index, in the cleaning directory (cleanDir) and fsynced. The
// checkpoint (checkpointFile) is then raised to cover them as sparse, and
// the swap file (swapFile) is written by a rename: that rename is the
// round's commit. The swap moves each new segment's files over the log's
// (indexes first, the log file last) and deletes the other segments of its
// group; then the swap file and the cleaning directory go. Open finishes a
// swap whose file it finds, and otherwise deletes the cleaning directory:
// after a crash the log holds either every old segment or every new one of
// each group, never both and never neither. Readers holding views of old
// segments keep reading them (their mappings outlive the files).
//
// checkpointFile, in the log's directory, is text: the sparse bound, the
// first dirty offset, the last round's time (ms since the epoch), each
// followed by a space, and the CRC-32C (Castagnoli) of what precedes it in
// 8 lowercase hex digits. swapFile is text too: one line per group, "base
// end txnindex" (txnindex 1 if the group's new segment has an aborted
// transaction index, else 0), and a last line holding the CRC-32C of the
// lines before it. A damaged checkpoint is ignored (the log is taken as
// never cleaned, which costs only a full round); a damaged swap file was
// never renamed into place, so it cannot exist.
const (
	checkpointFile = "cleaner-checkpoint"
	swapFile       = "cleaner-swap"
	cleanDir       = "cleaning"
)

// CheckpointFile, SwapFile and CleanDir are the names of the cleaner's
// files in a log's directory, for tools that read it.
const (
	CheckpointFile = checkpointFile
	SwapFile       = swapFile
	CleanDir       = cleanDir
)

// ParseCheckpoint reads a checkpoint's content, for tools: segments below
// sparse may have offset gaps; ok is false for a damaged checkpoint (Open
// then takes every segment as possibly sparse).
func ParseCheckpoint(content []byte) (sparse, firstDirty, lastRun int64, ok bool) {
	return parseCheckpoint(content)
}

// ParseSwap reads a swap file's content, for tools: the offset range
// [base, end) of each new segment of a committed round whose swap may be
// unfinished. A new segment whose log file has left CleanDir replaces
// every segment of the log with a base inside its range (Open deletes
// them). ok is false for a damaged swap file.
func ParseSwap(content []byte) (ranges [][2]int64, ok bool) {
	groups, err := parseSwap(content)
	if err != nil {
		return nil, false
	}
	for _, g := range groups {
		ranges = append(ranges, [2]int64{g.base, g.end})
	}
	return ranges, true
}

// DefaultMinCleanableRatio is Kafka's min.cleanable.dirty.ratio default.
const DefaultMinCleanableRatio = 0.5

// CleanState is what a log's cleaning stands at (see Log.CleanState).
type CleanState struct {
	FirstDirty int64     // records below it were cleaned by the last round
	CleanBytes int64     // bytes of segments below FirstDirty
	DirtyBytes int64     // bytes of cleanable segments from FirstDirty on
	Ratio      float64   // DirtyBytes / (CleanBytes + DirtyBytes); 0 if both are 0
	Bound      int64     // the first offset a round may not touch now
	Overdue    bool      // a dirty record is older than MaxCompactionLag: due whatever the ratio
	LastRun    time.Time // the last round's time; zero if none ran
	// Uncleanable says a round met damaged batches: the log is not cleaned
	// again until reopened (Kafka's uncleanable partition), so damage is
	// never rewritten into a clean-looking gap.
	Uncleanable bool
}

// Due reports whether a round should run now (Kafka's rule: some dirty
// bytes past MaxCompactionLag, or a ratio above MinCleanableRatio).
func (s CleanState) Due(minRatio float64) bool {
	return !s.Uncleanable && s.DirtyBytes > 0 && (s.Overdue || s.Ratio > minRatio)
}

// CleanResult is what a round did.
type CleanResult struct {
	Cleaned      bool  // a round ran and swapped segments in
	BytesRead    int64 // bytes of the segments rewritten
	BytesWritten int64
	Records      int64 // records read into the map
	Removed      int64 // records removed
	End          int64 // the new first dirty offset
}

// cleanState is a log's cleaning state: the checkpoint's values. Under
// cleanMu, but sparse is also read by segments (Config.Sparse).
type cleanState struct {
	firstDirty int64
	lastRun    int64 // ms; 0: never
}

// CleanState reports the log's cleaning state at now.
func (l *Log) CleanState(now time.Time) (CleanState, error) {
	l.mu.Lock()
	segs, start := l.segments(), l.start.Load()
	l.mu.Unlock()
	return l.cleanStateOf(segs, start, now)
}

func (l *Log) cleanStateOf(segs []*segment.Segment, start int64, now time.Time) (CleanState, error) {
	l.cleanMu.Lock()
	st := l.clean
	l.cleanMu.Unlock()
	if len(segs) == 0 {
		return CleanState{}, nil // a read-only log without data
	}
	set := l.settings()
	firstDirty := st.firstDirty
	if end := segs[len(segs)-1].Next(); firstDirty < start || firstDirty > end {
		firstDirty = start
	}
	out := CleanState{FirstDirty: firstDirty, Uncleanable: l.uncleanable.Load()}
	if st.lastRun > 0 {
		out.LastRun = time.UnixMilli(st.lastRun)
	}
	bound := min(segs[len(segs)-1].Base(), max(start, l.retainBound()))
	for _, s := range segs[:len(segs)-1] {
		if s.Next() > bound {
			bound = min(bound, s.Base())
			break
		}
		if s.Next() <= firstDirty {
			continue
		}
		if set.MinCompactionLag > 0 || set.MaxCompactionLag > 0 {
			ts, err := s.MaxTimestamp()
			if err != nil {
				return out, err
			}
			if set.MinCompactionLag > 0 && ts > now.Add(-set.MinCompactionLag).UnixMilli() {
				bound = s.Base()
				break
			}
			if set.MaxCompactionLag > 0 {
				first, err := firstTimestamp(s)
				if err != nil {
					return out, err
				}
				if first >= 0 && first < now.Add(-set.MaxCompactionLag).UnixMilli() {
					out.Overdue = true
				}
			}
		}
	}
	out.Bound = bound
	for _, s := range segs {
		switch {
		case s.Base() >= bound:
		case s.Next() <= firstDirty:
			out.CleanBytes += s.Size()
		default:
			out.DirtyBytes += s.Size()
		}
	}
	if total := out.CleanBytes + out.DirtyBytes; total > 0 {
		out.Ratio = float64(out.DirtyBytes) / float64(total)
	}
	return out, nil
}

// firstTimestamp returns the max timestamp of a segment's first batch (the
// age of its oldest records, as Kafka's max.compaction.lag.ms reads it), or
// -1 if it has none.
func firstTimestamp(s *segment.Segment) (int64, error) {
	v, err := s.Read(s.Base(), math.MaxInt64, 1)
	if err != nil || len(v.Data) == 0 {
		return -1, ignoreDamage(err)
	}
	defer v.Release()
	ts := int64(-1)
	err = mmap.Guard(func() error {
		ts = batch.Batch(v.Data).MaxTimestamp()
		return nil
	})
	return ts, err
}

// ignoreDamage drops damage errors: damaged batches are not cleaned (they
// are copied as reads see them: not at all), and the round goes on.
func ignoreDamage(err error) error {
	if de := (*segment.DamageError)(nil); errors.As(err, &de) {
		return nil
	}
	return err
}

// cleanGroup is one new segment of a round: the old segments [first,
// last] of the round's list become one, covering [base, end).
type cleanGroup struct {
	first, last int
	base, end   int64
	size        int64
	txnIndex    bool
}

// Clean runs one cleaning round (see above) at now with m as its key map
// (reset first), and reports what it did. Without force it runs only if
// the log is due (CleanState.Due). A round that finds nothing to clean, a
// log that is not compacted, or a read-only one does nothing. Rounds of a
// log run one at a time; appends, reads and retention go on beside them.
// A round stops, changing nothing, once ctx is done.
func (l *Log) Clean(ctx context.Context, now time.Time, m *KeyMap, force bool) (CleanResult, error) {
	var res CleanResult
	set := l.settings()
	if !set.Compact || l.cfg.ReadOnly {
		return res, nil
	}
	if l.uncleanable.Load() {
		return res, fmt.Errorf("clean %s: %w: a round met damaged batches; not cleaned until reopened", l.cfg.Dir, batch.ErrCorrupt)
	}
	l.roundMu.Lock()
	defer l.roundMu.Unlock()
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return res, err
	}
	if err := l.loadTxnsLocked(); err != nil {
		l.mu.Unlock()
		return res, err
	}
	if !l.prod.loaded {
		if err := l.loadProducersLocked(l.cfg.Now().UnixMilli()); err != nil {
			l.mu.Unlock()
			return res, err
		}
	}
	lastBatch := make(map[int64]int64, len(l.prod.m)) // producer → base of its last batch
	for id, e := range l.prod.m {
		if e.n > 0 {
			lastBatch[id] = e.last().base
		}
	}
	segs, start := l.segments(), l.start.Load()
	segcfg := l.segcfg // Reconfigure replaces it under mu
	l.mu.Unlock()

	st, err := l.cleanStateOf(segs, start, now)
	if err != nil && l.cleanRaced(err) {
		return res, nil
	}
	if err != nil || (!force && !st.Due(set.MinCleanableRatio)) || st.DirtyBytes == 0 {
		return res, err
	}
	n := 0 // cleanable segments: segs[:n]
	for n < len(segs)-1 && segs[n].Next() <= st.Bound {
		n++
	}
	// The map, over the dirty part: its filter knows the transactions
	// aborted from there on (one aborted before would stay switched on,
	// its marker never met, and hide the producer's later records).
	dirtyAborted, err := l.AbortedTxns(st.FirstDirty, st.Bound)
	if err != nil {
		return res, err
	}
	m.Reset()
	mapEnd := st.Bound
	var filter batch.AbortFilter
	filter.Reset(dirtyAborted)
	err = walkBatches(ctx, segs[:n], st.FirstDirty, func(b batch.Batch) (bool, error) {
		if filter.Skip(b) {
			return true, nil // a marker, or an aborted transaction's records
		}
		it := b.Records()
		var r batch.Record
		for it.Next(&r) {
			if r.Offset < st.FirstDirty || r.Key == nil {
				continue
			}
			res.Records++
			if !m.Put(r.Key, r.Offset) {
				mapEnd = r.Offset
				return false, nil
			}
		}
		return true, ignoreCorrupt(it.Err())
	})
	if err != nil {
		if l.cleanRaced(err) {
			return CleanResult{}, nil
		}
		return res, l.noteDamage(err)
	}
	// Segments past the map's reach are left alone.
	for n > 0 && segs[n-1].Base() >= mapEnd {
		n--
	}
	if n == 0 {
		return res, nil
	}

	// Groups of consecutive segments, each at most SegmentBytes.
	var groups []cleanGroup
	for i := 0; i < n; i++ {
		s := segs[i]
		if k := len(groups) - 1; k >= 0 && groups[k].size+s.Size() <= set.SegmentBytes && s.Next()-groups[k].base <= math.MaxInt32 {
			groups[k].last, groups[k].end = i, s.Next()
			groups[k].size += s.Size()
			continue
		}
		groups = append(groups, cleanGroup{first: i, last: i, base: s.Base(), end: s.Next(), size: s.Size()})
	}

	// A swap file an earlier round could not remove (its swap is done)
	// goes first: left beside this round's files, the next Open would
	// take them for that round's and finish its swap with them.
	if _, err := l.cfg.FS.Lstat(filepath.Join(l.cfg.Dir, swapFile)); err == nil {
		if err := l.endSwap(); err != nil {
			return res, fmt.Errorf("clean %s: %w", l.cfg.Dir, err)
		}
	}
	dir := filepath.Join(l.cfg.Dir, cleanDir)
	if err := l.cfg.FS.RemoveAll(dir); err != nil {
		return res, err
	}
	if err := l.cfg.FS.MkdirAll(dir, l.cfg.DirPerm|0o700); err != nil {
		return res, err
	}
	fail := func(err error) (CleanResult, error) {
		_ = l.cfg.FS.RemoveAll(dir)
		if l.cleanRaced(err) {
			return CleanResult{}, nil
		}
		return CleanResult{}, fmt.Errorf("clean %s: %w", l.cfg.Dir, l.noteDamage(err))
	}
	nowMS := now.UnixMilli()
	aborted, err := l.AbortedTxns(start, st.Bound)
	if err != nil {
		return fail(err)
	}
	filter.Reset(aborted)
	rd := &cleanRound{filter: &filter, keys: m, mapEnd: mapEnd, horizon: now.Add(set.DeleteRetention).UnixMilli(),
		now: nowMS, lastBatch: lastBatch, res: &res, txnSeen: map[int64]bool{}, droppedAborts: map[int64]bool{}}
	for gi := range groups {
		g := &groups[gi]
		out, err := newCleanSegment(segcfg, dir, g.base)
		if err != nil {
			return fail(err)
		}
		err = walkBatches(ctx, segs[g.first:g.last+1], start, func(b batch.Batch) (bool, error) {
			res.BytesRead += int64(len(b))
			keep, err := rd.batch(b)
			if err != nil || keep == nil {
				return err == nil, err
			}
			res.BytesWritten += int64(len(keep))
			_, err = out.Append(keep)
			return err == nil, err
		})
		if err == nil {
			err = out.Seal()
		}
		if err == nil {
			g.txnIndex, err = l.writeCleanTxnIndex(g.base, g.end, rd.droppedAborts)
		}
		if cerr := out.Close(false); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
		g.size = out.Size()
	}
	if set.Sync != SyncNever {
		if err := l.cfg.FS.SyncDir(dir); err != nil {
			return fail(err)
		}
	}
	res.End = mapEnd
	if err := l.swap(segs, groups, mapEnd, nowMS, rd.droppedAborts); err != nil {
		if errors.Is(err, errCleanRaced) {
			_ = l.cfg.FS.RemoveAll(dir)
			return CleanResult{}, nil
		}
		return CleanResult{}, fmt.Errorf("clean %s: %w", l.cfg.Dir, err)
	}
	res.Cleaned = true
	l.cfg.Stats.CleanerRuns.Add(1)
	l.cfg.Stats.CleanerBytesRead.Add(res.BytesRead)
	l.cfg.Stats.CleanerBytesReclaimed.Add(res.BytesRead - res.BytesWritten)
	return res, nil
}

// noteDamage marks the log uncleanable if err is damage a round met (see
// CleanState.Uncleanable), and returns err.
func (l *Log) noteDamage(err error) error {
	if errors.Is(err, batch.ErrCorrupt) && !l.uncleanable.Swap(true) {
		l.cfg.Logger.Error("stream: the cleaner met damaged batches; the partition is not cleaned until reopened", "dir", l.cfg.Dir, "err", err)
	}
	return err
}

// errCleanRaced says the segments a round rewrote changed meanwhile
// (retention or DeleteRecords deleted some): the round is dropped.
var errCleanRaced = errors.New("segments changed during the round")

// cleanRaced reports whether err says that retention or DeleteRecords
// deleted segments of the round while it ran: then the round is dropped,
// not failed (the next one starts from the new log start). A segment read
// while the log closes is an error.
func (l *Log) cleanRaced(err error) bool {
	return errors.Is(err, errCleanRaced) || errors.Is(err, segment.ErrClosed) && !l.isClosed()
}

// cleanRound is a round's rewrite state, batch by batch in offset order.
type cleanRound struct {
	filter    *batch.AbortFilter
	keys      *KeyMap
	mapEnd    int64           // records at or past it are beyond the map: kept as they are
	horizon   int64           // the delete horizon a batch gets when first kept with a tombstone (ms)
	now       int64           // the round's time (ms)
	lastBatch map[int64]int64 // active producer → base of its last data batch
	res       *CleanResult
	buf       []byte

	// Transaction markers (Kafka's rule): txnSeen says a data batch of
	// the producer's transaction was met in this round's input since its
	// last marker; droppedAborts are the offsets of the ABORT markers the
	// round removes, whose aborted transactions go from the indexes.
	txnSeen       map[int64]bool
	droppedAborts map[int64]bool
}

// batch decides what of b the round keeps, and returns it (aliasing b or
// the round's buffer), or nil if nothing of it stays.
func (rd *cleanRound) batch(b batch.Batch) (batch.Batch, error) {
	pid := b.ProducerID()
	carrier := false
	if pid >= 0 {
		base, ok := rd.lastBatch[pid]
		carrier = ok && base == b.BaseOffset()
	}
	abortedData := rd.filter.Skip(b) && !b.IsControl()
	if b.IsControl() {
		return rd.marker(b)
	}
	if b.IsTransactional() {
		rd.txnSeen[pid] = true
	}
	if abortedData || b.NumRecords() == 0 {
		rd.res.Removed += int64(b.NumRecords())
		if carrier {
			rd.buf = batch.EmptyBatch(rd.buf[:0], b)
			return rd.buf, nil
		}
		return nil, nil
	}
	expired := false
	if h, ok := b.DeleteHorizon(); ok && h <= rd.now {
		expired = true
	}
	tombstones := false
	keep := func(r *batch.FilterRecord) bool {
		if r.Offset >= rd.mapEnd {
			return true
		}
		if r.Key == nil {
			return false
		}
		if latest := rd.keys.Get(r.Key); latest > r.Offset {
			return false
		}
		if r.Tombstone {
			if expired {
				return false
			}
			tombstones = true
		}
		return true
	}
	// A horizon only for a batch that keeps a tombstone: decide first.
	out, kept, changed, err := batch.Filter(rd.buf[:0], b, -1, keep)
	if err != nil {
		if errors.Is(err, batch.ErrCorrupt) || errors.Is(err, batch.ErrUnsupported) {
			return b, nil // not ours to judge: copied as it is
		}
		return nil, err
	}
	rd.res.Removed += int64(int(b.NumRecords()) - kept)
	if _, has := b.DeleteHorizon(); kept > 0 && tombstones && !has && b.LastOffset() < rd.mapEnd {
		if out, _, _, err = batch.Filter(rd.buf[:0], b, rd.horizon, keep); err != nil {
			return nil, err
		}
		changed = true
	}
	switch {
	case kept == 0 && carrier:
		rd.buf = batch.EmptyBatch(rd.buf[:0], b)
		return rd.buf, nil
	case kept == 0:
		return nil, nil
	case !changed:
		return b, nil
	}
	rd.buf = out
	return out, nil
}

// marker decides the fate of a transaction marker, as Kafka's cleaner
// does: a marker whose transaction still has data in the round's input is
// kept; one whose data is all gone is spent: it gets a delete horizon, and
// a round past the horizon removes it (and, for an ABORT marker, its
// aborted transaction's index entry). A marker after an active producer's
// last data batch stays, as does one beyond the round's map.
func (rd *cleanRound) marker(b batch.Batch) (batch.Batch, error) {
	pid := b.ProducerID()
	seen := rd.txnSeen[pid]
	delete(rd.txnSeen, pid)
	last, active := rd.lastBatch[pid]
	if seen || b.LastOffset() >= rd.mapEnd || active && b.BaseOffset() > last {
		return b, nil
	}
	h, has := b.DeleteHorizon()
	switch {
	case !has:
		out, _, _, err := batch.Filter(rd.buf[:0], b, rd.horizon, nil)
		if err != nil {
			return b, nil // a marker that does not decode is copied as it is
		}
		rd.buf = out
		return out, nil
	case h > rd.now:
		return b, nil
	}
	if typ, err := b.ControlType(); err == nil && typ == batch.ControlAbort {
		rd.droppedAborts[b.BaseOffset()] = true
	}
	return nil, nil
}

// ignoreCorrupt drops a decoding error: a batch whose records do not
// decode puts nothing in the map, and is copied as it is.
func ignoreCorrupt(err error) error {
	if errors.Is(err, batch.ErrCorrupt) || errors.Is(err, batch.ErrUnsupported) {
		return nil
	}
	return err
}

// walkBatches calls fn with each batch of segs that ends at or after from,
// in order, until fn returns false or an error, or ctx is done. Damage
// stops it with an error wrapping batch.ErrCorrupt: a round must not
// rewrite damaged bytes into a clean-looking gap.
func walkBatches(ctx context.Context, segs []*segment.Segment, from int64, fn func(batch.Batch) (bool, error)) error {
	for _, s := range segs {
		for offset := max(from, s.Base()); offset < s.Next(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := s.Read(offset, s.Next(), 1<<20)
			if err != nil {
				return err
			}
			if len(v.Data) == 0 {
				break
			}
			more := true
			err = mmap.Guard(func() error {
				for data := v.Data; len(data) > 0; {
					b := batch.Batch(data[:batch.Batch(data).Size()])
					data = data[len(b):]
					offset = b.LastOffset() + 1
					var ferr error
					if more, ferr = fn(b); ferr != nil || !more {
						return ferr
					}
				}
				return nil
			})
			v.Release()
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// newCleanSegment creates the segment a group is rewritten into, in the
// cleaning directory: sparse, sized as the log's (segcfg, the log's
// config of new segments when the round began).
func newCleanSegment(segcfg *segment.Config, dir string, base int64) (*segment.Segment, error) {
	c := *segcfg
	c.Sparse = new(atomic.Int64)
	c.Sparse.Store(math.MaxInt64)
	c.IndexRebuilds = nil
	// Written without the log's lock, and short-lived: outside the bound.
	c.Resident, c.Writer = nil, nil
	return segment.Create(&c, dir, base)
}

// writeCleanTxnIndex writes, in the cleaning directory, the aborted
// transaction index of a new segment covering [base, end): the old
// segments' entries but those whose ABORT marker the round removed. It
// reports whether there is one.
func (l *Log) writeCleanTxnIndex(base, end int64, dropped map[int64]bool) (bool, error) {
	data := l.txnIndexBytes(base, end, dropped)
	if len(data) == 0 {
		return false, nil
	}
	return true, l.writeWhole(filepath.Join(cleanDir, segment.FileName(base, TxnIndexSuffix)), data)
}

// swap commits a round (see above): the checkpoint, the swap file, then the
// files and the segment list. segs is the list the round read.
func (l *Log) swap(segs []*segment.Segment, groups []cleanGroup, firstDirty, now int64, droppedAborts map[int64]bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	cur := l.segments()
	last := groups[len(groups)-1].last
	// Retention may have deleted segments of the round: start again later.
	if len(cur) <= last || !slices.Equal(cur[:last+1], segs[:last+1]) {
		return errCleanRaced
	}
	// What the new segments cover is sparse from here on, stored before
	// the commit (an old segment taken as sparse only reads laxer).
	l.cleanMu.Lock()
	prev := l.clean
	if end := groups[len(groups)-1].end; l.sparse.Load() < end {
		l.sparse.Store(end)
	}
	l.cleanMu.Unlock()
	if err := l.writeCheckpoint(l.sparse.Load(), prev.firstDirty, prev.lastRun); err != nil {
		return err
	}
	var sw []byte
	for _, g := range groups {
		t := 0
		if g.txnIndex {
			t = 1
		}
		sw = fmt.Appendf(sw, "%d %d %d\n", g.base, g.end, t)
	}
	sw = fmt.Appendf(sw, "%08x\n", crc32.Checksum(sw, castagnoli))
	if err := l.writeWhole(swapFile, sw); err != nil {
		return err
	}
	// Committed: from here a failure is finished by the next Open.
	if err := l.finishSwap(groups); err != nil {
		return l.fail(fmt.Errorf("swap cleaned segments: %w", err))
	}
	next := make([]*segment.Segment, 0, len(cur)-last-1+len(groups))
	for _, g := range groups {
		next = append(next, segment.OpenSealed(l.segcfg, l.cfg.Dir, g.base, g.end, g.size))
	}
	next = append(next, cur[last+1:]...)
	l.segs.Store(&next)
	for _, g := range groups {
		for i := g.first; i <= g.last; i++ {
			l.bytes -= cur[i].Size()
			// Readers still in them retry on the new list; views keep
			// their mappings. The files are gone or replaced already.
			cur[i].Close(false)
		}
		l.bytes += g.size
	}
	l.cfg.Stats.SegmentsDeleted.Add(int64(last + 1 - len(groups)))
	if len(droppedAborts) > 0 {
		// Their records went in earlier rounds, their markers now.
		l.abortMu.Lock()
		l.aborted.entries = slices.DeleteFunc(l.aborted.entries, func(e AbortedTxnEntry) bool { return droppedAborts[e.LastOffset] })
		l.abortMu.Unlock()
	}
	if err := l.writeCheckpoint(l.sparse.Load(), firstDirty, now); err != nil {
		l.cfg.Logger.Warn("stream: cannot store the cleaner checkpoint", "dir", l.cfg.Dir, "err", err)
	}
	l.cleanMu.Lock()
	l.clean = cleanState{firstDirty: firstDirty, lastRun: now}
	l.cleanMu.Unlock()
	if err := l.endSwap(); err != nil {
		l.cfg.Logger.Warn("stream: cannot remove the cleaner's swap file", "dir", l.cfg.Dir, "err", err)
	}
	return nil
}

// finishSwap moves the new segments' files into place and deletes the old
// ones they replace. It can run again after a crash at any point in it.
func (l *Log) finishSwap(groups []cleanGroup) error {
	fs, dir := l.cfg.FS, l.cfg.Dir
	from := filepath.Join(dir, cleanDir)
	move := func(name string) error {
		err := fs.Rename(filepath.Join(from, name), filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil // moved before a crash
		}
		return err
	}
	remove := func(name string) error {
		if err := fs.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	entries, err := fs.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := fs.Lstat(filepath.Join(from, segment.FileName(g.base, segment.LogSuffix))); err == nil {
			// Not moved yet: the log file moves last, so its indexes are
			// new whenever it is.
			if !g.txnIndex {
				if err := remove(segment.FileName(g.base, TxnIndexSuffix)); err != nil {
					return err
				}
			}
			for _, suffix := range []string{segment.IndexSuffix, segment.TimeIndexSuffix, TxnIndexSuffix, segment.LogSuffix} {
				if err := move(segment.FileName(g.base, suffix)); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range entries {
			for _, suffix := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix, TxnIndexSuffix} {
				if base, ok := segment.ParseFileName(e.Name(), suffix); ok && base > g.base && base < g.end {
					if err := remove(e.Name()); err != nil {
						return err
					}
				}
			}
		}
	}
	if l.settings().Sync != SyncNever {
		return fs.SyncDir(dir)
	}
	return nil
}

// endSwap removes the swap file and the cleaning directory once the swap is
// done.
func (l *Log) endSwap() error {
	err := l.cfg.FS.Remove(filepath.Join(l.cfg.Dir, swapFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := l.cfg.FS.RemoveAll(filepath.Join(l.cfg.Dir, cleanDir)); err != nil {
		return err
	}
	if l.settings().Sync != SyncNever {
		return l.cfg.FS.SyncDir(l.cfg.Dir)
	}
	return nil
}

// recoverClean runs at Open, before the segments are listed: it finishes a
// committed swap, removes an uncommitted round's files, and loads the
// checkpoint. A read-only log changes nothing: an unfinished swap is
// left to the owner, and listSegments hides what it would delete.
func (l *Log) recoverClean() error {
	l.loadCheckpoint()
	groups, ok, err := l.readSwap()
	if err != nil {
		return err
	}
	if l.cfg.ReadOnly {
		l.pendingSwap = groups
		return nil
	}
	if ok {
		l.cfg.Logger.Info("stream: finishing a cleaning round's swap", "dir", l.cfg.Dir, "segments", len(groups))
		if err := l.finishSwap(groups); err != nil {
			return fmt.Errorf("finish the cleaner's swap in %s: %w", l.cfg.Dir, err)
		}
		return l.endSwap()
	}
	if _, err := l.cfg.FS.Lstat(filepath.Join(l.cfg.Dir, cleanDir)); err == nil {
		return l.cfg.FS.RemoveAll(filepath.Join(l.cfg.Dir, cleanDir))
	}
	return nil
}

// readSwap reads the swap file: the groups of a committed round whose
// swap may not be finished.
func (l *Log) readSwap() ([]cleanGroup, bool, error) {
	data, err := l.readFile(swapFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	groups, err := parseSwap(data)
	if err != nil {
		return nil, false, fmt.Errorf("%w in %s", err, l.cfg.Dir)
	}
	return groups, true, nil
}

// parseSwap parses a swap file's content.
func parseSwap(data []byte) ([]cleanGroup, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	body := data[:max(0, len(data)-9)]
	if len(lines) < 2 || lines[len(lines)-1] != fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)) {
		// Written by a rename after an fsync: damage, not a torn write.
		return nil, fmt.Errorf("%w: damaged cleaner swap file", errs.ErrCorrupt)
	}
	var groups []cleanGroup
	for _, line := range lines[:len(lines)-1] {
		var g cleanGroup
		var t int
		if _, err := fmt.Sscanf(line, "%d %d %d", &g.base, &g.end, &t); err != nil || g.base < 0 || g.end < g.base {
			return nil, fmt.Errorf("%w: cleaner swap file: line %q", errs.ErrCorrupt, line)
		}
		g.txnIndex = t == 1
		groups = append(groups, g)
	}
	return groups, nil
}

// hiddenBySwap reports whether a read-only log must not list the segment
// at base: an unfinished swap has moved its group's new segment in and
// would delete it.
func (l *Log) hiddenBySwap(base int64) bool {
	for _, g := range l.pendingSwap {
		if base > g.base && base < g.end {
			if _, err := l.cfg.FS.Lstat(filepath.Join(l.cfg.Dir, cleanDir, segment.FileName(g.base, segment.LogSuffix))); errors.Is(err, os.ErrNotExist) {
				return true
			}
		}
	}
	return false
}

// loadCheckpoint reads the checkpoint into the log's cleaning state; a
// missing or damaged one leaves it at "never cleaned", sparse nowhere.
func (l *Log) loadCheckpoint() {
	data, err := l.readFile(checkpointFile)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.cfg.Logger.Warn("stream: cannot read the cleaner checkpoint", "dir", l.cfg.Dir, "err", err)
		}
		return
	}
	sparse, firstDirty, lastRun, ok := parseCheckpoint(data)
	if !ok {
		l.cfg.Logger.Warn("stream: damaged cleaner checkpoint; the log reads as never cleaned", "dir", l.cfg.Dir)
		l.cfg.Stats.CorruptBatches.Add(1)
		// Every segment may be sparse: gaps must not read as damage.
		sparse = math.MaxInt64
	}
	if sparse > l.sparse.Load() {
		l.sparse.Store(sparse)
	}
	l.cleanMu.Lock()
	l.clean = cleanState{firstDirty: firstDirty, lastRun: lastRun}
	l.cleanMu.Unlock()
}

// writeCheckpoint stores the checkpoint (see above).
func (l *Log) writeCheckpoint(sparse, firstDirty, lastRun int64) error {
	b := fmt.Appendf(nil, "%d %d %d ", sparse, firstDirty, lastRun)
	b = fmt.Appendf(b, "%08x", crc32.Checksum(b, castagnoli))
	return l.writeWhole(checkpointFile, b)
}

// parseCheckpoint reads a checkpoint's content.
func parseCheckpoint(data []byte) (sparse, firstDirty, lastRun int64, ok bool) {
	i := bytes.LastIndexByte(data, ' ')
	if i < 0 || string(data[i+1:]) != fmt.Sprintf("%08x", crc32.Checksum(data[:i+1], castagnoli)) {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(data[:i]))
	if len(f) != 3 {
		return 0, 0, 0, false
	}
	var v [3]int64
	for j := range f {
		n, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		v[j] = n
	}
	return v[0], v[1], v[2], true
}

// txnIndexBytes is the aborted transaction index of a segment covering
// [base, next): the entries whose marker is in it, but those left out.
func (l *Log) txnIndexBytes(base, next int64, leftOut map[int64]bool) []byte {
	l.abortMu.Lock()
	defer l.abortMu.Unlock()
	var buf []byte
	for _, e := range l.aborted.entries {
		if e.LastOffset >= base && e.LastOffset < next && !leftOut[e.LastOffset] {
			buf = binary.BigEndian.AppendUint16(buf, 0)
			buf = binary.BigEndian.AppendUint64(buf, uint64(e.ProducerID))
			buf = binary.BigEndian.AppendUint64(buf, uint64(e.FirstOffset))
			buf = binary.BigEndian.AppendUint64(buf, uint64(e.LastOffset))
			buf = binary.BigEndian.AppendUint64(buf, uint64(e.LastStable))
		}
	}
	return buf
}
