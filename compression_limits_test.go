package stream

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// MaxRecordBytes as stored: a record is judged by what it takes compressed
// alone, never by what it is batched with, and a refused call writes
// nothing.

func TestCompressionMaxRecordBytes(t *testing.T) {
	const limit = 1 << 20
	compressible := bytes.Repeat([]byte("embedstream "), (3<<20)/12) // 3 MiB
	random := incompressible(3<<20, 5)
	edge := incompressible(limit-100, 6) // fits uncompressed; a little over once "compressed"

	b := openCompressionBroker(t, "")
	require.NoError(t, b.CreateTopic("z", TopicConfig{Partitions: 2, MaxRecordBytes: limit, Compression: Compression{Codec: CodecZstd}}))
	require.NoError(t, b.CreateTopic("plain", TopicConfig{MaxRecordBytes: limit}))

	// One record (publishOne's path).
	big := &Record{Topic: "z", Value: compressible}
	require.NoError(t, b.Publish(t.Context(), big))
	stored := diskBatches(t, b, "z", 0)
	require.Len(t, stored, 1)
	require.Equal(t, batch.Zstd, stored[0].Codec())
	require.Less(t, len(stored[0]), limit, "stored compressed, within the limit")

	err := b.Publish(t.Context(), &Record{Topic: "z", Value: random})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.ErrorContains(t, err, "compressed with zstd")
	require.Equal(t, []int64{1, 0}, endOffsets(t, b, "z"), "nothing written")
	require.Len(t, diskBatches(t, b, "z", 0), 1)

	// Within the limit uncompressed, it is never refused for what its codec
	// adds.
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "z", Value: edge}))

	// The same records uncompressed: over the limit either way.
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "plain", Value: compressible}), ErrRecordTooLarge)

	// Many records, over partitions: one over the limit as stored fails the
	// call whole, whichever partition it is for and whatever compressible
	// records share its batch.
	before, batchesBefore := endOffsets(t, b, "z"), len(diskBatches(t, b, "z", 1))
	small := func(p int32) *Record { return &Record{Topic: "z", Partition: p, Value: []byte("small")} }
	err = b.Publish(t.Context(), small(0), small(1), &Record{Topic: "z", Partition: 1, Value: compressible},
		small(1), &Record{Topic: "z", Partition: 1, Value: random}, small(0))
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.ErrorContains(t, err, "record 4:")
	require.Equal(t, before, endOffsets(t, b, "z"), "nothing written")
	require.Len(t, diskBatches(t, b, "z", 1), batchesBefore)

	// Without the incompressible one the call passes: compressible records
	// over the limit share a batch with small ones.
	recs := []*Record{small(0), small(1), {Topic: "z", Partition: 1, Value: compressible}, small(1),
		{Topic: "z", Partition: 1, Value: compressible}, small(0)}
	require.NoError(t, b.Publish(t.Context(), recs...))
	require.Equal(t, []int64{before[0] + 2, before[1] + 4}, endOffsets(t, b, "z"))
	last := diskBatches(t, b, "z", 1)
	require.Equal(t, int32(4), last[len(last)-1].NumRecords())
	require.Equal(t, batch.Zstd, last[len(last)-1].Codec())
	got := readBack(t, b, "z", 1)
	require.Equal(t, storedRecsOf(recs[1:5]), got[len(got)-4:])
}

