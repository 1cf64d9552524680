package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
	"github.com/embedstream/stream/segment"
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
	m := NewKeyMap(3 << 19)
	require.Equal(t, 1<<16, m.maxSlots) // 1.5 MiB: 1 MiB of table, and the half-size one it grew from
	require.Equal(t, minKeySlots, NewKeyMap(0).maxSlots, "at least one table of the first size")
	require.Equal(t, 1<<15, NewKeyMap(3<<19-16).maxSlots, "rounded down to a power of two")
	require.Equal(t, 1<<13, NewKeyMap(3<<16).maxSlots) // 8192 slots of 2/3 of 12288

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
	res, err := l.Clean(context.Background(), now, tiny, true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Equal(t, firstB, res.End, "the map ends at the first key it cannot hold")
	require.Equal(t, before, readAll(t, l, firstB), "past the map's reach nothing changed")
	md.check(t, l)
	st, err := l.CleanState(now)
	require.NoError(t, err)
	require.Equal(t, firstB, st.FirstDirty)
	require.Positive(t, st.DirtyBytes)

	res, err = l.Clean(context.Background(), now, tiny, true)
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
	res, err = l.Clean(context.Background(), now, tiny, true)
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
	res, err := l.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	require.Equal(t, CleanResult{}, res)
	require.Equal(t, segs, l.Segments())
	require.Len(t, readAll(t, l, 0), 300)
	require.NoDirExists(t, filepath.Join(cfg.Dir, cleanDir))
	require.NoFileExists(t, filepath.Join(cfg.Dir, checkpointFile))

	require.NoError(t, l.Close(true))
	cfg.Compact, cfg.ReadOnly = true, true
	ro := openTestLog(t, cfg, true)
	res, err = ro.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
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

	res, err := l.Clean(context.Background(), now, NewKeyMap(0), false)
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
	res, err = l.Clean(context.Background(), now.Add(2*time.Hour), NewKeyMap(0), true)
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
	res, err = l.Clean(context.Background(), now, NewKeyMap(0), false)
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
	res, err = l.Clean(context.Background(), now, NewKeyMap(0), false)
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

// keyedProduced is a batch of producer pid (transactional or not) with
// one record per key, values tagged.
func keyedProduced(pid int64, seq int32, txn bool, tag string, keys ...string) batch.Batch {
	var b batch.Builder
	b.Reset(0)
	for _, k := range keys {
		b.Add(time.Now().UnixMilli(), []byte(k), []byte(tag+"-"+k), nil)
	}
	out := append(batch.Batch(nil), b.Finish()...)
	out.SetProducer(pid, 0, seq, txn)
	return out
}

// headers reads every stored batch of the log (headers copied, records
// too), control and emptied batches included.
func headers(t *testing.T, l *Log) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for off := l.StartOffset(); ; {
		v, err := l.Read(off, 64<<10)
		require.NoError(t, err)
		if len(v.Data) == 0 {
			return out
		}
		for data := v.Data; len(data) > 0; {
			b, err := batch.Parse(data)
			require.NoError(t, err)
			out = append(out, append(batch.Batch(nil), b...))
			data = data[len(b):]
			off = b.LastOffset() + 1
		}
		v.Release()
	}
}

// committedRecords reads what a read_committed reader sees, as
// "offset key=value" strings.
func committedRecords(t *testing.T, l *Log) []string {
	t.Helper()
	var out []string
	for _, r := range readCommitted(t, l) {
		out = append(out, fmt.Sprintf("%d %s=%s", r.Offset, r.Key, r.Value))
	}
	return out
}

// latestCommitted is each key's latest record among committed ones.
func latestCommitted(recs []string) map[string]string {
	out := map[string]string{}
	for _, r := range recs {
		var off int64
		var kvs string
		_, _ = fmt.Sscanf(r, "%d %s", &off, &kvs)
		k, _, _ := strings.Cut(kvs, "=")
		out[k] = r
	}
	return out
}

// checkTxnIndexes checks every sealed segment's aborted transaction index
// file against the log's aborted transactions whose markers it holds.
func checkTxnIndexes(t *testing.T, l *Log) {
	t.Helper()
	segs := l.Segments()
	for _, s := range segs[:len(segs)-1] {
		want := l.txnIndexBytes(s.Base, s.Next, nil)
		data, err := os.ReadFile(filepath.Join(l.Dir(), segment.FileName(s.Base, TxnIndexSuffix)))
		if len(want) == 0 {
			require.ErrorIs(t, err, os.ErrNotExist, "segment %d", s.Base)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, want, data, "segment %d", s.Base)
	}
}

