package listener

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// openBroker opens a broker in a fresh directory, closed at the test's end.
func openBroker(t testing.TB, opts *stream.Options) *stream.Broker {
	t.Helper()
	b, err := stream.Open(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// startServer serves b on a loopback port until the test ends.
func startServer(t testing.TB, b *stream.Broker, opts *Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.AdvertisedAddr == "" {
		o.AdvertisedAddr = ln.Addr().String()
	}
	s := New(b, &o)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.True(t, errors.Is(<-served, ErrServerClosed))
	})
	return s
}

// newClient returns a franz-go client of s, closed at the test's end.
func newClient(t testing.TB, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}
