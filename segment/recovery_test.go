package segment

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
	"github.com/embedstream/stream/mmap"
)

// recoveryFixture is a log of batches with varied sizes, written once as
// bytes; each case writes (a damaged copy of) them to the segment's file.
type recoveryFixture struct {
	batches []batchtest.Batch
	data    []byte
	pos     []int64
}

func newRecoveryFixture(t *testing.T, seed uint64, n int) *recoveryFixture {
	rng := rand.New(rand.NewPCG(seed, 42))
	var batches []batchtest.Batch
	var next, ts int64
	for i := range n {
		// Mostly small batches, some large ones (several index intervals),
		// and a one-record batch: the last two are a large and a small one.
		count, size := 1+rng.IntN(6), 40
		switch {
		case i == n-2:
			count, size = 10, 250
		case i == n-1:
			count, size = 2, 30
		case rng.IntN(8) == 0:
			count, size = 30, 300
		}
		b := batchtest.Encode(t, next, batchtest.RandomRecords(rng, count, size, &ts))
		batches = append(batches, b)
		next = b.Next()
	}
	return &recoveryFixture{batches: batches, data: batchtest.Concat(batches), pos: batchtest.Positions(batches)}
}

// expectRecovery is what recovery of data must find: the longest prefix of
// whole batches (here: the fixture's, as written) and whether the cut part
// counts as damage.
func (f *recoveryFixture) complete(n int64) int {
	k := 0
	for k < len(f.batches) && f.pos[k+1] <= n {
		k++
	}
	return k
}

func (f *recoveryFixture) nextAfter(k int) int64 {
	if k == 0 {
		return 0
	}
	return f.batches[k-1].Next()
}

// reopenAndAppend checks a recovered segment: it reads exactly the batches
// good holds (damage left in place is passed over), takes an append at Next,
// and reopens stably both trusting the file and not.
func reopenAndAppend(t *testing.T, cfg *Config, dir string, s *Segment, good []byte, next int64) {
	t.Helper()
	require.Equal(t, next, s.Next())
	require.True(t, bytes.Equal(good, bytes.Join(batchBytes(readBatches(t, s, 0)), nil)), "recovered data")
	size := s.Size()

	extra := batchtest.Encode(t, next, []batchtest.Record{{Timestamp: 5, Key: []byte("after"), Value: []byte("recovery")}})
	_, err := s.Append(extra.Data)
	require.NoError(t, err)
	require.NoError(t, s.Close(true))
	want := append(append([]byte(nil), good...), extra.Data...)

	s, rec, err := OpenActive(cfg, dir, 0, false)
	require.NoError(t, err)
	if size == int64(len(good)) {
		require.False(t, rec.IndexRebuilt, "a clean close is trusted")
	}
	require.Equal(t, extra.Next(), s.Next())
	got := readBatches(t, s, 0)
	require.True(t, bytes.Equal(want, bytes.Join(batchBytes(got), nil)))
	require.NoError(t, s.Close(false))

	s, rec, err = OpenActive(cfg, dir, 0, true)
	require.NoError(t, err)
	require.Zero(t, rec.Truncated, "a second recovery finds nothing to cut")
	require.NoError(t, rec.Cause)
	require.Equal(t, extra.Next(), s.Next())
	require.Equal(t, size+int64(len(extra.Data)), s.Size())
	require.NoError(t, s.Close(false))
}

func batchBytes(bs []batch.Batch) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}

