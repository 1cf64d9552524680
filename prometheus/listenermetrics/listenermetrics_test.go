package listenermetrics

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener"
)

// serve starts a listener of a fresh broker on a loopback port, shut down
// at the test's end.
func serve(t *testing.T) *listener.Server {
	t.Helper()
	b, err := stream.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := listener.New(b, &listener.Options{AdvertisedAddr: ln.Addr().String()})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.ErrorIs(t, <-served, listener.ErrServerClosed)
	})
	return s
}

// apiVersions sends an ApiVersions v0 request on nc and reads its answer.
func apiVersions(t *testing.T, nc net.Conn) {
	t.Helper()
	req := make([]byte, 14)
	binary.BigEndian.PutUint32(req, 10)
	binary.BigEndian.PutUint16(req[4:], 18) // ApiVersions
	binary.BigEndian.PutUint16(req[6:], 0)  // v0
	binary.BigEndian.PutUint32(req[8:], 1)  // correlation id
	binary.BigEndian.PutUint16(req[12:], 0xffff)
	_, err := nc.Write(req)
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	var size [4]byte
	_, err = io.ReadFull(nc, size[:])
	require.NoError(t, err)
	_, err = io.ReadFull(nc, make([]byte, binary.BigEndian.Uint32(size[:])))
	require.NoError(t, err)
}

func TestCollector(t *testing.T) {
	s := serve(t)
	c := NewCollector(s)
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer nc.Close()
	apiVersions(t, nc)
	apiVersions(t, nc)

	const want = `
# HELP embedstream_listener_connections Kafka client connections being served now.
# TYPE embedstream_listener_connections gauge
embedstream_listener_connections 1
# HELP embedstream_listener_connections_accepted_total Kafka client connections accepted and served.
# TYPE embedstream_listener_connections_accepted_total counter
embedstream_listener_connections_accepted_total 1
# HELP embedstream_listener_connections_refused_total Kafka client connections closed at once: over MaxConnections, or during shutdown.
# TYPE embedstream_listener_connections_refused_total counter
embedstream_listener_connections_refused_total 0
# HELP embedstream_listener_unsupported_requests_total Requests for an API or version the listener does not serve (each closed its connection).
# TYPE embedstream_listener_unsupported_requests_total counter
embedstream_listener_unsupported_requests_total 0
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want),
		"embedstream_listener_connections", "embedstream_listener_connections_accepted_total",
		"embedstream_listener_connections_refused_total", "embedstream_listener_unsupported_requests_total"))

	// Every served API has its two series from the start.
	apis := len(s.Stats().Requests)
	require.Greater(t, apis, 20)
	require.Equal(t, 4+2*apis, testutil.CollectAndCount(c))
	require.Equal(t, apis, testutil.CollectAndCount(c, "embedstream_listener_requests_total"))
	out, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, "embedstream_listener_requests_total", "embedstream_listener_request_errors_total")
	require.NoError(t, err)
	require.Contains(t, string(out), `embedstream_listener_requests_total{api="ApiVersions"} 2`+"\n")
	require.Contains(t, string(out), `embedstream_listener_requests_total{api="Produce"} 0`+"\n")
	require.Contains(t, string(out), `embedstream_listener_request_errors_total{api="ApiVersions"} 0`+"\n")

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)

	// Shut down: the counters stay, no connection is open.
	require.NoError(t, s.Shutdown(t.Context()))
	const after = `
# HELP embedstream_listener_connections Kafka client connections being served now.
# TYPE embedstream_listener_connections gauge
embedstream_listener_connections 0
# HELP embedstream_listener_connections_accepted_total Kafka client connections accepted and served.
# TYPE embedstream_listener_connections_accepted_total counter
embedstream_listener_connections_accepted_total 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(after),
		"embedstream_listener_connections", "embedstream_listener_connections_accepted_total"))
}
