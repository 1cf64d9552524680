package embedwatermill_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
	embedwatermill "github.com/embedstream/stream/watermill"
)

// BenchmarkConsume: messages through a group subscription, each Acked
// (and so committed) before the next of its partition, on 1 and 4
// partitions; publishing is outside the timing.
func BenchmarkConsume(b *testing.B) {
	for _, parts := range []int{1, 4} {
		b.Run(strconv.Itoa(parts)+"partitions", func(b *testing.B) {
			br, err := stream.Open(b.TempDir(), nil)
			require.NoError(b, err)
			defer br.Close()
			client := br.Client()
			require.NoError(b, client.CreateTopic(context.Background(), "t", stream.TopicConfig{Partitions: parts}))
			pub, err := embedwatermill.NewPublisher(client, embedwatermill.PublisherConfig{}, nil)
			require.NoError(b, err)
			msgs := make([]*message.Message, b.N)
			for i := range msgs {
				msgs[i] = message.NewMessage(strconv.Itoa(i), []byte("payload"))
				msgs[i].Metadata.Set("k", "v")
			}
			for i := 0; i < len(msgs); i += 1000 {
				require.NoError(b, pub.Publish("t", msgs[i:min(i+1000, len(msgs))]...))
			}
			sub, err := embedwatermill.NewSubscriber(client, embedwatermill.SubscriberConfig{ConsumerGroup: "g"}, nil)
			require.NoError(b, err)
			defer sub.Close()
			b.ResetTimer()
			ch, err := sub.Subscribe(context.Background(), "t")
			require.NoError(b, err)
			for range b.N {
				(<-ch).Ack()
			}
		})
	}
}
