package main

import (
	"context"
	"io"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// readAll returns every record of topic's partition p, cloned.
func readAll(t *testing.T, dir, topic string, p int32) []*stream.Record {
	t.Helper()
	var out []*stream.Record
	withBroker(t, dir, func(b *stream.Broker) {
		rd, err := b.NewReader(topic, p, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		defer rd.Close()
		for r, err := range rd.All(t.Context()) {
			require.NoError(t, err)
			out = append(out, r.Clone())
		}
	})
	return out
}

// TestProduceKeysHeadersPartition checks -key-separator, -header, -partition and line endings.
func TestProduceKeysHeadersPartition(t *testing.T) {
	t.Parallel()
	dir := seed(t, "orders", 3)
	r := cli(t, "alice:apples\r\nbob:pe:ars\n:nokey\n", "-dir", dir, "produce", "-topic", "orders", "-partition", "2",
		"-key-separator", ":", "-header", "src=cli", "-header", "flag").ok(t)
	require.Equal(t, "produced 3 records to orders (partition 2: 3)\n", r.stderr)
	require.Empty(t, r.stdout)

	recs := readAll(t, dir, "orders", 2)
	require.Len(t, recs, 3)
	require.Equal(t, "alice", string(recs[0].Key))
	require.Equal(t, "apples", string(recs[0].Value), "CRLF line endings are cut")
	require.Equal(t, "pe:ars", string(recs[1].Value), "only the first separator splits")
	require.NotNil(t, recs[2].Key)
	require.Empty(t, recs[2].Key, "an empty key is a key")
	require.Equal(t, []stream.Header{{Key: "src", Value: []byte("cli")}, {Key: "flag"}}, recs[0].Headers)
}

// TestProduceByKeyAndWithoutKeys checks placement by key, keyless and empty lines, and empty input.
func TestProduceByKeyAndWithoutKeys(t *testing.T) {
	t.Parallel()
	dir := seed(t, "orders", 4)
	r := cli(t, "k1=a\nk1=b\nk1=c\n", "-dir", dir, "produce", "-topic", "orders", "-key-separator", "=",
		"-partitioner", "kafka").ok(t)
	require.Regexp(t, `^produced 3 records to orders \(partition \d: 3\)\n$`, r.stderr, "one key, one partition")

	r = cli(t, "x\n\ny", "-dir", dir, "produce", "-topic", "orders").ok(t)
	require.Contains(t, r.stderr, "produced 3 records", "an empty line is an empty record; a last line needs no newline")
	r = cli(t, "", "-dir", dir, "produce", "-topic", "orders").ok(t)
	require.Equal(t, "produced 0 records to orders\n", r.stderr)
}

// TestProduceErrors checks produce failures and usage errors.
func TestProduceErrors(t *testing.T) {
	t.Parallel()
	dir := seed(t, "orders", 1)
	r := cli(t, "a:1\nnoseparator\nc:3\n", "-dir", dir, "produce", "-topic", "orders", "-key-separator", ":")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `line 2: no key separator ":"`)
	require.Contains(t, r.stderr, "produced 1 record to orders", "lines before the bad one are written")

	r = cli(t, "a\n", "-dir", dir, "produce", "-topic", "orders", "-partition", "7")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "invalid partition")

	cli(t, "a\n", "-dir", dir, "produce", "-topic", "nope").fails(t, 1, "topic not found")
	cli(t, "a\n", "-dir", dir, "produce").fails(t, 2, "-topic is required")
	cli(t, "a\n", "-dir", dir, "produce", "-topic", "orders", "-partitioner", "dice").fails(t, 2, "-partitioner")
	cli(t, "a\n", "-dir", dir, "produce", "-topic", "orders", "-header", "=v").fails(t, 2, "-header")
	cli(t, "a\n", "-dir", dir, "-readonly", "produce", "-topic", "orders").fails(t, 2, "-readonly")
}

// TestProduceInterrupted checks that an interrupt ends produce while stdin is
// still open, writing what was read.
func TestProduceInterrupted(t *testing.T) {
	t.Parallel()
	dir := seed(t, "orders", 1)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		pw.Write([]byte("a\nb\n")) // returns once read
		cancel()
	}()
	r := cliApp(t, ctx, func(a *app) { a.stdin = pr }, "-dir", dir, "produce", "-topic", "orders").ok(t)
	require.Regexp(t, `^produced [0-2] records? to orders`, r.stderr) // "1 record" when cut after one line
}

// TestProduceAutoCreate checks that produce creates a missing topic only
// with -auto-create.
func TestProduceAutoCreate(t *testing.T) {
	t.Parallel()
	dir := seed(t, "orders", 1)
	cli(t, "a\n", "-dir", dir, "produce", "-topic", "fresh").fails(t, 1, "topic not found", "-auto-create")
	r := cli(t, "a\nb\n", "-dir", dir, "produce", "-topic", "fresh", "-auto-create").ok(t)
	require.Equal(t, "created topic fresh with 1 partition\nproduced 2 records to fresh (partition 0: 2)\n", r.stderr)
	require.Len(t, readAll(t, dir, "fresh", 0), 2)
	r = cli(t, "c\n", "-dir", dir, "produce", "-topic", "fresh", "-auto-create").ok(t)
	require.Equal(t, "produced 1 record to fresh (partition 0: 1)\n", r.stderr, "an existing topic is used as it is")
	cli(t, "a\n", "-dir", dir, "produce", "-topic", "bad name", "-auto-create").fails(t, 1, "invalid topic name")
}
