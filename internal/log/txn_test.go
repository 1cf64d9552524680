package log

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// txnBatch is a transactional batch of n records of producer pid.
func txnBatch(pid int64, seq int32, n int, tag string) batch.Batch {
	var b batch.Builder
	b.Reset(0)
	for i := range n {
		b.Add(time.Now().UnixMilli(), nil, []byte(tag+"-"+string(rune('a'+i))), nil)
	}
	out := append(batch.Batch(nil), b.Finish()...)
	out.SetProducer(pid, 0, seq, true)
	return out
}

func plainBatch(tag string) batch.Batch {
	var b batch.Builder
	b.Reset(0)
	b.Add(time.Now().UnixMilli(), nil, []byte(tag), nil)
	return append(batch.Batch(nil), b.Finish()...)
}

// readCommitted reads what a read_committed reader sees from the log
// start, as records with their own copies of keys and values.
func readCommitted(t *testing.T, l *Log) []batch.Record {
	t.Helper()
	var out []batch.Record
	for offset := l.StartOffset(); ; {
		v, err := l.ReadCommitted(offset, 1<<20)
		require.NoError(t, err)
		if len(v.Data) == 0 {
			return out
		}
		aborted, err := l.AbortedTxns(offset, l.LastStable())
		require.NoError(t, err)
		var f batch.AbortFilter
		f.Reset(aborted)
		var it batch.Iter
		it.Reset(v.Data, offset)
		it.SkipAborted(&f)
		var r batch.Record
		for it.Next(&r) {
			out = append(out, batch.Record{Offset: r.Offset, Timestamp: r.Timestamp,
				Key: slices.Clone(r.Key), Value: slices.Clone(r.Value)})
		}
		require.NoError(t, it.Err())
		offset = it.Offset()
		v.Release()
	}
}

// committedValues is readCommitted's values.
func committedValues(t *testing.T, l *Log) []string {
	t.Helper()
	var out []string
	for _, r := range readCommitted(t, l) {
		out = append(out, string(r.Value))
	}
	return out
}

func mustAppend(t *testing.T, l *Log, b batch.Batch) int64 {
	t.Helper()
	res, err := l.AppendProduced(b)
	require.NoError(t, err)
	return res.Base
}

// TestLogTransactions follows two producers' transactions through a log:
// the last stable offset holds read_committed readers at the first open
// transaction, an abort hides its records and a commit shows them, and
// the state (open transactions, aborted ones) is the same after a clean
// close, after a crash, and across a segment roll.
func TestLogTransactions(t *testing.T) {
	for _, how := range []string{"clean", "crash"} {
		t.Run(how, func(t *testing.T) {
			cfg := testLog(t)
			cfg.SegmentBytes = 400 // a few batches per segment: transactions span rolls
			l := openTestLog(t, cfg, true)

			require.Equal(t, int64(0), mustAppend(t, l, plainBatch("p0")))
			require.Equal(t, int64(1), mustAppend(t, l, txnBatch(7, 0, 2, "t7"))) // 1-2
			require.Equal(t, int64(3), mustAppend(t, l, txnBatch(8, 0, 1, "t8"))) // 3
			mustAppend(t, l, plainBatch("p4"))                                    // 4
			require.Equal(t, int64(1), l.LastStable())
			require.Equal(t, []string{"p0"}, committedValues(t, l))

			off, err := l.EndTxn(7, 0, false, 0, true) // abort 7 at 5
			require.NoError(t, err)
			require.Equal(t, int64(5), off)
			require.Equal(t, int64(3), l.LastStable())
			mustAppend(t, l, txnBatch(7, 2, 1, "t7b")) // 6: producer 7's next transaction
			off, err = l.EndTxn(8, 0, true, 0, true)   // commit 8 at 7
			require.NoError(t, err)
			require.Equal(t, int64(7), off)
			require.Equal(t, int64(6), l.LastStable())
			require.Equal(t, []string{"p0", "t8-a", "p4"}, committedValues(t, l))
			off, err = l.EndTxn(8, 0, true, 0, true) // repeated: nothing to end
			require.NoError(t, err)
			require.Equal(t, int64(-1), off)
			require.Greater(t, l.SegmentCount(), 1)

			check := func(l *Log) {
				t.Helper()
				require.Equal(t, int64(6), l.LastStable())
				open, err := l.OpenTxns()
				require.NoError(t, err)
				require.Equal(t, []OpenTxn{{ProducerID: 7, FirstOffset: 6}}, open)
				aborted, err := l.AbortedTxns(0, 100)
				require.NoError(t, err)
				require.Equal(t, []batch.AbortedTxn{{ProducerID: 7, FirstOffset: 1}}, aborted)
				require.Equal(t, []string{"p0", "t8-a", "p4"}, committedValues(t, l))
			}
			check(l)
			if how == "clean" {
				require.NoError(t, l.Close(true))
			} else {
				l.Abandon()
			}
			l = openTestLog(t, cfg, how == "clean")
			check(l)
			_, err = l.EndTxn(7, 0, true, 0, true)
			require.NoError(t, err)
			require.Equal(t, l.HighWatermark(), l.LastStable())
			require.Equal(t, []string{"p0", "t8-a", "p4", "t7b-a"}, committedValues(t, l))
		})
	}
}

