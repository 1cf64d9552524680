package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// commandPaths lists every command's words, groups and leaves, root first.
func commandPaths(c *command, prefix []string) [][]string {
	out := [][]string{prefix}
	for _, s := range c.subs {
		out = append(out, commandPaths(s, append(append([]string(nil), prefix...), s.name))...)
	}
	return out
}

// TestHelpOnEveryCommand checks that -h and --help print each command's usage on stdout and exit 0.
func TestHelpOnEveryCommand(t *testing.T) {
	t.Parallel()
	for _, words := range commandPaths(commandTree(), nil) {
		for _, h := range []string{"-h", "--help"} {
			r := cli(t, "", append(words, h)...).ok(t)
			require.True(t, strings.HasPrefix(r.stdout, "Usage: "+strings.Join(append([]string{"streamctl"}, words...), " ")), r.stdout)
			require.Empty(t, r.stderr)
		}
	}
	r := cli(t, "", "help", "groups", "lag").ok(t)
	require.True(t, strings.HasPrefix(r.stdout, "Usage: streamctl groups lag [-group G]"), r.stdout)
	require.Contains(t, r.stdout, "-group name")
	require.Contains(t, cli(t, "", "-h").ok(t).stdout, "Global flags")
}

// TestUsageErrors checks that command-line mistakes exit 2 with one line on stderr.
func TestUsageErrors(t *testing.T) {
	t.Setenv("STREAMCTL_DIR", "")
	dir := threeOrders(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"-bogus", "topics", "list"},
		{"topics", "list"},
		{"-dir", dir, "topics", "list", "-bogus"},
		{"-dir", dir, "consume", "-topic", "orders", "-format", "yaml"},
		{"-dir", dir, "consume", "-topic", "orders", "-limit", "-1"},
		{"-dir", dir, "consume"},
		{"-dir", dir, "groups", "lag", "extra"},
	} {
		r := cli(t, "", args...)
		require.Equal(t, 2, r.code, "%q: %s", args, r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), "%q: one line: %q", args, r.stderr)
		require.Contains(t, r.stderr, "-h')", "%q points to the usage", args)
		require.Empty(t, r.stdout)
	}
}

// TestDirFromEnvironment checks STREAMCTL_DIR, and that -dir overrides it.
func TestDirFromEnvironment(t *testing.T) {
	dir := threeOrders(t)
	t.Setenv("STREAMCTL_DIR", dir)
	require.Equal(t, "orders\n", cli(t, "", "topics", "list").ok(t).stdout)
	cli(t, "", "-dir", filepath.Join(dir, "other"), "topics", "list").fails(t, 1, "no data directory")
}

// TestDirInUse checks that read commands work on a directory a running
// broker holds, and the one-line error of commands that write.
func TestDirInUse(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	withBroker(t, dir, func(*stream.Broker) {
		for _, args := range [][]string{
			{"topics", "list"},
			{"topics", "describe", "-topic", "orders"},
			{"consume", "-topic", "orders"},
			{"groups", "lag"},
			{"groups", "list"},
			{"replay", "-topic", "orders", "-from", "2000-01-01T00:00:00Z"},
		} {
			cli(t, "", append([]string{"-dir", dir}, args...)...).ok(t)
		}
		for _, args := range [][]string{
			{"produce", "-topic", "orders"},
			{"consume", "-topic", "orders", "-group", "g"},
			{"topics", "create", "-topic", "x"},
		} {
			cli(t, "x\n", append([]string{"-dir", dir}, args...)...).fails(t, 1, dir+" is in use by a running broker")
		}
	})
}

// TestReadOnlyFlagRefusesWrites checks that -readonly refuses every command that writes.
func TestReadOnlyFlagRefusesWrites(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	for _, args := range [][]string{
		{"topics", "create", "-topic", "x"},
		{"topics", "delete", "-topic", "orders"},
		{"topics", "add-partitions", "-topic", "orders", "-partitions", "3"},
		{"groups", "reset-offsets", "-group", "g", "-topic", "orders", "-to", "earliest"},
		{"groups", "delete", "-group", "g"},
	} {
		cli(t, "", append([]string{"-dir", dir, "-readonly"}, args...)...).fails(t, 2, "cannot run with -readonly")
	}
	require.Equal(t, "orders\n", cli(t, "", "-dir", dir, "-readonly", "topics", "list").ok(t).stdout)
}

