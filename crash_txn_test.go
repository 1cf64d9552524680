package stream

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The exactly-once kill -9 test (issue 17): the child runs a
// consume-transform-publish loop under SyncAlways, two TxSessions of one
// group reading txcIn and publishing, per input record, one output to
// txcOut that names the input (key "partition/offset") and carries a
// value derived from it; about one transaction in five is aborted on
// purpose, its outputs marked "|abort". The parent publishes the inputs
// (before each round, so it knows them), SIGKILLs the child at a random
// moment (after a random number of its lines, or after a random delay that
// may fall in Open's recovery or the group's join), reopens the directory
// and checks, reading the output read_committed:
//
//   - every input below the group's committed offset is reflected exactly
//     once, none at or above it at all;
//   - no output of an aborted transaction is visible;
//   - every commit the child saw succeed is durable (committed offsets are
//     at least what End reported);
//   - nothing is left open: each partition's LSO is its high watermark;
//   - every partition reads whole at both isolation levels.
//
// Each round goes on from where the last left off: the child reopens the
// directory and its sessions resume the group from its committed offsets.
//
// EMBEDSTREAM_TXN_CRASH_ROUNDS sets the number of kills (default 4; CI runs
// the default, the long run uses 1000).

const txCrashChildEnv = "EMBEDSTREAM_TXN_CRASH_CHILD"

const (
	txcIn       = "txin"
	txcOut      = "txout"
	txcGroup    = "txg"
	txcInParts  = 2
	txcOutParts = 3
	txcAhead    = 600 // inputs kept unconsumed ahead of the group, per partition
)

var txcOpts = Options{Sync: SyncAlways, Partitioner: ManualPartitioner{}}

func txcInValue(p int32, off int64) string {
	return fmt.Sprintf("in-%d-%d-%s", p, off, strings.Repeat("i", int(off%37)))
}

func txcOutKey(p int32, off int64) string { return fmt.Sprintf("%d/%d", p, off) }

func txcOutValue(p int32, off int64, doomed bool) string {
	v := fmt.Sprintf("out-%d-%d-%s", p, off, strings.Repeat("o", int((off*7+int64(p))%53)))
	if doomed {
		v += "|abort"
	}
	return v
}

// txcOutPartition spreads one transaction's outputs over the partitions.
func txcOutPartition(p int32, off int64) int32 { return int32((off + int64(p)) % txcOutParts) }

// txCrashChild runs the loop until killed. Output lines:
//
//	pub <partition> <offset>     the output of that input was published
//	commit <partition> <offset>  End committed, with that input position
//	abort 0 0                    End aborted (on purpose or by a rebalance)
func txCrashChild(dir string) {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(4)
	}
	b, err := Open(dir, &txcOpts)
	if err != nil {
		fail("open", err)
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
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			s, err := b.NewTxSession(fmt.Sprintf("txs-%d", i), txcGroup, []string{txcIn},
				&TxSessionOptions{Consumer: ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 1 + 3*i + i*i}})
			if err != nil {
				fail("session", err)
			}
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			for {
				recs, err := s.Poll(ctx)
				if err != nil {
					fail("poll", err)
				}
				doomed := rng.IntN(5) == 0
				next := map[int32]int64{}
				for _, r := range recs {
					if want := txcInValue(r.Partition, r.Offset); string(r.Value) != want {
						fail("input", fmt.Errorf("%d/%d is %q, want %q", r.Partition, r.Offset, r.Value, want))
					}
					o := &Record{Topic: txcOut, Partition: txcOutPartition(r.Partition, r.Offset),
						Key: []byte(txcOutKey(r.Partition, r.Offset)), Value: []byte(txcOutValue(r.Partition, r.Offset, doomed))}
					if err := s.Publish(ctx, o); err != nil {
						fail("publish", err)
					}
					emit("pub %d %d\n", r.Partition, r.Offset)
					next[r.Partition] = r.Offset + 1
				}
				committed, err := s.End(ctx, !doomed)
				if err != nil {
					fail("end", err)
				}
				if !committed {
					emit("abort 0 0\n")
					continue
				}
				for p, off := range next {
					emit("commit %d %d\n", p, off)
				}
			}
		})
	}
	wg.Wait()
}

func TestKillNineTransactionsExactlyOnce(t *testing.T) {
	rounds := crashRounds(t, "EMBEDSTREAM_TXN_CRASH_ROUNDS", 4)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 17))

	b, err := Open(dir, &txcOpts)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(txcIn, TopicConfig{Partitions: txcInParts, SegmentBytes: 64 << 10}))
	require.NoError(t, b.CreateTopic(txcOut, TopicConfig{Partitions: txcOutParts, SegmentBytes: 64 << 10}))
	txcTopUp(t, b)
	require.NoError(t, b.Close())

	acked := map[int32]int64{} // input positions End reported committed
	var st txcStats
	start := time.Now()
	for round := 0; round < rounds; round++ {
		// Mostly kill after a random number of lines, at a random point
		// of a transaction; sometimes after a random delay, which may
		// fall in Open (recovery) or before the first transaction.
		killAfter, delay := 1+rng.IntN(80), time.Duration(0)
		if rng.IntN(8) == 0 {
			killAfter, delay = 0, time.Duration(rng.IntN(60))*time.Millisecond
		}
		killChild(t, txCrashChildEnv, dir, killAfter, delay, func(_ int, f []string) {
			if len(f) != 3 {
				return
			}
			p, _ := strconv.Atoi(f[1])
			off, _ := strconv.ParseInt(f[2], 10, 64)
			switch f[0] {
			case "pub":
				st.pubs++
			case "commit":
				acked[int32(p)] = max(acked[int32(p)], off)
				st.commits++
			case "abort":
				st.aborts++
			}
		})

		b, err := Open(dir, &txcOpts)
		require.NoError(t, err, "round %d", round)
		txcCheck(t, b, round, acked, &st)
		txcTopUp(t, b)
		require.NoError(t, b.Close())
	}
	t.Logf("%d kills in %v: %d outputs published, %d commits and %d aborts acknowledged; at the end %d inputs consumed, %d outputs committed, %d aborted outputs withheld",
		rounds, time.Since(start).Round(time.Millisecond), st.pubs, st.commits, st.aborts, st.consumed, st.outputs, st.abortedOutputs)
}

