package log

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
)

// cleanFaults fails, while armed, the k-th mutating file operation (0
// based) and, if sticky, every one after it: a crash at that point.
type cleanFaults struct {
	armed  atomic.Bool
	calls  atomic.Int64
	k      int64
	sticky bool
}

func (f *cleanFaults) MaybeError(op errorfs.Op, _ string) error {
	if !f.armed.Load() || op == errorfs.OpRead || op == errorfs.OpLock {
		return nil
	}
	i := f.calls.Add(1) - 1
	if i == f.k || (f.sticky && i > f.k) {
		return syscall.EIO
	}
	return nil
}

// noSyncFS is the OS file system with fsyncs turned into no-ops: the
// sweep's rounds make every fsync call (each one a fault point) without
// waiting for the disk.
type noSyncFS struct{ vfs.FS }

type noSyncFile struct{ vfs.File }

func (fs noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

func (noSyncFile) Sync() error { return nil }

// scratchDir is a temporary directory on tmpfs where there is one: the
// sweep recreates a log's files hundreds of times, which ext4 makes 100
// times slower (as segment's tests found).
func scratchDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "log-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// dirState lists a directory tree: each file's path and content.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	}))
	return out
}

// sweepCase is a log to clean under faults: built once in a template
// directory, copied for every fault point.
type sweepCase struct {
	cfg      Config    // the log's config for the swept round (Dir: the template)
	now      time.Time // the round's time
	old, new []batch.Record
	model    *model
	work     string // the directory each fault point's log is copied to
}

