package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// TestTopicsCreateListDescribe checks topics create with every setting, list and describe.
func TestTopicsCreateListDescribe(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // created by topics create
	r := cli(t, "", "-dir", dir, "topics", "create", "-topic", "orders", "-partitions", "3", "-retention", "24h",
		"-retention-bytes", "1000000", "-segment-bytes", "8192", "-max-record-bytes", "2048", "-sync", "always",
		"-max-timestamp-behind", "87600h").ok(t)
	require.Equal(t, "created topic orders with 3 partitions\n", r.stdout)
	cli(t, "", "topics", "create", "-dir", dir, "-topic", "audit").ok(t) // -dir after the command works too

	withBroker(t, dir, func(b *stream.Broker) {
		info, err := b.DescribeTopic("orders")
		require.NoError(t, err)
		require.Equal(t, stream.TopicConfig{Partitions: 3, Retention: 24 * time.Hour, RetentionBytes: 1000000,
			SegmentBytes: 8192, MaxRecordBytes: 2048, Sync: stream.SyncAlways,
			MaxTimestampAhead: stream.DefaultMaxTimestampAhead, MaxTimestampBehind: 87600 * time.Hour,
			MinCleanableDirtyRatio: stream.DefaultMinCleanableDirtyRatio, DeleteRetention: stream.DefaultDeleteRetention}, info.Config)
		r := rec(1, "", "hello", at(0))
		r.Topic = "orders"
		require.NoError(t, b.Publish(t.Context(), r))
	})

	require.Equal(t, "audit\norders\n", cli(t, "", "-dir", dir, "topics", "list").ok(t).stdout)
	out := cli(t, "", "-dir", dir, "topics", "describe", "-topic", "orders").ok(t).stdout
	require.Contains(t, out, "Topic: orders  Partitions: 3  Retention: 24h0m0s  RetentionBytes: 1000000  SegmentBytes: 8192")
	require.Contains(t, out, "Sync: always")
	require.Regexp(t, `PARTITION\s+START\s+END\s+RECORDS\s+BYTES\s+SEGMENTS`, out)
	require.Regexp(t, `\n0\s+0\s+0\s+0\s+0\s+1\n`, out)
	require.Regexp(t, `\n1\s+0\s+1\s+1\s+[1-9]\d*\s+1\n`, out)

	all := cli(t, "", "-dir", dir, "topics", "describe").ok(t).stdout
	require.Contains(t, all, "Topic: audit")
	require.Contains(t, all, "Topic: orders")
}

// TestTopicsAddPartitionsAndDelete checks topics add-partitions and delete.
func TestTopicsAddPartitionsAndDelete(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	require.Equal(t, "topic orders now has 5 partitions\n",
		cli(t, "", "-dir", dir, "topics", "add-partitions", "-topic", "orders", "-partitions", "5").ok(t).stdout)
	require.Regexp(t, `\n4\s+0\s+0`, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "orders").ok(t).stdout)
	cli(t, "", "-dir", dir, "topics", "add-partitions", "-topic", "orders", "-partitions", "2").fails(t, 1, "invalid configuration")

	require.Equal(t, "deleted topic orders\n", cli(t, "", "-dir", dir, "topics", "delete", "-topic", "orders").ok(t).stdout)
	require.Empty(t, cli(t, "", "-dir", dir, "topics", "list").ok(t).stdout)
	cli(t, "", "-dir", dir, "topics", "delete", "-topic", "orders").fails(t, 1, "topic not found")
}

// TestTopicsErrors checks topics failures (exit 1) and usage errors (exit 2).
func TestTopicsErrors(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "orders").fails(t, 1, "topic already exists")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "bad name").fails(t, 1, "invalid topic name")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "-segment-bytes", "10").fails(t, 1, "invalid configuration")
	cli(t, "", "-dir", dir, "topics", "create").fails(t, 2, "-topic is required")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "-sync", "sometimes").fails(t, 2, "-sync")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "-partitions", "many").fails(t, 2, "invalid value")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "extra").fails(t, 2, `unexpected argument "extra"`)
	cli(t, "", "-dir", dir, "topics", "describe", "-topic", "nope").fails(t, 1, "topic not found")
	cli(t, "", "-dir", dir, "topics", "add-partitions", "-topic", "orders").fails(t, 2, "-partitions is required")
	cli(t, "", "-dir", dir, "topics").fails(t, 2, "missing command")
	cli(t, "", "-dir", dir, "topics", "rename").fails(t, 2, `unknown command "rename"`)
	cli(t, "", "-dir", filepath.Join(dir, "missing"), "topics", "list").fails(t, 1, "no data directory at")
	cli(t, "", "-dir", t.TempDir(), "topics", "list").fails(t, 1, "holds no embedstream data")
	cli(t, "x\n", "-dir", t.TempDir(), "produce", "-topic", "x").fails(t, 1, "holds no embedstream data")
}

