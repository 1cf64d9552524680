package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Header is a record header: an ordered key/value pair. Keys need not be
// unique. A nil Value is Kafka's null.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Key, Value and header values alias the batch
// they came from: they are valid only as long as its bytes are.
type Record struct {
	Offset    int64
	Timestamp int64 // ms since the epoch
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Records returns an iterator over the records of b alone, control records
// included, decompressing them if b is compressed. b should have passed
// Parse; the iterator still bounds-checks every field, so malformed bytes
// end iteration with ErrCorrupt rather than a panic.
func (b Batch) Records() Iter {
	it := Iter{from: math.MinInt64, minTS: math.MinInt64, next: math.MinInt64, keepControl: true}
	it.start(b)
	return it
}

// Iter walks records without copying keys or values: those of one batch
// (Batch.Records), or those of whole batches laid back to back, as a
// segment read returns them, from an offset on (Reset). It is the one read
// path of the log: readers, consumers and time lookups all walk through it,
// so a change to how records are read is made here once.
//
// A walk started with Reset skips, without decoding them, batches that end
// below its offset, control batches (transaction markers: they take offsets
// but hold no records for readers) and, after SkipOlder, batches whose
// newest record is too old; it also skips the records of the first batch
// that come before the offset. Records of uncompressed batches alias the
// walked bytes and are valid as long as those are; records of compressed
// ones alias the walk's own buffer, and are valid until the walk starts
// another compressed batch, or after KeepDecompressed until Recycle. A
// walk in steady state allocates nothing for either.
type Iter struct {
	// The batch being decoded: batch[pos:] holds its remaining records.
	batch        Batch
	pos          int
	remaining    int32
	base, baseTS int64
	logAppendTS  int64
	useLogAppend bool

	rest        []byte // whole batches after the current one
	from        int64  // records below this offset are skipped
	minTS       int64  // records older than this (ms) are skipped
	filter      bool   // some records of the current batch may be skipped
	next        int64  // offset after the last record returned or skipped
	keepControl bool   // Batch.Records: decode a control batch's records too
	abort       *AbortFilter
	err         error

	// Where compressed batches are decompressed to, their records decoded
	// from: reused from batch to batch, or (keep) from Recycle to Recycle.
	arena   []byte
	keep    bool
	spent   int  // bytes of arenas that overflowed since the last Recycle (keep)
	decoded bool // the current batch is a decompressed copy

	// (keep) A decompressed batch the last walk stopped inside, from
	// source carryKey, kept at the arena's front by Recycle so that the next
	// walk over it resumes without decompressing it again.
	carry    []byte
	carryKey any
	source   any // what the walked bytes are (SetSource)
}

// Reset starts a walk over data, whole batches laid back to back, at offset
// from.
func (it *Iter) Reset(data []byte, from int64) {
	*it = Iter{rest: data, from: from, minTS: math.MinInt64, next: from, arena: it.arena, keep: it.keep, spent: it.spent,
		carry: it.carry, carryKey: it.carryKey}
}

// SkipOlder makes the walk skip records whose timestamp is below ts (ms),
// and whole batches whose newest record is: a lookup by time decodes only
// the batch that holds its answer.
func (it *Iter) SkipOlder(ts int64) { it.minTS = ts }

// SkipAborted makes the walk skip the batches f hides from a
// read_committed reader (see AbortFilter); f sees every batch of the walk,
// in order. Set it after each Reset.
func (it *Iter) SkipAborted(f *AbortFilter) { it.abort = f }

// KeepControl makes the walk yield the records of control batches too, as a
// lookup by time does: Kafka's offsetsForTimes counts transaction markers.
func (it *Iter) KeepControl() { it.keepControl = true }

// Offset is the offset after the last record the walk returned or skipped,
// and never below its starting offset: where reading continues once the
// walked bytes are used up.
func (it *Iter) Offset() int64 { return it.next }

// Err reports why the walk stopped early, or nil once the bytes were used up.
func (it *Iter) Err() error { return it.err }

// Resume is, after Err reports a batch it could not decode, the offset after
// that batch: where reading can go on past it.
func (it *Iter) Resume() int64 {
	if it.err != nil && len(it.batch) >= HeaderSize {
		return max(it.next, it.batch.LastOffset()+1)
	}
	return it.next
}

// start begins decoding b, decompressing its records if it is compressed.
func (it *Iter) start(b Batch) {
	it.batch, it.pos, it.remaining, it.decoded = b, HeaderSize, 0, false
	if len(b) < HeaderSize {
		it.err = fmt.Errorf("%w: %d-byte batch", ErrCorrupt, len(b))
		return
	}
	switch end := b.Size(); {
	case end < HeaderSize:
		// A negative or too-small batchLength (possible in unparsed bytes).
		it.err = fmt.Errorf("%w: batch length %d", ErrCorrupt, end-LogOverhead)
		return
	case end <= len(b):
		b = b[:end]
		it.batch = b
	}
	if b.Codec() != None {
		if it.carried(b) {
			it.batch, it.carry = Batch(it.carry), nil
		} else if it.err = it.decompress(b); it.err != nil {
			return
		}
		it.decoded = true
	}
	it.remaining = b.NumRecords()
	it.base, it.baseTS = b.BaseOffset(), b.BaseTimestamp()
	it.useLogAppend = b.Attributes()&AttrLogAppendTime != 0
	if it.useLogAppend {
		it.logAppendTS = b.MaxTimestamp()
	}
}

// decompress makes the walk decode b's records from their decompressed
// copy in the arena: after what it holds if the walk keeps them
// (KeepDecompressed), else over what it held. An arena too small is
// replaced, not copied: records returned before alias the old one, which
// lives on as long as they do.
func (it *Iter) decompress(b Batch) error {
	at := len(it.arena)
	if !it.keep {
		at = 0
	}
	region := it.arena[at:at]
	out, err := expand(region, b)
	if err != nil {
		return err
	}
	if cap(out) == cap(region) { // decompressed in place: appending never shrinks capacity
		it.arena = it.arena[:at+len(out)]
	} else {
		if it.keep {
			it.spent += at
		}
		it.arena = out
	}
	it.batch = Batch(out)
	return nil
}

// SetSource names what the bytes of the walk since Reset are, with a
// comparable key (a partition, say). A walk that keeps its records
// (KeepDecompressed) and stops inside a compressed batch keeps that batch
// decompressed through Recycle, for the next walk of the same source that
// starts in it: a consumer whose Poll ends in the middle of a batch does
// not decompress it again at every Poll.
func (it *Iter) SetSource(key any) { it.source = key }

// carried reports whether the carried batch is b, from this walk's source.
func (it *Iter) carried(b Batch) bool {
	if it.carry == nil || it.source == nil || it.source != it.carryKey {
		return false
	}
	c := Batch(it.carry)
	return c.BaseOffset() == b.BaseOffset() && c.CRC() == b.CRC() &&
		c.NumRecords() == b.NumRecords() && c.LastOffsetDelta() == b.LastOffsetDelta() &&
		c.MaxTimestamp() == b.MaxTimestamp()
}

// KeepDecompressed makes records of compressed batches stay valid across
// batches and Resets, until Recycle: a consumer's Poll returns records of
// many batches together. By default each compressed batch the walk meets
// reuses the memory of the one before, as a reader handing out one record
// at a time can.
func (it *Iter) KeepDecompressed() { it.keep = true }

// Recycle lets the walk reuse the memory records of compressed batches
// were decompressed into: records it returned before are invalid after.
// An arena that overflowed went on in pieces, each sized by what was left
// of the one before; one arena as large as all of them replaces them, so
// that a steady stream of Polls allocates nothing.
//
// A batch the walk stopped inside (see SetSource), or one carried before
// and not yet resumed, moves to the arena's front and stays.
func (it *Iter) Recycle() {
	var carry []byte
	switch {
	case it.keep && it.decoded && it.err == nil && it.remaining > 0 && it.source != nil:
		carry, it.carryKey = it.batch, it.source
	case it.carry != nil:
		carry = it.carry
	}
	if it.spent > 0 {
		it.arena = make([]byte, 0, it.spent+cap(it.arena))
	}
	it.arena, it.spent, it.carry = it.arena[:0], 0, nil
	if carry != nil {
		if cap(it.arena) < len(carry) {
			it.arena = make([]byte, 0, len(carry))
		}
		it.carry = it.arena[:len(carry)]
		copy(it.carry, carry) // may overlap: copy moves
		it.arena = it.carry
	}
	// The walk is over: what it was in may just have moved.
	it.batch, it.remaining, it.decoded = nil, 0, false
}

// nextBatch finishes the current batch and starts the next one the walk
// does not skip, reporting whether there is one.
func (it *Iter) nextBatch() bool {
	if it.err != nil {
		return false
	}
	if it.batch != nil {
		if it.pos != len(it.batch) {
			it.err = fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(it.batch)-it.pos)
			return false
		}
		if len(it.batch) >= HeaderSize {
			it.next = max(it.next, it.batch.LastOffset()+1)
		}
		it.batch = nil
	}
	for len(it.rest) > 0 {
		if len(it.rest) < HeaderSize {
			it.err = fmt.Errorf("%w: %d bytes, need a %d-byte header", ErrCorrupt, len(it.rest), HeaderSize)
			return false
		}
		size := Batch(it.rest).Size()
		if size < HeaderSize || size > len(it.rest) {
			it.err = fmt.Errorf("%w: batch of %d bytes in %d", ErrCorrupt, size, len(it.rest))
			return false
		}
		b := Batch(it.rest[:size:size])
		it.rest = it.rest[size:]
		if it.abort != nil && it.abort.Skip(b) {
			it.next = max(it.next, b.LastOffset()+1)
			continue
		}
		if b.LastOffset() < it.from || b.MaxTimestamp() < it.minTS || b.IsControl() && !it.keepControl {
			it.next = max(it.next, b.LastOffset()+1)
			continue
		}
		it.start(b)
		it.filter = b.BaseOffset() < it.from || it.minTS != math.MinInt64
		return it.err == nil
	}
	return false
}

