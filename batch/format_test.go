package batch_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// The tests in this file pin our batches to Apache Kafka's RecordBatch v2
// (https://kafka.apache.org/documentation/#recordbatch). They read fields at
// the spec's byte offsets with encoding/binary rather than through the
// package's accessors, so a change to the codec cannot hide behind a matching
// change to the accessors.

const (
	layoutBaseTS = int64(1_700_000_000_000)
	layoutBase   = int64(1234)
)

// layoutRecords exercises every encoding corner: a key, a null key, an empty
// key, a null value, an empty value, duplicate header keys, an empty header
// key, a null header value, and a negative timestamp delta.
func layoutRecords() []batchtest.Record {
	return []batchtest.Record{
		{Timestamp: layoutBaseTS, Key: []byte("key-0"), Value: []byte("value-0"), Headers: []batch.Header{
			{Key: "h", Value: []byte("a")},
			{Key: "h", Value: nil},
			{Key: "", Value: []byte{}},
		}},
		{Timestamp: layoutBaseTS - 1000, Key: nil, Value: []byte("v1")},
		{Timestamp: layoutBaseTS + 5000, Key: []byte{}, Value: nil},
		{Timestamp: layoutBaseTS + 1, Key: []byte("k3"), Value: []byte{}},
	}
}

// field reads big-endian integers at fixed positions.
type field []byte

func (f field) i64(off int) int64 { return int64(binary.BigEndian.Uint64(f[off:])) }
func (f field) i32(off int) int32 { return int32(binary.BigEndian.Uint32(f[off:])) }
func (f field) i16(off int) int16 { return int16(binary.BigEndian.Uint16(f[off:])) }

// varintReader decodes the zigzag varints of the record section by hand.
type varintReader struct {
	t   *testing.T
	b   []byte
	pos int
}

func (r *varintReader) varint() int64 {
	r.t.Helper()
	v, n := binary.Varint(r.b[r.pos:])
	require.Positive(r.t, n, "varint at %d", r.pos)
	r.pos += n
	return v
}

func (r *varintReader) byte() byte {
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *varintReader) bytes(n int64) []byte {
	v := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return v
}

