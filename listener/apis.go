package listener

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one served API: the versions accepted and the handler. A handler
// returns the response to send (its version is set by the caller), nil for
// none (Produce with acks=0), or an error that closes the connection (a
// request the client should never have sent; Kafka's broker does the
// same). Errors a client is meant to handle go in the response's error
// codes.
type api struct {
	min, max int16
	handle   func(c *conn, req kmsg.Request) (kmsg.Response, error)
}

// apis is every API served, by key: what ApiVersions advertises, exactly.
// The minimum versions are kept low on purpose: clients in the field still
// send old ones (kafka-python 2.0 probes with ApiVersions v0, librdkafka
// asks for Metadata v0-4), and Kafka 4 dropping them broke such clients.
// Each handler lives in a file named after its API.
var apis = map[int16]api{}

// serve registers handle for key's versions min..max. Each API's file
// registers itself in its init.
func serve[Req kmsg.Request](key kmsg.Key, min, max int16, handle func(c *conn, req Req) (kmsg.Response, error)) {
	apis[key.Int16()] = api{min: min, max: max, handle: func(c *conn, req kmsg.Request) (kmsg.Response, error) {
		return handle(c, req.(Req))
	}}
}

// apiVersions is the ApiVersions response body listing what is served.
func (s *Server) apiVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	keys := make([]int, 0, len(apis))
	for k := range apis {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for _, k := range keys {
		a := apis[int16(k)]
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = int16(k), a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, v)
	}
	return resp
}
