package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a batch compression codec, numbered as Kafka numbers it in
// attribute bits 0-2. The codecs are well-kept libraries' (klauspost/compress
// and pierrec/lz4), in Kafka's framings:
//
//   - Gzip: a gzip stream (RFC 1952).
//   - Snappy: written in the xerial framing Kafka's Java client uses (an
//     8-byte magic, two version words, then 32 KiB blocks each prefixed by
//     its compressed length); read in that framing or as one raw snappy
//     block, as librdkafka and franz-go write it.
//   - LZ4: an LZ4 frame (KIP-57), 64 KiB independent blocks and no content
//     checksum, as Kafka's Java client writes it.
//   - Zstd: a zstd frame.
type Codec int8

// The codecs, with Kafka's numbers.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

// MaxUncompressedBytes caps what one compressed batch's records may expand
// to when decompressed: a batch that claims more (a "zip bomb", or damage)
// is ErrCorrupt, and decompressing it stops at the cap, never holding more
// memory than that. Writers refuse to compress records past it.
const MaxUncompressedBytes = 64 << 20

// String returns Kafka's compression.type name of c.
func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Valid reports whether c is one of Kafka's codecs.
func (c Codec) Valid() bool { return c >= None && c <= Zstd }

// Levels of the codecs that have them, as Kafka's compression.<codec>.level
// settings take them (KIP-390). Level 0 is the codec's default everywhere.
const (
	MinGzipLevel = 1
	MaxGzipLevel = 9
	MinLZ4Level  = 1
	MaxLZ4Level  = 17
	MinZstdLevel = -131072
	MaxZstdLevel = 22
)

// CheckLevel reports whether level is one c accepts: 0 (the default) for
// every codec; gzip 1 to 9 (and -1, Kafka's spelling of its default); lz4
// 1 to 17; zstd -131072 to 22. Snappy and None have no levels.
func CheckLevel(c Codec, level int) error {
	ok := level == 0
	switch c {
	case Gzip:
		ok = ok || level == -1 || level >= MinGzipLevel && level <= MaxGzipLevel
	case LZ4:
		ok = ok || level >= MinLZ4Level && level <= MaxLZ4Level
	case Zstd:
		ok = ok || level >= MinZstdLevel && level <= MaxZstdLevel
	case None, Snappy:
	default:
		return fmt.Errorf("%w: %v", ErrUnsupported, c)
	}
	if !ok {
		return fmt.Errorf("%w: %v level %d", ErrUnsupported, c, level)
	}
	return nil
}

// AppendCompressed appends src compressed with c at level (0: the
// codec's default) to dst. The level must have passed CheckLevel.
func AppendCompressed(dst []byte, c Codec, level int, src []byte) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		return appendGzip(dst, level, src)
	case Snappy:
		return appendXerial(dst, src), nil
	case LZ4:
		return appendLZ4(dst, level, src)
	case Zstd:
		return zstdEncoder(level).EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("%w: %v", ErrUnsupported, c)
}

// AppendDecompressed appends the decompressed src to dst, failing with
// ErrCorrupt if src is not valid c output or expands to more than limit
// bytes (at most MaxUncompressedBytes), in which case it stops there.
func AppendDecompressed(dst []byte, c Codec, src []byte, limit int) ([]byte, error) {
	limit = min(limit, MaxUncompressedBytes)
	var out []byte
	var err error
	switch c {
	case None:
		if len(src) > limit {
			return dst, expandErr(c, limit)
		}
		return append(dst, src...), nil
	case Gzip:
		out, err = appendGunzip(dst, src, limit)
	case Snappy:
		out, err = appendSnappy(dst, src, limit)
	case LZ4:
		out, err = appendUnLZ4(dst, src, limit)
	case Zstd:
		out, err = appendUnzstd(dst, src, limit)
	default:
		return dst, fmt.Errorf("%w: %v", ErrUnsupported, c)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %v records: %v", ErrCorrupt, c, err)
		}
		return dst, err
	}
	return out, nil
}

func expandErr(c Codec, limit int) error {
	return fmt.Errorf("%w: %v records expand past %d bytes", ErrCorrupt, c, limit)
}

