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

func TestCreateDescribeDeleteTopics(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)

	created, err := adm.CreateTopic(ctx, 3, -1, map[string]*string{
		"retention.ms":           kmsg.StringPtr("3600000"),
		"compression.type":       kmsg.StringPtr("zstd"),
		"compression.zstd.level": kmsg.StringPtr("7"),
		"segment.bytes":          kmsg.StringPtr("1048576"),
		"message.timestamp.type": kmsg.StringPtr("LogAppendTime"),
		"flush.messages":         kmsg.StringPtr("1"),
		"min.insync.replicas":    kmsg.StringPtr("1"),
	}, "orders")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	require.EqualValues(t, 3, created.NumPartitions)
	require.EqualValues(t, 1, created.ReplicationFactor)
	require.NotEqual(t, kadm.TopicID{}, created.ID)
	require.Equal(t, "3600000", *created.Configs["retention.ms"].Value)

	// Visible in process.
	info, err := b.DescribeTopic("orders")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 3)
	require.Equal(t, time.Hour, info.Config.Retention)
	require.Equal(t, stream.Compression{Codec: stream.CodecZstd, Level: 7}, info.Config.Compression)
	require.EqualValues(t, 1<<20, info.Config.SegmentBytes)
	require.True(t, info.Config.LogAppendTime)
	require.Equal(t, stream.SyncAlways, info.Config.Sync)

	// Metadata (kadm) reports the same ID and the one broker as leader.
	md, err := adm.Metadata(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, created.ID, md.Topics["orders"].ID)
	require.Len(t, md.Topics["orders"].Partitions, 3)
	for _, p := range md.Topics["orders"].Partitions {
		require.EqualValues(t, 0, p.Leader)
		require.Equal(t, []int32{0}, p.Replicas)
	}
	require.Len(t, md.Brokers, 1)

	// Described with Kafka's names and sources.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	require.NoError(t, err)
	rc, err := rcs.On("orders", nil)
	require.NoError(t, err)
	require.NoError(t, rc.Err)
	got := map[string]*kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = &c
	}
	require.Equal(t, "3600000", got["retention.ms"].MaybeValue())
	require.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, got["retention.ms"].Source)
	require.Equal(t, "zstd", got["compression.type"].MaybeValue())
	require.Equal(t, "7", got["compression.zstd.level"].MaybeValue())
	require.Equal(t, "LogAppendTime", got["message.timestamp.type"].MaybeValue())
	require.Equal(t, "1", got["flush.messages"].MaybeValue())
	require.Equal(t, "-1", got["retention.bytes"].MaybeValue())
	require.Equal(t, kmsg.ConfigSourceDefaultConfig, got["retention.bytes"].Source)
	require.Equal(t, "delete", got["cleanup.policy"].MaybeValue())

	// Already there.
	again, err := adm.CreateTopics(ctx, 1, 1, nil, "orders")
	require.NoError(t, err)
	require.ErrorIs(t, again["orders"].Err, kerr.TopicAlreadyExists)

	// Deleted, by name, then gone in process.
	dr, err := adm.DeleteTopics(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, dr["orders"].Err)
	require.Empty(t, b.Topics())
	dr, err = adm.DeleteTopics(ctx, "orders")
	require.NoError(t, err)
	require.ErrorIs(t, dr["orders"].Err, kerr.UnknownTopicOrPartition)
}

