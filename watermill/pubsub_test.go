package embedwatermill_test

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
	embedwatermill "github.com/embedstream/stream/watermill"
)

// openClient opens a broker in a temporary directory, closed when t ends
// (after its parallel subtests).
func openClient(t *testing.T) stream.Client {
	t.Helper()
	b, err := stream.Open(t.TempDir(), &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b.Client()
}

// pubSub makes a Publisher and a Subscriber of group over client.
func pubSub(t *testing.T, client stream.Client, pcfg embedwatermill.PublisherConfig, scfg embedwatermill.SubscriberConfig) (message.Publisher, message.Subscriber) {
	t.Helper()
	pub, err := embedwatermill.NewPublisher(client, pcfg, nil)
	require.NoError(t, err)
	sub, err := embedwatermill.NewSubscriber(client, scfg, nil)
	require.NoError(t, err)
	return pub, sub
}

// testGroup names the consumer group of one test of the suite: the
// suite's PubSubConstructor gets the test's t, so every Publisher and
// Subscriber a test makes shares the test's group (as the suite expects:
// TestContinueAfterSubscribeClose resumes where the last subscriber
// committed), and tests do not rebalance each other.
func testGroup(t *testing.T) string {
	name := t.Name()
	if i := strings.Index(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return "test-" + name
}

// runSuite runs Watermill's universal Pub/Sub tests over one embedded broker.
func runSuite(t *testing.T, features tests.Features, pcfg embedwatermill.PublisherConfig, scfg embedwatermill.SubscriberConfig) {
	runSuiteOn(t, openClient(t), features, pcfg, scfg)
}

// runSuiteOn runs Watermill's universal Pub/Sub tests over client.
func runSuiteOn(t *testing.T, client stream.Client, features tests.Features, pcfg embedwatermill.PublisherConfig, scfg embedwatermill.SubscriberConfig) {
	// Nacked messages come again at once: TestContinueAfterErrors nacks
	// 300 times, which the default 100ms between redeliveries makes 30s on
	// one partition.
	scfg.NackResendSleep = -1
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		cfg := scfg
		if features.ConsumerGroups {
			cfg.ConsumerGroup = testGroup(t)
		}
		return pubSub(t, client, pcfg, cfg)
	}
	var groupConstructor tests.ConsumerGroupPubSubConstructor
	if features.ConsumerGroups {
		groupConstructor = func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			cfg := scfg
			cfg.ConsumerGroup = group
			return pubSub(t, client, pcfg, cfg)
		}
	}
	tests.TestPubSub(t, features, constructor, groupConstructor)
}

// TestPubSub: consumer groups over topics of 8 partitions, messages
// without keys (spread over the partitions, so no order between them).
func TestPubSub(t *testing.T) {
	t.Parallel()
	topic := &stream.TopicConfig{Partitions: 8}
	runSuite(t, tests.Features{
		ConsumerGroups: true,
		Persistent:     true,
	}, embedwatermill.PublisherConfig{TopicConfig: topic}, embedwatermill.SubscriberConfig{TopicConfig: topic})
}

// TestPubSubOrdered: the same with a partition key from metadata, which
// the suite's messages lack: every message has the empty key, so all are
// on one partition, in order (GuaranteedOrder: TestPublishSubscribeInOrder
// and TestNoAck run).
func TestPubSubOrdered(t *testing.T) {
	t.Parallel()
	topic := &stream.TopicConfig{Partitions: 8}
	runSuite(t, tests.Features{
		ConsumerGroups:  true,
		Persistent:      true,
		GuaranteedOrder: true,
	}, embedwatermill.PublisherConfig{TopicConfig: topic, PartitionKey: embedwatermill.KeyFromMetadata("partition_key")},
		embedwatermill.SubscriberConfig{TopicConfig: topic})
}

// TestPubSubNoGroup: without a consumer group every subscriber reads every
// message (NewSubscriberReceivesOldMessages), spread over 8 partitions.
func TestPubSubNoGroup(t *testing.T) {
	t.Parallel()
	topic := &stream.TopicConfig{Partitions: 8}
	runSuite(t, tests.Features{
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: true,
	}, embedwatermill.PublisherConfig{TopicConfig: topic}, embedwatermill.SubscriberConfig{TopicConfig: topic})
}

// TestPubSubNoGroupOrdered: the same with the key from metadata, as in
// TestPubSubOrdered: in order.
func TestPubSubNoGroupOrdered(t *testing.T) {
	t.Parallel()
	topic := &stream.TopicConfig{Partitions: 8}
	runSuite(t, tests.Features{
		Persistent:                       true,
		GuaranteedOrder:                  true,
		NewSubscriberReceivesOldMessages: true,
	}, embedwatermill.PublisherConfig{TopicConfig: topic, PartitionKey: embedwatermill.KeyFromMetadata("partition_key")},
		embedwatermill.SubscriberConfig{TopicConfig: topic})
}
