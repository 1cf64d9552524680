package main

import (
	"context"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// rfc prints t as RFC 3339 for flags.
func rfc(t time.Time) string { return t.Format(time.RFC3339) }

// timeOrders seeds "orders" with two partitions whose timestamps interleave
// and are out of order in partition 1 (minutes after t0 in the values).
func timeOrders(t *testing.T) string {
	t.Helper()
	return seed(t, "orders", 2,
		rec(0, "", "p0@0", at(0)), rec(1, "", "p1@1", at(1)), rec(0, "", "p0@2", at(2)),
		rec(1, "", "p1@5", at(5)), rec(1, "", "p1@3", at(3)), rec(0, "", "p0@4", at(4)))
}

// TestReplayMergesByTime checks the time range, the merge across partitions and -partition.
func TestReplayMergesByTime(t *testing.T) {
	t.Parallel()
	dir := timeOrders(t)
	replay := func(args ...string) []string {
		r := cli(t, "", append([]string{"-dir", dir, "replay", "-topic", "orders"}, args...)...).ok(t)
		require.Empty(t, r.stderr, "no progress when stderr is not a terminal")
		return values(t, r.stdout)
	}
	require.Equal(t, []string{"p0@0", "p1@1", "p0@2", "p0@4", "p1@5", "p1@3"}, replay("-from", rfc(at(0))),
		"merged by timestamp as far as each partition's order allows")
	require.Equal(t, []string{"p1@1", "p0@2", "p1@3"}, replay("-from", rfc(at(1)), "-to", rfc(at(4))),
		"from inclusive, to exclusive, unordered records found")
	require.Equal(t, []string{"p1@1", "p1@3"}, replay("-from", rfc(at(1)), "-to", rfc(at(4)), "-partition", "1"))
	require.Equal(t, []string{"p1@1", "p1@3"}, replay("-partition", "all", "-from", rfc(at(1)), "-to", rfc(at(4)), "-partition", "1"))
	require.Empty(t, replay("-from", rfc(at(6))))
}

// TestReplayProgressOnTerminal checks the progress line shown when stderr is a terminal.
func TestReplayProgressOnTerminal(t *testing.T) {
	t.Parallel()
	dir := timeOrders(t)
	r := cliApp(t, context.Background(), func(a *app) { a.progress = true },
		"-dir", dir, "replay", "-topic", "orders", "-from", rfc(at(2)), "-format", "raw").ok(t)
	require.Equal(t, "p0@2\np0@4\np1@5\np1@3\n", r.stdout)
	require.Equal(t, "\rreplay: 4 records printed, 4 of 4 read (100%)\n", r.stderr)
}

// TestReplayErrors checks replay's usage errors and failures.
func TestReplayErrors(t *testing.T) {
	t.Parallel()
	dir := timeOrders(t)
	base := []string{"-dir", dir, "replay", "-topic", "orders"}
	cli(t, "", base...).fails(t, 2, "-from is required")
	cli(t, "", append(base, "-from", "noon")...).fails(t, 2, "-from: bad time")
	cli(t, "", append(base, "-from", rfc(at(2)), "-to", rfc(at(1)))...).fails(t, 2, "-to must be after -from")
	cli(t, "", append(base, "-from", rfc(at(0)), "-partition", "x")...).fails(t, 2, "-partition")
	cli(t, "", append(base, "-from", rfc(at(0)), "-partition", "2")...).fails(t, 1, "invalid partition")
	cli(t, "", append(base, "-from", rfc(at(0)), "-format", "xml")...).fails(t, 2, "-format")
	cli(t, "", "-dir", dir, "replay", "-topic", "nope", "-from", "now").fails(t, 1, "topic not found")
}

// TestReplayAllTopics checks that replay without -topic merges every topic
// by time, and refuses -partition without -topic.
func TestReplayAllTopics(t *testing.T) {
	t.Parallel()
	dir := timeOrders(t)
	withBroker(t, dir, func(b *stream.Broker) {
		require.NoError(t, b.CreateTopic("audit", stream.TopicConfig{}))
		for _, r := range []*stream.Record{rec(0, "", "audit@1", at(1)), rec(0, "", "audit@6", at(6))} {
			r.Topic = "audit"
			require.NoError(t, b.Publish(t.Context(), r))
		}
	})
	r := cli(t, "", "-dir", dir, "replay", "-from", rfc(at(1)), "-format", `%t:%s\n`).ok(t)
	require.Equal(t, "audit:audit@1\norders:p1@1\norders:p0@2\norders:p0@4\norders:p1@5\norders:p1@3\naudit:audit@6\n", r.stdout,
		"by time across topics; a tie goes to the topic first by name")
	r = cli(t, "", "-dir", dir, "replay", "-from", rfc(at(5)), "-to", rfc(at(7))).ok(t)
	require.Equal(t, []string{"p1@5", "audit@6"}, values(t, r.stdout))
	cli(t, "", "-dir", dir, "replay", "-from", rfc(at(0)), "-partition", "0").fails(t, 2, "-partition needs -topic")
	require.Empty(t, cli(t, "", "-dir", seed(t, "empty", 1), "replay", "-from", rfc(at(0))).ok(t).stdout)
}
