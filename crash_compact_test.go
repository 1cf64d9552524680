package stream

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/segment"
	"github.com/stretchr/testify/require"
)

// The kill -9 test of compaction (issue 18): the child publishes keyed
// records and tombstones to a compacted topic under SyncAlways while the
// background cleaner and a loop of Broker.Compact rewrite its segments, and
// the parent SIGKILLs it at random moments: mid-round, mid-swap, or right
// at Open while recovery finishes a swap the last kill left. Each record of
// key k carries a per-key sequence number s (header "seq"; value "k/s", or
// none for a tombstone) that only grows, across children too. After a kill
// the parent opens the directory read-only (an unfinished swap is left to
// the owner, and must not show) and then read-write (recovery finishes or
// drops it), and checks for every key, reading from the start:
//
//   - the sequence numbers seen only grow: compaction removes, never
//     reorders, and keeps every record it keeps whole;
//   - the latest is at least the last acknowledged write (a later one, sent
//     but not acknowledged, may have reached the log): nothing acknowledged
//     is lost, and no older value comes back after an acknowledged delete;
//   - a key is absent only if its last write was a tombstone (whose delete
//     retention passed, so a round removed it);
//   - no cleaning directory is left, and a Compact then succeeds, after
//     which the same holds.
//
// Some rounds skip the parent's checks, so the next child's Open is the
// one that recovers (and may be killed doing it). Every other child's swaps
// move their files slowly (ccSlowSwapFS), so that kills fall in them too.
//
// EMBEDSTREAM_COMPACT_CRASH_ROUNDS sets the number of kills (default 8, a
// few seconds, for CI; a long run takes about a quarter of a second a kill).

const compactCrashChildEnv = "EMBEDSTREAM_COMPACT_CRASH_CHILD"

const (
	ccTopic = "kv"
	ccParts = 2
	ccKeys  = 300 // key i lives in partition i % ccParts
)

// ccTopicConfig: small segments and a low dirty ratio, so the background
// cleaner runs often; a short delete retention, so tombstones go too.
var ccTopicConfig = TopicConfig{Partitions: ccParts, Cleanup: CleanupCompact, SegmentBytes: 8 << 10,
	MinCleanableDirtyRatio: 0.05, DeleteRetention: 200 * time.Millisecond}

func ccKey(i int) string { return fmt.Sprintf("key-%03d", i) }

// ccRecord is the record a child publishes as the write seq of key.
func ccRecord(p int32, key string, seq int64, del bool) *Record {
	r := &Record{Topic: ccTopic, Partition: p, Key: []byte(key), Headers: []Header{{Key: "seq", Value: strconv.AppendInt(nil, seq, 10)}}}
	if !del {
		r.Value = fmt.Appendf(nil, "%s/%d", key, seq)
	}
	return r
}

// ccWrite is one write of a key: its sequence number, and whether it is a
// tombstone.
type ccWrite struct {
	seq int64
	del bool
}

func (w ccWrite) String() string {
	if w.del {
		return fmt.Sprintf("%d(del)", w.seq)
	}
	return strconv.FormatInt(w.seq, 10)
}

// ccParse checks a record read back and returns its write.
func ccParse(rec *Record) (ccWrite, error) {
	if len(rec.Headers) != 1 || rec.Headers[0].Key != "seq" {
		return ccWrite{}, fmt.Errorf("offset %d: headers %v", rec.Offset, rec.Headers)
	}
	seq, err := strconv.ParseInt(string(rec.Headers[0].Value), 10, 64)
	if err != nil {
		return ccWrite{}, fmt.Errorf("offset %d: %w", rec.Offset, err)
	}
	w := ccWrite{seq: seq, del: rec.Value == nil}
	if want := fmt.Sprintf("%s/%d", rec.Key, seq); !w.del && string(rec.Value) != want {
		return w, fmt.Errorf("offset %d: value %q, want %q", rec.Offset, rec.Value, want)
	}
	return w, nil
}

