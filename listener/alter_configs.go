package listener

import (
	"fmt"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	serve(kmsg.AlterConfigs, 0, 2, handleAlterConfigs)
	serve(kmsg.IncrementalAlterConfigs, 0, 1, handleIncrementalAlterConfigs)
}

// handleAlterConfigs replaces a topic's configs (Kafka's legacy
// AlterConfigs): those named take the values given, every other one its
// default. Broker configs are read-only.
func handleAlterConfigs(c *conn, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		changes := make([]configChange, 0, len(topicSettings))
		named := make(map[string]bool, len(rr.Configs))
		for _, kv := range rr.Configs {
			changes = append(changes, configChange{name: kv.Name, value: kv.Value})
			named[kv.Name] = true
		}
		for _, s := range topicSettings {
			if !named[s.name] {
				changes = append(changes, configChange{name: s.name})
			}
		}
		err := c.alterConfigs(rr.ResourceType, rr.ResourceName, changes, req.ValidateOnly)
		r := kmsg.NewAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		r.ErrorCode, r.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

// handleIncrementalAlterConfigs sets (SET) or resets to the default
// (DELETE) the topic configs named, leaving the others. APPEND and
// SUBTRACT add values to or remove them from a list config (cleanup.policy
// is the only one), as in Kafka; on other configs they are INVALID_CONFIG.
func handleIncrementalAlterConfigs(c *conn, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		changes := make([]configChange, 0, len(rr.Configs))
		var err error
		for _, kv := range rr.Configs {
			switch kv.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if kv.Value == nil {
					err = fmt.Errorf("%w: %s: SET without a value", kerr.InvalidRequest, kv.Name)
				}
				changes = append(changes, configChange{name: kv.Name, value: kv.Value})
			case kmsg.IncrementalAlterConfigOpDelete:
				changes = append(changes, configChange{name: kv.Name})
			case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
				if kv.Value == nil {
					err = fmt.Errorf("%w: %s: %v without a value", kerr.InvalidRequest, kv.Name, kv.Op)
				}
				changes = append(changes, configChange{name: kv.Name, value: kv.Value, op: kv.Op})
			default:
				err = fmt.Errorf("%w: %s: operation %v", kerr.InvalidRequest, kv.Name, kv.Op)
			}
		}
		if err == nil {
			err = c.alterConfigs(rr.ResourceType, rr.ResourceName, changes, req.ValidateOnly)
		}
		r := kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		r.ErrorCode, r.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

// alterConfigs applies changes to a topic's config through AlterTopic,
// all or nothing.
func (c *conn) alterConfigs(typ kmsg.ConfigResourceType, name string, changes []configChange, validateOnly bool) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		if !c.allowed(opAlter, resCluster, clusterName) {
			return kerr.ClusterAuthorizationFailed
		}
		return fmt.Errorf("%w: broker configs are read-only (they are the Broker's Options)", kerr.InvalidRequest)
	default:
		return fmt.Errorf("%w: resource type %v has no configs here", kerr.InvalidRequest, typ)
	}
	if !c.allowed(opAlter, resTopic, name) {
		return kerr.TopicAuthorizationFailed
	}
	// Check first, so that a bad value is reported as such before
	// anything is stored; AlterTopic applies the same changes again to
	// the config it holds then.
	info, err := c.s.broker.DescribeTopic(name)
	if err != nil {
		return err
	}
	trial := info.Config
	if err := applySettings(&trial, changes); err != nil {
		return err
	}
	if err := trial.Validate(); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	var applyErr error
	err = c.s.broker.AlterTopic(name, func(cfg *stream.TopicConfig) {
		next := *cfg
		// An error here means the topic changed since the check (a
		// codec altered meanwhile): keep its config and report it.
		if applyErr = applySettings(&next, changes); applyErr == nil {
			*cfg = next
		}
	})
	if err == nil {
		err = applyErr
	}
	return err
}
