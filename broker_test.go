package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
)

// openBroker opens a broker in a fresh temp dir (or dir, if given) and
// closes it at the end of the test. Without opts it opens with SyncNever
// and ManualPartitioner, so records go to the partition they name; tests
// of the default placement pass their own Options.
func openBroker(t *testing.T, dir string, opts *Options) *Broker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if opts == nil {
		opts = &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}}
	}
	b, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// values reads every record of a partition from the start as strings.
func values(t *testing.T, b *Broker, topic string, partition int32) []string {
	t.Helper()
	r, err := b.NewReader(topic, partition, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	var out []string
	for rec, err := range r.All(t.Context()) {
		require.NoError(t, err)
		out = append(out, string(rec.Value))
	}
	return out
}

func TestOpenCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		if info.IsDir() {
			require.Equal(t, os.FileMode(0o700), info.Mode().Perm(), path)
		} else {
			require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), path)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestOpenTwiceIsLocked(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	_, err := Open(dir, nil)
	require.ErrorIs(t, err, ErrLocked)
	_, err = Open(dir, &Options{ReadOnly: true})
	require.ErrorIs(t, err, ErrLocked, "a read-only broker refuses a directory a writer holds")
	require.NoError(t, b.Close())
	b2, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, b2.Close())
}

func TestCallsAfterCloseReturnErrClosed(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close twice is safe")
	ctx := t.Context()
	require.ErrorIs(t, b.CreateTopic("u", TopicConfig{}), ErrClosed)
	require.ErrorIs(t, b.DeleteTopic("t"), ErrClosed)
	require.ErrorIs(t, b.AddPartitions("t", 2), ErrClosed)
	require.ErrorIs(t, b.Publish(ctx, &Record{Topic: "t"}), ErrClosed)
	require.ErrorIs(t, b.Publish(ctx, &Record{Topic: "t"}, &Record{Topic: "t"}), ErrClosed)
	_, err := b.DescribeTopic("t")
	require.ErrorIs(t, err, ErrClosed)
	_, err = b.NewReader("t", 0, OffsetEarliest, nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = b.OffsetForTime("t", 0, time.Now())
	require.ErrorIs(t, err, ErrClosed)
	require.Empty(t, b.Topics())
	_, err = b.NewProducer(nil)
	require.ErrorIs(t, err, ErrClosed)
}

func TestTopicsPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	cfg := TopicConfig{Partitions: 3, Retention: time.Hour, SegmentBytes: 1 << 20, MaxRecordBytes: 1000, LogAppendTime: true, Sync: SyncAlways,
		MaxTimestampAhead: 2 * time.Hour, MaxTimestampBehind: 24 * time.Hour,
		MinCleanableDirtyRatio: DefaultMinCleanableDirtyRatio, DeleteRetention: DefaultDeleteRetention}
	require.NoError(t, b.CreateTopic("orders", cfg))
	require.NoError(t, b.CreateTopic("audit", TopicConfig{}))
	require.NoError(t, b.AddPartitions("audit", 4))
	for i := 0; i < 10; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "orders", Partition: int32(i % 3), Value: []byte(fmt.Sprint(i))}))
	}
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"audit", "orders"}, b.Topics())
	info, err := b.DescribeTopic("orders")
	require.NoError(t, err)
	require.Equal(t, cfg, info.Config)
	require.Len(t, info.Partitions, 3)
	for i, p := range info.Partitions {
		require.Equal(t, int32(i), p.Partition)
		require.Equal(t, int64(0), p.StartOffset)
		require.Equal(t, int64(len([]int{0, 3, 6, 9})-min(i, 1)), p.EndOffset)
		require.Equal(t, 1, p.Segments)
		require.Positive(t, p.Bytes)
	}
	require.Equal(t, []string{"0", "3", "6", "9"}, values(t, b, "orders", 0))
	info, err = b.DescribeTopic("audit")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 4)
	require.Equal(t, 4, info.Config.Partitions)
}