// ccReadAll reads a partition from its start and returns each key's
// writes in offset order.
func ccReadAll(b *Broker, p int32) (map[string][]ccWrite, error) {
	r, err := b.NewReader(ccTopic, p, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[string][]ccWrite{}
	last := int64(-1)
	for rec, err := range r.All(context.Background()) {
		if err != nil {
			return nil, err
		}
		if rec.Offset <= last {
			return nil, fmt.Errorf("offset %d after %d", rec.Offset, last)
		}
		last = rec.Offset
		w, err := ccParse(rec)
		if err != nil {
			return nil, err
		}
		out[string(rec.Key)] = append(out[string(rec.Key)], w)
	}
	return out, nil
}

// compactCrashChild publishes until killed. Output lines:
//
//	send <partition> <key> <seq> <put|del>  about to Publish that write
//	ack <partition> <key> <seq> <put|del>   its Publish returned nil
//	compact                                 a Broker.Compact returned nil
func compactCrashChild(dir string) {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(4)
	}
	opts := &Options{Sync: SyncAlways, Partitioner: ManualPartitioner{}}
	if os.Getpid()%2 == 0 {
		opts.fs = ccSlowSwapFS{vfs.Default}
	}
	b, err := Open(dir, opts)
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
	bell := make(chan struct{}, 1) // rung by each acknowledgement
	go func() {
		for range bell {
			if err := b.Compact(ctx, ccTopic); err != nil {
				fail("compact", err)
			}
			emit("compact\n")
		}
	}()
	info, err := b.DescribeTopic(ccTopic)
	if err != nil {
		fail("describe", err)
	}
	var wg sync.WaitGroup
	for p := range int32(ccParts) {
		// Each key goes on from what the log holds. A key it does not
		// hold (never written, or its tombstone removed) starts at the
		// partition's end offset: no earlier write of it had a higher
		// sequence number, since none exceeds its own offset.
		recs, err := ccReadAll(b, p)
		if err != nil {
			fail("read back", err)
		}
		next := map[string]int64{}
		for k, ws := range recs {
			next[k] = ws[len(ws)-1].seq + 1
		}
		floor := info.Partitions[p].EndOffset
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(p)))
			for {
				k := ccKey(ccParts*rng.IntN(ccKeys/ccParts) + int(p))
				seq, ok := next[k]
				if !ok {
					seq = floor
				}
				next[k] = seq + 1
				del, kind := rng.IntN(8) == 0, "put"
				if del {
					kind = "del"
				}
				emit("send %d %s %d %s\n", p, k, seq, kind)
				if err := b.Publish(ctx, ccRecord(p, k, seq, del)); err != nil {
					fail("publish", err)
				}
				emit("ack %d %s %d %s\n", p, k, seq, kind)
				select {
				case bell <- struct{}{}:
				default:
				}
			}
		})
	}
	wg.Wait()
}

// ccSlowSwapFS widens the window a kill can fall in while a swap moves
// files (some microseconds otherwise, beside the fsyncs around it): moving
// a file out of the cleaning directory, or removing a segment's file, takes
// a millisecond more.
type ccSlowSwapFS struct{ vfs.FS }

func (f ccSlowSwapFS) Rename(from, to string) error {
	if filepath.Base(filepath.Dir(from)) == log.CleanDir {
		time.Sleep(time.Millisecond)
	}
	return f.FS.Rename(from, to)
}

func (f ccSlowSwapFS) Remove(name string) error {
	switch filepath.Ext(name) {
	case segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix, log.TxnIndexSuffix:
		time.Sleep(time.Millisecond)
	}
	return f.FS.Remove(name)
}

// ccKeyState is what the parent knows of a key.
type ccKeyState struct {
	last  ccWrite        // the last acknowledged write, or what the last check found
	known bool           // last is set
	sent  map[int64]bool // writes sent since the last check (seq → tombstone), acknowledged or not
}

// ccStats counts what the kill test did, for its log line.
type ccStats struct {
	acks, dels, compacts, kills, atOpen, skipped int
	midRound, midSwap, finished, absent          int
}

