package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// The end-to-end tests run the streamctl binary, built once. They do not
// run in parallel with the in-process tests: a child forked between a
// test's Open and Close of a broker inherits the LOCK file's descriptor
// until it execs, and with it the flock, so a test reopening the directory
// just then would see ErrLocked.
var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	binPath   string
	buildErr  error
)

// TestMain runs the tests and removes the end-to-end binary; with
// writerEnv set, the binary is a live writer instead (see liveWriter).
func TestMain(m *testing.M) {
	if dir := os.Getenv(writerEnv); dir != "" {
		os.Exit(liveWriter(dir))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// builtBinary builds streamctl on first use and returns its path.
func builtBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "streamctl-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "streamctl")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// streamctl runs the binary with stdin and args, without STREAMCTL_DIR.
func streamctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(builtBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	cmd.Env = append(os.Environ(), "STREAMCTL_DIR=")
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// TestE2ETopicsProduceConsume creates a topic, produces from stdin and consumes JSON with the binary.
func TestE2ETopicsProduceConsume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	require.Equal(t, "created topic orders with 2 partitions\n",
		streamctl(t, "", "-dir", dir, "topics", "create", "-topic", "orders", "-partitions", "2").ok(t).stdout)
	r := streamctl(t, "alice:apples\nbob:pears\nalice:plums\n", "-dir", dir, "produce", "-topic", "orders",
		"-key-separator", ":", "-header", "src=e2e").ok(t)
	require.Regexp(t, `^produced 3 records to orders \(partition .*\)\n$`, r.stderr)

	recs := decode(t, streamctl(t, "", "-dir", dir, "consume", "-topic", "orders").ok(t).stdout)
	require.Len(t, recs, 3)
	byKey := map[string][]string{}
	for _, m := range recs {
		byKey[m["key"].(string)] = append(byKey[m["key"].(string)], m["value"].(string))
		require.Equal(t, "orders", m["topic"])
		require.Equal(t, []any{map[string]any{"key": "src", "value": "e2e"}}, m["headers"])
	}
	require.Equal(t, []string{"apples", "plums"}, byKey["alice"], "one key, one partition, in order")
	require.Regexp(t, `\n[01]\s+0\s+[123]\s+[123]\s+\d+\s+1\n`,
		streamctl(t, "", "-dir", dir, "topics", "describe", "-topic", "orders").ok(t).stdout)
}

// TestE2EGroups checks groups describe, lag and reset-offsets, and a group consume, with the binary.
func TestE2EGroups(t *testing.T) {
	dir := threeOrders(t) // p0: a, c; p1: b
	commit(t, dir, "billing", "orders", map[int32]int64{0: 1, 1: 1})

	out := streamctl(t, "", "-dir", dir, "groups", "describe", "-group", "billing").ok(t).stdout
	require.Contains(t, out, "Group: billing  State: Empty")
	require.Regexp(t, `\norders\s+0\s+1\s+2\s+1\n`, out)
	require.Regexp(t, `\norders\s+1\s+1\s+1\s+0\n`, out)
	require.Contains(t, streamctl(t, "", "-dir", dir, "groups", "lag", "-group", "billing").ok(t).stdout, "total lag: 1\n")

	streamctl(t, "", "-dir", dir, "groups", "reset-offsets", "-group", "billing", "-topic", "orders", "-to", "earliest").ok(t)
	require.Contains(t, streamctl(t, "", "-dir", dir, "groups", "lag", "-group", "billing").ok(t).stdout, "total lag: 3\n")

	got := values(t, streamctl(t, "", "-dir", dir, "consume", "-topic", "orders", "-group", "billing").ok(t).stdout)
	require.ElementsMatch(t, []string{"a", "b", "c"}, got)
	require.Contains(t, streamctl(t, "", "-dir", dir, "groups", "lag").ok(t).stdout, "total lag: 0\n")
}

// TestE2EDumpVerifyReplay checks dump, verify (clean, then with a flipped byte) and replay with the binary.
func TestE2EDumpVerifyReplay(t *testing.T) {
	dir := timeOrders(t)
	out := streamctl(t, "", "-dir", dir, "dump", "-topic", "orders", "-partition", "1").ok(t).stdout
	require.Contains(t, out, "crcValid: true")
	require.Contains(t, out, `value: "p1@3"`)

	require.Contains(t, streamctl(t, "", "-dir", dir, "verify").ok(t).stdout, "; 0 damaged\n")

	r := streamctl(t, "", "-dir", dir, "replay", "-topic", "orders", "-from", rfc(at(1)), "-to", rfc(at(4))).ok(t)
	require.Equal(t, []string{"p1@1", "p0@2", "p1@3"}, values(t, r.stdout))
	require.Empty(t, r.stderr, "no progress: stderr is a pipe")

	path := firstLog(dir, "orders", 1)
	flipLastByte(t, path)
	r = streamctl(t, "", "-dir", dir, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED "+path)
	require.Contains(t, r.stderr, "damage found in 1 of 2 segments")
}

// TestE2EHelpAndBadFlag checks --help on every command and a bad flag (exit 2, one line) with the binary.
func TestE2EHelpAndBadFlag(t *testing.T) {
	for _, words := range commandPaths(commandTree(), nil) {
		r := streamctl(t, "", append(words, "--help")...).ok(t)
		require.True(t, strings.HasPrefix(r.stdout, "Usage: streamctl"), "%q: %s", words, r.stdout)
	}
	r := streamctl(t, "", "-dir", t.TempDir(), "consume", "-topic", "orders", "-bogus")
	require.Equal(t, 2, r.code)
	require.Equal(t, "streamctl consume: flag provided but not defined: -bogus (see 'streamctl consume -h')\n", r.stderr)
	require.Empty(t, r.stdout)
}

// TestE2ELocked checks, with the binary, that a read works on a directory a
// running broker holds, and the one-line error of a write.
func TestE2ELocked(t *testing.T) {
	dir := threeOrders(t)
	withBroker(t, dir, func(*stream.Broker) {
		require.Equal(t, "orders\n", streamctl(t, "", "-dir", dir, "topics", "list").ok(t).stdout)
		r := streamctl(t, "", "-dir", dir, "topics", "create", "-topic", "x")
		require.Equal(t, 1, r.code)
		require.Equal(t, "streamctl topics create: "+dir+" is in use by a running broker: stop it, or work on a copy\n", r.stderr)
	})
}