// appendWriter is an io.Writer appending to a slice, for the stream
// encoders.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// readLimited appends what r yields to dst, failing past limit bytes.
func readLimited(dst []byte, r io.Reader, c Codec, limit int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			// Doubling, not append's 1.25 for large slices: a batch that
			// expands to the limit allocates twice that on the way, not five
			// times.
			dst = growTo(dst, max(4<<10, 2*cap(dst)))
		}
		room := min(cap(dst), start+limit+1) // one past the limit, to see it crossed
		n, err := r.Read(dst[len(dst):room])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst, expandErr(c, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// Encoders and decoders are pooled: each costs allocations (zstd's and
// lz4's tables are large) that a steady stream of batches must not repeat.
var (
	gzipWriters [MaxGzipLevel + 1]sync.Pool // by level; 0 is the default
	gzipReaders sync.Pool                   // *gzipReader
	lz4Writers  sync.Pool
	lz4Readers  sync.Pool // *lz4Reader
	writers     sync.Pool // *appendWriter
)

func appendGzip(dst []byte, level int, src []byte) ([]byte, error) {
	if level <= 0 {
		level = 0
	}
	aw, _ := writers.Get().(*appendWriter)
	if aw == nil {
		aw = new(appendWriter)
	}
	aw.b = dst
	zw, _ := gzipWriters[level].Get().(*gzip.Writer)
	if zw == nil {
		l := level
		if l == 0 {
			l = gzip.DefaultCompression
		}
		var err error
		if zw, err = gzip.NewWriterLevel(aw, l); err != nil {
			return dst, err
		}
	} else {
		zw.Reset(aw)
	}
	_, err := zw.Write(src)
	if err == nil {
		err = zw.Close()
	}
	out := aw.b
	aw.b = nil
	writers.Put(aw)
	zw.Reset(io.Discard)
	gzipWriters[level].Put(zw)
	return out, err
}

// gzipReader and lz4Reader pool a decoder with the bytes.Reader it reads
// from: a new bytes.Reader per batch would be an allocation per batch.
type gzipReader struct {
	src bytes.Reader
	zr  *gzip.Reader
}

type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

func appendGunzip(dst, src []byte, limit int) ([]byte, error) {
	r, _ := gzipReaders.Get().(*gzipReader)
	if r == nil {
		r = new(gzipReader)
	}
	defer gzipReaders.Put(r)
	r.src.Reset(src)
	defer r.src.Reset(nil) // the pool must not keep the batch alive
	var err error
	if r.zr == nil {
		r.zr, err = gzip.NewReader(&r.src)
	} else {
		err = r.zr.Reset(&r.src)
	}
	if err != nil {
		return dst, err
	}
	return readLimited(dst, r.zr, Gzip, limit)
}

// lz4Level maps Kafka's lz4 levels onto pierrec's: the default is the fast
// compressor, as Kafka's (its default level 9 keeps the pre-KIP-390 fast
// path); 1-9 are pierrec's levels, and 10-17 its highest.
func lz4Level(level int) lz4.CompressionLevel {
	if level == 0 {
		return lz4.Fast
	}
	return lz4.CompressionLevel(1 << (8 + min(level, 9)))
}

func appendLZ4(dst []byte, level int, src []byte) ([]byte, error) {
	aw, _ := writers.Get().(*appendWriter)
	if aw == nil {
		aw = new(appendWriter)
	}
	aw.b = dst
	zw, _ := lz4Writers.Get().(*lz4.Writer)
	if zw == nil {
		zw = lz4.NewWriter(aw)
	} else {
		zw.Reset(aw)
	}
	err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false),
		lz4.CompressionLevelOption(lz4Level(level)))
	if err == nil {
		_, err = zw.Write(src)
	}
	if err == nil {
		err = zw.Close()
	}
	out := aw.b
	aw.b = nil
	writers.Put(aw)
	zw.Reset(io.Discard)
	lz4Writers.Put(zw)
	return out, err
}

func appendUnLZ4(dst, src []byte, limit int) ([]byte, error) {
	r, _ := lz4Readers.Get().(*lz4Reader)
	if r == nil {
		r = new(lz4Reader)
	}
	defer lz4Readers.Put(r)
	r.src.Reset(src)
	defer r.src.Reset(nil)
	if r.zr == nil {
		r.zr = lz4.NewReader(&r.src)
	} else {
		r.zr.Reset(&r.src)
	}
	return readLimited(dst, r.zr, LZ4, limit)
}

// xerialMagic starts snappy in the xerial framing; its version words
// follow.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	xerialBlockSize  = 32 << 10 // uncompressed bytes per block, as Kafka's Java client writes
)

