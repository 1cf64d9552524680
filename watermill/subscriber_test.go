package embedwatermill_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	embedwatermill "github.com/embedstream/stream/watermill"
)

// receive returns the next message of ch, failing t after a generous wait.
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.True(t, ok, "channel closed")
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

// requireClosed checks that ch is closed now (it may still hold nothing).
func requireClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.False(t, ok, "a message instead of a closed channel: %v", msg)
	default:
		t.Fatal("channel not closed")
	}
}

// rawRecords reads every record of topic's partitions through client.
func rawRecords(t *testing.T, client stream.Client, topic string, partitions int) []*stream.Record {
	t.Helper()
	ctx := context.Background()
	var out []*stream.Record
	for p := range int32(partitions) {
		rd, err := client.ReadPartition(ctx, topic, p, stream.OffsetEarliest)
		require.NoError(t, err)
		for {
			r, err := rd.Next(ctx)
			if err != nil {
				break // io.EOF: the end as it was
			}
			out = append(out, r.Clone())
		}
		require.NoError(t, rd.Close())
	}
	return out
}

func newPub(t *testing.T, client stream.Client, cfg embedwatermill.PublisherConfig) *embedwatermill.Publisher {
	t.Helper()
	pub, err := embedwatermill.NewPublisher(client, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

func newSub(t *testing.T, client stream.Client, cfg embedwatermill.SubscriberConfig) *embedwatermill.Subscriber {
	t.Helper()
	sub, err := embedwatermill.NewSubscriber(client, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	return sub
}

// TestMessageAsRecord: the UUID and the metadata are headers, the payload
// the value, the key comes from the metadata field, and a received message
// has all of them back, with its Origin in its context.
func TestMessageAsRecord(t *testing.T) {
	client := openClient(t)
	topic := &stream.TopicConfig{Partitions: 4}
	pub := newPub(t, client, embedwatermill.PublisherConfig{
		PartitionKey: embedwatermill.KeyFromMetadata("customer"), TopicConfig: topic})
	var sent []*message.Message
	for i, customer := range []string{"alice", "bob", "carol", "alice", "bob", "carol", ""} {
		msg := message.NewMessage("uuid-"+string(rune('a'+i)), []byte{byte(i)})
		if customer != "" {
			msg.Metadata.Set("customer", customer)
		}
		msg.Metadata.Set("trace", "t"+string(rune('0'+i)))
		sent = append(sent, msg)
	}
	require.NoError(t, pub.Publish("orders", sent...))

	recs := rawRecords(t, client, "orders", topic.Partitions)
	require.Len(t, recs, len(sent))
	partOf := map[string]int32{}
	for _, r := range recs {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		msg := sent[r.Value[0]]
		require.Equal(t, msg.UUID, h[embedwatermill.UUIDHeader])
		require.Equal(t, msg.Metadata.Get("trace"), h["trace"])
		require.Equal(t, msg.Metadata.Get("customer"), h["customer"])
		require.NotNil(t, r.Key, "the empty key is a key too")
		require.Equal(t, msg.Metadata.Get("customer"), string(r.Key))
		if p, ok := partOf[string(r.Key)]; ok {
			require.Equal(t, p, r.Partition, "one key, one partition")
		}
		partOf[string(r.Key)] = r.Partition
	}

	sub := newSub(t, client, embedwatermill.SubscriberConfig{ConsumerGroup: "g"})
	ch, err := sub.Subscribe(context.Background(), "orders")
	require.NoError(t, err)
	for range sent {
		got := receive(t, ch)
		want := sent[got.Payload[0]]
		require.Equal(t, want.UUID, got.UUID)
		require.Equal(t, want.Metadata, got.Metadata)
		o, ok := embedwatermill.OriginFromContext(got.Context())
		require.True(t, ok)
		require.Equal(t, "orders", o.Topic)
		require.Equal(t, partOf[want.Metadata.Get("customer")], o.Partition)
		require.Equal(t, want.Metadata.Get("customer"), string(o.Key))
		require.False(t, o.Timestamp.IsZero())
		for _, r := range recs {
			if r.Partition == o.Partition && r.Offset == o.Offset {
				require.Equal(t, []byte(want.Payload), r.Value)
			}
		}
		require.True(t, got.Ack())
	}
	_, ok := embedwatermill.OriginFromContext(context.Background())
	require.False(t, ok)
}

// TestReservedMetadata: metadata may not take the UUID's header.
func TestReservedMetadata(t *testing.T) {
	client := openClient(t)
	require.NoError(t, client.CreateTopic(context.Background(), "t", stream.TopicConfig{}))
	pub := newPub(t, client, embedwatermill.PublisherConfig{})
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(embedwatermill.UUIDHeader, "other")
	require.ErrorIs(t, pub.Publish("t", message.NewMessage("ok", nil), msg), stream.ErrInvalidArgument)
	require.Empty(t, rawRecords(t, client, "t", 1), "nothing of a failed Publish is published")
}

// TestAckCommitsNackRedelivers: a Nacked message comes again before the
// next one; Acks are committed, so the group's next subscriber starts at
// the first message not Acked.
func TestAckCommitsNackRedelivers(t *testing.T) {
	streamtest.CheckLeaks(t) // no goroutine of a subscription outlives its Close
	client := openClient(t)
	ctx := context.Background()
	require.NoError(t, client.CreateTopic(ctx, "t", stream.TopicConfig{Partitions: 1}))
	pub := newPub(t, client, embedwatermill.PublisherConfig{})
	for _, id := range []string{"m0", "m1", "m2"} {
		require.NoError(t, pub.Publish("t", message.NewMessage(id, []byte(id))))
	}
	cfg := embedwatermill.SubscriberConfig{ConsumerGroup: "g", NackResendSleep: time.Millisecond}
	sub1, err := embedwatermill.NewSubscriber(client, cfg, nil)
	require.NoError(t, err)
	ch, err := sub1.Subscribe(ctx, "t")
	require.NoError(t, err)

	msg := receive(t, ch)
	require.Equal(t, "m0", msg.UUID)
	require.True(t, msg.Nack())
	<-msg.Context().Done() // cancelled once handled
	again := receive(t, ch)
	require.Equal(t, "m0", again.UUID, "a Nacked message comes again before the next")
	require.Equal(t, "m0", string(again.Payload))
	require.True(t, again.Ack())
	<-again.Context().Done()
	msg = receive(t, ch)
	require.Equal(t, "m1", msg.UUID)
	require.True(t, msg.Ack())
	msg = receive(t, ch)
	require.Equal(t, "m2", msg.UUID) // not Acked
	require.NoError(t, sub1.Close())
	requireClosed(t, ch)
	<-msg.Context().Done() // the subscription ended

	gc, err := client.Subscribe("g", []string{"t"}, nil)
	require.NoError(t, err)
	committed, err := gc.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: "t", Partition: 0}: 2}, committed)
	require.NoError(t, gc.Close())

	sub2 := newSub(t, client, cfg)
	ch, err = sub2.Subscribe(ctx, "t")
	require.NoError(t, err)
	msg = receive(t, ch)
	require.Equal(t, "m2", msg.UUID, "the group goes on at the first message not Acked")
	require.True(t, msg.Ack())
}

