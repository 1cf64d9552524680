// Package log is one partition's log: an ordered list of segment files
// (see package segment) of which the last, the active segment, takes
// appends. It assigns offsets, rolls segments by size and age, enforces
// retention and a log start offset moved by DeleteRecords, makes appends
// durable by its SyncPolicy (with group commit), recovers after a crash, and
// serves reads of whole batches below its high watermark, waking waiters
// when that moves. It knows nothing of topics, groups or records: a Log is
// reached only through its methods.
//
// A log's directory holds its segments' files, named by base offset (see
// package segment), and, after DeleteRecords, the log-start file (see
// retention.go).
package log

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/resident"
	"github.com/embedstream/stream/internal/signal"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/segment"
)

// Config configures one log.
type Config struct {
	Dir      string           // the log's directory
	FS       vfs.FS           // default vfs.Default
	FilePerm os.FileMode      // mode of created files
	DirPerm  os.FileMode      // mode of the directory, if created
	Settings                  // the settings at open; Reconfigure changes them later
	ReadOnly bool             // change nothing on disk: damage is skipped in memory
	Follow   bool             // another process owns and writes the log: ReadOnly, and Refresh takes in its changes (see follow.go)
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // default: discard
	Stats    *Stats           // shared by a broker's logs; may be nil

	// Resident, if set, bounds how many segments of the logs sharing it
	// hold a file descriptor or mappings at once (see package resident):
	// an idle log holds none. A log opened with one holds none until used.
	Resident *resident.Set

	// ProducerExpiration is how long after its last batch an idempotent
	// producer's state is kept (producer.id.expiration.ms); 0:
	// DefaultProducerExpiration.
	ProducerExpiration time.Duration

	// OnUnsynced, if set, is called under SyncInterval when an append
	// leaves unsynced data in a log that had none: its owner calls Sync
	// within its interval. Called without the log's locks.
	OnUnsynced func()
	// OnRetention, if set, is called with RetentionDue's answer when that
	// may have come earlier than it last said: the log got records after
	// holding none, size retention was left to do after an append,
	// DeleteRecords moved the start, or Reconfigure changed the retention
	// settings. EnforceRetention's caller asks RetentionDue afterwards
	// itself. Called without the log's locks.
	OnRetention func(due time.Time)
	// OnRoll, if set, is called when a compacted log (Settings.Compact)
	// seals a segment: what a cleaning round may clean grew. Called under
	// the log's mu: it must not block or call the log.
	OnRoll func()
}

// Settings are the parts of a log's Config that can change while it is open
// (Reconfigure): a topic's config altered at run time.
type Settings struct {
	SegmentBytes   int64 // roll at this size (segment.bytes)
	SegmentAge     time.Duration
	Retention      time.Duration // delete segments older than this; 0: keep
	RetentionBytes int64         // keep about this many bytes, checked as appends grow the log and by EnforceRetention; 0: no limit
	MaxBatchBytes  int           // largest batch Append accepts (Kafka's max.message.bytes)
	LogAppendTime  bool          // stamp batches with the append time
	Sync           SyncPolicy

	// Compaction (see clean.go). The owner turns retention off (zero
	// Retention and RetentionBytes) for a policy of compact alone.
	Compact           bool          // cleanup.policy includes compact: Clean keeps the latest record of each key
	MinCleanableRatio float64       // min.cleanable.dirty.ratio: the log is due once dirty/(clean+dirty) exceeds it
	MinCompactionLag  time.Duration // min.compaction.lag.ms: records younger than this are not cleaned
	MaxCompactionLag  time.Duration // max.compaction.lag.ms: a dirty record older than this makes the log due whatever its ratio; 0: none
	DeleteRetention   time.Duration // delete.retention.ms: tombstones and spent markers live this long after the round that first met them
}

// SyncPolicy says when appended data is fsynced (see stream.SyncPolicy).
type SyncPolicy uint8

// The policies.
const (
	// SyncInterval: Sync is called from outside, on a timer.
	SyncInterval SyncPolicy = iota
	// SyncNever: the OS decides; no fsync of data or directories.
	SyncNever
	// SyncAlways: Append returns once durable, and the high watermark
	// moves only over durable data.
	SyncAlways
)