// appendXerial appends src compressed with snappy in the xerial framing:
// the magic, version 1 and compatible version 1, then blocks of at most
// xerialBlockSize input bytes, each a raw snappy block prefixed by its
// length (4 bytes, big-endian). Each block is encoded straight into dst,
// grown first to its worst case: dst reused from batch to batch stops
// allocating (xerial.Encode encodes a block into a fresh slice whenever
// dst has less room than the worst case).
func appendXerial(dst, src []byte) []byte {
	dst = append(dst, xerialMagic...)
	dst = binary.BigEndian.AppendUint32(dst, 1) // version
	dst = binary.BigEndian.AppendUint32(dst, 1) // compatible version
	for len(src) > 0 {
		n := min(len(src), xerialBlockSize)
		at := len(dst)
		dst = growTo(dst, at+4+s2.MaxEncodedLen(n))
		out := s2.EncodeSnappy(dst[at+4:cap(dst)], src[:n])
		binary.BigEndian.PutUint32(dst[at:at+4], uint32(len(out)))
		dst = dst[:at+4+len(out)]
		src = src[n:]
	}
	return dst
}

func appendSnappy(dst, src []byte, limit int) ([]byte, error) {
	start := len(dst)
	block := func(b []byte) error {
		n, err := s2.DecodedLen(b)
		if err != nil {
			return err
		}
		if len(dst)-start+n > limit {
			return expandErr(Snappy, limit)
		}
		dst = growTo(dst, len(dst)+n)
		if _, err := s2.Decode(dst[len(dst):len(dst)+n], b); err != nil {
			return err
		}
		dst = dst[:len(dst)+n]
		return nil
	}
	if !bytes.HasPrefix(src, xerialMagic) {
		return dst, block(src) // one raw block
	}
	if len(src) < xerialHeaderSize {
		return dst, fmt.Errorf("%w: snappy: xerial header cut short", ErrCorrupt)
	}
	for p := xerialHeaderSize; p < len(src); {
		if len(src)-p < 4 {
			return dst, fmt.Errorf("%w: snappy: xerial block length cut short", ErrCorrupt)
		}
		n := int64(binary.BigEndian.Uint32(src[p:]))
		p += 4
		if n > int64(len(src)-p) {
			return dst, fmt.Errorf("%w: snappy: xerial block of %d bytes cut short", ErrCorrupt, n)
		}
		if err := block(src[p : p+int(n)]); err != nil {
			return dst, err
		}
		p += int(n)
	}
	return dst, nil
}

// growTo returns b with capacity for n bytes, its contents kept.
func growTo(b []byte, n int) []byte {
	if n <= cap(b) {
		return b
	}
	grown := make([]byte, len(b), max(n, 2*cap(b)))
	copy(grown, b)
	return grown
}

// zstd's encoders and decoder are safe for concurrent EncodeAll and
// DecodeAll, each keeping its own pool of states: one encoder per level in
// use, one decoder.
var (
	zstdEncoders sync.Map // zstd.EncoderLevel -> *zstd.Encoder
	zstdDecoder  = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(MaxUncompressedBytes+1),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err) // the options are constant
		}
		return d
	})
)

func zstdEncoder(level int) *zstd.Encoder {
	l := zstd.SpeedDefault
	if level != 0 {
		l = zstd.EncoderLevelFromZstd(level)
	}
	if e, ok := zstdEncoders.Load(l); ok {
		return e.(*zstd.Encoder)
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // the options are constant
	}
	actual, _ := zstdEncoders.LoadOrStore(l, e)
	return actual.(*zstd.Encoder)
}

func appendUnzstd(dst, src []byte, limit int) ([]byte, error) {
	// With the cap limit on, DecodeAll writes at most cap-len bytes: give
	// it room for one past the limit, to see the limit crossed. A frame
	// that states its size (as EncodeAll's do) gets that room at once, or
	// is refused before anything is allocated if it says too much.
	want := max(4<<10, 4*len(src))
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS && !h.Skippable {
		if h.FrameContentSize > uint64(limit) {
			return dst, expandErr(Zstd, limit)
		}
		want = max(int(h.FrameContentSize), 64) // never 0: the loop below doubles it
	}
	dst = growTo(dst, len(dst)+min(limit+1, want))
	start := len(dst)
	for {
		out, err := zstdDecoder().DecodeAll(src, dst)
		if err == nil {
			if len(out)-start > limit {
				return dst, expandErr(Zstd, limit)
			}
			return out, nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return dst, err
		}
		if cap(dst)-start > limit {
			return dst, expandErr(Zstd, limit)
		}
		dst = growTo(dst, start+min(limit+1, 2*(cap(dst)-start)))
	}
}