type txcStats struct {
	pubs, commits, aborts             int
	consumed, outputs, abortedOutputs int
}

// txcTopUp publishes inputs so that each partition has txcAhead of them
// past the group's committed offset.
func txcTopUp(t *testing.T, b *Broker) {
	t.Helper()
	committed, err := b.CommittedOffsets(txcGroup)
	require.NoError(t, err)
	info, err := b.DescribeTopic(txcIn)
	require.NoError(t, err)
	for p := int32(0); p < txcInParts; p++ {
		end, pos := info.Partitions[p].EndOffset, committed[TopicPartition{Topic: txcIn, Partition: p}]
		if end-pos >= txcAhead {
			continue
		}
		var recs []*Record
		for off := end; off < pos+2*txcAhead; off++ {
			recs = append(recs, &Record{Topic: txcIn, Partition: p, Value: []byte(txcInValue(p, off))})
		}
		require.NoError(t, b.Publish(context.Background(), recs...))
		require.Equal(t, end, recs[0].Offset)
	}
}

// txcReadAll reads a partition whole under iso and returns its records'
// offsets, keys and values.
func txcReadAll(t *testing.T, b *Broker, topic string, p int32, iso IsolationLevel) (offs []int64, keys, vals []string) {
	t.Helper()
	r, err := b.NewReader(topic, p, OffsetEarliest, &ReaderOptions{StopAtEnd: true, Isolation: iso})
	require.NoError(t, err)
	defer r.Close()
	for rec, err := range r.All(t.Context()) {
		require.NoError(t, err, "%s/%d %v", topic, p, iso)
		offs = append(offs, rec.Offset)
		keys = append(keys, string(rec.Key))
		vals = append(vals, string(rec.Value))
	}
	return offs, keys, vals
}

func txcCheck(t *testing.T, b *Broker, round int, acked map[int32]int64, st *txcStats) {
	t.Helper()
	committed, err := b.CommittedOffsets(txcGroup)
	require.NoError(t, err)
	pos := func(p int32) int64 { return committed[TopicPartition{Topic: txcIn, Partition: p}] }
	st.consumed = 0
	for p := int32(0); p < txcInParts; p++ {
		require.GreaterOrEqual(t, pos(p), acked[p], "round %d: input partition %d: a commit End reported is lost", round, p)
		offs, _, vals := txcReadAll(t, b, txcIn, p, ReadUncommitted)
		for i, off := range offs {
			require.Equal(t, int64(i), off, "round %d: input %d", round, p)
			require.Equal(t, txcInValue(p, off), vals[i], "round %d: input %d/%d", round, p, off)
		}
		require.LessOrEqual(t, pos(p), int64(len(offs)), "round %d: committed past the input log", round)
		st.consumed += int(pos(p))
	}
	seen := map[string]int{}
	st.outputs, st.abortedOutputs = 0, 0
	for p := int32(0); p < txcOutParts; p++ {
		_, l, err := b.partitionLog(txcOut, p)
		require.NoError(t, err)
		require.Equal(t, l.HighWatermark(), l.LastStable(), "round %d: output %d has a transaction left open after Open", round, p)
		_, keys, vals := txcReadAll(t, b, txcOut, p, ReadCommitted)
		for i, k := range keys {
			var ip int32
			var ioff int64
			_, err := fmt.Sscanf(k, "%d/%d", &ip, &ioff)
			require.NoError(t, err, "round %d: output key %q", round, k)
			require.Equal(t, txcOutValue(ip, ioff, false), vals[i], "round %d: output %d key %s: an aborted transaction's output is visible, or a value is wrong", round, p, k)
			require.Equal(t, txcOutPartition(ip, ioff), p, "round %d: output key %s on partition %d", round, k, p)
			require.Less(t, ioff, pos(ip), "round %d: output of input %s visible, but the group's committed offset is %d", round, k, pos(ip))
			seen[k]++
			require.Equal(t, 1, seen[k], "round %d: input %s reflected twice", round, k)
		}
		st.outputs += len(keys)
		// read_uncommitted shows the aborted outputs too; every record
		// is well formed.
		_, ukeys, uvals := txcReadAll(t, b, txcOut, p, ReadUncommitted)
		require.GreaterOrEqual(t, len(ukeys), len(keys))
		for i, k := range ukeys {
			var ip int32
			var ioff int64
			_, err := fmt.Sscanf(k, "%d/%d", &ip, &ioff)
			require.NoError(t, err, "round %d: output key %q", round, k)
			if strings.HasSuffix(uvals[i], "|abort") {
				st.abortedOutputs++
				require.Equal(t, txcOutValue(ip, ioff, true), uvals[i])
			} else {
				require.Equal(t, txcOutValue(ip, ioff, false), uvals[i])
			}
		}
	}
	for p := int32(0); p < txcInParts; p++ {
		for off := int64(0); off < pos(p); off++ {
			require.Equal(t, 1, seen[txcOutKey(p, off)], "round %d: input %d/%d below the committed offset %d has no output", round, p, off, pos(p))
		}
	}
}
