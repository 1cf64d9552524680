// Package batch encodes and decodes Kafka record batches, the unit of every
// log: a Builder writes one, Parse checks one, and Iter walks the records of
// batches laid back to back (as a segment read returns them) from a chosen
// offset, the one read path that readers, consumers and time lookups share.
//
// # Record batch format (Kafka RecordBatch v2, magic 2)
//
// The layout is Apache Kafka's own, byte for byte, so Kafka tooling and any
// Kafka client's codec can read our segments. All integers are big-endian;
// "varint" is a zigzag-encoded base-128 varint (protobuf's sint64, Go's
// binary.AppendVarint). These offsets are part of the on-disk format and must
// not change.
//
//	offset  size  field
//	 0       8    baseOffset            first offset in the batch
//	 8       4    batchLength           bytes from partitionLeaderEpoch to the end
//	12       4    partitionLeaderEpoch  (0: we have one replica)
//	16       1    magic                 2
//	17       4    crc                   CRC-32C (Castagnoli) of bytes 21..end
//	21       2    attributes            bits 0-2 compression (0 = none), 3 timestamp
//	                                    type (1 = LogAppendTime), 4 transactional,
//	                                    5 control batch, 6 delete horizon set
//	23       4    lastOffsetDelta       last offset - baseOffset
//	27       8    baseTimestamp         ms since the epoch; first record's timestamp
//	35       8    maxTimestamp          largest record timestamp in the batch
//	43       8    producerId            -1: not idempotent
//	51       2    producerEpoch         -1
//	53       4    baseSequence          -1
//	57       4    recordCount
//	61            records
//
// Each record:
//
//	varint  length          bytes of the record after this field
//	int8    attributes      0 (unused)
//	varint  timestampDelta  timestamp - baseTimestamp
//	varint  offsetDelta     offset - baseOffset
//	varint  keyLength       -1 for a null key
//	bytes   key
//	varint  valueLength     -1 for a null value
//	bytes   value
//	varint  headerCount
//	        headers: varint keyLength, key (UTF-8), varint valueLength (-1 null), value
//
// The CRC covers everything from attributes to the end but not baseOffset or
// batchLength, so the log assigns offsets by writing the first 8 bytes of an
// encoded batch without recomputing the checksum (as Kafka's broker does).
//
// A batch is self-checking: the CRC covers every record, so a log made of
// batches laid back to back can be verified (and cut after its last good
// batch) without any other framing.
//
// A compressed batch (attribute bits 0-2 name the Codec) has the same
// header; the bytes after it are its records, laid out as above,
// compressed together in the codec's framing (see Compress). The CRC
// covers the stored, compressed bytes, so checking a batch never needs it
// decompressed; reading its records does (Iter, Decompress).
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Byte offsets of the batch header fields. Part of the on-disk format.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// HeaderSize is the size of a batch header, up to the first record.
	HeaderSize = 61
	// LogOverhead is the part of the header that batchLength does not count.
	LogOverhead = 12
	// Magic is the record batch format version we write and read.
	Magic = 2
)

// Attribute bits of a batch.
const (
	AttrCompressionMask = 0x07
	AttrLogAppendTime   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
)

// ErrCorrupt reports bytes that are not a valid record batch: a bad length,
// magic or CRC, a batch cut short, or records that overrun their batch.
var ErrCorrupt = errors.New("corrupt record batch")

// ErrUnsupported reports a valid batch we cannot decode: one whose
// attributes name a compression codec Kafka does not define (5-7).
var ErrUnsupported = errors.New("unsupported record batch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is one encoded record batch. Its methods read fields in place; a Batch
// from a segment aliases the mapped file.
type Batch []byte

// BaseOffset is the offset of the batch's first record.
func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// SetBaseOffset assigns the batch its offsets. It does not touch the CRC,
// which does not cover the field.
func (b Batch) SetBaseOffset(o int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(o)) }

// SetLogAppendTime marks the batch as stamped with the broker's append time
// ts (ms), which readers then report for every record, and recomputes the
// CRC (Kafka's LogAppendTime).
func (b Batch) SetLogAppendTime(ts int64) {
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(b.Attributes()|AttrLogAppendTime))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], b.ComputeCRC())
}

// Size is the batch's total size in bytes.
func (b Batch) Size() int {
	return LogOverhead + int(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
}

// LastOffset is the offset of the batch's last record.
func (b Batch) LastOffset() int64 { return b.BaseOffset() + int64(b.LastOffsetDelta()) }

// LastOffsetDelta is LastOffset - BaseOffset.
func (b Batch) LastOffsetDelta() int32 { return int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])) }

