package listener

import (
	"errors"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.Metadata, 0, 12, handleMetadata) }

// handleMetadata describes the one broker (node 0, the advertised
// address, controller and leader at epoch 0 of every partition, the only
// replica) and the topics asked for: all of them when Topics is null (an
// empty list in v0), else those named, by name or (v10+) by topic ID.
// Unknown topics are auto-created when the broker's AutoCreateTopics is
// on and the request allows it (AllowAutoTopicCreation, v4+; older
// versions always allow it, as Kafka's broker does).
func handleMetadata(c *conn, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := c.s.hostPort()
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = nodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ClusterID = kmsg.StringPtr(clusterID)
	resp.ControllerID = nodeID

	if req.Topics == nil || req.Version == 0 && len(req.Topics) == 0 {
		// All topics: those the principal may not describe are left out,
		// as Kafka does.
		for _, name := range c.s.broker.Topics() {
			if !c.allowed(opDescribe, resTopic, name) {
				continue
			}
			info, err := c.s.broker.DescribeTopic(name)
			if err != nil {
				continue // deleted meanwhile
			}
			resp.Topics = append(resp.Topics, metadataTopic(info))
		}
		return resp, nil
	}
	autoCreate := req.AllowAutoTopicCreation || req.Version < 4
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, c.metadataFor(rt, autoCreate))
	}
	return resp, nil
}

// metadataFor answers for one requested topic.
func (c *conn) metadataFor(rt kmsg.MetadataRequestTopic, autoCreate bool) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic, t.TopicID = rt.Topic, rt.TopicID
	if rt.Topic == nil {
		// By ID (v10+): an ID can only name an existing topic.
		info, ok := c.topicByID(rt.TopicID)
		if !ok || !c.allowed(opDescribe, resTopic, info.Name) {
			t.ErrorCode = kerr.UnknownTopicID.Code
			return t
		}
		return metadataTopic(info)
	}
	name := *rt.Topic
	if !c.allowed(opDescribe, resTopic, name) {
		t.ErrorCode = kerr.TopicAuthorizationFailed.Code
		return t
	}
	info, err := c.s.broker.DescribeTopic(name)
	if errors.Is(err, stream.ErrTopicNotFound) && autoCreate && c.s.broker.Options().AutoCreateTopics &&
		!c.allowed(opCreate, resCluster, clusterName) && !c.allowed(opCreate, resTopic, name) {
		// Kafka's answer to a topic it would create for someone else.
		t.ErrorCode = kerr.TopicAuthorizationFailed.Code
		return t
	}
	if errors.Is(err, stream.ErrTopicNotFound) && autoCreate {
		switch cerr := c.s.broker.AutoCreateTopic(name); {
		case cerr == nil:
			info, err = c.s.broker.DescribeTopic(name)
		case errors.Is(cerr, stream.ErrTopicNotFound), errors.Is(cerr, stream.ErrReadOnly):
			// Auto-creation is off, or a read-only broker creates
			// nothing: the topic stays unknown.
		default:
			c.s.log.Info("listener: auto-creating a topic", "topic", name, "remote", c.remote, "err", cerr)
			err = cerr
		}
	}
	if err != nil {
		t.ErrorCode = errorCode(err)
		return t
	}
	return metadataTopic(info)
}

// metadataTopic describes an existing topic: every partition led by the
// one broker at epoch 0, its only replica, in sync.
func metadataTopic(info stream.TopicInfo) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic, t.TopicID = kmsg.StringPtr(info.Name), topicID(info)
	for _, p := range info.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.Partition, nodeID, 0
		mp.Replicas, mp.ISR = []int32{nodeID}, []int32{nodeID}
		t.Partitions = append(t.Partitions, mp)
	}
	return t
}
