package listener

import (
	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.OffsetForLeaderEpoch, 0, 4, handleOffsetForLeaderEpoch) }

// handleOffsetForLeaderEpoch answers the end offset of a leader epoch.
// Every partition has had one leader, this broker, at epoch 0 from its
// first offset: epoch 0 ends at the high watermark, and an epoch never
// seen gets UNDEFINED_EPOCH (-1) and UNDEFINED_EPOCH_OFFSET (-1), Kafka's
// answer for an epoch above every known one. A CurrentLeaderEpoch (v2+)
// above 0 is UNKNOWN_LEADER_EPOCH.
func handleOffsetForLeaderEpoch(c *conn, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetForLeaderEpochResponseTopic()
		t.Topic = rt.Topic
		allowed := c.allowed(opDescribe, resTopic, rt.Topic)
		info, infoErr := c.s.broker.DescribeTopic(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			p.Partition, p.LeaderEpoch, p.EndOffset = rp.Partition, -1, -1
			var err error
			switch {
			case !allowed:
				err = kerr.TopicAuthorizationFailed
			case infoErr != nil:
				err = infoErr
			case rp.Partition < 0 || int(rp.Partition) >= len(info.Partitions):
				err = stream.ErrInvalidPartition
			case req.Version >= 2 && rp.CurrentLeaderEpoch > 0:
				err = kerr.UnknownLeaderEpoch
			case rp.LeaderEpoch == 0:
				p.LeaderEpoch, p.EndOffset = 0, info.Partitions[rp.Partition].EndOffset
			}
			p.ErrorCode = errorCode(err)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