func TestBatchHeaderLayout(t *testing.T) {
	tb := batchtest.Encode(t, layoutBase, layoutRecords())
	b := []byte(tb.Data)
	f := field(b)

	require.Equal(t, layoutBase, f.i64(0), "baseOffset@0")
	require.Equal(t, int32(len(b)-12), f.i32(8), "batchLength@8 counts the bytes after itself")
	require.Equal(t, int32(0), f.i32(12), "partitionLeaderEpoch@12")
	require.Equal(t, byte(2), b[16], "magic@16")
	want := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	require.Equal(t, want, uint32(f.i32(17)), "crc@17 is CRC-32C of bytes 21..end")
	require.Equal(t, int16(0), f.i16(21), "attributes@21: no compression, CreateTime, not transactional, not control")
	require.Equal(t, int32(3), f.i32(23), "lastOffsetDelta@23")
	require.Equal(t, layoutBaseTS, f.i64(27), "baseTimestamp@27 is the first record's")
	require.Equal(t, layoutBaseTS+5000, f.i64(35), "maxTimestamp@35")
	require.Equal(t, int64(-1), f.i64(43), "producerId@43")
	require.Equal(t, int16(-1), f.i16(51), "producerEpoch@51")
	require.Equal(t, int32(-1), f.i32(53), "baseSequence@53")
	require.Equal(t, int32(4), f.i32(57), "recordCount@57")
	require.Equal(t, 61, batch.HeaderSize, "records@61")

	// The accessors agree with the spec positions.
	require.Equal(t, layoutBase, tb.Data.BaseOffset())
	require.Equal(t, len(b), tb.Data.Size())
	require.Equal(t, layoutBase+3, tb.Data.LastOffset())
	require.Equal(t, layoutBaseTS, tb.Data.BaseTimestamp())
	require.Equal(t, layoutBaseTS+5000, tb.Data.MaxTimestamp())
	require.Equal(t, int32(4), tb.Data.NumRecords())
	require.Equal(t, want, tb.Data.CRC())
	require.Equal(t, want, tb.Data.ComputeCRC())
	require.False(t, tb.Data.IsControl())

	// Record 0, decoded by hand from byte 61.
	r := &varintReader{t: t, b: b, pos: 61}
	length := r.varint()
	bodyStart := r.pos
	require.Equal(t, byte(0), r.byte(), "record attributes")
	require.Equal(t, int64(0), r.varint(), "timestampDelta")
	require.Equal(t, int64(0), r.varint(), "offsetDelta")
	require.Equal(t, int64(5), r.varint(), "keyLength")
	require.Equal(t, "key-0", string(r.bytes(5)))
	require.Equal(t, int64(7), r.varint(), "valueLength")
	require.Equal(t, "value-0", string(r.bytes(7)))
	require.Equal(t, int64(3), r.varint(), "headerCount")
	require.Equal(t, int64(1), r.varint(), "header 0 keyLength")
	require.Equal(t, "h", string(r.bytes(1)))
	require.Equal(t, int64(1), r.varint(), "header 0 valueLength")
	require.Equal(t, "a", string(r.bytes(1)))
	require.Equal(t, int64(1), r.varint(), "header 1 keyLength")
	require.Equal(t, "h", string(r.bytes(1)))
	require.Equal(t, int64(-1), r.varint(), "header 1 value is null")
	require.Equal(t, int64(0), r.varint(), "header 2 key is empty")
	require.Equal(t, int64(0), r.varint(), "header 2 value is empty, not null")
	require.Equal(t, int64(r.pos-bodyStart), length, "record length counts the bytes after itself")

	// Record 1: negative timestamp delta, null key.
	length = r.varint()
	bodyStart = r.pos
	require.Equal(t, byte(0), r.byte())
	require.Equal(t, int64(-1000), r.varint(), "timestampDelta")
	require.Equal(t, int64(1), r.varint(), "offsetDelta")
	require.Equal(t, int64(-1), r.varint(), "null key")
	require.Equal(t, int64(2), r.varint())
	require.Equal(t, "v1", string(r.bytes(2)))
	require.Equal(t, int64(0), r.varint(), "no headers")
	require.Equal(t, int64(r.pos-bodyStart), length)

	// Record 2: empty key, null value.
	length = r.varint()
	bodyStart = r.pos
	require.Equal(t, byte(0), r.byte())
	require.Equal(t, int64(5000), r.varint())
	require.Equal(t, int64(2), r.varint())
	require.Equal(t, int64(0), r.varint(), "empty key")
	require.Equal(t, int64(-1), r.varint(), "null value")
	require.Equal(t, int64(0), r.varint())
	require.Equal(t, int64(r.pos-bodyStart), length)

	// Record 3: empty value; it ends the batch exactly.
	length = r.varint()
	bodyStart = r.pos
	require.Equal(t, byte(0), r.byte())
	require.Equal(t, int64(1), r.varint())
	require.Equal(t, int64(3), r.varint())
	require.Equal(t, int64(2), r.varint())
	require.Equal(t, "k3", string(r.bytes(2)))
	require.Equal(t, int64(0), r.varint(), "empty value")
	require.Equal(t, int64(0), r.varint())
	require.Equal(t, int64(r.pos-bodyStart), length)
	require.Equal(t, len(b), r.pos)
}

func TestBaseOffsetOutsideCRC(t *testing.T) {
	tb := batchtest.Encode(t, 0, layoutRecords())
	crc := tb.Data.CRC()
	for _, base := range []int64{1, 1 << 40, math.MaxInt64 - 10} {
		tb.Data.SetBaseOffset(base)
		require.Equal(t, crc, tb.Data.CRC())
		p, err := batch.Parse(tb.Data)
		require.NoError(t, err)
		require.Equal(t, base, p.BaseOffset())
		require.Equal(t, base+3, p.LastOffset())
	}
	// The leader epoch is outside the CRC too (Kafka rewrites it in place).
	binary.BigEndian.PutUint32(tb.Data[12:], 7)
	_, err := batch.Parse(tb.Data)
	require.NoError(t, err)
}

