package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection: a goroutine reading and handling its
// requests one at a time (as Kafka's broker does per connection, so
// responses leave in request order), and one writing the responses.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string

	// ctx ends when the connection closes or the server shuts down.
	ctx    context.Context
	cancel context.CancelFunc

	out chan []byte // encoded responses, in request order

	stopOnce sync.Once
	stop     chan struct{} // closed by stopReading: handle no more requests

	// clientID is the last request's client.id, for log lines.
	clientID string

	// auth is the connection's authentication state (auth.go).
	auth connAuth

	// views are the batches a Fetch response aliases, released once the
	// response is encoded (fetch.go). Only the reading goroutine uses it.
	views []*stream.Batches

	// closeAfter, set by a handler, closes the connection once the
	// response to its request is sent (a failed authentication); it is
	// the reason logged.
	closeAfter error
	// writeErr is why the writer stopped early; read after it returned.
	writeErr error
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s:      s,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		ctx:    ctx,
		cancel: cancel,
		out:    make(chan []byte, s.opts.MaxInFlight),
		stop:   make(chan struct{}),
	}
}

// stopReading asks the connection to finish the request in hand and close.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stop)
		// Unblock a read waiting for the next request. The reader checks
		// stop after each deadline it sets, so this one is never
		// overwritten unseen.
		c.nc.SetReadDeadline(time.Now())
	})
}

// serve runs the connection until it closes.
func (c *conn) serve() {
	defer c.cancel()
	if err := c.handshakeTLS(); err != nil {
		c.nc.Close()
		if !c.stopped() {
			c.s.log.Info("listener: connection closed", "remote", c.remote, "reason", err)
		}
		return
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.writeLoop()
	}()
	err := c.readLoop()
	close(c.out)
	<-written
	c.nc.Close()
	if c.writeErr != nil {
		err = c.writeErr // the reader only saw its consequences
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !c.stopped() {
		c.s.log.Info("listener: connection closed", "remote", c.remote, "client_id", c.clientID, "reason", err)
	}
}

func (c *conn) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// writeLoop writes responses in order until out closes. After a write
// error it drains out, so the reader never blocks on it.
func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var failed bool
	for frame := range c.out {
		if failed {
			continue
		}
		// A client that stops reading must not hold the connection (and
		// its reader, blocked on a full out) forever.
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		_, err := w.Write(frame)
		if err == nil && len(c.out) == 0 {
			err = w.Flush()
		}
		if err != nil {
			failed = true
			c.writeErr = fmt.Errorf("writing a response: %w", err)
			c.cancel()
			c.nc.Close()
		}
	}
	if !failed {
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		w.Flush()
	}
}

// readLoop reads, handles and answers requests until the connection ends.
func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var size [4]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		if c.stopped() { // checked after the deadline is set: see stopReading
			return nil
		}
		if _, err := io.ReadFull(r, size[:]); err != nil {
			if isTimeout(err) && !c.stopped() {
				return fmt.Errorf("idle for %v (IdleTimeout): %w", c.s.opts.IdleTimeout, err)
			}
			return err
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 0 || int(n) > c.s.opts.MaxFrameBytes {
			return fmt.Errorf("request of %d bytes: over MaxFrameBytes (%d)", n, c.s.opts.MaxFrameBytes)
		}
		if c.s.sasl != nil && c.auth.user == "" && n > maxUnauthenticatedFrame {
			return fmt.Errorf("request of %d bytes before authentication: over %d", n, maxUnauthenticatedFrame)
		}
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.ReadTimeout))
		if c.stopped() { // a request not yet received is not finished
			return nil
		}
		frame, err := readFrame(r, int(n))
		if err != nil {
			if isTimeout(err) && !c.stopped() {
				return fmt.Errorf("a request of %d bytes not received within %v (ReadTimeout): %w", n, c.s.opts.ReadTimeout, err)
			}
			return fmt.Errorf("reading a request of %d bytes: %w", n, err)
		}
		resp, err := c.safeHandleFrame(frame)
		if err != nil {
			return err
		}
		if resp != nil { // Produce with acks=0 has no answer
			select {
			case c.out <- resp:
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
		if c.closeAfter != nil {
			return c.closeAfter
		}
	}
}

// readFrame reads an n-byte request. Past 1 MiB its buffer grows as the
// bytes arrive, so that a client announcing a large request and sending
// little holds little memory.
func readFrame(r io.Reader, n int) ([]byte, error) {
	const chunk = 1 << 20
	if n <= chunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, chunk)
	for len(b) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), n))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handshakeTLS completes a TLS connection's handshake within ReadTimeout,
// so that a client that connects and says nothing is not kept for
// IdleTimeout.
func (c *conn) handshakeTLS() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	c.nc.SetDeadline(time.Now().Add(c.s.opts.ReadTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}

// safeHandleFrame is handleFrame turning a panic anywhere in the request
// path (parsing, encoding, not only handlers) into a closed connection.
func (c *conn) safeHandleFrame(frame []byte) (resp []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("listener: request panicked", "remote", c.remote, "panic", p)
			resp, err = nil, fmt.Errorf("request panicked: %v", p)
		}
	}()
	return c.handleFrame(frame)
}