// TestLogTxnIndexIsKafkas checks the aborted transaction index written at
// a roll byte by byte: Kafka's 34-byte entries.
func TestLogTxnIndexIsKafkas(t *testing.T) {
	cfg := testLog(t)
	l := openTestLog(t, cfg, true)
	mustAppend(t, l, txnBatch(5, 0, 3, "x")) // 0-2
	_, err := l.EndTxn(5, 0, false, 0, true) // 3
	require.NoError(t, err)
	l.mu.Lock()
	require.NoError(t, l.roll())
	l.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(cfg.Dir, "00000000000000000000.txnindex"))
	require.NoError(t, err)
	want := []byte{0, 0}
	for _, v := range []int64{5, 0, 3, 4} {
		want = append(want, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	require.Equal(t, want, data)
}

// TestLogRetentionKeepsOpenTransactions: retention deletes nothing from an
// open transaction's first offset on, so its records never lose their
// start.
func TestLogRetentionKeepsOpenTransactions(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 200
	cfg.RetentionBytes = 1
	l := openTestLog(t, cfg, true)
	mustAppend(t, l, plainBatch("a"))
	first := mustAppend(t, l, txnBatch(9, 0, 1, "t"))
	for range 10 {
		mustAppend(t, l, plainBatch("b"))
	}
	_, err := l.EnforceRetention()
	require.NoError(t, err)
	require.LessOrEqual(t, l.StartOffset(), first)
	_, err = l.EndTxn(9, 0, true, 0, true)
	require.NoError(t, err)
	_, err = l.EnforceRetention()
	require.NoError(t, err)
	require.Greater(t, l.StartOffset(), first)
}

// TestLogNonTransactionalLogKeepsNoTxnFiles: a log without transactions
// writes no transaction file, so it costs nothing at open.
func TestLogNonTransactionalLogKeepsNoTxnFiles(t *testing.T) {
	cfg := testLog(t)
	l := openTestLog(t, cfg, true)
	mustAppend(t, l, plainBatch("a"))
	require.NoError(t, l.Close(true))
	entries, err := os.ReadDir(cfg.Dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, slices.Contains([]string{TxnIndexSuffix, TxnStateSuffix}, filepath.Ext(e.Name())), e.Name())
	}
}

// TestLogSnapshotPastACutTail: a snapshot at an offset that recovery cut
// from the log is dropped, not read once the log grows past it again.
func TestLogSnapshotPastACutTail(t *testing.T) {
	cfg := testLog(t)
	l := openTestLog(t, cfg, true)
	mustAppend(t, l, plainBatch("p0"))
	mustAppend(t, l, txnBatch(8, 0, 1, "t8")) // 1: open
	require.NoError(t, l.Close(true))         // snapshot at 2: {8: 1}
	// Damage cuts everything after the first batch.
	path := filepath.Join(cfg.Dir, "00000000000000000000.log")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	first := batch.Batch(data).Size()
	require.NoError(t, os.WriteFile(path, data[:first], 0o600))
	l = openTestLog(t, cfg, false)
	require.Equal(t, int64(1), l.HighWatermark())
	open, err := l.OpenTxns()
	require.NoError(t, err)
	require.Empty(t, open)
	for range 3 {
		mustAppend(t, l, plainBatch("q"))
	}
	l.Abandon()
	l = openTestLog(t, cfg, false)
	open, err = l.OpenTxns()
	require.NoError(t, err)
	require.Empty(t, open, "the cut tail's snapshot is gone")
	require.Equal(t, l.HighWatermark(), l.LastStable())
}