// goldenTiny is a batch with one record (key "k", value "v", timestamp 1000)
// at base offset 0, derived field by field from the Kafka documentation. The
// CRC was computed with a bit-at-a-time CRC-32C (reflected polynomial
// 0x82F63B78) written from the spec, and the whole batch was cross-checked
// against franz-go's kmsg.RecordBatch/kmsg.Record encoders.
var goldenTiny = []byte{
	0, 0, 0, 0, 0, 0, 0, 0, // baseOffset 0
	0, 0, 0, 58, // batchLength: 70 bytes - 12
	0, 0, 0, 0, // partitionLeaderEpoch 0
	2,                      // magic 2
	0x71, 0x6a, 0x61, 0x89, // crc CRC-32C(bytes 21..69)
	0, 0, // attributes: none
	0, 0, 0, 0, // lastOffsetDelta 0
	0, 0, 0, 0, 0, 0, 0x03, 0xe8, // baseTimestamp 1000
	0, 0, 0, 0, 0, 0, 0x03, 0xe8, // maxTimestamp 1000
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId -1
	0xff, 0xff, // producerEpoch -1
	0xff, 0xff, 0xff, 0xff, // baseSequence -1
	0, 0, 0, 1, // recordCount 1
	// record
	0x10,      // length 8, zigzag varint
	0x00,      // attributes
	0x00,      // timestampDelta 0
	0x00,      // offsetDelta 0
	0x02, 'k', // keyLength 1, key
	0x02, 'v', // valueLength 1, value
	0x00, // headerCount 0
}

// goldenMixed is layoutRecords at base offset 7 with the fourth record's key
// "xxx" and value 70 bytes of 'y', as franz-go (kmsg v1.15.0) encodes it.
// It covers multi-byte varints, negative deltas, nulls and headers.
const goldenMixed = "0000000000000007000000b90000000002f3a8a17e0000000000030000018bcfe568000000018bcfe57b88ffffffffffffff" +
	"ffffffffffffff000000043a0000000a6b65792d310e76616c75652d310604683102610468310100001e00cf0f0201106e75" +
	"6c6c206b6579000e00904e04000100a001000206067878788c01797979797979797979797979797979797979797979797979" +
	"7979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797900"

func TestGoldenTinyBatch(t *testing.T) {
	require.Len(t, goldenTiny, 70)
	require.Equal(t, crc32.Checksum(goldenTiny[21:], crc32.MakeTable(crc32.Castagnoli)), binary.BigEndian.Uint32(goldenTiny[17:]))

	var bld batch.Builder
	bld.Reset(0)
	bld.Add(1000, []byte("k"), []byte("v"), nil)
	require.Equal(t, goldenTiny, []byte(bld.Finish()))

	// And it decodes.
	b, err := batch.Parse(goldenTiny)
	require.NoError(t, err)
	it := b.Records()
	var r batch.Record
	require.True(t, it.Next(&r))
	require.Equal(t, batch.Record{Offset: 0, Timestamp: 1000, Key: []byte("k"), Value: []byte("v")}, r)
	require.False(t, it.Next(&r))
	require.NoError(t, it.Err())
}

func TestGoldenMixedBatch(t *testing.T) {
	golden, err := hex.DecodeString(goldenMixed)
	require.NoError(t, err)
	recs := layoutRecords()
	recs[0].Key, recs[0].Value = []byte("key-1"), []byte("value-1")
	recs[0].Headers[0].Key, recs[0].Headers[1].Key = "h1", "h1"
	recs[1].Value = []byte("null key")
	recs[3].Key, recs[3].Value = []byte("xxx"), bytes.Repeat([]byte("y"), 70)
	tb := batchtest.Encode(t, 7, recs)
	require.Equal(t, hex.EncodeToString(golden), hex.EncodeToString(tb.Data))

	b, err := batch.Parse(golden)
	require.NoError(t, err)
	batchtest.RequireRecords(t, recs, batchtest.DecodeAll(t, []batch.Batch{b}))
}

func TestRoundTrip(t *testing.T) {
	recs := layoutRecords()
	// Duplicate header keys in a chosen order, and many headers.
	for i := range 20 {
		recs[3].Headers = append(recs[3].Headers, batch.Header{Key: string(rune('a' + i%3)), Value: []byte{byte(i)}})
	}
	tb := batchtest.Encode(t, 99, recs)
	b, err := batch.Parse(tb.Data)
	require.NoError(t, err)
	got := batchtest.DecodeAll(t, []batch.Batch{b})
	batchtest.RequireRecords(t, recs, got)

	// Spell out the distinctions that matter most to Kafka users.
	require.NotNil(t, got[0].Key)
	require.Nil(t, got[1].Key, "null key")
	require.NotNil(t, got[2].Key, "empty key is not null")
	require.Empty(t, got[2].Key)
	require.Nil(t, got[2].Value, "null value (tombstone)")
	require.NotNil(t, got[3].Value, "empty value is not null")
	require.Empty(t, got[3].Value)
	require.Equal(t, []batch.Header{{Key: "h", Value: []byte("a")}, {Key: "h", Value: nil}, {Key: "", Value: []byte{}}}, got[0].Headers)
	require.Nil(t, got[0].Headers[1].Value)
	require.NotNil(t, got[0].Headers[2].Value)
	require.Nil(t, got[1].Headers)
	require.Equal(t, []int64{99, 100, 101, 102}, []int64{got[0].Offset, got[1].Offset, got[2].Offset, got[3].Offset})
}

