package listener

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.OffsetFetch, 0, 8, handleOffsetFetch) }

// handleOffsetFetch returns committed offsets, -1 for partitions never
// committed, and every committed partition when the request names no
// topics (null). v8 asks for several groups. RequireStable (v7+) never
// gets UNSTABLE_OFFSET_COMMIT: offsets staged by a transaction
// (TxnOffsetCommit) are not visible before it commits, and a commit
// rechecks that the staging member still holds the partitions, so the
// answer cannot be overtaken by the commit of a member that lost them.
func handleOffsetFetch(c *conn, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []fetchTopic
		if req.Topics != nil {
			topics = []fetchTopic{}
			for _, t := range req.Topics {
				topics = append(topics, fetchTopic{t.Topic, t.Partitions})
			}
		}
		g := c.fetchOffsets(req.Group, topics)
		resp.ErrorCode = g.ErrorCode
		if req.Version < 2 && g.ErrorCode != 0 {
			// No top-level code before v2: the error goes on every
			// partition asked for, or a client reads "nothing committed"
			// and resets its position.
			g.Topics = nil
			for _, t := range topics {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.topic
				for _, p := range t.partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset = p, -1
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
		}
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				if req.Version < 2 && g.ErrorCode != 0 {
					rp.ErrorCode = g.ErrorCode // no top-level code before v2
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, rg := range req.Groups {
		var topics []fetchTopic
		if rg.Topics != nil {
			topics = []fetchTopic{}
			for _, t := range rg.Topics {
				topics = append(topics, fetchTopic{t.Topic, t.Partitions})
			}
		}
		resp.Groups = append(resp.Groups, c.fetchOffsets(rg.Group, topics))
	}
	return resp, nil
}

// fetchTopic is a topic and partitions an OffsetFetch names.
type fetchTopic struct {
	topic      string
	partitions []int32
}

// fetchOffsets answers one group's part of an OffsetFetch; topics nil
// means every committed partition the client may read.
func (c *conn) fetchOffsets(groupName string, topics []fetchTopic) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group = groupName
	if !c.allowed(opRead, resGroup, groupName) {
		g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return g
	}
	committed, err := c.s.broker.CommittedOffsets(groupName)
	if err != nil {
		g.ErrorCode = memberErrCode(err)
		return g
	}
	if topics == nil {
		byTopic := map[string][]int32{}
		for tp := range committed {
			if c.allowed(opDescribe, resTopic, tp.Topic) {
				byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
			}
		}
		for _, t := range slices.Sorted(maps.Keys(byTopic)) {
			topics = append(topics, fetchTopic{t, slices.Sorted(slices.Values(byTopic[t]))})
		}
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.topic
		allowed := c.allowed(opDescribe, resTopic, t.topic)
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.Metadata = p, -1, kmsg.StringPtr("")
			if off, ok := committed[TopicPartition{Topic: t.topic, Partition: p}]; ok && allowed {
				rp.Offset = off
			}
			if !allowed {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		g.Topics = append(g.Topics, rt)
	}
	return g
}
