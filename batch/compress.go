package batch

import (
	"encoding/binary"
	"fmt"
)

// A compressed batch keeps the header of the batch it was made from, every
// field as it was (record count, offset and timestamp deltas, producer
// fields), but for the codec in attribute bits 0-2, the batch length and
// the CRC; the bytes after the header are the records, laid back to back
// as in an uncompressed batch, compressed together in the codec's framing
// (see Codec). The CRC covers the stored, compressed bytes: checking a
// batch never needs its records decompressed.

// Codec returns the codec of b's records.
func (b Batch) Codec() Codec { return Codec(b.Attributes() & AttrCompressionMask) }

// Compress appends to dst b, which must be uncompressed, with its records
// compressed with c at level (0: the codec's default), and returns the new
// batch. With c None it appends a copy of b. Records that take more than
// MaxUncompressedBytes are refused with ErrUnsupported, as is a level
// CheckLevel refuses.
func Compress(dst []byte, b Batch, c Codec, level int) (Batch, error) {
	if err := CheckLevel(c, level); err != nil {
		return nil, err
	}
	if b.Codec() != None {
		return nil, fmt.Errorf("%w: compress a batch already compressed with %v", ErrUnsupported, b.Codec())
	}
	if n := len(b) - HeaderSize; n > MaxUncompressedBytes {
		return nil, fmt.Errorf("%w: %d bytes of records, over the %d a compressed batch may expand to", ErrUnsupported, n, MaxUncompressedBytes)
	}
	start := len(dst)
	dst = append(dst, b[:HeaderSize]...)
	dst, err := AppendCompressed(dst, c, level, b[HeaderSize:])
	if err != nil {
		return nil, err
	}
	out := Batch(dst[start:])
	attrs := uint16(b.Attributes()&^AttrCompressionMask) | uint16(c)
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-LogOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], out.ComputeCRC())
	return out, nil
}

// Decompress appends to dst b with its records decompressed, and returns
// the new batch, uncompressed, with its length and CRC made to match. An
// uncompressed b is copied. Records that do not decompress, or expand past
// MaxUncompressedBytes, are ErrCorrupt; an unknown codec is ErrUnsupported.
func Decompress(dst []byte, b Batch) (Batch, error) {
	start := len(dst)
	dst, err := expand(dst, b)
	if err != nil {
		return nil, err
	}
	out := Batch(dst[start:])
	binary.BigEndian.PutUint32(out[offCRC:], out.ComputeCRC())
	return out, nil
}

// expand is Decompress without the CRC, which a walk over the records
// does not need: the stored bytes were checked.
func expand(dst []byte, b Batch) ([]byte, error) {
	if len(b) < HeaderSize || b.Size() != len(b) {
		return dst, fmt.Errorf("%w: batch of %d bytes says %d", ErrCorrupt, len(b), b.Size())
	}
	c := b.Codec()
	if !c.Valid() {
		return dst, fmt.Errorf("%w: compression codec %d", ErrUnsupported, int8(c))
	}
	start := len(dst)
	dst = append(dst, b[:HeaderSize]...)
	dst, err := AppendDecompressed(dst, c, b[HeaderSize:], MaxUncompressedBytes)
	if err != nil {
		return dst[:start], err
	}
	out := dst[start:]
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(b.Attributes()&^AttrCompressionMask))
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-LogOverhead))
	return dst, nil
}
