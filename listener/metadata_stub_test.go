package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Franz-go consumes in a group only once Metadata shows it the topics, and
// the Metadata API is another branch's (admin). Until it is merged, the
// group tests serve this minimal stand-in: one broker, node 0, leading
// every partition of the topics asked for. It never replaces a real
// handler: it is registered at a test's start, after every init.
func stubMetadata() {
	if _, ok := apis[kmsg.Metadata.Int16()]; ok {
		return
	}
	serve(kmsg.Metadata, 0, 12, func(c *conn, req *kmsg.MetadataRequest) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		host, port := c.s.hostPort()
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = 0, host, port
		resp.Brokers = append(resp.Brokers, br)
		resp.ControllerID = 0
		var names []string
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
		if req.Topics == nil {
			names = c.s.broker.Topics()
		}
		for _, name := range names {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = kmsg.StringPtr(name)
			info, err := c.s.broker.DescribeTopic(name)
			if err != nil {
				rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				resp.Topics = append(resp.Topics, rt)
				continue
			}
			for p := range info.Partitions {
				rp := kmsg.NewMetadataResponseTopicPartition()
				rp.Partition, rp.Leader, rp.Replicas, rp.ISR = int32(p), 0, []int32{0}, []int32{0}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	})
}