func TestRecordsAliasBatch(t *testing.T) {
	tb := batchtest.Encode(t, 0, []batchtest.Record{{Timestamp: 1, Key: []byte("key"), Value: []byte("value")}})
	it := tb.Data.Records()
	var r batch.Record
	require.True(t, it.Next(&r))
	i := bytes.Index(tb.Data, []byte("value"))
	require.Positive(t, i)
	tb.Data[i] = 'V'
	require.Equal(t, "Value", string(r.Value), "values are not copied")
	require.Equal(t, len(r.Value), cap(r.Value), "capacity is capped so appends cannot scribble on the batch")
}

func TestBuilderZeroValueAndReuse(t *testing.T) {
	var zero batch.Builder
	zero.Add(1000, []byte("k"), []byte("v"), nil)
	require.Equal(t, goldenTiny, []byte(zero.Finish()))

	// A Builder reused across batches produces the same bytes as a fresh one.
	var reused batch.Builder
	reused.Reset(0)
	for i := range 50 {
		reused.Add(int64(i), bytes.Repeat([]byte("x"), 500), nil, []batch.Header{{Key: "k", Value: []byte("v")}})
	}
	reused.Finish()
	reused.Reset(0)
	require.Zero(t, reused.Count())
	require.Equal(t, batch.HeaderSize, reused.Len())
	reused.Add(1000, []byte("k"), []byte("v"), nil)
	require.Equal(t, 1, reused.Count())
	require.Equal(t, len(goldenTiny), reused.Len())
	require.Equal(t, goldenTiny, []byte(reused.Finish()))
}

func TestEmptyBatch(t *testing.T) {
	var bld batch.Builder
	bld.Reset(0)
	b := bld.Finish()
	require.Len(t, b, batch.HeaderSize)
	p, err := batch.Parse(b)
	require.NoError(t, err)
	require.Zero(t, p.NumRecords())
	it := p.Records()
	var r batch.Record
	require.False(t, it.Next(&r))
	require.NoError(t, it.Err())
}

func TestRecordSize(t *testing.T) {
	cases := []struct {
		ts         int64
		key, value []byte
		headers    []batch.Header
	}{
		{0, nil, nil, nil},
		{1, []byte{}, []byte{}, nil},
		{-5000, []byte("k"), bytes.Repeat([]byte("v"), 200), []batch.Header{{Key: "a", Value: nil}}},
		{math.MaxInt32, bytes.Repeat([]byte("k"), 70000), []byte("v"), []batch.Header{{Key: "", Value: []byte{}}, {Key: "x", Value: []byte("y")}}},
	}
	var bld batch.Builder
	bld.Reset(0)
	bld.Add(0, nil, nil, nil)
	for i, c := range cases {
		before := bld.Len()
		size := batch.RecordSize(c.ts, int64(i+1), c.key, c.value, c.headers)
		bld.Add(c.ts, c.key, c.value, c.headers)
		require.Equal(t, size, bld.Len()-before, "case %d", i)
		payload := len(c.key) + len(c.value)
		for _, h := range c.headers {
			payload += len(h.Key) + len(h.Value)
		}
		require.LessOrEqual(t, size, payload+batch.MaxRecordOverhead(len(c.headers)), "case %d", i)
	}
	_, err := batch.Parse(bld.Finish())
	require.NoError(t, err)
}

