package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewFailsFast(t *testing.T) {
	_, err := kafka.New(testCtx(t), kafka.Options{})
	require.ErrorIs(t, err, stream.ErrInvalidConfig, "no brokers")

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = kafka.New(ctx, kafka.Options{Brokers: []string{addr}})
	require.Error(t, err)
}

// TestErrorsKeepKafkasDetail: a mapped error matches the embedstream
// sentinel and the cluster's own error.
func TestErrorsKeepKafkasDetail(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))
	require.NoError(t, c.CreateTopic(ctx, "dup", stream.TopicConfig{}))
	err := c.CreateTopic(ctx, "dup", stream.TopicConfig{})
	require.ErrorIs(t, err, stream.ErrTopicExists)
	require.ErrorIs(t, err, kerr.TopicAlreadyExists)
	var ke *kafka.Error
	require.ErrorAs(t, err, &ke)
	require.Equal(t, stream.ErrTopicExists, ke.Kind)

	err = c.DeleteTopic(ctx, "never-created")
	require.ErrorIs(t, err, stream.ErrTopicNotFound)
	require.ErrorIs(t, err, kerr.UnknownTopicOrPartition)

	err = c.Publish(ctx, &stream.Record{Topic: "never-created", Value: []byte("x")})
	require.ErrorIs(t, err, stream.ErrTopicNotFound)
	require.ErrorIs(t, err, kerr.UnknownTopicOrPartition)

	require.ErrorIs(t, c.CreateTopic(ctx, "zero", stream.TopicConfig{Partitions: -1}), stream.ErrInvalidConfig)
	require.NoError(t, c.Publish(ctx, &stream.Record{Topic: "dup", Partition: -2}), "the default partitioner ignores Partition")
	require.ErrorIs(t, c.Publish(ctx, &stream.Record{Topic: "dup", Timestamp: time.UnixMilli(-5)}), stream.ErrInvalidRecord)
}

type customBalancer struct{ group.RangeBalancer }

func (customBalancer) Name() string { return "custom" }

func TestSubscribeOptions(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))
	require.NoError(t, c.CreateTopic(ctx, "t", stream.TopicConfig{}))
	_, err := c.Subscribe("g", []string{"t"}, &stream.GroupOptions{Balancer: customBalancer{}})
	require.ErrorIs(t, err, stream.ErrInvalidConfig, "a balancer franz-go has no counterpart for")
	_, err = c.Subscribe("g", nil, nil)
	require.ErrorIs(t, err, stream.ErrInvalidConfig)
	_, err = c.Subscribe("g", []string{"t"}, &stream.GroupOptions{MaxPollRecords: -1})
	require.ErrorIs(t, err, stream.ErrInvalidConfig)

	// MaxPollRecords caps a Poll.
	var recs []*stream.Record
	for range 10 {
		recs = append(recs, &stream.Record{Topic: "t", Value: []byte("v")})
	}
	require.NoError(t, c.Publish(ctx, recs...))
	gc, err := c.Subscribe("g", []string{"t"}, &stream.GroupOptions{Reset: stream.ResetEarliest, MaxPollRecords: 3})
	require.NoError(t, err)
	defer gc.Close()
	total := 0
	for total < 10 {
		got, err := gc.Poll(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 3)
		total += len(got)
	}
}

func TestTopicConfigMapping(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))
	require.NoError(t, c.CreateTopic(ctx, "configured", stream.TopicConfig{
		Partitions: 3, Retention: 2 * time.Hour, RetentionBytes: 1 << 30, SegmentBytes: 1 << 24,
		SegmentAge: time.Hour, MaxRecordBytes: 1 << 16, LogAppendTime: true, Cleanup: stream.CleanupCompactDelete,
		MinCleanableDirtyRatio: 0.1, MinCompactionLag: time.Minute, MaxCompactionLag: time.Hour, DeleteRetention: 2 * time.Hour,
	}))
	rcs, err := c.Admin().DescribeTopicConfigs(ctx, "configured")
	require.NoError(t, err)
	rc, err := rcs.On("configured", nil)
	require.NoError(t, err)
	got := map[string]string{}
	for _, cfg := range rc.Configs {
		got[cfg.Key] = cfg.MaybeValue()
	}
	for k, v := range map[string]string{
		"retention.ms": "7200000", "retention.bytes": "1073741824", "segment.bytes": "16777216",
		"segment.ms": "3600000", "max.message.bytes": "65536", "message.timestamp.type": "LogAppendTime",
		"cleanup.policy": "compact,delete", "min.cleanable.dirty.ratio": "0.1", "min.compaction.lag.ms": "60000",
		"max.compaction.lag.ms": "3600000", "delete.retention.ms": "7200000",
	} {
		require.Equal(t, v, got[k], k)
	}
	details, err := c.Admin().ListTopics(ctx, "configured")
	require.NoError(t, err)
	require.Len(t, details["configured"].Partitions, 3)
}

