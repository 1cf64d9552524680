package group

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tps parses "t0p0,t1p2" into partitions, in the given order. The topic is
// everything before the last 'p'.
func tps(t testing.TB, s string) []TopicPartition {
	t.Helper()
	out := []TopicPartition{}
	if s == "" {
		return out
	}
	for _, f := range strings.Split(s, ",") {
		i := strings.LastIndexByte(f, 'p')
		require.Positive(t, i, "bad partition %q", f)
		n, err := strconv.Atoi(f[i+1:])
		require.NoError(t, err, "bad partition %q", f)
		out = append(out, TopicPartition{Topic: f[:i], Partition: int32(n)})
	}
	return out
}

// assignment builds an expected Assign result from member -> "t0p0,t0p1".
func assignment(t testing.TB, m map[string]string) map[string][]TopicPartition {
	t.Helper()
	out := make(map[string][]TopicPartition, len(m))
	for id, s := range m {
		out[id] = tps(t, s)
	}
	return out
}

// dynMember is a dynamic member subscribed to topics.
func dynMember(id string, topics ...string) Member {
	return Member{ID: id, Topics: topics}
}

// withOwned returns members with Owned taken from an assignment.
func withOwned(members []Member, a map[string][]TopicPartition) []Member {
	out := make([]Member, len(members))
	for i, m := range members {
		m.Owned = a[m.ID]
		out[i] = m
	}
	return out
}