// Attributes returns the attribute bits.
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[offAttributes:])) }

// BaseTimestamp is the first record's timestamp, in ms.
func (b Batch) BaseTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])) }

// MaxTimestamp is the largest record timestamp in the batch, in ms.
func (b Batch) MaxTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])) }

// NumRecords is the number of records the header announces.
func (b Batch) NumRecords() int32 { return int32(binary.BigEndian.Uint32(b[offRecordCount:])) }

// CRC is the checksum stored in the header.
func (b Batch) CRC() uint32 { return binary.BigEndian.Uint32(b[offCRC:]) }

// ComputeCRC computes the checksum the header should hold.
func (b Batch) ComputeCRC() uint32 { return crc32.Checksum(b[offAttributes:b.Size()], castagnoli) }

// IsControl reports a control batch (transaction marker).
func (b Batch) IsControl() bool { return b.Attributes()&AttrControl != 0 }

// CheckHeader validates what can be checked without reading the records:
// enough bytes, a sane length, magic 2, consistent offset deltas. It never
// reads past b.
func CheckHeader(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes, need a %d-byte header", ErrCorrupt, len(b), HeaderSize)
	}
	length := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
	if length < HeaderSize-LogOverhead {
		return fmt.Errorf("%w: batch length %d", ErrCorrupt, length)
	}
	if LogOverhead+length > int64(len(b)) {
		return fmt.Errorf("%w: batch of %d bytes cut short at %d", ErrCorrupt, LogOverhead+length, len(b))
	}
	if b[offMagic] != Magic {
		return fmt.Errorf("%w: magic %d", ErrCorrupt, b[offMagic])
	}
	batch := Batch(b)
	if n, d := batch.NumRecords(), batch.LastOffsetDelta(); d < 0 || n < 0 || (n > 0 && n-1 > d) {
		return fmt.Errorf("%w: %d records with last offset delta %d", ErrCorrupt, n, d)
	}
	if base := batch.BaseOffset(); base < 0 || base > base+int64(batch.LastOffsetDelta()) {
		return fmt.Errorf("%w: base offset %d", ErrCorrupt, base)
	}
	return nil
}

// Find returns the position of the first whole batch in data that passes
// its checks (Parse) and whose base offset want accepts (given its position
// in data): where reading can go on after damaged bytes whose framing is
// lost. A false match would need a CRC collision as well as a plausible
// header; want runs before the CRC, which may cover megabytes.
func Find(data []byte, want func(pos int, base int64) bool) (int, bool) {
	for p := 0; p+HeaderSize <= len(data); p++ {
		// Cheap tests first: this runs at every byte of the damage.
		if data[p+offMagic] != Magic {
			continue
		}
		length := int64(int32(binary.BigEndian.Uint32(data[p+offBatchLength:])))
		if length < HeaderSize-LogOverhead || LogOverhead+length > int64(len(data)-p) ||
			!want(p, Batch(data[p:]).BaseOffset()) {
			continue
		}
		if _, err := Parse(data[p:]); err == nil {
			return p, true
		}
	}
	return 0, false
}

// Parse returns the batch at the start of b after checking its header and
// CRC. It never reads past b and never panics.
func Parse(b []byte) (Batch, error) {
	if err := CheckHeader(b); err != nil {
		return nil, err
	}
	batch := Batch(b)
	batch = batch[:batch.Size()]
	if got, want := batch.ComputeCRC(), batch.CRC(); got != want {
		return nil, fmt.Errorf("%w: crc %#08x, header says %#08x", ErrCorrupt, got, want)
	}
	return batch, nil
}

// ProducerID is the idempotent producer's ID, or -1 for a batch without one.
func (b Batch) ProducerID() int64 { return int64(binary.BigEndian.Uint64(b[offProducerID:])) }

// ProducerEpoch is the idempotent producer's epoch, or -1.
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[offProducerEpoch:])) }

// BaseSequence is the first record's sequence number, or -1.
func (b Batch) BaseSequence() int32 { return int32(binary.BigEndian.Uint32(b[offBaseSequence:])) }

// LastSequence is the last record's sequence number: BaseSequence plus
// LastOffsetDelta, wrapping from math.MaxInt32 to 0 as Kafka's sequences do.
func (b Batch) LastSequence() int32 {
	base, delta := int64(b.BaseSequence()), int64(b.LastOffsetDelta())
	return int32((base + delta) % (math.MaxInt32 + 1))
}

// SetPartitionLeaderEpoch sets the partition leader epoch, which, like the
// base offset, the CRC does not cover.
func (b Batch) SetPartitionLeaderEpoch(e int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e))
}
