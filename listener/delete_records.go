package listener

import (
	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DeleteRecords, 0, 2, handleDeleteRecords) }

// handleDeleteRecords deletes each partition's records before the offset
// given (-1: the high watermark, all of them) and answers the new log
// start offset, the low watermark.
func handleDeleteRecords(c *conn, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewDeleteRecordsResponseTopic()
		t.Topic = rt.Topic
		allowed := c.allowed(opDelete, resTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewDeleteRecordsResponseTopicPartition()
			p.Partition, p.LowWatermark = rp.Partition, -1
			if !allowed {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
				t.Partitions = append(t.Partitions, p)
				continue
			}
			start, err := c.deleteRecords(rt.Topic, rp.Partition, rp.Offset)
			p.ErrorCode = errorCode(err)
			if err == nil {
				p.LowWatermark = start
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// deleteRecords deletes a partition's records before offset before, -1
// meaning the high watermark.
func (c *conn) deleteRecords(topic string, partition int32, before int64) (int64, error) {
	if before == -1 {
		info, err := c.s.broker.DescribeTopic(topic)
		if err != nil {
			return 0, err
		}
		if partition < 0 || int(partition) >= len(info.Partitions) {
			return 0, stream.ErrInvalidPartition
		}
		before = info.Partitions[partition].EndOffset
	}
	if before < 0 {
		return 0, kerr.OffsetOutOfRange
	}
	return c.s.broker.DeleteRecords(topic, partition, before)
}
