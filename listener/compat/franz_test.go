package compat

import (
	"context"
	"github.com/embedstream/stream"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// franz is franz-go (kgo) with its defaults: idempotent, acks=all, snappy,
// cooperative-sticky.
type franz struct{}

func TestFranzGo(t *testing.T) { runMatrix(t, "franz", franz{}, saramaClient{}) }

func newKgo(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	require.NoError(t, err)
	return cl
}

func (franz) createTopic(t *testing.T, addr, topic string, partitions int) {
	cl := newKgo(t, addr)
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(partitions), 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.NoError(t, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
}

func (franz) produce(t *testing.T, addr, topic string, recs []rec) {
	cl := newKgo(t, addr, kgo.DefaultProduceTopic(topic))
	defer cl.Close()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, krs...).FirstErr())
}

// poll collects records from cl until n (n > 0) or ctx ends.
func poll(ctx context.Context, t *testing.T, cl *kgo.Client, n int, got func(rec)) int {
	read := 0
	for (n <= 0 || read < n) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			read++
			got(rec{key: string(r.Key), value: string(r.Value), partition: r.Partition})
		})
	}
	return read
}

func (franz) readAll(t *testing.T, addr, topic string, n int) []rec {
	cl := newKgo(t, addr, kgo.ConsumeTopics(topic)) // from the start by default
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	var got []rec
	poll(ctx, t, cl, n, func(r rec) { got = append(got, r) })
	return got
}

func (franz) consumeGroup(ctx context.Context, t *testing.T, addr, group, topic string, n int, got func(rec)) {
	cl := newKgo(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	defer cl.Close() // leaves the group
	if poll(ctx, t, cl, n, got) > 0 {
		cctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		assert.NoError(t, cl.CommitUncommittedOffsets(cctx)) // maybe on another goroutine: no FailNow
	}
}

func (franz) balancer() stream.Balancer { return stream.CooperativeStickyBalancer{} }
