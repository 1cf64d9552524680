package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DescribeCluster, 0, 1, handleDescribeCluster) }

// handleDescribeCluster describes the cluster of one broker, node 0, which
// is also its controller (kadm asks this before Metadata).
func handleDescribeCluster(c *conn, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != 1 { // 1: brokers; 2: controllers
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	host, port := c.s.hostPort()
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = nodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	resp.ClusterID, resp.ControllerID = clusterID, nodeID
	return resp, nil
}
