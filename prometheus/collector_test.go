package prometheus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
)

// openBroker opens a broker in a fresh directory, closed at the test's end:
// SyncNever (so the fsync histogram stays empty and exact) and records
// placed on the partition they name.
func openBroker(t *testing.T) *stream.Broker {
	t.Helper()
	b, err := stream.Open(t.TempDir(), &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// publish appends n one-byte records to a partition, one batch each.
func publish(t *testing.T, b *stream.Broker, topic string, partition int32, n int) {
	t.Helper()
	for range n {
		require.NoError(t, b.Publish(t.Context(), &stream.Record{Topic: topic, Partition: partition, Value: []byte("x")}))
	}
}

// consume has group g read every record of topics and commit, then leave.
func consume(t *testing.T, b *stream.Broker, g string, records int, topics ...string) {
	t.Helper()
	c, err := b.Subscribe(g, topics, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for got := 0; got < records; {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		got += len(recs)
	}
	require.NoError(t, c.Commit(ctx))
	require.NoError(t, c.Close())
}

// smallBroker is one topic of two partitions: 3 records in partition 0,
// 1 in partition 1, which group g consumed and committed (one rebalance),
// then 2 more in partition 1 that it did not.
func smallBroker(t *testing.T) *stream.Broker {
	t.Helper()
	b := openBroker(t)
	require.NoError(t, b.CreateTopic("orders", stream.TopicConfig{Partitions: 2}))
	publish(t, b, "orders", 0, 3)
	publish(t, b, "orders", 1, 1)
	consume(t, b, "g", 4, "orders")
	publish(t, b, "orders", 1, 2)
	return b
}

// brokerWide is every broker-wide metric but open_mappings, which counts
// the process's mappings (other tests' too).
var brokerWide = []string{
	"embedstream_cleaner_read_bytes_total",
	"embedstream_cleaner_reclaimed_bytes_total",
	"embedstream_cleaner_runs_total",
	"embedstream_corrupt_batches_total",
	"embedstream_evictions_total",
	"embedstream_fetched_bytes_total",
	"embedstream_fetched_records_total",
	"embedstream_fsync_duration_seconds",
	"embedstream_fsyncs_total",
	"embedstream_index_rebuilds_total",
	"embedstream_meta_rebuilds_total",
	"embedstream_meta_rollbacks_total",
	"embedstream_meta_syncs_total",
	"embedstream_open_segments",
	"embedstream_partitions",
	"embedstream_published_batches_total",
	"embedstream_published_bytes_total",
	"embedstream_published_records_total",
	"embedstream_rebalances_total",
	"embedstream_recovery_truncated_bytes_total",
	"embedstream_recovery_truncations_total",
	"embedstream_segment_releases_total",
	"embedstream_segments",
	"embedstream_segments_deleted_total",
	"embedstream_segments_rolled_total",
	"embedstream_topics",
	"embedstream_transactions_aborted_total",
	"embedstream_transactions_committed_total",
}

// logAndGroup are the per-topic (or partition) and per-group metrics.
var logAndGroup = []string{
	"embedstream_group_committed_offset",
	"embedstream_group_evictions_total",
	"embedstream_group_generation",
	"embedstream_group_lag",
	"embedstream_group_members",
	"embedstream_group_rebalances_total",
	"embedstream_log_end_offset",
	"embedstream_log_fetched_bytes_total",
	"embedstream_log_fetched_records_total",
	"embedstream_log_published_bytes_total",
	"embedstream_log_published_records_total",
	"embedstream_log_segments",
	"embedstream_log_size_bytes",
	"embedstream_log_start_offset",
	"embedstream_log_start_resets_total",
}

// The exact output for a small broker, per partition: the log metrics of
// each partition, g's committed offsets and lag of both (partition 0 has
// none), the fsync histogram empty under SyncNever.
func TestCollectPerPartition(t *testing.T) {
	b := smallBroker(t)
	c := NewCollector(b, &Options{PerPartition: true})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(perPartitionText), append(brokerWide, logAndGroup...)...))
}

// Per topic (the default), partitions are summed: offsets, sizes and
// traffic, and a group's committed offsets and lag.
func TestCollectPerTopic(t *testing.T) {
	b := smallBroker(t)
	require.NoError(t, testutil.CollectAndCompare(NewCollector(b, nil), strings.NewReader(perTopicText), logAndGroup...))
}

const perPartitionText = `# HELP embedstream_cleaner_read_bytes_total Bytes of segments cleaning rounds read and rewrote.
# TYPE embedstream_cleaner_read_bytes_total counter
embedstream_cleaner_read_bytes_total 0
# HELP embedstream_cleaner_reclaimed_bytes_total Bytes cleaning rounds removed.
# TYPE embedstream_cleaner_reclaimed_bytes_total counter
embedstream_cleaner_reclaimed_bytes_total 0
# HELP embedstream_cleaner_runs_total Log cleaning rounds that rewrote segments (compacted topics).
# TYPE embedstream_cleaner_runs_total counter
embedstream_cleaner_runs_total 0
# HELP embedstream_corrupt_batches_total Damaged batches (or lost offset ranges) met by recovery or reads and passed over.
# TYPE embedstream_corrupt_batches_total counter
embedstream_corrupt_batches_total 0
# HELP embedstream_evictions_total Consumer group members removed because their poll interval or session ran out, in every group.
# TYPE embedstream_evictions_total counter
embedstream_evictions_total 0
# HELP embedstream_fetched_bytes_total Bytes of record batches those reads covered, each time they covered them.
# TYPE embedstream_fetched_bytes_total counter
embedstream_fetched_bytes_total 276
# HELP embedstream_fetched_records_total Records returned by Readers and Consumers, and in the batches batch reads (the Kafka listener's fetches) returned.
# TYPE embedstream_fetched_records_total counter
embedstream_fetched_records_total 4
# HELP embedstream_fsync_duration_seconds Latency of the fsyncs fsyncs_total counts.
# TYPE embedstream_fsync_duration_seconds histogram
embedstream_fsync_duration_seconds_bucket{le="0.0001"} 0
embedstream_fsync_duration_seconds_bucket{le="0.00025"} 0
embedstream_fsync_duration_seconds_bucket{le="0.0005"} 0
embedstream_fsync_duration_seconds_bucket{le="0.001"} 0
embedstream_fsync_duration_seconds_bucket{le="0.0025"} 0
embedstream_fsync_duration_seconds_bucket{le="0.005"} 0
embedstream_fsync_duration_seconds_bucket{le="0.01"} 0
embedstream_fsync_duration_seconds_bucket{le="0.025"} 0
embedstream_fsync_duration_seconds_bucket{le="0.05"} 0
embedstream_fsync_duration_seconds_bucket{le="0.1"} 0
embedstream_fsync_duration_seconds_bucket{le="0.25"} 0
embedstream_fsync_duration_seconds_bucket{le="0.5"} 0
embedstream_fsync_duration_seconds_bucket{le="1"} 0
embedstream_fsync_duration_seconds_bucket{le="2.5"} 0
embedstream_fsync_duration_seconds_bucket{le="+Inf"} 0
embedstream_fsync_duration_seconds_sum 0
embedstream_fsync_duration_seconds_count 0
# HELP embedstream_fsyncs_total fsyncs of segment files.
# TYPE embedstream_fsyncs_total counter
embedstream_fsyncs_total 0
# HELP embedstream_group_committed_offset The group's committed offset, per partition (partitions without a commit left out).
# TYPE embedstream_group_committed_offset gauge
embedstream_group_committed_offset{group="g",partition="0",topic="orders"} 3
embedstream_group_committed_offset{group="g",partition="1",topic="orders"} 1
# HELP embedstream_group_evictions_total Members the group evicted (poll interval or session ran out) while the broker kept its state.
# TYPE embedstream_group_evictions_total counter
embedstream_group_evictions_total{group="g"} 0
# HELP embedstream_group_generation The consumer group's generation.
# TYPE embedstream_group_generation gauge
embedstream_group_generation{group="g"} 1
# HELP embedstream_group_lag Records between the group's committed offset and the log end, per partition (partitions without a commit left out).
# TYPE embedstream_group_lag gauge
embedstream_group_lag{group="g",partition="0",topic="orders"} 0
embedstream_group_lag{group="g",partition="1",topic="orders"} 2
# HELP embedstream_group_members Members of the consumer group now.
# TYPE embedstream_group_members gauge
embedstream_group_members{group="g"} 0
# HELP embedstream_group_rebalances_total Rebalances the group completed while the broker kept its state.
# TYPE embedstream_group_rebalances_total counter
embedstream_group_rebalances_total{group="g"} 1
# HELP embedstream_index_rebuilds_total Offset and time indexes rebuilt from their logs.
# TYPE embedstream_index_rebuilds_total counter
embedstream_index_rebuilds_total 0
# HELP embedstream_log_end_offset Next offset to be written (the high watermark), per partition.
# TYPE embedstream_log_end_offset gauge
embedstream_log_end_offset{partition="0",topic="orders"} 3
embedstream_log_end_offset{partition="1",topic="orders"} 3
# HELP embedstream_log_fetched_bytes_total Bytes of record batches read since the broker opened, per partition.
# TYPE embedstream_log_fetched_bytes_total counter
embedstream_log_fetched_bytes_total{partition="0",topic="orders"} 207
embedstream_log_fetched_bytes_total{partition="1",topic="orders"} 69
# HELP embedstream_log_fetched_records_total Records read since the broker opened, per partition.
# TYPE embedstream_log_fetched_records_total counter
embedstream_log_fetched_records_total{partition="0",topic="orders"} 3
embedstream_log_fetched_records_total{partition="1",topic="orders"} 1
# HELP embedstream_log_published_bytes_total Bytes of record batches published since the broker opened, per partition.
# TYPE embedstream_log_published_bytes_total counter
embedstream_log_published_bytes_total{partition="0",topic="orders"} 207
embedstream_log_published_bytes_total{partition="1",topic="orders"} 207
# HELP embedstream_log_published_records_total Records published since the broker opened, per partition.
# TYPE embedstream_log_published_records_total counter
embedstream_log_published_records_total{partition="0",topic="orders"} 3
embedstream_log_published_records_total{partition="1",topic="orders"} 3
# HELP embedstream_log_segments Segment files, per partition.
# TYPE embedstream_log_segments gauge
embedstream_log_segments{partition="0",topic="orders"} 1
embedstream_log_segments{partition="1",topic="orders"} 1
# HELP embedstream_log_size_bytes Bytes of record batches stored, per partition.
# TYPE embedstream_log_size_bytes gauge
embedstream_log_size_bytes{partition="0",topic="orders"} 207
embedstream_log_size_bytes{partition="1",topic="orders"} 207
# HELP embedstream_log_start_offset First offset still stored, per partition.
# TYPE embedstream_log_start_offset gauge
embedstream_log_start_offset{partition="0",topic="orders"} 0
embedstream_log_start_offset{partition="1",topic="orders"} 0
# HELP embedstream_log_start_resets_total Damaged log-start files ignored.
# TYPE embedstream_log_start_resets_total counter
embedstream_log_start_resets_total 0
# HELP embedstream_meta_rebuilds_total meta.db found missing or damaged and rebuilt from the topic directories.
# TYPE embedstream_meta_rebuilds_total counter
embedstream_meta_rebuilds_total 0
# HELP embedstream_meta_rollbacks_total meta.db opened at its previous transaction, its newest meta page damaged.
# TYPE embedstream_meta_rollbacks_total counter
embedstream_meta_rollbacks_total 0
# HELP embedstream_meta_syncs_total fdatasyncs of meta.db (offsets and topic metadata).
# TYPE embedstream_meta_syncs_total counter
embedstream_meta_syncs_total 0
# HELP embedstream_open_segments Segments holding a file descriptor or mappings now.
# TYPE embedstream_open_segments gauge
embedstream_open_segments 2
# HELP embedstream_partitions Partitions now.
# TYPE embedstream_partitions gauge
embedstream_partitions 2
# HELP embedstream_published_batches_total Record batches appended.
# TYPE embedstream_published_batches_total counter
embedstream_published_batches_total 6
# HELP embedstream_published_bytes_total Bytes of record batches appended.
# TYPE embedstream_published_bytes_total counter
embedstream_published_bytes_total 414
# HELP embedstream_published_records_total Records appended to any partition since the broker opened.
# TYPE embedstream_published_records_total counter
embedstream_published_records_total 6
# HELP embedstream_rebalances_total Consumer group rebalances completed, in every group.
# TYPE embedstream_rebalances_total counter
embedstream_rebalances_total 1
# HELP embedstream_recovery_truncated_bytes_total Bytes those cuts removed.
# TYPE embedstream_recovery_truncated_bytes_total counter
embedstream_recovery_truncated_bytes_total 0
# HELP embedstream_recovery_truncations_total Damaged log tails cut by recovery.
# TYPE embedstream_recovery_truncations_total counter
embedstream_recovery_truncations_total 0
# HELP embedstream_segment_releases_total Times an idle segment gave back its descriptor and mappings (Options.MaxOpenSegments).
# TYPE embedstream_segment_releases_total counter
embedstream_segment_releases_total 0
# HELP embedstream_segments Segment files now.
# TYPE embedstream_segments gauge
embedstream_segments 2
# HELP embedstream_segments_deleted_total Segments deleted by retention.
# TYPE embedstream_segments_deleted_total counter
embedstream_segments_deleted_total 0
# HELP embedstream_segments_rolled_total Segments sealed because full or old.
# TYPE embedstream_segments_rolled_total counter
embedstream_segments_rolled_total 0
# HELP embedstream_topics Topics now.
# TYPE embedstream_topics gauge
embedstream_topics 1
# HELP embedstream_transactions_aborted_total Transactions aborted: by their producer, at their timeout, by fencing, Close or recovery.
# TYPE embedstream_transactions_aborted_total counter
embedstream_transactions_aborted_total 0
# HELP embedstream_transactions_committed_total Transactions committed.
# TYPE embedstream_transactions_committed_total counter
embedstream_transactions_committed_total 0
`

const perTopicText = `# HELP embedstream_group_committed_offset The group's committed offset, summed over the topic's partitions (partitions without a commit left out).
# TYPE embedstream_group_committed_offset gauge
embedstream_group_committed_offset{group="g",topic="orders"} 4
# HELP embedstream_group_evictions_total Members the group evicted (poll interval or session ran out) while the broker kept its state.
# TYPE embedstream_group_evictions_total counter
embedstream_group_evictions_total{group="g"} 0
# HELP embedstream_group_generation The consumer group's generation.
# TYPE embedstream_group_generation gauge
embedstream_group_generation{group="g"} 1
# HELP embedstream_group_lag Records between the group's committed offset and the log end, summed over the topic's partitions (partitions without a commit left out).
# TYPE embedstream_group_lag gauge
embedstream_group_lag{group="g",topic="orders"} 2
# HELP embedstream_group_members Members of the consumer group now.
# TYPE embedstream_group_members gauge
embedstream_group_members{group="g"} 0
# HELP embedstream_group_rebalances_total Rebalances the group completed while the broker kept its state.
# TYPE embedstream_group_rebalances_total counter
embedstream_group_rebalances_total{group="g"} 1
# HELP embedstream_log_end_offset Next offset to be written (the high watermark), summed over the topic's partitions.
# TYPE embedstream_log_end_offset gauge
embedstream_log_end_offset{topic="orders"} 6
# HELP embedstream_log_fetched_bytes_total Bytes of record batches read since the broker opened, summed over the topic's partitions.
# TYPE embedstream_log_fetched_bytes_total counter
embedstream_log_fetched_bytes_total{topic="orders"} 276
# HELP embedstream_log_fetched_records_total Records read since the broker opened, summed over the topic's partitions.
# TYPE embedstream_log_fetched_records_total counter
embedstream_log_fetched_records_total{topic="orders"} 4
# HELP embedstream_log_published_bytes_total Bytes of record batches published since the broker opened, summed over the topic's partitions.
# TYPE embedstream_log_published_bytes_total counter
embedstream_log_published_bytes_total{topic="orders"} 414
# HELP embedstream_log_published_records_total Records published since the broker opened, summed over the topic's partitions.
# TYPE embedstream_log_published_records_total counter
embedstream_log_published_records_total{topic="orders"} 6
# HELP embedstream_log_segments Segment files, summed over the topic's partitions.
# TYPE embedstream_log_segments gauge
embedstream_log_segments{topic="orders"} 2
# HELP embedstream_log_size_bytes Bytes of record batches stored, summed over the topic's partitions.
# TYPE embedstream_log_size_bytes gauge
embedstream_log_size_bytes{topic="orders"} 414
# HELP embedstream_log_start_offset First offset still stored, summed over the topic's partitions.
# TYPE embedstream_log_start_offset gauge
embedstream_log_start_offset{topic="orders"} 0
# HELP embedstream_log_start_resets_total Damaged log-start files ignored.
# TYPE embedstream_log_start_resets_total counter
embedstream_log_start_resets_total 0
`
