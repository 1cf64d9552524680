package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/internal/log"
	"github.com/stretchr/testify/require"
)

// seedProfiles makes a data directory with a compacted topic "profiles"
// (one partition, 4 KiB segments) holding 392 records of 20 keys, k0 and
// k1 deleted by tombstones at offsets 300 and 301 (in a sealed segment),
// and no cleaning done (the background cleaner is off). It returns the
// directory and each key's latest value ("" for a tombstone).
func seedProfiles(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, DisableCleaner: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic("profiles", stream.TopicConfig{Cleanup: stream.CleanupCompact, SegmentBytes: 4096}))
	latest := map[string]string{}
	for i := range 400 {
		k, v := fmt.Sprintf("k%d", i%20), fmt.Sprintf("value %d", i)
		r := rec(0, k, v, at(i))
		switch {
		case i%20 >= 2 || i < 300:
		case i < 320:
			r.Value, v = nil, ""
		default:
			continue
		}
		r.Topic = "profiles"
		require.NoError(t, b.Publish(context.Background(), r))
		latest[k] = v
	}
	return dir, latest
}

// partitionRow returns the columns of partition 0's row in topics
// describe's output.
func partitionRow(t *testing.T, out string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^0  .*$`).FindString(out)
	require.NotEmpty(t, m, out)
	return regexp.MustCompile(`\s{2,}`).Split(m, -1)
}

// TestTopicsCompact checks topics describe's cleaner columns before and
// after topics compact, and that verify, dump and consume read the cleaned
// segments, gaps and all.
func TestTopicsCompact(t *testing.T) {
	t.Parallel()
	dir, latest := seedProfiles(t)

	out := cli(t, "", "-dir", dir, "topics", "describe", "-topic", "profiles").ok(t).stdout
	require.Contains(t, out, "PARTITION  START  END  RECORDS  BYTES  SEGMENTS  DIRTY  LAST CLEANED\n")
	row := partitionRow(t, out)
	require.Len(t, row, 8)
	require.Equal(t, "1.00", row[6], "nothing cleaned yet: every cleanable byte is dirty")
	require.Equal(t, "never", row[7])
	bytesBefore, err := strconv.Atoi(row[4])
	require.NoError(t, err)

	out = cli(t, "", "-dir", dir, "topics", "compact", "-topic", "profiles").ok(t).stdout
	require.Contains(t, out, "PARTITION  BYTES BEFORE  BYTES AFTER")
	m := regexp.MustCompile(`(?m)^0\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+0\.00\s+(\S+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	before, _ := strconv.Atoi(m[1])
	after, _ := strconv.Atoi(m[2])
	require.Equal(t, bytesBefore, before)
	require.Less(t, after, before/2, "superseded records went")
	require.NotEqual(t, "never", m[5])

	// A follower (describe opens the directory without its lock) reads the
	// cleaner's state from the checkpoint.
	row = partitionRow(t, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "profiles").ok(t).stdout)
	require.Equal(t, "0.00", row[6])
	require.Regexp(t, `^\d{4}-\d\d-\d\dT`, row[7])
	require.Equal(t, "392", row[3], "RECORDS counts offsets, gaps included")

	// Gaps below the checkpoint's bound are not damage.
	out = cli(t, "", "-dir", dir, "verify", "-v").ok(t).stdout
	require.Contains(t, out, "; 0 damaged\n")
	require.NotContains(t, out, "DAMAGED")
	out = cli(t, "", "-dir", dir, "dump", "-topic", "profiles").ok(t).stdout
	require.Contains(t, out, " deleteHorizon: ", "the tombstones' batches carry a delete horizon")

	// From the start, the latest value of every key, tombstones as nulls.
	got := map[string]string{}
	for _, r := range decode(t, cli(t, "", "-dir", dir, "consume", "-topic", "profiles", "-format", "json").ok(t).stdout) {
		v, _ := r["value"].(string)
		got[r["key"].(string)] = v
	}
	require.Equal(t, latest, got)
}

