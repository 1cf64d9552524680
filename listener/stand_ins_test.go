package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Stand-ins for Metadata and ListOffsets, which franz-go needs before it
// produces or consumes, registered only where the package has no handler
// of its own (test files initialize after the package's): the real ones
// come from the admin work, and then these go unused. They know only what
// the data path tests need: every topic, one broker leading everything,
// earliest and latest offsets.
func init() {
	if _, ok := apis[kmsg.Metadata.Int16()]; !ok {
		serve(kmsg.Metadata, 0, 12, standInMetadata)
	}
	if _, ok := apis[kmsg.ListOffsets.Int16()]; !ok {
		serve(kmsg.ListOffsets, 1, 7, standInListOffsets)
	}
}

func standInMetadata(c *conn, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := c.s.hostPort()
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = 0, host, port
	resp.Brokers = append(resp.Brokers, br)
	resp.ControllerID = 0
	names := c.s.broker.Topics()
	if req.Topics != nil {
		names = names[:0]
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	for _, name := range names {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = kmsg.StringPtr(name)
		info, err := c.s.broker.DescribeTopic(name)
		if err != nil {
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		for _, p := range info.Partitions {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition, mp.Leader, mp.Replicas, mp.ISR = p.Partition, 0, []int32{0}, []int32{0}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp, nil
}

func standInListOffsets(c *conn, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		info, err := c.s.broker.DescribeTopic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition, sp.Timestamp = rp.Partition, -1
			switch {
			case err != nil || int(rp.Partition) >= len(info.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Timestamp == -2:
				sp.Offset = info.Partitions[rp.Partition].StartOffset
			default:
				sp.Offset = info.Partitions[rp.Partition].EndOffset
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
