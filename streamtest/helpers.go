package streamtest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// ConsumeTimeout bounds how long Consume waits for its records before it
// fails the test. Inside a testing/synctest bubble the wait is virtual: a
// Consume that can never be satisfied fails at once.
const ConsumeTimeout = 10 * time.Second

// ConsumerOptions returns consumer options suited to tests; change what the
// test needs and pass them to Subscribe or Broker.Subscribe:
//
//   - Reset: ResetEarliest, so a new group sees what the test published
//     before it subscribed (Kafka's default, ResetLatest, would not);
//   - MaxWait: 10ms;
//   - SessionTimeout: 1s (static members' partitions move on sooner);
//   - MaxPollInterval: 10s (a member that stops polling is evicted after
//     10s, not 5 minutes; under synctest, after 10s of virtual time).
//
// AutoCommit stays off: tests commit explicitly.
func ConsumerOptions() *stream.ConsumerOptions {
	return &stream.ConsumerOptions{
		Reset:           stream.ResetEarliest,
		MaxWait:         10 * time.Millisecond,
		SessionTimeout:  time.Second,
		MaxPollInterval: 10 * time.Second,
	}
}

// Subscribe joins group as a new member consuming topics, with opts (nil
// means ConsumerOptions()). t.Cleanup closes the consumer. It fails the test
// on error.
func Subscribe(t testing.TB, b *stream.Broker, group string, opts *stream.ConsumerOptions, topics ...string) *stream.Consumer {
	t.Helper()
	if opts == nil {
		opts = ConsumerOptions()
	}
	c, err := b.Subscribe(group, topics, opts)
	require.NoError(t, err, "streamtest.Subscribe(%q, %q)", group, topics)
	t.Cleanup(func() { c.Close() })
	return c
}

// Publish publishes values to topic as one Broker.Publish call, without keys
// (so the broker's partitioner places them stickily, all in one partition
// per call; see stream.AnyPartition), and returns the published records with
// their Partition, Offset and Timestamp filled in. It fails the test on
// error.
func Publish(t testing.TB, b *stream.Broker, topic string, values ...string) []*stream.Record {
	t.Helper()
	recs := make([]*stream.Record, len(values))
	for i, v := range values {
		recs[i] = &stream.Record{Topic: topic, Value: []byte(v)}
	}
	return PublishRecords(t, b, recs...)
}

// PublishKeyed publishes values to topic, all with key, so they land in
// the key's partition (by the broker's Partitioner), in order. It returns
// the published records.
func PublishKeyed(t testing.TB, b *stream.Broker, topic, key string, values ...string) []*stream.Record {
	t.Helper()
	recs := make([]*stream.Record, len(values))
	for i, v := range values {
		recs[i] = &stream.Record{Topic: topic, Key: []byte(key), Value: []byte(v)}
	}
	return PublishRecords(t, b, recs...)
}

// PublishBytes is Publish for []byte values. A nil value is published as
// a null value (a tombstone).
func PublishBytes(t testing.TB, b *stream.Broker, topic string, values ...[]byte) []*stream.Record {
	t.Helper()
	recs := make([]*stream.Record, len(values))
	for i, v := range values {
		recs[i] = &stream.Record{Topic: topic, Value: v}
	}
	return PublishRecords(t, b, recs...)
}

// PublishRecords publishes recs as they are, in one Broker.Publish call,
// and returns them (filled in by Publish). The broker's partitioner places
// them: a Partition set on a record counts only on a broker opened with
// stream.ManualPartitioner.
func PublishRecords(t testing.TB, b *stream.Broker, recs ...*stream.Record) []*stream.Record {
	t.Helper()
	require.NoError(t, b.Publish(context.Background(), recs...), "streamtest.Publish")
	return recs
}

// Consume reads exactly n records of topic as a member of group, commits
// them and leaves the group, as a short-lived consumer process would. It
// returns copies of the records (valid after it returns), in the order Poll
// gave them: offset order within each partition.
//
// The member uses ConsumerOptions() (so a group without commits starts at
// the earliest offset). Consume commits exactly the records it returns: if
// a Poll brings more than it needs, the rest stay uncommitted for the next
// consumer of the group. It fails the test if n records do not arrive
// within ConsumeTimeout. Use it for a group with no other live members:
// another member may hold the partitions the records are in.
func Consume(t testing.TB, b *stream.Broker, group, topic string, n int) []*stream.Record {
	t.Helper()
	out := make([]*stream.Record, 0, n)
	if n <= 0 {
		return out
	}
	c, err := b.Subscribe(group, []string{topic}, ConsumerOptions())
	require.NoError(t, err, "streamtest.Consume: subscribe %q to %q", group, topic)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ConsumeTimeout)
	defer cancel()
	next := map[stream.TopicPartition]int64{}
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("streamtest.Consume(group %q, topic %q): got %d of %d records: %v", group, topic, len(out), n, err)
		}
		for _, r := range recs {
			if len(out) == n {
				break
			}
			out = append(out, r.Clone())
			next[stream.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
		}
	}
	require.NoError(t, c.CommitOffsets(ctx, next), "streamtest.Consume: commit")
	require.NoError(t, c.Close(), "streamtest.Consume: close")
	return out
}

// Records returns a copy of every record stored in topic, partition by
// partition, each in offset order, read with Readers (no consumer group is
// involved and no offset is committed).
func Records(t testing.TB, b *stream.Broker, topic string) []*stream.Record {
	t.Helper()
	info, err := b.DescribeTopic(topic)
	require.NoError(t, err, "streamtest.Records(%q)", topic)
	var out []*stream.Record
	for _, p := range info.Partitions {
		out = append(out, readPartition(t, b, topic, p.Partition)...)
	}
	return out
}

func readPartition(t testing.TB, b *stream.Broker, topic string, partition int32) []*stream.Record {
	t.Helper()
	r, err := b.NewReader(topic, partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	require.NoError(t, err, "streamtest.Records(%q): partition %d", topic, partition)
	defer r.Close()
	var out []*stream.Record
	for {
		rec, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, "streamtest.Records(%q): partition %d", topic, partition)
		out = append(out, rec.Clone())
	}
}

// Committed returns the offsets group has committed (the next offset to
// read, per partition), without joining the group. A group that never
// committed gives an empty map.
func Committed(t testing.TB, b *stream.Broker, group string) map[stream.TopicPartition]int64 {
	t.Helper()
	offs, err := b.CommittedOffsets(group)
	require.NoError(t, err, "streamtest.Committed(%q)", group)
	if offs == nil {
		offs = map[stream.TopicPartition]int64{}
	}
	return offs
}

// Values returns the records' values as strings, for comparisons:
//
//	require.Equal(t, []string{"a", "b"}, streamtest.Values(recs))
func Values(recs []*stream.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}
