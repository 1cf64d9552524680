package segment

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/index"
	"github.com/embedstream/stream/internal/batchtest"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
)

func TestFileName(t *testing.T) {
	require.Equal(t, "00000000000000000000.log", FileName(0, LogSuffix))
	require.Equal(t, "00000000000000001234.index", FileName(1234, IndexSuffix))
	require.Equal(t, "09223372036854775807.timeindex", FileName(math.MaxInt64, TimeIndexSuffix))
}

// findBatch returns the index of the batch holding offset, or len(batches).
func findBatch(batches []batchtest.Batch, offset int64) int {
	for i, b := range batches {
		if offset <= b.Data.LastOffset() {
			return i
		}
	}
	return len(batches)
}

// checkReads compares Read against the model for many (offset, limit,
// maxBytes) combinations.
func checkReads(t *testing.T, rng *rand.Rand, s *Segment, batches []batchtest.Batch, probes int) {
	t.Helper()
	pos := batchtest.Positions(batches)
	base, next := batches[0].Base(), batches[len(batches)-1].Next()
	for range probes {
		offset := base + rng.Int64N(next-base+2) - 1
		limit := offset + 1 + rng.Int64N(next-base+1)
		if rng.IntN(4) == 0 {
			limit = math.MaxInt64
		}
		maxBytes := rng.IntN(3 * int(pos[len(pos)-1]) / len(batches))
		v, err := s.Read(offset, limit, maxBytes)
		require.NoError(t, err)
		first := findBatch(batches, max(offset, base))
		if offset >= next || first == len(batches) || batches[first].Base() >= limit {
			require.Empty(t, v.Data, "Read(%d, %d)", offset, limit)
			v.Release()
			continue
		}
		// Whole batches from the one holding offset, none at or past limit,
		// stopping once maxBytes is reached (but at least one batch).
		last := first
		for last+1 < len(batches) && batches[last+1].Base() < limit && pos[last+1]-pos[first] < int64(maxBytes) {
			last++
		}
		require.Equal(t, batches[first].Base(), batch.Batch(v.Data).BaseOffset(), "Read(%d, %d, %d) start", offset, limit, maxBytes)
		require.Equal(t, int(pos[last+1]-pos[first]), len(v.Data), "Read(%d, %d, %d) length", offset, limit, maxBytes)
		require.True(t, bytes.Equal(batchtest.Concat(batches[first:last+1]), v.Data))
		v.Release()
	}
}

func checkFindTime(t *testing.T, rng *rand.Rand, s *Segment, batches []batchtest.Batch, probes int) {
	t.Helper()
	recs := batchtest.Records(batches)
	next := batches[len(batches)-1].Next()
	var tss []int64
	for _, r := range recs {
		tss = append(tss, r.Timestamp-1, r.Timestamp, r.Timestamp+1)
	}
	tss = append(tss, math.MinInt64, math.MaxInt64)
	for range probes {
		ts := tss[rng.IntN(len(tss))]
		from, limit := int64(0), next
		if rng.IntN(3) == 0 {
			limit = batches[0].Base() + rng.Int64N(next-batches[0].Base()+1)
		}
		if rng.IntN(3) == 0 {
			from = batches[0].Base() + rng.Int64N(next-batches[0].Base()+1)
		}
		wantOK, want := false, int64(0)
		for _, r := range recs {
			if r.Offset >= from && r.Offset < limit && r.Timestamp >= ts {
				wantOK, want = true, r.Offset
				break
			}
		}
		got, ok, err := s.FindTime(ts, from, limit)
		require.NoError(t, err)
		require.Equal(t, wantOK, ok, "FindTime(%d, %d, %d)", ts, from, limit)
		require.Equal(t, want, got, "FindTime(%d, %d, %d)", ts, from, limit)
	}
}

func modelMaxTS(batches []batchtest.Batch) int64 {
	m := int64(math.MinInt64)
	for _, b := range batches {
		m = max(m, b.Data.MaxTimestamp())
	}
	return m
}

func TestAppendReadFindTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	cfg := &Config{Perm: 0o600, MaxBytes: 4 << 20}
	const base = 1000
	batches := batchtest.RandomBatches(t, rng, base, 300, 20, 60)
	s, err := Create(cfg, dir, base)
	require.NoError(t, err)
	require.Equal(t, int64(base), s.Base())
	require.Equal(t, int64(base), s.Next())
	ts, err := s.MaxTimestamp()
	require.NoError(t, err)
	require.Equal(t, int64(math.MinInt64), ts, "empty")
	v, err := s.Read(base, math.MaxInt64, 1)
	require.NoError(t, err)
	require.Empty(t, v.Data)
	_, ok, err := s.FindTime(0, 0, math.MaxInt64)
	require.NoError(t, err)
	require.False(t, ok)

	appendAll(t, s, batches)
	require.Equal(t, int64(len(batchtest.Concat(batches))), s.Size())
	check := func(s *Segment) {
		checkReads(t, rng, s, batches, 300)
		checkFindTime(t, rng, s, batches, 200)
		ts, err := s.MaxTimestamp()
		require.NoError(t, err)
		require.Equal(t, modelMaxTS(batches), ts)
		batchtest.RequireRecords(t, batchtest.Records(batches), batchtest.DecodeAll(t, readBatches(t, s, base)))
	}
	check(s)

	// Clean close, reopen trusting the file.
	require.NoError(t, s.Close(true))
	require.Equal(t, s.Size(), fileSize(t, logPath(dir, base)), "a clean close trims the preallocation")
	s, rec, err := OpenActive(cfg, dir, base, false)
	require.NoError(t, err)
	require.Equal(t, Recovery{}, rec)
	require.Equal(t, batches[len(batches)-1].Next(), s.Next())
	check(s)

	// Keep appending after the reopen, then seal.
	more := batchtest.RandomBatches(t, rng, s.Next(), 50, 20, 60)
	appendAll(t, s, more)
	batches = append(batches, more...)
	check(s)
	require.NoError(t, s.Seal())
	require.Equal(t, s.Size(), fileSize(t, logPath(dir, base)))
	_, err = s.Append(batchtest.Encode(t, s.Next(), batchtest.RandomRecords(rng, 1, 10, new(int64))).Data)
	require.ErrorIs(t, err, ErrSealed)
	check(s)
	require.NoError(t, s.Close(true))

	// As a sealed segment, opened lazily.
	s = OpenSealed(cfg, dir, base, batches[len(batches)-1].Next(), int64(len(batchtest.Concat(batches))))
	require.NoError(t, s.CheckSealed(batches[len(batches)-1].Next()))
	check(s)
	require.Error(t, s.CheckSealed(batches[len(batches)-1].Next()+1), "the next segment must start where this one ends")
	require.NoError(t, s.Close(false))
	_, err = s.Read(base, math.MaxInt64, 1)
	require.ErrorIs(t, err, ErrClosed)
}

func TestAppendRejectsWrongOffset(t *testing.T) {
	s, err := Create(fastConfig(1<<20), t.TempDir(), 10)
	require.NoError(t, err)
	defer s.Close(false)
	b := batchtest.Encode(t, 11, sampleRecords())
	_, err = s.Append(b.Data)
	require.Error(t, err)
	require.Equal(t, int64(10), s.Next())
	require.Zero(t, s.Size())
	b.Data.SetBaseOffset(10)
	pos, err := s.Append(b.Data)
	require.NoError(t, err)
	require.Zero(t, pos)
	_, err = s.Append(b.Data)
	require.Error(t, err, "offsets cannot repeat")
	require.Equal(t, int64(14), s.Next())
}

// TestViewsOutliveDeleteAndClose: a view keeps its mapping alive after the
// segment is closed or deleted (retention must never crash a reader).
func TestViewsOutliveDeleteAndClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	dir := t.TempDir()
	batches := batchtest.RandomBatches(t, rng, 0, 40, 10, 100)
	s, err := Create(fastConfig(1<<20), dir, 0)
	require.NoError(t, err)
	appendAll(t, s, batches)
	v1, err := s.Read(0, math.MaxInt64, math.MaxInt32)
	require.NoError(t, err)
	require.NoError(t, s.Close(false))
	require.True(t, bytes.Equal(batchtest.Concat(batches), v1.Data))

	s, _, err = OpenActive(fastConfig(1<<20), dir, 0, true)
	require.NoError(t, err)
	v3, err := s.Read(0, math.MaxInt64, math.MaxInt32)
	require.NoError(t, err)
	require.NoError(t, s.Delete())
	for _, suffix := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		_, err := os.Stat(filepath.Join(dir, FileName(0, suffix)))
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	require.True(t, bytes.Equal(batchtest.Concat(batches), v3.Data), "the mapping outlives the file")
	_, err = s.Read(0, math.MaxInt64, 1)
	require.ErrorIs(t, err, ErrClosed)
	v1.Release()
	v1.Release() // idempotent
	require.Nil(t, v1.Data)
	v3.Release()
	require.NoError(t, s.Delete(), "deleting twice is fine")
}

