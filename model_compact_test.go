package stream

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The compaction model test (issue 18): random steps on a compacted topic
// (bursts of publishes and tombstones from several goroutines with
// Broker.Compact beside them, Compact calls, the clock moving on, AlterTopic
// between compact and compact,delete with other delete retentions and
// compaction lags, clean restarts and crashes), with the background cleaner
// running and an injected clock. The model is every record ever published;
// cleaning removes an unpredictable part of them, so after each step the
// topic, read from its start, must show:
//
//   - only records the model has, at their offsets, whole, in order;
//   - for every key whose latest record is at or past the log start
//     (compact,delete's retention may delete segments): that latest record
//     itself; or, if it is a tombstone whose delete horizon may have passed
//     (now ≥ its time + the least DeleteRetention in force since it was
//     published), nothing at all of the key. A tombstone younger than that
//     is always seen, and no older value ever shows again;
//   - every record younger than the least MinCompactionLag in force since
//     it was published.
//
//	EMBEDSTREAM_COMPACT_MODEL_SEED=n   the seed (default 1)
//	EMBEDSTREAM_COMPACT_MODEL_STEPS=k  steps (default 60)

const (
	cmTopic = "cm"
	cmParts = 2
	cmKeys  = 200 // key i lives in partition i % cmParts
)

// cmRec is a published record, as the model keeps it.
type cmRec struct {
	off    int64
	key    string
	value  []byte // nil: a tombstone
	ts     int64  // ms
	minDR  time.Duration
	minLag time.Duration
}

type cmModel struct {
	t     *testing.T
	rng   *rand.Rand
	dir   string
	opts  Options
	clock atomic.Int64
	b     *Broker
	cfg   TopicConfig
	parts [cmParts][]*cmRec // by offset
	steps map[string]int
	stats Stats // of the brokers closed or crashed
	gone  int   // keys found gone (their tombstones removed), summed over checks
	clean int   // records found removed by the cleaner, summed over checks
}

func (m *cmModel) now() time.Time { return time.UnixMilli(m.clock.Load()) }

// deleteRetention is the tombstones' retention cfg means.
func (m *cmModel) deleteRetention() time.Duration {
	switch {
	case m.cfg.DeleteRetention < 0:
		return 0
	case m.cfg.DeleteRetention == 0:
		return DefaultDeleteRetention
	}
	return m.cfg.DeleteRetention
}

func TestCompactionModel(t *testing.T) {
	seed := uint64(mdlEnvInt(t, "EMBEDSTREAM_COMPACT_MODEL_SEED", 1))
	steps := mdlEnvInt(t, "EMBEDSTREAM_COMPACT_MODEL_STEPS", 60)
	t.Logf("seed %d (EMBEDSTREAM_COMPACT_MODEL_SEED)", seed)
	m := &cmModel{t: t, rng: rand.New(rand.NewPCG(seed, 18)), dir: t.TempDir(), steps: map[string]int{}}
	m.clock.Store(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	m.opts = Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, Now: m.now,
		CleanerBackoff: 5 * time.Millisecond, RetentionCheckInterval: 5 * time.Millisecond}
	m.cfg = TopicConfig{Partitions: cmParts, Cleanup: CleanupCompact, SegmentBytes: 4 << 10,
		MinCleanableDirtyRatio: 0.1, DeleteRetention: 10 * time.Minute, Retention: 3 * time.Hour}
	m.b = openBroker(t, m.dir, &m.opts)
	require.NoError(t, m.b.CreateTopic(cmTopic, m.cfg))
	defer func() { m.b.Close() }()
	start := time.Now()
	for i := range steps {
		var step string
		switch n := m.rng.IntN(20); {
		case n < 8:
			step = "publish"
			m.publish(seed, i)
		case n < 11:
			step = "compact"
			require.NoError(t, m.b.Compact(t.Context(), cmTopic))
		case n < 14:
			step = "clock"
			m.advance(time.Duration(m.rng.IntN(20)) * time.Minute)
		case n < 17:
			step = "alter"
			m.alter()
		case n < 18:
			step = "restart"
			m.addStats()
			require.NoError(t, m.b.Close())
			m.b = openBroker(t, m.dir, &m.opts)
		default:
			step = "crash"
			m.addStats()
			crash(t, m.b)
			m.b = openBroker(t, m.dir, &m.opts)
		}
		m.steps[step]++
		m.check(fmt.Sprintf("step %d (%s)", i, step))
	}
	// Past every horizon, with retention off (so that something is left)
	// and no compaction lag (so that the filler is cleanable at once): a
	// round sets the horizon of the tombstones it meets, a later one
	// removes them, and nothing is left of the sealed segments but the
	// latest value of every key.
	require.NoError(t, m.b.AlterTopic(cmTopic, func(c *TopicConfig) {
		c.Cleanup, c.MinCompactionLag, c.MaxCompactionLag = CleanupCompact, 0, 0
	}))
	m.cfg.Cleanup, m.cfg.MinCompactionLag, m.cfg.MaxCompactionLag = CleanupCompact, 0, 0
	for range 2 {
		m.advance(48 * time.Hour)
		m.fill()
		require.NoError(t, m.b.Compact(t.Context(), cmTopic))
		m.check("final")
	}
	for p := range cmParts {
		latest := map[string]*cmRec{}
		for _, r := range m.parts[p] {
			latest[r.key] = r
		}
		for _, rec := range m.read(int32(p)).recs {
			if k := string(rec.Key); k[0] == 'k' {
				require.Equal(t, latest[k].off, rec.Offset, "final: partition %d key %s: a superseded record was not removed", p, k)
				require.NotNil(t, rec.Value, "final: partition %d key %s: a tombstone was not removed", p, k)
			}
		}
	}
	var published, read int
	for p := range cmParts {
		published += len(m.parts[p])
		read += len(m.read(int32(p)).recs)
	}
	m.addStats()
	t.Logf("%d steps in %v %v: %d records published, %d left; %d cleaner rounds, %d bytes reclaimed; the checks found %d records cleaned and %d keys gone",
		steps, time.Since(start).Round(time.Millisecond), m.steps, published, read, m.stats.CleanerRuns, m.stats.BytesReclaimed, m.clean, m.gone)
	require.Positive(t, m.stats.BytesReclaimed)
	require.Positive(t, read)
	require.Less(t, read, published/2)
}

