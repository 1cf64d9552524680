package listener

import (
	"time"

	"github.com/embedstream/stream/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.Heartbeat, 0, 4, handleHeartbeat) }

// handleHeartbeat keeps a member alive and tells it of a rebalance
// (REBALANCE_IN_PROGRESS: it must rejoin).
func handleHeartbeat(c *conn, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !c.allowed(opRead, resGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	rm, code := c.lookupMember(req.Group, req.MemberID, req.InstanceID)
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	resp.ErrorCode = c.memberStatus(rm, int(req.Generation))
	rm.alive(c.s)
	return resp, nil
}

// memberStatus checks a member's generation against its last JoinGroup and
// the group: ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS (noting when the
// member first heard of the rebalance), or 0.
func (c *conn) memberStatus(rm *remoteMember, gen int) int16 {
	state, current := rm.gm.State()
	c.s.groups.mu.Lock()
	defer c.s.groups.mu.Unlock()
	switch {
	case gen != rm.gen:
		return kerr.IllegalGeneration.Code
	case state == group.PreparingRebalance || current != rm.gen:
		if rm.rebalance.IsZero() {
			rm.rebalance = time.Now()
		}
		return kerr.RebalanceInProgress.Code
	}
	rm.rebalance = time.Time{}
	return 0
}
