package listener

import (
	"errors"
	"fmt"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce v3 is the first with record batch v2 (magic 2), the only format
// stored; v7 is what librdkafka needs advertised before it sends zstd.
func init() { serve(kmsg.Produce, 3, 9, handleProduce) }

// Offsets of the record batch header fields a Produce handler peeks at.
const (
	batchAttributesAt = 21 + 1 // the low byte of attributes
	batchHeaderSize   = 61
	codecZstd         = 4
)

// handleProduce appends each partition's records through the broker's
// accept path (stream.Broker.AppendBatches), transactional batches
// included: INVALID_TXN_STATE for a partition the producer's transaction
// did not add (AddPartitionsToTxn), INVALID_PRODUCER_EPOCH from a fenced
// instance, INVALID_RECORD with record_errors for records without a key on
// a compacted topic. acks=0 gets no response; acks
// 1 and -1 both answer once the append returns, which is as durable as the
// topic's SyncPolicy makes it (see the package doc).
func handleProduce(c *conn, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	// A transactional producer needs write permission on its ID, as in
	// Kafka; its batches are checked against its transaction by
	// AppendBatches.
	txnDenied := req.TransactionID != nil && *req.TransactionID != "" &&
		!c.allowed(opWrite, resTransactionalID, *req.TransactionID)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		allowed := c.allowed(opWrite, resTopic, rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case txnDenied:
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			case req.Version < 7 && len(rp.Records) >= batchHeaderSize && rp.Records[batchAttributesAt]&0x07 == codecZstd:
				// Kafka's rule: a client that can send zstd asks for v7+.
				sp.ErrorCode = kerr.UnsupportedCompressionType.Code
			default:
				c.produce(rt.Topic, rp, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		// No answer, but not silence on failure: Kafka closes the
		// connection, so the client notices and refreshes its metadata.
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return nil, fmt.Errorf("acks=0 produce to %s/%d failed: %v", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
			}
		}
		return nil, nil
	}
	return resp, nil
}

// produce appends one partition's records and fills in its answer.
func (c *conn) produce(topic string, rp *kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition) {
	res, err := c.s.broker.AppendBatches(topic, rp.Partition, rp.Records)
	if err != nil {
		// A transactional batch of a fenced instance: Kafka refuses a
		// batch of an old epoch with INVALID_PRODUCER_EPOCH.
		code := txnErrorCode(err, 0, 1)
		if code == kerr.UnknownServerError.Code {
			c.s.log.Error("listener: produce failed", "topic", topic, "partition", rp.Partition, "remote", c.remote, "err", err)
		}
		sp.ErrorCode = code
		sp.ErrorMessage = kmsg.StringPtr(err.Error())
		var re *stream.RecordError
		if errors.As(err, &re) {
			// Kafka's record_errors (KIP-467, Produce v8+): each refused
			// record by its index in the batch, with why.
			msg := re.Err.Error()
			for _, i := range re.Records {
				er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
				er.RelativeOffset, er.ErrorMessage = int32(i), &msg
				sp.ErrorRecords = append(sp.ErrorRecords, er)
			}
		}
		return
	}
	sp.BaseOffset, sp.LogStartOffset = res.BaseOffset, res.LogStartOffset
	if !res.LogAppendTime.IsZero() {
		sp.LogAppendTime = res.LogAppendTime.UnixMilli()
	}
}
