package listener

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.ListGroups, 0, 4, handleListGroups) }

// handleListGroups lists the groups with members or committed offsets that
// the client may describe; v4 filters by state (case-insensitively, as
// Kafka does).
func handleListGroups(c *conn, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, name := range c.s.broker.Groups() {
		if !c.allowed(opDescribe, resGroup, name) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType = name, protocolType
		if req.Version >= 4 {
			info, err := c.s.broker.DescribeGroup(name)
			if err != nil {
				continue // gone meanwhile
			}
			g.GroupState = info.State
			if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, info.State) }) {
				continue
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