// TestAlterTopic: changed fields are set on the cluster, a field made zero
// goes back to the cluster's default, and what cannot change is refused
// before anything is sent.
func TestAlterTopic(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))
	require.NoError(t, c.CreateTopic(ctx, "altered", stream.TopicConfig{Partitions: 2, SegmentBytes: 1 << 24}))
	settings := func() map[string]string {
		rcs, err := c.Admin().DescribeTopicConfigs(ctx, "altered")
		require.NoError(t, err)
		rc, err := rcs.On("altered", nil)
		require.NoError(t, err)
		got := map[string]string{}
		for _, cfg := range rc.Configs {
			got[cfg.Key] = cfg.MaybeValue()
		}
		return got
	}
	defaults := settings()

	var seen stream.TopicConfig
	require.NoError(t, c.AlterTopic(ctx, "altered", func(cfg *stream.TopicConfig) {
		seen = *cfg
		cfg.Retention, cfg.MaxRecordBytes, cfg.LogAppendTime, cfg.SegmentBytes = time.Hour, 4096, true, 0
	}))
	require.Equal(t, 2, seen.Partitions)
	require.Equal(t, int64(1<<24), seen.SegmentBytes, "the current config, as described")
	got := settings()
	require.Equal(t, "3600000", got["retention.ms"])
	require.Equal(t, "4096", got["max.message.bytes"])
	require.Equal(t, "LogAppendTime", got["message.timestamp.type"])
	require.NotEqual(t, "16777216", got["segment.bytes"], "zero: back to the cluster's default")
	require.Equal(t, defaults["segment.ms"], got["segment.ms"], "untouched")

	require.NoError(t, c.AlterTopic(ctx, "altered", func(cfg *stream.TopicConfig) {
		cfg.Cleanup, cfg.MinCleanableDirtyRatio, cfg.DeleteRetention = stream.CleanupCompact, 0.2, time.Minute
	}))
	got = settings()
	require.Equal(t, "compact", got["cleanup.policy"], "the policy may change after creation")
	require.Equal(t, "0.2", got["min.cleanable.dirty.ratio"])
	require.Equal(t, "60000", got["delete.retention.ms"])

	big := make([]byte, 8000)
	_, _ = rand.Read(big) // incompressible: the limit applies to the batch as sent
	err := c.Publish(ctx, &stream.Record{Topic: "altered", Partition: 0, Key: []byte("k"), Value: big})
	require.ErrorIs(t, err, stream.ErrRecordTooLarge, "the new max.message.bytes applies")

	for _, change := range []func(*stream.TopicConfig){
		func(cfg *stream.TopicConfig) { cfg.Partitions = 3 },
		func(cfg *stream.TopicConfig) { cfg.MinCompactionLag = -time.Second },
		func(cfg *stream.TopicConfig) { cfg.MinCompactionLag, cfg.MaxCompactionLag = time.Hour, time.Minute },
		func(cfg *stream.TopicConfig) { cfg.MinCleanableDirtyRatio = 1.5 },
		func(cfg *stream.TopicConfig) { cfg.RetentionBytes = -5 },
	} {
		require.ErrorIs(t, c.AlterTopic(ctx, "altered", change), stream.ErrInvalidConfig)
	}
	require.Equal(t, got, settings(), "refused changes sent nothing")
	require.ErrorIs(t, c.AlterTopic(ctx, "missing", func(*stream.TopicConfig) {}), stream.ErrTopicNotFound)
	require.ErrorIs(t, c.AlterTopic(ctx, "bad name", func(*stream.TopicConfig) {}), stream.ErrInvalidTopic)
}