// crashImage returns a copy of a directory taken while its broker was open:
// what a crashed or killed application leaves (unclean shutdown flag,
// preallocated active segments).
func crashImage(t *testing.T) string {
	t.Helper()
	src, dst := t.TempDir(), t.TempDir()
	withBroker(t, src, func(b *stream.Broker) {
		require.NoError(t, b.CreateTopic("orders", stream.TopicConfig{Partitions: 2}))
		for _, r := range []*stream.Record{rec(0, "", "a", at(0)), rec(1, "", "b", at(1))} {
			r.Topic = "orders"
			require.NoError(t, b.Publish(t.Context(), r))
		}
		c, err := b.Subscribe("billing", []string{"orders"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
		require.NoError(t, err)
		_, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.NoError(t, c.Commit(t.Context()))
		require.NoError(t, c.Close())
		copyDir(t, src, dst)
	})
	// A segment's first 64 KiB are written without preallocation; a
	// bigger one's crash leaves its preallocated space, zeros, after its
	// batches.
	logs, err := filepath.Glob(filepath.Join(dst, "topics", "orders", "*", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, logs)
	for _, l := range logs {
		fi, err := os.Stat(l)
		require.NoError(t, err)
		require.NoError(t, os.Truncate(l, fi.Size()+64<<10))
	}
	return dst
}

// copyDir copies the files of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(src, path)
		require.NoError(t, err)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	require.NoError(t, err)
}

// TestReadCommandsNeverChangeTheDirectory runs every read command on a crashed application's directory and checks no byte changed.
func TestReadCommandsNeverChangeTheDirectory(t *testing.T) {
	t.Parallel()
	dir := crashImage(t)
	before := snapshot(t, dir)
	for _, args := range [][]string{
		{"topics", "list"},
		{"topics", "describe"},
		{"consume", "-topic", "orders"},
		{"groups", "list"},
		{"groups", "describe"},
		{"groups", "lag"},
		{"groups", "reset-offsets", "-group", "billing", "-topic", "orders", "-to", "earliest", "-dry-run"},
		{"replay", "-topic", "orders", "-from", rfc(at(0))},
		{"dump", "-topic", "orders"},
		{"verify"},
	} {
		r := cli(t, "", append([]string{"-dir", dir}, args...)...).ok(t)
		require.Empty(t, r.stderr, "%q", args)
	}
	require.Equal(t, before, snapshot(t, dir))
	require.Equal(t, []string{"a", "b"}, values(t, cli(t, "", "-dir", dir, "consume", "-topic", "orders").stdout))
	require.Regexp(t, `\nbilling\s+orders\s+0\s+1\s+1\s+0\n`, cli(t, "", "-dir", dir, "groups", "lag").stdout)
	require.Contains(t, cli(t, "", "-dir", dir, "dump", "-topic", "orders").stdout, "zero-filled tail")
}

// TestFlagHelpHasNoContradictions reads every command's flag help: a
// required flag shows no default, a flag shows one default at most, and a
// boolean that defaults to true says how to turn it off.
func TestFlagHelpHasNoContradictions(t *testing.T) {
	t.Parallel()
	for _, words := range commandPaths(commandTree(), nil) {
		out := cli(t, "", append(words, "-h")...).ok(t).stdout
		_, flags, ok := strings.Cut(out, "\nFlags:\n")
		if !ok {
			continue // a group of commands
		}
		var entries []string
		for line := range strings.Lines(flags) {
			if strings.HasPrefix(line, "  -") {
				entries = append(entries, "")
			}
			entries[len(entries)-1] += line
		}
		for _, e := range entries {
			name := strings.Fields(e)[0]
			where := strings.Join(words, " ") + " " + name
			defaults := strings.Count(e, "(default")
			require.LessOrEqual(t, defaults, 1, "%s: one default at most: %q", where, e)
			if strings.Contains(e, "(required") {
				require.Zero(t, defaults, "%s: a required flag has no default: %q", where, e)
			}
			if strings.Contains(e, "(default true)") {
				require.Contains(t, e, name+"=false", "%s: says how to turn it off: %q", where, e)
			}
		}
	}
}
