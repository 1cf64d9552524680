package stream

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A group name enters through Subscribe, DescribeGroup, DeleteGroup,
// CommittedOffsets and SetCommittedOffsets; each refuses, with
// ErrInvalidGroup and before touching anything, a name a Kafka client could
// not send (empty, over 32767 bytes, not UTF-8) or one with a control
// character, which would break line-based listings such as streamctl's.
func TestGroupNamesAreChecked(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 2)
	kept := map[TopicPartition]int64{cgTP("t", 0): 1}
	require.NoError(t, b.SetCommittedOffsets("kept", kept))

	bad := map[string]string{
		"empty":     "",
		"newline":   "billing\nteam",
		"tab":       "a\tb",
		"escape":    "a\x1b[2Jb",
		"delete":    "a\x7f",
		"C1 (NEL)":  "a\u0085b",
		"not UTF-8": "a\xffb",
		"too long":  strings.Repeat("g", 32768),
	}
	for name, group := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := b.Subscribe(group, []string{"t"}, nil)
			require.ErrorIs(t, err, ErrInvalidGroup)
			_, err = b.DescribeGroup(group)
			require.ErrorIs(t, err, ErrInvalidGroup)
			require.ErrorIs(t, b.DeleteGroup(group), ErrInvalidGroup)
			_, err = b.CommittedOffsets(group)
			require.ErrorIs(t, err, ErrInvalidGroup)
			require.ErrorIs(t, b.SetCommittedOffsets(group, kept), ErrInvalidGroup)
		})
	}
	require.Equal(t, []string{"kept"}, b.Groups(), "nothing stored for a refused name")

	// Any other text is a name, up to the protocol's 32767 bytes: spaces,
	// punctuation, any script.
	for _, group := range []string{"billing team", "Grüppe-1/ünit:test", "注文", strings.Repeat("g", 32767)} {
		c := cgSubscribe(t, b, group, []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		cgPollN(t, c, 2)
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())
		info, err := b.DescribeGroup(group)
		require.NoError(t, err)
		require.Equal(t, int64(2), info.Partitions[0].Committed)
	}
	require.Len(t, b.Groups(), 5)
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	require.Len(t, b.Groups(), 5, "stored as given")
	offs, err := b.CommittedOffsets("kept")
	require.NoError(t, err)
	require.Equal(t, kept, offs)
	require.NoError(t, b.DeleteGroup(strings.Repeat("g", 32767)))
}

// DescribeGroup shows the balancer of a group without members: the one its
// last members used, while the broker remembers the group. An Empty group
// still takes a member with another balancer, which then shows.
func TestDescribeGroupKeepsTheLastBalancer(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 1)
	describe := func() GroupInfo {
		t.Helper()
		info, err := b.DescribeGroup("g")
		require.NoError(t, err)
		return info
	}
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, Balancer: RoundRobinBalancer{}})
	cgPollN(t, c, 1)
	require.NoError(t, c.Commit(t.Context()))
	require.Equal(t, "roundrobin", describe().Balancer)
	require.NoError(t, c.Close())
	info := describe()
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members)
	require.Equal(t, "roundrobin", info.Balancer, "kept without members")

	c = cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	require.Equal(t, "range", describe().Balancer, "an Empty group takes any balancer")
	require.NoError(t, c.Close())
	require.Equal(t, "range", describe().Balancer)

	// A restart forgets it: the group is known by its offsets only.
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	info = describe()
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Balancer)
}

// A group's last completed generation is stored: a broker opened later,
// read-only too, describes who was assigned what, and generations go on
// from it, as a Kafka coordinator's do after a restart.
func TestGroupLastGenerationOutlivesTheProcess(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")})) // so that Poll returns
	c1, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{InstanceID: "one", Balancer: RoundRobinBalancer{}, Reset: ResetEarliest})
	require.NoError(t, err)
	_, err = c1.Poll(t.Context())
	require.NoError(t, err)
	require.NoError(t, c1.CommitOffsets(t.Context(), map[TopicPartition]int64{{Topic: "t", Partition: 0}: 0}))
	live, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.NotNil(t, live.Last)
	require.Equal(t, live.Generation, live.Last.Generation)
	require.Equal(t, "roundrobin", live.Last.Balancer)
	require.Len(t, live.Last.Members, 1)
	require.Equal(t, "one", live.Last.Members[0].InstanceID)
	require.Equal(t, []TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}, live.Last.Members[0].Assignment)
	require.NoError(t, c1.Close())
	require.NoError(t, b.Close())

	ro := openBroker(t, dir, &Options{ReadOnly: true})
	info, err := ro.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "Empty", info.State)
	require.Empty(t, info.Members, "nobody is a member now")
	require.Equal(t, live.Generation, info.Generation)
	require.Equal(t, live.Last.Members, info.Last.Members)
	require.True(t, live.Last.Completed.Equal(info.Last.Completed))
	require.NoError(t, ro.Close())

	b = openBroker(t, dir, nil)
	c2, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Balancer: RoundRobinBalancer{}, Reset: ResetEarliest})
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Poll(t.Context())
	require.NoError(t, err)
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, live.Generation+1, info.Generation, "generations go on from the stored one")
	require.Equal(t, info.Generation, info.Last.Generation)
	require.Empty(t, info.Last.Members[0].InstanceID)

	require.NoError(t, c2.Close())
	require.NoError(t, b.DeleteGroup("g"))
	info, err = b.DescribeGroup("g")
	require.NoError(t, err)
	require.Nil(t, info.Last, "deleting the group deletes its history")
}
