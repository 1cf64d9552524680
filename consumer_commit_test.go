package stream

// Commit, CommitOffsets, Committed, auto-commit, fenced and stale commits, offsets expiry.

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------------
// Commits

func TestCommitSemantics(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic("other", TopicConfig{}))
	cgPublish(t, b, "t", 0, 10)
	p0, p1 := cgTP("t", 0), cgTP("t", 1)
	ctx := t.Context()
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 4})

	require.Equal(t, tbRange(0, 4), cgOffsets(cgPollN(t, c, 4), 0))
	require.NoError(t, c.Commit(ctx))
	got, err := c.Committed(ctx, p0, p1)
	require.NoError(t, err)
	// The committed offset is the next one to read. p1 had nothing and its
	// position (ResetEarliest) is known only once fetched, so it may or
	// may not be committed at 0.
	require.Equal(t, int64(4), got[p0])
	if off, ok := got[p1]; ok {
		require.Zero(t, off)
	}
	all, err := c.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, got, all, "no partitions named: all of the group's")
	none, err := c.Committed(ctx, cgTP("other", 0))
	require.NoError(t, err)
	require.Empty(t, none, "never committed: absent")

	// CommitOffsets commits exactly what it is given, even backwards.
	require.NoError(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 2}))
	got, err = c.Committed(ctx, p0)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{p0: 2}, got)
	require.NoError(t, c.CommitOffsets(ctx, nil))

	// Bad commits are refused whole.
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 5, p1: -1}), ErrInvalidArgument)
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{p0: 5, cgTP("other", 0): 1}), ErrNotAssigned)
	require.ErrorIs(t, c.CommitOffsets(ctx, map[TopicPartition]int64{cgTP("t", 9): 1}), ErrNotAssigned)
	got, err = c.Committed(ctx, p0)
	require.NoError(t, err)
	require.Equal(t, int64(2), got[p0])

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, c.Commit(canceled), context.Canceled)
	require.ErrorIs(t, c.CommitOffsets(canceled, map[TopicPartition]int64{p0: 3}), context.Canceled)
	_, err = c.Committed(canceled)
	require.ErrorIs(t, err, context.Canceled)

	// A new member reads from the committed offset, exactly.
	require.NoError(t, c.Close())
	c2 := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetLatest})
	require.Equal(t, tbRange(2, 10), cgOffsets(cgPollN(t, c2, 8), 0))
}

// A commit made inside OnAssigned belongs to the new generation and
// succeeds (Kafka's onPartitionsAssigned may commit).
func TestCommitInsideOnAssigned(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 10)
	tp := cgTP("t", 0)
	errs := make(chan error, 1)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
		OnAssigned: func(c *Consumer, parts []TopicPartition) {
			errs <- c.CommitOffsets(context.Background(), map[TopicPartition]int64{tp: 6})
		}})
	recs := cgPollN(t, c, 4)
	require.NoError(t, tbRecv(t, errs))
	require.Equal(t, tbRange(6, 10), cgOffsets(recs, 0), "reading starts at the commit made in OnAssigned")
}

func TestCommitsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 50)
	cgPublish(t, b, "t", 1, 50)
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 30})
	require.NoError(t, err)
	first := cgPollN(t, c, 40)
	require.NoError(t, c.Commit(t.Context()))
	committed, err := c.Committed(t.Context())
	require.NoError(t, err)
	for p := int32(0); p < 2; p++ {
		offs := cgOffsets(first, p)
		if len(offs) > 0 {
			require.Equal(t, offs[len(offs)-1]+1, committed[cgTP("t", p)])
		}
	}
	require.NoError(t, c.Close())
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"g"}, b.Groups())
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members)
	require.Len(t, info.Partitions, len(committed))
	for _, p := range info.Partitions {
		require.Equal(t, committed[cgTP(p.Topic, p.Partition)], p.Committed)
		require.Equal(t, int64(50), p.End)
		require.Equal(t, 50-p.Committed, p.Lag)
	}

	cgPublish(t, b, "t", 0, 10)
	cgPublish(t, b, "t", 1, 10)
	// ResetLatest: were the commits lost, it would skip to the end.
	c = cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetLatest})
	want := 120 - int(committed[cgTP("t", 0)]+committed[cgTP("t", 1)])
	second := cgPollN(t, c, want)
	require.Len(t, second, want)
	cgCheckValues(t, second)
	for p := int32(0); p < 2; p++ {
		require.Equal(t, tbRange(committed[cgTP("t", p)], 60), cgOffsets(second, p), "partition %d resumes at its commit", p)
	}
}

