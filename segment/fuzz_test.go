package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeBatch feeds arbitrary bytes to Parse and the record iterator.
// Neither may panic; whatever parses and iterates cleanly re-encodes to the
// same records, and to the same bytes and CRC when the input was in the
// canonical form our Builder writes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(goldenTiny)
	var bld Builder
	bld.Reset(0)
	f.Add([]byte(bld.Finish()))
	bld.Reset(AttrLogAppendTime)
	bld.Add(5, nil, []byte("x"), []Header{{Key: "k", Value: nil}})
	f.Add([]byte(bld.Finish()))
	f.Add([]byte(encode(f, 77, layoutRecords()).Data[:HeaderSize+3]))

	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		// Iterating bytes that never passed Parse must not panic either.
		raw := Batch(data).Records()
		for raw.Next(&r) {
		}

		b, err := Parse(data)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Nil(t, b)
			if CheckHeader(data) != nil {
				return
			}
			// Only the checksum is wrong. Fix it, so the fuzzer explores
			// the records too (it cannot forge a CRC-32C by itself).
			data = bytes.Clone(data)
			fixCRC(data)
			b, err = Parse(data)
			require.NoError(t, err)
		}
		require.Equal(t, b.Size(), len(b))
		require.LessOrEqual(t, len(b), len(data))
		require.True(t, bytes.Equal(data[:len(b)], b))
		require.NoError(t, CheckHeader(data))

		var recs []testRecord
		it := b.Records()
		for it.Next(&r) {
			recs = append(recs, testRecord{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
		if err := it.Err(); err != nil {
			require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupported), "%v", err)
			return
		}
		require.Len(t, recs, int(b.NumRecords()))

		bld := Builder{}
		bld.Reset(b.Attributes())
		for _, r := range recs {
			bld.Add(r.Timestamp, r.Key, r.Value, r.Headers)
		}
		out := bld.Finish()
		out.SetBaseOffset(b.BaseOffset())
		p, err := Parse(out)
		require.NoError(t, err, "our encoding of decoded records parses")
		got := decodeAll(t, []Batch{p})
		require.Len(t, got, len(recs))
		for i := range recs {
			require.Equal(t, b.BaseOffset()+int64(i), got[i].Offset)
			got[i].Offset = recs[i].Offset
			if b.Attributes()&AttrLogAppendTime != 0 {
				got[i].Timestamp = recs[i].Timestamp // the batch's, not the record's
			}
		}
		requireRecords(t, recs, got)

		if canonical(b, recs) {
			require.Equal(t, b.CRC(), out.CRC())
			require.True(t, bytes.Equal(b[offMagic:], out[offMagic:]), "same bytes after the leader epoch")
		}
	})
}

// canonical reports whether b is in the form Builder writes: no producer
// state, dense offsets, the first record at the base timestamp, the true
// maximum timestamp, zero record attributes and minimal varints.
func canonical(b Batch, recs []testRecord) bool {
	if b.Attributes()&AttrLogAppendTime != 0 ||
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
	pos := HeaderSize
	for range recs {
		length, n := binary.Varint(b[pos:])
		if b[pos+n] != 0 {
			return false
		}
		pos += n + int(length)
	}
	size := HeaderSize
	for i, r := range recs {
		size += RecordSize(r.Timestamp-baseTS, int64(i), r.Key, r.Value, r.Headers)
	}
	return size == len(b)
}

// fuzzLog is the segment FuzzRecoverSegment damages: ten batches with
// offsets from 0, over 8 KiB so the indexes have entries.
func fuzzLog(tb testing.TB) []testBatch {
	rng := rand.New(rand.NewPCG(2024, 1))
	batches := randomBatches(tb, rng, 0, 10, 8, 250)
	require.Greater(tb, len(concat(batches)), 2*4096)
	return batches
}

// FuzzRecoverSegment writes a valid segment, truncates it at cut (if cut is
// inside it) and writes patch at at (which may extend the file), then
// recovers it. Recovery must succeed, keep exactly the longest prefix of
// valid, consecutive batches, and leave a segment that takes appends.
func FuzzRecoverSegment(f *testing.F) {
	batches := fuzzLog(f)
	data := concat(batches)
	pos := positions(batches)
	size := uint32(len(data))
	f.Add(size, uint32(0), []byte(nil))                                           // intact
	f.Add(uint32(pos[9]+30), uint32(0), []byte(nil))                              // torn last batch
	f.Add(size, uint32(pos[3]+20), []byte{0xde, 0xad})                            // bad CRC in batch 3
	f.Add(size, uint32(pos[5]+13), []byte{0x7f})                                  // leader epoch only: kept
	f.Add(size, size, make([]byte, 300))                                          // preallocated zeros
	f.Add(size, size, []byte(encode(f, batches[9].next(), layoutRecords()).Data)) // one more good batch
	f.Add(size, size, []byte(encode(f, 5, layoutRecords()).Data))                 // a batch out of sequence

	f.Fuzz(func(t *testing.T, cut, at uint32, patch []byte) {
		if len(patch) > 1<<16 {
			return
		}
		dmg := bytes.Clone(data)
		if cut < size {
			dmg = dmg[:cut]
		}
		if p := int(at % uint32(len(dmg)+1)); p+len(patch) > len(dmg) {
			dmg = append(dmg[:p], patch...)
		} else {
			copy(dmg[p:], patch)
		}

		// The model: the longest prefix of batches that parse, with
		// consecutive offsets from 0.
		var good int
		var next int64
		for good < len(dmg) {
			b, err := Parse(dmg[good:])
			if err != nil || b.BaseOffset() != next {
				break
			}
			good += len(b)
			next = b.LastOffset() + 1
		}
		// Untouched whole batches before the damage are always among them.
		intact := 0
		for intact < len(batches) && pos[intact+1] <= int64(len(dmg)) && bytes.Equal(dmg[pos[intact]:pos[intact+1]], batches[intact].Data) {
			intact++
		}
		require.GreaterOrEqual(t, int64(good), pos[intact])

		dir := scratchDir(t)
		require.NoError(t, os.WriteFile(logPath(dir, 0), dmg, 0o600))
		cfg := fastConfig(1 << 20)
		s, rec, err := OpenActive(cfg, dir, 0, true)
		require.NoError(t, err)
		if allZeroBytes(dmg[good:]) {
			require.Zero(t, rec.Truncated)
		} else {
			require.Equal(t, int64(len(dmg)-good), rec.Truncated)
		}
		for _, b := range readBatches(t, s, 0) { // each passed Parse
			_, err := Parse(b)
			require.NoError(t, err)
		}
		reopenAndAppend(t, cfg, dir, s, dmg[:good], next)
	})
}