// TestLogCleanTransactions: a round removes aborted transactions' records
// (and puts none in its map), keeps markers and the aborted-transaction
// entries that go with them, stops at an open transaction (the last
// stable offset), and read_committed readers see the same latest values
// before and after, reopened too.
func TestLogCleanTransactions(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 600
	l := openTestLog(t, cfg, false)
	plain := func(tag string, keys ...string) {
		var b batch.Builder
		b.Reset(0)
		for _, k := range keys {
			b.Add(time.Now().UnixMilli(), []byte(k), []byte(tag+"-"+k), nil)
		}
		_, err := l.Append(append(batch.Batch(nil), b.Finish()...))
		require.NoError(t, err)
	}
	end := func(pid int64, commit bool) {
		_, err := l.EndTxn(pid, 0, commit, 0, true)
		require.NoError(t, err)
	}
	plain("p1", "a", "b", "c")
	mustAppend(t, l, keyedProduced(7, 0, true, "t7", "a", "b", "z")) // to abort: z exists only here
	mustAppend(t, l, keyedProduced(8, 0, true, "t8", "a", "c"))      // to commit
	plain("p2", "b")
	end(7, false)
	end(8, true)
	for i := range 6 {
		plain(fmt.Sprintf("q%d", i), "c", "d")
		mustAppend(t, l, keyedProduced(7, int32(3+2*i), true, fmt.Sprintf("r%d", i), "a", "d"))
		end(7, i%2 == 0)
	}
	plain("p3", "e")
	firstOpen := mustAppend(t, l, keyedProduced(9, 0, true, "t9", "a", "e")) // left open
	plain("p4", "a", "b", "c", "d", "e")
	forceRoll(t, l)
	plain("p5", "a")
	require.Equal(t, firstOpen, l.LastStable())
	require.Greater(t, l.SegmentCount(), 4)

	before := committedRecords(t, l)
	tail := readAll(t, l, firstOpen)
	var markers []int64
	for _, b := range headers(t, l) {
		if b.IsControl() {
			markers = append(markers, b.BaseOffset())
		}
	}
	require.Len(t, markers, 8)

	check := func(l *Log) {
		t.Helper()
		after := committedRecords(t, l)
		require.Subset(t, before, after)
		require.Equal(t, latestCommitted(before), latestCommitted(after))
		var got []int64
		for _, b := range headers(t, l) {
			if b.IsControl() {
				got = append(got, b.BaseOffset())
			}
		}
		require.Equal(t, markers, got, "markers stay")
		for _, r := range readAll(t, l, 0) {
			require.NotEqual(t, "z", string(r.Key), "the aborted record is gone")
			if r.Offset < firstOpen {
				require.NotContains(t, string(r.Value), "t7-", "aborted records are gone")
			}
		}
		require.Equal(t, tail, readAll(t, l, firstOpen), "from the open transaction on, nothing changed")
		aborted, err := l.AbortedTxns(0, l.HighWatermark())
		require.NoError(t, err)
		require.Len(t, aborted, 4)
		checkTxnIndexes(t, l)
	}
	st, err := l.CleanState(time.Now())
	require.NoError(t, err)
	require.LessOrEqual(t, st.Bound, firstOpen)
	res, err := l.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.LessOrEqual(t, res.End, firstOpen)
	check(l)
	require.NoError(t, l.Close(true))
	l = openTestLog(t, cfg, true)
	check(l)
	l.Abandon()
	l = openTestLog(t, cfg, false)
	check(l)

	// Once the transaction ends, a round reaches past it.
	m9, err := l.EndTxn(9, 0, true, 0, true)
	require.NoError(t, err)
	plain("p6", "f")
	forceRoll(t, l)
	plain("p7", "g")
	before = committedRecords(t, l)
	firstOpen = l.HighWatermark()
	markers = append(markers, m9)
	res, err = l.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Greater(t, res.End, l.Segments()[0].Next)
	tail = readAll(t, l, firstOpen)
	check(l)
}

