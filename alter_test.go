package stream

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/log"
)

// alter changes some of a topic's settings and fails the test on an error.
func alter(t *testing.T, b *Broker, topic string, change func(*TopicConfig)) {
	t.Helper()
	require.NoError(t, b.AlterTopic(topic, change))
}

// describe returns a topic's description.
func describe(t *testing.T, b *Broker, topic string) TopicInfo {
	t.Helper()
	info, err := b.DescribeTopic(topic)
	require.NoError(t, err)
	return info
}

// partitionLogOf returns a partition's log, for checks of what a change of
// config did to it.
func partitionLogOf(t *testing.T, b *Broker, topic string, partition int32) *log.Log {
	t.Helper()
	_, p, err := b.partitionLog(topic, partition)
	require.NoError(t, err)
	return p
}

func TestAlterTopicRecordRules(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	pub := func(r *Record) error {
		r.Topic = "t"
		return b.Publish(t.Context(), r)
	}

	// MaxRecordBytes: refused after lowering, accepted after raising.
	require.NoError(t, pub(&Record{Value: make([]byte, 2000)}))
	alter(t, b, "t", func(c *TopicConfig) { c.MaxRecordBytes = 1000 })
	require.ErrorIs(t, pub(&Record{Value: make([]byte, 2000)}), ErrRecordTooLarge)
	pr := mustProducer(b, &ProducerOptions{})
	var got error
	pr.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 2000)}, func(_ *Record, err error) { got = err })
	require.ErrorIs(t, got, ErrRecordTooLarge, "a Producer checks against the new limit too")
	require.NoError(t, pr.Close())
	alter(t, b, "t", func(c *TopicConfig) { c.MaxRecordBytes = 4000 })
	require.NoError(t, pub(&Record{Value: make([]byte, 2000)}))

	// LogAppendTime stamps records from the next Publish on, and stops.
	own := now.Add(-time.Minute)
	alter(t, b, "t", func(c *TopicConfig) { c.LogAppendTime = true })
	r := &Record{Value: []byte("stamped"), Timestamp: own}
	require.NoError(t, pub(r))
	require.True(t, r.Timestamp.Equal(now), "the append time: %v", r.Timestamp)
	alter(t, b, "t", func(c *TopicConfig) { c.LogAppendTime = false })
	r = &Record{Value: []byte("own"), Timestamp: own}
	require.NoError(t, pub(r))
	require.True(t, r.Timestamp.Equal(own))
	rd, err := b.NewReader("t", 0, AtOffset(2), &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	var stamps []time.Time
	for rec, err := range rd.All(t.Context()) {
		require.NoError(t, err)
		stamps = append(stamps, rec.Timestamp)
	}
	require.NoError(t, rd.Close())
	require.Len(t, stamps, 2)
	require.True(t, stamps[0].Equal(now) && stamps[1].Equal(own), "as stored: %v", stamps)

	// Timestamp bounds.
	alter(t, b, "t", func(c *TopicConfig) { c.MaxTimestampBehind = time.Hour; c.MaxTimestampAhead = time.Minute })
	require.ErrorIs(t, pub(&Record{Timestamp: now.Add(-2 * time.Hour)}), ErrInvalidRecord)
	require.ErrorIs(t, pub(&Record{Timestamp: now.Add(2 * time.Minute)}), ErrInvalidRecord)
	require.NoError(t, pub(&Record{Timestamp: now.Add(-30 * time.Minute)}))
	alter(t, b, "t", func(c *TopicConfig) { c.MaxTimestampBehind = 0; c.MaxTimestampAhead = -1 })
	require.NoError(t, pub(&Record{Timestamp: now.Add(-2 * time.Hour)}))
	require.NoError(t, pub(&Record{Timestamp: now.Add(24 * time.Hour)}))
	require.Equal(t, 4000, describe(t, b, "t").Config.MaxRecordBytes)
}

