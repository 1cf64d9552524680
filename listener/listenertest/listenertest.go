// Package listenertest serves a durable stream.Broker over Kafka's wire
// protocol for tests: the role kfake plays for code written against any
// Kafka client, with the embedded broker's files and speed behind it.
//
// Start opens a Broker in t.TempDir(), serves it on a free loopback port,
// and registers cleanups that shut the server down and close the Broker when
// the test ends, so that a test leaks no goroutine and no open file:
//
//	func TestOrders(t *testing.T) {
//		srv := listenertest.Start(t, nil)
//		cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
//		require.NoError(t, err)
//		defer cl.Close()
//		// ... produce and consume with cl; look at srv.Broker() in-process.
//	}
//
// Clients created after Start are closed (by their own t.Cleanup or defer)
// before the server shuts down, since cleanups run last-in first-out.
package listenertest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener"
)

// shutdownTimeout bounds how long a cleanup waits for connections to end
// before closing them at once.
const shutdownTimeout = 10 * time.Second

// Options configures Start. The zero value (or nil) serves a fresh directory
// with the Broker's and the Server's defaults.
type Options struct {
	// Dir is the Broker's data directory. Default: a new t.TempDir().
	Dir string
	// Broker configures the Broker (nil for the defaults). Options.Logger
	// and the like are the caller's to set.
	Broker *stream.Options
	// Server configures the listener (nil for the defaults). Its
	// AdvertisedAddr is ignored: the server advertises the port it got.
	Server *listener.Options
}

// Server is a Broker served on a loopback port for the length of a test.
// Its methods are for the test's goroutine.
type Server struct {
	t    testing.TB
	opts Options

	mu     sync.Mutex
	b      *stream.Broker
	srv    *listener.Server
	served chan error // Serve's result
	addr   string
}

// Start opens a Broker (in opts.Dir or a new t.TempDir()) and serves it on
// 127.0.0.1 at a free port until the test ends, when the server is shut
// down and the Broker closed. It fails the test if either cannot start.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	s := &Server{t: t}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Dir == "" {
		s.opts.Dir = t.TempDir()
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// Addr is the host:port clients connect to (a new one after Restart).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Broker is the Broker being served, for in-process producers, readers and
// consumers beside the remote clients (a new one after Restart).
func (s *Server) Broker() *stream.Broker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b
}

// Dir is the Broker's data directory.
func (s *Server) Dir() string { return s.opts.Dir }

// Restart shuts the server down, closes the Broker, reopens the same
// directory and serves it on a new port, as a process restart would. Clients
// of the old address must reconnect to Addr(); Brokers, Readers and
// Consumers of the old Broker are closed with it.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	b, err := stream.Open(s.opts.Dir, s.opts.Broker)
	if err != nil {
		t.Fatalf("listenertest: open broker: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		t.Fatalf("listenertest: listen: %v", err)
	}
	var lo listener.Options
	if s.opts.Server != nil {
		lo = *s.opts.Server
	}
	lo.AdvertisedAddr = ln.Addr().String()
	srv := listener.New(b, &lo)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.mu.Lock()
	s.b, s.srv, s.served, s.addr = b, srv, served, lo.AdvertisedAddr
	s.mu.Unlock()
}

// stop shuts the server down and closes the Broker; it does nothing once
// stopped.
func (s *Server) stop() {
	s.mu.Lock()
	b, srv, served := s.b, s.srv, s.served
	s.b, s.srv, s.served = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.t.Errorf("listenertest: shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, listener.ErrServerClosed) {
		s.t.Errorf("listenertest: serve: %v", err)
	}
	if err := b.Close(); err != nil {
		s.t.Errorf("listenertest: close broker: %v", err)
	}
}
