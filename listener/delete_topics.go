package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DeleteTopics, 0, 6, handleDeleteTopics) }

// handleDeleteTopics deletes topics named (v0-v5), or named or given by
// topic ID (v6+).
func handleDeleteTopics(c *conn, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	if req.Version < 6 {
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		var name string
		if rt.Topic != nil {
			name = *rt.Topic
		} else if info, ok := c.topicByID(rt.TopicID); ok {
			name = info.Name
			t.Topic = kmsg.StringPtr(name)
		} else {
			t.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, t)
			continue
		}
		var err error
		if !c.allowed(opDelete, resTopic, name) {
			err = kerr.TopicAuthorizationFailed
		} else {
			if req.Version >= 6 && rt.Topic != nil {
				if info, ierr := c.s.broker.DescribeTopic(name); ierr == nil {
					t.TopicID = topicID(info)
				}
			}
			err = c.s.broker.DeleteTopic(name)
		}
		t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