// TestRecoveryEveryTruncation cuts the log at every byte from the start of
// the second-to-last batch to the end and recovers each.
func TestRecoveryEveryTruncation(t *testing.T) {
	f := newRecoveryFixture(t, 1, 30)
	n := len(f.batches)
	from := f.pos[n-2]
	require.Greater(t, from, int64(3*4096), "the log spans several index intervals")
	t.Logf("%d batches, %d bytes; cutting at %d..%d", n, len(f.data), from, len(f.data))
	cfg := fastConfig(1 << 20)
	dir := scratchDir(t)
	path := logPath(dir, 0)
	for cut := from; cut <= int64(len(f.data)); cut++ {
		require.NoError(t, os.WriteFile(path, f.data[:cut], 0o600))
		s, rec, err := OpenActive(cfg, dir, 0, true)
		require.NoError(t, err, "cut at %d", cut)
		k := f.complete(cut)
		good := f.pos[k]
		require.True(t, rec.IndexRebuilt)
		if allZeroBytes(f.data[good:cut]) {
			// The start of a batch is its base offset, whose high bytes are
			// zero: indistinguishable from preallocation, and harmless.
			require.Zero(t, rec.Truncated, "cut at %d", cut)
			require.NoError(t, rec.Cause)
		} else {
			require.Equal(t, cut-good, rec.Truncated, "cut at %d", cut)
			require.ErrorIs(t, rec.Cause, batch.ErrCorrupt, "cut at %d", cut)
		}
		require.Equal(t, good, fileSize(t, path), "the damage is cut from the file")
		reopenAndAppend(t, cfg, dir, s, f.data[:good], f.nextAfter(k))
	}
	// One full check of the records themselves.
	require.NoError(t, os.WriteFile(path, f.data, 0o600))
	s, _, err := OpenActive(cfg, dir, 0, true)
	require.NoError(t, err)
	batchtest.RequireRecords(t, batchtest.Records(f.batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))
	require.NoError(t, s.Close(false))
}

// TestRecoveryBitFlips flips random bits in the log: recovery keeps every
// batch before the first damaged one, byte for byte, and nothing after it.
func TestRecoveryBitFlips(t *testing.T) {
	f := newRecoveryFixture(t, 2, 25)
	rng := rand.New(rand.NewPCG(3, 3))
	cfg := fastConfig(1 << 20)
	dir := scratchDir(t)
	path := logPath(dir, 0)
	damaged := make([]byte, len(f.data))
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	for i := range iterations {
		copy(damaged, f.data)
		// Batches with a flip their checks see: the CRC-covered part, the
		// framing, the magic. A base offset flip is seen only by the
		// offset sequence, and may pass it: not modelled, so not made.
		for range 1 + rng.IntN(3) {
			p := rng.Int64N(int64(len(f.data)))
			if p-f.pos[f.complete(p)] >= batchtest.OffBatchLength {
				damaged[p] ^= 1 << rng.IntN(8)
			}
		}
		bad := make([]bool, len(f.batches))
		for k := range f.batches {
			was, is := f.data[f.pos[k]:f.pos[k+1]], damaged[f.pos[k]:f.pos[k+1]]
			bad[k] = !bytes.Equal(was[:batchtest.OffLeaderEpoch], is[:batchtest.OffLeaderEpoch]) ||
				!bytes.Equal(was[batchtest.OffMagic:], is[batchtest.OffMagic:])
		}
		// The model: every batch without such a flip is kept; what follows
		// the last of them is a torn tail and is cut; each run of bad
		// batches before a kept one is passed over.
		var good []byte
		var next, end int64
		runs, inRun := 0, false
		for k, b := range f.batches {
			if bad[k] {
				inRun = true
				continue
			}
			if inRun {
				runs++
				inRun = false
			}
			good = append(good, f.data[f.pos[k]:f.pos[k+1]]...)
			next, end = b.Next(), f.pos[k+1]
		}
		require.NoError(t, os.WriteFile(path, damaged, 0o600))
		s, rec, err := OpenActive(cfg, dir, 0, true)
		require.NoError(t, err, "iteration %d", i)
		got := readBatches(t, s, 0) // each one passed Parse
		var gotBytes []byte
		for _, b := range got {
			// Only the leader epoch, which the CRC does not cover (Kafka
			// rewrites it), may differ in a batch that was kept.
			gotBytes = append(gotBytes, b[:batchtest.OffLeaderEpoch]...)
			gotBytes = append(gotBytes, make([]byte, batchtest.OffMagic-batchtest.OffLeaderEpoch)...)
			gotBytes = append(gotBytes, b[batchtest.OffMagic:]...)
		}
		var wantBytes []byte
		for data := good; len(data) > 0; data = data[batch.Batch(data).Size():] {
			b := data[:batch.Batch(data).Size()]
			wantBytes = append(wantBytes, b[:batchtest.OffLeaderEpoch]...)
			wantBytes = append(wantBytes, make([]byte, batchtest.OffMagic-batchtest.OffLeaderEpoch)...)
			wantBytes = append(wantBytes, b[batchtest.OffMagic:]...)
		}
		require.True(t, bytes.Equal(wantBytes, gotBytes), "iteration %d: every batch without damage is kept", i)
		require.Equal(t, next, s.Next(), "iteration %d", i)
		require.Equal(t, runs, rec.Damaged, "iteration %d", i)
		require.Equal(t, int64(len(f.data))-end, rec.Truncated, "iteration %d", i)
		if rec.Truncated > 0 {
			require.Error(t, rec.Cause)
		}
		if i%50 == 0 {
			reopenAndAppend(t, cfg, dir, s, got2bytes(got), next)
		} else {
			require.NoError(t, s.Close(false))
		}
	}
}

