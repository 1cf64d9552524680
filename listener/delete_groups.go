package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DeleteGroups, 0, 2, handleDeleteGroups) }

// handleDeleteGroups drops groups and their committed offsets: refused
// with NON_EMPTY_GROUP while a group has members, GROUP_ID_NOT_FOUND for
// one the broker does not know.
func handleDeleteGroups(c *conn, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		switch info, err := c.s.broker.DescribeGroup(name); {
		case !c.allowed(opDelete, resGroup, name):
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case err != nil:
			g.ErrorCode = memberErrCode(err)
		case info.State == "Dead":
			g.ErrorCode = kerr.GroupIDNotFound.Code
		default:
			g.ErrorCode = memberErrCode(c.s.broker.DeleteGroup(name))
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