func TestAlterTopicSegmentsAndRetention(t *testing.T) {
	var nowMS atomic.Int64
	nowMS.Store(1_700_000_000_000)
	clock := func() time.Time { return time.UnixMilli(nowMS.Load()) }
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	publish := func(n int) {
		for range n {
			require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 200)}))
		}
	}
	publish(50)
	require.Equal(t, 1, describe(t, b, "t").Partitions[0].Segments)

	// SegmentBytes: the active segment, past the new size, rolls at the
	// next append; the next ones roll at the new size.
	alter(t, b, "t", func(c *TopicConfig) { c.SegmentBytes = 4096 })
	require.Equal(t, 1, describe(t, b, "t").Partitions[0].Segments, "the change itself rolls nothing")
	publish(100)
	segs := partitionLogOf(t, b, "t", 0).Segments()
	require.Greater(t, len(segs), 4)
	require.Greater(t, segs[0].Size, int64(4096), "sealed segments keep their size")
	for _, s := range segs[1:] {
		require.LessOrEqual(t, s.Size, int64(4096))
	}

	// RetentionBytes: enforced at the next append.
	alter(t, b, "t", func(c *TopicConfig) { c.RetentionBytes = 8192 })
	require.Zero(t, describe(t, b, "t").Partitions[0].StartOffset, "nothing deleted by the change itself")
	publish(1)
	p := describe(t, b, "t").Partitions[0]
	require.Positive(t, p.StartOffset)
	require.Less(t, p.Bytes, int64(8192+4096))

	// Retention: at the next check, for records older than the new limit.
	nowMS.Add(2 * time.Hour.Milliseconds())
	publish(1) // a fresh record, in the active segment
	alter(t, b, "t", func(c *TopicConfig) { c.RetentionBytes, c.Retention = 0, time.Hour })
	start := p.StartOffset
	b.enforceRetention()
	p = describe(t, b, "t").Partitions[0]
	require.Greater(t, p.StartOffset, start)
	require.Equal(t, 1, p.Segments, "every segment but the one with the fresh record is past the new retention")

	// SegmentAge: the next append after the age rolls.
	alter(t, b, "t", func(c *TopicConfig) { c.Retention, c.SegmentAge = 0, time.Minute })
	n := describe(t, b, "t").Partitions[0].Segments
	nowMS.Add(2 * time.Minute.Milliseconds())
	publish(1)
	require.Equal(t, n+1, describe(t, b, "t").Partitions[0].Segments)
}

// A broker arms its retention check only when some is due: a topic given
// retention by AlterTopic tells it when.
func TestAlterTopicRetentionWakesTheCheck(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	old := now.Add(-2 * time.Hour)
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("old"), Timestamp: old}))
	b.due.Take()
	require.True(t, b.due.Next().IsZero(), "no retention: no check wanted")

	alter(t, b, "t", func(c *TopicConfig) { c.Retention = time.Hour })
	require.Equal(t, old.Add(time.Hour+time.Millisecond).UnixMilli(), b.due.Next().UnixMilli(),
		"when the oldest record passes the new retention")
}

func TestAlterTopicSync(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("before")}))
	require.Equal(t, log.SyncNever, partitionLogOf(t, b, "t", 1).Policy())
	fsyncs := b.Stats().Fsyncs

	alter(t, b, "t", func(c *TopicConfig) { c.Sync = SyncAlways })
	require.Greater(t, b.Stats().Fsyncs, fsyncs, "what SyncNever left unsynced is synced by the change")
	for i := range int32(2) {
		require.Equal(t, log.SyncAlways, partitionLogOf(t, b, "t", i).Policy())
	}
	fsyncs = b.Stats().Fsyncs
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("after")}))
	require.Greater(t, b.Stats().Fsyncs, fsyncs, "each Publish now fsyncs")

	alter(t, b, "t", func(c *TopicConfig) { c.Sync = SyncDefault })
	require.Equal(t, log.SyncNever, partitionLogOf(t, b, "t", 0).Policy(), "back to the broker's policy")
	require.Equal(t, SyncDefault, describe(t, b, "t").Config.Sync)
}

func TestAlterTopicPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.AddPartitions("t", 3))
	want := TopicConfig{Partitions: 3, Retention: 48 * time.Hour, RetentionBytes: 1 << 30, SegmentBytes: 1 << 20,
		SegmentAge: time.Hour, MaxRecordBytes: 512, Sync: SyncInterval, LogAppendTime: true,
		MaxTimestampAhead: 2 * time.Minute, MaxTimestampBehind: 3 * time.Hour,
		Cleanup: CleanupCompactDelete, MinCleanableDirtyRatio: 0.25, MinCompactionLag: time.Minute,
		MaxCompactionLag: 2 * time.Hour, DeleteRetention: 5 * time.Hour}
	alter(t, b, "t", func(c *TopicConfig) {
		c.Retention, c.RetentionBytes, c.SegmentBytes, c.SegmentAge = want.Retention, want.RetentionBytes, want.SegmentBytes, want.SegmentAge
		c.MaxRecordBytes, c.Sync, c.LogAppendTime = want.MaxRecordBytes, want.Sync, want.LogAppendTime
		c.MaxTimestampAhead, c.MaxTimestampBehind = want.MaxTimestampAhead, want.MaxTimestampBehind
		c.Cleanup, c.MinCleanableDirtyRatio, c.MinCompactionLag = want.Cleanup, want.MinCleanableDirtyRatio, want.MinCompactionLag
		c.MaxCompactionLag, c.DeleteRetention = want.MaxCompactionLag, want.DeleteRetention
	})
	require.Equal(t, want, describe(t, b, "t").Config)
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	require.Equal(t, want, describe(t, b, "t").Config)
	require.Equal(t, log.SyncInterval, partitionLogOf(t, b, "t", 2).Policy())
	require.Equal(t, want.SegmentBytes, partitionLogOf(t, b, "t", 2).Settings().SegmentBytes)
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "t", Key: []byte("k"), Value: make([]byte, 600)}), ErrRecordTooLarge)

	// Partitions added after a change get the changed config.
	require.NoError(t, b.AddPartitions("t", 4))
	require.Equal(t, want.SegmentBytes, partitionLogOf(t, b, "t", 3).Settings().SegmentBytes)
	want.Partitions = 4
	require.Equal(t, want, describe(t, b, "t").Config)
}

func TestAlterTopicRefusesWithoutChanging(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, Retention: time.Hour}))
	before := describe(t, b, "t").Config
	for name, change := range map[string]func(*TopicConfig){
		"partitions":    func(c *TopicConfig) { c.Partitions = 3 },
		"policy":        func(c *TopicConfig) { c.Cleanup = CleanupPolicy(3) },
		"lag conflict":  func(c *TopicConfig) { c.MinCompactionLag, c.MaxCompactionLag = time.Hour, time.Minute },
		"retention":     func(c *TopicConfig) { c.Retention = -time.Second },
		"bytes":         func(c *TopicConfig) { c.RetentionBytes = -1 },
		"small seg":     func(c *TopicConfig) { c.SegmentBytes = 100 },
		"huge seg":      func(c *TopicConfig) { c.SegmentBytes = 1 << 40 },
		"age":           func(c *TopicConfig) { c.SegmentAge = -1 },
		"record":        func(c *TopicConfig) { c.MaxRecordBytes = -1 },
		"sync":          func(c *TopicConfig) { c.Sync = SyncPolicy(9) },
		"behind":        func(c *TopicConfig) { c.MaxTimestampBehind = -time.Second },
		"one of many":   func(c *TopicConfig) { c.Retention = 2 * time.Hour; c.SegmentBytes = 1 },
		"no partitions": func(c *TopicConfig) { c.Partitions = 0 },
	} {
		err := b.AlterTopic("t", change)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
		require.Contains(t, err.Error(), `"t"`, name)
		require.Equal(t, before, describe(t, b, "t").Config, name)
	}
	require.ErrorIs(t, b.AlterTopic("nope", func(*TopicConfig) {}), ErrTopicNotFound)
	require.ErrorIs(t, b.AlterTopic("bad name", func(*TopicConfig) {}), ErrInvalidTopic)
	require.NoError(t, b.AlterTopic("t", func(*TopicConfig) {}), "no change is no error")
	require.ErrorIs(t, b.AlterTopic("t", nil), ErrInvalidArgument)
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.AlterTopic("t", func(c *TopicConfig) { c.Retention = 0 }), ErrClosed)

	ro := openBroker(t, dir, &Options{ReadOnly: true})
	require.ErrorIs(t, ro.AlterTopic("t", func(c *TopicConfig) { c.Retention = 0 }), ErrReadOnly)
	require.NoError(t, ro.Close())
	b = openBroker(t, dir, nil)
	require.Equal(t, before, describe(t, b, "t").Config, "nothing stored either")
}

