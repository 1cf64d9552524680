package listener

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListenAndServeDefaultsToLoopback(t *testing.T) {
	s := New(openBroker(t, nil), nil)
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe("") }()
	select {
	case err := <-served:
		// Port 9092 taken on this machine: the error still shows where
		// the server meant to listen.
		require.ErrorContains(t, err, DefaultAddr)
		return
	case <-time.After(0):
	}
	require.Eventually(t, func() bool { return s.Addr() != "" }, 10*time.Second, time.Millisecond)
	require.Equal(t, DefaultAddr, s.Addr())
	s.mu.Lock()
	for ln := range s.listeners {
		require.True(t, ln.Addr().(*net.TCPAddr).IP.IsLoopback(), "bound to %v", ln.Addr())
	}
	s.mu.Unlock()
	require.NoError(t, s.Shutdown(context.Background()))
	require.ErrorIs(t, <-served, ErrServerClosed)
}

// Each kind of bad input closes its connection only, with a log line,
// and the server goes on serving others.
func TestBadInputClosesThatConnectionOnly(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, MaxFrameBytes: 1024})
	other := dialRaw(t, s) // a well-behaved client throughout

	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	truncated := encode(hs, 1)
	truncated = frame(truncated[4 : len(truncated)-3]) // mechanism cut short
	unsupported := kmsg.NewPtrSASLHandshakeRequest()
	unsupported.Version = 7
	unknown := encode(kmsg.NewPtrApiVersionsRequest(), 1)
	binary.BigEndian.PutUint16(unknown[4:], 9999)
	badClientID := encode(kmsg.NewPtrApiVersionsRequest(), 1)
	binary.BigEndian.PutUint16(badClientID[12:], uint16(0xfff0)) // length -16

	for _, tc := range []struct {
		name string
		send []byte
		log  string
	}{
		{"frame over MaxFrameBytes", binary.BigEndian.AppendUint32(nil, 1025), "over MaxFrameBytes"},
		{"negative size", binary.BigEndian.AppendUint32(nil, 0xffffffff), "over MaxFrameBytes"},
		{"header too short", frame([]byte{0, 18, 0, 0, 0}), "shorter than a request header"},
		{"client id past the end", frame([]byte{0, 18, 0, 0, 0, 0, 0, 1, 0, 9, 'a'}), "past the frame's end"},
		{"bad client id length", badClientID, "client id length -16"},
		{"truncated body", truncated, "malformed request: SASLHandshake v1"},
		{"unknown key", unknown, "API key 9999"},
		{"unsupported version", encode(unsupported, 1), "SASLHandshake) version 7 is not served"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, s)
			rc.write(tc.send)
			rc.requireClosed()
			requireLogged(t, lb, "listener: connection closed", tc.log)
			require.Zero(t, other.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse).ErrorCode)
		})
	}
	// An unsupported ApiVersions version is answered (KIP-511), not closed.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 99
	rc := dialRaw(t, s)
	rc.write(encode(av, 5))
	resp, err := rc.readFrame()
	require.NoError(t, err)
	v0 := kmsg.NewPtrApiVersionsResponse()
	require.NoError(t, v0.ReadFrom(resp[4:]))
	require.Equal(t, int16(35), v0.ErrorCode) // UNSUPPORTED_VERSION
}

func TestSlowAndIdleClientsAreDisconnected(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, ReadTimeout: 100 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	// A request that trickles in: its size, then part of it, then nothing.
	slow := dialRaw(t, s)
	req := encode(kmsg.NewPtrApiVersionsRequest(), 1)
	slow.write(req[:8])
	// Idle: connected, sends nothing.
	idle := dialRaw(t, s)
	start := time.Now()
	slow.requireClosed()
	requireLogged(t, lb, "listener: connection closed", "not received within 100ms (ReadTimeout)")
	idle.requireClosed()
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	requireLogged(t, lb, "listener: connection closed", "idle for 300ms (IdleTimeout)")
	requireServing(t, s)
}

func TestMaxConnections(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, MaxConnections: 2})
	first, second := dialRaw(t, s), dialRaw(t, s)
	for _, rc := range []*rawConn{first, second} { // both served, so counted
		require.Zero(t, rc.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse).ErrorCode)
	}
	third := dialRaw(t, s)
	third.send(kmsg.NewPtrApiVersionsRequest())
	third.requireClosed()
	requireLogged(t, lb, "too many connections", "open=2")
	require.Zero(t, second.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse).ErrorCode)

	// Once one closes, a new connection is served.
	first.nc.Close()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	}, 10*time.Second, time.Millisecond)
	requireServing(t, s)
}

// A client that sends requests and never reads the answers is cut off by
// WriteTimeout instead of holding its connection forever.
func TestClientNotReadingIsDisconnected(t *testing.T) {
	log, lb := newLogger()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := New(openBroker(t, nil), &Options{Logger: log, WriteTimeout: 100 * time.Millisecond, MaxInFlight: 1, AdvertisedAddr: ln.Addr().String()})
	served := make(chan error, 1)
	go func() { served <- s.Serve(smallBuffers{ln}) }()
	defer func() {
		require.NoError(t, s.Shutdown(context.Background()))
		require.ErrorIs(t, <-served, ErrServerClosed)
	}()
	rc := dialRaw(t, s)
	rc.nc.(*net.TCPConn).SetReadBuffer(4096)
	// ApiVersions answers are a few hundred bytes: enough of them fill
	// both sockets' buffers. Write until the server gives up on us.
	req := encode(kmsg.NewPtrApiVersionsRequest(), 1)
	batch := []byte(strings.Repeat(string(req), 256))
	writing := make(chan error, 1)
	go func() {
		for {
			if _, err := rc.nc.Write(batch); err != nil {
				writing <- err
				return
			}
		}
	}()
	requireLogged(t, lb, "listener: connection closed", "writing a response")
	rc.nc.Close() // if the server's close has not stopped the writes yet
	require.Error(t, <-writing)
	requireServing(t, s)
}

// smallBuffers gives the server's sockets small send buffers, so that a
// client not reading fills them after a few responses.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return nc, err
}

// Shutdown ends connections waiting for their next request at once, even
// one between two requests when it begins.
func TestShutdownEndsIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := New(openBroker(t, nil), &Options{IdleTimeout: time.Hour, AdvertisedAddr: ln.Addr().String()})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	var conns []*rawConn
	for range 8 {
		rc := dialRaw(t, s)
		require.Zero(t, rc.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse).ErrorCode)
		conns = append(conns, rc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.ErrorIs(t, <-served, ErrServerClosed)
	for _, rc := range conns {
		rc.requireClosed()
	}
}
