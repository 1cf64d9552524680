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
	require.Contains(t, out, "Group: billing  State: Empty  Generation: 1  Balancer: -  Members: 0\n",
		"commit's consumer completed generation 1")
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

	r := reset("-to", "5", "-partition", "0").ok(t) // past the end: the end, as Kafka does
	require.Regexp(t, `\nbilling\s+orders\s+0\s+2\s+2\n`, r.stdout)
	require.Equal(t, "orders partition 0: offset 5 is outside the log [0, 2]; using 2\n", r.stderr)
	reset("-to", "0", "-partition", "9").fails(t, 1, "invalid partition")
	reset().fails(t, 2, "-to or -shift-by is required")
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

// TestGroupsResetClampsAndShifts checks that reset-offsets clamps to the
// log as kafka-consumer-groups.sh does (-to and -shift-by alike), relative
// positions, and that -dry-run prints the plan and commits nothing.
func TestGroupsResetClampsAndShifts(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t) // partition 0: offsets 0, 1; partition 1: offset 0
	withBroker(t, dir, func(b *stream.Broker) {
		_, err := b.DeleteRecords("orders", 0, 1) // partition 0's log is [1, 2]
		require.NoError(t, err)
	})
	commit(t, dir, "billing", "orders", map[int32]int64{0: 2, 1: 1})
	reset := func(args ...string) result {
		return cli(t, "", append([]string{"-dir", dir, "groups", "reset-offsets", "-group", "billing", "-topic", "orders"}, args...)...)
	}

	r := reset("-to", "0", "-dry-run").ok(t)
	require.Regexp(t, `\nbilling\s+orders\s+0\s+2\s+1\nbilling\s+orders\s+1\s+1\s+0\n`, r.stdout)
	require.Equal(t, "orders partition 0: offset 0 is outside the log [1, 2]; using 1\n", r.stderr)
	require.Contains(t, r.stdout, "dry run: nothing committed")
	require.Equal(t, map[int32]int64{0: 2, 1: 1}, committed(t, dir, "billing"))

	r = reset("-shift-by", "-5").ok(t)
	require.Regexp(t, `\nbilling\s+orders\s+0\s+2\s+1\nbilling\s+orders\s+1\s+1\s+0\n`, r.stdout)
	require.Equal(t, "orders partition 0: offset -3 is outside the log [1, 2]; using 1\n"+
		"orders partition 1: offset -4 is outside the log [0, 1]; using 0\n", r.stderr)
	require.Equal(t, map[int32]int64{0: 1, 1: 0}, committed(t, dir, "billing"))

	r = reset("-shift-by", "1", "-partition", "0").ok(t)
	require.Empty(t, r.stderr, "within the log: no note")
	require.Equal(t, map[int32]int64{0: 2, 1: 0}, committed(t, dir, "billing"))

	reset("-to", "-1").ok(t) // the last record of each partition
	require.Equal(t, map[int32]int64{0: 1, 1: 0}, committed(t, dir, "billing"))
	reset("-to", "+1", "-partition", "1").ok(t)
	require.Equal(t, map[int32]int64{0: 1, 1: 1}, committed(t, dir, "billing"))

	reset("-to", "end", "-shift-by", "1").fails(t, 2, "exclude each other")
	reset("-shift-by", "x").fails(t, 2, "-shift-by")
	cli(t, "", "-dir", dir, "groups", "reset-offsets", "-group", "fresh", "-topic", "orders", "-shift-by", "1").
		fails(t, 1, "no committed offset", "partition 0")
}

// TestGroupsDescribeLastGeneration checks that groups describe shows the
// group's last generation, balancer and members once its consumer is gone.
func TestGroupsDescribeLastGeneration(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	withBroker(t, dir, func(b *stream.Broker) {
		c, err := b.Subscribe("billing", []string{"orders"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest,
			Balancer: stream.CooperativeStickyBalancer{}, InstanceID: "worker-1"})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.NoError(t, c.Commit(t.Context()))
	})
	out := cli(t, "", "-dir", dir, "groups", "describe", "-group", "billing").ok(t).stdout
	require.Regexp(t, `^Group: billing  State: Empty  Generation: 1  Balancer: -  Members: 0\n`, out)
	require.Regexp(t, `\nLast generation: 1  Balancer: cooperative-sticky  Completed: \d{4}-\d\d-\d\dT[\d:.]+Z  Members: 1\n`, out)
	require.Regexp(t, `\n  MEMBER\s+INSTANCE\s+TOPICS\s+ASSIGNMENT\n  member-1\s+worker-1\s+orders\s+orders\(0,1\)\n`, out)

	cli(t, "", "-dir", dir, "groups", "reset-offsets", "-group", "billing", "-topic", "orders", "-to", "earliest").ok(t)
	cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-group", "billing").ok(t) // a second generation, another member
	out = cli(t, "", "-dir", dir, "groups", "describe", "-group", "billing").ok(t).stdout
	require.Regexp(t, `\nLast generation: 2  Balancer: range  .*Members: 1\n  MEMBER.*\n  member-1\s+-\s+orders\s+orders\(0,1\)\n`, out)
}
