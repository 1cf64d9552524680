package listener

import (
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestIncrementalAlterConfigs(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Compression: stream.Compression{Codec: stream.CodecGzip}, RetentionBytes: 1 << 30}))

	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("60000")},
		{Op: kadm.SetConfig, Name: "segment.ms", Value: kmsg.StringPtr("120000")},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kmsg.StringPtr("2097152")},
		{Op: kadm.SetConfig, Name: "flush.ms", Value: kmsg.StringPtr("9223372036854775807")},
		{Op: kadm.SetConfig, Name: "message.timestamp.after.max.ms", Value: kmsg.StringPtr("9223372036854775807")},
		{Op: kadm.DeleteConfig, Name: "compression.type"},
		{Op: kadm.DeleteConfig, Name: "retention.bytes"},
	}, "t")
	require.NoError(t, err)
	require.NoError(t, resp[0].Err)

	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, time.Minute, info.Config.Retention)
	require.Equal(t, 2*time.Minute, info.Config.SegmentAge)
	require.Equal(t, 2<<20, info.Config.MaxRecordBytes)
	require.Equal(t, stream.SyncNever, info.Config.Sync)
	require.Negative(t, info.Config.MaxTimestampAhead)
	require.Equal(t, stream.CodecDefault, info.Config.Compression.Codec)
	require.Zero(t, info.Config.RetentionBytes)

	// Described back as set.
	rcs, err := adm.DescribeTopicConfigs(ctx, "t")
	require.NoError(t, err)
	rc, err := rcs.On("t", nil)
	require.NoError(t, err)
	values := map[string]string{}
	for _, c := range rc.Configs {
		values[c.Key] = c.MaybeValue()
	}
	require.Equal(t, map[string]string{
		"cleanup.policy":                  "delete",
		"compression.type":                "producer",
		"compression.gzip.level":          "-1",
		"compression.lz4.level":           "9",
		"compression.zstd.level":          "3",
		"delete.retention.ms":             "86400000",
		"flush.messages":                  "9223372036854775807",
		"flush.ms":                        "9223372036854775807",
		"max.compaction.lag.ms":           "9223372036854775807",
		"max.message.bytes":               "2097152",
		"message.timestamp.after.max.ms":  "9223372036854775807",
		"message.timestamp.before.max.ms": "9223372036854775807",
		"message.timestamp.type":          "CreateTime",
		"min.cleanable.dirty.ratio":       "0.5",
		"min.compaction.lag.ms":           "0",
		"min.insync.replicas":             "1",
		"retention.bytes":                 "-1",
		"retention.ms":                    "60000",
		"segment.bytes":                   "1073741824",
		"segment.ms":                      "120000",
	}, values)

	// A bad value changes nothing, the good ones with it included.
	resp, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("5000")},
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact,keep")},
	}, "t")
	require.NoError(t, err)
	require.ErrorIs(t, resp[0].Err, kerr.InvalidConfig)
	require.Contains(t, resp[0].ErrMessage, "cleanup policy")
	resp, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1000")},
	}, "t")
	require.NoError(t, err)
	require.ErrorIs(t, resp[0].Err, kerr.InvalidConfig)
	after, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, info.Config, after.Config)

	// Validate only stores nothing; an unknown topic is reported.
	resp, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("5000")}}, "t")
	require.NoError(t, err)
	require.NoError(t, resp[0].Err)
	after, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, time.Minute, after.Config.Retention)
	resp, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("5000")}}, "missing")
	require.NoError(t, err)
	require.ErrorIs(t, resp[0].Err, kerr.UnknownTopicOrPartition)
}

func TestAlterConfigsReplacesAll(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 2, Retention: time.Hour, LogAppendTime: true}))

	// The legacy AlterConfigs sets the whole state: what it does not name
	// goes back to its default.
	resp, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{
		{Name: "compression.type", Value: kmsg.StringPtr("lz4")},
		{Name: "compression.lz4.level", Value: kmsg.StringPtr("12")},
	}, "t")
	require.NoError(t, err)
	require.NoError(t, resp[0].Err)
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Zero(t, info.Config.Retention)
	require.False(t, info.Config.LogAppendTime)
	require.Equal(t, stream.Compression{Codec: stream.CodecLZ4, Level: 12}, info.Config.Compression)
	require.Equal(t, 2, info.Config.Partitions)
}

