package batch_test

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// requireCorruptOrValid reads b both ways: its records walk to ErrCorrupt,
// or (wantErr false) decode cleanly; Decompress agrees.
func requireCorruptOrValid(t *testing.T, b batch.Batch, wantErr bool, msg string) {
	t.Helper()
	_, err := batch.Parse(b)
	require.NoError(t, err, "%s: the CRC was fixed", msg)
	it := b.Records()
	var r batch.Record
	for it.Next(&r) {
	}
	if wantErr || it.Err() != nil {
		require.ErrorIs(t, it.Err(), batch.ErrCorrupt, msg)
	}
	_, err = batch.Decompress(nil, b)
	if err != nil {
		require.ErrorIs(t, err, batch.ErrCorrupt, msg)
	}
}

// TestDamagedCompressedRecords: compressed records cut short or with bits
// flipped, behind a valid CRC as a buggy writer could leave them, end a
// walk with ErrCorrupt (or, for a flip the codec cannot see, decode to
// other records), never a panic.
func TestDamagedCompressedRecords(t *testing.T) {
	orig := batchtest.Encode(t, 7, jsonRecords(6, 100)).Data
	rng := rand.New(rand.NewPCG(6, 6))
	for _, c := range compressedCodecs {
		t.Run(c.String(), func(t *testing.T) {
			body := compress(t, orig, c)[batch.HeaderSize:]
			for cut := 0; cut < len(body); cut += 1 + cut/8 {
				requireCorruptOrValid(t, withRecords(orig, c, body[:cut]), true, "cut")
			}
			for range 100 {
				damaged := bytes.Clone(body)
				p := rng.IntN(len(damaged))
				damaged[p] ^= 1 << rng.IntN(8)
				requireCorruptOrValid(t, withRecords(orig, c, damaged), false, "flip")
			}
			garbage := make([]byte, 200)
			for i := range garbage {
				garbage[i] = byte(rng.Uint32())
			}
			requireCorruptOrValid(t, withRecords(orig, c, garbage), true, "garbage")
			requireCorruptOrValid(t, withRecords(orig, c, append(bytes.Clone(body), body...)), true, "twice")
		})
	}

	xerial := compress(t, orig, batch.Snappy)[batch.HeaderSize:]
	for name, body := range map[string][]byte{
		"xerial header cut":             xerial[:10],
		"xerial length cut":             append(bytes.Clone(xerial), 0, 0),
		"xerial length past end":        binary.BigEndian.AppendUint32(bytes.Clone(xerial[:16]), 1<<31),
		"xerial empty block":            binary.BigEndian.AppendUint32(bytes.Clone(xerial), 0),
		"raw block claims 4 GiB":        binary.AppendUvarint(nil, 1<<32-1),
		"raw block claims 5 GiB":        binary.AppendUvarint(nil, 5<<30),
		"raw block longer than it says": snappy.Encode(nil, bytes.Repeat([]byte("ab"), 100))[1:],
	} {
		requireCorruptOrValid(t, withRecords(orig, batch.Snappy, body), true, name)
	}
}

// bomb is compressed records that expand to size bytes (of zeros, mostly): one
// compressed MiB repeated where the framing allows, so the test never
// holds (or compresses) the whole; withSize also states the size up front
// where the framing can.
func bomb(t *testing.T, c batch.Codec, size int, withSize bool) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	n := size / len(zeros)
	var buf bytes.Buffer
	switch c {
	case batch.Gzip:
		// Gzip members back to back are one stream (RFC 1952 2.2). Not
		// zeros: inflating matches at distance 1 is a slow byte loop, and
		// any repeated KiB compresses as well.
		rng := rand.New(rand.NewPCG(9, 9))
		kib := make([]byte, 1<<10)
		for i := range kib {
			kib[i] = byte(rng.Uint32())
		}
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, err := zw.Write(bytes.Repeat(kib, len(zeros)/len(kib)))
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		return bytes.Repeat(buf.Bytes(), n)
	case batch.LZ4:
		// One frame, its one block of zeros repeated: the frame header (7
		// bytes, 15 with a content size), blocks, a zero end mark.
		zw := lz4.NewWriter(&buf)
		require.NoError(t, zw.Apply(lz4.BlockSizeOption(lz4.Block1Mb), lz4.ChecksumOption(false)))
		_, err := zw.Write(zeros)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		frame := buf.Bytes()
		header, block := frame[:7], frame[7:len(frame)-4]
		require.Equal(t, []byte{0, 0, 0, 0}, frame[len(frame)-4:])
		require.Equal(t, lz4HeaderChecksum(header[4:6]), header[6], "our xxh32 agrees with the writer's")
		out := bytes.Clone(header)
		if withSize {
			out[4] |= 0x08 // FLG: content size present
			out = binary.LittleEndian.AppendUint64(out[:6], uint64(size))
			out = append(out, lz4HeaderChecksum(out[4:]))
		}
		out = append(out, bytes.Repeat(block, n)...)
		return append(out, 0, 0, 0, 0)
	case batch.Zstd:
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		require.NoError(t, err)
		fcs := int64(size)
		if !withSize {
			fcs = -1
		}
		zw.ResetContentSize(&buf, fcs)
		for range n {
			_, err := zw.Write(zeros)
			require.NoError(t, err)
		}
		require.NoError(t, zw.Close())
		return buf.Bytes()
	case batch.Snappy:
		// Snappy copies at most 64 bytes for 3, so no framing makes a
		// small bomb: xerial blocks of 1 MiB of zeros, 1/21 of the size.
		block := snappy.Encode(nil, zeros)
		buf.Write([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1})
		for range n {
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
		}
		return buf.Bytes()
	}
	t.Fatalf("no bomb for %v", c)
	return nil
}

