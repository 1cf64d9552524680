package batch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// Byte offsets of the producer fields, which canonical checks.
const (
	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53
)

// FuzzDecodeBatch feeds arbitrary bytes to Parse and the record iterator.
// Neither may panic; whatever parses and iterates cleanly re-encodes to the
// same records, and to the same bytes and CRC when the input was in the
// canonical form our Builder writes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(goldenTiny)
	var bld batch.Builder
	bld.Reset(0)
	f.Add([]byte(bld.Finish()))
	bld.Reset(batch.AttrLogAppendTime)
	bld.Add(5, nil, []byte("x"), []batch.Header{{Key: "k", Value: nil}})
	f.Add([]byte(bld.Finish()))
	f.Add([]byte(batchtest.Encode(f, 77, layoutRecords()).Data[:batch.HeaderSize+3]))

	f.Fuzz(func(t *testing.T, data []byte) {
		var r batch.Record
		// Iterating bytes that never passed Parse must not panic either.
		raw := batch.Batch(data).Records()
		for raw.Next(&r) {
		}

		b, err := batch.Parse(data)
		if err != nil {
			require.ErrorIs(t, err, batch.ErrCorrupt)
			require.Nil(t, b)
			if batch.CheckHeader(data) != nil {
				return
			}
			// Only the checksum is wrong. Fix it, so the fuzzer explores
			// the records too (it cannot forge a CRC-32C by itself).
			data = bytes.Clone(data)
			batchtest.FixCRC(data)
			b, err = batch.Parse(data)
			require.NoError(t, err)
		}
		require.Equal(t, b.Size(), len(b))
		require.LessOrEqual(t, len(b), len(data))
		require.True(t, bytes.Equal(data[:len(b)], b))
		require.NoError(t, batch.CheckHeader(data))

		var recs []batchtest.Record
		it := b.Records()
		for it.Next(&r) {
			recs = append(recs, batchtest.Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
		if err := it.Err(); err != nil {
			require.True(t, errors.Is(err, batch.ErrCorrupt) || errors.Is(err, batch.ErrUnsupported), "%v", err)
			return
		}
		require.Len(t, recs, int(b.NumRecords()))

		// The Builder writes records uncompressed: the codec bits would
		// declare a compressed payload it does not write.
		bld := batch.Builder{}
		bld.Reset(b.Attributes() &^ batch.AttrCompressionMask)
		for _, r := range recs {
			bld.Add(r.Timestamp, r.Key, r.Value, r.Headers)
		}
		out := bld.Finish()
		out.SetBaseOffset(b.BaseOffset())
		p, err := batch.Parse(out)
		require.NoError(t, err, "our encoding of decoded records parses")
		got := batchtest.DecodeAll(t, []batch.Batch{p})
		require.Len(t, got, len(recs))
		for i := range recs {
			require.Equal(t, b.BaseOffset()+int64(i), got[i].Offset)
			got[i].Offset = recs[i].Offset
			if b.Attributes()&batch.AttrLogAppendTime != 0 {
				got[i].Timestamp = recs[i].Timestamp // the batch's, not the record's
			}
		}
		batchtest.RequireRecords(t, recs, got)

		if canonical(b, recs) {
			require.Equal(t, b.CRC(), out.CRC())
			require.True(t, bytes.Equal(b[batchtest.OffMagic:], out[batchtest.OffMagic:]), "same bytes after the leader epoch")
		}
	})
}

// canonical reports whether b is in the form Builder writes: no producer
// state, dense offsets, the first record at the base timestamp, the true
// maximum timestamp, zero record attributes and minimal varints.
func canonical(b batch.Batch, recs []batchtest.Record) bool {
	if b.Attributes()&batch.AttrLogAppendTime != 0 || b.Codec() != batch.None ||
		int64(binary.BigEndian.Uint64(b[offProducerID:])) != -1 ||
		int16(binary.BigEndian.Uint16(b[offProducerEpoch:])) != -1 ||
		int32(binary.BigEndian.Uint32(b[offBaseSequence:])) != -1 ||
		int(b.LastOffsetDelta()) != max(len(recs)-1, 0) {
		return false
	}
	baseTS, maxTS := int64(0), int64(math.MinInt64)
	if len(recs) > 0 {
		baseTS = recs[0].Timestamp
	}
	for i, r := range recs {
		if r.Offset != b.BaseOffset()+int64(i) {
			return false
		}
		maxTS = max(maxTS, r.Timestamp)
	}
	if len(recs) == 0 {
		maxTS = baseTS
	}
	if b.BaseTimestamp() != baseTS || b.MaxTimestamp() != maxTS {
		return false
	}
	pos := batch.HeaderSize
	for range recs {
		length, n := binary.Varint(b[pos:])
		if b[pos+n] != 0 {
			return false
		}
		pos += n + int(length)
	}
	size := batch.HeaderSize
	for i, r := range recs {
		size += batch.RecordSize(r.Timestamp-baseTS, int64(i), r.Key, r.Value, r.Headers)
	}
	return size == len(b)
}

// fuzzLimit bounds decompression in FuzzDecompress: the limit's code is
// the same at any size, and a smaller one keeps each run fast.
const fuzzLimit = 256 << 10

// FuzzDecompress feeds arbitrary bytes as the records of a batch of every
// codec (and the unknown ones). Nothing may panic; decompressing fails
// with ErrCorrupt or ErrUnsupported, or yields at most the limit; what
// decompresses compresses and decompresses back to the same bytes, and a
// batch of it walks as its uncompressed form does.
func FuzzDecompress(f *testing.F) {
	recs := batchtest.Encode(f, 0, layoutRecords()).Data
	for _, c := range []batch.Codec{batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		z, err := batch.AppendCompressed(nil, c, 0, recs[batch.HeaderSize:])
		require.NoError(f, err)
		f.Add(z)
		f.Add(z[:len(z)/2])
		flipped := bytes.Clone(z)
		flipped[len(flipped)/3] ^= 0x10
		f.Add(flipped)
	}
	f.Add([]byte(recs[batch.HeaderSize:]))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		for c := batch.Codec(0); c < 8; c++ {
			out, err := batch.AppendDecompressed(nil, c, data, fuzzLimit)
			if err != nil {
				if c.Valid() {
					require.ErrorIs(t, err, batch.ErrCorrupt, "%v", c)
				} else {
					require.ErrorIs(t, err, batch.ErrUnsupported, "%v", c)
				}
				require.Nil(t, out)
				continue
			}
			require.True(t, c.Valid())
			require.LessOrEqual(t, len(out), fuzzLimit)

			z, err := batch.AppendCompressed(nil, c, 0, out)
			require.NoError(t, err)
			back, err := batch.AppendDecompressed(nil, c, z, fuzzLimit)
			require.NoError(t, err, "%v: our own output decompresses", c)
			require.True(t, bytes.Equal(out, back), "%v: round trip", c)

			// As the records of a batch, they walk as the same records
			// uncompressed do: the same ones, or the same error.
			var bld batch.Builder
			bld.Reset(0)
			b := withRecords(bld.Finish(), c, data)
			plain := withRecords(b, batch.None, out)
			d, err := batch.Decompress(nil, b)
			require.NoError(t, err)
			require.True(t, bytes.Equal(plain, d))
			wantRecs, wantErr := walkAll(plain)
			gotRecs, gotErr := walkAll(b)
			require.Equal(t, wantErr != nil, gotErr != nil, "%v: %v, %v", c, wantErr, gotErr)
			batchtest.RequireRecords(t, wantRecs, gotRecs)
		}
	})
}

// walkAll decodes b's records, copying them.
func walkAll(b batch.Batch) ([]batchtest.Record, error) {
	var out []batchtest.Record
	it := b.Records()
	var r batch.Record
	for it.Next(&r) {
		out = append(out, copyRecord(r))
	}
	return out, it.Err()
}
