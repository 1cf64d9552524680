package stream

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// openFollower opens a follower of dir that refreshes only when asked
// (FollowInterval of an hour), unless opts says otherwise.
func openFollower(t *testing.T, dir string, opts *Options) *Broker {
	t.Helper()
	if opts == nil {
		opts = &Options{FollowInterval: time.Hour}
	}
	opts.Follow = true
	b, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// publish publishes values to partition 0 of topic.
func publish(t *testing.T, b *Broker, topic string, vals ...string) {
	t.Helper()
	for _, v := range vals {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: topic, Partition: 0, Value: []byte(v)}))
	}
}

// sameEnds checks that the follower's topic has the owner's offsets.
func sameEnds(t *testing.T, owner, f *Broker, topic string) {
	t.Helper()
	want, err := owner.DescribeTopic(topic)
	require.NoError(t, err)
	got, err := f.DescribeTopic(topic)
	require.NoError(t, err)
	require.Equal(t, withoutTraffic(want.Partitions), withoutTraffic(got.Partitions))
}

// withoutTraffic is ps with the counts of what went in and out zeroed:
// those are each broker's own.
func withoutTraffic(ps []PartitionInfo) []PartitionInfo {
	out := slices.Clone(ps)
	for i := range out {
		out[i].RecordsIn, out[i].BytesIn, out[i].RecordsOut, out[i].BytesOut = 0, 0, 0, 0
	}
	return out
}

// TestFollowSeesTheOwner: a follower in the same process as the owner
// sees its topics, records and offsets; a Reader waiting at the end wakes
// when a refresh (asked for, or on the follower's own timer) finds new
// records; writes fail with ErrReadOnly.
func TestFollowSeesTheOwner(t *testing.T) {
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	require.NoError(t, owner.CreateTopic("orders", TopicConfig{Partitions: 2, SegmentBytes: 4 << 10, RetentionBytes: 1 << 20}))
	publish(t, owner, "orders", "a", "b")

	f := openFollower(t, dir, nil)
	require.Equal(t, []string{"orders"}, f.Topics())
	info, err := f.DescribeTopic("orders")
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, info.Config.RetentionBytes, "the config, from meta.db")
	sameEnds(t, owner, f, "orders")
	require.Equal(t, []string{"a", "b"}, values(t, f, "orders", 0))

	r, err := f.NewReader("orders", 0, OffsetLatest, nil)
	require.NoError(t, err)
	defer r.Close()
	got := make(chan string)
	go func() {
		for {
			rec, err := r.Next(context.Background())
			if err != nil {
				close(got)
				return
			}
			got <- string(rec.Value)
		}
	}()
	publish(t, owner, "orders", "c")
	require.NoError(t, f.Refresh())
	require.Equal(t, "c", <-got)

	// Many segments' worth, then one refresh.
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("record %d %040d", i, i))
	}
	publish(t, owner, "orders", many...)
	require.NoError(t, f.Refresh())
	for _, want := range many {
		require.Equal(t, want, <-got)
	}
	sameEnds(t, owner, f, "orders")

	// A follower on its own timer needs no Refresh.
	g := openFollower(t, dir, &Options{FollowInterval: time.Millisecond})
	rg, err := g.NewReader("orders", 1, OffsetLatest, nil)
	require.NoError(t, err)
	defer rg.Close()
	require.NoError(t, owner.Publish(t.Context(), &Record{Topic: "orders", Partition: 1, Value: []byte("on time")}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rec, err := rg.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "on time", string(rec.Value))

	for _, err := range []error{
		f.Publish(t.Context(), &Record{Topic: "orders", Value: []byte("x")}),
		f.CreateTopic("other", TopicConfig{}),
		f.DeleteTopic("orders"),
		f.AddPartitions("orders", 3),
		f.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "orders"}: 0}),
		f.DeleteGroup("g"),
		func() error { _, err := f.DeleteRecords("orders", 0, 1); return err }(),
	} {
		require.ErrorIs(t, err, ErrReadOnly)
	}

	require.NoError(t, f.Close())
	_, ok := <-got
	require.False(t, ok, "Close ends the waiting reader")
	require.ErrorIs(t, f.Refresh(), ErrClosed)
}

