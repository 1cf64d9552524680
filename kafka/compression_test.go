package kafka_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/kafka"
)

// topicSetting is a topic's described value of key, and whether the topic
// itself sets it.
func topicSetting(t *testing.T, c *kafka.Client, topic, key string) (string, bool) {
	t.Helper()
	rcs, err := c.Admin().DescribeTopicConfigs(testCtx(t), topic)
	require.NoError(t, err)
	rc, err := rcs.On(topic, nil)
	require.NoError(t, err)
	for _, cfg := range rc.Configs {
		if cfg.Key == key {
			return cfg.MaybeValue(), cfg.Source == kmsg.ConfigSourceDynamicTopicConfig
		}
	}
	return "", false
}

// currentConfig reads a topic's config as AlterTopic sees it.
func currentConfig(t *testing.T, c *kafka.Client, topic string) stream.TopicConfig {
	t.Helper()
	var cur stream.TopicConfig
	require.NoError(t, c.AlterTopic(testCtx(t), topic, func(cfg *stream.TopicConfig) { cur = *cfg }))
	return cur
}

// TestTopicCompression: CreateTopic and AlterTopic set compression.type
// and the codec's level on the cluster, and the Client reads them back.
func TestTopicCompression(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))

	require.NoError(t, c.CreateTopic(ctx, "plain", stream.TopicConfig{}))
	v, set := topicSetting(t, c, "plain", "compression.type")
	require.Equal(t, "producer", v)
	require.False(t, set, "CodecDefault leaves the cluster's default")
	require.Equal(t, stream.Compression{}, currentConfig(t, c, "plain").Compression)

	for _, cc := range []stream.Compression{{Codec: stream.CodecNone}, {Codec: stream.CodecGzip}, {Codec: stream.CodecSnappy},
		{Codec: stream.CodecLZ4}, {Codec: stream.CodecZstd}, {Codec: stream.CodecGzip, Level: 9},
		{Codec: stream.CodecLZ4, Level: 12}, {Codec: stream.CodecZstd, Level: 19}} {
		topic := "t-" + cc.Codec.String()
		if cc.Level != 0 {
			topic += "-level"
		}
		require.NoError(t, c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: 2, Compression: cc}))
		v, set := topicSetting(t, c, topic, "compression.type")
		require.True(t, set)
		want := cc.Codec.String()
		if cc.Codec == stream.CodecNone {
			want = "uncompressed" // a topic's name for none; a cluster refuses "none"
		}
		require.Equal(t, want, v)
		require.Equal(t, cc, currentConfig(t, c, topic).Compression)
	}
	_, set = topicSetting(t, c, "t-zstd", "compression.zstd.level")
	require.False(t, set, "a default level sends no level setting")
	v, set = topicSetting(t, c, "t-zstd-level", "compression.zstd.level")
	require.True(t, set)
	require.Equal(t, "19", v)

	// Another codec: the old level setting goes, the new one comes.
	require.NoError(t, c.AlterTopic(ctx, "t-zstd-level", func(cfg *stream.TopicConfig) {
		cfg.Compression = stream.Compression{Codec: stream.CodecGzip, Level: 1}
	}))
	require.Equal(t, stream.Compression{Codec: stream.CodecGzip, Level: 1}, currentConfig(t, c, "t-zstd-level").Compression)
	_, set = topicSetting(t, c, "t-zstd-level", "compression.zstd.level")
	require.False(t, set)
	v, _ = topicSetting(t, c, "t-zstd-level", "compression.gzip.level")
	require.Equal(t, "1", v)
	// Back to the default: both settings deleted.
	require.NoError(t, c.AlterTopic(ctx, "t-zstd-level", func(cfg *stream.TopicConfig) { cfg.Compression = stream.Compression{} }))
	require.Equal(t, stream.Compression{}, currentConfig(t, c, "t-zstd-level").Compression)
	_, set = topicSetting(t, c, "t-zstd-level", "compression.type")
	require.False(t, set)
	_, set = topicSetting(t, c, "t-zstd-level", "compression.gzip.level")
	require.False(t, set)

	// What the embedded broker refuses, refused before anything is sent.
	require.ErrorIs(t, c.CreateTopic(ctx, "bad", stream.TopicConfig{Compression: stream.Compression{Codec: stream.CodecSnappy, Level: 2}}),
		stream.ErrInvalidConfig)
	require.ErrorIs(t, c.CreateTopic(ctx, "bad", stream.TopicConfig{Compression: stream.Compression{Codec: stream.CodecGzip, Level: 12}}),
		stream.ErrInvalidConfig)
	require.ErrorIs(t, c.AlterTopic(ctx, "plain", func(cfg *stream.TopicConfig) { cfg.Compression.Codec = 42 }), stream.ErrInvalidConfig)
	require.Equal(t, stream.Compression{}, currentConfig(t, c, "plain").Compression)
}

