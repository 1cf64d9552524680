package batch_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

const (
	benchRecords    = 1000 // records per batch
	benchValueBytes = 100
)

// benchBatch encodes one batch of benchRecords records with 100-byte values
// and 8-byte keys, no headers (the common case).
func benchBatch(bld *batch.Builder, value []byte, ts int64) batch.Batch {
	var key [8]byte
	bld.Reset(0)
	for i := range benchRecords {
		key[0], key[1] = byte(i), byte(i>>8)
		bld.Add(ts+int64(i), key[:], value, nil)
	}
	return bld.Finish()
}

// BenchmarkEncode measures the Builder alone: one op is one batch of 1000
// records.
func BenchmarkEncode(b *testing.B) {
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	b.SetBytes(int64(len(benchBatch(&bld, value, 0))))
	b.ReportAllocs()
	ts := int64(1_700_000_000_000)
	for b.Loop() {
		benchBatch(&bld, value, ts)
	}
	b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWalk measures the read path's decoding: one op is a walk over
// 16 batches of 1000 records.
func BenchmarkWalk(b *testing.B) {
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	var data []byte
	for i := range 16 {
		bb := benchBatch(&bld, value, 0)
		bb.SetBaseOffset(int64(i * benchRecords))
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
		if it.Err() != nil || n != 16*benchRecords {
			b.Fatal(n, it.Err())
		}
	}
	b.ReportMetric(float64(b.N*16*benchRecords)/b.Elapsed().Seconds(), "records/s")
}

// TestWalkDoesNotAllocate pins the zero-copy claim: walking records without
// headers allocates nothing, one batch or many.
func TestWalkDoesNotAllocate(t *testing.T) {
	var bld batch.Builder
	b := append(batch.Batch(nil), benchBatch(&bld, make([]byte, benchValueBytes), 0)...)
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
