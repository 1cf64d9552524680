package stream

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// Compression settings: names, validation, persistence.

func TestCompressionParseCodecAndString(t *testing.T) {
	for c, name := range map[Codec]string{CodecDefault: "producer", CodecNone: "none", CodecGzip: "gzip",
		CodecSnappy: "snappy", CodecLZ4: "lz4", CodecZstd: "zstd"} {
		require.Equal(t, name, c.String())
		got, err := ParseCodec(name)
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
	got, err := ParseCodec("ZStd")
	require.NoError(t, err)
	require.Equal(t, CodecZstd, got, "any case")
	got, err = ParseCodec("uncompressed")
	require.NoError(t, err)
	require.Equal(t, CodecNone, got, "the topic setting's name for none")
	for _, bad := range []string{"", "brotli", " gzip", "gzip9"} {
		_, err := ParseCodec(bad)
		require.ErrorIs(t, err, ErrInvalidConfig, "%q", bad)
		require.ErrorContains(t, err, "producer, none, gzip, snappy, lz4, zstd", "the error lists the names")
	}
	require.Equal(t, "Codec(9)", Codec(9).String())
	require.Equal(t, "Codec(-1)", Codec(-1).String())
	require.Equal(t, "producer", Compression{}.String())
	require.Equal(t, "zstd", Compression{Codec: CodecZstd}.String())
	require.Equal(t, "gzip level 9", Compression{Codec: CodecGzip, Level: 9}.String())
	// The Codec numbers are stored in the catalog: pinned.
	require.Equal(t, []Codec{0, 1, 2, 3, 4, 5}, []Codec{CodecDefault, CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd})
}

// invalidCompressions are refused wherever a Compression is given.
var invalidCompressions = []Compression{
	{Codec: Codec(6)},
	{Codec: Codec(-1)},
	{Codec: Codec(100), Level: 1},
	{Codec: CodecDefault, Level: 1},
	{Codec: CodecNone, Level: 3},
	{Codec: CodecNone, Level: -1},
	{Codec: CodecSnappy, Level: 1},
	{Codec: CodecGzip, Level: 10},
	{Codec: CodecGzip, Level: -2},
	{Codec: CodecLZ4, Level: 18},
	{Codec: CodecLZ4, Level: -1},
	{Codec: CodecZstd, Level: 23},
	{Codec: CodecZstd, Level: batch.MinZstdLevel - 1},
}

// validCompressions are the edges of the ranges.
var validCompressions = []Compression{
	{}, {Codec: CodecNone}, {Codec: CodecSnappy},
	{Codec: CodecGzip, Level: -1}, {Codec: CodecGzip, Level: 1}, {Codec: CodecGzip, Level: 9},
	{Codec: CodecLZ4, Level: 1}, {Codec: CodecLZ4, Level: 17},
	{Codec: CodecZstd, Level: batch.MinZstdLevel}, {Codec: CodecZstd, Level: -1}, {Codec: CodecZstd, Level: 22},
}

func TestCompressionValidation(t *testing.T) {
	b := openCompressionBroker(t, "")
	require.NoError(t, b.CreateTopic("keep", TopicConfig{Compression: Compression{Codec: CodecLZ4}}))
	for i, cc := range invalidCompressions {
		name := fmt.Sprintf("bad%d", i)
		err := b.CreateTopic(name, TopicConfig{Compression: cc})
		require.ErrorIs(t, err, ErrInvalidConfig, "CreateTopic %+v", cc)
		require.ErrorContains(t, err, "topic compression")
		require.NotContains(t, b.Topics(), name, "nothing created")

		err = b.AlterTopic("keep", func(c *TopicConfig) { c.Compression = cc })
		require.ErrorIs(t, err, ErrInvalidConfig, "AlterTopic %+v", cc)
		require.Equal(t, Compression{Codec: CodecLZ4}, describe(t, b, "keep").Config.Compression, "nothing changed")

		p, err := b.NewProducer(&ProducerOptions{Compression: cc})
		require.ErrorIs(t, err, ErrInvalidConfig, "NewProducer %+v", cc)
		require.ErrorContains(t, err, "producer compression")
		require.Nil(t, p)
	}
	// The messages say what is wrong.
	err := b.CreateTopic("x", TopicConfig{Compression: Compression{Codec: CodecGzip, Level: 10}})
	require.ErrorContains(t, err, "gzip level 10 (want 1 to 9, or -1 or 0 for the default)")
	err = b.CreateTopic("x", TopicConfig{Compression: Compression{Codec: CodecNone, Level: 3}})
	require.ErrorContains(t, err, "level 3 with codec none, which has no levels")
	err = b.CreateTopic("x", TopicConfig{Compression: Compression{Codec: Codec(7)}})
	require.ErrorContains(t, err, "unknown compression codec 7")

	for i, cc := range validCompressions {
		name := fmt.Sprintf("good%d", i)
		require.NoError(t, b.CreateTopic(name, TopicConfig{Compression: cc}), "%+v", cc)
		require.Equal(t, cc, describe(t, b, name).Config.Compression)
		alter(t, b, "keep", func(c *TopicConfig) { c.Compression = cc })
		require.Equal(t, cc, describe(t, b, "keep").Config.Compression)
		p, err := b.NewProducer(&ProducerOptions{Compression: cc})
		require.NoError(t, err, "%+v", cc)
		require.NoError(t, p.Close())
	}
}

// A topic's compression is stored with it: it survives Close and Open, and
// AlterTopic changes it for the batches written from then on, stored too.
// Batches written before keep their codec, and a partition holding
// several codecs reads back whole, through a Reader and a Consumer.
func TestCompressionPersistsAndAlters(t *testing.T) {
	dir := t.TempDir()
	b := openCompressionBroker(t, dir)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Compression: Compression{Codec: CodecGzip, Level: 9}}))
	recs := testRecords("t", 1, 24, 1)
	publish := func(b *Broker, from, to int) {
		t.Helper()
		require.NoError(t, b.Publish(t.Context(), recs[from:to]...))
	}
	publish(b, 0, 4)
	require.NoError(t, b.Close())

	b = openCompressionBroker(t, dir)
	require.Equal(t, Compression{Codec: CodecGzip, Level: 9}, describe(t, b, "t").Config.Compression, "stored in the catalog")
	publish(b, 4, 8)
	alter(t, b, "t", func(c *TopicConfig) { c.Compression = Compression{Codec: CodecLZ4} })
	publish(b, 8, 12)
	alter(t, b, "t", func(c *TopicConfig) { c.Compression = Compression{Codec: CodecNone} })
	publish(b, 12, 16)
	alter(t, b, "t", func(c *TopicConfig) { c.Compression = Compression{} })
	publish(b, 16, 20) // Publish itself does not compress
	p := mustProducer(b, &ProducerOptions{Compression: Compression{Codec: CodecSnappy}})
	mustProduce(t, p, recs[20:24])
	require.NoError(t, p.Close())
	alter(t, b, "t", func(c *TopicConfig) { c.Compression = Compression{Codec: CodecZstd, Level: 19} })
	require.NoError(t, b.Close())

	b = openCompressionBroker(t, dir)
	require.Equal(t, Compression{Codec: CodecZstd, Level: 19}, describe(t, b, "t").Config.Compression, "AlterTopic's change is stored")
	codecs := storedCodecs(t, b, "t", 0)
	require.Equal(t, []batch.Codec{batch.Gzip, batch.Gzip, batch.LZ4, batch.None, batch.None}, codecs[:5])
	require.NotContains(t, codecs[5:], batch.Gzip)
	require.Contains(t, codecs[5:], batch.Snappy, "the producer's batches under CodecDefault")
	want := storedRecsOf(recs)
	require.Equal(t, want, readBack(t, b, "t", 0))
	require.Equal(t, want, consumeBack(t, b, "t", len(recs))[0])
}