func got2bytes(bs []batch.Batch) []byte { return bytes.Join(batchBytes(bs), nil) }

// indexFixture is a cleanly written segment whose index files the cases
// below damage.
type indexFixture struct {
	batches     []batchtest.Batch
	dir         string
	offsets     []byte // pristine .index
	times       []byte // pristine .timeindex
	size, next  int64
	sealed      bool
	cfg         *Config
	indexPath   string
	timePath    string
	logSnapshot []byte
	logDirty    bool // an append changed the log: restore it on the next open
}

func newIndexFixture(t *testing.T, sealed bool) *indexFixture {
	rng := rand.New(rand.NewPCG(4, 4))
	dir := scratchDir(t)
	cfg := fastConfig(1 << 20)
	batches := batchtest.RandomBatches(t, rng, 0, 75, 12, 200)
	s, err := Create(cfg, dir, 0)
	require.NoError(t, err)
	appendAll(t, s, batches)
	if sealed {
		require.NoError(t, s.Seal())
	}
	require.NoError(t, s.Close(true))
	fx := &indexFixture{
		batches: batches, dir: dir, sealed: sealed, cfg: cfg,
		size: int64(len(batchtest.Concat(batches))), next: batches[len(batches)-1].Next(),
		indexPath: filepath.Join(dir, FileName(0, IndexSuffix)),
		timePath:  filepath.Join(dir, FileName(0, TimeIndexSuffix)),
	}
	fx.offsets, err = os.ReadFile(fx.indexPath)
	require.NoError(t, err)
	fx.times, err = os.ReadFile(fx.timePath)
	require.NoError(t, err)
	fx.logSnapshot, err = os.ReadFile(logPath(dir, 0))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(fx.offsets)/8, 15, "enough index entries to damage")
	require.GreaterOrEqual(t, len(fx.times)/12, 15)
	return fx
}

// damage writes the index files (nil: delete) and opens the segment.
func (fx *indexFixture) open(t *testing.T, offsets, times []byte) *Segment {
	t.Helper()
	if fx.logDirty {
		require.NoError(t, os.WriteFile(logPath(fx.dir, 0), fx.logSnapshot, 0o600))
		fx.logDirty = false
	}
	for path, data := range map[string][]byte{fx.indexPath: offsets, fx.timePath: times} {
		if data == nil {
			require.NoError(t, os.Remove(path))
		} else {
			require.NoError(t, os.WriteFile(path, data, 0o600))
		}
	}
	if fx.sealed {
		return OpenSealed(fx.cfg, fx.dir, 0, fx.next, fx.size)
	}
	s, _, err := OpenActive(fx.cfg, fx.dir, 0, false)
	require.NoError(t, err)
	return s
}