func TestAutoCommit(t *testing.T) {
	clock := newTBClock(time.Unix(1_700_000_000, 0))
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock.Now})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 40)
	tp := cgTP("t", 0)
	seen := make(chan int64, 1)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
		AutoCommit: true, AutoCommitEvery: time.Minute, MaxPollRecords: 10,
		OnRevoked: func(c *Consumer, parts []TopicPartition) {
			got, _ := c.Committed(context.Background(), tp)
			seen <- got[tp]
		}})

	require.Equal(t, tbRange(0, 10), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(-1), cgCommitted(t, b, "g", tp), "not due yet")
	require.Equal(t, tbRange(10, 20), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(-1), cgCommitted(t, b, "g", tp), "not due yet")

	clock.Set(clock.Now().Add(time.Minute))
	require.Equal(t, tbRange(20, 30), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(20), cgCommitted(t, b, "g", tp),
		"due: the Poll committed what earlier Polls returned, before fetching")
	require.Equal(t, tbRange(30, 40), cgOffsets(cgPollN(t, c, 10), 0))
	require.Equal(t, int64(20), cgCommitted(t, b, "g", tp), "the interval starts again")

	// Close commits, before OnRevoked, which sees it (item 75).
	require.NoError(t, c.Close())
	require.Equal(t, int64(40), tbRecv(t, seen))
	require.Equal(t, int64(40), cgCommitted(t, b, "g", tp))

	// Without AutoCommit nothing is committed for you.
	c = cgSubscribe(t, b, "manual", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	cgPollN(t, c, 40)
	clock.Set(clock.Now().Add(2 * time.Minute))
	cgPublish(t, b, "t", 0, 1)
	cgPollN(t, c, 1)
	require.NoError(t, c.Close())
	require.Equal(t, int64(-1), cgCommitted(t, b, "manual", tp))
}

// Auto-commit runs before a revocation, so the new owner starts after the
// records the old one was given.
func TestAutoCommitBeforeRevocation(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	cgPublish(t, b, "t", 0, 5)
	cgPublish(t, b, "t", 1, 5)
	tr := newCGTracker()
	a := cgStart(t, b, tr, "a", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest, AutoCommit: true, AutoCommitEvery: time.Hour,
		OnRevoked: func(*Consumer, []TopicPartition) {}}, nil) // no manual commit
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "assigned"))
	got := cgDelivered{}
	got.add(t, a.take(t, 10)...)

	bm := cgStart(t, b, tr, "b", "g", []string{"t"}, ConsumerOptions{Reset: ResetEarliest}, nil)
	require.Equal(t, cgTPs("t", 0, 1), a.expect(t, "revoked"))
	require.Equal(t, cgTPs("t", 0), a.expect(t, "assigned"))
	require.Equal(t, cgTPs("t", 1), bm.expect(t, "assigned"))
	cgPublish(t, b, "t", 0, 1)
	cgPublish(t, b, "t", 1, 1)
	got.add(t, a.take(t, 1)...)
	recs := bm.take(t, 1)
	require.Equal(t, int64(5), recs[0].Offset, "b starts where a's auto-commit left p1")
	got.add(t, recs...)
	a.close(t)
	bm.close(t)
	got.add(t, drain(a.recs, bm.recs)...)
	tr.check(t)
	got.exactlyOnce(t, "t", []int64{6, 6})
}