// TestProducerCompression: Options.Compression is the codec of the batches
// the Client sends; the default sends them uncompressed, and the records
// read back the same whatever the codec.
func TestProducerCompression(t *testing.T) {
	cluster := newCluster(t)
	var mu sync.Mutex
	var codecs []int16
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				var b kmsg.RecordBatch
				if b.ReadFrom(rp.Records) == nil {
					codecs = append(codecs, b.Attributes&7)
				}
			}
		}
		return nil, nil, false
	})
	for i, cc := range []stream.Compression{{}, {Codec: stream.CodecNone}, {Codec: stream.CodecGzip, Level: 9},
		{Codec: stream.CodecSnappy}, {Codec: stream.CodecLZ4}, {Codec: stream.CodecLZ4, Level: 17},
		{Codec: stream.CodecZstd}, {Codec: stream.CodecZstd, Level: 22}, {Codec: stream.CodecZstd, Level: -3}} {
		t.Run(cc.String(), func(t *testing.T) {
			ctx := testCtx(t)
			c, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs(), Compression: cc})
			require.NoError(t, err)
			defer c.Close()
			topic := "p" + string(rune('a'+i))
			require.NoError(t, c.CreateTopic(ctx, topic, stream.TopicConfig{}))
			mu.Lock()
			codecs = nil
			mu.Unlock()
			var recs []*stream.Record
			for j := range 20 {
				recs = append(recs, &stream.Record{Topic: topic, Key: []byte("k"), Value: goldenValue(j),
					Headers: []stream.Header{{Key: "h", Value: nil}}})
			}
			require.NoError(t, c.Publish(ctx, recs...))
			mu.Lock()
			got := append([]int16(nil), codecs...)
			mu.Unlock()
			require.NotEmpty(t, got)
			want := int16(max(cc.Codec-1, 0)) // the batch attribute's number
			for _, g := range got {
				require.Equal(t, want, g, "batch codec for %v", cc)
			}

			rd, err := c.ReadPartition(ctx, topic, recs[0].Partition, stream.OffsetEarliest)
			require.NoError(t, err)
			defer rd.Close()
			for j := range recs {
				r, err := rd.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, recs[j].Value, r.Value)
				require.Equal(t, []stream.Header{{Key: "h", Value: nil}}, r.Headers)
			}
		})
	}

	_, err := kafka.New(testCtx(t), kafka.Options{Brokers: cluster.ListenAddrs(),
		Compression: stream.Compression{Codec: stream.CodecSnappy, Level: 3}})
	require.ErrorIs(t, err, stream.ErrInvalidConfig)

	// Opts override it.
	ctx := testCtx(t)
	c, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs(), Compression: stream.Compression{Codec: stream.CodecGzip},
		Opts: []kgo.Opt{kgo.ProducerBatchCompression(kgo.ZstdCompression())}})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.CreateTopic(ctx, "override", stream.TopicConfig{}))
	mu.Lock()
	codecs = nil
	mu.Unlock()
	// franz-go sends a batch that does not shrink uncompressed: make it shrink.
	require.NoError(t, c.Publish(ctx, &stream.Record{Topic: "override", Value: append(goldenValue(1), goldenValue(2)...)}))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int16{4}, codecs)
}