// buildSweepCase writes a compacted log of 8 KiB segments that a round
// with 20 KiB segments rewrites in several groups; with txn, part of it in
// transactions, some aborted, so that new segments have aborted
// transaction indexes.
func buildSweepCase(t *testing.T, txn bool) *sweepCase {
	scratch := scratchDir(t)
	cfg := compactLog(t)
	cfg.Dir = filepath.Join(scratch, "build")
	cfg.SegmentBytes = 8 << 10
	cfg.Sync = SyncInterval // the round fsyncs, as it does in production
	cfg.FS = noSyncFS{vfs.Default}
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(21, 22))
	pad := strings.Repeat("p", 500)
	seq := int32(0)
	for i := range 6 {
		for j := range 15 {
			k := fmt.Sprintf("key-%03d", rng.IntN(12))
			r := kv{key: k, value: fmt.Sprintf("v%d-%d-%s", i, j, pad)}
			if rng.IntN(8) == 0 {
				r = kv{key: k, tombstone: true}
			}
			md.put(t, l, now.UnixMilli(), r)
		}
		if txn {
			keys := []string{fmt.Sprintf("key-%03d", rng.IntN(12)), fmt.Sprintf("t-%d", i)}
			b := keyedProduced(3, seq, true, fmt.Sprintf("x%d", i), keys...)
			seq += int32(len(keys))
			off := mustAppend(t, l, b)
			commit := i%3 != 0
			_, err := l.EndTxn(3, 0, commit, 0, true)
			require.NoError(t, err)
			if commit {
				for j, k := range keys {
					md.vals[k], md.offs[k] = kv{key: k, value: fmt.Sprintf("x%d-%s", i, k)}, off+int64(j)
				}
			}
		}
	}
	forceRoll(t, l)
	md.put(t, l, now.UnixMilli(), kv{key: "active", value: "a"})
	require.Greater(t, l.SegmentCount(), 5)
	require.NoError(t, l.Close(true))

	c := &sweepCase{cfg: cfg, now: now, model: md, work: filepath.Join(scratch, "log")}
	c.cfg.SegmentBytes = 28 << 10
	c.cfg.Dir = filepath.Join(scratch, "template")
	require.NoError(t, os.CopyFS(c.cfg.Dir, os.DirFS(cfg.Dir)))

	// The round without faults: what every completed round must give.
	ref := c.open(t, nil)
	// Compared read_committed: a round removes aborted records, which a
	// read_uncommitted view of old and new would differ by too.
	c.old = readCommitted(t, ref)
	res, err := ref.Clean(context.Background(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Greater(t, len(ref.Segments()), 2, "several groups")
	require.Less(t, len(ref.Segments()), l.SegmentCount(), "of several segments")
	c.new = readCommitted(t, ref)
	require.Less(t, len(c.new), len(c.old))
	c.checkLatest(t, ref, md)
	require.NoError(t, ref.Close(true))
	return c
}

// open copies the template to the work directory and opens it through fs
// (nil: the sweep's plain one).
func (c *sweepCase) open(t *testing.T, fs vfs.FS) *Log {
	t.Helper()
	cfg := c.cfg
	cfg.Dir = c.work
	require.NoError(t, os.RemoveAll(cfg.Dir))
	require.NoError(t, os.CopyFS(cfg.Dir, os.DirFS(c.cfg.Dir)))
	if fs != nil {
		cfg.FS = fs
	}
	l := openTestLog(t, cfg, true)
	// Open the segments' files (lazily opened at first use) before the
	// round, so that its fault points are its own operations.
	readAll(t, l, 0)
	_, err := l.CleanState(c.now)
	require.NoError(t, err)
	_, err = l.OffsetForTime(0)
	require.NoError(t, err)
	return l
}

// checkLatest compares each key's latest committed record with md's: no
// record lost, none resurrected (markers and aborted records are not
// records a reader sees).
func (c *sweepCase) checkLatest(t *testing.T, l *Log, md *model) {
	t.Helper()
	vals, offs := map[string]kv{}, map[string]int64{}
	for _, r := range readCommitted(t, l) {
		vals[string(r.Key)] = kv{key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil}
		offs[string(r.Key)] = r.Offset
	}
	require.Equal(t, md.vals, vals)
	require.Equal(t, md.offs, offs)
}

// inRange is the records of recs in [from, to).
func inRange(recs []batch.Record, from, to int64) []batch.Record {
	var out []batch.Record
	for _, r := range recs {
		if r.Offset >= from && r.Offset < to {
			out = append(out, r)
		}
	}
	return out
}

// requireOldOrNew checks that recs read as the log before the round or
// after it, whole.
func (c *sweepCase) requireOldOrNew(t *testing.T, recs []batch.Record, what string) {
	t.Helper()
	if !slices.EqualFunc(recs, c.old, recordsEqual) && !slices.EqualFunc(recs, c.new, recordsEqual) {
		require.Fail(t, "neither the old log nor the cleaned one", "%s: %d records, old %d, new %d", what, len(recs), len(c.old), len(c.new))
	}
}

func recordsEqual(a, b batch.Record) bool {
	return a.Offset == b.Offset && a.Timestamp == b.Timestamp && string(a.Key) == string(b.Key) &&
		string(a.Value) == string(b.Value) && (a.Value == nil) == (b.Value == nil)
}

// afterFault checks a log directory a faulted round left, its log closed:
// a read-only open reads each group old or new and changes nothing; a
// read-write open reads the old log or the new one whole, leaves no
// cleaning files, has the model's state, and cleans again.
func (c *sweepCase) afterFault(t *testing.T, dir, what string) (swapPending bool) {
	t.Helper()
	cfg := c.cfg
	cfg.Dir = dir
	cfg.ReadOnly = true
	files := dirState(t, dir)
	ro := openTestLog(t, cfg, false)
	recs := readCommitted(t, ro)
	swapPending = len(ro.pendingSwap) > 0
	if !swapPending {
		c.requireOldOrNew(t, recs, what+", read-only")
	} else {
		// A swap under way: each group reads as its old segments or its
		// new one, never both, never neither.
		from := int64(0)
		for _, g := range ro.pendingSwap {
			require.Equal(t, inRange(c.old, from, g.base), inRange(recs, from, g.base), what)
			got := inRange(recs, g.base, g.end)
			if !slices.EqualFunc(got, inRange(c.old, g.base, g.end), recordsEqual) {
				require.Equal(t, inRange(c.new, g.base, g.end), got, "%s: group [%d, %d)", what, g.base, g.end)
			}
			from = g.end
		}
		require.Equal(t, inRange(c.old, from, 1<<62), inRange(recs, from, 1<<62), what)
	}
	require.NoError(t, ro.Close(false))
	require.Equal(t, files, dirState(t, dir), "%s: a read-only open changes nothing", what)

	cfg.ReadOnly = false
	l := openTestLog(t, cfg, false)
	c.requireOldOrNew(t, readCommitted(t, l), what+", reopened")
	c.checkLatest(t, l, c.model)
	require.NoDirExists(t, filepath.Join(dir, cleanDir), what)
	require.NoFileExists(t, filepath.Join(dir, swapFile), what)

	// Cleaning goes on: a round over what is left and new records.
	md := &model{vals: maps(c.model.vals), offs: maps(c.model.offs)}
	fillKeys(t, l, md, rand.New(rand.NewPCG(1, 1)), 10, 15, c.now.UnixMilli(), 0)
	forceRoll(t, l)
	res, err := l.Clean(context.Background(), c.now, NewKeyMap(0), true)
	require.NoError(t, err, what)
	require.True(t, res.Cleaned, what)
	c.checkLatest(t, l, md)
	require.NoError(t, l.Close(true))
	return swapPending
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestLogCleanFaultSweep fails each mutating file operation of a round
// in turn, once (an I/O error the round reports) and from there on (a
// crash: the log is abandoned), until a round meets no fault; after each,
// the log reads as before the round or after it (see afterFault). The
// round rewrites several groups of several segments.
func TestLogCleanFaultSweep(t *testing.T) {
	t.Parallel()
	cleanFaultSweep(t, buildSweepCase(t, false))
}

// TestLogCleanFaultSweepTxn is TestLogCleanFaultSweep over a log with
// transactions, aborted ones among them: the new segments have aborted
// transaction indexes, moved with them.
func TestLogCleanFaultSweepTxn(t *testing.T) {
	t.Parallel()
	cleanFaultSweep(t, buildSweepCase(t, true))
}

func cleanFaultSweep(t *testing.T, c *sweepCase) {
	for _, sticky := range []bool{false, true} {
		mode := "fail"
		if sticky {
			mode = "crash"
		}
		pending := 0
		for k := int64(0); ; k++ {
			what := fmt.Sprintf("%s at op %d", mode, k)
			faults := &cleanFaults{k: k, sticky: sticky}
			l := c.open(t, errorfs.Wrap(noSyncFS{vfs.Default}, faults))
			dir := l.Dir()
			faults.armed.Store(true)
			res, err := l.Clean(context.Background(), c.now, NewKeyMap(0), true)
			faults.armed.Store(false)
			done := faults.calls.Load() <= k
			if done {
				require.NoError(t, err, what)
				require.True(t, res.Cleaned, what)
			}
			if !sticky {
				// The log goes on as old or new (or, failed after the
				// commit, as it was), and reads so.
				c.requireOldOrNew(t, readCommitted(t, l), what+", live")
				_ = l.Close(false)
			} else {
				l.Abandon()
			}
			if c.afterFault(t, dir, what) {
				pending++
			}
			if done {
				t.Logf("%s: %d operations, %d with a swap under way", mode, k, pending)
				require.Positive(t, pending, "some fault points stop a swap midway")
				break
			}
		}
	}
}

// TestLogCleanStaleSwapFile: a round whose swap file could not be removed
// after its swap (an I/O error the round only logs) must not let a later
// round's uncommitted files be taken for it: a crash of that later round
// before its commit leaves the log as it was.
func TestLogCleanStaleSwapFile(t *testing.T) {
	cfg := compactLog(t)
	cfg.Dir = filepath.Join(scratchDir(t), "log")
	cfg.SegmentBytes = 8 << 10
	var phase atomic.Int32 // 1: fail removing the swap file; 2: crash at the next round's commit
	var crashed atomic.Bool
	cfg.FS = errorfs.Wrap(noSyncFS{vfs.Default}, errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		switch phase.Load() {
		case 1:
			if op == errorfs.OpRemove && filepath.Base(path) == swapFile {
				phase.Store(0)
				return syscall.EIO
			}
		case 2:
			if op == errorfs.OpOpen && filepath.Base(path) == swapFile+".tmp" {
				crashed.Store(true)
			}
			if crashed.Load() && op != errorfs.OpRead {
				return syscall.EIO
			}
		}
		return nil
	}))
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(31, 32))
	pad := strings.Repeat("p", 500)
	fill := func(n int) {
		for i := range n {
			md.put(t, l, now.UnixMilli(), kv{key: fmt.Sprintf("k%d", rng.IntN(10)), value: fmt.Sprintf("%d-%s", i, pad)})
		}
		forceRoll(t, l)
	}
	fill(60)
	phase.Store(1)
	res, err := l.Clean(context.Background(), now, NewKeyMap(0), true)
	require.NoError(t, err, "a swap file left behind is only logged")
	require.True(t, res.Cleaned)
	require.Zero(t, phase.Load(), "the fault was met")
	md.check(t, l)

	// More records, bigger groups: the next round's first group covers
	// more than the last round's did.
	fill(60)
	set := l.Settings()
	set.SegmentBytes = 64 << 10
	require.NoError(t, l.Reconfigure(set))
	old := readAll(t, l, 0)
	phase.Store(2)
	_, err = l.Clean(context.Background(), now, NewKeyMap(0), true)
	require.Error(t, err)
	require.True(t, crashed.Load())
	l.Abandon()

	cfg.FS = noSyncFS{vfs.Default}
	l = openTestLog(t, cfg, false)
	require.Equal(t, old, readAll(t, l, 0), "the uncommitted round left nothing")
	md.check(t, l)
	res, err = l.Clean(context.Background(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	md.check(t, l)
}