func (m *cmModel) addStats() {
	st := m.b.Stats()
	m.stats.CleanerRuns += st.CleanerRuns
	m.stats.BytesReclaimed += st.BytesReclaimed
}

// publish runs a burst: writers publishing random writes at once, and a
// goroutine compacting beside them.
func (m *cmModel) publish(seed uint64, step int) {
	t := m.t
	var mu sync.Mutex
	var got []*cmRec
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range 3 {
		rng := rand.New(rand.NewPCG(seed, uint64(step*8+w)))
		wg.Go(func() {
			for range 5 + rng.IntN(20) {
				var recs []*Record
				for range 1 + rng.IntN(3) {
					k := rng.IntN(cmKeys)
					r := &Record{Topic: cmTopic, Partition: int32(k % cmParts), Key: fmt.Appendf(nil, "k-%03d", k)}
					if rng.IntN(6) != 0 {
						r.Value = fmt.Appendf(nil, "%d/%d/%s", step, w, bytes.Repeat([]byte("v"), rng.IntN(50)))
					}
					recs = append(recs, r)
				}
				if err := m.b.Publish(t.Context(), recs...); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, r := range recs {
					got = append(got, &cmRec{off: r.Offset, key: string(r.Key), value: r.Value, ts: r.Timestamp.UnixMilli()})
				}
				mu.Unlock()
			}
		})
	}
	var compacter sync.WaitGroup
	compacter.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := m.b.Compact(t.Context(), cmTopic); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	close(done)
	compacter.Wait()
	require.False(t, t.Failed())
	dr, lag := m.deleteRetention(), m.cfg.MinCompactionLag
	for _, r := range got {
		r.minDR, r.minLag = dr, lag
		var k int
		fmt.Sscanf(r.key, "k-%d", &k)
		p := k % cmParts
		m.parts[p] = append(m.parts[p], r)
	}
	for p := range m.parts {
		slices.SortFunc(m.parts[p], func(a, b *cmRec) int { return int(a.off - b.off) })
	}
}

// fill publishes enough records of keys of their own ("z-...") to seal
// every segment before them.
func (m *cmModel) fill() {
	for p := range int32(cmParts) {
		for i := range 4 * m.cfg.SegmentBytes / 64 {
			r := &Record{Topic: cmTopic, Partition: p, Key: fmt.Appendf(nil, "z-%d", p), Value: fmt.Appendf(nil, "filler %d %s", i, bytes.Repeat([]byte("f"), 40))}
			require.NoError(m.t, m.b.Publish(m.t.Context(), r))
			m.parts[p] = append(m.parts[p], &cmRec{off: r.Offset, key: string(r.Key), value: r.Value, ts: r.Timestamp.UnixMilli(),
				minDR: m.deleteRetention(), minLag: m.cfg.MinCompactionLag})
		}
	}
}

// advance moves the clock on, between two cleaning rounds: a round reads
// the clock under the cleaner's lock, so no round straddles the move.
func (m *cmModel) advance(d time.Duration) {
	m.b.cleaner.turn <- struct{}{}
	m.clock.Add(d.Milliseconds())
	<-m.b.cleaner.turn
}

