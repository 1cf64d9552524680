package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/embedstream/stream"
)

// DefaultAddr is where ListenAndServe listens when given no address:
// Kafka's port on the loopback interface only, so that opening a listener
// never exposes a broker to the network by accident.
const DefaultAddr = "127.0.0.1:9092"

// Defaults of Options.
const (
	DefaultMaxFrameBytes  = 100 << 20 // Kafka's socket.request.max.bytes
	DefaultMaxFetchBytes  = 55 << 20  // Kafka's fetch.max.bytes
	DefaultMaxConnections = 1024
	DefaultMaxInFlight    = 32
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 10 * time.Minute // Kafka's connections.max.idle.ms
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = errors.New("listener: server closed")

// Options configures a Server. The zero value serves plaintext, without
// authentication, with the defaults above: such a listener trusts every
// connection (any client may read, write, create and delete anything), so
// keep it on the loopback interface, as DefaultAddr does, or set SASL.
type Options struct {
	// Logger receives connection errors, refused requests, authentication
	// failures and denials. Default: discard.
	Logger *slog.Logger

	// AdvertisedAddr is the host:port that Metadata tells clients to
	// connect to. Default: the address the listener is bound to (with
	// 127.0.0.1 for an unspecified host).
	AdvertisedAddr string

	// TLS, if set, makes every connection a TLS one (crypto/tls; Kafka's
	// SSL and SASL_SSL listeners). The handshake must complete within
	// ReadTimeout.
	TLS *tls.Config

	// SASL, if set, requires every connection to authenticate (PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512) before any request but ApiVersions
	// and the SASL exchange (Kafka's SASL_PLAINTEXT, or SASL_SSL with
	// TLS), and makes ACLs apply.
	SASL *SASL
	// ACLs allow authenticated users operations on topics, groups, the
	// cluster and transactional IDs; whatever they do not allow is
	// denied, and logged. They need SASL (Serve refuses ACLs without it):
	// without authentication everything is allowed.
	ACLs []ACL
	// SuperUsers are SASL users allowed everything (Kafka's super.users).
	SuperUsers []string

	// MaxFrameBytes is the largest request accepted: a client sending a
	// larger one is disconnected (Kafka's socket.request.max.bytes).
	MaxFrameBytes int
	// MaxFetchBytes bounds a Fetch response's batches, whatever the
	// request's MaxBytes (Kafka's fetch.max.bytes): at least one batch is
	// still sent, however large, so a consumer never stalls.
	MaxFetchBytes int
	// MaxConnections bounds open connections; those over it are closed
	// at once, with a log line.
	MaxConnections int
	// MaxInFlight bounds the responses a connection may have queued
	// before the server stops reading its requests.
	MaxInFlight int
	// ReadTimeout bounds how long a request may take to arrive once its
	// size has: a slower client is disconnected.
	ReadTimeout time.Duration
	// WriteTimeout bounds how long writing one response may take: a
	// client that stops reading its responses is disconnected.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxFetchBytes <= 0 {
		c.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}

// Server serves one Broker over Kafka's wire protocol. Its methods are safe
// for concurrent use. The Broker stays the caller's: Shutdown does not
// close it.
type Server struct {
	broker *stream.Broker
	opts   Options
	log    *slog.Logger
	sasl   *saslServer // nil without authentication
	acls   *authorizer // nil without authentication
	err    error       // invalid options, returned by Serve

	// ctx is cancelled by Shutdown: requests waiting (a long-polling
	// Fetch, a JoinGroup) return at once.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	advertise string       // host:port for Metadata, once known
	groups    remoteGroups // remote members of consumer groups (groups.go)
	closed    bool
	wg        sync.WaitGroup // connections

	stats serverStats // see Stats
}

// New returns a Server for b. It listens nowhere until Serve or
// ListenAndServe.
func New(b *stream.Broker, opts *Options) *Server {
	o := opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		broker:    b,
		opts:      o,
		log:       o.Logger,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		advertise: o.AdvertisedAddr,
	}
	s.stats.init()
	s.err = s.configureAuth()
	return s
}

// configureAuth builds the SASL and ACL state from the options.
func (s *Server) configureAuth() error {
	if s.opts.SASL == nil {
		if len(s.opts.ACLs) > 0 || len(s.opts.SuperUsers) > 0 {
			return fmt.Errorf("%w: ACLs without SASL (without authentication everything is allowed)", ErrInvalidOptions)
		}
		return nil
	}
	var err error
	if s.sasl, err = newSASLServer(s.opts.SASL); err != nil {
		return err
	}
	s.acls, err = newAuthorizer(s.opts.ACLs, s.opts.SuperUsers)
	return err
}

// ListenAndServe listens on addr (DefaultAddr if empty) and serves until
// Shutdown, when it returns ErrServerClosed.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown (ErrServerClosed) or an
// accept error; it closes ln when it returns. It returns an error wrapping
// ErrInvalidOptions at once if the Options given to New are inconsistent.
func (s *Server) Serve(ln net.Listener) error {
	if s.err != nil {
		ln.Close()
		return s.err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.advertise == "" {
		s.advertise = advertised(ln.Addr())
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off, as
				// net/http does, rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("listener: accept", "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-s.ctx.Done():
				}
				continue
			}
			return err
		}
		delay = 0
		s.accept(nc)
	}
}

// accept starts serving nc, unless the server is over MaxConnections or
// shutting down.
func (s *Server) accept(nc net.Conn) {
	if s.opts.TLS != nil {
		nc = tls.Server(nc, s.opts.TLS)
	}
	s.mu.Lock()
	if s.closed || len(s.conns) >= s.opts.MaxConnections {
		n, closed := len(s.conns), s.closed
		s.mu.Unlock()
		s.stats.refused.Add(1)
		if !closed {
			s.log.Warn("listener: connection refused: too many connections", "remote", nc.RemoteAddr(), "open", n)
		}
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// Addr returns the address the server advertises to clients (host:port),
// or "" before it listens.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertise
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops accepting connections, ends requests that wait (long
// polls, joins), lets each connection finish the request it is handling,
// and closes every connection. It returns when all are closed, or with
// ctx's error if ctx ends first (the connections are then closed at once).
// It does not close the Broker.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// advertised is the host:port clients reach a listener bound to a at.
func advertised(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() && tcp.IP != nil {
		host = tcp.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// hostPort splits the advertised address for Metadata.
func (s *Server) hostPort() (string, int32) {
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return "127.0.0.1", 9092
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return host, 9092
	}
	return host, int32(p)
}
