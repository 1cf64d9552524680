package batch_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

const benchValueBytes = 100

// BenchmarkEncode measures the Builder alone: one op is one batch of 1000
// records.
func BenchmarkEncode(b *testing.B) {
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	b.SetBytes(int64(len(batchtest.BenchBatch(&bld, value, 0))))
	b.ReportAllocs()
	ts := int64(1_700_000_000_000)
	for b.Loop() {
		batchtest.BenchBatch(&bld, value, ts)
	}
	b.ReportMetric(float64(b.N*batchtest.BenchRecords)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWalk measures the read path's decoding: one op is a walk over
// 16 batches of 1000 records.
func BenchmarkWalk(b *testing.B) {
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	var data []byte
	for i := range 16 {
		bb := batchtest.BenchBatch(&bld, value, 0)
		bb.SetBaseOffset(int64(i * batchtest.BenchRecords))
		data = append(data, bb...)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var it batch.Iter
	var r batch.Record
	for b.Loop() {
		it.Reset(data, 0)
		n := 0
		for it.Next(&r) {
			n++
		}
		if it.Err() != nil || n != 16*batchtest.BenchRecords {
			b.Fatal(n, it.Err())
		}
	}
	b.ReportMetric(float64(b.N*16*batchtest.BenchRecords)/b.Elapsed().Seconds(), "records/s")
}

// TestWalkDoesNotAllocate pins the zero-copy claim: walking records without
// headers allocates nothing, one batch or many.
func TestWalkDoesNotAllocate(t *testing.T) {
	var bld batch.Builder
	b := append(batch.Batch(nil), batchtest.BenchBatch(&bld, make([]byte, benchValueBytes), 0)...)
	var r batch.Record
	allocs := testing.AllocsPerRun(20, func() {
		it := b.Records()
		for it.Next(&r) {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	})
	require.Zero(t, allocs)
	var it batch.Iter
	allocs = testing.AllocsPerRun(20, func() {
		it.Reset(b, 500)
		for it.Next(&r) {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	})
	require.Zero(t, allocs)
}

// benchJSON is the compression benchmarks' batch: 1000 JSON records of
// about 300 bytes (repeated field names, varying ids and timestamps),
// without headers, whose decoding allocates and would hide the codecs'.
func benchJSON(b *testing.B) batch.Batch {
	recs := jsonRecords(42, batchtest.BenchRecords)
	for i := range recs {
		recs[i].Headers = nil
	}
	return batchtest.Encode(b, 0, recs).Data
}

// BenchmarkCompress measures batch.Compress: one op compresses the JSON
// batch; MB/s are of uncompressed bytes. Compare with BenchmarkCodec's
// compress for our framing's cost.
func BenchmarkCompress(b *testing.B) {
	orig := benchJSON(b)
	for _, c := range compressedCodecs {
		b.Run(c.String(), func(b *testing.B) {
			out, err := batch.Compress(nil, orig, c, 0)
			require.NoError(b, err)
			b.ReportMetric(float64(len(orig))/float64(len(out)), "ratio")
			b.SetBytes(int64(len(orig)))
			b.ReportAllocs()
			for b.Loop() {
				if out, err = batch.Compress(out[:0], orig, c, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIterCompressed measures a walk over the compressed JSON batch,
// decompression included: MB/s of uncompressed bytes.
func BenchmarkIterCompressed(b *testing.B) {
	orig := benchJSON(b)
	for _, c := range append([]batch.Codec{batch.None}, compressedCodecs...) {
		b.Run(c.String(), func(b *testing.B) {
			data, err := batch.Compress(nil, orig, c, 0)
			require.NoError(b, err)
			b.SetBytes(int64(len(orig)))
			b.ReportAllocs()
			var it batch.Iter
			var r batch.Record
			for b.Loop() {
				it.Reset(data, 0)
				n := 0
				for it.Next(&r) {
					n++
				}
				if it.Err() != nil || n != batchtest.BenchRecords {
					b.Fatal(n, it.Err())
				}
			}
		})
	}
}

// BenchmarkDecompress measures AppendDecompressed on the JSON batch's
// records, the decompression a walk does.
func BenchmarkDecompress(b *testing.B) {
	src := benchJSON(b)[batch.HeaderSize:]
	for _, c := range compressedCodecs {
		b.Run(c.String(), func(b *testing.B) {
			z, err := batch.AppendCompressed(nil, c, 0, src)
			require.NoError(b, err)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				if out, err = batch.AppendDecompressed(out[:0], c, z, batch.MaxUncompressedBytes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCodec measures the codec libraries alone on the JSON batch's
// records, called as directly as they allow, reusing their state: the
// floor under BenchmarkCompress and BenchmarkDecompress. (Snappy here is
// one raw block, not 32 KiB xerial blocks.)
func BenchmarkCodec(b *testing.B) {
	src := benchJSON(b)[batch.HeaderSize:]
	var buf bytes.Buffer
	out := make([]byte, 0, 2*len(src))
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	readAll := func(r io.Reader) error {
		out = out[:cap(out)]
		n, err := io.ReadFull(r, out[:len(src)])
		if n != len(src) {
			return fmt.Errorf("read %d of %d: %v", n, len(src), err)
		}
		return nil
	}

	gw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	gzipped := func() error {
		buf.Reset()
		gw.Reset(&buf)
		if _, err := gw.Write(src); err != nil {
			return err
		}
		return gw.Close()
	}
	require.NoError(b, gzipped())
	gz := bytes.Clone(buf.Bytes())
	run("gzip/compress", gzipped)
	var gr gzip.Reader
	var br bytes.Reader
	run("gzip/decompress", func() error {
		br.Reset(gz)
		if err := gr.Reset(&br); err != nil {
			return err
		}
		return readAll(&gr)
	})

	sn := s2.EncodeSnappy(nil, src)
	run("snappy/compress", func() error { out = s2.EncodeSnappy(out[:cap(out)], src); return nil })
	run("snappy/decompress", func() error { _, err := s2.Decode(out[:cap(out)], sn); return err })

	lw := lz4.NewWriter(&buf)
	lz4ed := func() error {
		buf.Reset()
		lw.Reset(&buf)
		if err := lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
			return err
		}
		if _, err := lw.Write(src); err != nil {
			return err
		}
		return lw.Close()
	}
	require.NoError(b, lz4ed())
	lz := bytes.Clone(buf.Bytes())
	run("lz4/compress", lz4ed)
	lr := lz4.NewReader(nil)
	run("lz4/decompress", func() error { br.Reset(lz); lr.Reset(&br); return readAll(lr) })

	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	zs := enc.EncodeAll(src, nil)
	run("zstd/compress", func() error { out = enc.EncodeAll(src, out[:0]); return nil })
	run("zstd/decompress", func() error { var err error; out, err = dec.DecodeAll(zs, out[:0]); return err })
}
