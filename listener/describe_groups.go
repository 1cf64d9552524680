package listener

import (
	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DescribeGroups, 0, 5, handleDescribeGroups) }

// inProcessClient is the client ID and host DescribeGroups gives an
// in-process Consumer.
const inProcessClient = "embedstream"

// handleDescribeGroups describes groups: state, balancer and members, remote
// ones under their Kafka member IDs with the subscription they sent,
// in-process ones under their coordinator IDs with a subscription encoded
// here.
func handleDescribeGroups(c *conn, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = name
		if !c.allowed(opDescribe, resGroup, name) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		info, err := c.s.broker.DescribeGroup(name)
		if err != nil {
			g.ErrorCode = memberErrCode(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.State = info.State
		if info.State != "Dead" {
			g.ProtocolType = protocolType
		}
		if len(info.Members) > 0 {
			g.Protocol = info.Balancer // Kafka names it only while the group has members
		}
		remote := c.s.groups.byCoordinatorID(name)
		for _, mi := range info.Members {
			g.Members = append(g.Members, describeMember(c, mi, remote[mi.ID]))
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// describeMember describes one member; rm is nil for an in-process one.
func describeMember(c *conn, mi stream.MemberInfo, rm *remoteMember) kmsg.DescribeGroupsResponseGroupMember {
	m := kmsg.NewDescribeGroupsResponseGroupMember()
	if mi.InstanceID != "" {
		m.InstanceID = kmsg.StringPtr(mi.InstanceID)
	}
	var version int16
	if rm == nil {
		m.MemberID, m.ClientID, m.ClientHost = mi.ID, inProcessClient, inProcessClient
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = mi.Topics
		m.ProtocolMetadata = meta.AppendTo(nil)
	} else {
		m.MemberID, m.ClientID, m.ClientHost = rm.key.id, rm.clientID, rm.host
		c.s.groups.mu.Lock() // a rejoin rewrites them
		m.ProtocolMetadata, version = rm.metadata, rm.version
		c.s.groups.mu.Unlock()
	}
	m.MemberAssignment = encodeAssignment(version, mi.Assignment)
	return m
}
