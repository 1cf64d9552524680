package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// Retries wait Backoff apart, by default 100 ms doubling: a record failing
// three times is tried at 0, 100 and 300 ms, then dead-lettered. Under
// synctest the waits are virtual and exact.
func TestHandleDefaultBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
		ctx, cancel := context.WithCancel(t.Context())
		var at []time.Duration
		start := time.Now()
		done := make(chan error)
		go func() {
			done <- Handle(ctx, b.Client(), "g", []string{"t"}, func(context.Context, *Record) error {
				at = append(at, time.Since(start))
				return errors.New("no")
			}, &HandlerOptions{Group: GroupOptions{Reset: ResetEarliest}})
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}, at)
		dlt, err := b.DescribeTopic("t.DLT")
		require.NoError(t, err)
		require.Equal(t, int64(1), dlt.Partitions[0].EndOffset)
		cancel()
		require.NoError(t, <-done)
	})
}

// The default backoff doubles from 100 ms and stays at 5 s.
func TestDefaultBackoffSchedule(t *testing.T) {
	var got []time.Duration
	for retry := 1; retry <= 8; retry++ {
		got = append(got, defaultBackoff(retry))
	}
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}, got)
}

// A stop during a backoff returns at once: the record is not
// dead-lettered, not committed.
func TestHandleStopDuringBackoff(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
	ctx, cancel := context.WithCancel(t.Context())
	failed := make(chan struct{}, 1)
	done := make(chan error)
	go func() {
		done <- Handle(ctx, b.Client(), "g", []string{"t"}, func(context.Context, *Record) error {
			return errors.New("no")
		}, &HandlerOptions{
			Group:       GroupOptions{Reset: ResetEarliest},
			MaxAttempts: 5,
			Backoff:     func(int) time.Duration { return time.Hour },
			OnError:     func([]*Record, int, error) { failed <- struct{}{} },
		})
	}()
	<-failed
	cancel()
	require.NoError(t, <-done)
	_, err := b.DescribeTopic("t.DLT")
	require.ErrorIs(t, err, ErrTopicNotFound, "nothing dead-lettered")
	require.Empty(t, committedOf(t, b, "g"), "nothing committed")
}

// With Concurrency 2, two partitions' records are handled at the same
// time: each partition's first record waits until the other's has begun.
func TestHandlePartitionsAtOnce(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: []byte("a")},
		&Record{Topic: "t", Partition: 1, Value: []byte("b")}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	both := make(chan struct{}, 2)
	done := make(chan error)
	go func() {
		done <- Handle(ctx, b.Client(), "g", []string{"t"}, func(ctx context.Context, r *Record) error {
			close(started[r.Partition])
			select {
			case <-started[1-r.Partition]:
				both <- struct{}{}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, &HandlerOptions{Group: GroupOptions{Reset: ResetEarliest}, Concurrency: 2})
	}()
	for range 2 {
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			t.Fatal("the two partitions were not handled at once")
		}
	}
	cancel()
	require.NoError(t, <-done)
}

// DeadLetterOf reads Spring Kafka's encodings, and says when a record has
// no dead-letter headers.
func TestDeadLetterOf(t *testing.T) {
	_, ok := DeadLetterOf(&Record{Headers: []Header{{Key: "x", Value: []byte("y")}}})
	require.False(t, ok)

	ts := time.UnixMilli(1_700_000_000_123)
	r := &Record{Headers: []Header{
		{Key: "kafka_dlt-original-topic", Value: []byte("old")},
		{Key: "kafka_dlt-original-topic", Value: []byte("orders")},
		{Key: "kafka_dlt-original-partition", Value: binary.BigEndian.AppendUint32(nil, 7)},
		{Key: "kafka_dlt-original-offset", Value: binary.BigEndian.AppendUint64(nil, 1<<40)},
		{Key: "kafka_dlt-original-timestamp", Value: binary.BigEndian.AppendUint64(nil, uint64(ts.UnixMilli()))},
		{Key: "kafka_dlt-original-timestamp-type", Value: []byte("CreateTime")},
		{Key: "kafka_dlt-original-consumer-group", Value: []byte("billing")},
		{Key: "kafka_dlt-exception-message", Value: []byte("Listener failed")},
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
	}}
	info, ok := DeadLetterOf(r)
	require.True(t, ok)
	require.Equal(t, DeadLetterInfo{Topic: "orders", Partition: 7, Offset: 1 << 40, Timestamp: ts, Group: "billing",
		Error: "Listener failed", ErrorType: "org.springframework.kafka.listener.ListenerExecutionFailedException"}, info)
}

