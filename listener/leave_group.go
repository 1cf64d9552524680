package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.LeaveGroup, 0, 4, handleLeaveGroup) }

// handleLeaveGroup takes members out of their group: the others rebalance
// at once. v3+ names several members, by member ID or, with an empty one,
// by instance ID (KIP-345's admin removal).
func handleLeaveGroup(c *conn, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !c.allowed(opRead, resGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = c.leave(req.Group, req.MemberID, nil)
		return resp, nil
	}
	for _, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = c.leave(req.Group, m.MemberID, m.InstanceID)
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

// leave takes one member out of a group, or says why not.
func (c *conn) leave(groupName, id string, instanceID *string) int16 {
	if id == "" && instanceID != nil && *instanceID != "" {
		rm := c.s.groups.byInstanceID(groupName, *instanceID)
		if rm == nil {
			return kerr.UnknownMemberID.Code
		}
		id = rm.key.id
	}
	rm, code := c.lookupMember(groupName, id, instanceID)
	if code != 0 {
		return code
	}
	rm.gm.Leave()
	c.s.groups.drop(rm)
	return 0
}