// Stats are counters shared by every log of a broker. Readers of the logs
// add what they return to RecordsOut and BytesOut.
type Stats struct {
	RecordsIn, BytesIn, BatchesIn   atomic.Int64
	RecordsOut, BytesOut            atomic.Int64
	Fsyncs                          atomic.Int64
	FsyncLatency                    Histogram // of the fsyncs Fsyncs counts
	Truncations, TruncatedBytes     atomic.Int64
	IndexRebuilds                   atomic.Int64
	SegmentsRolled, SegmentsDeleted atomic.Int64
	CorruptBatches                  atomic.Int64 // damaged batches or lost ranges met by recovery or reads
	CleanerRuns                     atomic.Int64 // cleaning rounds that swapped segments in
	CleanerBytesRead                atomic.Int64 // bytes of segments cleaning rounds rewrote
	CleanerBytesReclaimed           atomic.Int64 // bytes those rounds removed
	LogStartResets                  atomic.Int64 // damaged log-start files ignored
	MetaRebuilds                    atomic.Int64 // damaged catalogs set aside and rebuilt (set by the broker)
	MetaRollbacks                   atomic.Int64 // catalogs opened at their previous transaction (set by the broker)
}

// Info describes a log.
type Info struct {
	Start    int64 // first offset still stored
	End      int64 // the high watermark: offsets below it are readable
	Bytes    int64 // bytes of batches stored
	Segments int   // segment files
	Traffic
}

// Traffic is what went in and out of one log since it was opened: the
// per-partition share of Stats' RecordsIn, BytesIn, RecordsOut and BytesOut.
// Appends count themselves; readers count what they return with CountOut.
type Traffic struct {
	RecordsIn, BytesIn   int64 // records and batch bytes appended
	RecordsOut, BytesOut int64 // records and batch bytes readers returned
}

// Log is one partition's log. It is safe for concurrent use: appends,
// retention and DeleteRecords are serialized, reads take no lock.
//
// Offsets [start, hw) are readable. Under SyncAlways hw trails the written
// end until an fsync covers it; otherwise hw is the written end.
type Log struct {
	cfg Config // cfg.Settings are those of Open: set holds the current ones
	set atomic.Pointer[Settings]

	// segcfg is the config of segments created from now on (replaced, not
	// changed, by Reconfigure: each segment keeps the one it was made
	// with). Under mu.
	segcfg *segment.Config

	// segs is the copy-on-write segment list, oldest first, never empty
	// unless the partition is read-only and has no data. Readers load it
	// without locks; the writer replaces it under mu.
	segs  atomic.Pointer[[]*segment.Segment]
	start atomic.Int64 // log start offset: first offset still stored
	hw    atomic.Int64 // high watermark: offsets below it are visible

	mu          sync.Mutex // serializes writers: append, roll, retention, close
	written     int64      // next offset to assign (the log end offset)
	bytes       int64      // batch bytes in segs, for size retention
	activeSince time.Time  // when the active segment got its first batch, for SegmentAge
	closed      bool
	failed      error // sticky: a failed fsync stops writes for good
	// lazyActive: the active segment was made under SyncNever, so its Seal
	// does not fsync it. lazySealed: some sealed segment may never have
	// been fsynced (sealed under SyncNever, or found at Open, whose
	// history is unknown). A change away from SyncNever syncs them.
	lazyActive, lazySealed bool

	// Group commit: one goroutine at a time fsyncs; others wait on syncCond
	// for synced to pass their offset.
	syncMu   sync.Mutex
	syncCond *sync.Cond
	syncing  bool
	synced   int64 // offsets below it are durable
	dirty    atomic.Bool

	appended signal.Signal // broadcast when hw moves or the partition closes

	// The log's Traffic; atomics of its own, so counting takes no lock
	// and touches nothing another partition does.
	recordsIn, bytesIn, recordsOut, bytesOut atomic.Int64

	lastDamage atomic.Int64 // the end of the damaged range a read last reported

	noStartFile bool // Open's listing showed no log-start file: openStart reads none

	follow followState // a follower's view of the directory (Config.Follow); under mu

	prod producers // idempotent producers' state (producers.go); under mu

	// Transactions (txn.go): the state under mu, the aborted ones under
	// abortMu, and for lock-free readers whether the state is loaded and
	// the first offset of the oldest open transaction (math.MaxInt64:
	// none).
	txn       txns
	txnFiles  bool // Open listed transaction files
	txnLoaded atomic.Bool
	firstOpen atomic.Int64
	abortMu   sync.Mutex
	aborted   abortedList

	// Compaction (clean.go): roundMu runs one round at a time; cleanMu
	// guards clean; sparse is the offset below which segments may have
	// gaps (segment.Config.Sparse); pendingSwap is an unfinished swap a
	// read-only log found.
	roundMu     sync.Mutex
	cleanMu     sync.Mutex
	clean       cleanState
	sparse      atomic.Int64
	pendingSwap []cleanGroup
	uncleanable atomic.Bool // a round met damage (CleanState.Uncleanable)
}

