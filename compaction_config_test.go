package stream

import (
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
	"github.com/embedstream/stream/internal/catalog"
)

func TestParseCleanupPolicy(t *testing.T) {
	for s, want := range map[string]CleanupPolicy{
		"delete":             CleanupDelete,
		"compact":            CleanupCompact,
		"compact,delete":     CleanupCompactDelete,
		"delete,compact":     CleanupCompactDelete,
		" Compact , DELETE ": CleanupCompactDelete,
		"COMPACT":            CleanupCompact,
		"compact,compact":    CleanupCompact,
	} {
		got, err := ParseCleanupPolicy(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", " ", "keep", "compact,", "compact;delete", "compact,keep"} {
		_, err := ParseCleanupPolicy(s)
		require.ErrorIs(t, err, ErrInvalidConfig, "%q", s)
	}
	for _, p := range []CleanupPolicy{CleanupDelete, CleanupCompact, CleanupCompactDelete} {
		back, err := ParseCleanupPolicy(p.String())
		require.NoError(t, err)
		require.Equal(t, p, back)
	}
	require.Equal(t, "compact,delete", CleanupCompactDelete.String())
	require.Equal(t, "CleanupPolicy(9)", CleanupPolicy(9).String())
}

func TestCompactionConfigValidation(t *testing.T) {
	for name, cfg := range map[string]TopicConfig{
		"defaults":            {},
		"compact":             {Cleanup: CleanupCompact},
		"ratio one":           {MinCleanableDirtyRatio: 1},
		"ratio kafka zero":    {MinCleanableDirtyRatio: -1},
		"lags equal":          {MinCompactionLag: time.Hour, MaxCompactionLag: time.Hour},
		"min lag, no max":     {MinCompactionLag: time.Hour},
		"no delete retention": {DeleteRetention: -1},
	} {
		require.NoError(t, cfg.Validate(), name)
	}
	for name, cfg := range map[string]TopicConfig{
		"policy":      {Cleanup: CleanupCompactDelete + 1},
		"ratio":       {MinCleanableDirtyRatio: 1.0001},
		"ratio NaN":   {MinCleanableDirtyRatio: math.NaN()},
		"min lag":     {MinCompactionLag: -time.Millisecond},
		"max lag":     {MaxCompactionLag: -time.Millisecond},
		"lag order":   {MinCompactionLag: 2 * time.Hour, MaxCompactionLag: time.Hour},
		"lag compact": {Cleanup: CleanupCompact, MinCompactionLag: time.Minute, MaxCompactionLag: time.Second},
	} {
		require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig, name)
	}
	err := TopicConfig{MinCompactionLag: 2 * time.Hour, MaxCompactionLag: time.Hour}.Validate()
	require.ErrorContains(t, err, "conflict topic config setting min.compaction.lag.ms (MinCompactionLag 2h0m0s) > max.compaction.lag.ms (MaxCompactionLag 1h0m0s)")

	// Zero fields read back as their defaults.
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Cleanup: CleanupCompact}))
	c := describe(t, b, "t").Config
	require.Equal(t, CleanupCompact, c.Cleanup)
	require.Equal(t, DefaultMinCleanableDirtyRatio, c.MinCleanableDirtyRatio)
	require.Equal(t, DefaultDeleteRetention, c.DeleteRetention)
	require.Zero(t, c.MinCompactionLag)
	require.Zero(t, c.MaxCompactionLag)
}

