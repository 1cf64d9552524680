package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// writerEnv makes the test binary a live writer (see liveWriter) of the
// data directory it names, instead of running the tests.
const writerEnv = "STREAMCTL_TEST_WRITER"

// liveWriter is an application that owns dir and publishes: it creates the
// topic "live" (2 partitions, small segments that roll often) unless it
// exists, then publishes each stdin line "P VALUE" to partition P and
// answers "ok VALUE" once Publish returned. At the end of stdin it closes
// the broker. It takes the directory's lock without waiting (LockTimeout
// 0): an Open that a reader blocked would fail at once. It places records
// on the partition they name (ManualPartitioner).
func liveWriter(dir string) int {
	b, err := stream.Open(dir, &stream.Options{Partitioner: stream.ManualPartitioner{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer: open:", err)
		return 3
	}
	err = b.CreateTopic("live", stream.TopicConfig{Partitions: 2, SegmentBytes: 4 << 10})
	if err != nil && !errors.Is(err, stream.ErrTopicExists) {
		fmt.Fprintln(os.Stderr, "writer: create:", err)
		return 3
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var p int32
		var v string
		if _, err := fmt.Sscanf(in.Text(), "%d %s", &p, &v); err != nil {
			fmt.Fprintln(os.Stderr, "writer: bad line:", in.Text())
			return 3
		}
		if err := b.Publish(context.Background(), &stream.Record{Topic: "live", Partition: p, Value: []byte(v)}); err != nil {
			fmt.Fprintln(os.Stderr, "writer: publish:", err)
			return 3
		}
		fmt.Println("ok", v)
	}
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "writer: close:", err)
		return 3
	}
	return 0
}

// writer is a running liveWriter process.
type writer struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	acks *bufio.Scanner
}

// startWriter starts a liveWriter process on dir.
func startWriter(t *testing.T, dir string) *writer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &writer{cmd: cmd, in: in, acks: bufio.NewScanner(out)}
}

// publish has the writer publish values to partition p and waits for its
// acknowledgements.
func (w *writer) publish(t *testing.T, p int, values ...string) {
	t.Helper()
	for _, v := range values {
		_, err := fmt.Fprintf(w.in, "%d %s\n", p, v)
		require.NoError(t, err)
		require.True(t, w.acks.Scan(), "the writer died: %v", w.acks.Err())
		require.Equal(t, "ok "+v, w.acks.Text())
	}
}

// stop ends the writer: cleanly (end of input, Close), or killed.
func (w *writer) stop(t *testing.T, kill bool) {
	t.Helper()
	if kill {
		require.NoError(t, w.cmd.Process.Kill())
		w.cmd.Wait()
		return
	}
	require.NoError(t, w.in.Close())
	require.NoError(t, w.cmd.Wait())
}

// pad makes records large enough for the topic's 4 KiB segments to roll
// every few dozen.
var pad = strings.Repeat("x", 100)

// batchOf returns n values named after prefix.
func batchOf(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d-%s", prefix, i, pad)
	}
	return out
}

// TestE2EFollowLiveWriter runs a live writer process and the streamctl
// binary's consume -follow on the same directory together: the reader
// prints what the writer publishes as it publishes it, across segment
// rolls, a clean restart and a kill of the writer, and the writer opens
// each time while the reader is attached. Then read commands run beside
// the writer and it keeps publishing.
func TestE2EFollowLiveWriter(t *testing.T) {
	dir := t.TempDir()
	w := startWriter(t, dir)
	w.publish(t, 0, "first")

	reader := exec.Command(builtBinary(t), "-dir", dir, "consume", "-topic", "live", "-follow")
	reader.Env = append(os.Environ(), "STREAMCTL_DIR=")
	out, err := reader.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	reader.Stderr = &stderr
	require.NoError(t, reader.Start())
	t.Cleanup(func() { reader.Process.Kill(); reader.Wait() })
	lines := make(chan map[string]any)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	// expect reads the reader's next records, in any order across
	// partitions, and checks they are values, each partition's in order.
	expect := func(values ...string) {
		t.Helper()
		want := map[float64][]string{}
		for i, v := range values {
			want[float64(i%2)] = append(want[float64(i%2)], v)
		}
		got := map[float64][]string{}
		timeout := time.After(30 * time.Second)
		for range values {
			select {
			case m, ok := <-lines:
				require.True(t, ok, "the reader ended: %s", stderr.String())
				p := m["partition"].(float64)
				got[p] = append(got[p], m["value"].(string))
			case <-timeout:
				t.Fatalf("the reader printed %v of %v", got, want)
			}
		}
		require.Equal(t, want, got)
	}
	publish := func(w *writer, values ...string) {
		t.Helper()
		for i, v := range values {
			w.publish(t, i%2, v)
		}
	}
	expect("first")

	round := batchOf("w1", 100) // several segments per partition
	publish(w, round...)
	expect(round...)

	w.stop(t, false) // a clean close trims the segments under the reader
	w = startWriter(t, dir)
	round = batchOf("w2", 40)
	publish(w, round...)
	expect(round...)

	w.stop(t, true) // killed: the next Open recovers
	w = startWriter(t, dir)
	round = batchOf("w3", 40)
	publish(w, round...)
	expect(round...)

	// Read commands beside the live writer, which goes on publishing.
	require.Regexp(t, `\n0\s+0\s+91\s+91\s+\d+\s+([4-9]|\d\d)\n`, streamctl(t, "", "-dir", dir, "topics", "describe", "-topic", "live").ok(t).stdout,
		"partition 0: 91 records in several segments (a clean reopen appends to the last one)")
	got := values(t, streamctl(t, "", "-dir", dir, "consume", "-topic", "live", "-partition", "1", "-from", "88").ok(t).stdout)
	require.Equal(t, []string{"w3-037-" + pad, "w3-039-" + pad}, got)
	round = batchOf("w4", 10)
	publish(w, round...)
	expect(round...)

	require.NoError(t, reader.Process.Signal(syscall.SIGINT))
	require.NoError(t, reader.Wait(), "an interrupt ends -follow normally: %s", stderr.String())
	require.Empty(t, stderr.String())
	w.stop(t, false)
}
