package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var listening = regexp.MustCompile(`msg="streamserve: listening" addr=(\S+)`)

// startServe builds streamserve and runs it on dir at a free port. It
// returns the process, the address it logged, and its log lines from then
// on.
func startServe(t *testing.T, dir string, args ...string) (*exec.Cmd, string, <-chan string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streamserve")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin, append([]string{"-dir", dir, "-addr", "127.0.0.1:0", "-sync", "never"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // the test failed before waiting
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stderr)
	}()
	deadline := time.After(time.Minute)
	for {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "streamserve exited before listening")
			t.Log(line)
			if m := listening.FindStringSubmatch(line); m != nil {
				return cmd, m[1], lines
			}
		case <-deadline:
			t.Fatal("streamserve did not log that it listens")
		}
	}
}

func TestServeAnswersAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cmd, addr, lines := startServe(t, dir)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "streamserve-test", "1"
	resp, err := req.RequestWith(context.Background(), cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
	require.NotEmpty(t, resp.ApiKeys)
	cl.Close()

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var logged []string
	for line := range lines {
		logged = append(logged, line)
	}
	require.NoError(t, cmd.Wait(), "exit status; log: %q", logged)
	require.Contains(t, logged[len(logged)-1], "streamserve: stopped")

	// The Broker was closed: the directory is free.
	b, err := stream.Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

func TestServeRefusesBadFlags(t *testing.T) {
	var out strings.Builder
	require.Equal(t, 2, run([]string{"-addr", "127.0.0.1:0"}, &out), "no -dir")
	require.Contains(t, out.String(), "usage")
	require.Equal(t, 2, run([]string{"-dir", t.TempDir(), "-sync", "sometimes"}, &out))
	require.Equal(t, 2, run([]string{"-dir", t.TempDir(), "-log-level", "loud"}, &out))
}

// A directory another broker holds is refused with a log line and status 1.
func TestServeRefusesALockedDir(t *testing.T) {
	dir := t.TempDir()
	b, err := stream.Open(dir, nil)
	require.NoError(t, err)
	defer b.Close()
	var out strings.Builder
	require.Equal(t, 1, run([]string{"-dir", dir, "-addr", "127.0.0.1:0"}, &out))
	require.Contains(t, out.String(), "streamserve: open")
}