// TestLogCleanKeepsProducerSequence: a producer's last batch, emptied by
// a round, stays as an empty header carrying its sequence: after reopen a
// retry of it is still a duplicate and the next sequence is taken.
func TestLogCleanKeepsProducerSequence(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 500
	l := openTestLog(t, cfg, false)
	require.Equal(t, int64(0), mustAppend(t, l, keyedProduced(1, 0, false, "p1", "x", "y"))) // 0-1
	require.Equal(t, int64(2), mustAppend(t, l, keyedProduced(1, 2, false, "p1", "p", "q"))) // 2-3: last of 1
	require.Equal(t, int64(4), mustAppend(t, l, keyedProduced(2, 0, false, "p2", "x", "r"))) // 4-5: last of 2, r lives
	for i := range 10 {
		_, err := l.Append(keyed(time.Now().UnixMilli(), kv{key: "p", value: fmt.Sprint(i)}, kv{key: "q", value: "-"}, kv{key: "y", value: "-"}, kv{key: "x", value: "-"}))
		require.NoError(t, err)
	}
	forceRoll(t, l)
	_, err := l.Append(keyed(time.Now().UnixMilli(), kv{key: "tail", value: "t"}))
	require.NoError(t, err)

	res, err := l.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	check := func(l *Log) {
		t.Helper()
		hs := headers(t, l)
		byBase := map[int64]batch.Batch{}
		for _, b := range hs {
			byBase[b.BaseOffset()] = b
		}
		require.NotContains(t, byBase, int64(0), "an emptied batch that is not a producer's last goes")
		last := byBase[2]
		require.NotNil(t, last, "producer 1's last batch stays")
		require.Zero(t, last.NumRecords())
		require.Equal(t, int64(3), last.LastOffset())
		require.Equal(t, int64(1), last.ProducerID())
		require.Equal(t, int32(3), last.LastSequence())
		require.Equal(t, int32(1), byBase[4].NumRecords(), "only r lives")
		require.Equal(t, int32(1), byBase[4].LastSequence())
	}
	check(l)
	require.NoError(t, l.Close(true))
	l = openTestLog(t, cfg, true)
	check(l)
	l.Abandon()
	l = openTestLog(t, cfg, false)
	check(l)

	a, err := l.AppendProduced(keyedProduced(1, 2, false, "p1", "p", "q"))
	require.NoError(t, err)
	require.True(t, a.Duplicate, "a retry of the emptied batch")
	require.Equal(t, int64(2), a.Base)
	a, err = l.AppendProduced(keyedProduced(2, 0, false, "p2", "x", "r"))
	require.NoError(t, err)
	require.True(t, a.Duplicate)
	a, err = l.AppendProduced(keyedProduced(1, 4, false, "p1", "s"))
	require.NoError(t, err)
	require.False(t, a.Duplicate)
	_, err = l.AppendProduced(keyedProduced(2, 5, false, "p2", "s"))
	require.ErrorIs(t, err, errs.ErrOutOfOrderSequence)

	// A second round keeps it too; once the producer writes a newer batch
	// (sealed), the empty one goes.
	forceRoll(t, l)
	_, err = l.Append(keyed(time.Now().UnixMilli(), kv{key: "tail", value: "t2"}))
	require.NoError(t, err)
	_, err = l.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	for _, b := range headers(t, l) {
		require.NotEqual(t, int64(2), b.BaseOffset(), "no longer producer 1's last")
	}
}

// fillKeys appends n records over keys key-0..key-(keys-1), one in ten a
// tombstone, timestamps from ts on by step ms, and notes them in md.
func fillKeys(t *testing.T, l *Log, md *model, rng *rand.Rand, n, keys int, ts, step int64) {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("key-%03d", rng.IntN(keys))
		r := kv{key: k, value: fmt.Sprintf("v%d-%d", i, rng.Uint32())}
		if rng.IntN(10) == 0 {
			r = kv{key: k, tombstone: true}
		}
		md.put(t, l, ts+int64(i)*step, r)
	}
}

