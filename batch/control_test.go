package batch_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// TestEndTxnMarkerLayout checks a marker field by field against Kafka's
// control batch: transactional and control attributes, the producer's ID
// and epoch, base sequence -1, one record whose key is version 0 and the
// type and whose value is version 0 and the coordinator epoch.
func TestEndTxnMarkerLayout(t *testing.T) {
	for _, commit := range []bool{false, true} {
		m := batch.EndTxnMarker(42, 7, commit, 3, 1_700_000_000_123)
		_, err := batch.Parse(m)
		require.NoError(t, err)
		require.Equal(t, int16(batch.AttrTransactional|batch.AttrControl), m.Attributes())
		require.True(t, m.IsControl())
		require.True(t, m.IsTransactional())
		require.Equal(t, int64(42), m.ProducerID())
		require.Equal(t, int16(7), m.ProducerEpoch())
		require.Equal(t, int32(-1), m.BaseSequence())
		require.Equal(t, int32(1), m.NumRecords())
		require.Equal(t, int32(0), m.LastOffsetDelta())
		require.Equal(t, int64(1_700_000_000_123), m.MaxTimestamp())

		it := m.Records()
		var r batch.Record
		require.True(t, it.Next(&r))
		want := batch.ControlAbort
		if commit {
			want = batch.ControlCommit
		}
		require.Equal(t, []byte{0, 0, 0, byte(want)}, r.Key)
		require.Len(t, r.Value, 6)
		require.Equal(t, uint16(0), binary.BigEndian.Uint16(r.Value))
		require.Equal(t, uint32(3), binary.BigEndian.Uint32(r.Value[2:]))
		typ, err := m.ControlType()
		require.NoError(t, err)
		require.Equal(t, want, typ)
	}
}

func TestControlTypeOfDataBatch(t *testing.T) {
	var bld batch.Builder
	bld.Reset(0)
	bld.Add(1, nil, []byte("v"), nil)
	_, err := bld.Finish().ControlType()
	require.ErrorIs(t, err, batch.ErrCorrupt)
}

func TestSetProducerKeepsBatchValid(t *testing.T) {
	var bld batch.Builder
	bld.Reset(0)
	bld.Add(1, nil, []byte("a"), nil)
	bld.Add(2, nil, []byte("b"), nil)
	b := append(batch.Batch(nil), bld.Finish()...)
	b.SetProducer(9, 2, 100, true)
	_, err := batch.Parse(b)
	require.NoError(t, err)
	require.True(t, b.IsTransactional())
	require.False(t, b.IsControl())
	require.Equal(t, int64(9), b.ProducerID())
	require.Equal(t, int16(2), b.ProducerEpoch())
	require.Equal(t, int32(100), b.BaseSequence())
	require.Equal(t, int32(101), b.LastSequence())
	b.SetProducer(9, 2, 100, false)
	require.False(t, b.IsTransactional())
	_, err = batch.Parse(b)
	require.NoError(t, err)
}

// TestAbortFilter walks a log interleaving two producers' transactions,
// one aborted, with plain records: a read_committed walk returns the
// plain records, the committed transaction's and the aborted producer's
// records of its next transaction, never those of the aborted one.
func TestAbortFilter(t *testing.T) {
	var log []byte
	offset := int64(0)
	add := func(b batch.Batch) {
		b = append(batch.Batch(nil), b...)
		b.SetBaseOffset(offset)
		offset = b.LastOffset() + 1
		log = append(log, b...)
	}
	data := func(pid int64, value string) batch.Batch {
		var bld batch.Builder
		bld.Reset(0)
		bld.Add(1, nil, []byte(value), nil)
		b := append(batch.Batch(nil), bld.Finish()...)
		if pid >= 0 {
			b.SetProducer(pid, 0, 0, true)
		}
		return b
	}
	add(data(1, "aborted-1"))                  // 0
	add(data(2, "committed-1"))                // 1
	add(data(-1, "plain-1"))                   // 2
	add(data(1, "aborted-2"))                  // 3
	add(batch.EndTxnMarker(1, 0, false, 0, 1)) // 4
	add(data(1, "next-txn"))                   // 5
	add(batch.EndTxnMarker(2, 0, true, 0, 1))  // 6
	add(batch.EndTxnMarker(1, 0, true, 0, 1))  // 7

	read := func(from int64, aborted []batch.AbortedTxn) []string {
		var f batch.AbortFilter
		f.Reset(aborted)
		var it batch.Iter
		it.Reset(log, from)
		it.SkipAborted(&f)
		var out []string
		var r batch.Record
		for it.Next(&r) {
			out = append(out, string(r.Value))
		}
		require.NoError(t, it.Err())
		require.Equal(t, int64(8), it.Offset())
		return out
	}
	aborted := []batch.AbortedTxn{{ProducerID: 1, FirstOffset: 0}}
	require.Equal(t, []string{"committed-1", "plain-1", "next-txn"}, read(0, aborted))
	require.Equal(t, []string{"plain-1", "next-txn"}, read(2, aborted))
	require.Equal(t, []string{"next-txn"}, read(4, aborted))
	// read_uncommitted: no aborted transactions, every data record.
	require.Equal(t, []string{"aborted-1", "committed-1", "plain-1", "aborted-2", "next-txn"}, read(0, nil))
}

// TestEndTxnMarkerAllocs: a marker is one allocation of about its own size
// (one goes into every partition of every transaction).
func TestEndTxnMarkerAllocs(t *testing.T) {
	var m batch.Batch
	allocs := testing.AllocsPerRun(100, func() { m = batch.EndTxnMarker(7, 3, true, 0, 1000) })
	require.LessOrEqual(t, allocs, 1.0)
	require.LessOrEqual(t, cap(m), batch.HeaderSize+32)
	typ, err := m.ControlType()
	require.NoError(t, err)
	require.Equal(t, batch.ControlCommit, typ)
	require.Equal(t, int64(7), m.ProducerID())
	require.NoError(t, batch.CheckHeader(m))
}
