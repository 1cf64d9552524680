package segment

import (
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

const benchValueBytes = 100

// BenchmarkAppend measures encoding plus appending to a segment (no fsync):
// one op is one batch of 1000 records.
func BenchmarkAppend(b *testing.B) {
	dir := b.TempDir()
	cfg := &Config{Perm: 0o600, MaxBytes: 1 << 30}
	s, err := Create(cfg, dir, 0)
	require.NoError(b, err)
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	b.SetBytes(int64(len(batchtest.BenchBatch(&bld, value, 0))))
	b.ReportAllocs()
	ts := int64(1_700_000_000_000)
	b.ResetTimer()
	for i := range b.N {
		batch := batchtest.BenchBatch(&bld, value, ts+int64(i))
		if s.Size()+int64(len(batch)) > cfg.MaxBytes {
			// Roll, as the log would, outside the measurement.
			b.StopTimer()
			next := s.Next()
			require.NoError(b, s.Delete())
			s, err = Create(cfg, dir, next)
			require.NoError(b, err)
			b.StartTimer()
		}
		batch.SetBaseOffset(s.Next())
		if _, err := s.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchtest.BenchRecords)/b.Elapsed().Seconds(), "records/s")
	require.NoError(b, s.Delete())
}

// BenchmarkReadIterate reads ~1M records back through Read views and
// batch.Iter. One op is one pass over all of them; allocations per op stay
// a handful (per Read, none per record: see TestReadDoesNotAllocate and batch.TestWalkDoesNotAllocate).
func BenchmarkReadIterate(b *testing.B) {
	const total = 1 << 20
	dir := b.TempDir()
	cfg := &Config{Perm: 0o600, MaxBytes: 1 << 30}
	s, err := Create(cfg, dir, 0)
	require.NoError(b, err)
	defer s.Delete()
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	for s.Next() < total {
		batch := batchtest.BenchBatch(&bld, value, s.Next())
		batch.SetBaseOffset(s.Next())
		_, err := s.Append(batch)
		require.NoError(b, err)
	}
	records := s.Next()
	b.SetBytes(s.Size())
	b.ReportAllocs()
	var r batch.Record
	var sum int
	for b.Loop() {
		n := int64(0)
		for from := int64(0); from < records; {
			v, err := s.Read(from, math.MaxInt64, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			for data := v.Data; len(data) > 0; {
				batch := batch.Batch(data[:batch.Batch(data).Size()])
				it := batch.Records()
				for it.Next(&r) {
					sum += len(r.Value)
					n++
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
				from = batch.LastOffset() + 1
				data = data[len(batch):]
			}
			v.Release()
		}
		if n != records {
			b.Fatalf("read %d records, want %d", n, records)
		}
	}
	b.ReportMetric(float64(int64(b.N)*records)/b.Elapsed().Seconds(), "records/s")
	_ = sum
}

// TestReadDoesNotAllocate pins the zero-copy claim at the segment: a Read
// view costs no allocation (the records' walk is pinned in package batch).
func TestReadDoesNotAllocate(t *testing.T) {
	var bld batch.Builder
	b := append(batch.Batch(nil), batchtest.BenchBatch(&bld, make([]byte, benchValueBytes), 0)...)
	s, err := Create(fastConfig(1<<20), t.TempDir(), 0)
	require.NoError(t, err)
	defer s.Close(false)
	_, err = s.Append(b)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(20, func() {
		v, err := s.Read(500, math.MaxInt64, 1<<20)
		if err != nil || len(v.Data) == 0 {
			t.Fatal(err)
		}
		v.Release()
	})
	require.Zero(t, allocs)
}

// BenchmarkRecover measures opening an active segment after a crash: a full
// scan with CRC checks and an index rebuild. The segment holds
// SEGMENT_BENCH_BYTES bytes (default 64 MiB).
func BenchmarkRecover(b *testing.B) {
	size := int64(64 << 20)
	if env := os.Getenv("SEGMENT_BENCH_BYTES"); env != "" {
		n, err := strconv.ParseInt(env, 10, 64)
		require.NoError(b, err)
		size = n
	}
	dir := b.TempDir()
	cfg := &Config{Perm: 0o600, MaxBytes: max(size+(1<<20), 1<<20)}
	s, err := Create(cfg, dir, 0)
	require.NoError(b, err)
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	for s.Size() < size {
		batch := batchtest.BenchBatch(&bld, value, s.Next())
		batch.SetBaseOffset(s.Next())
		_, err := s.Append(batch)
		require.NoError(b, err)
	}
	next, written := s.Next(), s.Size()
	require.NoError(b, s.Close(false))
	b.SetBytes(written)
	b.ReportAllocs()
	for b.Loop() {
		s, rec, err := OpenActive(cfg, dir, 0, true)
		if err != nil || rec.Truncated != 0 || s.Next() != next {
			b.Fatal(err, rec, s.Next())
		}
		if err := s.Close(false); err != nil {
			b.Fatal(err)
		}
	}
}