// TestConcurrentReadsDuringAppends has readers chase a writer; every view
// holds whole, checksummed batches in offset order. Run with -race.
func TestConcurrentReadsDuringAppends(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	batches := batchtest.RandomBatches(t, rng, 0, 1500, 8, 40)
	s, err := Create(fastConfig(1<<20), t.TempDir(), 0)
	require.NoError(t, err)
	defer s.Close(false)
	var hwm atomic.Int64 // what readers may see, as a partition's high watermark
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			var rec batch.Record
			for reads := 0; !done.Load() || reads < 200; reads++ {
				limit := hwm.Load()
				from := rng.Int64N(limit + 1)
				v, err := s.Read(from, limit, rng.IntN(20000))
				if err != nil {
					errs <- err
					return
				}
				expect := int64(-1)
				for data := v.Data; len(data) > 0; {
					b, err := batch.Parse(data)
					if err != nil {
						errs <- err
						return
					}
					if expect >= 0 && b.BaseOffset() != expect || b.LastOffset() >= limit || expect < 0 && (from < b.BaseOffset() || from > b.LastOffset()) {
						errs <- errors.New("view out of order or past the limit")
						return
					}
					it := b.Records()
					for it.Next(&rec) {
					}
					if it.Err() != nil {
						errs <- it.Err()
						return
					}
					expect = b.LastOffset() + 1
					data = data[len(b):]
				}
				v.Release()
				if rng.IntN(10) == 0 {
					if _, _, err := s.FindTime(rng.Int64N(2_000_000_000_000), 0, limit); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for _, b := range batches {
		_, err := s.Append(b.Data)
		require.NoError(t, err)
		hwm.Store(b.Next())
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestCheckSealedAndRecover(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	dir := t.TempDir()
	cfg := fastConfig(1 << 20)
	batches := batchtest.RandomBatches(t, rng, 500, 60, 10, 100)
	s, err := Create(cfg, dir, 500)
	require.NoError(t, err)
	appendAll(t, s, batches)
	require.NoError(t, s.Seal())
	require.NoError(t, s.Close(true))
	size, next := int64(len(batchtest.Concat(batches))), batches[len(batches)-1].Next()

	// Damage the last batch.
	f, err := os.OpenFile(logPath(dir, 500), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff}, size-3)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s = OpenSealed(cfg, dir, 500, next, size)
	require.ErrorIs(t, s.CheckSealed(next), batch.ErrCorrupt)
	rec, err := s.Recover(next)
	require.NoError(t, err)
	require.Equal(t, int64(len(batches[len(batches)-1].Data)), rec.Truncated)
	require.ErrorIs(t, rec.Cause, batch.ErrCorrupt)
	require.True(t, rec.IndexRebuilt)
	require.Equal(t, 1, rec.Damaged, "the cut tail's offsets are lost")
	require.True(t, s.Sealed())
	good := batches[:len(batches)-1]
	require.Equal(t, next, s.Next(), "the segment still ends where the next begins")
	require.Equal(t, size-rec.Truncated, s.Size())
	batchtest.RequireRecords(t, batchtest.Records(good), batchtest.DecodeAll(t, readBatches(t, s, 500)))
	_, err = s.Read(good[len(good)-1].Next(), next, 1)
	var de *DamageError
	require.ErrorAs(t, err, &de)
	require.Equal(t, next, de.Next)
	checkFindTime(t, rng, s, good, 100)
	require.NoError(t, s.Close(false))
}

func TestCreateAndOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Create(&Config{ReadOnly: true}, dir, 0)
	require.Error(t, err)
	_, _, err = OpenActive(fastConfig(1<<20), dir, 0, true)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = Create(fastConfig(1<<20), filepath.Join(dir, "missing", "dir"), 0)
	require.Error(t, err)
}

func TestIndexFull(t *testing.T) {
	// A small MaxBytes leaves room for only a few index entries; IndexFull
	// must say so before an append fails.
	cfg := fastConfig(6 * index.IntervalBytes)
	s, err := Create(cfg, t.TempDir(), 0)
	require.NoError(t, err)
	defer s.Close(false)
	rng := rand.New(rand.NewPCG(10, 10))
	var ts int64
	for !s.IndexFull() {
		_, err := s.Append(batchtest.Encode(t, s.Next(), batchtest.RandomRecords(rng, 10, 300, &ts)).Data)
		require.NoError(t, err)
		require.Less(t, s.Size(), int64(1<<20), "IndexFull never came")
	}
}

// TestAppendFaults drives the write path's failures through errorfs: each
// failed Append leaves nothing visible and the next one succeeds; after a
// clean close the indexes are valid as written.
func TestAppendFaults(t *testing.T) {
	cases := map[string]errorfs.Injector{
		"log write":            errorfs.OnPath(LogSuffix, errorfs.Ops(syscall.EIO, errorfs.OpWrite)),
		"short log write":      errorfs.OnPath(LogSuffix, errorfs.Ops(errorfs.ShortWrite{Err: syscall.ENOSPC}, errorfs.OpWrite)),
		"log allocate":         errorfs.OnPath(LogSuffix, errorfs.Ops(syscall.ENOSPC, errorfs.OpAllocate)),
		"offset index grows":   errorfs.OnPath(IndexSuffix, errorfs.Ops(syscall.ENOSPC, errorfs.OpAllocate)),
		"time index grows":     errorfs.OnPath(TimeIndexSuffix, errorfs.Ops(syscall.ENOSPC, errorfs.OpAllocate)),
		"time index reopening": errorfs.OnPath(TimeIndexSuffix, errorfs.Ops(syscall.EMFILE, errorfs.OpOpen)),
	}
	for name, inj := range cases {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 11))
			toggle := errorfs.NewToggle(inj)
			cfg := &Config{FS: errorfs.Wrap(noSyncFS{vfs.Default}, toggle), Perm: 0o600, MaxBytes: 1 << 20}
			dir := t.TempDir()
			s, err := Create(cfg, dir, 0)
			require.NoError(t, err)
			var written []batchtest.Batch
			var failures int
			for _, b := range batchtest.RandomBatches(t, rng, 0, 200, 10, 100) {
				size, next := s.Size(), s.Next()
				toggle.Enable()
				_, err := s.Append(b.Data)
				toggle.Disable()
				if err != nil {
					failures++
					require.Equal(t, size, s.Size(), "a failed append shows nothing")
					require.Equal(t, next, s.Next())
					_, err = s.Append(b.Data)
					require.NoError(t, err, "the append after a failed one works")
				}
				written = append(written, b)
			}
			require.Positive(t, failures, "the fault never fired")
			batchtest.RequireRecords(t, batchtest.Records(written), batchtest.DecodeAll(t, readBatches(t, s, 0)))
			require.NoError(t, s.Close(true))

			s, rec, err := OpenActive(cfg, dir, 0, false)
			require.NoError(t, err)
			require.False(t, rec.IndexRebuilt, "indexes written around the failures are valid")
			batchtest.RequireRecords(t, batchtest.Records(written), batchtest.DecodeAll(t, readBatches(t, s, 0)))
			checkFindTime(t, rng, s, written, 100)
			require.NoError(t, s.Close(true))
		})
	}
}

