package batch_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// filterInput is a batch of 6 records at base offset 100 from an
// idempotent transactional producer: keys k0..k5, k3 a tombstone, k4 with
// no key, timestamps going down and up (negative deltas), compressed with c.
func filterInput(t *testing.T, c batch.Codec) (batch.Batch, []batch.Record) {
	t.Helper()
	var bld batch.Builder
	bld.Reset(0)
	base := int64(1_700_000_000_000)
	tss := []int64{base, base - 50, base + 70, base - 200, base + 10, base + 30}
	var want []batch.Record
	for i, ts := range tss {
		key, val := []byte(fmt.Sprintf("k%d", i)), []byte(fmt.Sprintf("value-%d", i))
		if i == 3 {
			val = nil
		}
		if i == 4 {
			key = nil
		}
		bld.Add(ts, key, val, []batch.Header{{Key: "h", Value: []byte{byte(i)}}})
		want = append(want, batch.Record{Offset: 100 + int64(i), Timestamp: ts, Key: key, Value: val,
			Headers: []batch.Header{{Key: "h", Value: []byte{byte(i)}}}})
	}
	b := append(batch.Batch(nil), bld.Finish()...)
	b.SetBaseOffset(100)
	b.SetProducer(77, 3, 1000, true)
	if c != batch.None {
		var err error
		b, err = batch.Compress(nil, b, c, 0)
		require.NoError(t, err)
	}
	return b, want
}

// records walks b alone with an Iter from its base offset, as readers do,
// and returns its records (copied) and where the walk ends.
func records(t *testing.T, b batch.Batch) ([]batch.Record, int64) {
	t.Helper()
	var it batch.Iter
	it.Reset(b, b.BaseOffset())
	var out []batch.Record
	var r batch.Record
	for it.Next(&r) {
		c := r
		c.Key, c.Value = clone(r.Key), clone(r.Value)
		c.Headers = nil
		for _, h := range r.Headers {
			c.Headers = append(c.Headers, batch.Header{Key: h.Key, Value: clone(h.Value)})
		}
		out = append(out, c)
	}
	require.NoError(t, it.Err())
	return out, it.Offset()
}

// checkHeaderKept checks the fields Filter must not change.
func checkHeaderKept(t *testing.T, in, out batch.Batch) {
	t.Helper()
	require.Equal(t, in.BaseOffset(), out.BaseOffset())
	require.Equal(t, in.LastOffsetDelta(), out.LastOffsetDelta())
	require.Equal(t, in.ProducerID(), out.ProducerID())
	require.Equal(t, in.ProducerEpoch(), out.ProducerEpoch())
	require.Equal(t, in.BaseSequence(), out.BaseSequence())
	require.Equal(t, in.LastSequence(), out.LastSequence())
	require.Equal(t, in.Codec(), out.Codec())
	require.Equal(t, in.Attributes()&^batch.AttrDeleteHorizon, out.Attributes()&^batch.AttrDeleteHorizon)
	require.Equal(t, len(out), out.Size(), "batchLength matches the bytes")
}

func TestFilterKeepsHeaderAndOffsets(t *testing.T) {
	for _, c := range []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			in, all := filterInput(t, c)
			keepIdx := map[int64]bool{101: true, 103: true, 105: true} // k1 (ts -50), the tombstone, k5
			var seen []int64
			dst := []byte("prefix")
			out, kept, changed, err := batch.Filter(dst, in, -1, func(r *batch.FilterRecord) bool {
				seen = append(seen, r.Offset)
				i := r.Offset - 100
				require.Equal(t, all[i].Timestamp, r.Timestamp)
				require.Equal(t, all[i].Key, r.Key)
				require.Equal(t, all[i].Value == nil, r.Tombstone)
				return keepIdx[r.Offset]
			})
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, 3, kept)
			require.Equal(t, []int64{100, 101, 102, 103, 104, 105}, seen)
			_, err = batch.Parse(out)
			require.NoError(t, err)
			checkHeaderKept(t, in, out)
			require.Equal(t, int32(3), out.NumRecords())
			_, has := out.DeleteHorizon()
			require.False(t, has)
			require.Equal(t, in.BaseTimestamp(), out.BaseTimestamp())
			require.Equal(t, all[5].Timestamp, out.MaxTimestamp(), "max of the kept records' timestamps")
			require.Equal(t, []byte("prefix"), []byte(dst), "dst's bytes stay")

			got, next := records(t, out)
			require.Equal(t, []batch.Record{all[1], all[3], all[5]}, got)
			require.Equal(t, in.LastOffset()+1, next, "a reader moves past the whole span")
		})
	}
}

