package kafka

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/embedstream/stream"
)

// Each TopicConfig field that has a Kafka topic setting maps to it; zero
// values leave the cluster's defaults.
func TestTopicConfigsMapToKafkaSettings(t *testing.T) {
	str := func(m map[string]*string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = *v
		}
		return out
	}
	require.Nil(t, topicConfigs(stream.TopicConfig{Partitions: 3, Sync: stream.SyncAlways}))
	require.Equal(t, map[string]string{
		"retention.ms":                    "3600000",
		"retention.bytes":                 "1000",
		"segment.bytes":                   "4096",
		"segment.ms":                      "60000",
		"max.message.bytes":               "2048",
		"message.timestamp.type":          "LogAppendTime",
		"message.timestamp.after.max.ms":  "7200000",
		"message.timestamp.before.max.ms": "86400000",
		"cleanup.policy":                  "compact,delete",
		"min.cleanable.dirty.ratio":       "0.25",
		"min.compaction.lag.ms":           "60000",
		"max.compaction.lag.ms":           "7200000",
		"delete.retention.ms":             "3600000",
	}, str(topicConfigs(stream.TopicConfig{Retention: time.Hour, RetentionBytes: 1000, SegmentBytes: 4096,
		SegmentAge: time.Minute, MaxRecordBytes: 2048, LogAppendTime: true, MaxTimestampAhead: 2 * time.Hour,
		MaxTimestampBehind: 24 * time.Hour, Cleanup: stream.CleanupCompactDelete, MinCleanableDirtyRatio: 0.25,
		MinCompactionLag: time.Minute, MaxCompactionLag: 2 * time.Hour, DeleteRetention: time.Hour})))
	require.Equal(t, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "0"},
		str(topicConfigs(stream.TopicConfig{Cleanup: stream.CleanupCompact, MinCleanableDirtyRatio: -1, DeleteRetention: -1})),
		"negative ratio and delete retention: Kafka's 0")
	require.Equal(t, map[string]string{"message.timestamp.after.max.ms": strconv.FormatInt(math.MaxInt64, 10)},
		str(topicConfigs(stream.TopicConfig{MaxTimestampAhead: -1})), "negative: no limit")
}

// configFromSettings reads back what topicSettings writes, and Kafka's
// "no limit" values as the TopicConfig values that mean it.
func TestConfigFromSettings(t *testing.T) {
	cfg := stream.TopicConfig{Partitions: 4, Retention: time.Hour, RetentionBytes: 1000, SegmentBytes: 4096,
		SegmentAge: time.Minute, MaxRecordBytes: 2048, LogAppendTime: true, MaxTimestampAhead: -1,
		MaxTimestampBehind: 24 * time.Hour, Cleanup: stream.CleanupCompact, MinCleanableDirtyRatio: 0.75,
		MinCompactionLag: time.Second, MaxCompactionLag: time.Hour, DeleteRetention: 10 * time.Minute}
	var described []kadm.Config
	for k, v := range topicSettings(cfg) {
		described = append(described, kadm.Config{Key: k, Value: v})
	}
	require.Equal(t, cfg, configFromSettings(described, 4))

	maxInt := strconv.FormatInt(math.MaxInt64, 10)
	unlimited := []kadm.Config{
		{Key: "retention.ms", Value: ptr("-1")}, {Key: "retention.bytes", Value: ptr("-1")},
		{Key: "message.timestamp.before.max.ms", Value: ptr(maxInt)},
		{Key: "message.timestamp.after.max.ms", Value: ptr(maxInt)},
		{Key: "message.timestamp.type", Value: ptr("CreateTime")}, {Key: "cleanup.policy", Value: ptr("delete")},
		{Key: "max.compaction.lag.ms", Value: ptr(maxInt)},
	}
	require.Equal(t, stream.TopicConfig{Partitions: 1, MaxTimestampAhead: -1}, configFromSettings(unlimited, 1))

	zeros := []kadm.Config{
		{Key: "cleanup.policy", Value: ptr("delete, Compact")},
		{Key: "min.cleanable.dirty.ratio", Value: ptr("0.0")}, {Key: "delete.retention.ms", Value: ptr("0")},
		{Key: "min.compaction.lag.ms", Value: ptr("0")},
	}
	require.Equal(t, stream.TopicConfig{Partitions: 1, Cleanup: stream.CleanupCompactDelete, MinCleanableDirtyRatio: -1, DeleteRetention: -1},
		configFromSettings(zeros, 1), "Kafka's 0 ratio and delete retention: negative fields")
}

