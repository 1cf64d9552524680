package stream

import (
	"testing"

	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
)

// ReadCommittedBatches stops at the last stable offset and names the
// aborted transactions among its batches; ReadBatches goes on to the high
// watermark; both, and DescribeTopic, report the last stable offset.
func TestReadCommittedBatches(t *testing.T) {
	ctx := t.Context()
	b := openBroker(t, "", &Options{Sync: SyncNever})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("p", nil)
	require.NoError(t, err)
	defer p.Close()
	txn := func(vals ...string) *Tx {
		tx, err := p.Begin()
		require.NoError(t, err)
		for _, v := range vals {
			require.NoError(t, tx.Publish(ctx, &Record{Topic: "t", Value: []byte(v)}))
		}
		return tx
	}
	require.NoError(t, txn("c1").Commit(ctx))                                       // 0, marker 1
	require.NoError(t, txn("a1", "a2").Abort())                                     // 2, 3, marker 4
	open := txn("o1")                                                               // 5: open
	require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte("plain")})) // 6

	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, int64(7), info.Partitions[0].EndOffset)
	require.Equal(t, int64(5), info.Partitions[0].LastStable)

	v, err := b.ReadCommittedBatches("t", 0, 0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, int64(7), v.HighWatermark)
	require.Equal(t, int64(5), v.LastStableOffset)
	require.Equal(t, int64(4), lastOffset(v.Data), "up to the last stable offset")
	require.Len(t, v.AbortedTxns, 1)
	require.Equal(t, int64(2), v.AbortedTxns[0].FirstOffset)
	var f batch.AbortFilter
	f.Reset(v.AbortedTxns)
	var kept []int64
	for data := v.Data; len(data) >= batch.HeaderSize; data = data[batch.Batch(data).Size():] {
		if !f.Skip(batch.Batch(data)) {
			kept = append(kept, batch.Batch(data).BaseOffset())
		}
	}
	require.Equal(t, []int64{0}, kept, "the committed record only")
	v.Release()

	v, err = b.ReadCommittedBatches("t", 0, 5, 1<<20)
	require.NoError(t, err)
	require.Empty(t, v.Data, "nothing at the last stable offset")
	require.Empty(t, v.AbortedTxns)
	v.Release()

	v, err = b.ReadBatches("t", 0, 0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, int64(6), lastOffset(v.Data))
	require.Equal(t, int64(5), v.LastStableOffset)
	require.Nil(t, v.AbortedTxns)
	v.Release()

	require.NoError(t, open.Abort())
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, int64(8), info.Partitions[0].LastStable)
}
