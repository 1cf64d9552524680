package listener

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { serve(kmsg.ApiVersions, 0, 3, handleApiVersions) }

// handleApiVersions lists the APIs and versions served (KIP-511 for v3's
// client software fields, which are only informational here).
func handleApiVersions(c *conn, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	return c.s.apiVersions(), nil
}