// TestFollowNeverBlocksTheOwner: a follower holds no lock and writes
// nothing: the owner opens while followers are open, closes, crashes and
// reopens under them, and they read on.
func TestFollowNeverBlocksTheOwner(t *testing.T) {
	dir := t.TempDir()
	owner, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, owner.CreateTopic("t", TopicConfig{SegmentBytes: 4 << 10}))
	publish(t, owner, "t", "1", "2")
	require.NoError(t, owner.Close())

	before := snapshotTree(t, dir)
	f := openFollower(t, dir, nil)
	require.NoError(t, f.Refresh())
	require.Equal(t, before, snapshotTree(t, dir), "a follower creates and changes nothing, not even LOCK")
	_, err = os.Stat(filepath.Join(dir, lockFile))
	require.NoError(t, err, "the owner's LOCK file, left as it was")

	// The owner opens (at once: LockTimeout 0) while the follower is open.
	r, err := f.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer r.Close()
	next := func() string {
		t.Helper()
		rec, err := r.Next(t.Context())
		require.NoError(t, err)
		return string(rec.Value)
	}
	require.Equal(t, "1", next())
	require.Equal(t, "2", next())
	for round := range 3 {
		owner, err = Open(dir, &Options{Sync: SyncNever})
		require.NoError(t, err, "round %d", round)
		v := fmt.Sprint("round ", round)
		publish(t, owner, "t", v)
		if round == 1 {
			crash(t, owner) // preallocated tail left, recovered by the next Open
		} else {
			require.NoError(t, owner.Close()) // trims the tail under the follower
		}
		require.NoError(t, f.Refresh())
		require.Equal(t, v, next())
	}
	require.Equal(t, []string{"1", "2", "round 0", "round 1", "round 2"}, values(t, f, "t", 0))

	// Two followers at once, and a read-only open beside them.
	g := openFollower(t, dir, nil)
	require.Equal(t, values(t, f, "t", 0), values(t, g, "t", 0))
	ro, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, ro.Close())
}

// TestFollowTopicChanges: topics created, grown, deleted and created again
// by the owner reach a follower at its next refresh; a reader of a deleted
// topic gets ErrTopicNotFound.
func TestFollowTopicChanges(t *testing.T) {
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	f := openFollower(t, dir, nil)
	require.Empty(t, f.Topics())

	require.NoError(t, owner.CreateTopic("new", TopicConfig{Partitions: 2, SegmentBytes: 8 << 10}))
	publish(t, owner, "new", "x")
	require.NoError(t, f.Refresh())
	require.Equal(t, []string{"new"}, f.Topics())
	info, err := f.DescribeTopic("new")
	require.NoError(t, err)
	require.EqualValues(t, 8<<10, info.Config.SegmentBytes)
	require.Len(t, info.Partitions, 2)

	require.NoError(t, owner.AddPartitions("new", 3))
	require.NoError(t, owner.Publish(t.Context(), &Record{Topic: "new", Partition: 2, Value: []byte("p2")}))
	require.NoError(t, f.Refresh())
	require.Equal(t, []string{"p2"}, values(t, f, "new", 2))

	r, err := f.NewReader("new", 0, OffsetLatest, nil)
	require.NoError(t, err)
	defer r.Close()
	done := make(chan error)
	go func() { _, err := r.Next(context.Background()); done <- err }()
	require.NoError(t, owner.DeleteTopic("new"))
	require.NoError(t, f.Refresh())
	require.ErrorIs(t, <-done, ErrTopicNotFound)
	require.Empty(t, f.Topics())
	_, err = f.DescribeTopic("new")
	require.ErrorIs(t, err, ErrTopicNotFound)

	// Created again under the same name: a new log from offset 0.
	require.NoError(t, owner.CreateTopic("new", TopicConfig{}))
	publish(t, owner, "new", "again")
	require.NoError(t, f.Refresh())
	require.Equal(t, []string{"again"}, values(t, f, "new", 0))
	sameEnds(t, owner, f, "new")
}

