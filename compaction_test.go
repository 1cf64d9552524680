package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// compactedTopic is a compacted topic config with small segments, so that
// a few hundred records make several cleanable segments.
func compactedTopic(partitions int) TopicConfig {
	return TopicConfig{Partitions: partitions, Cleanup: CleanupCompact, SegmentBytes: 4 << 10}
}

// latestByKey reads a partition whole from its start and returns each
// key's latest value (nil for a tombstone) and offset.
func latestByKey(t *testing.T, b *Broker, topic string, partition int32) (map[string][]byte, map[string]int64) {
	t.Helper()
	r, err := b.NewReader(topic, partition, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	vals, offs := map[string][]byte{}, map[string]int64{}
	last := int64(-1)
	for {
		rec, err := r.Next(context.Background())
		if err == io.EOF {
			return vals, offs
		}
		require.NoError(t, err)
		require.Greater(t, rec.Offset, last, "offsets ascend")
		last = rec.Offset
		// Copies: a record's bytes are the log's, which a cleaning round
		// may unmap once the reader has moved on.
		vals[string(rec.Key)] = bytes.Clone(rec.Value)
		offs[string(rec.Key)] = rec.Offset
	}
}

func TestCompactKeepsLatestValuePerKey(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("profiles", compactedTopic(2)))
	vals := [2]map[string][]byte{{}, {}}
	offs := [2]map[string]int64{{}, {}}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		p := int32(rng.IntN(2))
		k := fmt.Sprintf("user-%03d", rng.IntN(80))
		v := []byte(fmt.Sprintf("profile %d of %s", i, k))
		if rng.IntN(12) == 0 {
			v = nil // a tombstone: deletes the key
		}
		rec := &Record{Topic: "profiles", Partition: p, Key: []byte(k), Value: v}
		require.NoError(t, b.Publish(context.Background(), rec))
		vals[p][k], offs[p][k] = v, rec.Offset
	}
	before, err := b.DescribeTopic("profiles")
	require.NoError(t, err)

	require.NoError(t, b.Compact(t.Context(), "profiles"))
	after, err := b.DescribeTopic("profiles")
	require.NoError(t, err)
	st := b.Stats()
	require.Positive(t, st.CleanerRuns)
	require.Positive(t, st.BytesReclaimed)
	for p := range 2 {
		bp, ap := before.Partitions[p], after.Partitions[p]
		require.Less(t, ap.Bytes, bp.Bytes*3/4, "superseded records were removed")
		require.Equal(t, bp.StartOffset, ap.StartOffset, "compaction never moves the log start")
		require.Equal(t, bp.EndOffset, ap.EndOffset)
		require.False(t, ap.LastCleaned.IsZero())
		require.Zero(t, ap.DirtyRatio)
		gotVals, gotOffs := latestByKey(t, b, "profiles", int32(p))
		require.Equal(t, vals[p], gotVals)
		require.Equal(t, offs[p], gotOffs)
	}

	// A consumer from the beginning sees the latest value of every key.
	c, err := b.Subscribe("g", []string{"profiles"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	seen := [2]map[string][]byte{{}, {}}
	for caughtUp := false; !caughtUp; {
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		for _, r := range recs {
			seen[r.Partition][string(r.Key)] = r.Value
		}
		caughtUp = true
		for p := range 2 {
			pos, err := c.Position(TopicPartition{Topic: "profiles", Partition: int32(p)})
			caughtUp = caughtUp && err == nil && pos == after.Partitions[p].EndOffset
		}
	}
	require.NoError(t, c.Close())
	for p := range 2 {
		require.Equal(t, vals[p], seen[p])
	}

	// And after a restart, and after a crash.
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	for p := range 2 {
		gotVals, _ := latestByKey(t, b, "profiles", int32(p))
		require.Equal(t, vals[p], gotVals)
	}
	crash(t, b)
	b = openBroker(t, dir, nil)
	for p := range 2 {
		gotVals, gotOffs := latestByKey(t, b, "profiles", int32(p))
		require.Equal(t, vals[p], gotVals)
		require.Equal(t, offs[p], gotOffs)
	}
}

func TestCleanerRunsInTheBackground(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	cfg := compactedTopic(1)
	cfg.MinCleanableDirtyRatio = 0.2
	require.NoError(t, b.CreateTopic("config", cfg))
	for i := range 2000 {
		require.NoError(t, b.Publish(context.Background(), &Record{Topic: "config", Key: []byte(fmt.Sprintf("k%d", i%10)), Value: []byte(fmt.Sprint(i))}))
	}
	require.Eventually(t, func() bool { return b.Stats().CleanerRuns > 0 }, 30*time.Second, time.Millisecond)
	vals, _ := latestByKey(t, b, "config", 0)
	for k := range 10 {
		require.Equal(t, fmt.Sprint(1990+k), string(vals[fmt.Sprintf("k%d", k)]))
	}
}

func TestCompactErrors(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("plain", TopicConfig{}))
	require.ErrorIs(t, b.Compact(t.Context(), "plain"), ErrInvalidConfig)
	require.ErrorIs(t, b.Compact(t.Context(), "missing"), ErrTopicNotFound)
	require.NoError(t, b.CreateTopic("kv", compactedTopic(1)))
	require.NoError(t, b.Compact(t.Context(), "kv"), "nothing to clean is not an error")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.Compact(ctx, "kv"), context.Canceled)
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Compact(t.Context(), "kv"), ErrClosed)

	ro, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	require.ErrorIs(t, ro.Compact(t.Context(), "kv"), ErrReadOnly)
}