// TestTopicsCompactErrors: a topic that is not compacted, a missing one,
// and -readonly.
func TestTopicsCompactErrors(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	cli(t, "", "-dir", dir, "topics", "compact", "-topic", "orders").fails(t, 1, "invalid configuration", "not compacted")
	cli(t, "", "-dir", dir, "topics", "compact", "-topic", "nope").fails(t, 1, "topic not found")
	cli(t, "", "-dir", dir, "topics", "compact").fails(t, 2, "-topic is required")
	cli(t, "", "-dir", dir, "-readonly", "topics", "compact", "-topic", "orders").fails(t, 2, "cannot run with -readonly")
	// A topic that does not compact shows no cleaner columns.
	require.NotContains(t, cli(t, "", "-dir", dir, "topics", "describe", "-topic", "orders").ok(t).stdout, "DIRTY")
}

// TestVerifyCleanerFiles: a damaged cleaner checkpoint is reported, and an
// unfinished swap (a crash after a round committed) makes verify skip the
// old segments it replaces instead of reporting them as overlapping.
func TestVerifyCleanerFiles(t *testing.T) {
	t.Parallel()
	dir, _ := seedProfiles(t)
	part := filepath.Join(dir, "topics", "profiles", "0")
	oldLogs, err := partitionLogs(part)
	require.NoError(t, err)
	require.Greater(t, len(oldLogs), 4)
	second, err := os.ReadFile(oldLogs[1])
	require.NoError(t, err)
	// One group for all the cleanable segments: the old ones after the
	// first are then inside the new segment's range.
	cli(t, "", "-dir", dir, "topics", "alter", "-topic", "profiles", "-segment-bytes", "1048576").ok(t)
	cli(t, "", "-dir", dir, "topics", "compact", "-topic", "profiles").ok(t)
	newLogs, err := partitionLogs(part)
	require.NoError(t, err)
	require.Len(t, newLogs, 2, "one cleaned segment and the active one")
	end, ok := segmentBase(newLogs[1])
	require.True(t, ok)

	// The state of a crash in the swap: the new segment moved in, an old
	// one not yet deleted.
	require.NoError(t, os.WriteFile(oldLogs[1], second, 0o600))
	r := cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code, "without the swap file the old segment overlaps the new one:\n%s", r.stdout)
	body := fmt.Appendf(nil, "0 %d 0\n", end)
	swap := fmt.Appendf(body, "%08x\n", crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(filepath.Join(part, log.SwapFile), swap, 0o600))
	out := cli(t, "", "-dir", dir, "verify").ok(t).stdout
	require.Contains(t, out, "UNFINISHED "+filepath.Join(part, log.SwapFile)+": a cleaning round's swap, which the owner's next Open finishes; 1 segment it replaces not checked\n")
	require.Contains(t, out, "; 0 damaged\n")
	// The owner's Open finishes the swap.
	withBroker(t, dir, func(*stream.Broker) {})
	_, err = os.Stat(oldLogs[1])
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NotContains(t, cli(t, "", "-dir", dir, "verify").ok(t).stdout, "UNFINISHED")

	require.NoError(t, os.WriteFile(filepath.Join(part, log.SwapFile), []byte("0 1 0\nbadcrc00\n"), 0o600))
	r = cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+filepath.Join(part, log.SwapFile)+": not a cleaner swap file")
	require.NoError(t, os.Remove(filepath.Join(part, log.SwapFile)))

	require.NoError(t, os.WriteFile(filepath.Join(part, log.CheckpointFile), []byte("garbage"), 0o600))
	r = cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+filepath.Join(part, log.CheckpointFile)+": not a cleaner checkpoint")
	require.Contains(t, r.stderr, "and 1 cleaner file")
	require.NotContains(t, r.stdout, ".log: ", "gaps are allowed anywhere then, as Open does")
}
