package stream

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs/errorfs"
)

// syncCounter counts the file and directory syncs that reach the vfs seam.
type syncCounter struct {
	mu    sync.Mutex
	paths []string
}

func (c *syncCounter) MaybeError(op errorfs.Op, path string) error {
	if op == errorfs.OpSync || op == errorfs.OpSyncDir {
		c.mu.Lock()
		c.paths = append(c.paths, string(op)+" "+path)
		c.mu.Unlock()
	}
	return nil
}

func (c *syncCounter) synced() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

// lifecycleSyncs runs a broker's life under policy (open, topics, publishes
// that roll segments, reads, a commit, a deleted topic, close, reopen,
// close) and returns the syncs of files and directories it made, and meta.db's.
func lifecycleSyncs(t *testing.T, policy SyncPolicy) (syncs []string, metaSyncs int64) {
	ctx := context.Background()
	dir := t.TempDir()
	counter := &syncCounter{}
	opts := &Options{Sync: policy, Partitioner: ManualPartitioner{}, fs: errorfs.Wrap(nil, counter)}
	for round := range 2 {
		b, err := Open(dir, opts)
		require.NoError(t, err)
		if round == 0 {
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, SegmentBytes: 4096}))
			require.NoError(t, b.CreateTopic("gone", TopicConfig{}))
			require.NoError(t, b.DeleteTopic("gone"))
		}
		for i := range 100 {
			require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Partition: int32(i % 2), Value: make([]byte, 200)}))
		}
		rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
		require.NoError(t, err)
		_, err = rd.Next(ctx)
		require.NoError(t, err)
		require.NoError(t, rd.Close())
		require.NoError(t, b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t", Partition: 0}: 1}))
		st := b.Stats()
		require.Greater(t, st.Segments, 2, "the publishes rolled segments")
		metaSyncs += st.MetaSyncs
		require.NoError(t, b.Close())
	}
	return counter.synced(), metaSyncs
}

// TestSyncNeverSyncsNothing: under SyncNever nothing is fsynced, neither
// segment and index files nor directories nor meta.db; the same life under
// SyncInterval does sync them (the counters see syncs where there are).
func TestSyncNeverSyncsNothing(t *testing.T) {
	syncs, meta := lifecycleSyncs(t, SyncNever)
	require.Empty(t, syncs)
	require.Zero(t, meta)

	syncs, meta = lifecycleSyncs(t, SyncInterval)
	require.NotEmpty(t, syncs)
	require.Positive(t, meta)
}