func TestTopicNameRules(t *testing.T) {
	b := openBroker(t, "", nil)
	for _, bad := range []string{"", ".", "..", strings.Repeat("a", 250), "a/b", "../x", "a b", "ä", "a\x00"} {
		require.ErrorIs(t, b.CreateTopic(bad, TopicConfig{}), ErrInvalidTopic, "%q", bad)
	}
	require.NoError(t, b.CreateTopic(strings.Repeat("a", 249), TopicConfig{}))
	require.NoError(t, b.CreateTopic("foo_bar", TopicConfig{}))
	require.ErrorIs(t, b.CreateTopic("foo_bar", TopicConfig{}), ErrTopicExists)
	err := b.CreateTopic("foo.bar", TopicConfig{})
	require.ErrorIs(t, err, ErrInvalidTopic)
	require.Contains(t, err.Error(), "collides")
	require.NoError(t, b.CreateTopic("A-z.0_9", TopicConfig{}))
	entries, err := os.ReadDir(filepath.Join(b.dir, topicsDir))
	require.NoError(t, err)
	require.Len(t, entries, 3, "bad names wrote nothing")
}

func TestTopicConfigValidation(t *testing.T) {
	b := openBroker(t, "", nil)
	for name, cfg := range map[string]TopicConfig{
		"partitions": {Partitions: -1},
		"retention":  {Retention: -time.Second},
		"bytes":      {RetentionBytes: -1},
		"small seg":  {SegmentBytes: 100},
		"huge seg":   {SegmentBytes: 1 << 40},
		"age":        {SegmentAge: -1},
		"record":     {MaxRecordBytes: -1},
		"sync":       {Sync: SyncPolicy(9)},
		"policy":     {Cleanup: CleanupPolicy(3)},
		"ratio":      {MinCleanableDirtyRatio: 1.5},
		"min lag":    {MinCompactionLag: -1},
		"max lag":    {MaxCompactionLag: -1},
		"lag order":  {MinCompactionLag: 2 * time.Hour, MaxCompactionLag: time.Hour},
	} {
		require.ErrorIs(t, b.CreateTopic("t", cfg), ErrInvalidConfig, name)
	}
	require.Empty(t, b.Topics())
	_, err := Open(t.TempDir(), &Options{Sync: SyncPolicy(7)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = Open(t.TempDir(), &Options{DefaultTopic: TopicConfig{Partitions: -3}})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestAddPartitions(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 1, Value: []byte("old")}))
	require.ErrorIs(t, b.AddPartitions("t", 2), ErrInvalidConfig)
	require.ErrorIs(t, b.AddPartitions("t", 1), ErrInvalidConfig)
	require.ErrorIs(t, b.AddPartitions("nope", 3), ErrTopicNotFound)
	require.NoError(t, b.AddPartitions("t", 5))
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 5)
	require.Equal(t, int64(0), info.Partitions[4].EndOffset)
	require.Equal(t, []string{"old"}, values(t, b, "t", 1), "existing data never moves")
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 4, Value: []byte("new")}))
	require.Equal(t, []string{"new"}, values(t, b, "t", 4))
}

func TestDeleteTopic(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	for i := 0; i < 5; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: []byte("x")}))
	}
	r, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	rec, err := r.Next(t.Context())
	require.NoError(t, err)
	require.NoError(t, b.DeleteTopic("t"))
	require.Equal(t, "x", string(rec.Value), "records already handed out stay readable")
	// The reader drains what it holds, then learns the topic is gone.
	for {
		_, err = r.Next(t.Context())
		if err != nil {
			break
		}
	}
	require.ErrorIs(t, err, ErrTopicNotFound)
	require.NoError(t, r.Close())
	require.ErrorIs(t, b.DeleteTopic("t"), ErrTopicNotFound)
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "t"}), ErrTopicNotFound)
	_, err = os.Stat(filepath.Join(dir, topicsDir, "t"))
	require.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	r2 := &Record{Topic: "t", Value: []byte("again")}
	require.NoError(t, b.Publish(t.Context(), r2))
	require.Equal(t, int64(0), r2.Offset, "a re-created topic starts at offset 0")
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"again"}, values(t, b, "t", 0))
}

func TestPublishFillsRecordAndBatchesPerPartition(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	explicit := time.UnixMilli(1_000)
	recs := []*Record{
		{Topic: "t", Partition: 0, Value: []byte("a")},
		{Topic: "t", Partition: 1, Value: []byte("b"), Timestamp: explicit},
		{Topic: "t", Partition: 0, Value: []byte("c")},
	}
	require.NoError(t, b.Publish(t.Context(), recs...))
	require.Equal(t, int64(0), recs[0].Offset)
	require.Equal(t, int64(1), recs[2].Offset)
	require.Equal(t, int64(0), recs[1].Offset)
	require.True(t, recs[0].Timestamp.Equal(now), "zero timestamp = now")
	require.True(t, recs[1].Timestamp.Equal(explicit), "an explicit timestamp is kept")
	require.Equal(t, int64(2), b.Stats().BatchesIn, "one batch per partition")
	require.Equal(t, []string{"a", "c"}, values(t, b, "t", 0))
}

