package batch_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// walk collects what an Iter yields over data from offset from, and where
// it leaves off.
func walk(t *testing.T, data []byte, from, minTS int64) ([]batchtest.Record, int64, error) {
	t.Helper()
	var it batch.Iter
	it.Reset(data, from)
	if minTS != math.MinInt64 {
		it.SkipOlder(minTS)
	}
	var out []batchtest.Record
	var r batch.Record
	for it.Next(&r) {
		out = append(out, batchtest.Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
	}
	return out, it.Offset(), it.Err()
}

// control is a control batch (a transaction marker) of one record at base.
func control(base int64) batchtest.Batch {
	var bld batch.Builder
	bld.Reset(batch.AttrControl | batch.AttrTransactional)
	bld.Add(1_700_000_000_000, []byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 0}, nil)
	b := bld.Finish()
	b.SetBaseOffset(base)
	return batchtest.Batch{Data: append(batch.Batch(nil), b...)}
}

// TestWalkFromEveryOffset walks a log of random batches, with a control
// batch among them, from every offset: it yields exactly the data records
// at and after the offset, in order, and ends at the log's end.
func TestWalkFromEveryOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	batches := batchtest.RandomBatches(t, rng, 100, 5, 6, 20)
	marker := control(batches[4].Next())
	batches = append(batches[:5:5], marker)
	batches = append(batches, batchtest.RandomBatches(t, rng, marker.Next(), 4, 6, 20)...)
	data := batchtest.Concat(batches)
	model := batchtest.Records(batches)
	end := batches[len(batches)-1].Next()

	for from := int64(0); from <= end+1; from++ {
		var want []batchtest.Record
		for _, r := range model {
			if r.Offset >= from {
				want = append(want, r)
			}
		}
		got, next, err := walk(t, data, from, math.MinInt64)
		require.NoError(t, err)
		batchtest.RequireRecords(t, want, got)
		require.Equal(t, max(end, from), next, "from %d", from)
	}
}

// TestWalkSkipsControlAtTheEnd: a marker after the last record still moves
// the walk's offset past it, so a reader resumes after it.
func TestWalkSkipsControlAtTheEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := batchtest.RandomBatches(t, rng, 0, 1, 3, 10)[0]
	m := control(b.Next())
	got, next, err := walk(t, batchtest.Concat([]batchtest.Batch{b, m}), 0, math.MinInt64)
	require.NoError(t, err)
	batchtest.RequireRecords(t, b.Records, got)
	require.Equal(t, m.Next(), next)

	// Batch.Records decodes a control batch's own record.
	it := m.Data.Records()
	var r batch.Record
	require.True(t, it.Next(&r))
	require.Equal(t, m.Base(), r.Offset)
}

// TestWalkSkipOlder finds the first record at or after a time, skipping
// older batches whole, as time lookups do.
func TestWalkSkipOlder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	batches := batchtest.RandomBatches(t, rng, 0, 8, 5, 10)
	data := batchtest.Concat(batches)
	model := batchtest.Records(batches)
	for _, probe := range model {
		ts := probe.Timestamp
		var want []batchtest.Record
		for _, r := range model {
			if r.Timestamp >= ts {
				want = append(want, r)
			}
		}
		got, _, err := walk(t, data, 0, ts)
		require.NoError(t, err)
		batchtest.RequireRecords(t, want, got)
	}
}

// TestWalkRejectsBadFraming: bytes that are not whole batches end the walk
// with ErrCorrupt, never a panic, after the records before them.
func TestWalkRejectsBadFraming(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	batches := batchtest.RandomBatches(t, rng, 0, 2, 3, 10)
	data := batchtest.Concat(batches)
	for cut := 1; cut < len(batches[1].Data); cut++ {
		got, _, err := walk(t, data[:len(data)-cut], 0, math.MinInt64)
		require.ErrorIs(t, err, batch.ErrCorrupt, "cut %d", cut)
		batchtest.RequireRecords(t, batches[0].Records, got)
	}
}

// TestWalkUnknownCodec: a batch of a codec Kafka does not define (5-7)
// stops the walk with ErrUnsupported, after the records before it and with
// Resume past it; one below the starting offset is never decoded.
func TestWalkUnknownCodec(t *testing.T) {
	for _, c := range []uint16{5, 6, 7} {
		rng := rand.New(rand.NewPCG(8, 9))
		batches := batchtest.RandomBatches(t, rng, 0, 3, 3, 10)
		mid := batches[1].Data
		binary.BigEndian.PutUint16(mid[21:], c)
		batchtest.FixCRC(mid)
		data := batchtest.Concat(batches)

		var it batch.Iter
		it.Reset(data, 0)
		var got []batchtest.Record
		var r batch.Record
		for it.Next(&r) {
			got = append(got, copyRecord(r))
		}
		require.ErrorIs(t, it.Err(), batch.ErrUnsupported)
		batchtest.RequireRecords(t, batches[0].Records, got)
		require.Equal(t, batches[1].Base(), it.Offset())
		require.Equal(t, batches[2].Base(), it.Resume())

		got, _, err := walk(t, data, batches[2].Base(), math.MinInt64)
		require.NoError(t, err)
		batchtest.RequireRecords(t, batches[2].Records, got)
	}
}
