package compat

import (
	"context"
	"github.com/embedstream/stream"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// saramaClient is IBM/sarama with sarama.NewConfig()'s defaults, but for the two
// settings its APIs require: a SyncProducer needs Return.Successes, and a
// new group starts at the oldest offset (sarama's default is the newest,
// which would skip the records produced before the group exists).
type saramaClient struct{}

func TestSarama(t *testing.T) { runMatrix(t, "sarama", saramaClient{}, franz{}) }

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

func (saramaClient) createTopic(t *testing.T, addr, topic string, partitions int) {
	adm, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	require.NoError(t, err)
	defer adm.Close()
	require.NoError(t, adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false))
}

func (saramaClient) produce(t *testing.T, addr, topic string, recs []rec) {
	p, err := sarama.NewSyncProducer([]string{addr}, saramaConfig())
	require.NoError(t, err)
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value)}
	}
	require.NoError(t, p.SendMessages(msgs))
}

func (saramaClient) readAll(t *testing.T, addr, topic string, n int) []rec {
	c, err := sarama.NewConsumer([]string{addr}, saramaConfig())
	require.NoError(t, err)
	defer c.Close()
	parts, err := c.Partitions(topic)
	require.NoError(t, err)
	msgs := make(chan *sarama.ConsumerMessage)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		wg.Go(func() {
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					select {
					case msgs <- m:
					case <-done:
						return
					}
				case err := <-pc.Errors():
					t.Errorf("consume %s/%d: %v", topic, p, err)
				case <-done:
					return
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	var got []rec
	for len(got) < n {
		select {
		case m := <-msgs:
			got = append(got, rec{key: string(m.Key), value: string(m.Value), partition: m.Partition})
		case <-ctx.Done():
			return got
		}
	}
	return got
}

// saramaHandler hands each claimed message to got, marks it, and commits
// when n have been read.
type saramaHandler struct {
	mu   sync.Mutex
	n    int
	read int
	got  func(rec)
	full chan struct{} // closed at n records
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.got(rec{key: string(m.Key), value: string(m.Value), partition: m.Partition})
		h.read++
		sess.MarkMessage(m, "")
		if h.read == h.n {
			sess.Commit()
			close(h.full)
		}
		h.mu.Unlock()
	}
	return nil
}

func (saramaClient) consumeGroup(ctx context.Context, t *testing.T, addr, group, topic string, n int, got func(rec)) {
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, saramaConfig())
	if !assert.NoError(t, err) {
		return
	}
	defer func() { assert.NoError(t, cg.Close()) }() // commits what is marked, leaves
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &saramaHandler{n: n, got: got, full: make(chan struct{})}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				t.Errorf("sarama consume: %v", err)
				return
			}
		}
	}()
	select {
	case <-h.full:
	case <-ctx.Done():
	}
	cancel()
	<-consumed
}

func (saramaClient) balancer() stream.Balancer { return stream.RangeBalancer{} }