// Publish calls of random shapes (records interleaved over partitions and
// topics, explicit and chosen partitions, keys, headers, own and zero
// timestamps) place every record where Publish says, in call order, and a
// pooled plan carries nothing from one call to the next.
func TestPublishRandomCallsAgainstModel(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: tbExplicitPartitioner{}, Now: func() time.Time { return now }})
	topics := map[string]int{"a": 3, "b": 1, "c": 5}
	for name, n := range topics {
		require.NoError(t, b.CreateTopic(name, TopicConfig{Partitions: n}))
	}
	names := []string{"a", "b", "c"}
	rng := rand.New(rand.NewPCG(1, 2))
	type stored struct {
		value string
		ts    int64
	}
	model := map[TopicPartition][]stored{}
	for call := range 300 {
		n := 1 + rng.IntN(40)
		if call%50 == 0 {
			n = 2000 // large calls between small ones exercise the pool
		}
		recs := make([]*Record, n)
		runTopic, runPart := names[rng.IntN(3)], int32(0)
		for i := range recs {
			if rng.IntN(4) == 0 { // start a new run
				runTopic = names[rng.IntN(3)]
				runPart = int32(rng.IntN(topics[runTopic]))
			}
			r := &Record{Topic: runTopic, Partition: min(runPart, int32(topics[runTopic]-1)),
				Value: []byte(fmt.Sprintf("%d/%d", call, i))}
			switch rng.IntN(5) {
			case 0:
				r.Partition = AnyPartition
			case 1:
				r.Partition, r.Key = AnyPartition, []byte(fmt.Sprint(rng.IntN(10)))
			}
			if rng.IntN(3) == 0 {
				r.Timestamp = time.UnixMilli(int64(1 + rng.IntN(1e9)))
			}
			if rng.IntN(10) == 0 {
				r.Headers = []Header{{Key: "h", Value: []byte{byte(i)}}}
			}
			recs[i] = r
		}
		want := make([]int64, n)
		for i, r := range recs {
			want[i] = now.UnixMilli()
			if !r.Timestamp.IsZero() {
				want[i] = r.Timestamp.UnixMilli()
			}
		}
		require.NoError(t, b.Publish(t.Context(), recs...))
		next := map[TopicPartition]int64{}
		for i, r := range recs {
			tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if _, ok := next[tp]; !ok {
				next[tp] = int64(len(model[tp]))
			}
			require.Equal(t, next[tp], r.Offset, "call %d record %d: offsets follow call order per partition", call, i)
			next[tp]++
			require.Equal(t, want[i], r.Timestamp.UnixMilli(), "call %d record %d", call, i)
			model[tp] = append(model[tp], stored{string(r.Value), want[i]})
		}
	}
	for tp, recs := range model {
		rd, err := b.NewReader(tp.Topic, tp.Partition, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		var got []stored
		for rec, err := range rd.All(t.Context()) {
			require.NoError(t, err)
			got = append(got, stored{string(rec.Value), rec.Timestamp.UnixMilli()})
		}
		rd.Close()
		require.Equal(t, recs, got, "%s", tp)
	}
}

func TestPublishLogAppendTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("t", TopicConfig{LogAppendTime: true}))
	r := &Record{Topic: "t", Value: []byte("a"), Timestamp: time.UnixMilli(5)}
	require.NoError(t, b.Publish(t.Context(), r))
	require.True(t, r.Timestamp.Equal(now))
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	defer rd.Close()
	got, err := rd.Next(t.Context())
	require.NoError(t, err)
	require.True(t, got.Timestamp.Equal(now))
}

