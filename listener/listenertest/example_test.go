package listenertest_test

import (
	"context"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener/listenertest"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A test of code written against a Kafka client starts a server, points the
// client at Addr, and may check the same topics in-process.
func ExampleStart() {
	_ = func(t *testing.T) { // a test function
		srv := listenertest.Start(t, nil)
		require.NoError(t, srv.Broker().CreateTopic("orders", stream.TopicConfig{Partitions: 3}))

		cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
		require.NoError(t, err)
		defer cl.Close()
		rec := &kgo.Record{Topic: "orders", Key: []byte("k"), Value: []byte("v")}
		require.NoError(t, cl.ProduceSync(context.Background(), rec).FirstErr())

		r, err := srv.Broker().NewReader("orders", rec.Partition, stream.OffsetEarliest, nil)
		require.NoError(t, err)
		defer r.Close()
		got, err := r.Next(context.Background())
		require.NoError(t, err)
		require.Equal(t, "v", string(got.Value))
	}
}