// TestLogCleanReaders: a view taken before a round reads the same bytes
// after the swap, and readers going over the log while rounds and appends
// run always see whole batches in offset order, every key's value at most
// once per pass and the keys written once always.
func TestLogCleanReaders(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 2 << 10
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	for i := range 5 {
		md.put(t, l, now.UnixMilli(), kv{key: fmt.Sprintf("anchor-%d", i), value: "stays"})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	fillKeys(t, l, md, rng, 600, 30, now.UnixMilli(), 0)

	v, err := l.Read(0, 1<<20)
	require.NoError(t, err)
	want := append([]byte(nil), v.Data...)
	res, err := l.Clean(context.Background(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Less(t, res.BytesWritten, res.BytesRead)
	require.Equal(t, want, v.Data, "the view keeps its mapping")
	v.Release()
	md.check(t, l)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		// A pass over the log after every append, while rounds run.
		bell := make(chan struct{}, 1)
		l.Watch(bell)
		t.Cleanup(func() { l.Unwatch(bell) })
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case <-bell:
				case <-ctx.Done():
					return
				}
				seen := map[string]bool{}
				last := int64(-1)
				for off := int64(0); ctx.Err() == nil; {
					v, err := l.Read(off, 4<<10)
					if !assert.NoError(t, err) {
						return
					}
					if len(v.Data) == 0 {
						v.Release()
						break
					}
					var it batch.Iter
					it.Reset(v.Data, off)
					var r batch.Record
					for it.Next(&r) {
						if !assert.Greater(t, r.Offset, last) {
							return
						}
						last = r.Offset
						if strings.HasPrefix(string(r.Key), "anchor-") {
							assert.False(t, seen[string(r.Key)], "anchor read twice")
							seen[string(r.Key)] = true
						}
					}
					if !assert.NoError(t, it.Err()) {
						return
					}
					off = it.Offset()
					v.Release()
				}
				if ctx.Err() == nil {
					assert.Len(t, seen, 5, "every anchor read in a pass")
				}
			}
		})
	}
	for round := range 6 {
		fillKeys(t, l, md, rng, 50, 30, now.UnixMilli(), 0)
		_, err := l.Clean(context.Background(), now.Add(time.Duration(round)*time.Minute), NewKeyMap(0), true)
		require.NoError(t, err)
	}
	cancel()
	wg.Wait()
	md.check(t, l)
}

// TestLogCleanRacesRetention: a round whose segments DeleteRecords deleted
// while it rewrote them is dropped, leaving no files behind, and the next
// round works.
func TestLogCleanRacesRetention(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	var l *Log
	var armed, fired atomic.Bool
	var deleteBefore int64
	inCleanDir := string(filepath.Separator) + cleanDir + string(filepath.Separator)
	cfg.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		if op == errorfs.OpOpen && strings.Contains(path, inCleanDir) && armed.Load() && fired.CompareAndSwap(false, true) {
			// The round creates its first new segment: delete under it.
			_, err := l.DeleteRecords(deleteBefore)
			require.NoError(t, err)
		}
		return nil
	}))
	l = openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(5, 6))
	fillKeys(t, l, md, rng, 300, 20, now.UnixMilli(), 0)
	forceRoll(t, l)
	segs := l.Segments()
	require.Greater(t, len(segs), 4)
	deleteBefore = segs[2].Base
	want := readAll(t, l, deleteBefore)

	armed.Store(true)
	res, err := l.Clean(context.Background(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, fired.Load())
	require.False(t, res.Cleaned, "the round is dropped")
	require.Equal(t, deleteBefore, l.StartOffset())
	require.NoDirExists(t, filepath.Join(cfg.Dir, cleanDir))
	require.NoFileExists(t, filepath.Join(cfg.Dir, swapFile))
	require.Equal(t, want, readAll(t, l, deleteBefore), "nothing cleaned")

	res, err = l.Clean(context.Background(), now, NewKeyMap(0), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	require.Equal(t, deleteBefore, l.StartOffset(), "cleaning does not move the start")
	md.dropBelow(deleteBefore)
	md.check(t, l)
	require.NoError(t, l.Close(true))
	cfg.FS = nil
	md.check(t, openTestLog(t, cfg, true))
}

// dropBelow forgets the keys whose latest record is below start (deleted
// by DeleteRecords).
func (m *model) dropBelow(start int64) {
	for k, off := range m.offs {
		if off < start {
			delete(m.offs, k)
			delete(m.vals, k)
		}
	}
}

// TestLogCleanConcurrentDeleteRecords: rounds, appends and DeleteRecords
// running together: no round fails (one that lost its segments is
// dropped), and the log ends as the model says.
func TestLogCleanConcurrentDeleteRecords(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(11, 12))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	bell := make(chan struct{}, 1)
	l.Watch(bell)
	defer l.Unwatch(bell)
	wg.Go(func() {
		for ctx.Err() == nil {
			select {
			case <-bell:
			case <-ctx.Done():
				return
			}
			// Up to a few records behind the end, a step at each append.
			to := max(l.StartOffset(), l.HighWatermark()-40)
			if _, err := l.DeleteRecords(min(l.StartOffset()+3, to)); !assert.NoError(t, err) {
				return
			}
		}
	})
	for round := range 20 {
		fillKeys(t, l, md, rng, 60, 200, now.UnixMilli(), 0)
		_, err := l.Clean(context.Background(), now.Add(time.Duration(round)*time.Millisecond), NewKeyMap(0), true)
		require.NoError(t, err)
	}
	cancel()
	wg.Wait()
	_, err := l.Clean(context.Background(), now.Add(time.Second), NewKeyMap(0), true)
	require.NoError(t, err)
	md.dropBelow(l.StartOffset())
	md.check(t, l)
	require.NoDirExists(t, filepath.Join(cfg.Dir, cleanDir))
}

