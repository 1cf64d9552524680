package stream

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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
