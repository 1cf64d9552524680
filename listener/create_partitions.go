package listener

import (
	"errors"
	"fmt"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.CreatePartitions, 0, 3, handleCreatePartitions) }

// handleCreatePartitions grows topics to Count partitions (AddPartitions).
// Manual assignments may name only node 0, the one replica.
func handleCreatePartitions(c *conn, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		err := c.createPartitions(rt, req.ValidateOnly)
		t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func (c *conn) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	if !c.allowed(opAlter, resTopic, rt.Topic) {
		return kerr.TopicAuthorizationFailed
	}
	info, err := c.s.broker.DescribeTopic(rt.Topic)
	if err != nil {
		return err
	}
	have := int32(len(info.Partitions))
	if rt.Count <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; %d would not be an increase", kerr.InvalidPartitions, rt.Topic, have, rt.Count)
	}
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-have {
			return fmt.Errorf("%w: %d assignments for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), rt.Count-have)
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != nodeID {
				return fmt.Errorf("%w: node 0 is the only replica", kerr.InvalidReplicaAssignment)
			}
		}
	}
	if validateOnly {
		return nil
	}
	err = c.s.broker.AddPartitions(rt.Topic, int(rt.Count))
	if errors.Is(err, stream.ErrInvalidConfig) {
		// A count the broker refuses (over its limit): Kafka's code for a
		// bad count, not for a bad config.
		err = fmt.Errorf("%w: %w", kerr.InvalidPartitions, err)
	}
	return err
}