func TestLogAppendTimeAndControl(t *testing.T) {
	var bld batch.Builder
	bld.Reset(batch.AttrLogAppendTime | batch.AttrControl)
	bld.Add(10, nil, []byte("a"), nil)
	bld.Add(30, nil, []byte("b"), nil)
	bld.Add(20, nil, []byte("c"), nil)
	b, err := batch.Parse(bld.Finish())
	require.NoError(t, err)
	require.True(t, b.IsControl())
	require.Equal(t, int16(batch.AttrLogAppendTime|batch.AttrControl), int16(binary.BigEndian.Uint16(b[21:])))
	it := b.Records()
	var r batch.Record
	for it.Next(&r) {
		require.Equal(t, int64(30), r.Timestamp, "LogAppendTime: every record has the batch's max timestamp")
	}
	require.NoError(t, it.Err())
}

// TestUnknownCodecUnsupported: a batch with codec 5, 6 or 7 in its
// attributes is a valid batch whose records we cannot read, so every way
// in says ErrUnsupported; one that claims gzip but holds plain records is
// damage, ErrCorrupt.
func TestUnknownCodecUnsupported(t *testing.T) {
	for _, c := range []batch.Codec{5, 6, 7} {
		tb := batchtest.Encode(t, 0, layoutRecords())
		binary.BigEndian.PutUint16(tb.Data[21:], uint16(c))
		batchtest.FixCRC(tb.Data)
		b, err := batch.Parse(tb.Data)
		require.NoError(t, err, "a batch of codec %d is a valid batch", c)
		require.Equal(t, c, b.Codec())
		require.False(t, c.Valid())
		it := b.Records()
		var r batch.Record
		require.False(t, it.Next(&r))
		require.ErrorIs(t, it.Err(), batch.ErrUnsupported)
		_, err = batch.Decompress(nil, b)
		require.ErrorIs(t, err, batch.ErrUnsupported)
		_, err = batch.AppendDecompressed(nil, c, b[batch.HeaderSize:], batch.MaxUncompressedBytes)
		require.ErrorIs(t, err, batch.ErrUnsupported)
		_, err = batch.AppendCompressed(nil, c, 0, b[batch.HeaderSize:])
		require.ErrorIs(t, err, batch.ErrUnsupported)
	}

	tb := batchtest.Encode(t, 0, layoutRecords())
	binary.BigEndian.PutUint16(tb.Data[21:], uint16(batch.Gzip))
	batchtest.FixCRC(tb.Data)
	it := tb.Data.Records()
	var r batch.Record
	require.False(t, it.Next(&r))
	require.ErrorIs(t, it.Err(), batch.ErrCorrupt)
}

func TestParseRejects(t *testing.T) {
	good := batchtest.Encode(t, 5, layoutRecords()).Data
	edit := func(fn func(b []byte), fix bool) []byte {
		b := append([]byte(nil), good...)
		fn(b)
		if fix {
			batchtest.FixCRC(b)
		}
		return b
	}
	cases := map[string][]byte{
		"empty":                 nil,
		"short header":          good[:batch.HeaderSize-1],
		"cut short":             good[:len(good)-1],
		"bad crc":               edit(func(b []byte) { b[len(b)-1] ^= 1 }, false),
		"crc field":             edit(func(b []byte) { b[batchtest.OffCRC] ^= 0x80 }, false),
		"magic 1":               edit(func(b []byte) { b[batchtest.OffMagic] = 1 }, false),
		"negative length":       edit(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 0xfffffff0) }, false),
		"length below header":   edit(func(b []byte) { binary.BigEndian.PutUint32(b[8:], batch.HeaderSize-batch.LogOverhead-1) }, false),
		"length past the end":   edit(func(b []byte) { binary.BigEndian.PutUint32(b[8:], uint32(len(b))) }, false),
		"huge length":           edit(func(b []byte) { binary.BigEndian.PutUint32(b[8:], math.MaxInt32) }, false),
		"count beyond delta":    edit(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 5) }, true),
		"negative count":        edit(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 0xffffffff) }, true),
		"negative delta":        edit(func(b []byte) { binary.BigEndian.PutUint32(b[23:], 0xffffffff) }, true),
		"negative base":         edit(func(b []byte) { binary.BigEndian.PutUint64(b[0:], 1<<63) }, false),
		"last offset overflows": edit(func(b []byte) { binary.BigEndian.PutUint64(b[0:], math.MaxInt64-1) }, false),
		"zeros":                 make([]byte, 200),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := batch.Parse(b)
			require.ErrorIs(t, err, batch.ErrCorrupt)
		})
	}

	// Bytes after the batch are not its business.
	p, err := batch.Parse(append(append([]byte(nil), good...), 1, 2, 3))
	require.NoError(t, err)
	require.Len(t, p, len(good))
}