// TestRecordsBothWays: what the Client publishes, a plain franz-go consumer
// reads field for field, and what a plain franz-go producer writes, the
// Client reads back the same.
func TestRecordsBothWays(t *testing.T) {
	ctx := testCtx(t)
	cluster := newCluster(t)
	c := newClientWith(t, cluster, kgo.ManualPartitioner())
	require.NoError(t, c.CreateTopic(ctx, "both", stream.TopicConfig{Partitions: 2}))
	ts := time.UnixMilli(1_650_000_000_123)

	ours := []*stream.Record{
		{Topic: "both", Partition: 1, Key: nil, Value: nil, Timestamp: ts},
		{Topic: "both", Partition: 1, Key: []byte{}, Value: []byte{}, Timestamp: ts.Add(time.Millisecond)},
		{Topic: "both", Partition: 1, Key: []byte("k"), Value: []byte("v"), Timestamp: ts.Add(2 * time.Millisecond),
			Headers: []stream.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: nil}, {Key: "b", Value: []byte{}}}},
	}
	require.NoError(t, c.Publish(ctx, ours...))

	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"both": {1: kgo.NewOffset().AtStart()}}))
	require.NoError(t, err)
	defer raw.Close()
	var theirs []*kgo.Record
	for len(theirs) < len(ours) {
		fs := raw.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		theirs = append(theirs, fs.Records()...)
	}
	for i, kr := range theirs {
		want := kafka.ToKgo(ours[i])
		require.Equal(t, int32(1), kr.Partition)
		require.Equal(t, int64(i), kr.Offset)
		require.Equal(t, want.Key == nil, kr.Key == nil, "record %d key nil-ness", i)
		require.Equal(t, want.Value == nil, kr.Value == nil, "record %d value nil-ness", i)
		require.Equal(t, string(want.Key), string(kr.Key))
		require.Equal(t, string(want.Value), string(kr.Value))
		require.Equal(t, len(want.Headers), len(kr.Headers))
		for j := range want.Headers {
			require.Equal(t, want.Headers[j].Key, kr.Headers[j].Key)
			require.Equal(t, want.Headers[j].Value == nil, kr.Headers[j].Value == nil)
			require.Equal(t, string(want.Headers[j].Value), string(kr.Headers[j].Value))
		}
		require.Equal(t, ours[i].Timestamp.UnixMilli(), kr.Timestamp.UnixMilli())
	}

	// The other way: a franz-go producer writes, the Client reads.
	produced := []*kgo.Record{
		{Topic: "both", Partition: 0, Key: []byte("x"), Value: nil, Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "h", Value: nil}, {Key: "h", Value: []byte("2")}}},
		{Topic: "both", Partition: 0, Key: nil, Value: []byte("y"), Timestamp: ts.Add(time.Second)},
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.ProduceSync(ctx, produced...).FirstErr())
	rd, err := c.ReadPartition(ctx, "both", 0, stream.OffsetEarliest)
	require.NoError(t, err)
	defer rd.Close()
	for i, kr := range produced {
		r, err := rd.Next(ctx)
		require.NoError(t, err)
		want := kafka.FromKgo(kr)
		require.Equal(t, int64(i), r.Offset)
		require.Equal(t, want.Key == nil, r.Key == nil)
		require.Equal(t, want.Value == nil, r.Value == nil)
		require.Equal(t, want.Key, r.Key)
		require.Equal(t, want.Value, r.Value)
		require.Equal(t, want.Headers, r.Headers)
		require.Equal(t, kr.Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
	}
	_, err = rd.Next(ctx)
	require.ErrorIs(t, err, io.EOF)
}

