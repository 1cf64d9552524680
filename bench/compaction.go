package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/internal/log"
)

// The compaction rows (#18's goals), ours only: the log cleaner's
// throughput and the space it reclaims on a keyed stream (Broker.Compact on
// a compacted topic whose background cleaner is off), the memory of its key
// map, and the table view's Get and catch-up.
//
// The peers sit these rows out. kfake compacts (Cluster.Compact), but in
// memory over its own batch slices with an unbounded Go map, and has no
// table view, so its figures would not measure the same work; JetStream's
// key-value store keeps a per-subject history limit as it writes instead
// of cleaning a log; the raw file has neither.

const (
	compactSection = "Compaction: a compacted topic, one partition, ~100 B values over a fixed set of keys (uniformly random), cleaned by Broker.Compact (background cleaner off); the table view over 10,000 keys."
	compactValue   = 100
	compactNotOurs = "no fair comparison: kfake compacts its in-memory batches with an unbounded map and has no table view; JetStream's KV limits history per subject as it writes; the raw file has neither"
	// compactGoalMBps is #18's cleaner goal.
	compactGoalMBps = 200
)

// compactSizes returns the records and keys of the cleaning workload:
// 1M records over 10k keys in a full run.
func compactSizes(s sizes) (records, keys int) {
	return s.records, min(10_000, max(s.records/100, 10))
}

func compactWorkloads(s sizes) []workload {
	n, keys := compactSizes(s)
	mb := func(key, label string) metricSpec {
		return metricSpec{key: key, label: label, format: func(v float64) string { return fmt.Sprintf("%.2f MB", v) }}
	}
	kib := func(key, label string) metricSpec {
		return metricSpec{key: key, label: label, format: func(v float64) string { return fmt.Sprintf("%.0f KiB", v) }}
	}
	pct := func(key, label string) metricSpec {
		return metricSpec{key: key, label: label, higher: true, format: func(v float64) string { return fmt.Sprintf("%.1f%%", v) }}
	}
	return []workload{
		{id: "compact-clean", section: compactSection,
			title: fmt.Sprintf("clean %s × 100 B over %s keys", count(n), count(keys)),
			metrics: []metricSpec{
				mbpsLabeled("compact_clean_MBps", "cleaner MB/s (bytes the round read ÷ its time)"),
				msMetric("compact_clean_ms", "Broker.Compact time"),
				mb("compact_bytes_before_MB", "partition bytes before"),
				mb("compact_bytes_after_MB", "partition bytes after"),
				pct("compact_reclaimed_pct", "space reclaimed"),
				kib("compact_keymap_KiB", "key map for these keys (KeyMap table)"),
			},
			run: compactClean},
		{id: "compact-table", section: compactSection,
			title: fmt.Sprintf("table view over %s keys of 100 B", count(tableKeys)),
			metrics: []metricSpec{
				{key: "table_get_ns", label: "Get, ns/op", format: func(v float64) string { return fmt.Sprintf("%.0f ns", v) }},
				usMetric("table_catchup_p50_us", "catch-up after a publish, p50"),
				usMetric("table_catchup_p99_us", "catch-up after a publish, p99"),
			},
			run: compactTable},
	}
}

// compactGoals are #18's goals on the rows above.
func compactGoals() []goal {
	return []goal{
		{"compact_clean_MBps", fmt.Sprintf("≥ %d MB/s", compactGoalMBps), func(v float64, _ *report) bool { return v >= compactGoalMBps }},
		{"table_get_ns", "≤ 200 ns", func(v float64, _ *report) bool { return v <= 200 }},
		{"table_catchup_p99_us", "p99 ≤ 50 µs", func(v float64, _ *report) bool { return v <= 50 }},
	}
}

// compactKey is the key of number i.
func compactKey(i int) []byte { return fmt.Appendf(nil, "user-%06d", i) }