func TestPublishRejectsBadInputWritingNothing(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, MaxRecordBytes: 1000}))
	ok := func() *Record { return &Record{Topic: "t", Partition: 0, Value: []byte("fine")} }
	for name, c := range map[string]struct {
		rec  *Record
		want error
	}{
		"nil record":         {nil, ErrInvalidRecord},
		"empty topic":        {&Record{Topic: ""}, ErrInvalidTopic},
		"bad topic":          {&Record{Topic: "a/b"}, ErrInvalidTopic},
		"unknown topic":      {&Record{Topic: "nope"}, ErrTopicNotFound},
		"partition too big":  {&Record{Topic: "t", Partition: 2}, ErrInvalidPartition},
		"negative partition": {&Record{Topic: "t", Partition: -2}, ErrInvalidPartition},
		"negative timestamp": {&Record{Topic: "t", Timestamp: time.UnixMilli(-5)}, ErrInvalidRecord},
		"too large":          {&Record{Topic: "t", Value: make([]byte, 1000)}, ErrRecordTooLarge},
	} {
		require.ErrorIs(t, b.Publish(t.Context(), c.rec), c.want, name)
		// In a multi-record call, a bad record anywhere fails the whole call.
		require.ErrorIs(t, b.Publish(t.Context(), ok(), c.rec), c.want, name)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.Publish(ctx, ok()), context.Canceled)
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	for _, p := range info.Partitions {
		require.Zero(t, p.EndOffset)
	}
	require.Equal(t, []string{"t"}, b.Topics())
}

func TestAutoCreateTopics(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, AutoCreateTopics: true, DefaultTopic: TopicConfig{Partitions: 3}})
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "new", Key: []byte("k"), Value: []byte("v")}))
	info, err := b.DescribeTopic("new")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 3)
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "bad name"}), ErrInvalidTopic)
}

func TestSyncAlwaysSharesFsyncs(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncAlways})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				if err := b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	require.Equal(t, int64(writers*each), st.RecordsIn)
	require.Less(t, st.Fsyncs, int64(writers*each))
}

func TestReadOnlyOpenChangesNothing(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	for i := 0; i < 20; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))}))
	}
	// Leave it as a crash would: no clean close, a torn tail.
	crash(t, b)
	log := filepath.Join(dir, topicsDir, "t", "0", "00000000000000000000.log")
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	before := snapshotTree(t, dir)
	ro, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.Equal(t, []string{"t"}, ro.Topics())
	require.Len(t, values(t, ro, "t", 0), 10)
	require.ErrorIs(t, ro.Publish(t.Context(), &Record{Topic: "t"}), ErrReadOnly)
	require.ErrorIs(t, ro.CreateTopic("u", TopicConfig{}), ErrReadOnly)
	require.ErrorIs(t, ro.DeleteTopic("t"), ErrReadOnly)
	require.NoError(t, ro.Close())
	require.Equal(t, before, snapshotTree(t, dir), "a read-only open changes no byte")

	// Two read-only brokers may share a directory.
	ro1, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	ro2, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, errors.Join(ro1.Close(), ro2.Close()))
}

// crash abandons a broker as a killed process would: files are closed
// without trimming, syncing or marking the shutdown clean, and the lock is
// released.
func crash(t *testing.T, b *Broker) {
	t.Helper()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	if b.stop != nil {
		close(b.stop)
		<-b.done
		b.stopCleaner()
	}
	for _, tp := range b.topics {
		for _, p := range tp.partitions() {
			p.Abandon()
		}
	}
	require.NoError(t, b.meta.Close(false))
	require.NoError(t, unlock(b.lock))
}

func snapshotTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := d.Info()
		require.NoError(t, err)
		if d.IsDir() {
			out[path] = info.Mode().String() // a directory made counts as a change
			return nil
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		out[path] = fmt.Sprintf("%v %s", info.Mode(), b)
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestRecoveryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 8 << 10}))
	for i := 0; i < 300; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte(fmt.Sprint(i))}))
	}
	crash(t, b)
	b = openBroker(t, dir, nil)
	got := values(t, b, "t", 0)
	require.Len(t, got, 300)
	require.Equal(t, "299", got[299])
	r := &Record{Topic: "t", Value: []byte("after")}
	require.NoError(t, b.Publish(t.Context(), r))
	require.Equal(t, int64(300), r.Offset)
}

func TestMissingMetaRebuildsTopicList(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("orders", TopicConfig{Partitions: 3}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "orders", Partition: 2, Value: []byte("kept")}))
	require.NoError(t, b.Close())
	require.NoError(t, os.Remove(filepath.Join(dir, catalog.File)))

	b = openBroker(t, dir, nil)
	info, err := b.DescribeTopic("orders")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 3)
	require.Equal(t, []string{"kept"}, values(t, b, "orders", 2))
}

func TestConcurrentCloseDuringPublishLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncAlways})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	started := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i == 10 && w == 0 {
					close(started)
				}
				v := fmt.Sprintf("w%d-%d", w, i)
				err := b.Publish(context.Background(), &Record{Topic: "t", Key: []byte(v), Value: []byte(v)})
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				acked[v] = true
				mu.Unlock()
			}
		})
	}
	<-started
	require.NoError(t, b.Close())
	wg.Wait()
	b = openBroker(t, dir, nil)
	seen := map[string]bool{}
	for p := int32(0); p < 2; p++ {
		for _, v := range values(t, b, "t", p) {
			seen[v] = true
		}
	}
	for v := range acked {
		require.True(t, seen[v], "acknowledged %s lost", v)
	}
}

func TestNoGoroutinesLeakAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		b, err := Open(t.TempDir(), &Options{SyncInterval: time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		p := mustProducer(b, &ProducerOptions{Linger: time.Hour})
		p.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}, nil)
		r, err := b.NewReader("t", 0, OffsetEarliest, nil)
		require.NoError(t, err)
		done := make(chan error)
		go func() { _, err := r.Next(context.Background()); done <- err }()
		require.NoError(t, b.Close()) // flushes the producer: the reader wakes
		if err := <-done; err != nil {
			// It woke after the partition closed: the record is there, but
			// a closed broker serves nothing.
			require.ErrorIs(t, err, ErrClosed)
		}
		require.NoError(t, r.Close())
	}
	ok := assertEventually(func() bool { return runtime.NumGoroutine() <= before })
	if !ok {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: before %d, now %d\n%s", before, runtime.NumGoroutine(), buf[:n])
	}
}

func TestStatsCount(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 0, Value: []byte("a")}, &Record{Topic: "t", Partition: 0, Value: []byte("b")}))
	require.Len(t, values(t, b, "t", 0), 2)
	st := b.Stats()
	require.Equal(t, int64(2), st.RecordsIn)
	require.Equal(t, int64(1), st.BatchesIn)
	require.Positive(t, st.BytesIn)
	require.Equal(t, int64(2), st.RecordsOut)
	require.Equal(t, 1, st.Topics)
	require.Equal(t, 2, st.Partitions)
	require.Equal(t, 2, st.Segments)
	// A small active segment is read through a copy in memory (no
	// mapping); a larger one through a mapping.
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: 1, Value: make([]byte, 100<<10)}))
	require.Len(t, values(t, b, "t", 1), 1)
	require.Positive(t, b.Stats().OpenMappings)
}

// The broker's periodic check runs time retention (size retention runs at
// each roll as well, so time is what needs the schedule): once every record
// is past Retention, every segment goes, the active one rolled first.
func TestRetentionRunsInBackground(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock, RetentionCheckInterval: time.Millisecond})
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 4096, Retention: time.Hour}))
	for i := 0; i < 500; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 100)}))
	}
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Zero(t, info.Partitions[0].StartOffset, "nothing is past retention yet")
	require.Greater(t, info.Partitions[0].Segments, 4)
	now.Add((time.Hour + time.Second).Milliseconds())
	require.Eventually(t, func() bool {
		info, err := b.DescribeTopic("t")
		return err == nil && info.Partitions[0].StartOffset == 500 && info.Partitions[0].Bytes == 0
	}, 10*time.Second, time.Millisecond)
	_, err = b.NewReader("t", 0, AtOffset(0), nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
}

// failingSyncFS fails every fsync of a segment log with EIO.
func failingSyncFS(t *testing.T) vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.OnPath(".log", errorfs.Ops(syscall.EIO, errorfs.OpSync)))
}

func TestSyncFailureSurfacesFromPublish(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncAlways, fs: failingSyncFS(t)})
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	err := b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, err, ErrSyncFailed)
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("y")}), ErrSyncFailed)
}

// assertEventually polls cond for up to 10 s.
func assertEventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		runtime.Gosched()
	}
	return cond()
}

func TestExpvarServesStats(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
	var st Stats
	require.NoError(t, json.Unmarshal([]byte(b.Expvar().String()), &st))
	require.Equal(t, int64(1), st.RecordsIn)
	require.Equal(t, 1, st.Topics)
}

