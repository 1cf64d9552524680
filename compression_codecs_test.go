package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// What each codec stores, and that reads give back what was written.

// A topic's codec is what synchronous Publish compresses with: one record
// or many, over several partitions. The records read back identical,
// through a Reader and through a Consumer, and Publish fills in their
// positions as stored.
func TestCompressionTopicCodecs(t *testing.T) {
	settings := []Compression{
		{Codec: CodecGzip}, {Codec: CodecGzip, Level: 1}, {Codec: CodecSnappy},
		{Codec: CodecLZ4}, {Codec: CodecLZ4, Level: 12}, {Codec: CodecZstd}, {Codec: CodecZstd, Level: 19},
	}
	for _, cc := range settings {
		t.Run(cc.String(), func(t *testing.T) {
			b := openCompressionBroker(t, "")
			const parts = 3
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts, Compression: cc}))
			recs := testRecords("t", parts, 90, 2)
			// One call of many records over every partition, then calls of
			// one record (publishOne's path), then a call of several.
			require.NoError(t, b.Publish(t.Context(), recs[:60]...))
			for _, r := range recs[60:75] {
				require.NoError(t, b.Publish(t.Context(), r))
			}
			require.NoError(t, b.Publish(t.Context(), recs[75:]...))
			for i, r := range recs {
				require.Equal(t, int32(i%parts), r.Partition)
			}
			want := storedByPartition(storedRecsOf(recs))
			consumed := consumeBack(t, b, "t", len(recs))
			for p := range int32(parts) {
				stored := diskBatches(t, b, "t", p)
				require.Len(t, stored, 1+5+1, "partition %d: a batch per call", p)
				for _, bt := range stored {
					require.Equal(t, cc.Codec.wire(), bt.Codec(), "partition %d", p)
				}
				require.Equal(t, int32(20), stored[0].NumRecords())
				require.Less(t, len(stored[0]), 20*150, "partition %d: the first batch is compressed", p)
				require.Equal(t, want[p], readBack(t, b, "t", p), "partition %d by Reader", p)
				require.Equal(t, want[p], consumed[p], "partition %d by Consumer", p)
			}
		})
	}
}

// The codec a batch is stored with, from the producer's setting and the
// topic's, as in Kafka: a topic of CodecDefault ("producer") keeps the
// producer's, any other recompresses to its own, CodecNone stores
// uncompressed.
func TestCompressionProducerAndTopicCodecs(t *testing.T) {
	for _, tc := range []struct {
		topic, producer Codec
		want            batch.Codec
	}{
		{CodecDefault, CodecDefault, batch.None},
		{CodecDefault, CodecNone, batch.None},
		{CodecDefault, CodecGzip, batch.Gzip},
		{CodecDefault, CodecSnappy, batch.Snappy},
		{CodecDefault, CodecLZ4, batch.LZ4},
		{CodecDefault, CodecZstd, batch.Zstd},
		{CodecZstd, CodecGzip, batch.Zstd},
		{CodecLZ4, CodecSnappy, batch.LZ4},
		{CodecSnappy, CodecZstd, batch.Snappy},
		{CodecGzip, CodecDefault, batch.Gzip},
		{CodecGzip, CodecGzip, batch.Gzip},
		{CodecNone, CodecGzip, batch.None},
		{CodecNone, CodecZstd, batch.None},
	} {
		t.Run(fmt.Sprintf("topic %v producer %v", tc.topic, tc.producer), func(t *testing.T) {
			b := openCompressionBroker(t, "")
			const parts = 2
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts, Compression: Compression{Codec: tc.topic}}))
			p := mustProducer(b, &ProducerOptions{Compression: Compression{Codec: tc.producer}})
			defer p.Close()
			recs := testRecords("t", parts, 80, 3)
			mustProduce(t, p, recs[:40])
			mustProduce(t, p, recs[40:])
			want := storedByPartition(storedRecsOf(recs))
			consumed := consumeBack(t, b, "t", len(recs))
			for part := range int32(parts) {
				codecs := storedCodecs(t, b, "t", part)
				require.NotEmpty(t, codecs)
				for _, c := range codecs {
					require.Equal(t, tc.want, c, "partition %d: %v", part, codecs)
				}
				require.Equal(t, want[part], readBack(t, b, "t", part), "partition %d by Reader", part)
				require.Equal(t, want[part], consumed[part], "partition %d by Consumer", part)
			}
		})
	}
}

