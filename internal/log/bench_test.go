package log

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/embedstream/stream/batch"
)

// benchLog opens a partition with 1 GiB segments in a temp dir.
func benchLog(b *testing.B, policy SyncPolicy) *Log {
	b.Helper()
	p, err := Open(Config{
		Dir: filepath.Join(b.TempDir(), "p"), FilePerm: 0o600, DirPerm: 0o700,
		Settings: Settings{SegmentBytes: 1 << 30, MaxBatchBytes: 4 << 20, Sync: policy},
	}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(false) })
	return p
}

// BenchmarkAppend encodes and appends batches of 1,000 records with
// 100-byte values: the storage half of a batching producer.
func BenchmarkAppend(b *testing.B) {
	p := benchLog(b, SyncNever)
	value := make([]byte, 100)
	var bld batch.Builder
	const perBatch = 1000
	b.SetBytes(perBatch * 100)
	b.ReportAllocs()
	for b.Loop() {
		bld.Reset(0)
		for i := 0; i < perBatch; i++ {
			bld.Add(1_700_000_000_000, nil, value, nil)
		}
		if _, err := p.Append(bld.Finish()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadIterate reads 1M records of 100 bytes from the start
// and walks every record: zero-copy, so no allocation per record.
func BenchmarkReadIterate(b *testing.B) {
	p := benchLog(b, SyncNever)
	value := make([]byte, 100)
	var bld batch.Builder
	const total, perBatch = 1_000_000, 1000
	for i := 0; i < total/perBatch; i++ {
		bld.Reset(0)
		for j := 0; j < perBatch; j++ {
			bld.Add(1_700_000_000_000, nil, value, nil)
		}
		if _, err := p.Append(bld.Finish()); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(total * 100)
	b.ReportAllocs()
	var it batch.Iter
	var r batch.Record
	for b.Loop() {
		n := 0
		for off := int64(0); off < total; {
			v, err := p.Read(off, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			it.Reset(v.Data, off)
			for it.Next(&r) {
				n += len(r.Value)
			}
			off = it.Offset()
			v.Release()
		}
		if n != total*100 {
			b.Fatalf("read %d bytes", n)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSyncAlways64 has 64 goroutines append one-record batches
// under SyncAlways: group commit shares each fsync among them.
func BenchmarkSyncAlways64(b *testing.B) {
	p := benchLog(b, SyncAlways)
	var bld batch.Builder
	bld.Reset(0)
	bld.Add(1_700_000_000_000, nil, make([]byte, 100), nil)
	one := append(batch.Batch(nil), bld.Finish()...)
	const writers = 64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/writers + 1
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			own := append(batch.Batch(nil), one...)
			for i := 0; i < per; i++ {
				if _, err := p.Append(own); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "records/s")
}