// check verifies reads of every batch, and time lookups: exactly when the
// time index is intact or detectably damaged, and soundly otherwise.
func (fx *indexFixture) check(t *testing.T, rng *rand.Rand, s *Segment, maxExact bool) {
	t.Helper()
	for i, b := range fx.batches {
		offset := b.Base() + rng.Int64N(b.Next()-b.Base())
		v, err := s.Read(offset, math.MaxInt64, 1)
		require.NoError(t, err, "batch %d", i)
		require.True(t, bytes.Equal(b.Data, v.Data), "batch %d", i)
		v.Release()
	}
	recs := batchtest.Records(fx.batches)
	for range 10 {
		ts := recs[rng.IntN(len(recs))].Timestamp + rng.Int64N(3) - 1
		want := int64(-1)
		for _, r := range recs {
			if r.Timestamp >= ts {
				want = r.Offset
				break
			}
		}
		got, ok, err := s.FindTime(ts, 0, fx.next)
		require.NoError(t, err)
		require.Equal(t, want >= 0, ok)
		require.Equal(t, want, map[bool]int64{true: got, false: -1}[ok], "FindTime(%d)", ts)
	}
	ts, err := s.MaxTimestamp()
	require.NoError(t, err)
	if maxExact {
		require.Equal(t, modelMaxTS(fx.batches), ts)
	} else {
		// A flip that raises the newest time entry passes every check:
		// it can only postpone the segment's time retention.
		require.GreaterOrEqual(t, ts, modelMaxTS(fx.batches))
	}
}

func TestIndexDamage(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "active", true: "sealed"}[sealed]
		t.Run(name, func(t *testing.T) {
			fx := newIndexFixture(t, sealed)
			rng := rand.New(rand.NewPCG(5, 5))
			run := func(t *testing.T, offsets, times []byte, maxExact bool) {
				t.Helper()
				s := fx.open(t, offsets, times)
				fx.check(t, rng, s, maxExact)
				if !sealed && rng.IntN(8) == 0 {
					// Appends go on after whatever the open found.
					fx.logDirty = true
					extra := batchtest.Encode(t, s.Next(), []batchtest.Record{{Timestamp: 1, Value: []byte("x")}})
					_, err := s.Append(extra.Data)
					require.NoError(t, err)
					v, err := s.Read(extra.Base(), math.MaxInt64, 1)
					require.NoError(t, err)
					require.True(t, bytes.Equal(extra.Data, v.Data))
					v.Release()
				}
				require.NoError(t, s.Close(false))
			}
			t.Run("intact", func(t *testing.T) { run(t, fx.offsets, fx.times, true) })
			t.Run("deleted", func(t *testing.T) {
				run(t, nil, fx.times, true)
				run(t, fx.offsets, nil, true)
				run(t, nil, nil, true)
			})
			t.Run("zero length", func(t *testing.T) {
				run(t, []byte{}, fx.times, true)
				run(t, fx.offsets, []byte{}, true)
				run(t, []byte{}, []byte{}, true)
			})
			t.Run("truncated", func(t *testing.T) {
				for n := range len(fx.offsets) {
					run(t, fx.offsets[:n], fx.times, true)
				}
				for n := range len(fx.times) {
					// Lost whole entries pass validation; lookups check
					// the entries they use against the log.
					if n%12 == 0 || n%12 == 5 || n > len(fx.times)-24 {
						run(t, fx.offsets, fx.times[:n], true)
					}
				}
			})
			t.Run("bit flips", func(t *testing.T) {
				for i := range 8 * len(fx.offsets) {
					if i%7 != 0 && i/8 < len(fx.offsets)-16 {
						continue // every bit of the last two entries, a seventh of the rest
					}
					b := bytes.Clone(fx.offsets)
					b[i/8] ^= 1 << (i % 8)
					run(t, b, fx.times, true)
				}
				for i := range 8 * len(fx.times) {
					if i%7 != 0 && i/8 < len(fx.times)-24 {
						continue
					}
					b := bytes.Clone(fx.times)
					b[i/8] ^= 1 << (i % 8)
					run(t, fx.offsets, b, false)
				}
			})
			t.Run("garbage", func(t *testing.T) {
				for range 30 {
					o := make([]byte, 8*(1+rng.IntN(40)))
					tm := make([]byte, 12*(1+rng.IntN(40)))
					for i := range o {
						o[i] = byte(rng.Uint32())
					}
					for i := range tm {
						tm[i] = byte(rng.Uint32())
					}
					run(t, o, fx.times, true)
					run(t, fx.offsets, tm, true)
				}
			})
		})
	}
}