// Open opens (creating if needed) the log in cfg.Dir. Unless clean (the
// last shutdown closed every log properly), the active segment is scanned
// and a torn tail cut, and every sealed segment's tail is verified. A clean
// log whose active segment does not match what its close left is treated
// as unclean. Damage never fails Open: only errors the caller can act on
// (I/O, permissions, memory for mappings) do.
func Open(cfg Config, clean bool) (*Log, error) {
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stats == nil {
		cfg.Stats = new(Stats)
	}
	if cfg.Follow {
		cfg.ReadOnly = true
	}
	l := &Log{cfg: cfg, segcfg: &segment.Config{
		FS: cfg.FS, Perm: cfg.FilePerm, MaxBytes: cfg.SegmentBytes, ReadOnly: cfg.ReadOnly, Follow: cfg.Follow,
		NoSync: cfg.Sync == SyncNever, IndexRebuilds: &cfg.Stats.IndexRebuilds, Resident: cfg.Resident,
	}}
	l.segcfg.Writer = &l.mu
	l.segcfg.Sparse = &l.sparse
	l.set.Store(new(cfg.Settings))
	l.firstOpen.Store(math.MaxInt64)
	l.lazyActive, l.lazySealed = cfg.Sync == SyncNever, cfg.Sync == SyncNever
	l.syncCond = sync.NewCond(&l.syncMu)
	fi, err := cfg.FS.Lstat(cfg.Dir)
	created := false
	if errors.Is(err, os.ErrNotExist) && !cfg.ReadOnly {
		// A new directory is durable only once its parent's entry is.
		if err := cfg.FS.MkdirAll(cfg.Dir, cfg.DirPerm); err != nil {
			return nil, err
		}
		if cfg.Sync != SyncNever {
			if err := cfg.FS.SyncDir(filepath.Dir(cfg.Dir)); err != nil {
				return nil, err
			}
		}
		created = true
	} else if err != nil && !cfg.ReadOnly {
		return nil, err
	} else if err == nil && !fi.IsDir() {
		// Refuse symbolic links: a partition's data never leaves the data directory.
		return nil, fmt.Errorf("%w: %s is not a directory", errs.ErrCorrupt, cfg.Dir)
	}
	if cfg.Follow {
		// Listed before the files are read: a change from here on shows
		// in its modification time (see refreshLocked).
		if err := l.watchDir(); err != nil {
			return nil, err
		}
	}
	// One listing serves the whole open of an owned log: files it does not
	// show (the cleaner's, the log start) are not looked for. With 100,000
	// partitions every system call saved here is a tenth of a second.
	var listing []os.DirEntry
	haveListing := !cfg.Follow
	if haveListing && !created {
		listing, err = cfg.FS.ReadDir(cfg.Dir)
		if cfg.ReadOnly && errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return nil, err
		}
	}
	if !haveListing || listed(listing, checkpointFile) || listed(listing, swapFile) || listed(listing, cleanDir) {
		if err := l.recoverClean(); err != nil {
			return nil, err
		}
		haveListing = false // a swap may have moved files
	}
	l.noStartFile = haveListing && !listed(listing, logStartFile)
	var files []segmentFile
	if haveListing {
		files, err = l.listedSegments(listing)
	} else {
		files, err = l.listSegments()
	}
	if err != nil {
		return nil, err
	}
	segs, err := l.openSegments(files, clean)
	if err != nil {
		return nil, err
	}
	if cfg.Resident != nil {
		// Opening read tails and indexes: give back what that took, so an
		// idle partition holds nothing (the next use takes it again).
		for _, s := range segs {
			s.Release()
		}
	}
	if len(segs) == 0 && !cfg.ReadOnly {
		s, err := segment.Create(l.segcfg, cfg.Dir, 0)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	l.segs.Store(&segs)
	for _, s := range segs {
		l.bytes += s.Size()
	}
	if cfg.Follow {
		l.followFiles(files)
		l.publishLocked()
	} else if len(segs) > 0 {
		l.written = segs[len(segs)-1].Next()
		if err := l.openStart(); err != nil {
			closeSegments(segs)
			return nil, err
		}
	}
	l.hw.Store(l.written)
	l.synced = l.written
	l.activeSince = cfg.Now()
	// Transaction state costs nothing for a log that never had any (no
	// file of it listed): empty. Others load it now, so that the last
	// stable offset is right from the first read.
	if l.txnFiles {
		if err := l.loadTxnsLocked(); err != nil {
			closeSegments(segs)
			return nil, err
		}
	} else {
		l.txn = txns{loaded: true, open: map[int64]OpenTxn{}, end: l.written}
		l.txnLoaded.Store(true)
	}
	return l, nil
}

