package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
)

// seedCompressed makes a data directory with "orders" (two partitions,
// codec c) holding records p<partition>-<i> for i < n, ten per batch,
// timestamps a minute apart.
func seedCompressed(t *testing.T, c stream.Codec, n int) string {
	t.Helper()
	dir := t.TempDir()
	withBroker(t, dir, func(b *stream.Broker) {
		require.NoError(t, b.CreateTopic("orders", stream.TopicConfig{Partitions: 2, Compression: stream.Compression{Codec: c}}))
		for p := range int32(2) {
			for i := 0; i < n; i += 10 {
				var recs []*stream.Record
				for j := i; j < min(i+10, n); j++ {
					recs = append(recs, &stream.Record{Topic: "orders", Partition: p, Key: []byte(fmt.Sprint("k", j)),
						Value: []byte(fmt.Sprintf("p%d-%d %s", p, j, strings.Repeat("x", 50))), Timestamp: at(j)})
				}
				require.NoError(t, b.Publish(context.Background(), recs...))
			}
		}
	})
	return dir
}

// TestDumpCompressed checks that dump shows each compressed batch's codec
// and ratio and decodes its records.
func TestDumpCompressed(t *testing.T) {
	t.Parallel()
	for _, c := range []stream.Codec{stream.CodecGzip, stream.CodecSnappy, stream.CodecLZ4, stream.CodecZstd} {
		dir := seedCompressed(t, c, 25)
		out := cli(t, "", "dump", firstLog(dir, "orders", 1)).ok(t).stdout
		require.Regexp(t, `baseOffset: 10 lastOffset: 19 count: 10 position: \d+ size: \d+ crc: 0x[0-9a-f]{8} crcValid: true attributes: 0x`+
			fmt.Sprintf("%x", int(c)-1)+` .* codec: `+c.String()+` recordBytes: \d+ stored: \d+ ratio: 0\.\d{3}\n`, out)
		require.Contains(t, out, `| offset: 13 timestamp: 1714565580000 (2024-05-01T12:13:00.000Z) key: "k13" value: "p1-13 xxxx`)
		require.Contains(t, out, "Summary: 3 batches, 25 records")
		require.Equal(t, 25, strings.Count(out, "| offset:"))

		out = cli(t, "", "-dir", dir, "dump", "-topic", "orders", "-records=false").ok(t).stdout
		require.Equal(t, 6, strings.Count(out, "codec: "+c.String()+" recordBytes: "))
	}
	// Uncompressed batches say so, without a ratio.
	dir := threeOrders(t)
	out := cli(t, "", "dump", firstLog(dir, "orders", 0)).ok(t).stdout
	require.Contains(t, out, "codec: none\n")
	require.NotContains(t, out, "ratio")
}

// spoilCompressed damages the records of the second batch of a segment
// file, keeping its CRC valid: it passes recovery and verify's default
// check, and does not decompress.
func spoilCompressed(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	first, err := batch.Parse(data)
	require.NoError(t, err)
	b, err := batch.Parse(data[len(first):])
	require.NoError(t, err)
	require.NotEqual(t, batch.None, b.Codec())
	for i := batch.HeaderSize + 4; i < len(b); i += 2 {
		b[i] ^= 0x5a
	}
	binary.BigEndian.PutUint32(b[17:], b.ComputeCRC())
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// TestVerifyCompressed checks that verify counts the records of compressed
// batches without decompressing them, so that a batch whose records do not
// decompress passes it, and that -deep finds it; dump shows it as damage.
func TestVerifyCompressed(t *testing.T) {
	t.Parallel()
	dir := seedCompressed(t, stream.CodecZstd, 30)
	out := cli(t, "", "-dir", dir, "verify").ok(t).stdout
	require.Regexp(t, `^verified 1 topic, 2 partitions, 2 segments: 6 batches, 60 records, \d+ bytes; 0 damaged\n$`, out)
	require.Equal(t, out, cli(t, "", "-dir", dir, "verify", "-deep").ok(t).stdout)

	path := firstLog(dir, "orders", 0)
	spoilCompressed(t, path)
	before := snapshot(t, dir)
	out = cli(t, "", "-dir", dir, "verify").ok(t).stdout
	require.Contains(t, out, "60 records", "the stored bytes are intact")

	r := cli(t, "", "-dir", dir, "verify", "-deep")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+path+": at position ")
	require.Contains(t, r.stdout, "zstd")

	r = cli(t, "", "dump", path)
	require.Equal(t, 1, r.code)
	require.Regexp(t, `baseOffset: 10 lastOffset: 19 .* codec: zstd\n`, r.stdout, "the header, without a ratio")
	require.Contains(t, r.stdout, "DAMAGE "+path+": at position ")
	require.Equal(t, 10, strings.Count(r.stdout, "| offset:"), "the records before it")
	require.Equal(t, before, snapshot(t, dir), "nothing changed")

	// consume prints the records before it and stops there, naming the
	// offsets lost, as at any damage.
	r = cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-partition", "0", "-format", "raw")
	require.Equal(t, 1, r.code)
	require.Len(t, splitNonEmpty(r.stdout), 10)
	require.Contains(t, r.stderr, "offsets [10, 20) unreadable")
}

// TestConsumeReplayCompressed checks that consume and replay read
// compressed topics as they read uncompressed ones.
func TestConsumeReplayCompressed(t *testing.T) {
	t.Parallel()
	plain := seedCompressed(t, stream.CodecNone, 30)
	for _, c := range []stream.Codec{stream.CodecGzip, stream.CodecSnappy, stream.CodecLZ4, stream.CodecZstd} {
		dir := seedCompressed(t, c, 30)
		for _, args := range [][]string{
			{"consume", "-topic", "orders"},
			{"consume", "-topic", "orders", "-from", "13", "-partition", "1", "-format", "raw"},
			{"replay", "-topic", "orders", "-from", rfc(at(5)), "-to", rfc(at(17))},
		} {
			want := cli(t, "", append([]string{"-dir", plain}, args...)...).ok(t).stdout
			got := cli(t, "", append([]string{"-dir", dir}, args...)...).ok(t).stdout
			require.NotEmpty(t, want)
			require.Equal(t, want, got, "%v %v", c, args)
		}
	}
}
