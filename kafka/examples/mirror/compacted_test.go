package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// latestByKey folds records into each key's latest value (nil for a
// tombstone).
func latestByKey(recs []*stream.Record) map[string][]byte {
	m := map[string][]byte{}
	for _, r := range recs {
		m[string(r.Key)] = r.Value
	}
	return m
}

// TestMirrorCompacted: a compacted topic, cleaned here (its partitions have
// offset gaps), is copied to a kfake cluster as a compacted topic with its
// settings; reading it back there gives every key's latest value, with the
// deleted keys' tombstones as nil values, before and after kfake's own
// compaction; a committed offset that pointed into a gap moves to the copy
// of the record after it.
func TestMirrorCompacted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, DisableCleaner: true, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, err)
	cfg := stream.TopicConfig{Partitions: 2, Cleanup: stream.CleanupCompact, SegmentBytes: 4096,
		MinCompactionLag: time.Millisecond, DeleteRetention: 2 * time.Hour}
	require.NoError(t, b.CreateTopic("profiles", cfg))
	ts := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 900 {
		k := i % 40
		r := &stream.Record{Topic: "profiles", Partition: int32(k % 2), Key: fmt.Appendf(nil, "user-%02d", k),
			Value: fmt.Appendf(nil, "profile %d of user %d", i, k), Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			Headers: []stream.Header{{Key: "v", Value: fmt.Append(nil, i)}}}
		switch {
		case k < 4 && i >= 400 && i < 440:
			r.Value = nil // users 0-3 deleted
		case k < 4 && i >= 440:
			continue
		}
		require.NoError(t, b.Publish(ctx, r))
	}
	require.NoError(t, b.Compact(ctx, "profiles"))
	src := map[int32][]*stream.Record{}
	for p := range int32(2) {
		src[p] = read(t, ctx, func() (stream.PartitionReader, error) {
			return b.NewReader("profiles", p, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		})
	}
	info, err := b.DescribeTopic("profiles")
	require.NoError(t, err)
	// Partition 0's records have gaps: commit an offset inside the first.
	var gapAt, after int64 = -1, -1
	for i := 1; i < len(src[0]) && gapAt < 0; i++ {
		if src[0][i].Offset > src[0][i-1].Offset+1 {
			gapAt, after = src[0][i-1].Offset+1, int64(i) // the copy of record i is at offset i
		}
	}
	require.Positive(t, gapAt, "the cleaned partition has gaps")
	require.Less(t, int64(len(src[0])), info.Partitions[0].EndOffset)
	require.NoError(t, b.SetCommittedOffsets("profile-readers", map[stream.TopicPartition]int64{{Topic: "profiles", Partition: 0}: gapAt}))
	require.NoError(t, b.Close())

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	var out bytes.Buffer
	require.NoError(t, run(ctx, dir, "profiles", strings.Join(cluster.ListenAddrs(), ","), &out, io.Discard))
	t.Log("\n" + out.String())
	require.Contains(t, out.String(), "profiles: created with 2 partitions, compression producer, cleanup policy compact\n")
	require.Regexp(t, `profiles/0: copied \d+ records, offsets \d+-\d+ with \d+ gaps? \(compacted\) now 0-\d+\n`, out.String())
	require.Contains(t, out.String(), fmt.Sprintf("group profile-readers: committed profiles/0=%d\n", after))

	dst, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs()})
	require.NoError(t, err)
	defer dst.Close()
	var got stream.TopicConfig
	require.NoError(t, dst.AlterTopic(ctx, "profiles", func(c *stream.TopicConfig) { got = *c }))
	require.Equal(t, stream.CleanupCompact, got.Cleanup, "compacted on the cluster too")
	require.Equal(t, cfg.MinCompactionLag, got.MinCompactionLag)
	require.Equal(t, cfg.DeleteRetention, got.DeleteRetention)

	check := func(when string) (records int) {
		for p := range int32(2) {
			copied := read(t, ctx, func() (stream.PartitionReader, error) {
				return dst.ReadPartition(ctx, "profiles", p, stream.OffsetEarliest)
			})
			records += len(copied)
			want := latestByKey(src[p])
			require.Equal(t, want, latestByKey(copied), "%s: partition %d", when, p)
			for k := range 4 {
				if k%2 == int(p) {
					v, ok := want[fmt.Sprintf("user-%02d", k)]
					require.True(t, ok && v == nil, "%s: user %d's tombstone is there, a nil value", when, k)
				}
			}
		}
		return records
	}
	copied := check("as copied")
	require.Equal(t, len(src[0])+len(src[1]), copied)
	// kfake's own compaction (it keeps a partition's last batch, where the
	// copies of the source's uncleaned active segment may be) changes no
	// key's latest value, and keeps the tombstones (younger than
	// delete.retention.ms).
	cluster.Compact()
	require.LessOrEqual(t, check("after kfake compacted"), copied)

	gc, err := dst.Subscribe("profile-readers", []string{"profiles"}, &stream.GroupOptions{Reset: stream.ResetNone})
	require.NoError(t, err)
	committed, err := gc.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, after, committed[stream.TopicPartition{Topic: "profiles", Partition: 0}])
	require.NoError(t, gc.Close())
}

// TestOffsetMapTranslate: positions before, inside, between and after the
// runs of copied offsets.
func TestOffsetMapTranslate(t *testing.T) {
	var m OffsetMap
	for i, off := range []int64{5, 6, 7, 10, 11, 20} {
		m.add(off, int64(i))
	}
	m.shift(100)
	require.Len(t, m, 3)
	for off, want := range map[int64]int64{0: 100, 5: 100, 6: 101, 8: 103, 9: 103, 10: 103, 12: 105, 19: 105, 20: 105, 21: 106, 99: 106} {
		require.Equal(t, want, m.Translate(off), "offset %d", off)
	}
	require.Zero(t, OffsetMap(nil).Translate(7))
}