// segmentFile is a segment's log file as listed.
type segmentFile struct {
	base int64
	info os.FileInfo // its size, and (for a follower) its identity
	// The sizes of the active segment's index files, -1 if missing.
	indexSize, timeIndexSize int64
}

// listSegments finds the segment files in the directory, sorted by base
// offset, and removes leftovers (index files without a log) of an
// interrupted deletion.
func (l *Log) listSegments() ([]segmentFile, error) {
	if l.cfg.Follow {
		// The owner may have cleaned since: take in its checkpoint, and
		// hide what an unfinished swap of its would delete.
		l.loadCheckpoint()
		if groups, _, err := l.readSwap(); err == nil {
			l.pendingSwap = groups
		}
	}
	entries, err := l.cfg.FS.ReadDir(l.cfg.Dir)
	if err != nil {
		if l.cfg.ReadOnly && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return l.listedSegments(entries)
}

// listed reports whether a listing holds name.
func listed(entries []os.DirEntry, name string) bool {
	for _, e := range entries {
		if e.Name() == name {
			return true
		}
	}
	return false
}

// listedSegments is listSegments with the directory's entries read.
func (l *Log) listedSegments(entries []os.DirEntry) ([]segmentFile, error) {
	var files []segmentFile
	logs := map[int64]bool{}
	for _, e := range entries {
		name := e.Name()
		if base, ok := segment.ParseFileName(name, segment.LogSuffix); ok && !l.hiddenBySwap(base) {
			if !e.Type().IsRegular() {
				return nil, fmt.Errorf("%w: %s is not a regular file", errs.ErrCorrupt, filepath.Join(l.cfg.Dir, name))
			}
			info, err := e.Info()
			if err != nil {
				if l.cfg.Follow && errors.Is(err, os.ErrNotExist) {
					continue // deleted since the listing: retention
				}
				return nil, err
			}
			files = append(files, segmentFile{base: base, info: info, indexSize: -1, timeIndexSize: -1})
			logs[base] = true
			continue
		}
		if _, ok := segment.ParseFileName(name, TxnStateSuffix); ok {
			l.txnFiles = true
		} else if _, ok := segment.ParseFileName(name, TxnIndexSuffix); ok {
			l.txnFiles = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		base, isIndex := segment.ParseFileName(name, segment.IndexSuffix)
		if !isIndex {
			base, isIndex = segment.ParseFileName(name, segment.TimeIndexSuffix)
		}
		if isIndex && !logs[base] && !l.cfg.ReadOnly {
			if err := l.cfg.FS.Remove(filepath.Join(l.cfg.Dir, name)); err != nil {
				return nil, err
			}
		}
		if isIndex && len(files) > 0 && files[len(files)-1].base == base {
			// The active segment's (the last): an empty or missing index
			// needs no opening.
			info, err := e.Info()
			if err != nil {
				return nil, err
			}
			if strings.HasSuffix(name, segment.IndexSuffix) {
				files[len(files)-1].indexSize = info.Size()
			} else {
				files[len(files)-1].timeIndexSize = info.Size()
			}
		}
	}
	return files, nil // ReadDir sorts by name: 20-digit names sort by offset
}

// openSegments opens the listed segments: every one but the last sealed,
// the last active. Unless clean (the last shutdown closed the log
// properly), the active segment is recovered and the sealed ones' tails are
// checked.
func (l *Log) openSegments(files []segmentFile, clean bool) ([]*segment.Segment, error) {
	var segs []*segment.Segment
	for i := 0; i < len(files)-1; i++ {
		segs = append(segs, segment.OpenSealed(l.segcfg, l.cfg.Dir, files[i].base, files[i+1].base, files[i].info.Size()))
	}
	if len(files) > 0 {
		last := files[len(files)-1]
		active, rec, err := segment.OpenActiveListed(l.segcfg, l.cfg.Dir, last.base,
			segment.Listing{Size: last.info.Size(), IndexSize: last.indexSize, TimeIndexSize: last.timeIndexSize}, !clean)
		if err != nil {
			closeSegments(segs)
			return nil, fmt.Errorf("open %s: %w", l.cfg.Dir, err)
		}
		if clean && rec.Scanned {
			l.cfg.Logger.Warn("stream: a cleanly closed log does not match its close; recovering as after a crash", "dir", l.cfg.Dir)
			clean = false
		}
		l.noteRecovery(active, rec)
		segs = append(segs, active)
	}
	if !clean {
		var err error
		if segs, err = l.checkSealed(segs); err != nil {
			closeSegments(segs)
			return nil, err
		}
	}
	return segs, nil
}

// closeSegments closes segments that never served a read, or whose reads
// are done with them (views keep their mappings).
func closeSegments(segs []*segment.Segment) {
	for _, s := range segs {
		s.Close(false)
	}
}

// checkSealed verifies the tail of each sealed segment after an unclean
// shutdown. One that fails is recovered (see Segment.Recover): reads
// report the offsets a cut tail held as damage, and later segments are
// kept: damage costs only the damaged bytes.
func (l *Log) checkSealed(segs []*segment.Segment) ([]*segment.Segment, error) {
	for i := 0; i < len(segs)-1; i++ {
		if err := l.checkSealedOne(segs[i], segs[i+1].Base()); err != nil {
			return segs, err
		}
	}
	return segs, nil
}

// checkSealedOne checks one sealed segment, which the next begins after,
// and recovers it if damaged.
func (l *Log) checkSealedOne(s *segment.Segment, next int64) error {
	err := s.CheckSealed(next)
	if err == nil {
		return nil
	}
	if !errors.Is(err, batch.ErrCorrupt) {
		// Not damage (an I/O error, no memory for a mapping): cutting
		// here would throw away good records.
		return fmt.Errorf("check %s segment %d: %w", l.cfg.Dir, s.Base(), err)
	}
	l.cfg.Logger.Warn("stream: damaged sealed segment", "dir", l.cfg.Dir, "segment", s.Base(), "err", err)
	rec, rerr := s.Recover(next)
	l.noteRecovery(s, rec)
	if rerr != nil {
		return fmt.Errorf("recover %s segment %d: %w", l.cfg.Dir, s.Base(), rerr)
	}
	return nil
}

func (l *Log) noteRecovery(s *segment.Segment, rec segment.Recovery) {
	if rec.IndexRebuilt {
		l.cfg.Stats.IndexRebuilds.Add(1)
	}
	if rec.Damaged > 0 {
		l.cfg.Stats.CorruptBatches.Add(int64(rec.Damaged))
		l.cfg.Logger.Warn("stream: damaged batches kept in place: reads report their offsets as corrupt",
			"dir", l.cfg.Dir, "segment", s.Base(), "ranges", rec.Damaged)
	}
	if rec.Truncated > 0 {
		l.cfg.Stats.Truncations.Add(1)
		l.cfg.Stats.TruncatedBytes.Add(rec.Truncated)
		l.cfg.Logger.Warn("stream: recovery cut a damaged log tail",
			"dir", l.cfg.Dir, "segment", s.Base(), "bytes", rec.Truncated, "cause", rec.Cause)
	}
}

func (l *Log) segments() []*segment.Segment { return *l.segs.Load() }

// Info reports the log's offsets, bytes and segment count.
func (l *Log) Info() Info {
	segs := l.segments()
	info := Info{Start: l.start.Load(), End: l.hw.Load(), Segments: len(segs)}
	for _, s := range segs {
		info.Bytes += s.Size()
	}
	info.Traffic = Traffic{RecordsIn: l.recordsIn.Load(), BytesIn: l.bytesIn.Load(),
		RecordsOut: l.recordsOut.Load(), BytesOut: l.bytesOut.Load()}
	return info
}

// CountOut counts records and batch bytes a reader returned from the log,
// in its Traffic and in the shared Stats' RecordsOut and BytesOut. Readers
// call it per batch or per read, not per record.
func (l *Log) CountOut(records, bytes int64) {
	if records != 0 {
		l.recordsOut.Add(records)
		l.cfg.Stats.RecordsOut.Add(records)
	}
	if bytes != 0 {
		l.bytesOut.Add(bytes)
		l.cfg.Stats.BytesOut.Add(bytes)
	}
}

// SegmentCount is how many segment files the log has.
func (l *Log) SegmentCount() int { return len(l.segments()) }

// HighWatermark is the end of what readers may see: offsets below it are
// readable (under SyncAlways, once durable).
func (l *Log) HighWatermark() int64 { return l.hw.Load() }

// StartOffset is the first offset still stored (retention and
// DeleteRecords move it up).
func (l *Log) StartOffset() int64 { return l.start.Load() }

// Dir is the log's directory.
func (l *Log) Dir() string { return l.cfg.Dir }

// Policy is the log's sync policy.
func (l *Log) Policy() SyncPolicy { return l.settings().Sync }

// settings returns the current settings; the caller must not change them.
func (l *Log) settings() *Settings { return l.set.Load() }

// Settings returns the log's current settings.
func (l *Log) Settings() Settings { return *l.settings() }

// SegmentInfo describes one segment of a log.
type SegmentInfo struct {
	Base, Next int64 // offsets [Base, Next)
	Size       int64 // bytes of batches
}

// Segments describes the log's segments, oldest first.
func (l *Log) Segments() []SegmentInfo {
	segs := l.segments()
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = SegmentInfo{Base: s.Base(), Next: s.Next(), Size: s.Size()}
	}
	return out
}

// Notify rings bell (a channel of capacity 1) the next time the high
// watermark moves or the log closes; see signal.Signal.Notify.
func (l *Log) Notify(bell chan struct{}) { l.appended.Notify(bell) }

// Forget drops a bell registered with Notify.
func (l *Log) Forget(bell chan struct{}) { l.appended.Forget(bell) }

// Watch rings bell (a channel of capacity 1) every time the high watermark
// moves or the log closes, until Unwatch; see signal.Signal.Watch.
func (l *Log) Watch(bell chan struct{}) { l.appended.Watch(bell) }

// Unwatch drops a bell registered with Watch.
func (l *Log) Unwatch(bell chan struct{}) { l.appended.Unwatch(bell) }

// Bells reports how many bells wait on the log, for tests.
func (l *Log) Bells() int { return l.appended.Bells() }

// Close syncs (unless the policy is SyncNever or a sync failed) and closes
// every segment. With clean, active segments are trimmed so the next open
// can trust them without a scan. Readers blocked in WaitFor return
// errs.ErrClosed.
func (l *Log) Close(clean bool) error {
	var err error
	if !l.cfg.ReadOnly && l.Policy() != SyncNever {
		err = l.Sync()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	clean = clean && err == nil && l.failed == nil && !l.cfg.ReadOnly
	if clean {
		if terr := l.closeTxnLocked(); terr != nil {
			err, clean = terr, false
		}
	}
	for _, s := range l.segments() {
		serr := s.Close(clean)
		if errors.Is(serr, segment.ErrSyncFailed) {
			serr = l.fail(serr) // trimming the active segment failed its fsync
		}
		err = errors.Join(err, serr)
	}
	l.appended.Broadcast()
	return err
}

// Abandon closes the log as a crash would leave it: nothing is synced or
// trimmed, and the next Open must recover. For crash tests.
func (l *Log) Abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, s := range l.segments() {
		s.Close(false)
	}
	l.appended.Broadcast()
}