// TestFollowCommittedOffsets: committed offsets and lag come from meta.db
// as the owner's last commit left it; a follower's own consumer starts
// from them and cannot commit.
func TestFollowCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	require.NoError(t, owner.CreateTopic("t", TopicConfig{}))
	publish(t, owner, "t", "a", "b", "c")
	f := openFollower(t, dir, nil)
	c, err := owner.Subscribe("billing", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	defer c.Close()
	recs, err := c.Poll(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.NoError(t, c.CommitOffsets(t.Context(), map[TopicPartition]int64{{Topic: "t"}: 2}))

	require.NoError(t, f.Refresh())
	require.Equal(t, []string{"billing"}, f.Groups())
	off, err := f.CommittedOffsets("billing")
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{{Topic: "t"}: 2}, off)
	gi, err := f.DescribeGroup("billing")
	require.NoError(t, err)
	require.Equal(t, "Empty", gi.State, "the owner's members are not the follower's to know")
	require.Equal(t, []GroupPartitionInfo{{Topic: "t", Committed: 2, End: 3, Lag: 1}}, gi.Partitions)

	fc, err := f.Subscribe("billing", []string{"t"}, nil)
	require.NoError(t, err)
	defer fc.Close()
	recs, err = fc.Poll(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "c", string(recs[0].Value))
	require.ErrorIs(t, fc.Commit(t.Context()), ErrReadOnly)

	// A commit after the last refresh: seen once the copy is taken again
	// (reads take it themselves once FollowInterval has passed).
	require.NoError(t, c.CommitOffsets(t.Context(), map[TopicPartition]int64{{Topic: "t"}: 3}))
	require.NoError(t, f.Refresh())
	off, err = f.CommittedOffsets("billing")
	require.NoError(t, err)
	require.EqualValues(t, 3, off[TopicPartition{Topic: "t"}])
}

// TestFollowAlteredConfigAndGenerations: a follower takes in a topic's
// config as the owner alters it, and each group's last completed generation,
// from meta.db's copy.
func TestFollowAlteredConfigAndGenerations(t *testing.T) {
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	require.NoError(t, owner.CreateTopic("t", TopicConfig{Partitions: 2}))
	publish(t, owner, "t", "a")
	f := openFollower(t, dir, nil)

	require.NoError(t, owner.AlterTopic("t", func(c *TopicConfig) { c.Retention, c.SegmentBytes = time.Hour, 1<<20 }))
	require.NoError(t, owner.AddPartitions("t", 3))
	require.NoError(t, f.Refresh())
	want, err := owner.DescribeTopic("t")
	require.NoError(t, err)
	got, err := f.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, want.Config, got.Config)
	require.Equal(t, time.Hour, got.Config.Retention)

	c, err := owner.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Poll(t.Context())
	require.NoError(t, err)
	live, err := owner.DescribeGroup("g")
	require.NoError(t, err)
	require.NoError(t, f.Refresh())
	gi, err := f.DescribeGroup("g")
	require.NoError(t, err)
	require.Empty(t, gi.Members, "the owner's live members are not the follower's to know")
	require.NotNil(t, gi.Last)
	require.Equal(t, live.Generation, gi.Generation)
	require.Equal(t, live.Last.Members, gi.Last.Members)
	require.Len(t, gi.Last.Members[0].Assignment, 3)
}

// TestFollowUnreadableMeta: a meta.db that cannot be read costs configs
// (defaults) and committed offsets (ErrMetadataUnavailable), not the
// records.
func TestFollowUnreadableMeta(t *testing.T) {
	dir := t.TempDir()
	owner, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, owner.CreateTopic("t", TopicConfig{SegmentBytes: 8 << 10}))
	publish(t, owner, "t", "a")
	require.NoError(t, owner.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.db"), []byte("garbage, not a bbolt file at all!"), 0o600))

	f := openFollower(t, dir, nil)
	require.Equal(t, []string{"a"}, values(t, f, "t", 0))
	info, err := f.DescribeTopic("t")
	require.NoError(t, err)
	require.EqualValues(t, DefaultSegmentBytes, info.Config.SegmentBytes, "the default: the config is unknown")
	_, err = f.CommittedOffsets("g")
	require.ErrorIs(t, err, ErrMetadataUnavailable)
	_, err = f.DescribeGroup("g")
	require.ErrorIs(t, err, ErrMetadataUnavailable)
	require.ErrorIs(t, f.Refresh(), ErrMetadataUnavailable)
}

// TestFollowNoGoroutinesLeak: a follower's refresh goroutine ends with
// Close.
func TestFollowNoGoroutinesLeak(t *testing.T) {
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	require.NoError(t, owner.CreateTopic("t", TopicConfig{}))
	before := runtime.NumGoroutine()
	for range 5 {
		f, err := Open(dir, &Options{Follow: true, FollowInterval: time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	require.True(t, assertEventually(func() bool { return runtime.NumGoroutine() <= before }))
	_, err := Open(dir, &Options{Follow: true, FollowInterval: -1})
	require.ErrorIs(t, err, ErrInvalidConfig)
}
