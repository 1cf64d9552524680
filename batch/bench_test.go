package batch_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

const benchValueBytes = 100

// BenchmarkEncode measures the Builder alone: one op is one batch of 1000
// records.
func BenchmarkEncode(b *testing.B) {
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	b.SetBytes(int64(len(batchtest.BenchBatch(&bld, value, 0))))
	b.ReportAllocs()
	ts := int64(1_700_000_000_000)
	for b.Loop() {
		batchtest.BenchBatch(&bld, value, ts)
	}
	b.ReportMetric(float64(b.N*batchtest.BenchRecords)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWalk measures the read path's decoding: one op is a walk over
// 16 batches of 1000 records.
func BenchmarkWalk(b *testing.B) {
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	var data []byte
	for i := range 16 {
		bb := batchtest.BenchBatch(&bld, value, 0)
		bb.SetBaseOffset(int64(i * batchtest.BenchRecords))
		data = append(data, bb...)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var it batch.Iter
	var r batch.Record
	for b.Loop() {
		it.Reset(data, 0)
		n := 0
		for it.Next(&r) {
			n++
		}
		if it.Err() != nil || n != 16*batchtest.BenchRecords {
			b.Fatal(n, it.Err())
		}
	}
	b.ReportMetric(float64(b.N*16*batchtest.BenchRecords)/b.Elapsed().Seconds(), "records/s")
}

// TestWalkDoesNotAllocate pins the zero-copy claim: walking records without
// headers allocates nothing, one batch or many.
func TestWalkDoesNotAllocate(t *testing.T) {
	var bld batch.Builder
	b := append(batch.Batch(nil), batchtest.BenchBatch(&bld, make([]byte, benchValueBytes), 0)...)
	var r batch.Record
	allocs := testing.AllocsPerRun(20, func() {
		it := b.Records()
		for it.Next(&r) {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	})
	require.Zero(t, allocs)
	var it batch.Iter
	allocs = testing.AllocsPerRun(20, func() {
		it.Reset(b, 500)
		for it.Next(&r) {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	})
	require.Zero(t, allocs)
}