func TestFilterMaxTimestampOfKept(t *testing.T) {
	in, all := filterInput(t, batch.None)
	// Only records older than the first: max timestamp drops below base.
	out, kept, _, err := batch.Filter(nil, in, -1, func(r *batch.FilterRecord) bool { return r.Offset == 101 || r.Offset == 103 })
	require.NoError(t, err)
	require.Equal(t, 2, kept)
	require.Equal(t, all[1].Timestamp, out.MaxTimestamp())
	require.Less(t, out.MaxTimestamp(), out.BaseTimestamp())
	got, _ := records(t, out)
	require.Equal(t, []batch.Record{all[1], all[3]}, got)
}

func TestFilterLogAppendTimeKeepsMaxTimestamp(t *testing.T) {
	for _, c := range []batch.Codec{batch.None, batch.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			in, _ := filterInput(t, batch.None)
			const stamped = 1_800_000_000_000
			in.SetLogAppendTime(stamped)
			if c != batch.None {
				var err error
				in, err = batch.Compress(nil, in, c, 0)
				require.NoError(t, err)
			}
			out, kept, changed, err := batch.Filter(nil, in, -1, func(r *batch.FilterRecord) bool { return r.Offset == 101 })
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, 1, kept)
			_, err = batch.Parse(out)
			require.NoError(t, err)
			require.NotZero(t, out.Attributes()&batch.AttrLogAppendTime)
			require.Equal(t, int64(stamped), out.MaxTimestamp())
			got, _ := records(t, out)
			require.Len(t, got, 1)
			require.Equal(t, int64(101), got[0].Offset)
			require.Equal(t, int64(stamped), got[0].Timestamp, "readers see the append time")
		})
	}
}

func TestFilterDeleteHorizon(t *testing.T) {
	for _, c := range []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			in, all := filterInput(t, c)
			horizon := all[0].Timestamp + 86_400_000
			keep := func(r *batch.FilterRecord) bool { return r.Offset != 102 }
			out, kept, changed, err := batch.Filter(nil, in, horizon, keep)
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, 5, kept)
			_, err = batch.Parse(out)
			require.NoError(t, err)
			checkHeaderKept(t, in, out)
			require.NotZero(t, out.Attributes()&batch.AttrDeleteHorizon, "bit 6")
			require.Equal(t, horizon, out.BaseTimestamp())
			h, has := out.DeleteHorizon()
			require.True(t, has)
			require.Equal(t, horizon, h)
			require.Equal(t, all[5].Timestamp, out.MaxTimestamp())
			got, _ := records(t, out)
			require.Equal(t, []batch.Record{all[0], all[1], all[3], all[4], all[5]}, got, "timestamps read as written")

			// A horizon already set stays: a later round's horizon does not
			// replace it, even with every record kept.
			again, kept, changed, err := batch.Filter(nil, out, horizon+1000, func(*batch.FilterRecord) bool { return true })
			require.NoError(t, err)
			require.False(t, changed)
			require.Equal(t, 5, kept)
			require.Equal(t, out, again)
			again, kept, changed, err = batch.Filter(nil, out, horizon+1000, func(r *batch.FilterRecord) bool {
				require.Equal(t, all[r.Offset-100].Timestamp, r.Timestamp, "keep sees record timestamps, not the horizon")
				return r.Offset != 100
			})
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, 4, kept)
			h, has = again.DeleteHorizon()
			require.True(t, has)
			require.Equal(t, horizon, h)
			got, _ = records(t, again)
			require.Equal(t, []batch.Record{all[1], all[3], all[4], all[5]}, got)
		})
	}
}

func TestFilterHorizonEveryRecordKept(t *testing.T) {
	in, all := filterInput(t, batch.None)
	out, kept, changed, err := batch.Filter(nil, in, 5, func(*batch.FilterRecord) bool { return true })
	require.NoError(t, err)
	require.True(t, changed, "a horizon is a change")
	require.Equal(t, 6, kept)
	h, has := out.DeleteHorizon()
	require.True(t, has)
	require.Equal(t, int64(5), h)
	got, _ := records(t, out)
	require.Equal(t, all, got, "deltas from a horizon far below the records")
}

