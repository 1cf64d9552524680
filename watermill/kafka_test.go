package embedwatermill_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/kafka"
	embedwatermill "github.com/embedstream/stream/watermill"
)

// TestPubSubKafka runs Watermill's suite over a Kafka cluster (franz-go's
// in-process kfake) through the kafka module's Client, spread over
// partitions and ordered by key as on the embedded broker: the same code, on
// a consumer that cannot pause.
func TestPubSubKafka(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs(),
		Opts: []kgo.Opt{kgo.HeartbeatInterval(100 * time.Millisecond)}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	topic := &stream.TopicConfig{Partitions: 8}
	// Topics of one name in both: the suite names them by test ID.
	t.Run("spread", func(t *testing.T) {
		t.Parallel()
		runSuiteOn(t, client, tests.Features{ConsumerGroups: true, Persistent: true},
			embedwatermill.PublisherConfig{TopicConfig: topic}, embedwatermill.SubscriberConfig{TopicConfig: topic})
	})
	t.Run("ordered", func(t *testing.T) {
		t.Parallel()
		runSuiteOn(t, client, tests.Features{ConsumerGroups: true, Persistent: true, GuaranteedOrder: true},
			embedwatermill.PublisherConfig{TopicConfig: topic, PartitionKey: embedwatermill.KeyFromMetadata("partition_key")},
			embedwatermill.SubscriberConfig{TopicConfig: topic})
	})
}