// The compaction settings reach the partitions' logs, as created, altered
// and reopened; compact alone turns retention off in the logs while the
// topic keeps its configured values.
func TestCompactionSettingsReachLogs(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	cfg := TopicConfig{Partitions: 2, Cleanup: CleanupCompact, Retention: time.Hour, RetentionBytes: 1 << 20,
		SegmentAge: 3 * time.Hour, MinCleanableDirtyRatio: 0.25, MinCompactionLag: time.Minute,
		MaxCompactionLag: 2 * time.Hour, DeleteRetention: 5 * time.Hour}
	require.NoError(t, b.CreateTopic("t", cfg))
	check := func(p int32, compact bool, ratio float64, minLag, maxLag, deleteRetention, retention time.Duration,
		retentionBytes int64, segmentAge time.Duration) {
		t.Helper()
		s := partitionLogOf(t, b, "t", p).Settings()
		require.Equal(t, compact, s.Compact, "Compact")
		require.Equal(t, ratio, s.MinCleanableRatio, "MinCleanableRatio")
		require.Equal(t, minLag, s.MinCompactionLag, "MinCompactionLag")
		require.Equal(t, maxLag, s.MaxCompactionLag, "MaxCompactionLag")
		require.Equal(t, deleteRetention, s.DeleteRetention, "DeleteRetention")
		require.Equal(t, retention, s.Retention, "Retention")
		require.Equal(t, retentionBytes, s.RetentionBytes, "RetentionBytes")
		require.Equal(t, segmentAge, s.SegmentAge, "SegmentAge")
	}
	// The log itself rolls sooner for a MaxCompactionLag under SegmentAge
	// (KIP-354; internal/log's tests): its SegmentAge stays the topic's.
	check(1, true, 0.25, time.Minute, 2*time.Hour, 5*time.Hour, 0, 0, 3*time.Hour)
	got := describe(t, b, "t").Config
	require.Equal(t, time.Hour, got.Retention, "the topic keeps its retention settings")
	require.Equal(t, int64(1<<20), got.RetentionBytes)
	require.Equal(t, 3*time.Hour, got.SegmentAge)

	alter(t, b, "t", func(c *TopicConfig) {
		c.Cleanup, c.MinCleanableDirtyRatio, c.DeleteRetention, c.MaxCompactionLag = CleanupCompactDelete, -1, -1, 0
	})
	check(0, true, 0, time.Minute, 0, 0, time.Hour, 1<<20, 3*time.Hour)
	require.NoError(t, b.AddPartitions("t", 3))
	check(2, true, 0, time.Minute, 0, 0, time.Hour, 1<<20, 3*time.Hour)

	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	want := cfg.withDefaults()
	want.Partitions, want.Cleanup, want.MinCleanableDirtyRatio, want.DeleteRetention, want.MaxCompactionLag = 3, CleanupCompactDelete, -1, -1, 0
	require.Equal(t, want, describe(t, b, "t").Config, "stored with the topic")
	check(1, true, 0, time.Minute, 0, 0, time.Hour, 1<<20, 3*time.Hour)

	alter(t, b, "t", func(c *TopicConfig) { c.Cleanup = CleanupDelete })
	s := partitionLogOf(t, b, "t", 2).Settings()
	require.False(t, s.Compact)
	require.Equal(t, time.Hour, s.Retention)
	require.Equal(t, 3*time.Hour, s.SegmentAge)
	require.Error(t, b.AlterTopic("t", func(c *TopicConfig) { c.MinCompactionLag = 2 * time.Hour; c.MaxCompactionLag = time.Hour }))
	require.Equal(t, time.Minute, describe(t, b, "t").Config.MinCompactionLag, "a refused change changes nothing")
}

// keyedBatch is a batch as a Kafka producer without idempotence sends it,
// one record per key (nil: no key), compressed with codec.
func keyedBatch(t *testing.T, codec batch.Codec, keys ...[]byte) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Reset(0)
	for _, k := range keys {
		bld.Add(time.Now().UnixMilli(), k, []byte("v"), nil)
	}
	b := append(batch.Batch(nil), bld.Finish()...)
	b.SetPartitionLeaderEpoch(-1)
	batchtest.FixCRC(b)
	if codec != batch.None {
		var err error
		b, err = batch.Compress(nil, b, codec, 0)
		require.NoError(t, err)
	}
	return b
}

