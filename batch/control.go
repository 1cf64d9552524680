package batch

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Transactions (Kafka's KIP-98) use two attribute bits. A transactional
// batch (AttrTransactional) belongs to the open transaction of its
// producer ID; a control batch (AttrControl, always transactional too)
// ends it, one per partition the transaction wrote to. A control batch
// holds one record, never returned to readers:
//
//	key    int16 version (0), int16 type (0 abort, 1 commit)
//	value  int16 version (0), int32 coordinator epoch
//
// It carries the producer ID and epoch of the transaction it ends, base
// sequence -1, and the time the marker was written as its timestamp.

// Control record types, the second field of a control record's key.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// IsTransactional reports a batch written inside a transaction (control
// batches included).
func (b Batch) IsTransactional() bool { return b.Attributes()&AttrTransactional != 0 }

// SetProducer stamps b with a producer's ID, epoch and base sequence, and
// marks it transactional if asked, recomputing the CRC: what a Kafka
// producer writes into a batch before sending it.
func (b Batch) SetProducer(id int64, epoch int16, baseSequence int32, transactional bool) {
	attrs := b.Attributes() &^ AttrTransactional
	if transactional {
		attrs |= AttrTransactional
	}
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(id))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(baseSequence))
	binary.BigEndian.PutUint32(b[offCRC:], b.ComputeCRC())
}

// EndTxnMarker returns the control batch that ends producer id's
// transaction in one partition, a commit or an abort, at time ts (ms).
func EndTxnMarker(id int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) Batch {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	var kv [10]byte // key: version 0, type; value: version 0, coordinator epoch
	binary.BigEndian.PutUint16(kv[2:], uint16(typ))
	binary.BigEndian.PutUint32(kv[6:], uint32(coordinatorEpoch))
	// The batch's own buffer, sized for its one record (a Builder's
	// default is 4 KiB, for a marker per partition of every transaction).
	bld := Builder{buf: make([]byte, 0, HeaderSize+32)}
	bld.Reset(AttrTransactional | AttrControl)
	bld.Add(ts, kv[:4], kv[4:], nil)
	b := bld.Finish()
	b.SetProducer(id, epoch, -1, true)
	return b
}

// ControlType returns the type of a control batch's record (ControlAbort
// or ControlCommit), or an error wrapping ErrCorrupt if b is not a control
// batch or its record is not a control record.
func (b Batch) ControlType() (int16, error) {
	if !b.IsControl() {
		return 0, fmt.Errorf("%w: not a control batch", ErrCorrupt)
	}
	it := b.Records()
	var r Record
	if !it.Next(&r) {
		if it.Err() != nil {
			return 0, it.Err()
		}
		return 0, fmt.Errorf("%w: control batch without a record", ErrCorrupt)
	}
	if len(r.Key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrCorrupt, len(r.Key))
	}
	return int16(binary.BigEndian.Uint16(r.Key[2:])), nil
}

// AbortedTxn is an aborted transaction as a read_committed reader needs
// it (a Fetch response's aborted transactions): the records of producer
// ProducerID from FirstOffset up to its abort marker are to be skipped.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// AbortFilter decides, batch by batch in offset order, which batches a
// read_committed reader skips: those of the aborted transactions it was
// given, until each one's abort marker, and every control batch. It is
// Kafka's consumer-side rule, so a reader needs only the aborted
// transactions overlapping what it reads, not the log's whole history.
type AbortFilter struct {
	pending []AbortedTxn       // by FirstOffset, not yet reached
	active  map[int64]struct{} // producers inside an aborted transaction
}

// Reset starts the filter over with the aborted transactions of the range
// about to be read; it keeps (and may reorder) aborted.
func (f *AbortFilter) Reset(aborted []AbortedTxn) {
	slices.SortFunc(aborted, func(a, b AbortedTxn) int {
		switch {
		case a.FirstOffset < b.FirstOffset:
			return -1
		case a.FirstOffset > b.FirstOffset:
			return 1
		}
		return 0
	})
	f.pending = aborted
	clear(f.active)
}

// Skip reports whether the batch b, the next in offset order, is hidden
// from a read_committed reader.
func (f *AbortFilter) Skip(b Batch) bool {
	last := b.LastOffset()
	for len(f.pending) > 0 && f.pending[0].FirstOffset <= last {
		if f.active == nil {
			f.active = map[int64]struct{}{}
		}
		f.active[f.pending[0].ProducerID] = struct{}{}
		f.pending = f.pending[1:]
	}
	if b.IsControl() {
		if len(f.active) > 0 {
			if typ, err := b.ControlType(); err == nil && typ == ControlAbort {
				delete(f.active, b.ProducerID())
			}
		}
		return true
	}
	if len(f.active) == 0 || !b.IsTransactional() {
		return false
	}
	_, aborted := f.active[b.ProducerID()]
	return aborted
}
