package stream

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The calls a front end (the Kafka listener) makes on a client's behalf.

func TestAutoCreateTopic(t *testing.T) {
	b := openBroker(t, t.TempDir(), nil)
	require.ErrorIs(t, b.AutoCreateTopic("off"), ErrTopicNotFound)
	require.ErrorIs(t, b.AutoCreateTopic("bad/name"), ErrInvalidTopic)
	require.Empty(t, b.Topics())

	dir := t.TempDir()
	b = openBroker(t, dir, &Options{AutoCreateTopics: true, DefaultTopic: TopicConfig{Partitions: 2}})
	require.NoError(t, b.AutoCreateTopic("on"))
	require.NoError(t, b.AutoCreateTopic("on"), "an existing topic is left as it is")
	info, err := b.DescribeTopic("on")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)
	require.NoError(t, b.Close())

	ro := openBroker(t, dir, &Options{ReadOnly: true, AutoCreateTopics: true})
	require.NoError(t, ro.AutoCreateTopic("on"))
	require.ErrorIs(t, ro.AutoCreateTopic("other"), ErrReadOnly)
}

func TestCheckCreateTopic(t *testing.T) {
	b := openBroker(t, t.TempDir(), nil)
	require.NoError(t, b.CreateTopic("a.b", TopicConfig{}))
	require.NoError(t, b.CheckCreateTopic("c", TopicConfig{Partitions: 3}))
	require.ErrorIs(t, b.CheckCreateTopic("a.b", TopicConfig{}), ErrTopicExists)
	require.ErrorIs(t, b.CheckCreateTopic("a_b", TopicConfig{}), ErrInvalidTopic)
	require.ErrorIs(t, b.CheckCreateTopic("__consumer_offsets", TopicConfig{}), ErrInvalidTopic)
	require.ErrorIs(t, b.CheckCreateTopic("c", TopicConfig{SegmentBytes: 10}), ErrInvalidConfig)
	require.Equal(t, []string{"a.b"}, b.Topics(), "nothing created")

	require.NoError(t, TopicConfig{}.Validate())
	require.ErrorIs(t, TopicConfig{Retention: -1}.Validate(), ErrInvalidConfig)
	require.ErrorIs(t, TopicConfig{MinCleanableDirtyRatio: 2}.Validate(), ErrInvalidConfig)
}

func TestOptionsAndCreated(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := openBroker(t, dir, &Options{Now: func() time.Time { return now }})
	o := b.Options()
	require.Equal(t, SyncInterval, o.Sync, "defaults filled in")
	require.Equal(t, time.Second, o.SyncInterval)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.True(t, now.Equal(info.Created))
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.True(t, now.Equal(info.Created), "as stored")
}

func TestOffsetForMaxTimestamp(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 4 << 10}))
	off, ts, err := b.OffsetForMaxTimestamp("t", 0)
	require.NoError(t, err)
	require.EqualValues(t, -1, off)
	require.True(t, ts.IsZero())

	// Out of order, over several segments: the largest is at offset 30,
	// and offset 70 has it too (the first one counts).
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 100 {
		at := base.Add(time.Duration(i%20) * time.Second)
		if i == 30 || i == 70 {
			at = base.Add(time.Hour)
		}
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: make([]byte, 200), Timestamp: at}))
	}
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.Greater(t, info.Partitions[0].Segments, 2)
	off, ts, err = b.OffsetForMaxTimestamp("t", 0)
	require.NoError(t, err)
	require.EqualValues(t, 30, off)
	require.True(t, base.Add(time.Hour).Equal(ts))

	// Deleted records no longer count.
	_, err = b.DeleteRecords("t", 0, 31)
	require.NoError(t, err)
	off, _, err = b.OffsetForMaxTimestamp("t", 0)
	require.NoError(t, err)
	require.EqualValues(t, 70, off)

	_, _, err = b.OffsetForMaxTimestamp("missing", 0)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, _, err = b.OffsetForMaxTimestamp("t", 1)
	require.ErrorIs(t, err, ErrInvalidPartition)
}
