package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// bigOrders seeds "orders" (one partition, 4 KiB segments) with 12 records
// of 1 KB, so the partition has several segments, and returns the directory
// and the segment files.
func bigOrders(t *testing.T) (string, []string) {
	t.Helper()
	var recs []*stream.Record
	for i := range 12 {
		recs = append(recs, rec(0, "", strings.Repeat(string(rune('a'+i)), 1000), at(i)))
	}
	dir := seed(t, "orders", 1, recs...)
	logs, err := partitionLogs(filepath.Join(dir, "topics", "orders", "0"))
	require.NoError(t, err)
	require.Greater(t, len(logs), 2)
	return dir, logs
}

// TestVerifyClean checks verify on a clean directory with several segments.
func TestVerifyClean(t *testing.T) {
	t.Parallel()
	dir, logs := bigOrders(t)
	out := cli(t, "", "-dir", dir, "verify").ok(t).stdout
	require.Regexp(t, `^verified 1 topic, 1 partition, \d+ segments: 12 batches, 12 records, \d+ bytes; 0 damaged\n$`, out)
	out = cli(t, "", "-dir", dir, "verify", "-v").ok(t).stdout
	require.Contains(t, out, "ok "+logs[0]+": ")
}

// TestVerifyFlippedByte checks that verify names a segment with a flipped byte, exits 1 and changes nothing.
func TestVerifyFlippedByte(t *testing.T) {
	t.Parallel()
	dir, logs := bigOrders(t)
	flipLastByte(t, logs[1])
	before := snapshot(t, dir)
	r := cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+logs[1]+": at position ")
	require.Contains(t, r.stdout, "crc")
	require.Contains(t, r.stdout, "; 1 damaged\n")
	require.Regexp(t, `^streamctl verify: damage found in 1 of \d+ segments\n$`, r.stderr)
	require.Equal(t, before, snapshot(t, dir), "verify changes nothing")
}

// TestVerifyGapAndTails checks a missing segment (offset gap) and zero tails in active and sealed segments.
func TestVerifyGapAndTails(t *testing.T) {
	t.Parallel()
	dir, logs := bigOrders(t)
	require.NoError(t, os.Remove(logs[1]))
	r := cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+logs[2]+": starts at offset")

	dir, logs = bigOrders(t)
	appendZeros(t, logs[len(logs)-1], 512)
	cli(t, "", "-dir", dir, "verify").ok(t) // preallocated space in the active segment
	appendZeros(t, logs[0], 512)
	r = cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+logs[0]+": zero-filled tail of 512 bytes")
}

// TestVerifyLogStart checks the log-start file DeleteRecords leaves: a
// start below the first segment is fine (retention deletes segments without
// rewriting the file); one that is not a number, or past the log's end, is
// damage.
func TestVerifyLogStart(t *testing.T) {
	t.Parallel()
	dir, _ := bigOrders(t)
	withBroker(t, dir, func(b *stream.Broker) {
		_, err := b.DeleteRecords("orders", 0, 5)
		require.NoError(t, err)
	})
	path := filepath.Join(dir, "topics", "orders", "0", "log-start")
	require.FileExists(t, path)
	cli(t, "", "-dir", dir, "verify").ok(t)
	logs, err := partitionLogs(filepath.Dir(path))
	require.NoError(t, err)
	require.NoError(t, os.Remove(logs[0])) // as retention would
	cli(t, "", "-dir", dir, "verify").ok(t)
	for content, problem := range map[string]string{
		"":           `not a log start offset with its checksum: ""`,
		"5\x00":      `not a log start offset with its checksum: "5\x00"`,
		"05":         `not a log start offset with its checksum: "05"`,
		"-1":         `not a log start offset with its checksum: "-1"`,
		"5 00000000": `not a log start offset with its checksum: "5 00000000"`,
		"13":         "log start offset 13 is past the log's end, 12",
	} {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		before := snapshot(t, dir)
		r := cli(t, "", "-dir", dir, "verify")
		require.Equal(t, 1, r.code, "%q", content)
		require.Contains(t, r.stdout, "DAMAGED "+path+": "+problem+"\n", "%q", content)
		require.Contains(t, r.stdout, "; 1 damaged\n", "%q", content)
		require.Regexp(t, `^streamctl verify: damage found in 0 of \d+ segments and 1 log-start file\n$`, r.stderr)
		require.Equal(t, before, snapshot(t, dir), "verify changes nothing")
	}
	require.NoError(t, os.WriteFile(path, []byte("12"), 0o600)) // at the end: everything deleted
	cli(t, "", "-dir", dir, "verify").ok(t)
}

// TestVerifyErrors checks verify on a directory without topics, and a bad flag.
func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	cli(t, "", "-dir", t.TempDir(), "verify").fails(t, 1, "no topics under")
	cli(t, "", "-dir", t.TempDir(), "verify", "-x").fails(t, 2, "flag provided but not defined: -x")
}

// appendZeros appends n zero bytes to a file.
func appendZeros(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(make([]byte, n))
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// TestVerifyMeta checks that verify reads meta.db as Open does: a damaged
// or missing one, which costs committed offsets, is reported.
func TestVerifyMeta(t *testing.T) {
	t.Parallel()
	dir, _ := bigOrders(t)
	path := filepath.Join(dir, "meta.db")
	cli(t, "", "-dir", dir, "verify").ok(t)
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	before := snapshot(t, dir)
	r := cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+path+": ")
	require.Regexp(t, `^streamctl verify: damage found in 0 of \d+ segments and meta.db\n$`, r.stderr)
	require.Equal(t, before, snapshot(t, dir), "verify changes nothing")
	require.NoError(t, os.Remove(path))
	r = cli(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "MISSING "+path+": ")
}