// Next decodes the next record into r and reports whether there was one.
// After it returns false, Err tells whether the walk ended cleanly.
func (it *Iter) Next(r *Record) bool {
	for {
		if it.remaining <= 0 || it.err != nil {
			if !it.nextBatch() {
				return false
			}
			continue
		}
		d := decoder{b: it.batch, pos: it.pos}
		length := d.varint()
		start := d.pos
		if d.err == nil && (length < 0 || length > int64(len(it.batch)-start)) {
			d.fail("record length")
		}
		end := start
		if d.err == nil { // a bad (say negative) length must not cut d.b
			end += int(length)
		}
		d.b = it.batch[:min(end, len(it.batch))]
		d.pos++ // attributes
		tsDelta := d.varint()
		offDelta := d.varint()
		key := d.bytes()
		value := d.bytes()
		nh := d.varint()
		var headers []Header
		if d.err == nil && (nh < 0 || nh > int64(end-d.pos)) {
			d.fail("header count")
		}
		if d.err == nil && nh > 0 {
			headers = make([]Header, nh)
			for i := range headers {
				hk := d.bytes()
				if hk == nil && d.err == nil {
					d.fail("null header key")
				}
				headers[i] = Header{Key: string(hk), Value: d.bytes()}
			}
		}
		if d.err == nil && d.pos != end {
			d.fail("record length mismatch")
		}
		if d.err != nil {
			it.err = fmt.Errorf("%w: record %d: %v", ErrCorrupt, it.batch.NumRecords()-it.remaining, d.err)
			return false
		}
		it.pos = end
		it.remaining--
		r.Offset = it.base + offDelta
		r.Timestamp = it.baseTS + tsDelta
		if it.useLogAppend {
			r.Timestamp = it.logAppendTS
		}
		if it.filter && (r.Offset < it.from || r.Timestamp < it.minTS) {
			it.next = max(it.next, r.Offset+1)
			continue
		}
		r.Key, r.Value, r.Headers = key, value, headers
		it.next = r.Offset + 1
		return true
	}
}

