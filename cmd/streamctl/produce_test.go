package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
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

// storedCodecs returns the codec of every batch in a partition's segment
// files, read from disk.
func storedCodecs(t *testing.T, dir, topic string, p int32) []batch.Codec {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "topics", topic, strconv.Itoa(int(p)), "*.log"))
	require.NoError(t, err)
	var out []batch.Codec
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for {
			b, err := batch.Parse(data)
			if err != nil {
				break // the preallocated tail
			}
			out = append(out, b.Codec())
			data = data[len(b):]
		}
	}
	return out
}

// TestProduceCompression checks produce -compression: batches stored with
// the producer's codec, or the topic's where it has one, and read back
// whole.
func TestProduceCompression(t *testing.T) {
	t.Parallel()
	dir := seed(t, "orders", 1)
	cli(t, "", "-dir", dir, "topics", "create", "-topic", "audit", "-compression", "lz4").ok(t)
	lines := strings.Repeat("the same line again\n", 200)
	cli(t, lines, "-dir", dir, "produce", "-topic", "orders", "-compression", "zstd", "-compression-level", "9").ok(t)
	cli(t, lines, "-dir", dir, "produce", "-topic", "audit", "-compression", "gzip").ok(t)
	cli(t, "plain\n", "-dir", dir, "produce", "-topic", "orders").ok(t)

	codecs := storedCodecs(t, dir, "orders", 0)
	require.NotEmpty(t, codecs)
	require.Equal(t, batch.None, codecs[len(codecs)-1], "no -compression: none")
	for _, c := range codecs[:len(codecs)-1] {
		require.Equal(t, batch.Zstd, c)
	}
	for _, c := range storedCodecs(t, dir, "audit", 0) {
		require.Equal(t, batch.LZ4, c, "the topic's codec")
	}
	for _, topic := range []string{"orders", "audit"} {
		recs := readAll(t, dir, topic, 0)
		require.Len(t, recs, 200+map[string]int{"orders": 1}[topic])
		for _, r := range recs[:200] {
			require.Equal(t, "the same line again", string(r.Value))
		}
	}

	cli(t, "x\n", "-dir", dir, "produce", "-topic", "orders", "-compression", "rar").fails(t, 2, "-compression")
	cli(t, "x\n", "-dir", dir, "produce", "-topic", "orders", "-compression", "zstd", "-compression-level", "99").fails(t, 1, "invalid configuration", "zstd level 99")
	require.Len(t, readAll(t, dir, "orders", 0), 201, "nothing produced")
}