// TestTopicsDeleteRecords checks topics delete-records.
func TestTopicsDeleteRecords(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	require.Equal(t, "orders partition 0 now starts at offset 1\n",
		cli(t, "", "-dir", dir, "topics", "delete-records", "-topic", "orders", "-partition", "0", "-before", "1").ok(t).stdout)
	require.Regexp(t, `\n0\s+1\s+2\s+1\s`, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "orders").ok(t).stdout)
	cli(t, "", "-dir", dir, "topics", "delete-records", "-topic", "orders", "-partition", "0", "-before", "5").fails(t, 1, "offset out of range")
	cli(t, "", "-dir", dir, "topics", "delete-records", "-topic", "orders").fails(t, 2, "-before is required")
}

// TestTopicsAlter checks topics alter: only the settings given change, the
// change is stored, shows before and after, and is validated as at creation.
func TestTopicsAlter(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t) // 4 KiB segments, defaults otherwise
	r := cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-retention", "24h", "-retention-bytes", "1000000",
		"-segment-bytes", "8192", "-sync", "always", "-max-record-bytes", "2048").ok(t)
	require.Regexp(t, `^SETTING\s+BEFORE\s+AFTER\n`, r.stdout)
	require.Regexp(t, `\nretention\s+forever\s+24h0m0s\n`, r.stdout)
	require.Regexp(t, `\nretention-bytes\s+unlimited\s+1000000\n`, r.stdout)
	require.Regexp(t, `\nsegment-bytes\s+4096\s+8192\n`, r.stdout)
	require.Regexp(t, `\nsync\s+default\s+always\n`, r.stdout)
	require.Regexp(t, `\nmax-record-bytes\s+1048576\s+2048\n`, r.stdout)
	require.NotContains(t, r.stdout, "segment-age", "settings not given are not shown")

	want := stream.TopicConfig{Partitions: 2, Retention: 24 * time.Hour, RetentionBytes: 1000000, SegmentBytes: 8192,
		MaxRecordBytes: 2048, Sync: stream.SyncAlways, MaxTimestampAhead: stream.DefaultMaxTimestampAhead,
		MinCleanableDirtyRatio: stream.DefaultMinCleanableDirtyRatio, DeleteRetention: stream.DefaultDeleteRetention}
	withBroker(t, dir, func(b *stream.Broker) {
		info, err := b.DescribeTopic("orders")
		require.NoError(t, err)
		require.Equal(t, want, info.Config, "stored, and nothing else changed")
		big := rec(0, "", strings.Repeat("x", 3000), at(9))
		big.Topic = "orders"
		require.ErrorIs(t, b.Publish(t.Context(), big), stream.ErrRecordTooLarge, "applied when the broker opens")
	})
	out := cli(t, "", "-dir", dir, "topics", "describe", "-topic", "orders").ok(t).stdout
	require.Contains(t, out, "Retention: 24h0m0s  RetentionBytes: 1000000  SegmentBytes: 8192  SegmentAge: none  MaxRecordBytes: 2048  Sync: always")

	r = cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-log-append-time", "-retention", "0").ok(t)
	require.Regexp(t, `\nretention\s+24h0m0s\s+forever\n`, r.stdout, "0: the default, as at creation")
	require.Regexp(t, `\nlog-append-time\s+false\s+true\n`, r.stdout)
	r = cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-log-append-time=false", "-sync", "default").ok(t)
	require.Regexp(t, `\nlog-append-time\s+true\s+false\n`, r.stdout)
	require.Regexp(t, `\nsync\s+always\s+default\n`, r.stdout)

	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-segment-bytes", "10").fails(t, 1, "invalid configuration", "segment bytes 10")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-retention", "-1h").fails(t, 1, "invalid configuration")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "nope", "-retention", "1h").fails(t, 1, "topic not found")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders").fails(t, 2, "no setting to change")
	cli(t, "", "-dir", dir, "topics", "alter", "-retention", "1h").fails(t, 2, "-topic is required")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-sync", "often").fails(t, 2, "-sync")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "orders", "-partitions", "3").fails(t, 2, "-partitions")
	cli(t, "", "-dir", dir, "-readonly", "topics", "alter", "-topic", "orders", "-retention", "1h").fails(t, 2, "-readonly")
	withBroker(t, dir, func(b *stream.Broker) {
		info, err := b.DescribeTopic("orders")
		require.NoError(t, err)
		require.Equal(t, 8192, int(info.Config.SegmentBytes), "refused changes changed nothing")
	})
}