// The Producer judges a record as Publish does: whatever else it batches,
// an incompressible record over the limit fails (in its callback), a
// compressible one is written, and the records around them are too.
func TestCompressionProducerMaxRecordBytes(t *testing.T) {
	const limit = 1 << 20
	compressible := bytes.Repeat([]byte("embedstream "), (3<<20)/12)
	random := incompressible(3<<20, 7)
	for _, tc := range []struct {
		name            string
		topic, producer Codec
	}{
		{"topic codec", CodecZstd, CodecDefault},
		{"producer codec", CodecDefault, CodecLZ4},
		{"both", CodecGzip, CodecSnappy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openCompressionBroker(t, "")
			require.NoError(t, b.CreateTopic("t", TopicConfig{MaxRecordBytes: limit, Compression: Compression{Codec: tc.topic}}))
			// Small records around the big ones: with a long linger they
			// would share its batch, if it had no batch of its own.
			p := mustProducer(b, &ProducerOptions{Compression: Compression{Codec: tc.producer}, BatchBytes: 16 << 20, MaxBufferedBytes: 64 << 20})
			defer p.Close()
			small := func() *Record { return &Record{Topic: "t", Value: []byte("small")} }
			recs := []*Record{small(), {Topic: "t", Value: compressible}, small(), {Topic: "t", Value: random}, small()}
			errs := produce(t, p, recs)
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			require.NoError(t, errs[2])
			require.ErrorIs(t, errs[3], ErrRecordTooLarge)
			require.NoError(t, errs[4])
			want := storedRecsOf([]*Record{recs[0], recs[1], recs[2], recs[4]})
			require.Equal(t, want, readBack(t, b, "t", 0))
			for _, bt := range diskBatches(t, b, "t", 0) {
				require.NotEqual(t, batch.None, bt.Codec())
				if bt.NumRecords() > 1 {
					require.Less(t, len(bt), limit)
				}
			}
		})
	}
	// A topic that stores uncompressed judges records uncompressed, even
	// from a compressing producer.
	b := openCompressionBroker(t, "")
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxRecordBytes: limit, Compression: Compression{Codec: CodecNone}}))
	p := mustProducer(b, &ProducerOptions{Compression: Compression{Codec: CodecZstd}})
	defer p.Close()
	errs := produce(t, p, []*Record{{Topic: "t", Value: compressible}})
	require.ErrorIs(t, errs[0], ErrRecordTooLarge)
}

// What a compressed batch may expand to, batch.MaxUncompressedBytes, bounds
// a compressed batch's records together, and so each one, whatever
// MaxRecordBytes says.
func TestCompressionMaxUncompressedBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates over 128 MiB")
	}
	b := openCompressionBroker(t, "")
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, MaxRecordBytes: 100 << 20, Compression: Compression{Codec: CodecLZ4}}))
	half := make([]byte, batch.MaxUncompressedBytes/2) // zeros: compresses to nearly nothing
	err := b.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, batch.MaxUncompressedBytes)})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.ErrorContains(t, err, "batch.MaxUncompressedBytes")
	err = b.Publish(t.Context(), &Record{Topic: "t", Partition: 1, Value: []byte("x")},
		&Record{Topic: "t", Value: half}, &Record{Topic: "t", Value: half})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.Equal(t, []int64{0, 0}, endOffsets(t, b, "t"), "nothing written")
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: half}, &Record{Topic: "t", Partition: 1, Value: half}))
	require.Equal(t, []int64{1, 1}, endOffsets(t, b, "t"))
}

// TestCompressionProducerCodecChangedUnderIt: a batch the Producer took
// uncompressed that the topic's new codec cannot hold (past
// batch.MaxUncompressedBytes) fails its callbacks with ErrRecordTooLarge;
// the writer goroutine goes on (it once panicked stamping a batch that was
// never made).
func TestCompressionProducerCodecChangedUnderIt(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates over 128 MiB")
	}
	b := openCompressionBroker(t, "")
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxRecordBytes: 100 << 20}))
	p, err := b.NewProducer(&ProducerOptions{Linger: time.Hour, BatchBytes: 128 << 20, MaxBufferedBytes: 256 << 20})
	require.NoError(t, err)
	defer p.Close()
	errs := make(chan error, 2)
	p.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 70<<20)}, func(_ *Record, err error) { errs <- err })
	require.NoError(t, b.AlterTopic("t", func(c *TopicConfig) { c.Compression = Compression{Codec: CodecZstd} }))
	require.NoError(t, p.Flush(t.Context()))
	require.ErrorIs(t, <-errs, ErrRecordTooLarge)

	p.Publish(t.Context(), &Record{Topic: "t", Value: []byte("small")}, func(_ *Record, err error) { errs <- err })
	require.NoError(t, p.Flush(t.Context()))
	require.NoError(t, <-errs, "the writer goes on")
	require.Equal(t, []int64{1}, endOffsets(t, b, "t"))
}
