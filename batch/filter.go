package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AttrDeleteHorizon (attribute bit 6, KIP-534) says the batch's
// baseTimestamp holds its delete horizon, the time (ms) after which a log
// cleaner may drop its tombstones (or, for a transaction marker, the
// marker), rather than its first record's timestamp. Records' timestamp
// deltas are rebased on it, so record timestamps read the same.
const AttrDeleteHorizon = 0x40

// DeleteHorizon returns the batch's delete horizon (ms) and whether it has
// one (see AttrDeleteHorizon).
func (b Batch) DeleteHorizon() (int64, bool) {
	if b.Attributes()&AttrDeleteHorizon == 0 {
		return 0, false
	}
	return b.BaseTimestamp(), true
}

// FilterRecord is what Filter shows its keep function of one record.
type FilterRecord struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil for Kafka's null key
	Tombstone bool   // a null value
}

// Filter appends to dst the batch b with only the records keep accepts,
// as a log cleaner rewrites a batch (Kafka's MemoryRecords.filterTo): the
// base offset, producer fields, attributes and lastOffsetDelta stay, so
// every kept record keeps its offset and the batch still spans the offsets
// it spanned (a consumer moves past it to the same next offset, and an
// idempotent producer's last sequence survives); the record count, max
// timestamp (of the kept records, unless the batch stamps LogAppendTime),
// length and CRC are made to match. A compressed batch is recompressed
// with its codec at the default level.
//
// With horizon ≥ 0 and no delete horizon in b yet, the result gets
// horizon as its delete horizon (see AttrDeleteHorizon).
//
// It returns the new batch (aliasing dst's new tail), how many records
// were kept, and whether anything changed: if every record is kept and no
// horizon is set, it appends nothing and returns b itself, so the caller
// copies the stored bytes as they are. If none is kept it appends nothing
// and returns nil with kept 0 (see EmptyBatch). keep is not called for a
// control batch, whose records are always kept: Filter only sets its
// delete horizon (keep may be nil then).
func Filter(dst []byte, b Batch, horizon int64, keep func(*FilterRecord) bool) (out Batch, kept int, changed bool, err error) {
	n := int(b.NumRecords())
	if b.IsControl() {
		if _, has := b.DeleteHorizon(); has || horizon < 0 {
			return b, n, false, nil
		}
	}
	if _, has := b.DeleteHorizon(); has {
		horizon = -1
	}
	flat := b
	if b.Codec() != None {
		raw, err := expand(nil, b)
		if err != nil {
			return nil, 0, false, err
		}
		flat = Batch(raw)
	}
	// First pass: decide, and find each kept record's bytes.
	type span struct{ start, end, tsAt, tsEnd int }
	spans := make([]span, 0, n)
	maxTS := int64(math.MinInt64)
	baseTS := flat.BaseTimestamp()
	d := decoder{b: flat, pos: HeaderSize}
	var fr FilterRecord
	for i := 0; i < n; i++ {
		start := d.pos
		length := d.varint()
		bodyStart := d.pos
		if d.err == nil && (length < 0 || length > int64(len(flat)-bodyStart)) {
			d.fail("record length")
		}
		if d.err != nil {
			return nil, 0, false, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, d.err)
		}
		end := bodyStart + int(length)
		rd := decoder{b: flat[:end], pos: bodyStart + 1}
		tsAt := rd.pos
		tsDelta := rd.varint()
		tsEnd := rd.pos
		offDelta := rd.varint()
		key := rd.bytes()
		valLen := rd.varint()
		if rd.err != nil {
			return nil, 0, false, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, rd.err)
		}
		d.pos = end
		fr = FilterRecord{Offset: b.BaseOffset() + offDelta, Timestamp: baseTS + tsDelta, Key: key, Tombstone: valLen < 0}
		if b.IsControl() || keep(&fr) {
			spans = append(spans, span{start, end, tsAt, tsEnd})
			maxTS = max(maxTS, fr.Timestamp)
		}
	}
	if len(spans) == 0 {
		return nil, 0, true, nil
	}
	if len(spans) == n && horizon < 0 {
		return b, n, false, nil
	}
	start := len(dst)
	dst = append(dst, flat[:HeaderSize]...)
	for _, s := range spans {
		if horizon < 0 {
			dst = append(dst, flat[s.start:s.end]...)
			continue
		}
		// Rebase the timestamp delta on the horizon: the record's length
		// changes with the delta's varint, the rest of its body does not.
		rd := decoder{b: flat, pos: s.tsAt}
		ts := baseTS + rd.varint()
		delta := binary.AppendVarint(nil, ts-horizon)
		body := (s.tsAt - bodyStartOf(flat, s.start)) + len(delta) + (s.end - s.tsEnd)
		dst = binary.AppendVarint(dst, int64(body))
		dst = append(dst, flat[bodyStartOf(flat, s.start):s.tsAt]...)
		dst = append(dst, delta...)
		dst = append(dst, flat[s.tsEnd:s.end]...)
	}
	out = Batch(dst[start:])
	attrs := uint16(b.Attributes() &^ AttrCompressionMask)
	if horizon >= 0 {
		attrs |= AttrDeleteHorizon
		binary.BigEndian.PutUint64(out[offBaseTimestamp:], uint64(horizon))
	}
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(len(spans)))
	if b.Attributes()&AttrLogAppendTime == 0 {
		binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(maxTS))
	}
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-LogOverhead))
	if c := b.Codec(); c != None {
		compressed, err := Compress(dst[:start:start], out, c, 0)
		if err != nil {
			return nil, 0, false, err
		}
		return compressed, len(spans), true, nil
	}
	binary.BigEndian.PutUint32(out[offCRC:], out.ComputeCRC())
	return out, len(spans), true, nil
}

// bodyStartOf returns where the body of the record whose length varint
// starts at pos begins.
func bodyStartOf(data []byte, pos int) int {
	_, n := binary.Varint(data[pos:])
	return pos + n
}

// EmptyBatch appends to dst the header of b alone, with no records, as a
// log cleaner keeps a batch whose records all went but whose offsets must
// stay known (the last batch of an idempotent producer, whose sequence it
// carries; the last batch of a cleaned range): the base offset,
// lastOffsetDelta, producer fields, transactional and control bits and
// max timestamp stay; compression and delete horizon go, the base
// timestamp is -1 and the record count 0 (Kafka's empty batch).
func EmptyBatch(dst []byte, b Batch) Batch {
	start := len(dst)
	dst = append(dst, b[:HeaderSize]...)
	out := Batch(dst[start:])
	attrs := uint16(b.Attributes() &^ (AttrCompressionMask | AttrDeleteHorizon))
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint64(out[offBaseTimestamp:], math.MaxUint64) // -1
	binary.BigEndian.PutUint32(out[offRecordCount:], 0)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(HeaderSize-LogOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], out.ComputeCRC())
	return out
}