// TestLogCleanOffsetForTime: over a cleaned log a lookup by time finds the
// first surviving record at or after the time.
func TestLogCleanOffsetForTime(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	l := openTestLog(t, cfg, false)
	md := newModel()
	base := time.Now().Add(-time.Hour).UnixMilli()
	fillKeys(t, l, md, rand.New(rand.NewPCG(7, 8)), 400, 25, base, 10)
	forceRoll(t, l)
	_, err := l.Clean(context.Background(), time.Now(), NewKeyMap(0), true)
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Less(t, len(recs), 100)
	for ts := base - 5; ts <= base+400*10+5; ts += 5 {
		want := int64(-1)
		for _, r := range recs {
			if r.Timestamp >= ts {
				want = r.Offset
				break
			}
		}
		got, err := l.OffsetForTime(ts)
		require.NoError(t, err)
		require.Equal(t, want, got, "time %d", ts-base)
	}
}

// TestLogCleanFollower: a follower of the log's directory sees the
// cleaned segments after Refresh and reads what the owner reads; one
// opened after the round too.
func TestLogCleanFollower(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(9, 10))
	fillKeys(t, l, md, rng, 300, 20, now.UnixMilli(), 0)
	fcfg := cfg
	fcfg.Follow = true
	f := openTestLog(t, fcfg, false)
	md.check(t, f)

	for round := range 3 {
		res, err := l.Clean(context.Background(), now, NewKeyMap(0), true)
		require.NoError(t, err)
		require.True(t, res.Cleaned)
		_, err = f.Refresh()
		require.NoError(t, err)
		require.Equal(t, l.Segments(), f.Segments(), "round %d", round)
		require.Equal(t, readAll(t, l, 0), readAll(t, f, 0))
		md.check(t, f)
		fillKeys(t, l, md, rng, 100, 20, now.UnixMilli(), 0)
		_, err = f.Refresh()
		require.NoError(t, err)
		md.check(t, f)
	}
	md.check(t, openTestLog(t, fcfg, false))
}