// A dead-letter topic the handler cannot write stops it with the publish's
// error; the failed record is not committed.
func TestHandleDeadLetterUnwritable(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
	err := Handle(t.Context(), b.Client(), "g", []string{"t"}, func(context.Context, *Record) error {
		return errors.New("no")
	}, &HandlerOptions{
		Group: GroupOptions{Reset: ResetEarliest}, MaxAttempts: 1,
		DeadLetter: func(*Record) string { return "not a valid name!" },
	})
	require.ErrorIs(t, err, ErrInvalidTopic)
	require.Empty(t, committedOf(t, b, "g"), "nothing committed")
}

// Permanent(nil) is nil; Permanent keeps its error reachable.
func TestPermanent(t *testing.T) {
	require.NoError(t, Permanent(nil))
	base := fmt.Errorf("bad input")
	require.ErrorIs(t, Permanent(base), base)
	require.Equal(t, "bad input", Permanent(base).Error())
}

// committedOf returns a group's committed offsets.
func committedOf(t *testing.T, b *Broker, group string) map[TopicPartition]int64 {
	t.Helper()
	info, err := b.DescribeGroup(group)
	require.NoError(t, err)
	out := map[TopicPartition]int64{}
	for _, p := range info.Partitions {
		if p.Committed >= 0 {
			out[TopicPartition{Topic: p.Topic, Partition: p.Partition}] = p.Committed
		}
	}
	return out
}

// A BatchError without Err dead-letters its record with the BatchError as
// the cause; one whose Index is outside the batch stops HandleBatch with
// ErrInvalidArgument, committing nothing of that batch.
func TestHandleBatchErrorEdges(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("a")}, &Record{Topic: "t", Value: []byte("b")}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := HandleBatch(ctx, b.Client(), "g", []string{"t"}, func(_ context.Context, recs []*Record) error {
		if string(recs[0].Value) == "a" {
			return &BatchError{Index: 0} // no Err
		}
		cancel()
		return nil
	}, &HandlerOptions{Group: GroupOptions{Reset: ResetEarliest}, MaxAttempts: 1})
	require.NoError(t, err)
	rd, err := b.NewReader("t.DLT", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	r, err := rd.Next(t.Context())
	require.NoError(t, err)
	info, ok := DeadLetterOf(r)
	require.True(t, ok)
	require.Equal(t, "stream: batch record 0: <nil>", info.Error)
	require.Equal(t, map[TopicPartition]int64{{Topic: "t", Partition: 0}: 2}, committedOf(t, b, "g"))

	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("c")}))
	err = HandleBatch(t.Context(), b.Client(), "g", []string{"t"}, func(_ context.Context, recs []*Record) error {
		return &BatchError{Index: len(recs), Err: errors.New("past the end")}
	}, &HandlerOptions{Group: GroupOptions{Reset: ResetEarliest}, MaxAttempts: 1})
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.Equal(t, map[TopicPartition]int64{{Topic: "t", Partition: 0}: 2}, committedOf(t, b, "g"))
}

// A stop while a record's dead letter is being written finishes it: the
// dead letter is written and the record committed, and Handle returns nil.
func TestHandleStopDuringDeadLetter(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := Handle(ctx, b.Client(), "g", []string{"t"}, func(context.Context, *Record) error {
		return errors.New("no")
	}, &HandlerOptions{
		Group: GroupOptions{Reset: ResetEarliest}, MaxAttempts: 1,
		DeadLetter: func(r *Record) string { cancel(); return r.Topic + DeadLetterSuffix },
	})
	require.NoError(t, err, "a stop returns nil")
	dlt, err := b.DescribeTopic("t.DLT")
	require.NoError(t, err)
	require.Equal(t, int64(1), dlt.Partitions[0].EndOffset)
	require.Equal(t, map[TopicPartition]int64{{Topic: "t", Partition: 0}: 1}, committedOf(t, b, "g"))
}

// A failure without a dead letter and a failed commit are both returned:
// the client closed under the handler.
func TestHandleJoinsFailures(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: []byte("a")},
		&Record{Topic: "t", Partition: 1, Value: []byte("b")}))
	boom := errors.New("boom")
	var closed bool
	err := Handle(t.Context(), b.Client(), "g", []string{"t"}, func(_ context.Context, r *Record) error {
		if r.Partition == 0 {
			return boom
		}
		if !closed {
			closed = true
			require.NoError(t, b.Close()) // the commit that follows fails
		}
		return nil
	}, &HandlerOptions{Group: GroupOptions{Reset: ResetEarliest}, MaxAttempts: 1,
		DeadLetter: func(*Record) string { return "" }})
	var he *HandlerError
	require.ErrorAs(t, err, &he)
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, err, ErrClosed)
}
