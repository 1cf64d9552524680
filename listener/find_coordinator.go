package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.FindCoordinator, 0, 4, handleFindCoordinator) }

// Coordinator key types (FindCoordinator v1+).
const (
	keyGroup       = 0
	keyTransaction = 1
)

// handleFindCoordinator names the one broker, node 0, as every group's
// and every transactional ID's coordinator.
func handleFindCoordinator(c *conn, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := c.s.hostPort()
	find := func(key string) (code int16, msg string) {
		switch {
		case req.CoordinatorType == keyTransaction:
			if !c.allowed(opDescribe, resTransactionalID, key) {
				return kerr.TransactionalIDAuthorizationFailed.Code, ""
			}
			return 0, ""
		case req.CoordinatorType != keyGroup:
			return kerr.InvalidRequest.Code, "unknown coordinator key type"
		case !c.allowed(opDescribe, resGroup, key):
			return kerr.GroupAuthorizationFailed.Code, ""
		}
		return 0, ""
	}
	if req.Version < 4 {
		code, msg := find(req.CoordinatorKey)
		resp.ErrorCode = code
		if code != 0 {
			resp.NodeID, resp.Port = -1, -1
			if msg != "" {
				resp.ErrorMessage = kmsg.StringPtr(msg)
			}
			return resp, nil
		}
		resp.NodeID, resp.Host, resp.Port = 0, host, port
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key = key
		code, msg := find(key)
		co.ErrorCode = code
		if code != 0 {
			co.NodeID, co.Port = -1, -1
			if msg != "" {
				co.ErrorMessage = kmsg.StringPtr(msg)
			}
		} else {
			co.NodeID, co.Host, co.Port = 0, host, port
		}
		resp.Coordinators = append(resp.Coordinators, co)
	}
	return resp, nil
}
