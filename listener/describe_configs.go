package listener

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DescribeConfigs, 0, 4, handleDescribeConfigs) }

// handleDescribeConfigs describes topic configs by Kafka's names
// (configs.go) and, for the broker (node 0, or "" for the cluster-wide
// defaults), the broker's settings read-only: its Options as Kafka's
// broker configs.
func handleDescribeConfigs(c *conn, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	opts := c.s.broker.Options()
	docs := req.Version >= 3 && req.IncludeDocumentation
	synonyms := req.Version >= 1 && req.IncludeSynonyms
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			var info stream.TopicInfo
			switch info, err = c.s.broker.DescribeTopic(rr.ResourceName); {
			case !c.allowed(opDescribe, resTopic, rr.ResourceName):
				err = kerr.TopicAuthorizationFailed
			case err == nil:
				r.Configs = describeSettings(info.Config, &opts, rr.ConfigNames, synonyms, docs)
			}
		case kmsg.ConfigResourceTypeBroker:
			switch {
			case !c.allowed(opDescribe, resCluster, clusterName):
				err = kerr.ClusterAuthorizationFailed
			case rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(nodeID):
				err = fmt.Errorf("%w: broker %q: the only broker is %d", kerr.InvalidRequest, rr.ResourceName, nodeID)
			default:
				r.Configs = brokerConfigs(&opts, rr.ConfigNames, docs)
			}
		default:
			err = fmt.Errorf("%w: resource type %v has no configs here", kerr.InvalidRequest, rr.ResourceType)
		}
		r.ErrorCode, r.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

// brokerConfigs describes the broker's settings, all read-only (they are
// Options given to stream.Open): its identity and replication, which one
// broker fixes, and the defaults a topic created without configs gets,
// under Kafka's broker-wide names.
func brokerConfigs(o *stream.Options, names []string, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	type kv struct {
		name, value, doc string
		typ              kmsg.ConfigType
	}
	retention := "-1"
	if o.OffsetsRetention > 0 {
		retention = strconv.FormatInt(int64(o.OffsetsRetention.Minutes()), 10)
	}
	list := []kv{
		{"broker.id", strconv.Itoa(nodeID), "The only broker.", kmsg.ConfigTypeInt},
		{"auto.create.topics.enable", strconv.FormatBool(o.AutoCreateTopics), "Options.AutoCreateTopics.", kmsg.ConfigTypeBoolean},
		{"num.partitions", strconv.Itoa(cmpOrOne(o.DefaultTopic.Partitions)), "Partitions of auto-created topics (Options.DefaultTopic).", kmsg.ConfigTypeInt},
		{"default.replication.factor", "1", "One broker, one replica.", kmsg.ConfigTypeInt},
		{"offsets.topic.replication.factor", "1", "One broker, one replica.", kmsg.ConfigTypeShort},
		{"transaction.state.log.replication.factor", "1", "One broker, one replica.", kmsg.ConfigTypeShort},
		{"offsets.retention.minutes", retention, "Options.OffsetsRetention.", kmsg.ConfigTypeInt},
		{"log.retention.check.interval.ms", strconv.FormatInt(o.RetentionCheckInterval.Milliseconds(), 10), "Options.RetentionCheckInterval.", kmsg.ConfigTypeLong},
	}
	for _, s := range topicSettings {
		if s.broker != "" {
			list = append(list, kv{s.broker, s.get(stream.TopicConfig{}, o), s.doc, s.typ})
		}
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, e := range list {
		if len(names) > 0 && !slices.Contains(names, e.name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ReadOnly, c.ConfigType = e.name, kmsg.StringPtr(e.value), true, e.typ
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		if docs {
			c.Documentation = kmsg.StringPtr(e.doc)
		}
		out = append(out, c)
	}
	return out
}
