package batch

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Builder encodes records into one batch. The zero value is ready to use; a
// Builder is reused across batches with Reset to avoid allocations.
type Builder struct {
	buf    []byte
	count  int32
	baseTS int64
	maxTS  int64
	attrs  int16
}

// Reset starts a new batch with the given attribute bits.
func (b *Builder) Reset(attrs int16) {
	if cap(b.buf) < HeaderSize {
		b.buf = make([]byte, HeaderSize, 4096)
	}
	b.buf = b.buf[:HeaderSize]
	b.count, b.baseTS, b.maxTS, b.attrs = 0, 0, math.MinInt64, attrs
}

// Count reports the records added since Reset.
func (b *Builder) Count() int { return int(b.count) }

// Len reports the encoded size so far.
func (b *Builder) Len() int {
	if len(b.buf) < HeaderSize {
		return HeaderSize
	}
	return len(b.buf)
}

// RecordSize is the encoded size of a record, including its length prefix,
// given its deltas from the batch base. It bounds what Add will append.
func RecordSize(tsDelta, offsetDelta int64, key, value []byte, headers []Header) int {
	n := bodySize(tsDelta, offsetDelta, key, value, headers)
	return varintLen(int64(n)) + n
}

// MaxRecordOverhead bounds the bytes a record adds beyond its key, value and
// header bytes: the worst-case varints.
func MaxRecordOverhead(headers int) int {
	return 5 + 1 + 10 + 5 + 5 + 5 + 5 + headers*10
}

func bodySize(tsDelta, offsetDelta int64, key, value []byte, headers []Header) int {
	n := 1 + varintLen(tsDelta) + varintLen(offsetDelta) + bytesLen(key) + bytesLen(value) + varintLen(int64(len(headers)))
	for i := range headers {
		n += varintLen(int64(len(headers[i].Key))) + len(headers[i].Key) + bytesLen(headers[i].Value)
	}
	return n
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the size of v as a zigzag varint: 7 bits a byte.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return int(varintBytes[bits.Len64(u)])
}

// varintBytes maps a value's bit length to its varint size.
var varintBytes = [65]uint8{1, 1, 1, 1, 1, 1, 1, 1,
	2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4,
	5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7,
	8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 10}

// Add appends a record with timestamp ts (ms). Offsets are implicit: the
// Nth record added gets baseOffset+N.
func (b *Builder) Add(ts int64, key, value []byte, headers []Header) {
	if len(b.buf) < HeaderSize {
		b.Reset(b.attrs)
	}
	if b.count == 0 {
		b.baseTS = ts
	}
	b.maxTS = max(b.maxTS, ts)
	tsDelta, offDelta := ts-b.baseTS, int64(b.count)
	keyLen, valueLen := fieldLen(key), fieldLen(value)
	body := 1 + varintLen(tsDelta) + varintLen(offDelta) + varintLen(keyLen) + len(key) +
		varintLen(valueLen) + len(value) + varintLen(int64(len(headers)))
	for i := range headers {
		body += varintLen(int64(len(headers[i].Key))) + len(headers[i].Key) + bytesLen(headers[i].Value)
	}
	// Grow once and write in place: appending field by field checks the
	// capacity a dozen times per record, a fifth of the encoding cost.
	n := len(b.buf)
	if cap(b.buf)-n < maxLengthVarint+body {
		b.grow(maxLengthVarint + body)
	}
	buf := b.buf[:cap(b.buf)]
	n = putVarint(buf, n, int64(body))
	buf[n] = 0 // attributes
	n = putVarint(buf, n+1, tsDelta)
	n = putVarint(buf, n, offDelta)
	n = putVarint(buf, n, keyLen)
	if len(key) > 0 { // keyless records are common: skip the call
		n += copy(buf[n:], key)
	}
	n = putVarint(buf, n, valueLen)
	n += copy(buf[n:], value)
	if len(headers) == 0 {
		buf[n] = 0 // header count
		b.buf = buf[:n+1]
		b.count++
		return
	}
	n = putVarint(buf, n, int64(len(headers)))
	for i := range headers {
		n = putVarint(buf, n, int64(len(headers[i].Key)))
		n += copy(buf[n:], headers[i].Key)
		n = putVarint(buf, n, fieldLen(headers[i].Value))
		n += copy(buf[n:], headers[i].Value)
	}
	b.buf = buf[:n]
	b.count++
}

// Cap reports the bytes the Builder's buffer holds, used or not.
func (b *Builder) Cap() int { return cap(b.buf) }

// Grow makes room for n more bytes, as a caller that knows how large the
// batch will be can ask, to fill it without the buffer growing on the way.
func (b *Builder) Grow(n int) {
	if len(b.buf) < HeaderSize {
		b.Reset(b.attrs)
	}
	if cap(b.buf)-len(b.buf) < n {
		b.buf = append(make([]byte, 0, len(b.buf)+n), b.buf...)
	}
}

// grow makes room for n more bytes, doubling the buffer: append's growth
// of large slices (1.25x) would copy a batch growing to hundreds of KiB
// about five times over.
func (b *Builder) grow(n int) {
	grown := make([]byte, len(b.buf), max(2*cap(b.buf), len(b.buf)+n))
	copy(grown, b.buf)
	b.buf = grown
}

// fieldLen is the length written before a nullable field: -1 for nil.
func fieldLen(v []byte) int64 {
	if v == nil {
		return -1
	}
	return int64(len(v))
}

// maxLengthVarint is the most bytes the varint of a record length takes
// (a record is under 2 GiB).
const maxLengthVarint = 5

// putVarint writes v as a zigzag varint at buf[n:], which has room, and
// returns the new end. One-byte varints are written inline.
func putVarint(buf []byte, n int, v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	if u < 0x80 {
		buf[n] = byte(u)
		return n + 1
	}
	return putUvarint(buf, n, u)
}

func putUvarint(buf []byte, n int, u uint64) int {
	for u >= 0x80 {
		buf[n] = byte(u) | 0x80
		u >>= 7
		n++
	}
	buf[n] = byte(u)
	return n + 1
}

// Finish fills in the header and CRC and returns the batch, with base offset
// 0 (see Batch.SetBaseOffset). The batch aliases the Builder's buffer: it is
// valid until the next Reset or Add.
func (b *Builder) Finish() Batch {
	if len(b.buf) < HeaderSize {
		b.Reset(b.attrs)
	}
	h := b.buf
	if b.count == 0 {
		b.maxTS = b.baseTS
	}
	binary.BigEndian.PutUint64(h[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(h[offBatchLength:], uint32(len(h)-LogOverhead))
	binary.BigEndian.PutUint32(h[offLeaderEpoch:], 0)
	h[offMagic] = Magic
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(b.attrs))
	binary.BigEndian.PutUint32(h[offLastOffsetDelta:], uint32(max(b.count-1, 0)))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(b.baseTS))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(b.maxTS))
	binary.BigEndian.PutUint64(h[offProducerID:], math.MaxUint64) // -1
	binary.BigEndian.PutUint16(h[offProducerEpoch:], math.MaxUint16)
	binary.BigEndian.PutUint32(h[offBaseSequence:], math.MaxUint32)
	binary.BigEndian.PutUint32(h[offRecordCount:], uint32(b.count))
	batch := Batch(h)
	binary.BigEndian.PutUint32(h[offCRC:], batch.ComputeCRC())
	return batch
}