func TestCreateTopicsRefusals(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)

	for _, tc := range []struct {
		name       string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       *kerr.Error
		message    string
	}{
		{"replicated", 1, 3, nil, kerr.InvalidReplicationFactor, "only replica"},
		{"lag-conflict", 1, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact"), "min.compaction.lag.ms": kmsg.StringPtr("7200000"),
			"max.compaction.lag.ms": kmsg.StringPtr("3600000")}, kerr.InvalidConfig, "conflict topic config setting min.compaction.lag.ms"},
		{"dirty-ratio", 1, 1, map[string]*string{"min.cleanable.dirty.ratio": kmsg.StringPtr("1.5")}, kerr.InvalidConfig, "min.cleanable.dirty.ratio"},
		{"tiny-segments", 1, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("100")}, kerr.InvalidConfig, "segment bytes"},
		{"unknown-config", 1, 1, map[string]*string{"no.such.config": kmsg.StringPtr("1")}, kerr.InvalidConfig, "no.such.config"},
		{"two-isr", 1, 1, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")}, kerr.InvalidConfig, "one replica"},
		{"zstd-level-on-gzip", 1, 1, map[string]*string{"compression.type": kmsg.StringPtr("gzip"), "compression.zstd.level": kmsg.StringPtr("5")}, kerr.InvalidConfig, "compression.type=zstd"},
		{"zero-partitions", 0, 1, nil, kerr.InvalidPartitions, ""},
		{"bad/name", 1, 1, nil, kerr.InvalidTopicException, ""},
		{"__consumer_offsets", 1, 1, nil, kerr.InvalidTopicException, ""},
	} {
		resps, err := adm.CreateTopics(ctx, tc.partitions, tc.rf, tc.configs, tc.name)
		require.NoError(t, err)
		require.ErrorIs(t, resps[tc.name].Err, tc.want, tc.name)
		require.Contains(t, resps[tc.name].ErrMessage, tc.message, tc.name)
	}
	require.Empty(t, b.Topics())

	// Validate only: answered as a create would be, nothing created.
	vr, err := adm.ValidateCreateTopics(ctx, 4, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "checked")
	require.NoError(t, err)
	require.NoError(t, vr["checked"].Err)
	require.EqualValues(t, 4, vr["checked"].NumPartitions)
	vr, err = adm.ValidateCreateTopics(ctx, 1, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("100")}, "checked")
	require.NoError(t, err)
	require.ErrorIs(t, vr["checked"].Err, kerr.InvalidConfig)
	require.Empty(t, b.Topics())

	// Default partitions (-1) are the broker's num.partitions.
	resp, err := adm.CreateTopic(ctx, -1, -1, nil, "defaults")
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	info, err := b.DescribeTopic("defaults")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 1)
}

func TestCreateTopicsOldVersion(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(0)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "old", 2, 1
	req.Topics = append(req.Topics, rt)
	resp := rawRequest(t, s, req).(*kmsg.CreateTopicsResponse)
	require.Len(t, resp.Topics, 1)
	require.Zero(t, resp.Topics[0].ErrorCode)
	info, err := b.DescribeTopic("old")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)
}

func TestDeleteTopicByID(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	require.NoError(t, b.CreateTopic("doomed", stream.TopicConfig{}))
	info, err := b.DescribeTopic("doomed")
	require.NoError(t, err)

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(6)
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = topicID(info)
	req.Topics = append(req.Topics, rt)
	unknown := kmsg.NewDeleteTopicsRequestTopic()
	unknown.TopicID = [16]byte{1}
	req.Topics = append(req.Topics, unknown)
	resp := rawRequest(t, s, req).(*kmsg.DeleteTopicsResponse)
	require.Len(t, resp.Topics, 2)
	require.Zero(t, resp.Topics[0].ErrorCode)
	require.Equal(t, "doomed", *resp.Topics[0].Topic)
	require.Equal(t, kerr.UnknownTopicID.Code, resp.Topics[1].ErrorCode)
	require.Empty(t, b.Topics())
}

func TestCreatePartitions(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	require.NoError(t, b.CreateTopic("grow", stream.TopicConfig{Partitions: 2}))

	resp, err := adm.CreatePartitions(ctx, 3, "grow")
	require.NoError(t, err)
	require.NoError(t, resp["grow"].Err)
	info, err := b.DescribeTopic("grow")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 5)

	resp, err = adm.UpdatePartitions(ctx, 4, "grow")
	require.NoError(t, err)
	require.ErrorIs(t, resp["grow"].Err, kerr.InvalidPartitions)
	resp, err = adm.UpdatePartitions(ctx, 1<<21, "grow")
	require.NoError(t, err)
	require.ErrorIs(t, resp["grow"].Err, kerr.InvalidPartitions)
	resp, err = adm.UpdatePartitions(ctx, 4, "missing")
	require.NoError(t, err)
	require.ErrorIs(t, resp["missing"].Err, kerr.UnknownTopicOrPartition)

	md, err := adm.Metadata(ctx, "grow")
	require.NoError(t, err)
	require.Len(t, md.Topics["grow"].Partitions, 5)
}