// TestNoGroup: without a ConsumerGroup each subscription reads everything,
// and commits nothing (a later one reads everything again).
func TestNoGroup(t *testing.T) {
	streamtest.CheckLeaks(t) // no goroutine of a subscription outlives its Close
	client := openClient(t)
	ctx := context.Background()
	topic := &stream.TopicConfig{Partitions: 3}
	pub := newPub(t, client, embedwatermill.PublisherConfig{TopicConfig: topic})
	for _, id := range []string{"a", "b", "c", "d"} {
		require.NoError(t, pub.Publish("t", message.NewMessage(id, nil)))
	}
	sub := newSub(t, client, embedwatermill.SubscriberConfig{})
	for range 2 {
		ch1, err := sub.Subscribe(ctx, "t")
		require.NoError(t, err)
		ch2, err := sub.Subscribe(ctx, "t")
		require.NoError(t, err)
		for _, ch := range []<-chan *message.Message{ch1, ch2} {
			got := map[string]bool{}
			for range 4 {
				msg := receive(t, ch)
				got[msg.UUID] = true
				msg.Ack()
			}
			require.Equal(t, map[string]bool{"a": true, "b": true, "c": true, "d": true}, got)
		}
	}
}

// TestClosed: calls after Close fail with stream.ErrClosed, Close again
// does nothing, and a subscription's channel is closed when Close returns.
func TestClosed(t *testing.T) {
	streamtest.CheckLeaks(t) // no goroutine of a subscription outlives its Close
	client := openClient(t)
	ctx := context.Background()
	require.NoError(t, client.CreateTopic(ctx, "t", stream.TopicConfig{}))
	pub, err := embedwatermill.NewPublisher(client, embedwatermill.PublisherConfig{}, nil)
	require.NoError(t, err)
	require.NoError(t, pub.Publish("t", message.NewMessage("m", nil)))
	require.NoError(t, pub.Close())
	require.ErrorIs(t, pub.Publish("t", message.NewMessage("m2", nil)), stream.ErrClosed)
	require.NoError(t, pub.Close())

	sub, err := embedwatermill.NewSubscriber(client, embedwatermill.SubscriberConfig{
		ConsumerGroup: "g", TopicConfig: &stream.TopicConfig{}}, nil)
	require.NoError(t, err)
	ch, err := sub.Subscribe(ctx, "t")
	require.NoError(t, err)
	msg := receive(t, ch) // in flight, not Acked
	require.NoError(t, sub.Close())
	requireClosed(t, ch)
	<-msg.Context().Done()
	_, err = sub.Subscribe(ctx, "t")
	require.ErrorIs(t, err, stream.ErrClosed)
	require.ErrorIs(t, sub.SubscribeInitialize("t"), stream.ErrClosed)
	require.NoError(t, sub.Close())
}

