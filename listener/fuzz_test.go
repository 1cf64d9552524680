package listener

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRequest feeds raw bytes, as they would arrive on a connection, to
// the request path (handleFrame: header, version checks, authentication,
// kmsg decoding, handlers, encoding) of a server without authentication
// and of one with SASL. No input may panic, in the request path or in a
// handler (whose panics are recovered and logged: the log is checked).
func FuzzRequest(f *testing.F) {
	for key, a := range apis {
		for _, v := range []int16{a.min, a.max} {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			f.Add(encode(req, 1))
		}
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, MechanismPlain
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version = 2
	auth.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
	f.Add(append(encode(hs, 1), encode(auth, 2)...))
	hs.Version, hs.Mechanism = 0, MechanismSCRAMSHA256
	first := "n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL"
	f.Add(append(encode(hs, 1), binary.BigEndian.AppendUint32(nil, uint32(len(first)))...))

	log, lb := newLogger()
	b := openBroker(f, nil)
	servers := []*Server{
		New(b, &Options{Logger: log}),
		New(b, &Options{Logger: log, SASL: testSASL(f), SuperUsers: []string{"alice"}}),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range servers {
			lb.reset()
			feed(s, data)
			if l := lb.String(); strings.Contains(l, "panicked") {
				t.Fatalf("a request panicked:\n%s", l)
			}
		}
	})
}

// feed hands data's frames (each with its size in front) to a new
// connection of s, one at a time, until one closes the connection.
func feed(s *Server, data []byte) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := newConn(s, server)
	// Handlers that wait (long polls, joins) give up quickly.
	c.ctx, c.cancel = context.WithTimeout(s.ctx, 50*time.Millisecond)
	defer c.cancel()
	for len(data) >= 4 {
		n := int(binary.BigEndian.Uint32(data))
		data = data[4:]
		if n < 0 || n > len(data) {
			return
		}
		frame := data[:n:n]
		data = data[n:]
		if _, err := c.handleFrame(frame); err != nil || c.closeAfter != nil {
			return
		}
	}
}
