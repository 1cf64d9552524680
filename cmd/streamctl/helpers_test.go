package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// result is what one run of streamctl printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs streamctl in-process with stdin and args.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// cliApp runs streamctl in-process with ctx and an app adjusted by setup.
func cliApp(t *testing.T, ctx context.Context, setup func(*app), args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb)
	setup(a)
	code := a.exit(a.main(ctx, args))
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok checks that a run succeeded and printed nothing on stderr.
func (r result) ok(t *testing.T) result {
	t.Helper()
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	return r
}

// fails checks that a run exited with code and one line on stderr
// containing each of want.
func (r result) fails(t *testing.T, code int, want ...string) {
	t.Helper()
	require.Equal(t, code, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line on stderr: %q", r.stderr)
	require.True(t, strings.HasPrefix(r.stderr, "streamctl"), r.stderr)
	for _, w := range want {
		require.Contains(t, r.stderr, w)
	}
}

// withBroker opens dir, runs fn and closes the broker. The broker places
// records on the partition they name (ManualPartitioner), as rec makes them.
func withBroker(t *testing.T, dir string, fn func(b *stream.Broker)) {
	t.Helper()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	fn(b)
}

// seed makes a data directory with topic (partitions partitions) holding
// recs, published one call each (one batch each).
func seed(t *testing.T, topic string, partitions int, recs ...*stream.Record) string {
	t.Helper()
	dir := t.TempDir()
	withBroker(t, dir, func(b *stream.Broker) {
		require.NoError(t, b.CreateTopic(topic, stream.TopicConfig{Partitions: partitions, SegmentBytes: 4096}))
		for _, r := range recs {
			r.Topic = topic
			require.NoError(t, b.Publish(context.Background(), r))
		}
	})
	return dir
}

// rec makes a record for partition p with value v and timestamp ts.
func rec(p int32, key, value string, ts time.Time) *stream.Record {
	r := &stream.Record{Partition: p, Value: []byte(value), Timestamp: ts}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

// t0 is the base timestamp of test records.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus m minutes.
func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// threeOrders seeds a two-partition topic "orders": partition 0 holds a@0,
// c@2; partition 1 holds b@1 (timestamps in minutes after t0).
func threeOrders(t *testing.T) string {
	t.Helper()
	return seed(t, "orders", 2, rec(0, "k1", "a", at(0)), rec(1, "k2", "b", at(1)), rec(0, "k3", "c", at(2)))
}

// commit commits offsets for group on topic through the library, as a
// consumer that read up to them.
func commit(t *testing.T, dir, group, topic string, offsets map[int32]int64) {
	t.Helper()
	withBroker(t, dir, func(b *stream.Broker) {
		c, err := b.Subscribe(group, []string{topic}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Poll(context.Background())
		require.NoError(t, err)
		offs := map[stream.TopicPartition]int64{}
		for p, o := range offsets {
			offs[stream.TopicPartition{Topic: topic, Partition: p}] = o
		}
		require.NoError(t, c.CommitOffsets(context.Background(), offs))
	})
}

// committed returns group's committed offsets of topic, by partition.
func committed(t *testing.T, dir, group string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	withBroker(t, dir, func(b *stream.Broker) {
		offs, err := b.CommittedOffsets(group)
		require.NoError(t, err)
		for tp, o := range offs {
			out[tp.Partition] = o
		}
	})
	return out
}

// decode parses JSON lines.
func decode(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		recs = append(recs, m)
	}
	return recs
}

// values returns the "value" field of JSON lines.
func values(t *testing.T, out string) []string {
	t.Helper()
	var vs []string
	for _, m := range decode(t, out) {
		vs = append(vs, m["value"].(string))
	}
	return vs
}

// snapshot returns every file under dir with a digest of its content, mode
// and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := d.Info()
		require.NoError(t, err)
		sum := ""
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			sum = fmt.Sprintf("%x", sha256.Sum256(data))
		}
		out[path] = info.Mode().String() + info.ModTime().String() + sum
		return nil
	})
	require.NoError(t, err)
	return out
}

// firstLog returns the first segment file of a topic's partition.
func firstLog(dir, topic string, partition int) string {
	return filepath.Join(dir, "topics", topic, strconv.Itoa(partition), "00000000000000000000.log")
}

// flipLastByte corrupts a segment file's last byte (inside the last batch's
// CRC-covered records).
func flipLastByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotEmpty(t, data)
	data[len(data)-1] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o600))
}
