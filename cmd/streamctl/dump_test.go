package main

import (
	"path/filepath"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// TestDumpFile checks the dump of a .log file: batch headers, records, -records=false.
func TestDumpFile(t *testing.T) {
	t.Parallel()
	r := &stream.Record{Partition: 0, Key: []byte("k"), Value: []byte("v"), Timestamp: at(0),
		Headers: []stream.Header{{Key: "h", Value: []byte{0xff}}}}
	dir := seed(t, "orders", 1, r, rec(0, "", "second", at(1)))
	path := firstLog(dir, "orders", 0)
	out := cli(t, "", "dump", path).ok(t).stdout // no -dir needed
	require.Contains(t, out, "Dumping "+path+"\nStarting offset: 0\n")
	require.Regexp(t, `baseOffset: 0 lastOffset: 0 count: 1 position: 0 size: \d+ crc: 0x[0-9a-f]{8} crcValid: true attributes: 0x0 `+
		`baseTimestamp: 1714564800000 \(2024-05-01T12:00:00.000Z\) maxTimestamp: 1714564800000`, out)
	require.Contains(t, out, `| offset: 0 timestamp: 1714564800000 (2024-05-01T12:00:00.000Z) key: "k" value: "v" headers: ["h"=base64:/w==]`)
	require.Contains(t, out, `| offset: 1 timestamp: 1714564860000 (2024-05-01T12:01:00.000Z) key: null value: "second" headers: []`)
	require.Contains(t, out, "Summary: 2 batches, 2 records")

	out = cli(t, "", "dump", "-records=false", path).ok(t).stdout
	require.NotContains(t, out, "| offset")
	out = cli(t, "", "dump", path, "-records=false").ok(t).stdout // flags after the file too
	require.NotContains(t, out, "| offset")
}

// TestDumpTopic checks dump -topic with and without -partition, and its usage errors.
func TestDumpTopic(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	out := cli(t, "", "-dir", dir, "dump", "-topic", "orders", "-partition", "1").ok(t).stdout
	require.Contains(t, out, filepath.Join("orders", "1", "00000000000000000000.log"))
	require.Contains(t, out, `value: "b"`)
	require.NotContains(t, out, `value: "a"`)

	out = cli(t, "", "-dir", dir, "dump", "-topic", "orders").ok(t).stdout
	require.Contains(t, out, `value: "a"`)
	require.Contains(t, out, `value: "b"`)

	cli(t, "", "-dir", dir, "dump", "-topic", "nope").fails(t, 1, `topic "nope"`)
	cli(t, "", "-dir", dir, "dump").fails(t, 2, "either -topic or FILE.log")
	cli(t, "", "-dir", dir, "dump", "-topic", "orders", firstLog(dir, "orders", 0)).fails(t, 2, "either -topic or FILE.log")
	cli(t, "", "dump", filepath.Join(dir, "missing.log")).fails(t, 1, "no such file")
	cli(t, "", "dump", filepath.Join(dir, "meta.db")).fails(t, 2, "is not a segment log")
}

// TestDumpDamage checks that dump shows the good batches, reports the damage, exits 1 and changes nothing.
func TestDumpDamage(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	path := firstLog(dir, "orders", 0)
	flipLastByte(t, path)
	before := snapshot(t, dir)
	r := cli(t, "", "dump", path)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, `value: "a"`, "the good batch before the damage is shown")
	require.Contains(t, r.stdout, "DAMAGE "+path+": at position ")
	require.Contains(t, r.stdout, "crc")
	require.Equal(t, "streamctl dump: damage in "+path+"\n", r.stderr)
	require.Equal(t, before, snapshot(t, dir), "dump changes nothing")
}

// TestDumpZeroTail checks that a zero-filled tail is reported as preallocated space, not damage.
func TestDumpZeroTail(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	path := firstLog(dir, "orders", 0)
	appendZeros(t, path, 1000)
	out := cli(t, "", "dump", path).ok(t).stdout
	require.Contains(t, out, "zero-filled tail of 1000 bytes (preallocated, not damage)")
}