// Where the topic's codec is the producer's, the producer's level stands,
// as Kafka's broker keeps a batch of its topic's codec as it came; another
// codec gets the topic's level.
func TestCompressionLevels(t *testing.T) {
	b := openCompressionBroker(t, "")
	value := []byte(fmt.Sprint(make([]int, 4000))) // compressible, with room between levels
	sizes := map[string]int{}
	for _, tc := range []struct {
		name            string
		topic, producer Compression
	}{
		{"fast", Compression{}, Compression{Codec: CodecGzip, Level: 1}},
		{"best", Compression{}, Compression{Codec: CodecGzip, Level: 9}},
		{"topic-fast-producer-best", Compression{Codec: CodecGzip, Level: 1}, Compression{Codec: CodecGzip, Level: 9}},
		{"topic-best-producer-zstd", Compression{Codec: CodecGzip, Level: 9}, Compression{Codec: CodecZstd}},
	} {
		require.NoError(t, b.CreateTopic(tc.name, TopicConfig{Compression: tc.topic}))
		// One batch each, written at Flush: the sizes compare the levels.
		p := mustProducer(b, &ProducerOptions{Compression: tc.producer, Linger: time.Hour})
		recs := make([]*Record, 50)
		for i := range recs {
			recs[i] = &Record{Topic: tc.name, Value: fmt.Appendf(nil, "%d %s", i, value)}
		}
		mustProduce(t, p, recs)
		require.NoError(t, p.Close())
		stored := diskBatches(t, b, tc.name, 0)
		require.Len(t, stored, 1)
		for _, bt := range stored {
			require.Equal(t, batch.Gzip, bt.Codec(), tc.name)
			sizes[tc.name] += len(bt)
		}
		require.Equal(t, storedRecsOf(recs), readBack(t, b, tc.name, 0))
	}
	require.Less(t, sizes["best"], sizes["fast"])
	require.Equal(t, sizes["best"], sizes["topic-fast-producer-best"], "the producer's level")
	require.Equal(t, sizes["best"], sizes["topic-best-producer-zstd"], "the topic's level")
}

// Under LogAppendTime a compressed batch is stamped as an uncompressed one:
// its MaxTimestamp is the append time, its CRC (over the stored, compressed
// bytes) recomputed, and every record reads back with the append time,
// which Publish and the Producer also report.
func TestCompressionLogAppendTime(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := openCompressionBroker(t, "")
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, LogAppendTime: true, Compression: Compression{Codec: c}}))
			recs := testRecords("t", 2, 40, 4) // half with old timestamps of their own
			require.NoError(t, b.Publish(t.Context(), recs[:20]...))
			require.NoError(t, b.Publish(t.Context(), recs[20]))
			p := mustProducer(b, &ProducerOptions{Compression: Compression{Codec: CodecGzip}})
			mustProduce(t, p, recs[21:])
			require.NoError(t, p.Close())
			for i, r := range recs {
				require.Equal(t, compressionNow, r.Timestamp, "record %d as reported", i)
			}
			read := 0
			for part := range int32(2) {
				stored := diskBatches(t, b, "t", part) // each passes batch.Parse: the CRC holds
				for _, bt := range stored {
					require.Equal(t, c.wire(), bt.Codec())
					require.NotZero(t, bt.Attributes()&batch.AttrLogAppendTime)
					require.Equal(t, compressionNow.UnixMilli(), bt.MaxTimestamp())
					require.Equal(t, bt.CRC(), bt.ComputeCRC())
				}
				got := readBack(t, b, "t", part)
				read += len(got)
				for _, r := range got {
					require.Equal(t, compressionNow.UnixMilli(), r.TS, "offset %d as read", r.Offset)
				}
			}
			require.Equal(t, len(recs), read)
		})
	}
}
