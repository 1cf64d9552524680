package main

import (
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// TestGroupsListDescribeLag checks groups list, describe and lag, for one group and for all.
func TestGroupsListDescribeLag(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	require.Empty(t, cli(t, "", "-dir", dir, "groups", "list").ok(t).stdout)
	commit(t, dir, "billing", "orders", map[int32]int64{0: 1})
	commit(t, dir, "audit", "orders", map[int32]int64{0: 2, 1: 1})

	require.Equal(t, "audit\nbilling\n", cli(t, "", "-dir", dir, "groups", "list").ok(t).stdout)

	out := cli(t, "", "-dir", dir, "groups", "describe", "-group", "billing").ok(t).stdout
	require.Contains(t, out, "Group: billing  State: Empty  Generation: 0  Members: 0\n")
	require.Regexp(t, `TOPIC\s+PARTITION\s+COMMITTED\s+END\s+LAG\n`, out)
	require.Regexp(t, `\norders\s+0\s+1\s+2\s+1\n`, out)
	require.Regexp(t, `\norders\s+1\s+-\s+1\s+-\n`, out, "a partition never committed")

	all := cli(t, "", "-dir", dir, "groups", "describe").ok(t).stdout
	require.Contains(t, all, "Group: audit")
	require.Contains(t, all, "Group: billing")

	lag := cli(t, "", "-dir", dir, "groups", "lag", "-group", "billing").ok(t).stdout
	require.Regexp(t, `GROUP\s+TOPIC\s+PARTITION\s+COMMITTED\s+END\s+LAG\n`, lag)
	require.Regexp(t, `\nbilling\s+orders\s+0\s+1\s+2\s+1\n`, lag)
	require.Contains(t, lag, "total lag: 1\n")
	lag = cli(t, "", "-dir", dir, "groups", "lag").ok(t).stdout
	require.Regexp(t, `\naudit\s+orders\s+1\s+1\s+1\s+0\n`, lag)
	require.Contains(t, lag, "total lag: 1\n")

	cli(t, "", "-dir", dir, "groups", "describe", "-group", "nope").fails(t, 1, `group "nope" not found`)
	cli(t, "", "-dir", dir, "groups", "lag", "-group", "nope").fails(t, 1, `group "nope" not found`)
}

// TestGroupsResetOffsets checks reset-offsets to earliest, latest, an offset and times, -partition, -dry-run and errors.
func TestGroupsResetOffsets(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	commit(t, dir, "billing", "orders", map[int32]int64{0: 2, 1: 1})
	reset := func(args ...string) result {
		return cli(t, "", append([]string{"-dir", dir, "groups", "reset-offsets", "-group", "billing", "-topic", "orders"}, args...)...)
	}
	out := reset("-to", "earliest").ok(t).stdout
	require.Regexp(t, `GROUP\s+TOPIC\s+PARTITION\s+OLD\s+NEW\nbilling\s+orders\s+0\s+2\s+0\nbilling\s+orders\s+1\s+1\s+0\n`, out)
	require.Equal(t, map[int32]int64{0: 0, 1: 0}, committed(t, dir, "billing"))

	reset("-to", "latest", "-partition", "1").ok(t)
	require.Equal(t, map[int32]int64{0: 0, 1: 1}, committed(t, dir, "billing"))

	reset("-to", "1", "-partition", "0").ok(t)
	require.Equal(t, map[int32]int64{0: 1, 1: 1}, committed(t, dir, "billing"))

	reset("-to", at(1).Format("2006-01-02T15:04:05Z")).ok(t) // p0: c@2 is offset 1; p1: b@1 is offset 0
	require.Equal(t, map[int32]int64{0: 1, 1: 0}, committed(t, dir, "billing"))

	reset("-to", "2099-01-01T00:00:00Z").ok(t) // after every record: the ends
	require.Equal(t, map[int32]int64{0: 2, 1: 1}, committed(t, dir, "billing"))

	out = reset("-to", "earliest", "-dry-run").ok(t).stdout
	require.Contains(t, out, "dry run: nothing committed")
	require.Equal(t, map[int32]int64{0: 2, 1: 1}, committed(t, dir, "billing"))

	reset("-to", "5", "-partition", "0").fails(t, 1, "offset out of range")
	reset("-to", "0", "-partition", "9").fails(t, 1, "invalid partition")
	reset().fails(t, 2, "-to is required")
	reset("-to", "soon").fails(t, 2, "-to")
	cli(t, "", "-dir", dir, "groups", "reset-offsets", "-topic", "orders", "-to", "earliest").fails(t, 2, "-group is required")
	cli(t, "", "-dir", dir, "groups", "reset-offsets", "-group", "g", "-to", "earliest").fails(t, 2, "-topic is required")
}

// TestGroupsResetRefusesWhileMembers checks the library refusal reset-offsets relies on, and that streamctl cannot open a directory in use.
func TestGroupsResetRefusesWhileMembers(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	withBroker(t, dir, func(b *stream.Broker) {
		c, err := b.Subscribe("billing", []string{"orders"}, nil)
		require.NoError(t, err)
		defer c.Close()
		err = b.SetCommittedOffsets("billing", map[stream.TopicPartition]int64{{Topic: "orders"}: 0})
		require.ErrorIs(t, err, stream.ErrGroupNotEmpty, "what reset-offsets relies on")
		// Meanwhile streamctl cannot open the directory at all.
		cli(t, "", "-dir", dir, "groups", "reset-offsets", "-group", "billing", "-topic", "orders", "-to", "earliest").
			fails(t, 1, "in use by a running broker")
	})
}

// TestGroupsDelete checks groups delete.
func TestGroupsDelete(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	commit(t, dir, "billing", "orders", map[int32]int64{0: 1})
	require.Equal(t, "deleted group billing\n", cli(t, "", "-dir", dir, "groups", "delete", "-group", "billing").ok(t).stdout)
	require.Empty(t, cli(t, "", "-dir", dir, "groups", "list").ok(t).stdout)
	cli(t, "", "-dir", dir, "groups", "delete", "-group", "billing").fails(t, 1, "not found")
	cli(t, "", "-dir", dir, "groups", "delete").fails(t, 2, "-group is required")
}
