package log

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// kv is one record of the compaction tests: a nil value is a tombstone.
type kv struct {
	key, value string
	tombstone  bool
}

func keyed(ts int64, recs ...kv) batch.Batch {
	var b batch.Builder
	b.Reset(0)
	for _, r := range recs {
		var v []byte
		if !r.tombstone {
			v = []byte(r.value)
		}
		b.Add(ts, []byte(r.key), v, nil)
	}
	return append(batch.Batch(nil), b.Finish()...)
}

func compactLog(t *testing.T) Config {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	cfg.Compact = true
	cfg.DeleteRetention = time.Hour
	return cfg
}

// latest reads the log whole and returns each key's latest record (offset,
// value), tombstones included, and the offsets read.
func latest(t *testing.T, l *Log) (map[string]kv, map[string]int64, []int64) {
	t.Helper()
	vals, offs := map[string]kv{}, map[string]int64{}
	var all []int64
	for _, r := range readAll(t, l, l.StartOffset()) {
		vals[string(r.Key)] = kv{key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil}
		offs[string(r.Key)] = r.Offset
		all = append(all, r.Offset)
	}
	return vals, offs, all
}

func TestLogCleanKeepsLatestPerKey(t *testing.T) {
	cfg := compactLog(t)
	l := openTestLog(t, cfg, false)
	model := map[string]kv{}
	modelOff := map[string]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	for i := range 2000 {
		k := fmt.Sprintf("key-%03d", rng.IntN(50))
		r := kv{key: k, value: fmt.Sprintf("v%d", i)}
		if rng.IntN(10) == 0 {
			r = kv{key: k, tombstone: true}
		}
		off, err := l.Append(keyed(now.UnixMilli(), r))
		require.NoError(t, err)
		model[k], modelOff[k] = r, off
	}
	before := l.Info()
	require.Greater(t, before.Segments, 10)

	m := NewKeyMap(1 << 20)
	res, err := l.Clean(t.Context(), now, m, true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	after := l.Info()
	require.Less(t, after.Bytes, before.Bytes/4, "most records were superseded")
	require.Equal(t, before.Start, after.Start)
	require.Equal(t, before.End, after.End)

	check := func(l *Log) {
		vals, offs, all := latest(t, l)
		require.Equal(t, model, vals)
		require.Equal(t, modelOff, offs)
		require.IsIncreasing(t, all)
	}
	check(l)
	// Every offset still reads: one in a gap reads from the next record on.
	for off := range before.End {
		v, err := l.Read(off, 1)
		require.NoError(t, err, "offset %d", off)
		if len(v.Data) > 0 {
			require.GreaterOrEqual(t, batch.Batch(v.Data).LastOffset(), off)
		}
		v.Release()
	}

	// Reopened, cleanly and after a crash, it reads the same.
	require.NoError(t, l.Close(true))
	l = openTestLog(t, cfg, true)
	check(l)
	l.Abandon()
	l = openTestLog(t, cfg, false)
	check(l)
	st, err := l.CleanState(now)
	require.NoError(t, err)
	require.Equal(t, res.End, st.FirstDirty)
	require.Equal(t, now.UnixMilli(), st.LastRun.UnixMilli())
	require.Zero(t, st.DirtyBytes)

	// Tombstones stay until their horizon, then go. The round that first
	// meets one sets it: an hour (DeleteRetention) after its own time.
	l.Close(true)
	cfg.SegmentBytes = 1 << 10 // small: each filler rolls the active segment
	l = openTestLog(t, cfg, true)
	filler := func() {
		_, err := l.Append(keyed(now.UnixMilli(), kv{key: "filler", value: string(make([]byte, 1100))}))
		require.NoError(t, err)
	}
	filler()
	filler()
	_, err = l.Clean(t.Context(), now.Add(2*time.Hour), m, true) // meets the last segment's tombstones
	require.NoError(t, err)
	vals, _, _ := latest(t, l)
	require.Equal(t, model["key-015"], vals["key-015"], "a tombstone stays until its horizon")
	filler()
	_, err = l.Clean(t.Context(), now.Add(4*time.Hour), m, true)
	require.NoError(t, err)
	vals, _, _ = latest(t, l)
	for k, r := range model {
		if r.tombstone {
			require.NotContains(t, vals, k)
		} else {
			require.Equal(t, r, vals[k])
		}
	}
}