func ptr(s string) *string { return &s }

// Compression maps to compression.type and, when set, the codec's level
// setting; reading back takes a level only where the topic itself sets it.
func TestCompressionSettings(t *testing.T) {
	str := func(m map[string]*string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = *v
		}
		return out
	}
	require.Equal(t, map[string]string{"compression.type": "zstd"},
		str(topicConfigs(stream.TopicConfig{Compression: stream.Compression{Codec: stream.CodecZstd}})))
	require.Equal(t, map[string]string{"compression.type": "uncompressed"},
		str(topicConfigs(stream.TopicConfig{Compression: stream.Compression{Codec: stream.CodecNone}})))
	for codec, key := range map[stream.Codec]string{stream.CodecGzip: "compression.gzip.level",
		stream.CodecLZ4: "compression.lz4.level", stream.CodecZstd: "compression.zstd.level"} {
		cfg := stream.TopicConfig{Compression: stream.Compression{Codec: codec, Level: 7}}
		require.Equal(t, map[string]string{"compression.type": codec.String(), key: "7"}, str(topicConfigs(cfg)))

		var described []kadm.Config
		for k, v := range topicSettings(cfg) {
			described = append(described, kadm.Config{Key: k, Value: v, Source: kmsg.ConfigSourceDynamicTopicConfig})
		}
		require.Equal(t, cfg, configFromSettings(described, 0))
	}

	// Kafka 3.8 describes every level, from its defaults; "uncompressed"
	// is its other name for none.
	defaults := []kadm.Config{
		{Key: "compression.type", Value: ptr("producer"), Source: kmsg.ConfigSourceDefaultConfig},
		{Key: "compression.gzip.level", Value: ptr("-1"), Source: kmsg.ConfigSourceDefaultConfig},
		{Key: "compression.lz4.level", Value: ptr("9"), Source: kmsg.ConfigSourceDefaultConfig},
		{Key: "compression.zstd.level", Value: ptr("3"), Source: kmsg.ConfigSourceDefaultConfig},
	}
	require.Equal(t, stream.Compression{}, configFromSettings(defaults, 1).Compression)
	defaults[0] = kadm.Config{Key: "compression.type", Value: ptr("zstd"), Source: kmsg.ConfigSourceDynamicTopicConfig}
	require.Equal(t, stream.Compression{Codec: stream.CodecZstd}, configFromSettings(defaults, 1).Compression)
	defaults[0] = kadm.Config{Key: "compression.type", Value: ptr("uncompressed"), Source: kmsg.ConfigSourceDynamicTopicConfig}
	require.Equal(t, stream.Compression{Codec: stream.CodecNone}, configFromSettings(defaults, 1).Compression)
	defaults = append(defaults, kadm.Config{Key: "compression.gzip.level", Value: ptr("4"), Source: kmsg.ConfigSourceDynamicTopicConfig})
	require.Equal(t, stream.Compression{Codec: stream.CodecNone}, configFromSettings(defaults, 1).Compression,
		"another codec's level")

	for _, bad := range []stream.Compression{
		{Codec: stream.CodecSnappy, Level: 1}, {Codec: stream.CodecNone, Level: 1}, {Codec: stream.CodecDefault, Level: 1},
		{Codec: stream.CodecGzip, Level: 10}, {Codec: stream.CodecLZ4, Level: 18}, {Codec: stream.CodecZstd, Level: 23},
		{Codec: stream.Codec(6)}, {Codec: stream.Codec(-1)},
	} {
		require.ErrorIs(t, checkCompression(bad), stream.ErrInvalidConfig, "%v", bad)
	}
	for _, ok := range []stream.Compression{{}, {Codec: stream.CodecGzip, Level: -1}, {Codec: stream.CodecZstd, Level: -7},
		{Codec: stream.CodecLZ4, Level: 17}, {Codec: stream.CodecSnappy}} {
		require.NoError(t, checkCompression(ok), "%v", ok)
	}
}