// A fenced member's Commit reports ErrFenced even when it has no position
// to commit (it was replaced before its first fetch).
func TestFencedCommitWithNothingToCommit(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	static := &ConsumerOptions{Reset: ResetEarliest, InstanceID: "s", SessionTimeout: time.Hour}
	old, err := b.Subscribe("g", []string{"t"}, static)
	require.NoError(t, err)
	defer old.Close()
	newer, err := b.Subscribe("g", []string{"t"}, static)
	require.NoError(t, err)
	defer newer.Close()
	require.ErrorIs(t, old.Commit(t.Context()), ErrFenced)
	require.ErrorIs(t, old.CommitOffsets(t.Context(), nil), ErrFenced)
	require.NoError(t, newer.Commit(t.Context()), "nothing to commit is a no-op")
}

// Item 96: deleting a topic drops every group's offsets for it (a topic
// created again under the name starts without them) and rebalances the
// groups that subscribed to it. Item 48: a record larger than a fetch's
// byte budget is still delivered.
func TestDeleteTopicDropsOffsetsAndRebalances(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, MaxRecordBytes: 3 << 20}))
	require.NoError(t, b.CreateTopic("u", TopicConfig{}))
	big := make([]byte, 2<<20) // past the 1 MiB a fetch asks for
	big[len(big)-1] = 7
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: big}))
	cgPublish(t, b, "u", 0, 1)
	c := cgSubscribe(t, b, "g", []string{"t", "u"}, &ConsumerOptions{Reset: ResetEarliest})
	got := cgPollN(t, c, 2)
	var sawBig bool
	for _, r := range got {
		sawBig = sawBig || bytes.Equal(r.Value, big)
	}
	require.True(t, sawBig, "the oversized record came through whole")
	require.NoError(t, c.Commit(t.Context()))
	committed, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Contains(t, committed, TopicPartition{Topic: "t", Partition: 0})

	before, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.NoError(t, b.DeleteTopic("t"))
	committed, err = b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{{Topic: "u", Partition: 0}: 1}, committed, "only u's offset is left")
	require.Eventually(t, func() bool { // the member's Polls carry out the rebalance
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		defer cancel()
		_, _ = c.Poll(ctx)
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		return info.Generation > before.Generation && info.State == "Stable" &&
			slices.Equal(c.Assignment(), []TopicPartition{{Topic: "u", Partition: 0}})
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())

	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	committed, err = b.CommittedOffsets("g")
	require.NoError(t, err)
	require.NotContains(t, committed, TopicPartition{Topic: "t", Partition: 0}, "gone for good, across a restart")
}

// Item 88: a group with no member keeps its offsets for OffsetsRetention
// (7 days by default) after it emptied or last committed, whichever is
// later, then loses them; a group with members never does; negative keeps
// them forever; after a restart the clock starts again at Open.
func TestOffsetsExpire(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := openBroker(t, dir, &Options{Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 3)
	commitAndLeave := func(group string) {
		c := cgSubscribe(t, b, group, []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		cgPollN(t, c, 3)
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())
	}
	commitAndLeave("gone")
	// A member alive all along (a MaxPollInterval longer than the test's
	// jumps of the clock; otherwise the expiry check would evict it first).
	stay := cgSubscribe(t, b, "active", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollInterval: 365 * 24 * time.Hour})
	cgPollN(t, stay, 3)
	require.NoError(t, stay.Commit(t.Context()))
	has := func(b *Broker, group string) bool {
		offs, err := b.CommittedOffsets(group)
		require.NoError(t, err)
		return len(offs) > 0
	}

	advance(DefaultOffsetsRetention - time.Minute)
	b.groups.Expire()
	require.True(t, has(b, "gone"), "not yet")
	advance(2 * time.Minute)
	b.groups.Expire()
	require.False(t, has(b, "gone"), "empty for 7 days: expired")
	require.True(t, has(b, "active"), "a group with a member keeps its offsets")
	require.NotContains(t, b.Groups(), "gone")
	c := cgSubscribe(t, b, "gone", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, int64(0), cgPollN(t, c, 1)[0].Offset, "back: from the reset policy")
	require.NoError(t, c.Close())
	require.NoError(t, stay.Close())

	// After a restart the empty time counts from Open.
	commitAndLeave("gone")
	require.NoError(t, b.Close())
	advance(30 * 24 * time.Hour)
	b = openBroker(t, dir, &Options{Now: clock})
	b.groups.Expire()
	require.True(t, has(b, "gone"), "empty since before Open: the clock starts at Open")
	advance(DefaultOffsetsRetention + time.Second)
	b.groups.Expire()
	require.False(t, has(b, "gone"))
	require.False(t, has(b, "active"), "empty since Open, like any other")
	require.NoError(t, b.Close())

	forever := openBroker(t, dir, &Options{Now: clock, OffsetsRetention: -1})
	commit := func() {
		c, err := forever.Subscribe("kept", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		require.NoError(t, err)
		cgPollN(t, c, 1)
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())
	}
	commit()
	advance(365 * 24 * time.Hour)
	forever.groups.Expire()
	require.True(t, has(forever, "kept"))
}

