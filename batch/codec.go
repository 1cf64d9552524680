package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
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
// is ErrCorrupt, and decompressing it stops at the cap: its output never
// holds more than that, and decompressing allocates about three times it
// at most on the way (buffers outgrown included, and for a zstd frame of
// no stated size its window, up to the cap too). Writers refuse to
// compress records past it.
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
		// Room for the worst case up front: xerial.Encode compresses a
		// block that may not fit into a scratch block of its own, an
		// allocation per call even when dst, reused, has grown enough.
		blocks := (len(src) + xerialBlockSize - 1) / xerialBlockSize
		dst = slices.Grow(dst, xerialHeaderSize+blocks*(4+s2.MaxEncodedLen(xerialBlockSize)))
		// xerial.Encode takes a non-empty dst for earlier output of its
		// own: compress into dst's tail instead (appending it then copies
		// it onto itself).
		return append(dst, xerial.Encode(dst[len(dst):], src)...), nil
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
	limit = max(0, min(limit, MaxUncompressedBytes))
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

// readLimited appends what r, a decompressor of src, yields to dst,
// failing past limit bytes. It grows dst by doubling up to one byte past
// the limit (to see the limit crossed), so a stream that expands without
// end costs about twice the limit in allocations, not the five times that
// append's gentler growth of large slices adds up to.
func readLimited(dst []byte, r io.Reader, c Codec, src []byte, limit int) ([]byte, error) {
	start := len(dst)
	ceil := start + limit + 1
	dst = growTo(dst, start+min(limit+1, max(4<<10, 4*len(src))), ceil)
	for empty := 0; ; {
		if len(dst) == cap(dst) {
			dst = growTo(dst, len(dst)+1, ceil)
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), ceil)])
		dst = dst[:len(dst)+n]
		switch {
		case len(dst)-start > limit:
			return dst, expandErr(c, limit)
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return dst, err
		case n > 0:
			empty = 0
		default:
			if empty++; empty == 100 { // as bufio: a reader stuck, not a slow one
				return dst, io.ErrNoProgress
			}
		}
	}
}

// Encoders and decoders are pooled: each costs allocations (zstd's and
// lz4's tables are large) that a steady stream of batches must not repeat.
var (
	gzipWriters [MaxGzipLevel + 1]sync.Pool // by level; 0 is the default
	gzipReaders sync.Pool                   // *gzip.Reader
	lz4Writers  sync.Pool                   // *lz4.Writer
	lz4Readers  sync.Pool                   // *lz4.Reader
	zstdReaders sync.Pool                   // *zstd.Decoder, streaming, for frames of unknown size
	byteReaders sync.Pool                   // *bytes.Reader
	writers     sync.Pool                   // *appendWriter
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

func appendGunzip(dst, src []byte, limit int) ([]byte, error) {
	br := byteReader(src)
	defer putByteReader(br)
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(br)
	} else {
		err = zr.Reset(br)
	}
	if err != nil {
		return dst, err
	}
	defer gzipReaders.Put(zr)
	return readLimited(dst, zr, Gzip, src, limit)
}

// byteReader returns a pooled reader of src, to put back with
// putByteReader once read: one made per batch would be the decoding's one
// allocation.
func byteReader(src []byte) *bytes.Reader {
	br, _ := byteReaders.Get().(*bytes.Reader)
	if br == nil {
		br = new(bytes.Reader)
	}
	br.Reset(src)
	return br
}

// putByteReader pools br without its bytes: the pool must not keep a
// batch alive.
func putByteReader(br *bytes.Reader) {
	br.Reset(nil)
	byteReaders.Put(br)
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
	br := byteReader(src)
	defer putByteReader(br)
	zr, _ := lz4Readers.Get().(*lz4.Reader)
	if zr == nil {
		zr = lz4.NewReader(br)
	} else {
		zr.Reset(br)
	}
	defer lz4Readers.Put(zr)
	return readLimited(dst, zr, LZ4, src, limit)
}

// xerialMagic starts snappy in the xerial framing; its version words
// follow.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	xerialBlockSize  = 32 << 10 // what the Java client and xerial.Encode write
)

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
		dst = growTo(dst, len(dst)+n, start+limit)
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

// growTo returns b with capacity for n bytes, its contents kept: doubled,
// but to no more than ceil (at least n), where decompressing must stop.
func growTo(b []byte, n, ceil int) []byte {
	if n <= cap(b) {
		return b
	}
	grown := make([]byte, len(b), min(max(n, 2*cap(b)), max(n, ceil)))
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

// zstdWindow is the window zstd compresses with (see zstdEncoder).
const zstdWindow = 1 << 20

func zstdEncoder(level int) *zstd.Encoder {
	l := zstd.SpeedDefault
	if level != 0 {
		l = zstd.EncoderLevelFromZstd(level)
	}
	if e, ok := zstdEncoders.Load(l); ok {
		return e.(*zstd.Encoder)
	}
	// The encoder keeps GOMAXPROCS states and hands them out in turn, so
	// even one goroutine soon holds all of them: a 1 MiB window (the
	// library's default at level 3 reserves 16 MiB a state) bounds that to
	// a few MiB each, and costs nothing on batches of up to 1 MiB, the
	// Producer's (BatchBytes) included.
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(err) // the options are constant
	}
	actual, _ := zstdEncoders.LoadOrStore(l, e)
	return actual.(*zstd.Encoder)
}

func appendUnzstd(dst, src []byte, limit int) ([]byte, error) {
	var h zstd.Header
	if h.Decode(src) != nil || !h.HasFCS {
		// No size up front (Kafka's Java client streams its frames): decode
		// as a stream. DecodeAll would need retries into ever larger
		// buffers, each decoding from the start and, past its buffer,
		// growing its output by append before it notices: three to five
		// times the limit allocated for a stream that expands without end.
		return appendUnzstdStream(dst, src, limit)
	}
	// The frame states its size: decode it in one call, into room for it
	// (with the cap limit on, DecodeAll writes no more than cap-len bytes),
	// or refuse it at once. The +1 leaves room to see a frame that follows
	// cross the limit.
	if h.FrameContentSize > uint64(limit) {
		return dst, expandErr(Zstd, limit)
	}
	start := len(dst)
	dst = growTo(dst, start+int(h.FrameContentSize)+1, start+limit+1)
	out, err := zstdDecoder().DecodeAll(src, dst)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded):
		// More frames follow the first (valid zstd, if rare): their sizes
		// are not known up front, so decode the whole as a stream.
		return appendUnzstdStream(dst[:start], src, limit)
	case err != nil:
		return dst, err
	case len(out)-start > limit:
		return dst, expandErr(Zstd, limit)
	}
	return out, nil
}

// appendUnzstdStream decodes src, zstd frames of sizes not known up front,
// as a stream, bounded as readLimited bounds it.
func appendUnzstdStream(dst, src []byte, limit int) ([]byte, error) {
	zr, _ := zstdReaders.Get().(*zstd.Decoder)
	if zr == nil {
		var err error
		if zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxUncompressedBytes+1)); err != nil {
			panic(err) // the options are constant
		}
	}
	defer zstdReaders.Put(zr)
	br := byteReader(src)
	defer putByteReader(br)
	if err := zr.Reset(br); err != nil {
		return dst, err
	}
	defer zr.Reset(nil) // drop src
	return readLimited(dst, zr, Zstd, src, limit)
}