// TestLogCleanRemovesSpentMarkers: Kafka's rule for transaction markers.
// A marker stays while its transaction has data in a round's input; once
// none is left it gets a delete horizon, and a round past the horizon
// removes it, and with an ABORT marker its aborted transaction's entry.
// The marker after an active producer's last data batch stays.
func TestLogCleanRemovesSpentMarkers(t *testing.T) {
	cfg := compactLog(t)
	l := openTestLog(t, cfg, false)
	t0 := time.Now()
	plain := func(keys ...string) {
		_, err := l.Append(keyed(t0.UnixMilli(), func() (out []kv) {
			for _, k := range keys {
				out = append(out, kv{key: k, value: "plain"})
			}
			return out
		}()...))
		require.NoError(t, err)
	}
	mustAppend(t, l, keyedProduced(5, 0, true, "t1", "a"))
	commit1, err := l.EndTxn(5, 0, true, 0, true)
	require.NoError(t, err)
	mustAppend(t, l, keyedProduced(5, 1, true, "t2", "b"))
	abort2, err := l.EndTxn(5, 0, false, 0, true)
	require.NoError(t, err)
	mustAppend(t, l, keyedProduced(5, 2, true, "t3", "c"))
	commit3, err := l.EndTxn(5, 0, true, 0, true)
	require.NoError(t, err)
	plain("a", "c") // supersedes the committed records
	forceRoll(t, l)
	plain("x")

	markers := func() (out []int64, horizons int) {
		for _, b := range headers(t, l) {
			if b.IsControl() {
				out = append(out, b.BaseOffset())
				if _, ok := b.DeleteHorizon(); ok {
					horizons++
				}
			}
		}
		return out, horizons
	}
	round := func(at time.Time) {
		t.Helper()
		res, err := l.Clean(t.Context(), at, NewKeyMap(0), true)
		require.NoError(t, err)
		require.True(t, res.Cleaned)
		checkTxnIndexes(t, l)
		forceRoll(t, l) // new dirty bytes for the next round
		plain("x")
	}

	round(t0) // the transactions' data is met, and removed: markers stay
	got, horizons := markers()
	require.Equal(t, []int64{commit1, abort2, commit3}, got)
	require.Zero(t, horizons)
	aborted, err := l.AbortedTxns(0, l.HighWatermark())
	require.NoError(t, err)
	require.Len(t, aborted, 1)

	round(t0) // no data left: the spent markers get their horizon
	got, horizons = markers()
	require.Equal(t, []int64{commit1, abort2, commit3}, got)
	require.Equal(t, 2, horizons, "the last marker of an active producer is not spent")

	round(t0.Add(2 * time.Hour)) // past the horizon (DeleteRetention: 1h)
	got, _ = markers()
	require.Equal(t, []int64{commit3}, got)
	aborted, err = l.AbortedTxns(0, l.HighWatermark())
	require.NoError(t, err)
	require.Empty(t, aborted)
	require.Empty(t, committedRecordsWith(t, l, "t2-"), "no aborted record shows")

	// Reopened after a crash, the same.
	l.Abandon()
	l = openTestLog(t, cfg, false)
	got, _ = markers()
	require.Equal(t, []int64{commit3}, got)
	aborted, err = l.AbortedTxns(0, l.HighWatermark())
	require.NoError(t, err)
	require.Empty(t, aborted)
}

// committedRecordsWith returns the read_committed records whose value
// holds s.
func committedRecordsWith(t *testing.T, l *Log, s string) []string {
	var out []string
	for _, r := range committedRecords(t, l) {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

// TestLogCleanStopsAtDamage: a round that meets a damaged batch fails
// (batch.ErrCorrupt) rather than rewrite the damage into a clean-looking
// gap, and the log is not cleaned again until reopened.
func TestLogCleanStopsAtDamage(t *testing.T) {
	cfg := compactLog(t)
	l := openTestLog(t, cfg, false)
	now := time.Now()
	for i := range 400 {
		_, err := l.Append(keyed(now.UnixMilli(), kv{key: fmt.Sprintf("k%d", i%10), value: fmt.Sprintf("value-%d", i)}))
		require.NoError(t, err)
	}
	require.Greater(t, l.SegmentCount(), 3)
	require.NoError(t, l.Close(true))
	// Flip a byte of a record in the middle of the first segment.
	path := filepath.Join(cfg.Dir, segment.FileName(0, segment.LogSuffix))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o600))
	l = openTestLog(t, cfg, false)
	before := snapshotDir(t, cfg.Dir)

	_, err = l.Clean(t.Context(), now, NewKeyMap(0), true)
	require.ErrorIs(t, err, batch.ErrCorrupt)
	st, err := l.CleanState(now)
	require.NoError(t, err)
	require.True(t, st.Uncleanable)
	require.False(t, st.Due(0))
	_, err = l.Clean(t.Context(), now, NewKeyMap(0), true)
	require.ErrorIs(t, err, batch.ErrCorrupt, "not again until reopened")
	require.Equal(t, before, snapshotDir(t, cfg.Dir), "nothing changed on disk")
}

// TestLogCleanConcurrentReconfigure: a round runs while the log's settings
// change (AlterTopic): the round uses the segment config of its start, read
// under the log's lock (the race detector checks), and the log ends as the
// model says.
func TestLogCleanConcurrentReconfigure(t *testing.T) {
	cfg := compactLog(t)
	cfg.SegmentBytes = 1 << 10
	l := openTestLog(t, cfg, false)
	md := newModel()
	now := time.Now()
	fillKeys(t, l, md, rand.New(rand.NewPCG(7, 8)), 300, 20, now.UnixMilli(), 0)
	forceRoll(t, l)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := l.Settings()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.SegmentBytes = 1<<10 + int64(i%2)<<10
			require.NoError(t, l.Reconfigure(s))
		}
	})
	res, err := l.Clean(context.Background(), now, NewKeyMap(0), true)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	md.check(t, l)
}