// TestIndexRebuildIsKept: a sealed segment whose indexes had to be rebuilt
// writes them sealed (trimmed), so the next open trusts them instead of
// rebuilding again.
func TestIndexRebuildIsKept(t *testing.T) {
	fx := newIndexFixture(t, true)
	s := fx.open(t, nil, nil)
	fx.check(t, rand.New(rand.NewPCG(6, 6)), s, true)
	require.NoError(t, s.Close(false))
	offsets, err := os.ReadFile(fx.indexPath)
	require.NoError(t, err)
	times, err := os.ReadFile(fx.timePath)
	require.NoError(t, err)
	require.Equal(t, fx.offsets, offsets, "the rebuilt index is the one sealing wrote")
	require.Equal(t, fx.times, times)
}

// TestReadOnlyIndexDamage: with a read-only config, damaged indexes are
// rebuilt on the heap and nothing is written.
func TestReadOnlyIndexDamage(t *testing.T) {
	fx := newIndexFixture(t, true)
	fx.cfg = &Config{Perm: 0o600, MaxBytes: 1 << 20, ReadOnly: true}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range []struct{ offsets, times []byte }{
		{nil, nil}, {[]byte{}, []byte{}}, {fx.offsets[:5], fx.times}, {fx.offsets, fx.times[:7]},
	} {
		s := fx.open(t, c.offsets, c.times)
		fx.check(t, rng, s, true)
		require.NoError(t, s.Close(true))
		for path, want := range map[string][]byte{fx.indexPath: c.offsets, fx.timePath: c.times} {
			got, err := os.ReadFile(path)
			if want == nil {
				require.ErrorIs(t, err, os.ErrNotExist, "nothing is created")
			} else {
				require.NoError(t, err)
				require.Equal(t, want, got, "nothing is changed")
			}
		}
	}
}

// TestConcurrentLazyOpen: the first readers of a sealed segment whose
// indexes must be rebuilt all see the whole segment, not a half-built one.
func TestConcurrentLazyOpen(t *testing.T) {
	fx := newIndexFixture(t, true)
	for round := range 20 {
		s := fx.open(t, nil, map[bool][]byte{false: nil, true: fx.times}[round%2 == 0])
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for r := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := fx.batches[len(fx.batches)-1-r]
				v, err := s.Read(b.Base(), math.MaxInt64, 1)
				if err == nil && !bytes.Equal(b.Data, v.Data) {
					err = fmt.Errorf("round %d reader %d: read %d bytes, want batch %d", round, r, len(v.Data), b.Base())
				}
				v.Release()
				if err == nil {
					var ts int64
					if ts, err = s.MaxTimestamp(); err == nil && ts != modelMaxTS(fx.batches) {
						err = fmt.Errorf("round %d reader %d: max timestamp %d", round, r, ts)
					}
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.NoError(t, s.Close(false))
	}
}

// lyingFS reports log files longer than they are, as if another process
// truncated the file under us: reading the mapping past the real end
// faults.
type lyingFS struct{ noSyncFS }

type lyingFile struct{ vfs.File }

func (fs lyingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.noSyncFS.OpenFile(name, flag, perm)
	if err != nil || filepath.Ext(name) != LogSuffix {
		return f, err
	}
	return lyingFile{f}, nil
}

func (f lyingFile) Size() (int64, error) {
	n, err := f.File.Size()
	return n + 3*4096 + 100, err
}

// TestRecoveryFaultDoesNotCut: an I/O error under the mapping during
// recovery fails the open; it must not be taken for damage and cut.
func TestRecoveryFaultDoesNotCut(t *testing.T) {
	f := newRecoveryFixture(t, 7, 20)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(logPath(dir, 0), f.data, 0o600))
	cfg := &Config{FS: lyingFS{noSyncFS{vfs.Default}}, Perm: 0o600, MaxBytes: 1 << 20}
	_, _, err := OpenActive(cfg, dir, 0, true)
	require.ErrorIs(t, err, mmap.ErrFault)
	got, err := os.ReadFile(logPath(dir, 0))
	require.NoError(t, err)
	require.Equal(t, f.data, got, "nothing was cut")
}

