package log

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
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
	res, err := l.Clean(now, m, true)
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
	_, err = l.Clean(now.Add(2*time.Hour), m, true) // meets the last segment's tombstones
	require.NoError(t, err)
	vals, _, _ := latest(t, l)
	require.Equal(t, model["key-015"], vals["key-015"], "a tombstone stays until its horizon")
	filler()
	_, err = l.Clean(now.Add(4*time.Hour), m, true)
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

// forceRoll seals the active segment, as a full one would be.
func forceRoll(t *testing.T, l *Log) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NoError(t, l.roll())
}

// model is what a compacted log must read as: each key's latest record
// (tombstones included, until their horizon) and its offset.
type model struct {
	vals map[string]kv
	offs map[string]int64
}

func newModel() *model { return &model{vals: map[string]kv{}, offs: map[string]int64{}} }

// put appends one keyed record at ts and notes it.
func (m *model) put(t *testing.T, l *Log, ts int64, r kv) int64 {
	t.Helper()
	off, err := l.Append(keyed(ts, r))
	require.NoError(t, err)
	m.vals[r.key], m.offs[r.key] = r, off
	return off
}

// check compares the log's latest record per key with the model.
func (m *model) check(t *testing.T, l *Log) {
	t.Helper()
	vals, offs, all := latest(t, l)
	require.Equal(t, m.vals, vals)
	require.Equal(t, m.offs, offs)
	require.IsIncreasing(t, all)
}

func TestKeyMap(t *testing.T) {
	m := NewKeyMap(1 << 20)
	require.Equal(t, 1<<16, m.maxSlots) // 1 MiB / 16 bytes
	require.Equal(t, minKeySlots, NewKeyMap(0).maxSlots, "at least one table of the first size")
	require.Equal(t, 1<<15, NewKeyMap(1<<20-1).maxSlots, "rounded down to a power of two")
	require.Equal(t, 1<<13, NewKeyMap(3<<16).maxSlots) // 12288 slots → 8192

	require.Equal(t, int64(-1), m.Get([]byte("a")))
	require.True(t, m.Put([]byte("a"), 5))
	require.True(t, m.Put([]byte("a"), 9))
	require.True(t, m.Put([]byte{}, 3), "an empty key is a key")
	require.Equal(t, int64(9), m.Get([]byte("a")))
	require.Equal(t, int64(3), m.Get([]byte{}))
	require.Equal(t, 2, m.Len())
	require.Equal(t, int64(minKeySlots*keySlotBytes), m.Bytes())

	// Grows by doubling, keeping every entry, up to its cap.
	for i := range 20000 {
		require.True(t, m.Put(fmt.Appendf(nil, "k%d", i), int64(i)))
	}
	require.Equal(t, 20002, m.Len())
	require.Equal(t, int64(1<<15*keySlotBytes), m.Bytes())
	for i := range 20000 {
		require.Equal(t, int64(i), m.Get(fmt.Appendf(nil, "k%d", i)))
	}
	require.Equal(t, int64(9), m.Get([]byte("a")))

	// Full at its cap: a new key is refused and changes nothing; a known
	// key still moves.
	full := NewKeyMap(0)
	n := 0
	for ; full.Put(fmt.Appendf(nil, "x%d", n), int64(n)); n++ {
	}
	require.Equal(t, 3686, n) // 0.9 of 4096 slots
	require.Equal(t, n, full.Len())
	require.Equal(t, int64(-1), full.Get(fmt.Appendf(nil, "x%d", n)))
	require.False(t, full.Put([]byte("another"), 1))
	require.Equal(t, n, full.Len())
	require.True(t, full.Put([]byte("x0"), 77))
	require.Equal(t, int64(77), full.Get([]byte("x0")))
	require.Equal(t, int64(minKeySlots*keySlotBytes), full.Bytes())

	// Reset empties it and keeps its table.
	m.Reset()
	require.Zero(t, m.Len())
	require.Equal(t, int64(-1), m.Get([]byte("a")))
	require.Equal(t, int64(1<<15*keySlotBytes), m.Bytes())
	require.True(t, m.Put([]byte("a"), 1))
	require.Equal(t, int64(1), m.Get([]byte("a")))
}