// Concurrent changes each see the config the one before them left: a
// change is a read-modify-write that never loses another.
func TestAlterTopicConcurrentChangesCompose(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	var wg sync.WaitGroup
	const n = 40
	for range n {
		wg.Go(func() {
			if err := b.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes += 4096 }); err != nil {
				t.Error(err)
			}
		})
	}
	for i := range 5 {
		wg.Go(func() {
			// Some fail, having lost a race to a larger count.
			if err := b.AddPartitions("t", 2+i); err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	info := describe(t, b, "t")
	require.Equal(t, int64(n*4096), info.Config.RetentionBytes)
	require.Equal(t, len(info.Partitions), info.Config.Partitions)
}

// Publishers and readers run while the config changes under them (run
// with -race): every acknowledged record is stored once, at dense offsets,
// and reads back.
func TestAlterTopicUnderConcurrentPublishes(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, SegmentBytes: 8192}))
	const writers, each = 4, 200
	var wg sync.WaitGroup
	var published atomic.Int64
	for w := range writers {
		wg.Go(func() {
			pr := mustProducer(b, &ProducerOptions{Linger: time.Millisecond, Partitioner: ManualPartitioner{}})
			defer pr.Close()
			for i := range each {
				r := &Record{Topic: "t", Partition: int32(w % 2), Value: fmt.Appendf(nil, "%d-%d", w, i)}
				if w%2 == 0 {
					if err := b.Publish(t.Context(), r); err != nil {
						t.Error(err)
						return
					}
					published.Add(1)
					continue
				}
				pr.Publish(t.Context(), r, func(_ *Record, err error) {
					if err != nil {
						t.Error(err)
						return
					}
					published.Add(1)
				})
			}
			if err := pr.Flush(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	policies := []SyncPolicy{SyncAlways, SyncInterval, SyncNever, SyncDefault}
	for i := 0; published.Load() < writers*each && !t.Failed(); i++ {
		alter(t, b, "t", func(c *TopicConfig) {
			c.SegmentBytes = int64(4096 * (1 + i%4))
			c.Sync = policies[i%4]
			c.LogAppendTime = i%2 == 1
			c.MaxRecordBytes = 1<<20 + i
			c.MaxTimestampBehind = time.Duration(i%3) * time.Hour * 24 * 365 * 100
		})
	}
	wg.Wait()
	var all []string
	for p := range int32(2) {
		vals := values(t, b, "t", p)
		all = append(all, vals...)
		require.Equal(t, int64(len(vals)), describe(t, b, "t").Partitions[p].EndOffset, "dense offsets")
	}
	require.Len(t, all, writers*each)
	slices.Sort(all)
	require.Len(t, slices.Compact(all), writers*each, "each record once")
}

func TestClientAlterTopic(t *testing.T) {
	b := openBroker(t, "", nil)
	c := b.Client()
	require.NoError(t, c.CreateTopic(t.Context(), "t", TopicConfig{}))
	require.NoError(t, c.AlterTopic(t.Context(), "t", func(cfg *TopicConfig) { cfg.Retention = time.Hour }))
	require.Equal(t, time.Hour, describe(t, b, "t").Config.Retention)
	require.ErrorIs(t, c.AlterTopic(t.Context(), "t", func(cfg *TopicConfig) { cfg.Partitions = 9 }), ErrInvalidConfig)
}