// TestTopicsCompression checks -compression and -compression-level on
// topics create and alter, and their display in describe and alter.
func TestTopicsCompression(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "logs", "-compression", "gzip", "-compression-level", "9").ok(t)
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "plain", "-compression", "NONE").ok(t)
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "any").ok(t)
	withBroker(t, dir, func(b *stream.Broker) {
		for name, want := range map[string]stream.Compression{
			"logs":  {Codec: stream.CodecGzip, Level: 9},
			"plain": {Codec: stream.CodecNone},
			"any":   {},
		} {
			info, err := b.DescribeTopic(name)
			require.NoError(t, err)
			require.Equal(t, want, info.Config.Compression, name)
		}
	})
	out := cli(t, "", "-dir", dir, "topics", "describe").ok(t).stdout
	require.Contains(t, out, "MaxTimestampBehind: none  Compression: gzip level 9\n")
	require.Contains(t, out, "Compression: none\n")
	require.Contains(t, out, "Compression: producer\n")

	// A codec alone takes its default level; a level alone keeps the codec.
	r := cli(t, "", "-dir", dir, "topics", "alter", "-topic", "logs", "-compression", "zstd").ok(t)
	require.Regexp(t, `\ncompression\s+gzip\s+zstd\n`, r.stdout)
	require.Contains(t, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "logs").ok(t).stdout, "Compression: zstd\n")
	r = cli(t, "", "-dir", dir, "topics", "alter", "-topic", "logs", "-compression-level", "19").ok(t)
	require.Regexp(t, `\ncompression-level\s+0\s+19\n`, r.stdout)
	require.NotRegexp(t, `\ncompression\s`, r.stdout)
	r = cli(t, "", "-dir", dir, "topics", "alter", "-topic", "logs", "-compression", "lz4", "-compression-level", "12").ok(t)
	require.Regexp(t, `\ncompression\s+zstd\s+lz4\n`, r.stdout)
	require.Regexp(t, `\ncompression-level\s+19\s+12\n`, r.stdout)
	require.Contains(t, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "logs").ok(t).stdout, "Compression: lz4 level 12\n")
	r = cli(t, "", "-dir", dir, "topics", "alter", "-topic", "logs", "-compression", "producer").ok(t)
	require.Regexp(t, `\ncompression\s+lz4\s+producer\n`, r.stdout)

	// Refused: an unknown name (usage), a level the codec lacks (config).
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "-compression", "brotli").fails(t, 2, "-compression", "want producer, none, gzip, snappy, lz4 or zstd")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "-compression", "gzip", "-compression-level", "10").fails(t, 1, "invalid configuration", "gzip level 10")
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "x", "-compression-level", "3").fails(t, 1, "invalid configuration", "no levels")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "plain", "-compression-level", "3").fails(t, 1, "invalid configuration")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "plain", "-compression", "lz4", "-compression-level", "18").fails(t, 1, "lz4 level 18")
	withBroker(t, dir, func(b *stream.Broker) {
		require.NotContains(t, b.Topics(), "x")
		info, err := b.DescribeTopic("plain")
		require.NoError(t, err)
		require.Equal(t, stream.Compression{Codec: stream.CodecNone}, info.Config.Compression, "refused changes changed nothing")
	})
}

// TestTopicsCompactionSettings checks the cleanup policy and compaction
// settings through topics create, describe and alter.
func TestTopicsCompactionSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "profiles", "-cleanup-policy", "compact",
		"-min-cleanable-dirty-ratio", "0.25", "-min-compaction-lag", "1m", "-max-compaction-lag", "1h").ok(t)
	out := cli(t, "", "-dir", dir, "topics", "describe", "-topic", "profiles").ok(t).stdout
	require.Contains(t, out, "\nCleanup: compact  MinCleanableDirtyRatio: 0.25  MinCompactionLag: 1m0s  MaxCompactionLag: 1h0m0s  DeleteRetention: 24h0m0s\n")

	r := cli(t, "", "-dir", dir, "topics", "alter", "-topic", "profiles", "-cleanup-policy", "Delete,compact",
		"-delete-retention", "-1s", "-min-cleanable-dirty-ratio", "-1").ok(t)
	require.Regexp(t, `\ncleanup-policy\s+compact\s+compact,delete\n`, r.stdout)
	require.Regexp(t, `\ndelete-retention\s+24h0m0s\s+0s\n`, r.stdout, "negative: none")
	require.Regexp(t, `\nmin-cleanable-dirty-ratio\s+0.25\s+0\n`, r.stdout)
	withBroker(t, dir, func(b *stream.Broker) {
		info, err := b.DescribeTopic("profiles")
		require.NoError(t, err)
		c := info.Config
		require.Equal(t, stream.CleanupCompactDelete, c.Cleanup)
		require.Equal(t, []any{-1.0, time.Minute, time.Hour, -time.Second},
			[]any{c.MinCleanableDirtyRatio, c.MinCompactionLag, c.MaxCompactionLag, c.DeleteRetention})
		require.ErrorIs(t, b.Publish(t.Context(), &stream.Record{Topic: "profiles", Value: []byte("v")}), stream.ErrInvalidRecord,
			"a compacted topic takes only keyed records")
	})

	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "profiles", "-min-compaction-lag", "2h").fails(t, 1, "invalid configuration", "min.compaction.lag.ms")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "profiles", "-cleanup-policy", "keep").fails(t, 2, "want delete, compact or compact,delete")
	require.Contains(t, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "profiles").ok(t).stdout, "\nCleanup: compact,delete  ")
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "profiles", "-cleanup-policy", "delete").ok(t)
	require.Contains(t, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "profiles").ok(t).stdout, "\nCleanup: delete\n")
}