// decoder reads varints and length-prefixed bytes with a sticky error.
type decoder struct {
	b   []byte
	pos int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("bad %s at byte %d", what, d.pos)
	}
}

// varint decodes a zigzag varint. One and two bytes (deltas, null keys,
// header counts; record and value lengths under 8 KiB) are decoded here,
// the rest in varintSlow.
// After an error it may go on reading (within d.b): callers check d.err
// once the record is decoded and discard what it read.
func (d *decoder) varint() int64 {
	if p := d.pos; p+1 < len(d.b) {
		c := d.b[p]
		if c < 0x80 {
			d.pos++
			return int64(c>>1) ^ -int64(c&1)
		}
		// Two bytes: record lengths, value lengths and offset deltas of
		// batches past 63 records.
		if c1 := d.b[p+1]; c1 < 0x80 {
			u := uint64(c&0x7f) | uint64(c1)<<7
			d.pos += 2
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	return d.varintSlow()
}

func (d *decoder) varintSlow() int64 {
	if d.err != nil {
		return 0
	}
	if d.pos >= len(d.b) {
		d.fail("varint")
		return 0
	}
	v, n := binary.Varint(d.b[d.pos:])
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.pos += n
	return v
}

// bytes returns a length-prefixed field, nil for length -1, aliasing d.b.
func (d *decoder) bytes() []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	if n == -1 {
		return nil
	}
	if n < -1 || n > int64(len(d.b)-d.pos) {
		d.fail("length")
		return nil
	}
	v := d.b[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return v
}