func TestSyncFailureIsSticky(t *testing.T) {
	toggle := errorfs.NewToggle(errorfs.OnPath(LogSuffix, errorfs.Ops(syscall.EIO, errorfs.OpSync)))
	cfg := &Config{FS: errorfs.Wrap(nil, toggle), Perm: 0o600, MaxBytes: 1 << 20}
	dir := t.TempDir()
	s, err := Create(cfg, dir, 0)
	require.NoError(t, err)
	b := batchtest.Encode(t, 0, sampleRecords())
	_, err = s.Append(b.Data)
	require.NoError(t, err)
	toggle.Enable()
	require.ErrorIs(t, s.Sync(), syscall.EIO)
	toggle.Disable()
	require.ErrorIs(t, s.Sync(), syscall.EIO, "a failed fsync cannot be retried")
	_, err = s.Append(batchtest.Encode(t, 4, sampleRecords()).Data)
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorIs(t, s.Seal(), syscall.EIO)
	// Reads of what was written still work; Close reports nothing new.
	require.Len(t, readBatches(t, s, 0), 1)
	require.NoError(t, s.Close(true))
}

// A reader tailing the log maps pages ahead of the end before the writer
// fills them (populateAhead): what the writer writes afterwards must read
// back exactly through those pages, and the mark must move with the log.
func TestTailReadsSeeWritesIntoPopulatedPages(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	batches := batchtest.RandomBatches(t, rng, 0, 3000, 4, 200)
	s, err := Create(fastConfig(64<<20), t.TempDir(), 0)
	require.NoError(t, err)
	defer s.Close(false)
	var size int64
	for i, b := range batches {
		_, err := s.Append(b.Data)
		require.NoError(t, err)
		size += int64(len(b.Data))
		v, err := s.Read(b.Data.BaseOffset(), math.MaxInt64, 1)
		require.NoError(t, err)
		require.Equal(t, []byte(b.Data), v.Data, "batch %d", i)
		v.Release()
	}
	m, err := s.mapping(size)
	require.NoError(t, err)
	defer m.release()
	require.Greater(t, m.populated.Load(), size, "the mark runs ahead of the end")
	require.LessOrEqual(t, m.populated.Load(), s.capacity.Load(), "and stays within the file")
	checkReads(t, rng, s, batches, 300)
}