func TestLockTimeoutWaitsForTheOwner(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, nil)
	require.NoError(t, err)
	opened := make(chan error, 1)
	go func() {
		b2, err := Open(dir, &Options{LockTimeout: time.Minute})
		if err == nil {
			err = b2.Close()
		}
		opened <- err
	}()
	require.NoError(t, b.Close()) // the waiting Open gets the directory
	require.NoError(t, <-opened)
}

// Item 30: a record's own timestamp must lie within the topic's accepted
// range around the broker's clock; nothing of a refused call is written.
func TestPublishTimestampBounds(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("default", TopicConfig{}))
	require.NoError(t, b.CreateTopic("bounded", TopicConfig{MaxTimestampAhead: time.Minute, MaxTimestampBehind: time.Hour}))
	require.NoError(t, b.CreateTopic("open", TopicConfig{MaxTimestampAhead: -1}))
	require.NoError(t, b.CreateTopic("appendtime", TopicConfig{LogAppendTime: true, MaxTimestampAhead: time.Minute}))
	rec := func(topic string, ts time.Time) *Record {
		return &Record{Topic: topic, Value: []byte("v"), Timestamp: ts}
	}
	info, err := b.DescribeTopic("default")
	require.NoError(t, err)
	require.Equal(t, DefaultMaxTimestampAhead, info.Config.MaxTimestampAhead)

	for _, tc := range []struct {
		topic string
		ts    time.Time
		ok    bool
	}{
		{"default", now.Add(time.Hour), true},
		{"default", now.Add(time.Hour + time.Millisecond), false},
		{"default", time.UnixMilli(1), true}, // no limit behind by default
		{"bounded", now.Add(time.Minute), true},
		{"bounded", now.Add(time.Minute + time.Millisecond), false},
		{"bounded", now.Add(-time.Hour), true},
		{"bounded", now.Add(-time.Hour - time.Millisecond), false},
		{"bounded", time.Time{}, true}, // no timestamp: the clock's
		{"open", now.Add(100 * 365 * 24 * time.Hour), true},
		{"appendtime", now.Add(24 * time.Hour), true}, // replaced by the append time
	} {
		err := b.Publish(t.Context(), rec(tc.topic, tc.ts))
		if tc.ok {
			require.NoError(t, err, "%s at %v", tc.topic, tc.ts)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidRecord, "%s at %v", tc.topic, tc.ts)
		// The same record in a batch refuses the whole call; through a
		// Producer, its callback gets the error.
		good := rec(tc.topic, now)
		require.ErrorIs(t, b.Publish(t.Context(), good, rec(tc.topic, tc.ts)), ErrInvalidRecord)
		pr := mustProducer(b, &ProducerOptions{})
		var got error
		pr.Publish(t.Context(), rec(tc.topic, tc.ts), func(_ *Record, err error) { got = err })
		require.ErrorIs(t, got, ErrInvalidRecord, "validation errors call done before Publish returns")
		require.NoError(t, pr.Close())
	}
	ends := tbEnds(t, b, "bounded")
	require.Equal(t, []int64{3}, ends, "refused records and their batches wrote nothing")
	require.ErrorIs(t, b.CreateTopic("bad", TopicConfig{MaxTimestampBehind: -time.Second}), ErrInvalidConfig)
}

