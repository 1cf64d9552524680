package log

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

func txnTombstone(pid int64, seq int32, key string) batch.Batch {
	var b batch.Builder
	b.Reset(0)
	b.Add(time.Now().UnixMilli(), []byte(key), nil, nil)
	out := append(batch.Batch(nil), b.Finish()...)
	out.SetProducer(pid, 0, seq, true)
	return out
}

// A committed transactional tombstone written after an earlier aborted
// transaction of the same producer (whose marker is in the clean section)
// is left out of the map; the key's old value survives and comes back once
// the tombstone's horizon passes.
func TestLogCleanMapsAfterAnEarlierAbort(t *testing.T) {
	cfg := compactLog(t)
	l := openTestLog(t, cfg, false)
	now := time.Now()
	_, err := l.Append(keyed(now.UnixMilli(), kv{key: "K", value: "v1"})) // 0
	require.NoError(t, err)
	mustAppend(t, l, keyedProduced(7, 0, true, "t7", "X")) // 1, aborted
	_, err = l.EndTxn(7, 0, false, 0, true)                // 2
	require.NoError(t, err)
	forceRoll(t, l)
	_, err = l.Append(keyed(now.UnixMilli(), kv{key: "F", value: "f"}))
	require.NoError(t, err)
	res, err := l.Clean(t.Context(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)

	mustAppend(t, l, txnTombstone(7, 1, "K")) // K deleted, committed
	_, err = l.EndTxn(7, 0, true, 0, true)
	require.NoError(t, err)
	forceRoll(t, l)
	_, err = l.Append(keyed(now.UnixMilli(), kv{key: "F", value: "f2"}))
	require.NoError(t, err)
	res, err = l.Clean(t.Context(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	vals, _, _ := latest(t, l)
	require.True(t, vals["K"].tombstone, "K deleted: %+v", vals["K"])

	forceRoll(t, l)
	_, err = l.Append(keyed(now.UnixMilli(), kv{key: "F", value: "f3"}))
	require.NoError(t, err)
	forceRoll(t, l)
	res, err = l.Clean(t.Context(), now.Add(3*time.Hour), NewKeyMap(0), true)
	require.NoError(t, err)
	vals, _, _ = latest(t, l)
	_, has := vals["K"]
	require.False(t, has, "K was deleted, now reads %+v", vals["K"])
}