// TestClientClosed: closing the client ends the subscriptions (their
// channels close) and fails publishing.
func TestClientClosed(t *testing.T) {
	streamtest.CheckLeaks(t) // no goroutine of a subscription outlives its Close
	b, err := stream.Open(t.TempDir(), nil)
	require.NoError(t, err)
	client := b.Client()
	require.NoError(t, client.CreateTopic(context.Background(), "t", stream.TopicConfig{Partitions: 2}))
	pub := newPub(t, client, embedwatermill.PublisherConfig{})
	require.NoError(t, pub.Publish("t", message.NewMessage("m", nil)))
	sub := newSub(t, client, embedwatermill.SubscriberConfig{ConsumerGroup: "g"})
	ch, err := sub.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	msg := receive(t, ch) // in flight while the client closes
	require.NoError(t, client.Close())
	select {
	case _, ok := <-ch:
		require.False(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("channel not closed after the client closed")
	}
	<-msg.Context().Done()
	require.ErrorIs(t, pub.Publish("t", message.NewMessage("m2", nil)), stream.ErrClosed)
}

// pollGapClient holds a subscription between Poll returning records and
// their dispatch, the window in which the client may close on another
// goroutine: its Close revokes the member's partitions and releases the
// records Poll returned.
type pollGapClient struct {
	stream.Client
	polled chan struct{} // closed when a Poll first returned records
	resume chan struct{} // closed by the test to let that Poll return
}

func (c *pollGapClient) Subscribe(group string, topics []string, opts *stream.GroupOptions) (stream.GroupConsumer, error) {
	gc, err := c.Client.Subscribe(group, topics, opts)
	if err != nil {
		return nil, err
	}
	return &pollGap{GroupConsumer: gc, c: c}, nil
}

type pollGap struct {
	stream.GroupConsumer
	c    *pollGapClient
	once sync.Once
}

func (g *pollGap) Poll(ctx context.Context) ([]*stream.Record, error) {
	recs, err := g.GroupConsumer.Poll(ctx)
	if len(recs) > 0 {
		g.once.Do(func() { close(g.c.polled); <-g.c.resume })
	}
	return recs, err
}

// TestClientClosedAfterPoll: a client closed after Poll returned records
// and before the subscription queued them ends the subscription without
// touching the released records; Close returns.
func TestClientClosedAfterPoll(t *testing.T) {
	streamtest.CheckLeaks(t)
	b, err := stream.Open(t.TempDir(), &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	client := &pollGapClient{Client: b.Client(), polled: make(chan struct{}), resume: make(chan struct{})}
	require.NoError(t, client.CreateTopic(context.Background(), "t", stream.TopicConfig{}))
	pub, err := embedwatermill.NewPublisher(client, embedwatermill.PublisherConfig{}, nil)
	require.NoError(t, err)
	require.NoError(t, pub.Publish("t", message.NewMessage("m", []byte("x"))))
	sub, err := embedwatermill.NewSubscriber(client, embedwatermill.SubscriberConfig{ConsumerGroup: "g"}, nil)
	require.NoError(t, err)
	ch, err := sub.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	<-client.polled
	require.NoError(t, client.Close())
	close(client.resume)
	select {
	case _, ok := <-ch:
		require.False(t, ok, "a record released by the client's Close was delivered")
	case <-time.After(10 * time.Second):
		t.Fatal("channel not closed after the client closed")
	}
	require.NoError(t, sub.Close())
	require.NoError(t, pub.Close())
}

// TestTopicCreation: topics are created only with a TopicConfig, by
// Publish, SubscribeInitialize and Subscribe.
func TestTopicCreation(t *testing.T) {
	client := openClient(t)
	ctx := context.Background()
	pub := newPub(t, client, embedwatermill.PublisherConfig{})
	require.ErrorIs(t, pub.Publish("missing", message.NewMessage("m", nil)), stream.ErrTopicNotFound)
	sub := newSub(t, client, embedwatermill.SubscriberConfig{ConsumerGroup: "g"})
	_, err := sub.Subscribe(ctx, "missing")
	require.ErrorIs(t, err, stream.ErrTopicNotFound)
	require.ErrorIs(t, sub.SubscribeInitialize("missing"), stream.ErrInvalidConfig)

	cfg := &stream.TopicConfig{Partitions: 3}
	pub = newPub(t, client, embedwatermill.PublisherConfig{TopicConfig: cfg})
	require.NoError(t, pub.Publish("by-publish", message.NewMessage("m", nil)))
	require.NoError(t, pub.Publish("by-publish", message.NewMessage("m2", nil)))
	sub = newSub(t, client, embedwatermill.SubscriberConfig{ConsumerGroup: "g", TopicConfig: cfg})
	require.NoError(t, sub.SubscribeInitialize("by-init"))
	require.NoError(t, sub.SubscribeInitialize("by-init"), "an existing topic is fine")
	_, err = sub.Subscribe(ctx, "by-subscribe")
	require.NoError(t, err)
	for _, topic := range []string{"by-publish", "by-init", "by-subscribe"} {
		_, err := client.ReadPartition(ctx, topic, 2, stream.OffsetEarliest)
		require.NoError(t, err, "%s has the configured 3 partitions", topic)
		_, err = client.ReadPartition(ctx, topic, 3, stream.OffsetEarliest)
		require.Error(t, err, topic)
	}
	require.Len(t, rawRecords(t, client, "by-publish", 3), 2)

	_, err = embedwatermill.NewPublisher(nil, embedwatermill.PublisherConfig{}, nil)
	require.ErrorIs(t, err, stream.ErrInvalidConfig)
	_, err = embedwatermill.NewSubscriber(nil, embedwatermill.SubscriberConfig{}, nil)
	require.ErrorIs(t, err, stream.ErrInvalidConfig)
	_, err = embedwatermill.NewSubscriber(client, embedwatermill.SubscriberConfig{BufferSize: -1}, nil)
	require.ErrorIs(t, err, stream.ErrInvalidConfig)
}

// spyClient wraps a client to watch its consumers' Pause and Seek, or to
// hide Pause (as a consumer without it behaves).
type spyClient struct {
	stream.Client
	hidePause     bool
	pauses, seeks atomic.Int64
}

type pauseResumer interface {
	Pause(parts ...stream.TopicPartition)
	Resume(parts ...stream.TopicPartition)
}

func (c *spyClient) Subscribe(group string, topics []string, opts *stream.GroupOptions) (stream.GroupConsumer, error) {
	gc, err := c.Client.Subscribe(group, topics, opts)
	if err != nil {
		return nil, err
	}
	spy := &spyConsumer{GroupConsumer: gc, c: c}
	if c.hidePause {
		return spy, nil
	}
	return &pausingSpy{spyConsumer: spy, p: gc.(pauseResumer)}, nil
}

type spyConsumer struct {
	stream.GroupConsumer
	c *spyClient
}

func (g *spyConsumer) Seek(tp stream.TopicPartition, offset int64) error {
	g.c.seeks.Add(1)
	return g.GroupConsumer.Seek(tp, offset)
}

type pausingSpy struct {
	*spyConsumer
	p pauseResumer
}

func (g *pausingSpy) Pause(parts ...stream.TopicPartition) {
	if len(parts) > 0 {
		g.c.pauses.Add(1)
	}
	g.p.Pause(parts...)
}

func (g *pausingSpy) Resume(parts ...stream.TopicPartition) { g.p.Resume(parts...) }

// TestFullPartition: a partition whose messages are not taken stops being
// read once BufferSize records wait (paused, or without Pause its records
// dropped and read again later), and everything then comes in order, once.
func TestFullPartition(t *testing.T) {
	for _, hide := range []bool{false, true} {
		name := "pause"
		if hide {
			name = "seek"
		}
		t.Run(name, func(t *testing.T) {
			client := &spyClient{Client: openClient(t), hidePause: hide}
			ctx := context.Background()
			require.NoError(t, client.CreateTopic(ctx, "t", stream.TopicConfig{Partitions: 1}))
			pub := newPub(t, client, embedwatermill.PublisherConfig{})
			const n = 50
			for i := range n {
				require.NoError(t, pub.Publish("t", message.NewMessage(string(rune('A'+i)), nil)))
			}
			sub := newSub(t, client, embedwatermill.SubscriberConfig{
				ConsumerGroup: "g", BufferSize: 4, MaxPollRecords: 4})
			ch, err := sub.Subscribe(ctx, "t")
			require.NoError(t, err)
			// Nothing is taken yet: the first Poll's 4 records fill the
			// buffer, so reading stops.
			require.Eventually(t, func() bool {
				if hide {
					return client.seeks.Load() > 0
				}
				return client.pauses.Load() > 0
			}, 10*time.Second, time.Millisecond)
			for i := range n {
				msg := receive(t, ch)
				require.Equal(t, string(rune('A'+i)), msg.UUID)
				require.True(t, msg.Ack())
			}
			select {
			case msg := <-ch:
				t.Fatalf("unexpected %s", msg.UUID)
			default:
			}
		})
	}
}

// TestRebalance: when a second member joins, the first gives a partition
// up; what it Acked before is committed first, so no Acked message comes
// again, and every message arrives.
func TestRebalance(t *testing.T) {
	streamtest.CheckLeaks(t)
	client := openClient(t)
	ctx := context.Background()
	require.NoError(t, client.CreateTopic(ctx, "t", stream.TopicConfig{Partitions: 2}))
	pub := newPub(t, client, embedwatermill.PublisherConfig{PartitionKey: embedwatermill.KeyFromMetadata("k")})
	// Keys until both partitions have 10 messages (placement by key is
	// fixed, so this is the same every run); the messages past 10 on a
	// partition are not counted.
	var sent []*message.Message
	count := map[int32]int{}
	for i := 0; count[0] < 10 || count[1] < 10; i++ {
		msg := message.NewMessage("m"+strconv.Itoa(i), nil)
		msg.Metadata.Set("k", strconv.Itoa(i))
		require.NoError(t, pub.Publish("t", msg))
		recs := rawRecords(t, client, "t", 2)
		var p int32
		for _, r := range recs {
			if string(r.Key) == strconv.Itoa(i) {
				p = r.Partition
			}
		}
		if count[p] == 10 { // enough on this one
			continue
		}
		count[p]++
		sent = append(sent, msg)
	}
	want := map[string]bool{}
	for _, m := range sent {
		want[m.UUID] = true
	}

	cfg := embedwatermill.SubscriberConfig{ConsumerGroup: "g"}
	sub1 := newSub(t, client, cfg)
	ch1, err := sub1.Subscribe(ctx, "t")
	require.NoError(t, err)
	acked := map[string]bool{}
	for len(acked) < 6 {
		msg := receive(t, ch1)
		acked[msg.UUID] = true
		require.True(t, msg.Ack())
	}
	inFlight := receive(t, ch1) // not Acked when the group rebalances

	sub2 := newSub(t, client, cfg)
	ch2, err := sub2.Subscribe(ctx, "t")
	require.NoError(t, err)
	got := map[string]bool{}
	for k := range acked {
		got[k] = true
	}
	deadline := time.After(10 * time.Second)
	for len(got) < len(want) {
		var msg *message.Message
		select {
		case msg = <-ch1:
		case msg = <-ch2:
		case <-deadline:
			t.Fatalf("%d of %d messages", len(got), len(want))
		}
		require.NotNil(t, msg)
		require.False(t, acked[msg.UUID], "%s was Acked before the rebalance, and came again", msg.UUID)
		if want[msg.UUID] {
			got[msg.UUID] = true
		}
		require.True(t, msg.Ack())
	}
	require.Equal(t, want, got)
	select { // its partition was revoked (the default balancer is eager)
	case <-inFlight.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the context of the message in flight during the rebalance is not cancelled")
	}
}
