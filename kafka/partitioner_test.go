package kafka_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionerKeys are keys covering murmur2's cases: empty, every tail
// length (1 to 3 bytes past a multiple of 4), high bytes (sign extension in
// Java's implementation), and a spread of random ones.
func partitionerKeys(n int) [][]byte {
	keys := [][]byte{
		{}, {0}, {0xff}, {1, 2}, {0x80, 0x81, 0x82}, {1, 2, 3, 4}, {0xfe, 0xff, 0x80, 0x7f, 0x01},
		[]byte("alice"), []byte("bob"), []byte("customer-42"), []byte("a much longer key, with spaces and punctuation!"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		k := make([]byte, rng.IntN(40))
		for i := range k {
			k[i] = byte(rng.UintN(256))
		}
		keys = append(keys, k)
	}
	return keys
}

// TestKafkaPartitionerMatchesFranzGo compares stream.KafkaPartitioner with
// the partitioner a Client uses by default (franz-go's StickyKeyPartitioner
// with Kafka's murmur2), key by key, for many partition counts.
func TestKafkaPartitionerMatchesFranzGo(t *testing.T) {
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 2, 3, 6, 7, 16, 50, 100, 1000} {
		for _, k := range partitionerKeys(2000) {
			want := kp.Partition(&kgo.Record{Key: k}, n)
			got := stream.KafkaPartitioner{}.Partition(&stream.Record{Key: k}, n)
			require.Equal(t, int32(want), got, "key %x, %d partitions", k, n)
		}
	}
	// The Java client's placement of the keys of Kafka's own murmur2 test
	// (UtilsTest.testMurmur2): Utils.toPositive(Utils.murmur2(key)) % n,
	// with n large enough that every bit of the hash counts.
	for key, hash := range map[string]int32{
		"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		const n = 1<<31 - 1
		want := int32(int64(hash&0x7fffffff) % n)
		require.Equal(t, want, stream.KafkaPartitioner{}.Partition(&stream.Record{Key: []byte(key)}, n), "key %q", key)
		require.Equal(t, int(want), kp.Partition(&kgo.Record{Key: []byte(key)}, n), "key %q", key)
	}
}

// TestKeyedPlacementAcrossBackends publishes the same keys through an
// embedded Broker opened with KafkaPartitioner and through a Client on a
// cluster, and compares where each key landed.
func TestKeyedPlacementAcrossBackends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster := newCluster(t)
	kc := newClient(t, cluster)
	b, err := stream.Open(t.TempDir(), &stream.Options{Sync: stream.SyncNever, Partitioner: stream.KafkaPartitioner{}})
	require.NoError(t, err)
	ec := b.Client()
	defer ec.Close()

	keys := partitionerKeys(300)
	for _, parts := range []int{1, 3, 7, 12} {
		topic := fmt.Sprintf("placement-%d", parts)
		for _, c := range []stream.Client{ec, kc} {
			require.NoError(t, c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: parts}))
		}
		publish := func(c stream.Client) []*stream.Record {
			var recs []*stream.Record
			for _, k := range keys {
				recs = append(recs, &stream.Record{Topic: topic, Key: k, Value: []byte("v")})
			}
			require.NoError(t, c.Publish(ctx, recs...))
			return recs
		}
		embedded, cluster := publish(ec), publish(kc)
		for i := range keys {
			require.Equal(t, embedded[i].Partition, cluster[i].Partition, "key %x with %d partitions", keys[i], parts)
		}

		// PublishAsync on the cluster places keys the same way.
		done := make(chan *stream.Record, len(keys))
		for _, k := range keys {
			kc.PublishAsync(ctx, &stream.Record{Topic: topic, Key: k, Value: []byte("async")},
				func(r *stream.Record, err error) {
					require.NoError(t, err)
					done <- r
				})
		}
		require.NoError(t, kc.Flush(ctx))
		close(done)
		for r := range done {
			require.Equal(t, stream.KafkaPartitioner{}.Partition(r, parts), r.Partition, "async key %x", r.Key)
		}
	}
}

// TestPartitionerAnswers: the Client's partitioner places every record, and
// its answers mean what a stream.Partitioner's do: stream.AnyPartition (as
// kgo.ManualPartitioner returns for a record left at it) is "no preference",
// placed stickily; a partition the topic lacks fails the record with
// stream.ErrInvalidPartition, through Publish and PublishAsync.
func TestPartitionerAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster := newCluster(t)
	fixed := func(p int) kgo.Partitioner {
		return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(*kgo.Record, int) int { return p }
		})
	}
	const parts = 4
	for name, c := range map[string]*kafka.Client{
		"none":   newClientWith(t, cluster, fixed(int(stream.AnyPartition))),
		"manual": newClientWith(t, cluster, kgo.ManualPartitioner()),
	} {
		topic := "answers-" + name
		require.NoError(t, c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: parts}))
		recs := make([]*stream.Record, 20)
		for i := range recs {
			recs[i] = &stream.Record{Topic: topic, Partition: stream.AnyPartition, Key: fmt.Appendf(nil, "k%d", i)}
		}
		require.NoError(t, c.Publish(ctx, recs...), name)
		for _, r := range recs {
			require.True(t, r.Partition >= 0 && r.Partition < parts, "%s: placed on %d", name, r.Partition)
		}
	}

	for _, p := range []int{parts, parts + 10, -2} {
		c := newClientWith(t, cluster, fixed(p))
		topic := fmt.Sprintf("refused%d", p+2)
		require.NoError(t, c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: parts}))
		err := c.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("x")})
		require.ErrorIs(t, err, stream.ErrInvalidPartition, "partitioner answers %d", p)
		require.ErrorContains(t, err, fmt.Sprintf("partition %d", p))
		done := make(chan error, 1)
		c.PublishAsync(ctx, &stream.Record{Topic: topic, Value: []byte("x")}, func(_ *stream.Record, err error) { done <- err })
		require.NoError(t, c.Flush(ctx))
		require.ErrorIs(t, <-done, stream.ErrInvalidPartition, "PublishAsync, partitioner answers %d", p)
	}
}