// TestLogCleanPartialMap: a map too small for the dirty part's keys ends
// the round early: what follows its reach is left as written, the next
// round starts there, and together they leave the model's state.
func TestLogCleanPartialMap(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	// First seven keys (what a tiny map holds), then five others.
	for i := range 120 {
		md.put(t, l, now.UnixMilli(), kv{key: fmt.Sprintf("a%d", i%7), value: fmt.Sprintf("v%d", i)})
	}
	firstB := int64(-1)
	for i := range 100 {
		off := md.put(t, l, now.UnixMilli(), kv{key: fmt.Sprintf("b%d", i%5), value: fmt.Sprintf("w%d", i)})
		if firstB < 0 {
			firstB = off
		}
	}
	forceRoll(t, l)
	before := readAll(t, l, firstB)

	tiny := &KeyMap{maxSlots: 8} // seven keys
	res, err := l.Clean(now, tiny, true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Equal(t, firstB, res.End, "the map ends at the first key it cannot hold")
	require.Equal(t, before, readAll(t, l, firstB), "past the map's reach nothing changed")
	md.check(t, l)
	st, err := l.CleanState(now)
	require.NoError(t, err)
	require.Equal(t, firstB, st.FirstDirty)
	require.Positive(t, st.DirtyBytes)

	res, err = l.Clean(now, tiny, true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Equal(t, l.Segments()[len(l.Segments())-1].Base, res.End, "the second round reaches the bound")
	md.check(t, l)
	require.Len(t, readAll(t, l, 0), 12, "one record per key")

	// Reopened, it reads the same and has nothing dirty.
	require.NoError(t, l.Close(true))
	l = openTestLog(t, cfg, true)
	md.check(t, l)
	st, err = l.CleanState(now)
	require.NoError(t, err)
	require.Zero(t, st.DirtyBytes)
	res, err = l.Clean(now, tiny, true)
	require.NoError(t, err)
	require.False(t, res.Cleaned, "nothing dirty: no round")
}

// TestLogCleanNotCompacted: Clean leaves a log without the compact policy
// (or a read-only one) as it is.
func TestLogCleanNotCompacted(t *testing.T) {
	cfg := compactLog(t)
	cfg.Compact = false
	l := openTestLog(t, cfg, false)
	for i := range 300 {
		_, err := l.Append(keyed(1, kv{key: "k", value: fmt.Sprint(i)}))
		require.NoError(t, err)
	}
	forceRoll(t, l)
	segs := l.Segments()
	res, err := l.Clean(time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	require.Equal(t, CleanResult{}, res)
	require.Equal(t, segs, l.Segments())
	require.Len(t, readAll(t, l, 0), 300)
	require.NoDirExists(t, filepath.Join(cfg.Dir, cleanDir))
	require.NoFileExists(t, filepath.Join(cfg.Dir, checkpointFile))

	require.NoError(t, l.Close(true))
	cfg.Compact, cfg.ReadOnly = true, true
	ro := openTestLog(t, cfg, true)
	res, err = ro.Clean(time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	require.False(t, res.Cleaned)
	require.Len(t, readAll(t, ro, 0), 300)
}

// TestLogCleanCompactionLags: MinCompactionLag keeps segments holding
// young records out of a round; MaxCompactionLag makes a log due whatever
// its ratio, and rolls the active segment in time (KIP-354).
func TestLogCleanCompactionLags(t *testing.T) {
	now := time.Now()
	old, young := now.Add(-2*time.Hour).UnixMilli(), now.Add(-time.Minute).UnixMilli()
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	cfg.MinCompactionLag = time.Hour
	cfg.MinCleanableRatio = DefaultMinCleanableRatio
	l := openTestLog(t, cfg, false)
	md := newModel()
	for i := range 60 {
		md.put(t, l, old, kv{key: fmt.Sprintf("k%d", i%4), value: fmt.Sprint(i)})
	}
	forceRoll(t, l)
	youngBase := l.HighWatermark()
	for i := range 60 {
		md.put(t, l, young, kv{key: fmt.Sprintf("k%d", i%4), value: fmt.Sprint(i)})
	}
	forceRoll(t, l)
	md.put(t, l, old, kv{key: "active", value: "x"})

	st, err := l.CleanState(now)
	require.NoError(t, err)
	require.Equal(t, youngBase, st.Bound, "the first segment with a young record bounds the round")
	require.Zero(t, st.CleanBytes)
	require.Equal(t, 1.0, st.Ratio)
	require.True(t, st.Due(DefaultMinCleanableRatio))
	require.False(t, st.Overdue)
	youngRecs := readAll(t, l, youngBase)

	res, err := l.Clean(now, NewKeyMap(0), false)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Equal(t, youngBase, res.End)
	require.Equal(t, youngRecs, readAll(t, l, youngBase), "young records untouched")
	require.Len(t, readAll(t, l, 0), 4+len(youngRecs))
	md.check(t, l)

	// Later, the young records are old enough.
	st, err = l.CleanState(now.Add(2 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, l.Segments()[len(l.Segments())-1].Base, st.Bound)
	require.Positive(t, st.CleanBytes)
	require.InDelta(t, float64(st.DirtyBytes)/float64(st.DirtyBytes+st.CleanBytes), st.Ratio, 1e-9)
	res, err = l.Clean(now.Add(2*time.Hour), NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	md.check(t, l)
	require.Len(t, readAll(t, l, 0), 5)

	// A little dirt: under the ratio, so not due, until MaxCompactionLag
	// says a dirty record waited too long.
	require.NoError(t, l.Close(true))
	cfg.MinCompactionLag = 0
	cfg.MinCleanableRatio = 0.99
	l = openTestLog(t, cfg, true)
	md.put(t, l, old, kv{key: "k1", value: "late"})
	forceRoll(t, l)
	st, err = l.CleanState(now)
	require.NoError(t, err)
	require.Positive(t, st.DirtyBytes)
	require.Less(t, st.Ratio, 0.99)
	require.False(t, st.Overdue)
	require.False(t, st.Due(0.99))
	res, err = l.Clean(now, NewKeyMap(0), false)
	require.NoError(t, err)
	require.False(t, res.Cleaned, "not due")

	set := l.Settings()
	set.MaxCompactionLag = time.Hour
	require.NoError(t, l.Reconfigure(set))
	st, err = l.CleanState(now)
	require.NoError(t, err)
	require.True(t, st.Overdue)
	require.True(t, st.Due(0.99))
	st2, err := l.CleanState(time.UnixMilli(old).Add(30 * time.Minute))
	require.NoError(t, err)
	require.False(t, st2.Overdue, "not yet past the lag")
	res, err = l.Clean(now, NewKeyMap(0), false)
	require.NoError(t, err)
	require.True(t, res.Cleaned, "overdue")
	md.check(t, l)
}

// TestLogCompactionLagRollsActive: with MaxCompactionLag below
// SegmentAge (or without one), the active segment rolls once its first
// batch is that old, so its records become cleanable in time (KIP-354).
func TestLogCompactionLagRollsActive(t *testing.T) {
	for _, c := range []struct {
		name    string
		compact bool
		age     time.Duration
		rollAt  time.Duration // 0: never within the test
	}{
		{"compact no age", true, 0, time.Hour},
		{"compact longer age", true, 3 * time.Hour, time.Hour},
		{"compact shorter age", true, 30 * time.Minute, 30 * time.Minute},
		{"not compact", false, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := time.Unix(1_700_000_000, 0)
			cfg := compactLog(t)
			cfg.Compact = c.compact
			cfg.SegmentAge = c.age
			cfg.MaxCompactionLag = time.Hour
			cfg.Now = func() time.Time { return clock }
			l := openTestLog(t, cfg, false)
			md := newModel()
			md.put(t, l, clock.UnixMilli(), kv{key: "a", value: "1"})
			for _, step := range []time.Duration{10 * time.Minute, 29 * time.Minute, 59 * time.Minute, 61 * time.Minute, 119 * time.Minute} {
				clock = time.Unix(1_700_000_000, 0).Add(step)
				md.put(t, l, clock.UnixMilli(), kv{key: "a", value: step.String()})
				want := 1
				if c.rollAt > 0 && step >= c.rollAt {
					want = 2
				}
				require.Equal(t, want, l.SegmentCount(), "at %v", step)
				if want == 2 {
					break
				}
			}
		})
	}
}