// Offsets expiry (or DeleteGroup) dropping an empty group's state while a
// Subscribe is between looking it up and joining must not leave that
// member in a coordinator of its own: every member of a group shares one.
func TestSubscribeRacingOffsetsExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock, RetentionCheckInterval: time.Hour, OffsetsRetention: time.Millisecond})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))

	// Deterministic: the expiry runs exactly in the gap.
	require.NoError(t, b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: 0}))
	now.Add(10)
	b.groups.BeforeJoin = func() { b.groups.BeforeJoin = nil; b.groups.Expire() }
	c, err := b.Subscribe("g", []string{"t"}, nil)
	require.NoError(t, err)
	c2, err := b.Subscribe("g", []string{"t"}, nil)
	require.NoError(t, err)
	require.True(t, c.m.Registered() && c2.m.Registered(), "one coordinator for the group")
	require.NoError(t, c.Close())
	require.NoError(t, c2.Close())

	// And with real goroutines.
	for range 300 {
		require.NoError(t, b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: 0}))
		now.Add(10)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.groups.Expire() }()
		c, err := b.Subscribe("g", []string{"t"}, nil)
		require.NoError(t, err)
		wg.Wait()
		require.True(t, c.m.Registered(), "the member is in the group's coordinator")
		require.NoError(t, c.Close())
		now.Add(10)
		b.groups.Expire()
	}
}

// A member evicted for not polling empties its group when its
// MaxPollInterval runs out, not at its last commit, nor when the eviction
// is noticed: expiry counts from then.
func TestOffsetsExpireAfterEviction(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := openBroker(t, "", &Options{Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 1)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollInterval: time.Hour})
	cgPollN(t, c, 1) // its last Poll: evicted an hour later
	require.NoError(t, c.Commit(t.Context()))
	advance(30 * time.Minute)
	b.groups.Expire() // alive
	advance(DefaultOffsetsRetention + 29*time.Minute)
	b.groups.Expire() // evicted at +1h, noticed now: a minute short of the retention
	offs, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.NotEmpty(t, offs)
	advance(time.Minute)
	b.groups.Expire()
	offs, err = b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Empty(t, offs)
}

// SetCommittedOffsets refuses a group with members before looking at the
// offsets, as Kafka's reset-offsets does.
func TestSetCommittedOffsetsRefusesMembersFirst(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	c, err := b.Subscribe("g", []string{"t"}, nil)
	require.NoError(t, err)
	defer c.Close()
	err = b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "nope"}: 0})
	require.ErrorIs(t, err, ErrGroupNotEmpty)
	err = b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: 99})
	require.ErrorIs(t, err, ErrGroupNotEmpty)
	require.NoError(t, c.Close())
	err = b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: 99})
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	err = b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t"}: -1})
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
}