func TestRecordIterRejects(t *testing.T) {
	good := batchtest.Encode(t, 0, layoutRecords()).Data
	iterErr := func(b []byte) error {
		p, err := batch.Parse(b)
		require.NoError(t, err)
		it := p.Records()
		var r batch.Record
		for it.Next(&r) {
		}
		return it.Err()
	}
	require.NoError(t, iterErr(good))

	grow := func(extra ...byte) []byte {
		b := append(append([]byte(nil), good...), extra...)
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batch.LogOverhead))
		batchtest.FixCRC(b)
		return b
	}
	// Trailing garbage inside the batch after the announced records.
	require.ErrorIs(t, iterErr(grow(0)), batch.ErrCorrupt)

	// More records announced than present.
	b := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(b[57:], 4)
	binary.BigEndian.PutUint32(b[23:], 4)
	batchtest.FixCRC(b)
	require.NoError(t, iterErr(b)) // delta 4 with 4 records is allowed by Kafka (compaction gaps)
	binary.BigEndian.PutUint32(b[57:], 5)
	batchtest.FixCRC(b)
	require.ErrorIs(t, iterErr(b), batch.ErrCorrupt)

	// Fewer records announced than present.
	b = append([]byte(nil), good...)
	binary.BigEndian.PutUint32(b[57:], 3)
	batchtest.FixCRC(b)
	require.ErrorIs(t, iterErr(b), batch.ErrCorrupt)

	// A record length that overruns the batch.
	b = append([]byte(nil), good...)
	b[batch.HeaderSize] = 0x7e // 63
	batchtest.FixCRC(b)
	require.ErrorIs(t, iterErr(b), batch.ErrCorrupt)

	// A null header key.
	tb := batchtest.Encode(t, 0, []batchtest.Record{{Timestamp: 1, Headers: []batch.Header{{Key: "k", Value: []byte("v")}}}})
	b = tb.Data
	i := bytes.Index(b, []byte{0x02, 'k', 0x02, 'v'})
	require.Positive(t, i)
	b[i] = 0x01 // keyLength -1
	b[i+1] = 0x00
	batchtest.FixCRC(b)
	require.ErrorIs(t, iterErr(b), batch.ErrCorrupt)
}

func TestRecordsOnMalformedBytesDoNotPanic(t *testing.T) {
	good := batchtest.Encode(t, 0, layoutRecords()).Data
	inputs := [][]byte{nil, good[:10], good[:batch.HeaderSize]}
	for _, length := range []uint32{0, 1, 48, 0x80000000, 0xffffffff, uint32(len(good))} {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[8:], length)
		inputs = append(inputs, b)
	}
	for i, b := range inputs {
		it := batch.Batch(b).Records()
		var r batch.Record
		for it.Next(&r) {
		}
		if err := it.Err(); err != nil {
			require.True(t, errors.Is(err, batch.ErrCorrupt), "input %d: %v", i, err)
		}
	}
	// Too short to hold a header: an error, not a panic.
	it := batch.Batch(good[:10]).Records()
	var r batch.Record
	require.False(t, it.Next(&r))
	require.ErrorIs(t, it.Err(), batch.ErrCorrupt)
}

// TestFind finds the first valid batch its filter accepts after garbage,
// skipping look-alikes that fail the filter or their CRC.
func TestFind(t *testing.T) {
	var bld batch.Builder
	bld.Reset(0)
	bld.Add(1, []byte("k"), []byte("v"), nil)
	good := batch.Batch(bytes.Clone(bld.Finish()))
	good.SetBaseOffset(40)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1 // fails its CRC
	data := append(append(append([]byte("garbage"), bad...), make([]byte, 9)...), good...)
	all := func(int, int64) bool { return true }
	p, ok := batch.Find(data, all)
	require.True(t, ok)
	require.Equal(t, len(data)-len(good), p)
	_, ok = batch.Find(data, func(_ int, base int64) bool { return base > 40 })
	require.False(t, ok, "the filter runs on every candidate")
	_, ok = batch.Find(data[:len(data)-1], all)
	require.False(t, ok, "a cut batch is not found")
}
