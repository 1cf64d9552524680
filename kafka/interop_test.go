package kafka_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
)

// TestFranzReadsOurBatches: the batches the embedded broker stores for a
// topic with TopicConfig.Compression, taken byte for byte from its segment
// file, are produced raw to a kfake cluster (base offset 0, as a producer
// sends them) and consumed there with a franz-go client, which must decode
// every record as we wrote it: a Kafka client reads what we compress.
// Every codec, at its default and at extreme levels, with a batch large
// enough to span several lz4 blocks (64 KiB) and xerial snappy blocks
// (32 KiB).
func TestFranzReadsOurBatches(t *testing.T) {
	cases := []stream.Compression{
		{Codec: stream.CodecNone},
		{Codec: stream.CodecGzip}, {Codec: stream.CodecGzip, Level: 1}, {Codec: stream.CodecGzip, Level: 9},
		{Codec: stream.CodecSnappy},
		{Codec: stream.CodecLZ4}, {Codec: stream.CodecLZ4, Level: 1}, {Codec: stream.CodecLZ4, Level: 17},
		{Codec: stream.CodecZstd}, {Codec: stream.CodecZstd, Level: -5}, {Codec: stream.CodecZstd, Level: 1},
		{Codec: stream.CodecZstd, Level: 22},
	}
	for _, cc := range cases {
		t.Run(cc.String(), func(t *testing.T) {
			ctx := testCtx(t)
			want := interopRecords()
			data := embeddedLog(t, ctx, cc, want)
			batches := 0
			for rest := data; len(rest) > 0; batches++ {
				b, err := batch.Parse(rest)
				require.NoError(t, err)
				require.Equal(t, cc.Codec.String(), b.Codec().String(), "stored with the topic's codec")
				rest = rest[len(b):]
			}
			require.Equal(t, 2, batches, "one batch per Publish call")

			cluster := newCluster(t)
			produceRaw(t, ctx, cluster, "t", data)
			got := consumeAll(t, ctx, cluster, "t", len(want))
			for i, w := range want {
				g := got[i]
				require.Equal(t, int64(i), g.Offset)
				require.Equal(t, w.Timestamp.UnixMilli(), g.Timestamp.UnixMilli(), "record %d", i)
				require.Equal(t, w.Key == nil, g.Key == nil, "record %d key null", i)
				require.Equal(t, w.Key, g.Key, "record %d", i)
				require.Equal(t, w.Value == nil, g.Value == nil, "record %d value null", i)
				require.Equal(t, w.Value, g.Value, "record %d", i)
				require.Len(t, g.Headers, len(w.Headers), "record %d", i)
				for j, h := range w.Headers {
					require.Equal(t, h.Key, g.Headers[j].Key)
					require.Equal(t, h.Value == nil, g.Headers[j].Value == nil, "record %d header %d null", i, j)
					require.Equal(t, h.Value, g.Headers[j].Value)
				}
			}
		})
	}
}

// interopRecords are the golden records and, after them, 600 more of about
// 300 bytes each (180 KB, one batch).
func interopRecords() []*stream.Record {
	var out []*stream.Record
	for _, g := range goldenRecords() {
		r := &stream.Record{Topic: "t", Key: g.Key, Value: g.Value, Timestamp: time.UnixMilli(g.Timestamp)}
		for _, h := range g.Headers {
			r.Headers = append(r.Headers, stream.Header{Key: h.Key, Value: h.Value})
		}
		out = append(out, r)
	}
	for i := range 600 {
		out = append(out, &stream.Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i%13),
			Value: goldenValue(i), Timestamp: time.UnixMilli(goldenBaseTS + 10_000 + int64(i))})
	}
	return out
}

// embeddedLog publishes recs to a new one-partition topic compressed with
// cc on an embedded broker, the golden ones in one call and the rest in
// another, and returns its segment file: the batches as stored.
func embeddedLog(t *testing.T, ctx context.Context, cc stream.Compression, recs []*stream.Record) []byte {
	t.Helper()
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 1, Compression: cc}))
	n := len(goldenRecords())
	require.NoError(t, b.Publish(ctx, recs[:n]...))
	require.NoError(t, b.Publish(ctx, recs[n:]...))
	require.NoError(t, b.Close())
	data, err := os.ReadFile(filepath.Join(dir, "topics", "t", "0", "00000000000000000000.log"))
	require.NoError(t, err)
	return data
}

// produceRaw creates topic on cluster and produces each batch of data to
// its partition 0 in a Produce request of its own, its base offset set to
// 0 as a producer sends it (the base offset is outside the CRC).
func produceRaw(t *testing.T, ctx context.Context, cluster *kfake.Cluster, topic string, data []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	_, err = adm.CreateTopic(ctx, 1, -1, nil, topic)
	require.NoError(t, err)
	details, err := adm.ListTopics(ctx, topic)
	require.NoError(t, err)
	id := details[topic].ID
	for len(data) > 0 {
		b, err := batch.Parse(data)
		require.NoError(t, err)
		data = data[len(b):]
		raw := append(batch.Batch(nil), b...)
		raw.SetBaseOffset(0)

		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 10_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topic, id // by name before v13, by ID from it
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = 0, raw
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Request(ctx, req)
		require.NoError(t, err)
		resp := kresp.(*kmsg.ProduceResponse)
		require.Len(t, resp.Topics, 1)
		require.Len(t, resp.Topics[0].Partitions, 1)
		p := resp.Topics[0].Partitions[0]
		require.Zero(t, p.ErrorCode, "produce of a %v batch: %v", b.Codec(), p.ErrorMessage)
	}
}

// consumeAll reads n records from partition 0 of topic with a franz-go
// consumer.
func consumeAll(t *testing.T, ctx context.Context, cluster *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		for _, fe := range fs.Errors() {
			require.NoError(t, fe.Err, "fetch %s/%d", fe.Topic, fe.Partition)
		}
		out = append(out, fs.Records()...)
	}
	require.Len(t, out, n)
	return out
}