// Items 95, 23, 21 and stored configs: Kafka's internal topic names are
// refused; a negative timestamp is refused even where LogAppendTime would
// replace it; a call whose records for one partition overflow a batch is
// refused before anything is written; a topic stored before a config field
// existed gets the field's default.
func TestPublishAndCreateTopicEdgeRules(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, &Options{AutoCreateTopics: true, Partitioner: ManualPartitioner{}})
	for _, name := range []string{"__consumer_offsets", "__transaction_state", "__consumer.offsets", "__transaction.state"} {
		require.ErrorIs(t, b.CreateTopic(name, TopicConfig{}), ErrInvalidTopic, name)
		require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: name}), ErrInvalidTopic, name)
	}
	require.NoError(t, b.CreateTopic("_consumer_offsets", TopicConfig{}), "one underscore is an ordinary name")

	require.NoError(t, b.CreateTopic("lat", TopicConfig{LogAppendTime: true}))
	neg := func() *Record { return &Record{Topic: "lat", Value: []byte("v"), Timestamp: time.UnixMilli(-1)} }
	require.ErrorIs(t, b.Publish(t.Context(), neg()), ErrInvalidRecord)
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "lat"}, neg()), ErrInvalidRecord)
	var got error
	pr := mustProducer(b, &ProducerOptions{})
	pr.Publish(t.Context(), neg(), func(_ *Record, err error) { got = err })
	require.ErrorIs(t, got, ErrInvalidRecord)
	require.NoError(t, pr.Close())
	require.Equal(t, []int64{0}, tbEnds(t, b, "lat"))

	// 65 records of 1 MiB - 1 KiB for partition 1 overflow its 64 MiB batch;
	// partition 0's record, first in the call, must not be written either.
	require.NoError(t, b.CreateTopic("big", TopicConfig{Partitions: 2}))
	value := make([]byte, 1<<20-1<<10)
	recs := []*Record{{Topic: "big", Partition: 0, Value: []byte("first")}}
	for range 65 {
		recs = append(recs, &Record{Topic: "big", Partition: 1, Value: value})
	}
	require.ErrorIs(t, b.Publish(t.Context(), recs...), ErrRecordTooLarge)
	require.Equal(t, []int64{0, 0}, tbEnds(t, b, "big"), "nothing written")
	require.NoError(t, b.Publish(t.Context(), recs[:40]...), "a call that fits is one batch")

	// A topic as stored before MaxTimestampAhead existed.
	require.NoError(t, b.CreateTopic("old", TopicConfig{}))
	rec := catalog.Topic{Config: catalog.TopicConfig{Partitions: 1, SegmentBytes: DefaultSegmentBytes, MaxRecordBytes: DefaultMaxRecordBytes},
		Partitions: 1, Created: time.Now()}
	require.NoError(t, b.meta.PutTopic("old", rec))
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	info, err := b.DescribeTopic("old")
	require.NoError(t, err)
	require.Equal(t, DefaultMaxTimestampAhead, info.Config.MaxTimestampAhead)
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: "old", Timestamp: time.Now().Add(2 * time.Hour)}), ErrInvalidRecord)
}

// Item 101: DeleteRecords moves the log start, mid-segment or past whole
// segments, durably; readers, consumers and OffsetForTime see only what is
// left, and offsets are never reused.
func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { return now }
	b := openBroker(t, dir, &Options{Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 4096}))
	for i := range 100 { // ~100 bytes each: several segments
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: fmt.Appendf(nil, "%03d-%s", i, strings.Repeat("x", 30)),
			Timestamp: now.Add(time.Duration(i) * time.Second)}))
	}
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	segsBefore := info.Partitions[0].Segments
	require.Greater(t, segsBefore, 2)

	start, err := b.DeleteRecords("t", 0, 5)
	require.NoError(t, err)
	require.Equal(t, int64(5), start)
	vals := values(t, b, "t", 0)
	require.Len(t, vals, 95)
	require.True(t, strings.HasPrefix(vals[0], "005-"), "mid-segment: the first record left is offset 5")
	_, err = b.NewReader("t", 0, AtOffset(4), nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	off, err := b.OffsetForTime("t", 0, now) // the first record's time: deleted
	require.NoError(t, err)
	require.Equal(t, int64(5), off)
	off, err = b.OffsetForTime("t", 0, now.Add(50*time.Second))
	require.NoError(t, err)
	require.Equal(t, int64(50), off)

	start, err = b.DeleteRecords("t", 0, 3)
	require.NoError(t, err)
	require.Equal(t, int64(5), start, "below the start: nothing changes")
	_, err = b.DeleteRecords("t", 0, 101)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	_, err = b.DeleteRecords("t", 0, -1)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = b.DeleteRecords("t", 1, 1)
	require.ErrorIs(t, err, ErrInvalidPartition)
	_, err = b.DeleteRecords("nope", 0, 1)
	require.ErrorIs(t, err, ErrTopicNotFound)

	// A consumer group positioned below the new start resets.
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	got := cgPollN(t, c, 1)
	require.Equal(t, int64(5), got[0].Offset)
	require.NoError(t, c.Close())

	start, err = b.DeleteRecords("t", 0, 60)
	require.NoError(t, err)
	require.Equal(t, int64(60), start)
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.Less(t, info.Partitions[0].Segments, segsBefore, "segments wholly below the start are gone")
	require.Equal(t, int64(60), info.Partitions[0].StartOffset)

	// The start survives a restart, and read-only opens see it too.
	require.NoError(t, b.Close())
	ro := openBroker(t, dir, &Options{ReadOnly: true, Now: clock})
	require.Len(t, values(t, ro, "t", 0), 40)
	_, err = ro.DeleteRecords("t", 0, 70)
	require.ErrorIs(t, err, ErrReadOnly)
	require.NoError(t, ro.Close())
	b = openBroker(t, dir, &Options{Now: clock})
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.Equal(t, int64(60), info.Partitions[0].StartOffset)

	// Everything: the log is empty, and the next record takes offset 100.
	start, err = b.DeleteRecords("t", 0, 100)
	require.NoError(t, err)
	require.Equal(t, int64(100), start)
	require.Empty(t, values(t, b, "t", 0))
	r := &Record{Topic: "t", Value: []byte("next"), Timestamp: now}
	require.NoError(t, b.Publish(t.Context(), r))
	require.Equal(t, int64(100), r.Offset)
	require.Equal(t, []string{"next"}, values(t, b, "t", 0))
	require.NoError(t, b.Close())
	_, err = b.DeleteRecords("t", 0, 100)
	require.ErrorIs(t, err, ErrClosed)
}

