package listener

import (
	"errors"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Up to v4: v5 is the KIP-890 part 2 form (the group added implicitly),
// which clients use only once transaction.version 2 is advertised.
func init() { serve(kmsg.TxnOffsetCommit, 0, 4, handleTxnOffsetCommit) }

// handleTxnOffsetCommit stages a group's offsets with the producer's
// transaction (stream.Broker.TxnCommitOffsets): they are committed with
// it, in the same durable step, or dropped when it aborts. From v3 a
// member names itself (KIP-447): it must be the group's member
// (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) in the generation of its last
// JoinGroup (ILLEGAL_GENERATION), and the coordinator checks again at the
// commit that it still holds the partitions, so a member the group moved
// on without cannot commit through a transaction. A request naming no
// member (v0-2, or generation -1 and no member ID) is not checked, as
// Kafka does not. As OffsetCommit's, the offsets are stored together or
// not at all: every partition gets the same code.
func handleTxnOffsetCommit(c *conn, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	codes := map[TopicPartition]int16{}
	offsets := map[TopicPartition]int64{}
	var all int16
	switch {
	case req.TransactionalID == "":
		all = kerr.InvalidRequest.Code
	case !c.allowed(opWrite, resTransactionalID, req.TransactionalID):
		all = kerr.TransactionalIDAuthorizationFailed.Code
	case !c.allowed(opRead, resGroup, req.Group):
		all = kerr.GroupAuthorizationFailed.Code
	case req.Group == "":
		all = kerr.InvalidGroupID.Code
	}
	for _, t := range req.Topics {
		topicOK := c.allowed(opRead, resTopic, t.Topic)
		for _, p := range t.Partitions {
			tp := TopicPartition{Topic: t.Topic, Partition: p.Partition}
			switch {
			case all != 0:
				codes[tp] = all
			case !topicOK:
				codes[tp] = kerr.TopicAuthorizationFailed.Code
			default:
				offsets[tp] = p.Offset
			}
		}
	}
	if len(offsets) > 0 {
		code := c.txnCommit(req, offsets)
		for tp := range offsets {
			codes[tp] = code
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[TopicPartition{Topic: t.Topic, Partition: p.Partition}]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// txnCommit stages offsets for req's member (or for nobody) and returns
// the code for all of them.
func (c *conn) txnCommit(req *kmsg.TxnOffsetCommitRequest, offsets map[TopicPartition]int64) int16 {
	memberID, gen := "", -1
	if req.Version >= 3 && (req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil) {
		rm, code := c.lookupMember(req.Group, req.MemberID, req.InstanceID)
		if code != 0 {
			return code
		}
		rm.alive(c.s)
		c.s.groups.mu.Lock()
		joined := rm.gen
		c.s.groups.mu.Unlock()
		if int(req.Generation) != joined {
			return kerr.IllegalGeneration.Code
		}
		// The coordinator's generation is that of the member's last
		// acknowledged assignment (see OffsetCommit).
		_, owned, err := rm.gm.Owned()
		if err != nil {
			return memberErrCode(err)
		}
		memberID, gen = rm.gm.ID(), owned
	}
	err := c.s.broker.TxnCommitOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, memberID, gen, offsets)
	if errors.Is(err, stream.ErrFenced) {
		// The member was checked above: the producer is the one fenced.
		// Kafka answers it with INVALID_PRODUCER_EPOCH whatever the version.
		return kerr.InvalidProducerEpoch.Code
	}
	return memberErrCode(err)
}