// TestRecoveryIndexFailureDoesNotCut: failing to write an index during
// recovery (a full disk) fails the open; it must not cut the log.
func TestRecoveryIndexFailureDoesNotCut(t *testing.T) {
	f := newRecoveryFixture(t, 8, 30)
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(logPath(dir, 0), f.data, 0o600))
		inj := errorfs.OnPath(suffix, errorfs.Ops(syscall.ENOSPC, errorfs.OpAllocate))
		cfg := &Config{FS: errorfs.Wrap(noSyncFS{vfs.Default}, inj), Perm: 0o600, MaxBytes: 1 << 20}
		_, _, err := OpenActive(cfg, dir, 0, true)
		require.ErrorIs(t, err, syscall.ENOSPC)
		got, err := os.ReadFile(logPath(dir, 0))
		require.NoError(t, err)
		require.Equal(t, f.data, got, "nothing was cut")

		s, rec, err := OpenActive(fastConfig(1<<20), dir, 0, true)
		require.NoError(t, err)
		require.Zero(t, rec.Truncated)
		batchtest.RequireRecords(t, batchtest.Records(f.batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))
		require.NoError(t, s.Close(true))
	}
}

// TestPreallocatedTailNotTruncated: an active segment closed without trim
// keeps its zero-filled preallocation; recovery cuts it silently.
func TestPreallocatedTailNotTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	dir := t.TempDir()
	cfg := &Config{Perm: 0o600, MaxBytes: 1 << 30}
	batches := batchtest.RandomBatches(t, rng, 0, 100, 5, 1000) // past the first 64 KiB, which are not preallocated
	s, err := Create(cfg, dir, 0)
	require.NoError(t, err)
	appendAll(t, s, batches)
	require.NoError(t, s.Sync())
	require.NoError(t, s.Close(false))
	dataSize := int64(len(batchtest.Concat(batches)))
	require.Greater(t, fileSize(t, logPath(dir, 0)), dataSize, "the file was preallocated")

	// Read-only first: nothing may change on disk.
	ro := &Config{Perm: 0o600, MaxBytes: 1 << 30, ReadOnly: true}
	before := fileSize(t, logPath(dir, 0))
	s, rec, err := OpenActive(ro, dir, 0, true)
	require.NoError(t, err)
	require.Zero(t, rec.Truncated)
	require.NoError(t, rec.Cause)
	require.Equal(t, batches[len(batches)-1].Next(), s.Next())
	require.Equal(t, dataSize, s.Size())
	batchtest.RequireRecords(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))
	_, err = s.Append(batchtest.Encode(t, s.Next(), sampleRecords()).Data)
	require.ErrorIs(t, err, ErrSealed)
	require.NoError(t, s.Close(true))
	require.Equal(t, before, fileSize(t, logPath(dir, 0)))

	s, rec, err = OpenActive(cfg, dir, 0, true)
	require.NoError(t, err)
	require.Zero(t, rec.Truncated, "preallocation is not damage")
	require.NoError(t, rec.Cause)
	require.True(t, rec.IndexRebuilt)
	require.Equal(t, dataSize, fileSize(t, logPath(dir, 0)))
	batchtest.RequireRecords(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, s, 0)))
	more := batchtest.Encode(t, s.Next(), sampleRecords())
	_, err = s.Append(more.Data)
	require.NoError(t, err)
	require.NoError(t, s.Close(false))

	// A torn batch in the preallocated area (header written, rest still
	// zero) is damage, and is counted.
	f, err := os.OpenFile(logPath(dir, 0), os.O_RDWR, 0)
	require.NoError(t, err)
	end := dataSize + int64(len(more.Data))
	torn := batchtest.Encode(t, more.Next(), sampleRecords())
	_, err = f.WriteAt(torn.Data[:batch.HeaderSize], end)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s, rec, err = OpenActive(cfg, dir, 0, true)
	require.NoError(t, err)
	require.Equal(t, fileSize(t, logPath(dir, 0)), end)
	require.Positive(t, rec.Truncated)
	require.ErrorIs(t, rec.Cause, batch.ErrCorrupt)
	require.Equal(t, more.Next(), s.Next())
	require.NoError(t, s.Close(true))
}

