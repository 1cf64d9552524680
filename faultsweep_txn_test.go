package stream

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs/errorfs"
)

// TestFaultSweepTransactions sweeps faults (fsweepKinds, under SyncAlways)
// through transactions: each of a few transactions publishes one record to
// each of two partitions in one call and stages an offset of its own
// (100+k) for a group, then commits. With the i-th matching file-system
// call failing, whatever the calls return, after a reopen without faults:
// each transaction is visible read_committed in both partitions or in
// neither; one whose Commit returned nil is visible; the group's committed
// offset is the staged one of the last visible transaction (an offset is
// committed only with its transaction); nothing is left open (LSO = HW);
// and every partition reads whole.
func TestFaultSweepTransactions(t *testing.T) {
	for _, kind := range fsweepKinds() {
		if kind.sync != SyncAlways {
			continue
		}
		switch kind.name {
		case "lock-EIO", "mkdir-EIO", "rename-EIO", "remove-EIO", "syncdir-EIO":
			continue // no transaction's business: TestFaultSweep covers them
		}
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			injected := 0
			start := time.Now()
			for i := 0; ; i++ {
				require.Less(t, i, 5000, "the sweep does not end")
				calls := ftxRun(t, kind, i)
				if t.Failed() {
					return
				}
				if calls <= i {
					break
				}
				injected++
			}
			t.Logf("%s: %d faults injected in %v", kind.name, injected, time.Since(start).Round(time.Millisecond))
		})
	}
}

const ftxTxns = 4

// ftxRun runs the scenario with the fault on the i-th matching call and
// returns how many matching calls the faulty broker made.
func ftxRun(t *testing.T, kind fsweepKind, i int) (calls int) {
	dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
	inj := &fsweepInjector{counter: errorfs.OnIndex(i, kind.inj)}
	ctx := context.Background()
	var b *Broker
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("fault %d: panic: %v (fault: %s)\n%s", i, p, inj.state(), debug.Stack())
		}
		if b != nil {
			b.Close()
		}
		calls = inj.counter.Calls()
	}()
	// retry runs a setup step again once if it failed: the fault is spent.
	retry := func(what string, fn func() error) {
		inj.setStep(what)
		if err := fn(); err != nil {
			require.ErrorIs(t, err, kind.errno, "fault %d: %s", i, what)
			require.NoError(t, fn(), "fault %d: %s again (fault: %s)", i, what, inj.state())
		}
	}
	retry("Open", func() (err error) {
		b, err = Open(dir, &Options{Sync: kind.sync, Partitioner: ManualPartitioner{}, fs: errorfs.Wrap(nil, inj)})
		return err
	})
	retry("CreateTopic a", func() error { return b.CreateTopic("a", TopicConfig{Partitions: 2, SegmentBytes: fsweepSegment}) })
	retry("CreateTopic in", func() error { return b.CreateTopic("in", TopicConfig{}) })
	in := TopicPartition{Topic: "in"}
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)

	committed := make([]bool, ftxTxns) // Commit returned nil
	for k := range ftxTxns {
		inj.setStep(fmt.Sprintf("transaction %d", k))
		tx, err := p.Begin()
		require.NoError(t, err)
		err = tx.Publish(ctx, txRec("a", 0, fmt.Sprintf("%d-0", k)), txRec("a", 1, fmt.Sprintf("%d-1", k)))
		if err == nil {
			err = tx.CommitOffsets("g", map[TopicPartition]int64{in: int64(100 + k)})
		}
		if err == nil {
			err = tx.Commit(ctx)
			committed[k] = err == nil
		} else {
			err = errors.Join(err, tx.Abort())
		}
		if err != nil && !errors.Is(err, kind.errno) && !errors.Is(err, ErrSyncFailed) {
			t.Errorf("fault %d: transaction %d: %v, want %v or ErrSyncFailed (fault: %s)", i, k, err, kind.errno, inj.state())
			return
		}
	}
	inj.setStep("Close")
	b.Close() // may fail with the fault: what it could not write, Open does
	b = nil

	b, err = Open(dir, &Options{Sync: kind.sync})
	require.NoError(t, err, "fault %d: reopen (fault: %s)", i, inj.state())
	var vals [2][]string
	for part := range int32(2) {
		_, l, err := b.partitionLog("a", part)
		require.NoError(t, err)
		require.Equal(t, l.HighWatermark(), l.LastStable(), "fault %d: a/%d: a transaction left open (fault: %s)", i, part, inj.state())
		txValues(t, b, "a", part, ReadUncommitted) // reads whole
		vals[part] = txValues(t, b, "a", part, ReadCommitted)
	}
	last := -1
	for k := range ftxTxns {
		v0 := slices.Contains(vals[0], fmt.Sprintf("%d-0", k))
		v1 := slices.Contains(vals[1], fmt.Sprintf("%d-1", k))
		require.Equal(t, v0, v1, "fault %d: transaction %d visible in one partition only: %v (fault: %s)", i, k, vals, inj.state())
		if committed[k] {
			require.True(t, v0, "fault %d: transaction %d committed but not visible: %v (fault: %s)", i, k, vals, inj.state())
		}
		if v0 {
			last = k
		}
	}
	for part := range 2 {
		require.Len(t, vals[part], len(slices.Compact(slices.Clone(vals[part]))), "fault %d: duplicates %v", i, vals[part])
	}
	got, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	if last < 0 {
		require.Empty(t, got, "fault %d: offsets committed without their transaction (fault: %s)", i, inj.state())
	} else {
		require.Equal(t, map[TopicPartition]int64{in: int64(100 + last)}, got, "fault %d: visible %v (fault: %s)", i, vals, inj.state())
	}
	require.NoError(t, b.Close())
	b = nil
	return
}
