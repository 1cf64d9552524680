package stream

import (
	"fmt"
	"strings"

	"github.com/embedstream/stream/batch"
)

// Codec is a batch compression codec, Kafka's compression.type. Records
// are compressed a batch at a time, in Kafka's own framings, so a Kafka
// client reads what we compress and we read what it does; reads decompress
// transparently, whatever wrote the batch.
type Codec int8

// The codecs. The zero value, CodecDefault, is each setting's default: for
// a topic (TopicConfig.Compression), keep the codec each batch was written
// with (Kafka's compression.type=producer); for a writer
// (ProducerOptions.Compression), no compression (Kafka's producer default).
// The catalog stores topics' codecs by these numbers: they never change.
const (
	CodecDefault Codec = iota
	CodecNone
	CodecGzip
	CodecSnappy
	CodecLZ4
	CodecZstd
)

// codecNames are Kafka's compression.type values, by Codec.
var codecNames = [...]string{"producer", "none", "gzip", "snappy", "lz4", "zstd"}

// String returns Kafka's compression.type name of c: "producer" for
// CodecDefault.
func (c Codec) String() string {
	if c >= 0 && int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("Codec(%d)", int8(c))
}

// ParseCodec returns the Codec of one of Kafka's compression.type values:
// producer, none, gzip, snappy, lz4 or zstd (any case), and uncompressed,
// the topic setting's name for none. Anything else is ErrInvalidConfig.
func ParseCodec(s string) (Codec, error) {
	if strings.EqualFold(s, "uncompressed") {
		return CodecNone, nil
	}
	for c, name := range codecNames {
		if strings.EqualFold(s, name) {
			return Codec(c), nil
		}
	}
	return 0, fmt.Errorf("%w: compression type %q (want one of %s)", ErrInvalidConfig, s, strings.Join(codecNames[:], ", "))
}

// wire is c as batch attributes number it; CodecDefault writes none.
func (c Codec) wire() batch.Codec {
	if c <= CodecNone {
		return batch.None
	}
	return batch.Codec(c - 1)
}

// codecOf is the Codec of a batch codec.
func codecOf(c batch.Codec) Codec { return Codec(c + 1) }

// Compression is a codec and its level: Kafka's compression.type with the
// compression.gzip.level, compression.lz4.level and compression.zstd.level
// settings (KIP-390). The zero value is the setting's default (see Codec).
// A codec or level out of range is ErrInvalidConfig where a Compression is
// given (CreateTopic, AlterTopic, NewProducer), as is a level with
// CodecDefault or CodecNone.
type Compression struct {
	// Codec is the codec; CodecDefault is the setting's default (see
	// Codec).
	Codec Codec
	// Level is the codec's level, 0 for its default: gzip 1 (fastest) to 9
	// (smallest), also -1 for the default; lz4 1 to 17 (the default is
	// LZ4's fast compressor, as Kafka's; 9 and above are all its highest
	// level here); zstd -131072 to 22 (default 3; the library maps levels
	// onto four speeds). Snappy has none.
	Level int
}

// String returns the compression as Kafka's settings spell it: the codec,
// and a level if one is set ("zstd", "gzip level 9").
func (c Compression) String() string {
	if c.Level == 0 {
		return c.Codec.String()
	}
	return fmt.Sprintf("%v level %d", c.Codec, c.Level)
}

// validate checks the codec and level (ErrInvalidConfig).
func (c Compression) validate() error {
	if c.Codec < CodecDefault || c.Codec > CodecZstd {
		return fmt.Errorf("%w: unknown compression codec %d", ErrInvalidConfig, int8(c.Codec))
	}
	if c.Level != 0 && c.Codec <= CodecNone {
		return fmt.Errorf("%w: compression level %d with codec %v, which has no levels", ErrInvalidConfig, c.Level, c.Codec)
	}
	if err := batch.CheckLevel(c.Codec.wire(), c.Level); err != nil {
		return fmt.Errorf("%w: %v level %d (%s)", ErrInvalidConfig, c.Codec, c.Level, levelRange(c.Codec))
	}
	return nil
}

// levelRange describes the levels c takes, for errors.
func levelRange(c Codec) string {
	switch c {
	case CodecGzip:
		return fmt.Sprintf("want %d to %d, or -1 or 0 for the default", batch.MinGzipLevel, batch.MaxGzipLevel)
	case CodecLZ4:
		return fmt.Sprintf("want %d to %d, or 0 for the default", batch.MinLZ4Level, batch.MaxLZ4Level)
	case CodecZstd:
		return fmt.Sprintf("want %d to %d, or 0 for the default", batch.MinZstdLevel, batch.MaxZstdLevel)
	}
	return "it has no levels: want 0"
}
