package listenertest_test

import (
	"context"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener/listenertest"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersions asks addr for its API versions over a fresh franz-go client.
func apiVersions(t *testing.T, addr string) *kmsg.ApiVersionsResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
	return resp
}

func TestStartServesTheBroker(t *testing.T) {
	srv := listenertest.Start(t, nil)
	require.NotEmpty(t, apiVersions(t, srv.Addr()).ApiKeys)
	require.NoError(t, srv.Broker().CreateTopic("t", stream.TopicConfig{Partitions: 2}))
	require.Equal(t, srv.Dir(), srv.Broker().Dir())
}

func TestRestartKeepsTheData(t *testing.T) {
	srv := listenertest.Start(t, &listenertest.Options{Broker: &stream.Options{Sync: stream.SyncNever}})
	before := srv.Addr()
	require.NoError(t, srv.Broker().CreateTopic("t", stream.TopicConfig{Partitions: 1}))
	require.NoError(t, srv.Broker().Publish(context.Background(), &stream.Record{Topic: "t", Value: []byte("v")}))

	srv.Restart()
	require.NotEqual(t, before, srv.Addr(), "a restart serves a new port")
	require.NotEmpty(t, apiVersions(t, srv.Addr()).ApiKeys)
	r, err := srv.Broker().NewReader("t", 0, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	rec, err := r.Next(context.Background())
	require.NoError(t, err)
	require.Equal(t, "v", string(rec.Value))
}

// The cleanups close the Broker: the directory can be opened again once the
// subtest that served it has ended.
func TestCleanupClosesTheBroker(t *testing.T) {
	dir := t.TempDir()
	t.Run("serve", func(t *testing.T) {
		listenertest.Start(t, &listenertest.Options{Dir: dir})
	})
	b, err := stream.Open(dir, nil)
	require.NoError(t, err, "the directory is still locked")
	require.NoError(t, b.Close())
}