// DeleteRecords racing publishers, a tailing consumer group and readers:
// nothing panics or races, offsets only go up, and every record a consumer
// gets is at or after a start DeleteRecords had not yet passed.
func TestDeleteRecordsConcurrently(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever})
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 8 << 10}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // publisher
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 20_000; i++ {
			if err := b.Publish(ctx, &Record{Topic: "t", Value: []byte("0123456789")}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // deleter
		defer wg.Done()
		for ctx.Err() == nil {
			info, err := b.DescribeTopic("t")
			if err != nil {
				t.Error(err)
				return
			}
			if end := info.Partitions[0].EndOffset; end > 0 {
				if _, err := b.DeleteRecords("t", 0, end-end/4); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	go func() { // readers from the start, again and again
		defer wg.Done()
		for ctx.Err() == nil {
			rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
			if err != nil {
				t.Error(err)
				return
			}
			last := int64(-1)
			for rec, err := range rd.All(ctx) {
				if err != nil {
					if !errors.Is(err, ErrOffsetOutOfRange) && ctx.Err() == nil {
						t.Error(err)
					}
					break
				}
				if rec.Offset <= last {
					t.Errorf("offset %d after %d", rec.Offset, last)
				}
				last = rec.Offset
			}
			rd.Close()
		}
	}()
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	last := int64(-1)
	for got := 0; got < 2000; {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		for _, r := range recs {
			require.Greater(t, r.Offset, last, "offsets only go up")
			last = r.Offset
		}
		got += len(recs)
	}
	cancel()
	wg.Wait()
}

// The broker's background loop fsyncs SyncInterval partitions written
// since the last tick, and only those.
func TestSyncIntervalFsyncsOnTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(t.TempDir(), &Options{Sync: SyncInterval, SyncInterval: time.Second})
		require.NoError(t, err)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
		before := b.Stats().Fsyncs
		time.Sleep(time.Second) // virtual time: one tick
		synctest.Wait()
		require.Equal(t, before+1, b.Stats().Fsyncs)
		time.Sleep(5 * time.Second) // nothing written: no more fsyncs
		synctest.Wait()
		require.Equal(t, before+1, b.Stats().Fsyncs)
		require.NoError(t, b.Close())
	})
}

// A read-only broker opens a data directory reached through a symbolic
// link, as before.
func TestReadOnlyOpenThroughLink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	b := openBroker(t, real, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	require.NoError(t, b.Close())
	link := filepath.Join(base, "link")
	require.NoError(t, os.Symlink(real, link))
	ro, err := Open(link, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.Equal(t, []string{"t"}, ro.Topics())
	require.NoError(t, ro.Close())
}

// A bound under a millisecond still bounds: a record an hour ahead is
// refused.
func TestSubMillisecondTimestampBound(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxTimestampAhead: 500 * time.Microsecond}))
	err := b.Publish(t.Context(), &Record{Topic: "t", Timestamp: time.Now().Add(time.Hour)})
	require.ErrorIs(t, err, ErrInvalidRecord)
}