// maxUnauthenticatedFrame bounds requests before SASL authentication
// completes, as Kafka's sasl.server.max.receive.size does: a stranger may
// not make the server hold MaxFrameBytes.
const maxUnauthenticatedFrame = 512 << 10

// header is a request's header (Kafka's request header v1, or v2 with
// tagged fields for flexible versions).
type header struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
}

// errMalformed marks a request that could not be parsed.
var errMalformed = errors.New("malformed request")

// parseHeader reads the fixed part of a request header: the tagged fields
// that follow it in flexible versions depend on the API's version table.
func parseHeader(frame []byte) (header, []byte, error) {
	if len(frame) < 10 {
		return header{}, nil, fmt.Errorf("%w: %d bytes, shorter than a request header", errMalformed, len(frame))
	}
	h := header{
		key:           int16(binary.BigEndian.Uint16(frame)),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[10:]
	if idLen < -1 {
		return header{}, nil, fmt.Errorf("%w: client id length %d", errMalformed, idLen)
	}
	if idLen > 0 {
		if idLen > len(rest) {
			return header{}, nil, fmt.Errorf("%w: client id of %d bytes past the frame's end", errMalformed, idLen)
		}
		h.clientID, rest = string(rest[:idLen]), rest[idLen:]
	}
	return h, rest, nil
}

// skipTags skips a tagged-fields section (KIP-482): a count, then per field
// a tag, a length and the bytes, all unsigned varints.
func skipTags(b []byte) ([]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, fmt.Errorf("%w: tagged fields", errMalformed)
	}
	b = b[used:]
	for range n {
		if _, used = binary.Uvarint(b); used <= 0 {
			return nil, fmt.Errorf("%w: tagged field", errMalformed)
		}
		b = b[used:]
		size, used := binary.Uvarint(b)
		if used <= 0 || size > uint64(len(b)-used) {
			return nil, fmt.Errorf("%w: tagged field", errMalformed)
		}
		b = b[used+int(size):]
	}
	return b, nil
}

// handleFrame handles one request and returns its response frame, or nil
// if it has none. An error closes the connection.
func (c *conn) handleFrame(frame []byte) (_ []byte, err error) {
	if c.auth.raw {
		return c.handleRawToken(frame) // after a v0 SaslHandshake
	}
	h, body, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	// Runs after the return value, the encoded frame, is computed.
	defer c.releaseViews()
	c.clientID = h.clientID
	api, ok := apis[h.key]
	if ctr := c.s.stats.apis[h.key]; ok && (h.key == kmsg.ApiVersions.Int16() || h.version >= api.min && h.version <= api.max) {
		ctr.requests.Add(1)
		defer func() {
			if err != nil {
				ctr.errors.Add(1)
			}
		}()
	} else {
		c.s.stats.unsupported.Add(1)
	}
	if !ok || h.version < api.min || h.version > api.max {
		if h.key == kmsg.ApiVersions.Int16() {
			// KIP-511: answer in v0 with UNSUPPORTED_VERSION and our
			// versions, so the client retries with one we speak.
			resp := c.s.apiVersions()
			resp.SetVersion(0)
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			return c.frame(h, resp, false), nil
		}
		// Kafka's broker closes the connection on a request it cannot
		// parse the header of; a client should have asked ApiVersions.
		return nil, fmt.Errorf("%w: API key %d (%s) version %d is not served", errUnsupported, h.key, kmsg.NameForKey(h.key), h.version)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	if err := c.authorizeRequest(h.key); err != nil {
		return nil, err
	}
	resp, err := c.handle(api, req)
	if err != nil || resp == nil {
		return nil, err
	}
	resp.SetVersion(h.version)
	// ApiVersions answers with header v0 whatever its version (KIP-511).
	flexibleHeader := resp.IsFlexible() && h.key != kmsg.ApiVersions.Int16()
	return c.frame(h, resp, flexibleHeader), nil
}

// errUnsupported marks a request for an API or version not served.
var errUnsupported = errors.New("unsupported request")

// handle runs a handler, turning a panic into a closed connection with a
// log line rather than a crashed process.
func (c *conn) handle(api api, req kmsg.Request) (resp kmsg.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("listener: handler panicked", "api", kmsg.NameForKey(req.Key()), "version", req.GetVersion(), "remote", c.remote, "panic", p)
			err = fmt.Errorf("handler for %s panicked: %v", kmsg.NameForKey(req.Key()), p)
		}
	}()
	return api.handle(c, req)
}

// frame encodes a response with its size and header.
func (c *conn) frame(h header, resp kmsg.Response, flexibleHeader bool) []byte {
	// A Fetch response is mostly the batches it aliases: sized for them
	// up front, they are copied once, not again at every growth.
	size := 256
	for _, v := range c.views {
		size += len(v.Data) + 64
	}
	buf := make([]byte, 8, size)
	binary.BigEndian.PutUint32(buf[4:], uint32(h.correlationID))
	if flexibleHeader {
		buf = append(buf, 0) // no tagged fields
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}
