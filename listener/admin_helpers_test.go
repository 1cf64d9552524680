package listener

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawRequest sends req at exactly its version (kgo would negotiate its
// own) on a fresh connection to s and returns the response.
func rawRequest(t *testing.T, s *Server, req kmsg.Request) kmsg.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	buf := binary.BigEndian.AppendUint32(nil, 0)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, 7) // correlation ID
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = append(buf, "test"...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	_, err = nc.Write(buf)
	require.NoError(t, err)

	var size [4]byte
	_, err = io.ReadFull(nc, size[:])
	require.NoError(t, err)
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(nc, body)
	require.NoError(t, err)
	require.Equal(t, uint32(7), binary.BigEndian.Uint32(body))
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		body = body[1:] // no tagged fields in our header
	}
	require.NoError(t, resp.ReadFrom(body))
	return resp
}

// newAdmin returns a kadm client of s.
func newAdmin(t *testing.T, s *Server) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, s))
}

// testCtx is a context for one test's requests.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publishAt publishes n records to partition 0 of topic in process, the
// i-th with timestamp base+i*10ms.
func publishAt(t *testing.T, b *stream.Broker, topic string, n int, base time.Time) {
	t.Helper()
	for i := range n {
		rec := &stream.Record{Topic: topic, Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * 10 * time.Millisecond)}
		require.NoError(t, b.Publish(context.Background(), rec))
		require.Equal(t, int64(i), rec.Offset)
	}
}