// lz4HeaderChecksum is the LZ4 frame descriptor's HC byte: the second byte
// of the xxHash32 (seed 0) of the descriptor.
func lz4HeaderChecksum(desc []byte) byte {
	return byte(xxh32(desc) >> 8)
}

// allocated is the bytes fn allocates, garbage or not.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecompressionBomb: records that expand past the limit (by default
// MaxUncompressedBytes) are ErrCorrupt, and finding that out allocates
// less than three times the limit, whether the framing states the size up
// front or not. Under -race or -short the limit is 4 MiB, passed to
// AppendDecompressed: the same code, a sixteenth of the work.
func TestDecompressionBomb(t *testing.T) {
	full := !raceEnabled && !testing.Short()
	limit := batch.MaxUncompressedBytes
	if !full {
		limit = 4 << 20
	}
	size := limit + limit/2
	// At 4 MiB the decoders' own state (lz4's block buffers, zstd's
	// window), made anew when the race detector empties their pools,
	// counts: allow for it.
	bound := uint64(3 * limit)
	if !full {
		bound += 8 << 20
	}
	orig := batchtest.Encode(t, 0, []batchtest.Record{{Timestamp: 1, Value: []byte("x")}}).Data
	for _, tc := range []struct {
		c        batch.Codec
		withSize bool
	}{{batch.Gzip, false}, {batch.Snappy, false}, {batch.LZ4, false}, {batch.LZ4, true}, {batch.Zstd, false}, {batch.Zstd, true}} {
		name := tc.c.String()
		if tc.withSize {
			name += " sized"
		}
		t.Run(name, func(t *testing.T) {
			body := bomb(t, tc.c, size, tc.withSize)
			var err error
			n := allocated(func() { _, err = batch.AppendDecompressed(nil, tc.c, body, limit) })
			require.ErrorIs(t, err, batch.ErrCorrupt)
			require.Less(t, n, bound, "%d bytes of %v expanding past %d allocated %d", len(body), tc.c, limit, n)
			if !full {
				return
			}
			b := withRecords(orig, tc.c, body)
			n = allocated(func() { _, err = batch.Decompress(nil, b) })
			require.ErrorIs(t, err, batch.ErrCorrupt)
			require.Less(t, n, bound, "Decompress allocated %d", n)
			n = allocated(func() {
				it := b.Records()
				var r batch.Record
				for it.Next(&r) {
				}
				err = it.Err()
			})
			require.ErrorIs(t, err, batch.ErrCorrupt)
			require.Less(t, n, bound, "a walk allocated %d", n)
		})
	}

	// A raw snappy block states its size: one past the limit is refused
	// before anything is decoded.
	b := withRecords(orig, batch.Snappy, binary.AppendUvarint(nil, batch.MaxUncompressedBytes+1))
	var err error
	n := allocated(func() { _, err = batch.Decompress(nil, b) })
	require.ErrorIs(t, err, batch.ErrCorrupt)
	require.Less(t, n, uint64(1<<20))
}

// TestDecompressLimit: AppendDecompressed stops at the caller's limit,
// which the output may reach but not pass, for every codec.
func TestDecompressLimit(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789"), 10_000)
	for _, c := range append([]batch.Codec{batch.None}, compressedCodecs...) {
		z, err := batch.AppendCompressed(nil, c, 0, src)
		require.NoError(t, err)
		prefix := []byte("kept")
		out, err := batch.AppendDecompressed(bytes.Clone(prefix), c, z, len(src))
		require.NoError(t, err, "%v", c)
		require.Equal(t, append(bytes.Clone(prefix), src...), out)
		for _, limit := range []int{len(src) - 1, 1000, 0, -1} {
			out, err = batch.AppendDecompressed(bytes.Clone(prefix), c, z, limit)
			require.ErrorIs(t, err, batch.ErrCorrupt, "%v limit %d", c, limit)
			require.Equal(t, prefix, out, "%v: dst is returned as it was", c)
		}
	}
}

// xxh32 is xxHash32 with seed 0 of fewer than 16 bytes, all an LZ4 frame
// descriptor holds.
func xxh32(b []byte) uint32 {
	const p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
	h := uint32(p5) + uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*p3, 17) * p4
	}
	for _, c := range b {
		h = bits.RotateLeft32(h+uint32(c)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	return h ^ h>>16
}

// TestZstdConcatenatedFrames: frames back to back are valid zstd (Kafka's
// Java client reads them); a first frame that states its size must not
// make the rest look like a bomb.
func TestZstdConcatenatedFrames(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	a, b := bytes.Repeat([]byte("first frame "), 100), bytes.Repeat([]byte("second "), 150)
	src := enc.EncodeAll(b, enc.EncodeAll(a, nil))
	got, err := batch.AppendDecompressed(nil, batch.Zstd, src, batch.MaxUncompressedBytes)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte{}, a...), b...), got)

	_, err = batch.AppendDecompressed(nil, batch.Zstd, src, len(a)+len(b)-1)
	require.ErrorIs(t, err, batch.ErrCorrupt, "the limit still holds across frames")
}
