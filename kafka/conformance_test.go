package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/conformance"
	"github.com/embedstream/stream/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newCluster starts an in-process Kafka cluster (franz-go's kfake) for the
// test.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// testOpts make group rebalances quick: members learn of a rebalance at
// their next heartbeat.
func testOpts() []kgo.Opt {
	return []kgo.Opt{kgo.HeartbeatInterval(100 * time.Millisecond)}
}

// newClient connects a Client with the default partitioner (Kafka's
// murmur2 placement of keys) to cluster.
func newClient(t testing.TB, cluster *kfake.Cluster) *kafka.Client {
	t.Helper()
	return newClientWith(t, cluster, nil)
}

// newClientWith connects a Client with partitioner (nil: the default) to
// cluster.
func newClientWith(t testing.TB, cluster *kfake.Cluster, partitioner kgo.Partitioner) *kafka.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs(), Partitioner: partitioner, Opts: testOpts()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestConformance runs the shared behaviour tests against one in-process
// cluster, a new Client per subtest; kgo.ManualPartitioner is the Manual
// placement.
func TestConformance(t *testing.T) {
	cluster := newCluster(t)
	conformance.Run(t, func(t *testing.T, p conformance.Placement) stream.Client {
		if p == conformance.Manual {
			return newClientWith(t, cluster, kgo.ManualPartitioner())
		}
		return newClient(t, cluster)
	})
}
