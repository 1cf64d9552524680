package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.OffsetCommit, 0, 8, handleOffsetCommit) }

// handleOffsetCommit stores a group's offsets in the broker's one store of
// committed offsets, which in-process Consumers read and write too. A
// member's commit is checked by the coordinator (current generation, owns
// every partition); one with generation -1 and no member ID (assign-mode
// clients, kcat) is stored only while the group has no members. Offsets
// are stored together or not at all, so every partition gets the same
// code. Metadata strings are not kept: the store holds offsets only.
func handleOffsetCommit(c *conn, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := map[TopicPartition]int16{}
	offsets := map[TopicPartition]int64{}
	groupOK := c.allowed(opRead, resGroup, req.Group)
	for _, t := range req.Topics {
		topicOK := c.allowed(opRead, resTopic, t.Topic)
		for _, p := range t.Partitions {
			tp := TopicPartition{Topic: t.Topic, Partition: p.Partition}
			switch {
			case !groupOK:
				codes[tp] = kerr.GroupAuthorizationFailed.Code
			case !topicOK:
				codes[tp] = kerr.TopicAuthorizationFailed.Code
			default:
				offsets[tp] = p.Offset
			}
		}
	}
	if len(offsets) > 0 {
		code := c.commit(req, offsets)
		for tp := range offsets {
			codes[tp] = code
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes[TopicPartition{Topic: t.Topic, Partition: p.Partition}]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// commit stores offsets for req's member, or for nobody (generation -1,
// or v0, which has neither), and returns the error code for all of them.
func (c *conn) commit(req *kmsg.OffsetCommitRequest, offsets map[TopicPartition]int64) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	if req.Version == 0 || req.Generation < 0 && req.MemberID == "" {
		err := c.s.broker.SetCommittedOffsets(req.Group, offsets)
		if code := memberErrCode(err); code != kerr.NonEmptyGroup.Code {
			return code
		}
		// Kafka: the group has members, and this is not one of them.
		return kerr.UnknownMemberID.Code
	}
	rm, code := c.lookupMember(req.Group, req.MemberID, req.InstanceID)
	if code != 0 {
		return code
	}
	rm.alive(c.s)
	c.s.groups.mu.Lock()
	gen, syncing := rm.gen, rm.pending != nil
	c.s.groups.mu.Unlock()
	switch {
	case int(req.Generation) != gen:
		return kerr.IllegalGeneration.Code
	case syncing:
		// Joined but not synced: Kafka's CompletingRebalance.
		return kerr.RebalanceInProgress.Code
	}
	// The coordinator checks the generation of the member's last
	// acknowledged assignment: during a cooperative revoke (see groups.go)
	// it is older than the member's JoinGroup's, and the partitions being
	// revoked are still the member's to commit.
	_, owned, err := rm.gm.Owned()
	if err != nil {
		return memberErrCode(err)
	}
	return memberErrCode(rm.gm.Commit(owned, offsets))
}
