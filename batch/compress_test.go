package batch_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// codecLevels are the levels each codec's round trips cover: its default
// (0), Kafka's spelling of the default where it has one, and the extremes.
var codecLevels = []struct {
	codec  batch.Codec
	levels []int
}{
	{batch.None, []int{0}},
	{batch.Gzip, []int{0, -1, batch.MinGzipLevel, batch.MaxGzipLevel}},
	{batch.Snappy, []int{0}},
	{batch.LZ4, []int{0, batch.MinLZ4Level, batch.MaxLZ4Level}},
	{batch.Zstd, []int{0, batch.MinZstdLevel, -5, 1, batch.MaxZstdLevel}},
}

// compressedCodecs are the codecs that compress.
var compressedCodecs = []batch.Codec{batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd}

// jsonValue is a ~300-byte JSON event as producers send them: the same
// field names in every record, ids and timestamps that vary.
func jsonValue(rng *rand.Rand, i int, ts int64) []byte {
	return fmt.Appendf(nil, `{"event_id":"%016x","type":"page_view","user":{"id":%d,"country":"%s","plan":"%s"},`+
		`"timestamp":%d,"session":"%08x-%04x","page":{"path":"/products/%d","referrer":"https://search.example.com/?q=item%d"},`+
		`"device":{"os":"%s","version":"%d.%d"},"duration_ms":%d,"sequence":%d}`,
		rng.Uint64(), rng.IntN(1_000_000), []string{"FR", "US", "DE", "JP", "BR"}[rng.IntN(5)],
		[]string{"free", "pro", "team"}[rng.IntN(3)], ts, rng.Uint32(), rng.IntN(1<<16),
		rng.IntN(5000), rng.IntN(100), []string{"android", "ios", "linux", "macos"}[rng.IntN(4)],
		rng.IntN(20), rng.IntN(10), rng.IntN(60_000), i)
}

// jsonRecords is n records of jsonValue, keyed by user, some with a header.
func jsonRecords(seed uint64, n int) []batchtest.Record {
	rng := rand.New(rand.NewPCG(seed, seed))
	ts := int64(1_700_000_000_000)
	recs := make([]batchtest.Record, n)
	for i := range recs {
		ts += int64(rng.IntN(5))
		recs[i] = batchtest.Record{Timestamp: ts, Key: fmt.Appendf(nil, "user-%d", rng.IntN(10_000)), Value: jsonValue(rng, i, ts)}
		if i%10 == 0 {
			recs[i].Headers = []batch.Header{{Key: "content-type", Value: []byte("application/json")}}
		}
	}
	return recs
}

// recordShapes are the batches the round trips compress.
func recordShapes(t testing.TB) map[string]batch.Batch {
	rng := rand.New(rand.NewPCG(1, 1))
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	shapes := map[string]batch.Batch{
		"empty":          batchtest.Encode(t, 0, nil).Data,
		"one":            batchtest.Encode(t, 0, []batchtest.Record{{Timestamp: 1000, Key: []byte("k"), Value: []byte("v")}}).Data,
		"json":           batchtest.Encode(t, 0, jsonRecords(1, 1000)).Data,
		"nulls, headers": batchtest.Encode(t, 0, layoutRecords()).Data,
		"incompressible": batchtest.Encode(t, 0, []batchtest.Record{{Timestamp: 5, Key: nil, Value: big}}).Data,
	}
	// Header fields Builder leaves at their defaults must survive too: a
	// base offset, producer state, LogAppendTime.
	for _, b := range shapes {
		b.SetBaseOffset(1 << 40)
		binary.BigEndian.PutUint64(b[43:], 12345) // producerId
		binary.BigEndian.PutUint16(b[51:], 7)     // producerEpoch
		binary.BigEndian.PutUint32(b[53:], 99)    // baseSequence
		b.SetLogAppendTime(1_800_000_000_000)
	}
	return shapes
}

// drain collects every record of an iterator over one batch, copying them
// so they outlive its buffers.
func drain(t testing.TB, it batch.Iter) []batchtest.Record {
	t.Helper()
	var out []batchtest.Record
	var r batch.Record
	for it.Next(&r) {
		out = append(out, copyRecord(r))
	}
	require.NoError(t, it.Err())
	return out
}

func copyRecord(r batch.Record) batchtest.Record {
	c := batchtest.Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, batch.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	return c
}

// TestCompressRoundTrip compresses every shape of batch with every codec
// and level: the result parses, keeps every header field but the codec
// bits, length and CRC, yields the same records, and decompresses to the
// original bytes.
func TestCompressRoundTrip(t *testing.T) {
	for name, orig := range recordShapes(t) {
		want := drain(t, orig.Records())
		for _, cl := range codecLevels {
			for _, level := range cl.levels {
				t.Run(fmt.Sprintf("%s/%v/%d", name, cl.codec, level), func(t *testing.T) {
					prefix := []byte("earlier bytes")
					out, err := batch.Compress(bytes.Clone(prefix), orig, cl.codec, level)
					require.NoError(t, err)
					b, err := batch.Parse(out)
					require.NoError(t, err, "CRC and header valid")
					require.Len(t, b, len(out))
					require.Equal(t, cl.codec, b.Codec())
					require.Equal(t, int16(cl.codec), b.Attributes()&batch.AttrCompressionMask)
					require.Equal(t, orig.Attributes(), b.Attributes()&^batch.AttrCompressionMask)
					require.Equal(t, orig[:batch.LogOverhead-4], b[:batch.LogOverhead-4], "base offset")
					require.Equal(t, orig[batchtest.OffLeaderEpoch:batchtest.OffCRC], b[batchtest.OffLeaderEpoch:batchtest.OffCRC], "leader epoch, magic")
					require.Equal(t, orig[23:batch.HeaderSize], b[23:batch.HeaderSize], "deltas, timestamps, producer fields, count")

					batchtest.RequireRecords(t, want, drain(t, b.Records()))

					back, err := batch.Decompress(bytes.Clone(prefix), b)
					require.NoError(t, err)
					require.Equal(t, []byte(orig), []byte(back))
				})
			}
		}
	}
}

// TestCompressRefuses: a compressed batch is not compressed again, and
// levels and codecs outside Kafka's are refused.
func TestCompressRefuses(t *testing.T) {
	orig := batchtest.Encode(t, 0, layoutRecords()).Data
	gz, err := batch.Compress(nil, orig, batch.Gzip, 0)
	require.NoError(t, err)
	_, err = batch.Compress(nil, gz, batch.Zstd, 0)
	require.ErrorIs(t, err, batch.ErrUnsupported)
	for _, bad := range []struct {
		c     batch.Codec
		level int
	}{{batch.Gzip, 10}, {batch.Gzip, -2}, {batch.LZ4, 18}, {batch.Snappy, 1}, {batch.None, 1},
		{batch.Zstd, batch.MaxZstdLevel + 1}, {batch.Zstd, batch.MinZstdLevel - 1}, {5, 0}, {7, 0}, {-1, 0}} {
		_, err := batch.Compress(nil, orig, bad.c, bad.level)
		require.ErrorIs(t, err, batch.ErrUnsupported, "%v level %d", bad.c, bad.level)
	}
}
