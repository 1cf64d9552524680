package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Versions 0-3 are the producer's; v4+ batch several transactions for
// broker-to-broker verification (KIP-890), which clients never send.
func init() { serve(kmsg.AddPartitionsToTxn, 0, 3, handleAddPartitionsToTxn) }

// handleAddPartitionsToTxn adds partitions to the producer's transaction,
// opening one if none is (stream.Broker.AddTxnPartitions): only added
// partitions take its transactional batches. Partitions are added all or
// none: one the client may not write (TOPIC_AUTHORIZATION_FAILED) or that
// does not exist (UNKNOWN_TOPIC_OR_PARTITION) leaves the others
// OPERATION_NOT_ATTEMPTED, as Kafka answers; an error of the coordinator
// goes on every partition.
func handleAddPartitionsToTxn(c *conn, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	codes := map[TopicPartition]int16{}
	var parts []TopicPartition
	failed := false
	switch {
	case req.TransactionalID == "":
		failed = true
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				codes[TopicPartition{Topic: t.Topic, Partition: p}] = kerr.InvalidRequest.Code
			}
		}
	case !c.allowed(opWrite, resTransactionalID, req.TransactionalID):
		failed = true
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				codes[TopicPartition{Topic: t.Topic, Partition: p}] = kerr.TransactionalIDAuthorizationFailed.Code
			}
		}
	default:
		for _, t := range req.Topics {
			allowed := c.allowed(opWrite, resTopic, t.Topic)
			info, err := c.s.broker.DescribeTopic(t.Topic)
			for _, p := range t.Partitions {
				tp := TopicPartition{Topic: t.Topic, Partition: p}
				switch {
				case !allowed:
					codes[tp], failed = kerr.TopicAuthorizationFailed.Code, true
				case err != nil || p < 0 || int(p) >= len(info.Partitions):
					codes[tp], failed = kerr.UnknownTopicOrPartition.Code, true
				default:
					parts = append(parts, tp)
				}
			}
		}
	}
	if failed {
		for _, tp := range parts {
			codes[tp] = kerr.OperationNotAttempted.Code
		}
	} else {
		err := c.s.broker.AddTxnPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts)
		code := txnErrorCode(err, req.Version, 2)
		for _, tp := range parts {
			codes[tp] = code
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, codes[TopicPartition{Topic: t.Topic, Partition: p}]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