// alter changes the policy, the delete retention, or the compaction lags.
func (m *cmModel) alter() {
	cfg := m.cfg
	switch m.rng.IntN(3) {
	case 0:
		cfg.Cleanup = []CleanupPolicy{CleanupCompact, CleanupCompactDelete}[m.rng.IntN(2)]
	case 1:
		cfg.DeleteRetention = []time.Duration{-1, time.Minute, 10 * time.Minute, time.Hour}[m.rng.IntN(4)]
	default:
		cfg.MinCompactionLag = []time.Duration{0, 5 * time.Minute, 15 * time.Minute}[m.rng.IntN(3)]
		cfg.MaxCompactionLag = []time.Duration{0, 30 * time.Minute}[m.rng.IntN(2)]
	}
	require.NoError(m.t, m.b.AlterTopic(cmTopic, func(c *TopicConfig) {
		c.Cleanup, c.DeleteRetention = cfg.Cleanup, cfg.DeleteRetention
		c.MinCompactionLag, c.MaxCompactionLag = cfg.MinCompactionLag, cfg.MaxCompactionLag
	}))
	m.cfg = cfg
	dr := m.deleteRetention()
	for p := range m.parts {
		for _, r := range m.parts[p] {
			r.minDR, r.minLag = min(r.minDR, dr), min(r.minLag, cfg.MinCompactionLag)
		}
	}
}

// cmRead is a partition read whole from its start.
type cmRead struct {
	start int64
	recs  []*Record
}

// read reads partition p from its start, again if retention moved the
// start meanwhile.
func (m *cmModel) read(p int32) cmRead {
	t := m.t
	for {
		before, err := m.b.DescribeTopic(cmTopic)
		require.NoError(t, err)
		r, err := m.b.NewReader(cmTopic, p, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		var out cmRead
		for rec, err := range r.All(t.Context()) {
			require.NoError(t, err)
			c := *rec
			c.Key, c.Value = bytes.Clone(rec.Key), bytes.Clone(rec.Value)
			out.recs = append(out.recs, &c)
		}
		require.NoError(t, r.Close())
		after, err := m.b.DescribeTopic(cmTopic)
		require.NoError(t, err)
		if out.start = after.Partitions[p].StartOffset; out.start == before.Partitions[p].StartOffset {
			return out
		}
	}
}

func (m *cmModel) check(when string) {
	t := m.t
	now := m.clock.Load()
	for p := range int32(cmParts) {
		got := m.read(p)
		model := m.parts[p]
		byOff := make(map[int64]*cmRec, len(model))
		latest := map[string]*cmRec{}
		for _, r := range model {
			byOff[r.off] = r
			latest[r.key] = r
		}
		seen := map[string][]*Record{}
		last := int64(-1)
		for _, rec := range got.recs {
			require.Greater(t, rec.Offset, last, "%s: partition %d: offsets ascend", when, p)
			last = rec.Offset
			require.GreaterOrEqual(t, rec.Offset, got.start, "%s: partition %d", when, p)
			want := byOff[rec.Offset]
			require.NotNil(t, want, "%s: partition %d offset %d was never published", when, p, rec.Offset)
			require.Equal(t, want.key, string(rec.Key), "%s: partition %d offset %d", when, p, rec.Offset)
			require.True(t, mdlBytesEqual(want.value, rec.Value), "%s: partition %d offset %d: value %q, want %q", when, p, rec.Offset, rec.Value, want.value)
			require.Equal(t, want.ts, rec.Timestamp.UnixMilli(), "%s: partition %d offset %d", when, p, rec.Offset)
			seen[want.key] = append(seen[want.key], rec)
		}
		for k, l := range latest {
			if l.off < got.start {
				require.Empty(t, seen[k], "%s: partition %d key %s: records below the log start", when, p, k)
				continue
			}
			ss := seen[k]
			if len(ss) == 0 {
				require.Nil(t, l.value, "%s: partition %d key %s: its latest value (offset %d) is gone", when, p, k, l.off)
				require.GreaterOrEqual(t, now, l.ts+l.minDR.Milliseconds(),
					"%s: partition %d key %s: its tombstone (offset %d, time %d) went before its delete retention %v (now %d)", when, p, k, l.off, l.ts, l.minDR, now)
				m.gone++
				continue
			}
			require.Equal(t, l.off, ss[len(ss)-1].Offset, "%s: partition %d key %s: not its latest record (a deleted value came back, or the latest was lost)", when, p, k)
		}
		// Records younger than the compaction lag are all there.
		i := 0
		for _, r := range model {
			if r.off >= got.start {
				m.clean++ // less those found below
			}
			if r.off < got.start || now >= r.ts+r.minLag.Milliseconds() {
				continue
			}
			for i < len(got.recs) && got.recs[i].Offset < r.off {
				i++
			}
			require.True(t, i < len(got.recs) && got.recs[i].Offset == r.off,
				"%s: partition %d offset %d (time %d) was cleaned within its compaction lag %v (now %d)", when, p, r.off, r.ts, r.minLag, now)
		}
		m.clean -= len(got.recs)
	}
}