// TestIndexesDeterministic: the index files are the same whether the log
// was written in one go, across a clean reopen, or rebuilt by recovery, so
// entries land where a reader that rebuilt them would expect.
func TestIndexesDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	batches := batchtest.RandomBatches(t, rng, 0, 120, 10, 150)
	cfg := fastConfig(1 << 20)
	files := func(dir string) [2][]byte {
		o, err := os.ReadFile(filepath.Join(dir, FileName(0, IndexSuffix)))
		require.NoError(t, err)
		tm, err := os.ReadFile(filepath.Join(dir, FileName(0, TimeIndexSuffix)))
		require.NoError(t, err)
		return [2][]byte{o, tm}
	}

	oneGo := t.TempDir()
	s, err := Create(cfg, oneGo, 0)
	require.NoError(t, err)
	appendAll(t, s, batches)
	require.NoError(t, s.Close(true))
	want := files(oneGo)
	require.NotEmpty(t, want[0])

	reopened := t.TempDir()
	s, err = Create(cfg, reopened, 0)
	require.NoError(t, err)
	for i, part := range [][]batchtest.Batch{batches[:37], batches[37:38], batches[38:90], batches[90:]} {
		if i > 0 {
			var rec Recovery
			s, rec, err = OpenActive(cfg, reopened, 0, false)
			require.NoError(t, err)
			require.False(t, rec.IndexRebuilt)
		}
		appendAll(t, s, part)
		require.NoError(t, s.Close(true))
	}
	got := files(reopened)
	require.Equal(t, want[0], got[0], "offset index")
	// Each clean close adds a final time entry (the running maximum at the
	// last offset then); otherwise the time index is the same.
	entries := func(b []byte) map[[12]byte]bool {
		m := map[[12]byte]bool{}
		for i := 0; i+12 <= len(b); i += 12 {
			m[[12]byte(b[i:])] = true
		}
		return m
	}
	gotTimes := entries(got[1])
	for e := range entries(want[1]) {
		require.True(t, gotTimes[e], "time entry %x", e)
	}
	require.LessOrEqual(t, len(gotTimes), len(want[1])/12+3, "at most one more per reopen")

	recovered := t.TempDir()
	require.NoError(t, os.WriteFile(logPath(recovered, 0), batchtest.Concat(batches), 0o600))
	s, _, err = OpenActive(cfg, recovered, 0, true)
	require.NoError(t, err)
	require.NoError(t, s.Close(true))
	require.Equal(t, want, files(recovered))
}
