package listener

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A test-only API through which tests ask the server for an authorization
// decision: DescribeACLs, which the package does not serve, answers
// whether the connection may perform the filter's operation on its
// resource (no error, or CLUSTER_AUTHORIZATION_FAILED). If the package
// ever serves DescribeACLs, move this probe to another unserved key.
func init() { serve(kmsg.DescribeACLs, 0, 3, handleTestAuthorize) }

func handleTestAuthorize(c *conn, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	var name string
	if req.ResourceName != nil {
		name = *req.ResourceName
	}
	op := Operation(req.Operation - kmsg.ACLOperationRead)
	res := ResourceType(req.ResourceType - kmsg.ACLResourceTypeTopic)
	if !c.allowed(op, res, name) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	return resp, nil
}

// authorizeReq is the probe's request: may I perform op on res's name?
func authorizeReq(op Operation, res ResourceType, name string) *kmsg.DescribeACLsRequest {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.Operation = kmsg.ACLOperation(op) + kmsg.ACLOperationRead
	req.ResourceType = kmsg.ACLResourceType(res) + kmsg.ACLResourceTypeTopic
	req.ResourceName = &name
	return req
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newLogger returns a logger writing into the returned buffer.
func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// requireLogged waits until the log holds every one of parts on one line.
func requireLogged(t *testing.T, lb *logBuffer, parts ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(lb.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no log line with %q in:\n%s", parts, lb)
}

// selfSignedTLS returns a server config with a certificate for 127.0.0.1,
// made now, and a client config trusting it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "embedstream test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// rawConn is a hand-driven client connection, for what no real client
// sends.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, s *Server) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// write sends bytes as they are.
func (rc *rawConn) write(b []byte) {
	rc.t.Helper()
	_, err := rc.nc.Write(b)
	require.NoError(rc.t, err)
}

// encode is req as a frame, with a size and a header.
func encode(req kmsg.Request, corr int32) []byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))
	return f.AppendRequest(nil, req, corr)
}

// send sends req and returns the frame of its response.
func (rc *rawConn) send(req kmsg.Request) {
	rc.t.Helper()
	rc.corr++
	rc.write(encode(req, rc.corr))
}

// readFrame reads one size-prefixed frame.
func (rc *rawConn) readFrame() ([]byte, error) {
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(rc.r, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(rc.r, b)
	return b, err
}

// roundTrip sends req and decodes its response.
func (rc *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	rc.send(req)
	frame, err := rc.readFrame()
	require.NoError(rc.t, err)
	require.Equal(rc.t, rc.corr, int32(binary.BigEndian.Uint32(frame)))
	body := frame[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body, err = skipTags(body)
		require.NoError(rc.t, err)
	}
	require.NoError(rc.t, resp.ReadFrom(body))
	return resp
}

// requireClosed waits for the server to close the connection, with
// nothing more sent.
func (rc *rawConn) requireClosed() {
	rc.t.Helper()
	_, err := rc.readFrame()
	require.Error(rc.t, err)
	var ne net.Error
	require.False(rc.t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection: %v", err)
}

// requireServing checks that s answers a new connection.
func requireServing(t *testing.T, s *Server) {
	t.Helper()
	rc := dialRaw(t, s)
	resp := rc.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	require.Zero(t, resp.ErrorCode)
	rc.nc.Close()
}

func (l *logBuffer) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}