// compactClean fills a compacted topic with the records (keys drawn
// uniformly at random, a fixed seed), then times Broker.Compact, rounds
// while the budget lasts (up to 3, each on a fresh topic), and reports the
// median round: MB/s of the bytes the round read (Stats.CleanerBytes) over
// its time, the partition's bytes before and after, and the key map's
// memory. The broker does not expose its key map's size; the row is the
// table of a log.KeyMap (the cleaner's own type, capped at
// DefaultCleanerBufferBytes) holding the same keys. (The heap's growth over
// a round, tried as a cross-check, moved by more than the map itself.)
func compactClean(ctx context.Context, e *env, p peer) ([]float64, error) {
	if p.id() != (embedPeer{}).id() {
		return nil, notSupported(compactNotOurs)
	}
	n, keys := compactSizes(e.sizes)
	dir, err := e.newDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, DisableCleaner: true, Partitioner: stream.ManualPartitioner{}})
	if err != nil {
		return nil, err
	}
	defer b.Close()

	type round struct {
		d                   time.Duration
		read, before, after int64
		cleanerRuns         int64
	}
	var rs []round
	began := time.Now()
	for len(rs) < 3 && (len(rs) == 0 || time.Since(began) < 4*e.budget) {
		topic := fmt.Sprintf("t%d", len(rs))
		// Segments of an eighth of the log: seven cleanable, the active
		// one not (Kafka never cleans it either).
		seg := max(int64(n)*(compactValue+30)/8, 64<<10)
		if err := b.CreateTopic(topic, stream.TopicConfig{Cleanup: stream.CleanupCompact, SegmentBytes: seg}); err != nil {
			return nil, err
		}
		latest, err := fillKeyed(ctx, b, topic, n, keys)
		if err != nil {
			return nil, err
		}
		before, err := b.DescribeTopic(topic)
		if err != nil {
			return nil, err
		}
		st0 := b.Stats()
		start := time.Now()
		if err := b.Compact(ctx, topic); err != nil {
			return nil, err
		}
		d := time.Since(start)
		st1 := b.Stats()
		after, err := b.DescribeTopic(topic)
		if err != nil {
			return nil, err
		}
		if err := checkLatest(ctx, b, topic, latest); err != nil { // untimed
			return nil, err
		}
		rs = append(rs, round{d: d, read: st1.CleanerBytes - st0.CleanerBytes, before: before.Partitions[0].Bytes,
			after: after.Partitions[0].Bytes, cleanerRuns: st1.CleanerRuns - st0.CleanerRuns})
		if err := b.DeleteTopic(topic); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(rs, func(a, b round) int { return int(a.d - b.d) })
	r := rs[len(rs)/2]
	if r.cleanerRuns != 1 || r.read == 0 {
		return nil, fmt.Errorf("the compaction ran %d rounds reading %d bytes, want 1 round", r.cleanerRuns, r.read)
	}

	// The cleaner's map type, at the broker's default cap, with these keys.
	m := log.NewKeyMap(stream.DefaultCleanerBufferBytes)
	for i := range keys {
		if !m.Put(compactKey(i), int64(i)) {
			return nil, fmt.Errorf("the key map is full at %d keys", i)
		}
	}
	const mb = 1e6
	return []float64{
		float64(r.read) / mb / seconds(r.d), float64(r.d.Microseconds()) / 1e3,
		float64(r.before) / mb, float64(r.after) / mb, 100 * float64(r.before-r.after) / float64(r.before),
		float64(m.Bytes()) / 1024,
	}, nil
}

// fillKeyed publishes n records of compactValue bytes to partition 0 of
// topic in calls of 1,000, each with one of keys keys drawn at random
// (fixed seed), and returns each key's latest value.
func fillKeyed(ctx context.Context, b *stream.Broker, topic string, n, keys int) (map[string][]byte, error) {
	rng := rand.New(rand.NewPCG(18, 1))
	v := payload(compactValue)
	keyset := make([][]byte, keys)
	for i := range keyset {
		keyset[i] = compactKey(i)
	}
	latest := make(map[string][]byte, keys)
	recs := make([]stream.Record, 1000)
	ptrs := make([]*stream.Record, len(recs))
	for done := 0; done < n; {
		k := min(len(recs), n-done)
		for i := range k {
			val := make([]byte, len(v))
			copy(val, v)
			val[0], val[1], val[2] = byte(done+i), byte((done+i)>>8), byte((done+i)>>16) // values differ
			key := keyset[rng.IntN(keys)]
			recs[i] = stream.Record{Topic: topic, Key: key, Value: val}
			ptrs[i] = &recs[i]
			latest[string(key)] = val
		}
		if err := b.Publish(ctx, ptrs[:k]...); err != nil {
			return nil, err
		}
		done += k
	}
	return latest, nil
}