func TestFilterUnchangedAndNone(t *testing.T) {
	for _, c := range []batch.Codec{batch.None, batch.LZ4} {
		t.Run(c.String(), func(t *testing.T) {
			in, _ := filterInput(t, c)
			dst := make([]byte, 3, 100)
			out, kept, changed, err := batch.Filter(dst, in, -1, func(*batch.FilterRecord) bool { return true })
			require.NoError(t, err)
			require.False(t, changed)
			require.Equal(t, 6, kept)
			require.Equal(t, &in[0], &out[0], "b itself")
			require.Len(t, out, len(in))

			out, kept, changed, err = batch.Filter(dst, in, 1234, func(*batch.FilterRecord) bool { return false })
			require.NoError(t, err)
			require.True(t, changed)
			require.Zero(t, kept)
			require.Nil(t, out)
		})
	}
}

func TestFilterControlBatch(t *testing.T) {
	m := batch.EndTxnMarker(9, 2, true, 5, 1_700_000_000_000)
	m.SetBaseOffset(40)
	never := func(*batch.FilterRecord) bool { t.Fatal("keep called for a control batch"); return false }

	out, kept, changed, err := batch.Filter(nil, m, -1, never)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, 1, kept)
	require.Equal(t, m, out)

	out, kept, changed, err = batch.Filter(nil, m, 1_700_000_500_000, never)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 1, kept)
	_, err = batch.Parse(out)
	require.NoError(t, err)
	require.True(t, out.IsControl())
	require.True(t, out.IsTransactional())
	require.Equal(t, int64(40), out.BaseOffset())
	require.Equal(t, m.ProducerID(), out.ProducerID())
	h, has := out.DeleteHorizon()
	require.True(t, has)
	require.Equal(t, int64(1_700_000_500_000), h)
	typ, err := out.ControlType()
	require.NoError(t, err)
	require.Equal(t, batch.ControlCommit, typ)
	it := out.Records()
	var r batch.Record
	require.True(t, it.Next(&r))
	require.Equal(t, int64(1_700_000_000_000), r.Timestamp)

	// Its horizon already set: unchanged whatever the horizon asked.
	again, _, changed, err := batch.Filter(nil, out, 1, never)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, out, again)
}

func TestEmptyBatchLayout(t *testing.T) {
	for _, c := range []batch.Codec{batch.None, batch.Snappy} {
		t.Run(c.String(), func(t *testing.T) {
			in, _ := filterInput(t, c)
			// Give it a horizon first: EmptyBatch drops it.
			in, _, _, err := batch.Filter(nil, in, 99, func(*batch.FilterRecord) bool { return true })
			require.NoError(t, err)
			dst := []byte("xyz")
			e := batch.EmptyBatch(dst, in)
			require.Equal(t, "xyz", string(dst))
			require.Len(t, e, batch.HeaderSize)
			require.Equal(t, 61, len(e))
			p, err := batch.Parse(e)
			require.NoError(t, err)
			require.Len(t, p, 61)
			require.Equal(t, int32(batch.HeaderSize-batch.LogOverhead), int32(binary.BigEndian.Uint32(e[8:])))
			require.Equal(t, in.BaseOffset(), e.BaseOffset())
			require.Equal(t, in.LastOffsetDelta(), e.LastOffsetDelta())
			require.Equal(t, in.ProducerID(), e.ProducerID())
			require.Equal(t, in.ProducerEpoch(), e.ProducerEpoch())
			require.Equal(t, in.BaseSequence(), e.BaseSequence())
			require.Equal(t, in.LastSequence(), e.LastSequence())
			require.Equal(t, in.MaxTimestamp(), e.MaxTimestamp())
			require.Equal(t, int32(0), e.NumRecords())
			require.Equal(t, int64(-1), e.BaseTimestamp())
			require.Equal(t, batch.None, e.Codec())
			require.True(t, e.IsTransactional())
			require.False(t, e.IsControl())
			_, has := e.DeleteHorizon()
			require.False(t, has)
			require.Equal(t, in.Attributes()&^(batch.AttrCompressionMask|batch.AttrDeleteHorizon), e.Attributes())

			got, next := records(t, e)
			require.Empty(t, got)
			require.Equal(t, in.LastOffset()+1, next, "a reader moves past its span")
		})
	}
	// A control batch keeps its control bit.
	m := batch.EndTxnMarker(1, 0, false, 0, 5)
	e := batch.EmptyBatch(nil, m)
	require.True(t, e.IsControl())
	require.Zero(t, e.LastOffsetDelta())
	_, err := batch.Parse(e)
	require.NoError(t, err)
}
