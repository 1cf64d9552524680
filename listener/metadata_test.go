package listener

import (
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataRequest is a Metadata request of version v for topics (nil:
// all).
func metadataRequest(v int16, allowAuto bool, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(v)
	req.AllowAutoTopicCreation = allowAuto
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestMetadataAllVersions(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	require.NoError(t, b.CreateTopic("a", stream.TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic("b", stream.TopicConfig{}))
	host, port := s.hostPort()
	for v := int16(0); v <= 12; v++ {
		// All topics: null in v1+, an empty list in v0.
		req := metadataRequest(v, false)
		if v == 0 {
			req.Topics = []kmsg.MetadataRequestTopic{}
		}
		resp := rawRequest(t, s, req).(*kmsg.MetadataResponse)
		require.Len(t, resp.Brokers, 1, "v%d", v)
		require.Equal(t, host, resp.Brokers[0].Host)
		require.Equal(t, port, resp.Brokers[0].Port)
		require.EqualValues(t, 0, resp.Brokers[0].NodeID)
		require.Len(t, resp.Topics, 2, "v%d", v)
		require.Equal(t, "a", *resp.Topics[0].Topic)
		require.Len(t, resp.Topics[0].Partitions, 2)
		for _, p := range resp.Topics[0].Partitions {
			require.Zero(t, p.ErrorCode)
			require.EqualValues(t, 0, p.Leader)
			require.Equal(t, []int32{0}, p.ISR)
		}
		if v >= 2 {
			require.Equal(t, clusterID, *resp.ClusterID)
		}
		if v >= 10 {
			require.NotEqual(t, [16]byte{}, resp.Topics[0].TopicID)
			require.NotEqual(t, resp.Topics[0].TopicID, resp.Topics[1].TopicID)
		}
		if v >= 1 {
			// An empty list (v1+) is no topics.
			req := metadataRequest(v, false)
			req.Topics = []kmsg.MetadataRequestTopic{}
			resp := rawRequest(t, s, req).(*kmsg.MetadataResponse)
			require.Empty(t, resp.Topics)
		}
	}
}

func TestMetadataUnknownAndInvalid(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	for _, v := range []int16{0, 4, 12} {
		resp := rawRequest(t, s, metadataRequest(v, true, "missing", "bad/name")).(*kmsg.MetadataResponse)
		require.Len(t, resp.Topics, 2)
		require.Equal(t, kerr.UnknownTopicOrPartition.Code, resp.Topics[0].ErrorCode, "v%d", v)
		require.Equal(t, kerr.InvalidTopicException.Code, resp.Topics[1].ErrorCode, "v%d", v)
	}
	require.Empty(t, b.Topics(), "auto-creation is off")

	// By topic ID (v10+): unknown IDs are UNKNOWN_TOPIC_ID, known ones
	// answered with their names.
	require.NoError(t, b.CreateTopic("known", stream.TopicConfig{}))
	info, err := b.DescribeTopic("known")
	require.NoError(t, err)
	req := metadataRequest(12, false)
	for _, id := range [][16]byte{topicID(info), {9}} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		req.Topics = append(req.Topics, rt)
	}
	resp := rawRequest(t, s, req).(*kmsg.MetadataResponse)
	require.Len(t, resp.Topics, 2)
	require.Equal(t, "known", *resp.Topics[0].Topic)
	require.Equal(t, kerr.UnknownTopicID.Code, resp.Topics[1].ErrorCode)
}

func TestMetadataAutoCreate(t *testing.T) {
	b := openBroker(t, &stream.Options{AutoCreateTopics: true, DefaultTopic: stream.TopicConfig{Partitions: 3}})
	s := startServer(t, b, nil)

	// v4+ asks: not allowed, not created.
	resp := rawRequest(t, s, metadataRequest(9, false, "quiet")).(*kmsg.MetadataResponse)
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, resp.Topics[0].ErrorCode)
	require.Empty(t, b.Topics())

	// Allowed: created with the broker's DefaultTopic.
	resp = rawRequest(t, s, metadataRequest(9, true, "loud")).(*kmsg.MetadataResponse)
	require.Zero(t, resp.Topics[0].ErrorCode)
	require.Len(t, resp.Topics[0].Partitions, 3)
	// v0-v3 always allow it.
	resp = rawRequest(t, s, metadataRequest(1, false, "old")).(*kmsg.MetadataResponse)
	require.Zero(t, resp.Topics[0].ErrorCode)
	require.Equal(t, []string{"loud", "old"}, b.Topics())

	md, err := newAdmin(t, s).Metadata(testCtx(t), "loud")
	require.NoError(t, err)
	require.Len(t, md.Topics["loud"].Partitions, 3)
}

// TestTopicIDStable: a topic's ID survives a restart and changes when the
// topic is re-created.
func TestTopicIDStable(t *testing.T) {
	dir := t.TempDir()
	b, err := stream.Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	before, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.NoError(t, b.Close())

	b, err = stream.Open(dir, nil)
	require.NoError(t, err)
	defer b.Close()
	after, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, topicID(before), topicID(after))

	require.NoError(t, b.DeleteTopic("t"))
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	again, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.NotEqual(t, topicID(before), topicID(again))
}

func TestDescribeCluster(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	host, port := s.hostPort()
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.SetVersion(v)
		resp := rawRequest(t, s, req).(*kmsg.DescribeClusterResponse)
		require.Zero(t, resp.ErrorCode)
		require.Equal(t, clusterID, resp.ClusterID)
		require.Len(t, resp.Brokers, 1)
		require.Equal(t, host, resp.Brokers[0].Host)
		require.Equal(t, port, resp.Brokers[0].Port)
	}
	md, err := newAdmin(t, s).BrokerMetadata(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, clusterID, md.Cluster)
	require.EqualValues(t, 0, md.Controller)
	require.Len(t, md.Brokers, 1)
}
