package listener

import (
	"fmt"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.CreateTopics, 0, 7, handleCreateTopics) }

// clusterName is the name of the one cluster resource, for ACLs.
const clusterName = "kafka-cluster"

// handleCreateTopics creates topics with the configs given by Kafka's
// names (configs.go). The broker is the only replica: a replication
// factor other than 1 (or -1, the default) is INVALID_REPLICATION_FACTOR,
// and manual assignments may name only node 0. NumPartitions -1 takes
// the broker's num.partitions: Options.DefaultTopic's count, else 1.
// ValidateOnly checks everything CreateTopic would and creates nothing.
func handleCreateTopics(c *conn, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	opts := c.s.broker.Options()
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		cfg, err := createConfig(rt, &opts)
		switch {
		case seen[rt.Topic] > 1:
			// Kafka refuses every copy of a topic named twice.
			err = fmt.Errorf("%w: topic %q is named more than once", kerr.InvalidRequest, rt.Topic)
		case !c.allowed(opCreate, resCluster, clusterName) && !c.allowed(opCreate, resTopic, rt.Topic):
			err = kerr.TopicAuthorizationFailed
		case err != nil:
		case req.ValidateOnly:
			err = c.s.broker.CheckCreateTopic(rt.Topic, cfg)
		default:
			err = c.s.broker.CreateTopic(rt.Topic, cfg)
		}
		t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
		if err == nil {
			t.NumPartitions, t.ReplicationFactor = int32(cmpOrOne(cfg.Partitions)), 1
			t.Configs = createdConfigs(cfg, &opts)
			if info, err := c.s.broker.DescribeTopic(rt.Topic); err == nil && !req.ValidateOnly {
				t.TopicID = topicID(info)
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// createConfig is the TopicConfig a CreateTopics topic asks for.
func createConfig(rt kmsg.CreateTopicsRequestTopic, opts *stream.Options) (stream.TopicConfig, error) {
	var cfg stream.TopicConfig
	switch {
	case rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 && len(rt.ReplicaAssignment) == 0:
		return cfg, fmt.Errorf("%w: replication factor %d: this broker is the only replica (want 1 or -1)", kerr.InvalidReplicationFactor, rt.ReplicationFactor)
	case len(rt.ReplicaAssignment) > 0:
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return cfg, fmt.Errorf("%w: a replica assignment goes with -1 partitions and replication factor", kerr.InvalidRequest)
		}
		for _, a := range rt.ReplicaAssignment {
			if a.Partition != int32(cfg.Partitions) || len(a.Replicas) != 1 || a.Replicas[0] != nodeID {
				return cfg, fmt.Errorf("%w: partitions must be numbered from 0 with node 0 their only replica", kerr.InvalidReplicaAssignment)
			}
			cfg.Partitions++
		}
	case rt.NumPartitions == -1:
		cfg.Partitions = cmpOrOne(opts.DefaultTopic.Partitions)
	case rt.NumPartitions < 1:
		return cfg, fmt.Errorf("%w: %d partitions", kerr.InvalidPartitions, rt.NumPartitions)
	default:
		cfg.Partitions = int(rt.NumPartitions)
	}
	changes := make([]configChange, 0, len(rt.Configs))
	for _, kv := range rt.Configs {
		changes = append(changes, configChange{name: kv.Name, value: kv.Value})
	}
	return cfg, applySettings(&cfg, changes)
}

func cmpOrOne(n int) int {
	if n <= 0 {
		return 1
	}
	return n
}