// checkLatest reads partition 0 of topic from the start and checks that
// the last value of every key is latest's.
func checkLatest(ctx context.Context, b *stream.Broker, topic string, latest map[string][]byte) error {
	rd, err := b.NewReader(topic, 0, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		return err
	}
	defer rd.Close()
	got := make(map[string][]byte, len(latest))
	for {
		r, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		got[string(r.Key)] = bytes.Clone(r.Value)
	}
	if len(got) != len(latest) {
		return fmt.Errorf("%d keys read back after cleaning, want %d", len(got), len(latest))
	}
	for k, v := range latest {
		if !bytes.Equal(got[k], v) {
			return fmt.Errorf("key %q: not its latest value after cleaning", k)
		}
	}
	return nil
}

// tableKeys is the table workload's size: a config or profile table.
const tableKeys = 10_000

// compactTable publishes tableKeys keys of 100 B to a compacted topic,
// opens a Table on it, and times Get over existing keys (rounds of a
// million lookups with a prime stride, the median round) and the catch-up:
// from Publish's return until WaitChange sees the record in the table, one
// record at a time, as the catch-up row of the root benchmarks.
func compactTable(ctx context.Context, e *env, p peer) ([]float64, error) {
	if p.id() != (embedPeer{}).id() {
		return nil, notSupported(compactNotOurs)
	}
	dir, err := e.newDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if err := b.CreateTopic("t", stream.TopicConfig{Cleanup: stream.CleanupCompact}); err != nil {
		return nil, err
	}
	keys := make([][]byte, tableKeys)
	value := payload(compactValue)
	recs := make([]*stream.Record, 0, 1000)
	for i := range keys {
		keys[i] = compactKey(i)
		recs = append(recs, &stream.Record{Topic: "t", Key: keys[i], Value: value})
		if len(recs) == cap(recs) || i == len(keys)-1 {
			if err := b.Publish(ctx, recs...); err != nil {
				return nil, err
			}
			recs = recs[:0]
		}
	}
	tb, err := b.OpenTable("t", nil)
	if err != nil {
		return nil, err
	}
	defer tb.Close()
	if err := tb.WaitReady(ctx); err != nil {
		return nil, err
	}
	lookups := max(e.records, 100_000)
	var missing bool
	getRound := func() error {
		j := 0
		for range lookups {
			if _, ok := tb.Get(keys[j]); !ok {
				missing = true
			}
			j += 7919 // a prime stride: no two neighbours in a row
			if j >= len(keys) {
				j -= len(keys)
			}
		}
		if missing {
			return errors.New("a key is missing from the table")
		}
		return nil
	}
	if err := getRound(); err != nil { // warm-up
		return nil, err
	}
	d, _, err := rounds(e.budget, getRound)
	if err != nil {
		return nil, err
	}
	getNs := float64(d.Nanoseconds()) / float64(lookups)

	// Catch-up: a warm-up of up to 1,000, then samples until the limit or
	// past 1,000 samples the budget.
	var lat []time.Duration
	warm := min(1000, e.latencyMax/10)
	began := time.Now()
	for i := 0; i < warm+e.latencyMax; i++ {
		if i >= warm+1000 && time.Since(began) > e.budget {
			break
		}
		k := keys[i%len(keys)]
		prev, _ := tb.Get(k)
		r := &stream.Record{Topic: "t", Key: k, Value: value}
		if err := b.Publish(ctx, r); err != nil {
			return nil, err
		}
		start := time.Now()
		if _, _, err := tb.WaitChange(ctx, k, prev.Offset); err != nil {
			return nil, err
		}
		if i >= warm {
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	return []float64{getNs, percentile(lat, 0.5), percentile(lat, 0.99)}, nil
}
