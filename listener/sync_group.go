package listener

import (
	"github.com/embedstream/stream/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.SyncGroup, 0, 5, handleSyncGroup) }

// handleSyncGroup delivers the assignment the member's JoinGroup answer
// stands for, and acknowledges it to the coordinator. Assignments a client
// sends are ignored: no client is the leader (see groups.go).
func handleSyncGroup(c *conn, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) (kmsg.Response, error) { resp.ErrorCode = code; return resp, nil }
	if !c.allowed(opRead, resGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed.Code)
	}
	rm, code := c.lookupMember(req.Group, req.MemberID, req.InstanceID)
	if code != 0 {
		return fail(code)
	}
	rm.alive(c.s)
	if req.ProtocolType != nil && *req.ProtocolType != protocolType ||
		req.Protocol != nil && *req.Protocol != rm.protocol {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	c.s.groups.mu.Lock()
	gen, parts, pending, version := rm.gen, rm.assignment, rm.pending, rm.version
	c.s.groups.mu.Unlock()
	if int(req.Generation) != gen {
		return fail(kerr.IllegalGeneration.Code)
	}
	if state, current := rm.gm.State(); state == group.PreparingRebalance || current != gen {
		// Another rebalance began since the JoinGroup: nothing was
		// acknowledged, the client rejoins.
		return fail(kerr.RebalanceInProgress.Code)
	}
	if pending != nil {
		rm.gm.Ack(*pending)
		c.s.groups.mu.Lock()
		if rm.pending == pending {
			rm.pending = nil
		}
		c.s.groups.mu.Unlock()
	}
	resp.ProtocolType = kmsg.StringPtr(protocolType)
	resp.Protocol = kmsg.StringPtr(rm.protocol)
	resp.MemberAssignment = encodeAssignment(version, parts)
	return resp, nil
}