// A compacted topic refuses records without a key on every write path,
// writing nothing of the call; an empty key is a key.
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("c", TopicConfig{Cleanup: CleanupCompact}))
	require.NoError(t, b.CreateTopic("cd", TopicConfig{Cleanup: CleanupCompactDelete}))
	require.NoError(t, b.CreateTopic("d", TopicConfig{}))
	end := func(topic string) int64 {
		t.Helper()
		return describe(t, b, topic).Partitions[0].EndOffset
	}
	keyed := func(topic string) *Record { return &Record{Topic: topic, Key: []byte("k"), Value: []byte("v")} }
	keyless := func(topic string) *Record { return &Record{Topic: topic, Value: []byte("v")} }

	for _, topic := range []string{"c", "cd"} {
		// Publish: one record, and several (the keyless one after the
		// clock is read, on the quick path).
		err := b.Publish(t.Context(), keyless(topic))
		require.ErrorIs(t, err, ErrInvalidRecord, topic)
		require.ErrorContains(t, err, "cannot accept message without key")
		require.ErrorIs(t, b.Publish(t.Context(), keyed(topic), keyless(topic)), ErrInvalidRecord, topic)
		require.ErrorIs(t, b.Publish(t.Context(), keyed(topic), &Record{Topic: topic, Value: []byte("v"), Timestamp: time.Now()}), ErrInvalidRecord, topic)
		require.Zero(t, end(topic), "nothing written")
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: topic, Key: []byte{}}, keyed(topic)), "an empty key is a key")
		require.EqualValues(t, 2, end(topic))
	}
	require.NoError(t, b.Publish(t.Context(), keyless("d"), keyless("d")), "delete topics take records without keys")

	// The batching Producer: the callback gets the error, before Publish
	// returns.
	p, err := b.NewProducer(nil)
	require.NoError(t, err)
	var got error
	p.Publish(t.Context(), keyless("c"), func(_ *Record, err error) { got = err })
	require.ErrorIs(t, got, ErrInvalidRecord)
	done := make(chan error, 1)
	p.Publish(t.Context(), keyed("c"), func(_ *Record, err error) { done <- err })
	require.NoError(t, p.Flush(t.Context()))
	require.NoError(t, <-done)
	require.NoError(t, p.Close())
	require.EqualValues(t, 3, end("c"))

	// A transaction: refused with nothing written, and still usable.
	tp, err := b.NewTxProducer("tx", nil)
	require.NoError(t, err)
	defer tp.Close()
	tx, err := tp.Begin()
	require.NoError(t, err)
	require.ErrorIs(t, tx.Publish(t.Context(), keyed("c"), keyless("c")), ErrInvalidRecord)
	require.EqualValues(t, 3, end("c"))
	require.NoError(t, tx.Publish(t.Context(), keyed("c")))
	require.NoError(t, tx.Commit(t.Context()))
	require.EqualValues(t, 5, end("c"), "the record and the commit marker")

	// Batches as a Kafka producer sends them: the whole batch is refused,
	// naming every record without a key; compressed ones are looked into.
	for _, codec := range []batch.Codec{batch.None, batch.Zstd} {
		before := end("c")
		_, err := b.AppendBatches("c", 0, keyedBatch(t, codec, []byte("a"), nil, []byte{}, nil))
		require.ErrorIs(t, err, ErrInvalidRecord, codec)
		var re *RecordError
		require.True(t, errors.As(err, &re), codec)
		require.Equal(t, []int{1, 3}, re.Records)
		require.ErrorContains(t, re.Err, `cannot accept message without key in topic partition c/0`)
		require.Equal(t, before, end("c"), "nothing written")
		_, err = b.AppendBatches("c", 0, keyedBatch(t, codec, []byte("a"), []byte{}))
		require.NoError(t, err, codec)
	}
	_, err = b.AppendBatches("d", 0, keyedBatch(t, batch.Zstd, nil, nil))
	require.NoError(t, err)

	// The rule follows the policy as altered.
	alter(t, b, "d", func(c *TopicConfig) { c.Cleanup = CleanupCompact })
	require.ErrorIs(t, b.Publish(t.Context(), keyless("d")), ErrInvalidRecord)
	alter(t, b, "d", func(c *TopicConfig) { c.Cleanup = CleanupDelete })
	require.NoError(t, b.Publish(t.Context(), keyless("d")))
}

// A topic stored before the compaction settings existed opens with their
// defaults; one stored with the retired compact flag reads as compact.
func TestCompactionSettingsOfOlderCatalogs(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("old", TopicConfig{Retention: time.Hour}))
	require.NoError(t, b.CreateTopic("flagged", TopicConfig{}))
	require.NoError(t, b.Close())

	cat, _, err := catalog.Open(filepath.Join(dir, catalog.File), 0o600, false, true)
	require.NoError(t, err)
	for name, cfg := range map[string]catalog.TopicConfig{
		"old":     {Partitions: 1, Retention: time.Hour},
		"flagged": {Partitions: 1, Compact: true},
	} {
		require.NoError(t, cat.PutTopic(name, catalog.Topic{Config: cfg, Partitions: 1}))
	}
	require.NoError(t, cat.Close(true))

	b = openBroker(t, dir, nil)
	c := describe(t, b, "old").Config
	require.Equal(t, CleanupDelete, c.Cleanup)
	require.Equal(t, DefaultMinCleanableDirtyRatio, c.MinCleanableDirtyRatio)
	require.Equal(t, DefaultDeleteRetention, c.DeleteRetention)
	require.Equal(t, time.Hour, c.Retention)
	require.Equal(t, CleanupCompact, describe(t, b, "flagged").Config.Cleanup)
	require.True(t, partitionLogOf(t, b, "flagged", 0).Settings().Compact)
}
