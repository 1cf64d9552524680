package stream

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The kill -9 harness: the test binary re-runs itself as a child that
// publishes (and consumes and commits in a group) under SyncAlways, printing
// each acknowledgement to stdout; the parent SIGKILLs it at a random moment,
// reopens the directory and checks that every acknowledged record is there,
// in order and byte-exact, and that no committed offset points past the log.
//
// EMBEDSTREAM_CRASH_ROUNDS sets the number of kills (default 5; CI runs the
// default, the long run uses 1000).

const crashChildEnv = "EMBEDSTREAM_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(txCrashChildEnv); dir != "" {
		txCrashChild(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(compactCrashChildEnv); dir != "" {
		compactCrashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashValue is the payload of the record a child publishes at offset off.
func crashValue(off int64) string {
	return fmt.Sprintf("record-%d-%s", off, strings.Repeat("x", int(off%97)))
}

// crashRounds reads a kill test's number of kills from the environment
// variable env, def if it is unset.
func crashRounds(t *testing.T, env string, def int) int {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%s=%q", env, s)
	return n
}

// killChild runs the test binary as a kill test's child (env=dir), passes
// each line it prints to line as fields (n counts lines from 0), and
// SIGKILLs it after killAfter lines, or, if killAfter is 0, after delay
// (which may fall in its Open). It fails the test if the child ends on its
// own (its stderr says why), and returns once the child is gone and its
// output read.
func killChild(t *testing.T, env, dir string, killAfter int, delay time.Duration, line func(n int, f []string)) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var killed atomic.Bool
	kill := func() {
		if !killed.Swap(true) {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	if killAfter <= 0 {
		timer := time.AfterFunc(delay, kill)
		defer timer.Stop()
	}
	waited := false
	defer func() {
		if !waited { // line failed the test: the child must not outlive it
			kill()
			cmd.Wait()
		}
	}()
	sc := bufio.NewScanner(stdout)
	for n := 0; sc.Scan(); n++ {
		line(n, strings.Fields(sc.Text()))
		if n+1 == killAfter {
			kill()
		}
	}
	err = cmd.Wait()
	waited = true
	require.True(t, killed.Load(), "child exited on its own: %v\n%s", err, stderr.String())
}

// crashChild publishes forever until killed. Output lines:
//
//	ack <partition> <offset>     Publish of that record returned nil
//	commit <partition> <offset>  a group commit of that offset returned nil
//	zack 0 <offset>              a Producer's callback for that record of the
//	                             zstd-compressed topic crash-z returned nil
func crashChild(dir string) {
	b, err := Open(dir, &Options{Sync: SyncAlways, Partitioner: ManualPartitioner{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	if err := b.CreateTopic("crash", TopicConfig{Partitions: 2, SegmentBytes: 64 << 10}); err != nil && !strings.Contains(err.Error(), "exists") {
		fmt.Fprintln(os.Stderr, "create:", err)
		os.Exit(3)
	}
	if err := b.CreateTopic("crash-z", TopicConfig{SegmentBytes: 64 << 10, Compression: Compression{Codec: CodecZstd}}); err != nil && !strings.Contains(err.Error(), "exists") {
		fmt.Fprintln(os.Stderr, "create:", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format, args...)
		out.Flush()
		mu.Unlock()
	}
	ctx := context.Background()
	go func() {
		c, err := b.Subscribe("crash-group", []string{"crash"}, &ConsumerOptions{Reset: ResetEarliest})
		if err != nil {
			return
		}
		for {
			recs, err := c.Poll(ctx)
			if err != nil {
				return
			}
			last := map[int32]int64{}
			for _, r := range recs {
				last[r.Partition] = r.Offset + 1
			}
			if err := c.Commit(ctx); err == nil {
				for p, off := range last {
					emit("commit %d %d\n", p, off)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	// Compressed batches of many records: a Producer batching for a
	// millisecond. One goroutine publishing to one partition: the records
	// get offsets in publish order, from the recovered end on.
	wg.Go(func() {
		info, err := b.DescribeTopic("crash-z")
		if err != nil {
			return
		}
		next := info.Partitions[0].EndOffset
		p, err := b.NewProducer(&ProducerOptions{Linger: time.Millisecond})
		if err != nil {
			return
		}
		for {
			want := next
			r := &Record{Topic: "crash-z", Value: []byte(crashValue(want))}
			p.Publish(ctx, r, func(r *Record, err error) {
				if err != nil {
					fmt.Fprintln(os.Stderr, "producer:", err)
					os.Exit(4)
				}
				if r.Offset != want {
					fmt.Fprintf(os.Stderr, "crash-z offset %d, expected %d\n", r.Offset, want)
					os.Exit(5)
				}
				emit("zack 0 %d\n", r.Offset)
			})
			next++
		}
	})
	for p := int32(0); p < 2; p++ {
		wg.Go(func() {
			info, err := b.DescribeTopic("crash")
			if err != nil {
				return
			}
			next := info.Partitions[p].EndOffset
			for {
				// One record per call; the value is a function of its offset
				// so the parent can check it byte for byte.
				r := &Record{Topic: "crash", Partition: p, Key: []byte(strconv.Itoa(int(next))), Value: []byte(crashValue(next))}
				if err := b.Publish(ctx, r); err != nil {
					fmt.Fprintln(os.Stderr, "publish:", err)
					os.Exit(4)
				}
				if r.Offset != next {
					fmt.Fprintf(os.Stderr, "offset %d, expected %d\n", r.Offset, next)
					os.Exit(5)
				}
				emit("ack %d %d\n", p, r.Offset)
				next++
			}
		})
	}
	wg.Wait()
}

func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	rounds := crashRounds(t, "EMBEDSTREAM_CRASH_ROUNDS", 5)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[int32]int64{} // next offset expected to exist, per partition
	var zacked int64           // the same for crash-z, compressed by a Producer
	var totalZacks int
	var totalAcks, totalCommits int
	for round := 0; round < rounds; round++ {
		// Kill after a random number of acknowledgements (so every round
		// writes something), at a random moment between two of them.
		killChild(t, crashChildEnv, dir, 1+rng.IntN(300), 0, func(n int, f []string) {
			if n == 0 {
				// A second process cannot open a directory in use.
				_, err := Open(dir, nil)
				require.ErrorIs(t, err, ErrLocked)
			}
			if len(f) != 3 {
				return
			}
			p, _ := strconv.Atoi(f[1])
			off, _ := strconv.ParseInt(f[2], 10, 64)
			switch f[0] {
			case "ack":
				acked[int32(p)] = max(acked[int32(p)], off+1)
				totalAcks++
			case "commit":
				totalCommits++
			case "zack":
				zacked = max(zacked, off+1)
				totalZacks++
			}
		})

		// Everything acknowledged is there, in order, byte-exact; committed
		// offsets never point past the log.
		b, err := Open(dir, &Options{Sync: SyncAlways})
		require.NoError(t, err, "round %d", round)
		info, err := b.DescribeTopic("crash")
		require.NoError(t, err)
		for p := int32(0); p < 2; p++ {
			end := info.Partitions[p].EndOffset
			require.GreaterOrEqual(t, end, acked[p], "round %d partition %d lost acknowledged records", round, p)
			r, err := b.NewReader("crash", p, OffsetEarliest, &ReaderOptions{EndOffset: new(acked[p])})
			require.NoError(t, err)
			want := int64(0)
			for rec, err := range r.All(t.Context()) {
				require.NoError(t, err)
				require.Equal(t, want, rec.Offset)
				require.Equal(t, crashValue(want), string(rec.Value), "round %d partition %d offset %d", round, p, want)
				want++
			}
			require.Equal(t, acked[p], want)
			require.NoError(t, r.Close())
			// Records written but not acknowledged may survive: carry on
			// from the recovered end.
			acked[p] = end
		}
		// The compressed topic: every record acknowledged through the
		// Producer is there, byte-exact, in its zstd batches.
		zinfo, err := b.DescribeTopic("crash-z")
		require.NoError(t, err)
		zend := zinfo.Partitions[0].EndOffset
		require.GreaterOrEqual(t, zend, zacked, "round %d: crash-z lost acknowledged records", round)
		zr, err := b.NewReader("crash-z", 0, OffsetEarliest, &ReaderOptions{EndOffset: new(zacked)})
		require.NoError(t, err)
		want := int64(0)
		for rec, err := range zr.All(t.Context()) {
			require.NoError(t, err)
			require.Equal(t, want, rec.Offset)
			require.Equal(t, crashValue(want), string(rec.Value), "round %d crash-z offset %d", round, want)
			want++
		}
		require.Equal(t, zacked, want)
		require.NoError(t, zr.Close())
		zacked = zend
		committed, err := b.CommittedOffsets("crash-group")
		require.NoError(t, err)
		for tp, off := range committed {
			require.LessOrEqual(t, off, info.Partitions[tp.Partition].EndOffset, "round %d: commit past the log", round)
		}
		require.NoError(t, b.Close())
	}
	t.Logf("%d kills, %d acknowledged records checked (%d of them compressed), %d commits", rounds, totalAcks+totalZacks, totalZacks, totalCommits)
}