func TestReadPartitionAtTime(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))
	require.NoError(t, c.CreateTopic(ctx, "timed", stream.TopicConfig{}))
	base := time.UnixMilli(1_700_000_000_000)
	var recs []*stream.Record
	for i := range 10 {
		recs = append(recs, &stream.Record{Topic: "timed", Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	require.NoError(t, c.Publish(ctx, recs...))

	read := func(from stream.Offset) []int64 {
		rd, err := c.ReadPartition(ctx, "timed", 0, from)
		require.NoError(t, err)
		defer rd.Close()
		var out []int64
		for {
			r, err := rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				return out
			}
			require.NoError(t, err)
			out = append(out, r.Offset)
		}
	}
	require.Equal(t, []int64{5, 6, 7, 8, 9}, read(stream.AtTime(base.Add(5*time.Minute))))
	require.Equal(t, []int64{6, 7, 8, 9}, read(stream.AtTime(base.Add(5*time.Minute+time.Second))))
	require.Empty(t, read(stream.AtTime(base.Add(time.Hour))))
	require.Len(t, read(stream.AtTime(time.UnixMilli(0))), 10)
}

// TestStaleMemberCommit: a member that holds its records past the group's
// rebalance timeout is dropped from the group; its commit then fails with
// ErrStaleGeneration, and its next Poll rejoins.
func TestStaleMemberCommit(t *testing.T) {
	ctx := testCtx(t)
	cluster := newCluster(t)
	kc, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs(), Partitioner: kgo.ManualPartitioner(),
		Opts: append(testOpts(), kgo.RebalanceTimeout(500*time.Millisecond))})
	require.NoError(t, err)
	defer kc.Close()
	require.NoError(t, kc.CreateTopic(ctx, "stale", stream.TopicConfig{Partitions: 2}))
	require.NoError(t, kc.Publish(ctx,
		&stream.Record{Topic: "stale", Partition: 0, Value: []byte("a")},
		&stream.Record{Topic: "stale", Partition: 1, Value: []byte("b")}))

	a, err := kc.Subscribe("g", []string{"stale"}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer a.Close()
	var got int
	for got < 2 {
		recs, err := a.Poll(ctx)
		require.NoError(t, err)
		got += len(recs)
	}
	// A holds its records (no Poll) while B joins: the group waits for A
	// for the rebalance timeout, then goes on without it.
	b, err := kc.Subscribe("g", []string{"stale"}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer b.Close()
	for len(b.Assignment()) < 2 {
		pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := b.Poll(pctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err)
		}
	}
	err = a.Commit(ctx)
	require.ErrorIs(t, err, stream.ErrStaleGeneration)

	// A's next Polls rejoin; the group splits again.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil && len(b.Assignment()) != 1 {
			pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _ = b.Poll(pctx)
			cancel()
		}
	}()
	for len(a.Assignment()) != 1 {
		pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := a.Poll(pctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err)
		}
	}
	<-done
	require.NoError(t, ctx.Err())
}

// TestCloseWhilePolling: Close from another goroutine ends a blocked Poll
// with ErrClosed, for a member's Close and for its Client's.
func TestCloseWhilePolling(t *testing.T) {
	ctx := testCtx(t)
	cluster := newCluster(t)
	c := newClient(t, cluster)
	require.NoError(t, c.CreateTopic(ctx, "quiet", stream.TopicConfig{}))

	for _, closeIt := range []func(stream.GroupConsumer) error{
		func(gc stream.GroupConsumer) error { return gc.Close() },
		func(stream.GroupConsumer) error { return c.Close() },
	} {
		var revoked []stream.TopicPartition
		var gc stream.GroupConsumer
		gc, err := c.Subscribe("quiet-group", []string{"quiet"}, &stream.GroupOptions{
			OnRevoked: func(parts []stream.TopicPartition) { revoked = parts },
		})
		require.NoError(t, err)
		// Poll until assigned; nothing is ever published, so the next
		// Poll blocks.
		for len(gc.Assignment()) == 0 {
			pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err := gc.Poll(pctx)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded)
		}
		polled := make(chan error, 1)
		go func() {
			_, err := gc.Poll(ctx)
			polled <- err
		}()
		require.NoError(t, closeIt(gc))
		require.ErrorIs(t, <-polled, stream.ErrClosed)
		require.Equal(t, []stream.TopicPartition{{Topic: "quiet", Partition: 0}}, revoked, "OnRevoked ran in Close")
		require.Nil(t, gc.Assignment())
	}
}

// TestStaticMember: a member with an InstanceID closes without leaving the
// group, and a new member with the same InstanceID takes its place (and its
// partitions) without waiting for the session timeout.
func TestStaticMember(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, newCluster(t))
	require.NoError(t, c.CreateTopic(ctx, "static", stream.TopicConfig{Partitions: 2}))
	require.NoError(t, c.Publish(ctx, &stream.Record{Topic: "static", Value: []byte("a")}))
	for i := range 2 {
		gc, err := c.Subscribe("static-group", []string{"static"}, &stream.GroupOptions{Reset: stream.ResetEarliest, InstanceID: "worker-1"})
		require.NoError(t, err)
		for len(gc.Assignment()) != 2 {
			pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err := gc.Poll(pctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				require.NoError(t, err, "round %d", i)
			}
		}
		require.NoError(t, gc.Commit(ctx))
		require.NoError(t, gc.Close())
	}
}
