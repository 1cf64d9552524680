package batch_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"io"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// withRecords is orig with its records replaced by body, stored as codec
// c: what another Kafka client, or damage, could have written. The length
// and CRC are made to match, so the body reaches the decompressor.
func withRecords(orig batch.Batch, c batch.Codec, body []byte) batch.Batch {
	b := append(batch.Batch(bytes.Clone(orig[:batch.HeaderSize])), body...)
	binary.BigEndian.PutUint16(b[21:], uint16(orig.Attributes()&^batch.AttrCompressionMask)|uint16(c))
	binary.BigEndian.PutUint32(b[batchtest.OffBatchLength:], uint32(len(b)-batch.LogOverhead))
	batchtest.FixCRC(b)
	return b
}

func compress(t testing.TB, b batch.Batch, c batch.Codec) batch.Batch {
	t.Helper()
	out, err := batch.Compress(nil, b, c, 0)
	require.NoError(t, err)
	return out
}

// requireDecodes checks that b's records are orig's, read both ways.
func requireDecodes(t *testing.T, orig, b batch.Batch) {
	t.Helper()
	_, err := batch.Parse(b)
	require.NoError(t, err)
	batchtest.RequireRecords(t, drain(t, orig.Records()), drain(t, b.Records()))
	back, err := batch.Decompress(nil, b)
	require.NoError(t, err)
	require.Equal(t, []byte(orig), []byte(back))
}

// TestSnappyFraming: we write snappy in the xerial framing Kafka's Java
// client reads (a 16-byte header, then 32 KiB blocks each after its
// big-endian compressed length), and read raw snappy blocks too, as
// librdkafka and franz-go write them.
func TestSnappyFraming(t *testing.T) {
	orig := batchtest.Encode(t, 0, jsonRecords(2, 1000)).Data
	records := orig[batch.HeaderSize:]
	body := compress(t, orig, batch.Snappy)[batch.HeaderSize:]
	require.Equal(t, []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}, []byte(body[:16]),
		"xerial magic, version 1, compatible with 1")
	var got []byte
	blocks := 0
	for p := 16; p < len(body); blocks++ {
		require.GreaterOrEqual(t, len(body)-p, 4)
		n := int(binary.BigEndian.Uint32(body[p:]))
		p += 4
		require.LessOrEqual(t, n, len(body)-p)
		block, err := snappy.Decode(nil, body[p:p+n])
		require.NoError(t, err, "block %d is plain snappy", blocks)
		if p+n < len(body) {
			require.Len(t, block, 32<<10, "every block but the last holds 32 KiB")
		} else {
			require.LessOrEqual(t, len(block), 32<<10)
		}
		got = append(got, block...)
		p += n
	}
	require.Equal(t, (len(records)+32<<10-1)/(32<<10), blocks)
	require.Equal(t, []byte(records), got)

	t.Run("raw", func(t *testing.T) {
		requireDecodes(t, orig, withRecords(orig, batch.Snappy, s2.EncodeSnappy(nil, records)))
		requireDecodes(t, orig, withRecords(orig, batch.Snappy, snappy.Encode(nil, records)))
	})
	t.Run("empty", func(t *testing.T) {
		empty := batchtest.Encode(t, 0, nil).Data
		require.Len(t, compress(t, empty, batch.Snappy), batch.HeaderSize+16, "the header alone")
		requireDecodes(t, empty, withRecords(empty, batch.Snappy, snappy.Encode(nil, nil)))
	})
}

// TestLZ4Framing: we write an LZ4 frame (magic, 64 KiB independent
// blocks, no content checksum: what Kafka's Java client writes) that a
// plain LZ4 reader reads, and read frames written with other options.
func TestLZ4Framing(t *testing.T) {
	orig := batchtest.Encode(t, 0, jsonRecords(3, 1000)).Data
	records := orig[batch.HeaderSize:]
	for _, level := range []int{0, batch.MinLZ4Level, batch.MaxLZ4Level} {
		out, err := batch.Compress(nil, orig, batch.LZ4, level)
		require.NoError(t, err)
		body := out[batch.HeaderSize:]
		require.Equal(t, uint32(0x184D2204), binary.LittleEndian.Uint32(body), "frame magic")
		flg, bd := body[4], body[5]
		require.Equal(t, byte(1), flg>>6, "version")
		require.NotZero(t, flg&0x20, "independent blocks")
		require.Zero(t, flg&0x04, "no content checksum")
		require.Equal(t, byte(4), bd>>4&7, "64 KiB blocks")
		got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(body)))
		require.NoError(t, err)
		require.Equal(t, []byte(records), got)
	}

	// A frame with another block size and a content checksum reads too.
	var buf bytes.Buffer
	zw := lz4.NewWriter(&buf)
	require.NoError(t, zw.Apply(lz4.BlockSizeOption(lz4.Block4Mb), lz4.ChecksumOption(true)))
	_, err := zw.Write(records)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	requireDecodes(t, orig, withRecords(orig, batch.LZ4, buf.Bytes()))
}

// TestGzipFraming: what we write is a gzip stream the standard library
// reads, and we read the standard library's.
func TestGzipFraming(t *testing.T) {
	orig := batchtest.Encode(t, 0, jsonRecords(4, 1000)).Data
	records := orig[batch.HeaderSize:]
	zr, err := stdgzip.NewReader(bytes.NewReader(compress(t, orig, batch.Gzip)[batch.HeaderSize:]))
	require.NoError(t, err)
	got, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, []byte(records), got)

	var buf bytes.Buffer
	zw, err := stdgzip.NewWriterLevel(&buf, stdgzip.BestSpeed)
	require.NoError(t, err)
	_, err = zw.Write(records)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	requireDecodes(t, orig, withRecords(orig, batch.Gzip, buf.Bytes()))
}

// TestZstdFraming: what we write is a zstd frame a fresh decoder reads,
// and we read frames with a checksum, or without their content size, as
// a streaming encoder writes them.
func TestZstdFraming(t *testing.T) {
	orig := batchtest.Encode(t, 0, jsonRecords(5, 1000)).Data
	records := orig[batch.HeaderSize:]
	dec, err := zstd.NewReader(nil)
	require.NoError(t, err)
	defer dec.Close()
	got, err := dec.DecodeAll(compress(t, orig, batch.Zstd)[batch.HeaderSize:], nil)
	require.NoError(t, err)
	require.Equal(t, []byte(records), got)

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	require.NoError(t, err)
	requireDecodes(t, orig, withRecords(orig, batch.Zstd, enc.EncodeAll(records, nil)))
	var buf bytes.Buffer
	enc.Reset(&buf)
	_, err = enc.Write(records)
	require.NoError(t, err)
	require.NoError(t, enc.Close())
	var h zstd.Header
	require.NoError(t, h.Decode(buf.Bytes()))
	require.False(t, h.HasFCS, "streamed: no content size")
	requireDecodes(t, orig, withRecords(orig, batch.Zstd, buf.Bytes()))
}