func TestKillNineDuringCleaning(t *testing.T) {
	rounds := crashRounds(t, "EMBEDSTREAM_COMPACT_CRASH_ROUNDS", 8)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 18))
	keys := map[string]*ccKeyState{}
	state := func(k string) *ccKeyState {
		if keys[k] == nil {
			keys[k] = &ccKeyState{sent: map[int64]bool{}}
		}
		return keys[k]
	}
	b, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ccTopic, ccTopicConfig))
	require.NoError(t, b.Close())
	var st ccStats
	start := time.Now()
	for round := 0; round < rounds; round++ {
		// Mostly kill after a random number of lines; sometimes after a
		// random delay, which may fall in Open's recovery.
		killAfter, delay := 1+rng.IntN(600), time.Duration(0)
		if rng.IntN(5) == 0 {
			killAfter, delay = 0, time.Duration(rng.IntN(40))*time.Millisecond
			st.atOpen++
		}
		killChild(t, compactCrashChildEnv, dir, killAfter, delay, func(_ int, f []string) {
			if len(f) == 1 && f[0] == "compact" {
				st.compacts++
				return
			}
			require.Len(t, f, 5, "child line %q", f)
			seq, err := strconv.ParseInt(f[3], 10, 64)
			require.NoError(t, err)
			w := ccWrite{seq: seq, del: f[4] == "del"}
			ks := state(f[2])
			switch f[0] {
			case "send":
				ks.sent[seq] = w.del
			case "ack":
				require.True(t, !ks.known || seq > ks.last.seq, "key %s acknowledged %v after %v", f[2], w, ks.last)
				ks.last, ks.known = w, true
				st.acks++
				if w.del {
					st.dels++
				}
			}
		})
		st.kills++
		// What the kill left: a round's files, a committed swap.
		if ccFound(t, dir, log.CleanDir) {
			st.midRound++
		}
		if ccFound(t, dir, log.SwapFile) {
			st.midSwap++
		}
		if round < rounds-1 && rng.IntN(4) == 0 {
			st.skipped++
			continue // the next child recovers
		}

		// Read-only first: it must not finish a swap, nor show its mix.
		ro, err := Open(dir, &Options{ReadOnly: true})
		require.NoError(t, err, "round %d", round)
		ccCheck(t, ro, round, "read-only", keys, &st, false)
		require.NoError(t, ro.Close())

		var logged atomic.Int64
		b, err := Open(dir, &Options{Sync: SyncAlways, DisableCleaner: true, Logger: slog.New(&ccSwapCounter{n: &logged})})
		require.NoError(t, err, "round %d", round)
		st.finished += int(logged.Load())
		require.False(t, ccFound(t, dir, log.CleanDir), "round %d: a cleaning directory survived Open", round)
		require.False(t, ccFound(t, dir, log.SwapFile), "round %d: a swap file survived Open", round)
		ccCheck(t, b, round, "reopened", keys, &st, false)
		require.NoError(t, b.Compact(t.Context(), ccTopic), "round %d", round)
		ccCheck(t, b, round, "compacted", keys, &st, true)
		require.NoError(t, b.Close())
	}
	t.Logf("%d kills in %v (%d by a delay, maybe in Open; %d left to the next child's Open), %d acknowledged writes (%d tombstones), %d Compacts acknowledged; kills left %d rounds midway and %d swaps to finish (%d finished by the parent's Open); %d keys found gone (tombstones removed)",
		st.kills, time.Since(start).Round(time.Millisecond), st.atOpen, st.skipped, st.acks, st.dels, st.compacts, st.midRound, st.midSwap, st.finished, st.absent)
}

// ccFound reports whether a file or directory called name is anywhere
// under dir.
func ccFound(t *testing.T, dir, name string) bool {
	t.Helper()
	found := false
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == name {
			found = true
		}
		return nil
	}))
	return found
}

// ccCheck checks every key of the topic against what the parent knows
// (see the top of the file); with resync it then takes what the log holds
// as known, for the next round.
func ccCheck(t *testing.T, b *Broker, round int, when string, keys map[string]*ccKeyState, st *ccStats, resync bool) {
	t.Helper()
	seen := map[string][]ccWrite{}
	for p := range int32(ccParts) {
		recs, err := ccReadAll(b, p)
		require.NoError(t, err, "round %d %s: partition %d", round, when, p)
		for k, ws := range recs {
			seen[k] = ws
		}
	}
	for k := range seen {
		require.Contains(t, keys, k, "round %d %s: key %s was never sent", round, when, k)
	}
	for k, ks := range keys {
		ws := seen[k]
		for i := 1; i < len(ws); i++ {
			require.Greater(t, ws[i].seq, ws[i-1].seq, "round %d %s: key %s reads %v: out of order", round, when, k, ws)
		}
		sentDel := false // a tombstone sent after the last known write
		for seq, del := range ks.sent {
			sentDel = sentDel || (del && (!ks.known || seq > ks.last.seq))
		}
		if len(ws) == 0 {
			require.True(t, !ks.known || ks.last.del || sentDel,
				"round %d %s: key %s is gone, but its last acknowledged write %v was no delete", round, when, k, ks.last)
			if resync && ks.known {
				// Deleted. Not at the seq of a tombstone sent since,
				// which may never have been written: the next child may
				// use that seq again.
				st.absent++
				ks.last.del = true
			}
		} else {
			latest := ws[len(ws)-1]
			switch {
			case ks.known && latest.seq < ks.last.seq:
				require.Failf(t, "acknowledged write lost", "round %d %s: key %s reads %v, its last acknowledged write is %v", round, when, k, ws, ks.last)
			case ks.known && latest.seq == ks.last.seq:
				require.Equal(t, ks.last.del, latest.del, "round %d %s: key %s reads %v", round, when, k, ws)
			default:
				del, ok := ks.sent[latest.seq]
				require.True(t, ok && del == latest.del, "round %d %s: key %s reads %v: its latest was never sent", round, when, k, ws)
			}
			if resync {
				ks.last, ks.known = latest, true
			}
		}
		if resync {
			clear(ks.sent)
		}
	}
}

// ccSwapCounter is a slog handler counting the swaps Open finishes.
type ccSwapCounter struct{ n *atomic.Int64 }

func (h *ccSwapCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *ccSwapCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "finishing a cleaning round's swap") {
		h.n.Add(1)
	}
	return nil
}

func (h *ccSwapCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *ccSwapCounter) WithGroup(string) slog.Handler      { return h }
