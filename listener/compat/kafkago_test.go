package compat

import (
	"context"
	"errors"
	"github.com/embedstream/stream"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kafkaGo is segmentio/kafka-go with its defaults (a Writer balancing round
// robin with acks=none, Readers committing each message as it is read) but
// for Readers' MaxWait: closing a Reader waits out its long poll, 10s by
// default, which would make this the slowest test of the repository.
type kafkaGo struct{}

const readerMaxWait = 250 * time.Millisecond

func TestKafkaGo(t *testing.T) { runMatrix(t, "kafkago", kafkaGo{}, franz{}) }

func (kafkaGo) createTopic(t *testing.T, addr, topic string, partitions int) {
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	resp, err := cl.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	require.NoError(t, err)
	require.NoError(t, resp.Errors[topic])
}

func (kafkaGo) produce(t *testing.T, addr, topic string, recs []rec) {
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic}
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Key: []byte(r.key), Value: []byte(r.value)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())
}

func (kafkaGo) readAll(t *testing.T, addr, topic string, n int) []rec {
	conn, err := kafka.Dial("tcp", addr)
	require.NoError(t, err)
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	var mu sync.Mutex
	var got []rec
	full := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p.ID, MaxWait: readerMaxWait})
		wg.Go(func() {
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("read %s/%d: %v", topic, p.ID, err)
					}
					return
				}
				mu.Lock()
				got = append(got, rec{key: string(m.Key), value: string(m.Value), partition: int32(m.Partition)})
				if len(got) == n {
					close(full)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-full:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	return got
}

func (kafkaGo) consumeGroup(ctx context.Context, t *testing.T, addr, group, topic string, n int, got func(rec)) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic, MaxWait: readerMaxWait})
	defer func() { assert.NoError(t, r.Close()) }() // leaves the group
	for read := 0; n <= 0 || read < n; read++ {
		m, err := r.ReadMessage(ctx) // commits it (CommitInterval 0: synchronously)
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				t.Errorf("kafka-go group read: %v", err)
			}
			return
		}
		got(rec{key: string(m.Key), value: string(m.Value), partition: int32(m.Partition)})
	}
}

// balancer: kafka-go offers range, then roundrobin.
func (kafkaGo) balancer() stream.Balancer { return stream.RangeBalancer{} }
