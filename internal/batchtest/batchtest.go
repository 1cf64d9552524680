// Package batchtest builds record batches for tests and compares what is
// read back with what was written: the model the batch, segment and log
// tests share.
package batchtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// Record is the model of one record: what was written, to compare with
// what is read back.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []batch.Header
}

// Batch is an encoded batch (a private copy) with the records it holds.
type Batch struct {
	Data    batch.Batch
	Records []Record
}

// Base is the batch's first offset.
func (b Batch) Base() int64 { return b.Data.BaseOffset() }

// Next is the offset after the batch's last record.
func (b Batch) Next() int64 { return b.Data.LastOffset() + 1 }

// Encode builds one batch at base from recs, setting their Offset fields.
func Encode(t testing.TB, base int64, recs []Record) Batch {
	t.Helper()
	var bld batch.Builder
	bld.Reset(0)
	for i := range recs {
		recs[i].Offset = base + int64(i)
		bld.Add(recs[i].Timestamp, recs[i].Key, recs[i].Value, recs[i].Headers)
	}
	b := bld.Finish()
	b.SetBaseOffset(base)
	return Batch{Data: append(batch.Batch(nil), b...), Records: recs}
}

// RandomRecords makes n records with values of about valueSize bytes and
// timestamps that mostly grow but jitter back and forth; null, empty and
// set keys and values, and repeated header keys, all occur.
func RandomRecords(rng *rand.Rand, n, valueSize int, ts *int64) []Record {
	recs := make([]Record, n)
	for i := range recs {
		*ts += int64(rng.IntN(20))
		r := Record{Timestamp: *ts - int64(rng.IntN(50))}
		switch rng.IntN(8) {
		case 0: // null key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(1000))
		}
		switch rng.IntN(10) {
		case 0: // null value: a tombstone
		case 1:
			r.Value = []byte{}
		default:
			r.Value = make([]byte, 1+rng.IntN(max(2*valueSize, 1)))
			for j := range r.Value {
				r.Value[j] = byte(rng.Uint32())
			}
		}
		if rng.IntN(3) == 0 {
			r.Headers = []batch.Header{{Key: "h", Value: []byte("v")}, {Key: "h", Value: nil}}
		}
		recs[i] = r
	}
	return recs
}

// RandomBatches makes count batches starting at base with 1..maxRecords
// records each.
func RandomBatches(t testing.TB, rng *rand.Rand, base int64, count, maxRecords, valueSize int) []Batch {
	t.Helper()
	ts := int64(1_700_000_000_000)
	out := make([]Batch, 0, count)
	for range count {
		b := Encode(t, base, RandomRecords(rng, 1+rng.IntN(maxRecords), valueSize, &ts))
		out = append(out, b)
		base = b.Next()
	}
	return out
}

// Concat is the bytes of a log holding batches.
func Concat(batches []Batch) []byte {
	var buf []byte
	for _, b := range batches {
		buf = append(buf, b.Data...)
	}
	return buf
}

// Positions returns each batch's start in the log, plus the log's end.
func Positions(batches []Batch) []int64 {
	pos := make([]int64, 0, len(batches)+1)
	var p int64
	for _, b := range batches {
		pos = append(pos, p)
		p += int64(len(b.Data))
	}
	return append(pos, p)
}

// Records is the model of a log holding batches: their records in order.
func Records(batches []Batch) []Record {
	var out []Record
	for _, b := range batches {
		out = append(out, b.Records...)
	}
	return out
}

// DecodeAll decodes every record of batches, each on its own.
func DecodeAll(t testing.TB, batches []batch.Batch) []Record {
	t.Helper()
	var out []Record
	for _, b := range batches {
		it := b.Records()
		var r batch.Record
		for it.Next(&r) {
			out = append(out, Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
		require.NoError(t, it.Err())
	}
	return out
}

// RequireRecords compares records field by field, telling a null from an
// empty key, value or header value.
func RequireRecords(t testing.TB, want, got []Record) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.Offset, g.Offset, "record %d", i)
		require.Equal(t, w.Timestamp, g.Timestamp, "record %d", i)
		RequireBytes(t, w.Key, g.Key, "key of record %d", i)
		RequireBytes(t, w.Value, g.Value, "value of record %d", i)
		require.Len(t, g.Headers, len(w.Headers), "headers of record %d", i)
		for j := range w.Headers {
			require.Equal(t, w.Headers[j].Key, g.Headers[j].Key)
			RequireBytes(t, w.Headers[j].Value, g.Headers[j].Value, "header %d of record %d", j, i)
		}
	}
}

// RequireBytes compares byte slices, nil (Kafka's null) being distinct
// from empty.
func RequireBytes(t testing.TB, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want == nil, got == nil, msgAndArgs...)
	require.True(t, bytes.Equal(want, got), msgAndArgs...)
}

// Byte offsets of header fields tests edit (Kafka's format; see package
// batch).
const (
	OffBatchLength = 8
	OffLeaderEpoch = 12
	OffMagic       = 16
	OffCRC         = 17
)

// FixCRC recomputes a batch's checksum after a test edited it.
func FixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[OffCRC:], batch.Batch(b).ComputeCRC())
}

// BenchRecords is how many records BenchBatch encodes.
const BenchRecords = 1000

// BenchBatch encodes the benchmarks' batch into bld: BenchRecords records
// with 8-byte keys, value, and timestamps from ts, no headers (the common
// case). It aliases bld's buffer.
func BenchBatch(bld *batch.Builder, value []byte, ts int64) batch.Batch {
	var key [8]byte
	bld.Reset(0)
	for i := range BenchRecords {
		key[0], key[1] = byte(i), byte(i>>8)
		bld.Add(ts+int64(i), key[:], value, nil)
	}
	return bld.Finish()
}