func TestDescribeBrokerConfigs(t *testing.T) {
	b := openBroker(t, &stream.Options{AutoCreateTopics: true, DefaultTopic: stream.TopicConfig{Partitions: 4}})
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	rcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	require.NoError(t, err)
	require.Len(t, rcs, 1)
	require.NoError(t, rcs[0].Err)
	values := map[string]string{}
	for _, c := range rcs[0].Configs {
		values[c.Key] = c.MaybeValue()
		require.Equal(t, kmsg.ConfigSourceStaticBrokerConfig, c.Source, c.Key)
	}
	require.Equal(t, "true", values["auto.create.topics.enable"])
	require.Equal(t, "4", values["num.partitions"])
	require.Equal(t, "1", values["default.replication.factor"])
	require.Equal(t, "1073741824", values["log.segment.bytes"])
	require.Equal(t, "1000", values["log.flush.interval.ms"])

	// Broker configs are read-only.
	resp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: kmsg.StringPtr("2")}}, 0)
	require.NoError(t, err)
	require.ErrorIs(t, resp[0].Err, kerr.InvalidRequest)
}

func TestDescribeConfigsVersions(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Retention: time.Hour}))
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.SetVersion(v)
		req.IncludeSynonyms, req.IncludeDocumentation = true, true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "t", []string{"retention.ms"}
		req.Resources = append(req.Resources, rr)
		resp := rawRequest(t, s, req).(*kmsg.DescribeConfigsResponse)
		require.Len(t, resp.Resources, 1)
		require.Zero(t, resp.Resources[0].ErrorCode)
		cs := resp.Resources[0].Configs
		require.Len(t, cs, 1, "v%d", v)
		require.Equal(t, "3600000", *cs[0].Value)
		if v == 0 {
			require.False(t, cs[0].IsDefault)
			continue
		}
		require.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, cs[0].Source)
		require.Len(t, cs[0].ConfigSynonyms, 2)
		require.Equal(t, "log.retention.ms", cs[0].ConfigSynonyms[1].Name)
		if v >= 3 {
			require.Equal(t, kmsg.ConfigTypeLong, cs[0].ConfigType)
			require.NotEmpty(t, *cs[0].Documentation)
		}
	}
}

// TestSettingsRoundTrip: every setting's described value, set again,
// leaves the config as it was.
func TestSettingsRoundTrip(t *testing.T) {
	opts := stream.Options{Sync: stream.SyncInterval, SyncInterval: time.Second}
	for _, cfg := range []stream.TopicConfig{
		{},
		{Retention: time.Hour, RetentionBytes: 5 << 20, SegmentBytes: 1 << 20, SegmentAge: time.Minute, MaxRecordBytes: 1000,
			Sync: stream.SyncAlways, LogAppendTime: true, MaxTimestampAhead: -1, MaxTimestampBehind: time.Hour,
			Compression: stream.Compression{Codec: stream.CodecZstd, Level: 9}},
		{Sync: stream.SyncNever, Compression: stream.Compression{Codec: stream.CodecNone}},
		{Cleanup: stream.CleanupCompactDelete, MinCleanableDirtyRatio: 0.3, MinCompactionLag: time.Minute,
			MaxCompactionLag: time.Hour, DeleteRetention: 2 * time.Hour},
		{Cleanup: stream.CleanupCompact, MinCleanableDirtyRatio: -1, DeleteRetention: -1},
	} {
		var changes []configChange
		for _, d := range describeSettings(cfg, &opts, nil, false, false) {
			changes = append(changes, configChange{name: d.Name, value: d.Value})
		}
		var got stream.TopicConfig
		require.NoError(t, applySettings(&got, changes))
		want := cfg
		if want.MaxTimestampAhead == 0 {
			want.MaxTimestampAhead = stream.DefaultMaxTimestampAhead
		}
		if want.Sync == stream.SyncDefault {
			want.Sync = stream.SyncInterval // described as the broker's
		}
		require.NoError(t, got.Validate())
		require.Equal(t, describeSettings(want, &opts, nil, false, false), describeSettings(got, &opts, nil, false, false))
	}
}
