package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// txValues reads a partition from the start to its end under isolation.
func txValues(t *testing.T, b *Broker, topic string, partition int32, iso IsolationLevel) []string {
	t.Helper()
	r, err := b.NewReader(topic, partition, OffsetEarliest, &ReaderOptions{StopAtEnd: true, Isolation: iso})
	require.NoError(t, err)
	defer r.Close()
	var out []string
	for {
		rec, err := r.Next(context.Background())
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, string(rec.Value))
	}
}

func txRec(topic string, partition int32, value string) *Record {
	return &Record{Topic: topic, Partition: partition, Value: []byte(value)}
}

func txEnd(t *testing.T, b *Broker, topic string, partition int32) int64 {
	t.Helper()
	_, p, err := b.partitionLog(topic, partition)
	require.NoError(t, err)
	return p.HighWatermark()
}

// TestTxCommitAndAbort: a transaction's records, over partitions of two
// topics, are hidden from read_committed readers until Commit and then
// all visible; an aborted one's never are; read_uncommitted readers see
// every record as it is written; each partition gets one marker offset.
func TestTxCommitAndAbort(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic("b", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("tx-1", nil)
	require.NoError(t, err)
	defer p.Close()

	tx, err := p.Begin()
	require.NoError(t, err)
	recs := []*Record{txRec("a", 0, "a0-1"), txRec("a", 1, "a1-1"), txRec("b", 0, "b0-1"), txRec("a", 0, "a0-2")}
	require.NoError(t, tx.Publish(ctx, recs...))
	require.Equal(t, int64(1), recs[3].Offset)
	require.NoError(t, b.Publish(ctx, txRec("a", 0, "plain"))) // after the open transaction
	require.Empty(t, txValues(t, b, "a", 0, ReadCommitted))
	require.Equal(t, []string{"a0-1", "a0-2", "plain"}, txValues(t, b, "a", 0, ReadUncommitted))
	_, err = p.Begin()
	require.ErrorIs(t, err, ErrTxnState)

	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, []string{"a0-1", "a0-2", "plain"}, txValues(t, b, "a", 0, ReadCommitted))
	require.Equal(t, []string{"a1-1"}, txValues(t, b, "a", 1, ReadCommitted))
	require.Equal(t, []string{"b0-1"}, txValues(t, b, "b", 0, ReadCommitted))
	require.Equal(t, int64(2), txEnd(t, b, "a", 1)) // 1 record + the marker
	require.ErrorIs(t, tx.Publish(ctx, txRec("a", 0, "late")), ErrTxnState)
	require.ErrorIs(t, tx.Commit(ctx), ErrTxnState)

	tx, err = p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 1, "gone"), txRec("b", 0, "gone")))
	require.NoError(t, tx.Abort())
	require.Equal(t, []string{"a1-1"}, txValues(t, b, "a", 1, ReadCommitted))
	require.Equal(t, []string{"a1-1", "gone"}, txValues(t, b, "a", 1, ReadUncommitted))
	require.Equal(t, int64(4), txEnd(t, b, "a", 1))

	// A transaction that wrote nothing ends without a trace.
	tx, err = p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, int64(4), txEnd(t, b, "a", 1))
}

// TestTxInvalidRecordKeepsTransaction: a bad record fails its Publish
// with nothing written; the transaction goes on and commits.
func TestTxInvalidRecordKeepsTransaction(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("tx", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.ErrorIs(t, tx.Publish(ctx, txRec("a", 0, "x"), nil), ErrInvalidRecord)
	require.ErrorIs(t, tx.Publish(ctx, txRec("missing", 0, "x")), ErrTopicNotFound)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "ok")))
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, []string{"ok"}, txValues(t, b, "a", 0, ReadCommitted))
}

// TestTxOffsetsCommitWithTheTransaction: offsets staged in a transaction
// are committed by its commit and dropped by its abort.
func TestTxOffsetsCommitWithTheTransaction(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("in", TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic("out", TopicConfig{Partitions: 1}))
	in := TopicPartition{Topic: "in", Partition: 0}
	p, err := b.NewTxProducer("tx", nil)
	require.NoError(t, err)

	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("out", 0, "x")))
	require.NoError(t, tx.CommitOffsets("g", map[TopicPartition]int64{in: 5}))
	require.NoError(t, tx.Abort())
	got, err := b.groups.Committed("g", in)
	require.NoError(t, err)
	require.Empty(t, got)

	tx, err = p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("out", 0, "y")))
	require.NoError(t, tx.CommitOffsets("g", map[TopicPartition]int64{in: 7}))
	require.NoError(t, tx.Commit(ctx))
	got, err = b.groups.Committed("g", in)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{in: 7}, got)
	require.Equal(t, []string{"y"}, txValues(t, b, "out", 0, ReadCommitted))
}

// TestTxFencing: a second producer with the same transactional ID fences
// the first: its open transaction is aborted and its calls fail with
// ErrFenced.
func TestTxFencing(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	old, err := b.NewTxProducer("app", nil)
	require.NoError(t, err)
	tx, err := old.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "zombie")))

	fresh, err := b.NewTxProducer("app", nil)
	require.NoError(t, err)
	require.ErrorIs(t, tx.Publish(ctx, txRec("a", 0, "more")), ErrFenced)
	require.ErrorIs(t, tx.Commit(ctx), ErrFenced)
	require.NoError(t, old.Close()) // nothing left to abort: no error
	_, p, err := b.partitionLog("a", 0)
	require.NoError(t, err)
	require.Equal(t, p.HighWatermark(), p.LastStable(), "the zombie's transaction was aborted")

	tx2, err := fresh.Begin()
	require.NoError(t, err)
	require.NoError(t, tx2.Publish(ctx, txRec("a", 0, "fresh")))
	require.NoError(t, tx2.Commit(ctx))
	require.Equal(t, []string{"fresh"}, txValues(t, b, "a", 0, ReadCommitted))
	infos := b.Transactions()
	require.Len(t, infos, 1)
	require.Equal(t, TxnCompleteCommit, infos[0].State)
	require.Equal(t, int16(1), infos[0].Epoch)
}

// TestTxTimeout: a transaction left open past its timeout is aborted by
// the broker, freeing read_committed readers; its Commit then fails with
// ErrTxnTimedOut and the producer goes on.
func TestTxTimeout(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("slow", &TxOptions{Timeout: 20 * time.Millisecond})
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "late")))
	require.NoError(t, b.Publish(ctx, txRec("a", 0, "plain")))
	_, l, err := b.partitionLog("a", 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return l.LastStable() == l.HighWatermark() }, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"plain"}, txValues(t, b, "a", 0, ReadCommitted))
	require.ErrorIs(t, tx.Commit(ctx), ErrTxnTimedOut)

	tx, err = p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "next")))
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, []string{"plain", "next"}, txValues(t, b, "a", 0, ReadCommitted))

	_, err = b.NewTxProducer("x", &TxOptions{Timeout: time.Hour})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.NewTxProducer("", nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// TestTxCrashRecovery: after a crash, Open aborts a transaction that was
// open (and fences its producer), and completes one whose commit was
// decided but whose markers were not all written.
func TestTxCrashRecovery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic("in", TopicConfig{Partitions: 1}))
	in := TopicPartition{Topic: "in", Partition: 0}

	open, err := b.NewTxProducer("open", nil)
	require.NoError(t, err)
	otx, err := open.Begin()
	require.NoError(t, err)
	require.NoError(t, otx.Publish(ctx, txRec("a", 0, "undecided")))

	decided, err := b.NewTxProducer("decided", nil)
	require.NoError(t, err)
	dtx, err := decided.Begin()
	require.NoError(t, err)
	require.NoError(t, dtx.Publish(ctx, txRec("a", 0, "d0"), txRec("a", 1, "d1")))
	require.NoError(t, dtx.CommitOffsets("g", map[TopicPartition]int64{in: 3}))
	// Decide, then crash before any marker.
	decideOnly(t, b, decided)
	b.txns.ids["open"].timer.Stop()
	crash(t, b)

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"d0"}, txValues(t, b, "a", 0, ReadCommitted))
	require.Equal(t, []string{"d1"}, txValues(t, b, "a", 1, ReadCommitted))
	require.Equal(t, []string{"undecided", "d0"}, txValues(t, b, "a", 0, ReadUncommitted))
	got, err := b.groups.Committed("g", in)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{in: 3}, got)
	for _, tp := range []int32{0, 1} {
		_, l, err := b.partitionLog("a", tp)
		require.NoError(t, err)
		require.Equal(t, l.HighWatermark(), l.LastStable())
	}
	// The producer whose transaction was aborted is fenced.
	require.ErrorIs(t, b.AddTxnPartitions("open", open.pid, open.epoch, []TopicPartition{{Topic: "a"}}), ErrFenced)
	for _, info := range b.Transactions() {
		if info.ID == "open" {
			require.Equal(t, open.epoch+1, info.Epoch)
		}
	}
	// A clean close and open changes nothing.
	require.NoError(t, b.Close())
	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"d0"}, txValues(t, b, "a", 0, ReadCommitted))
}

// TestTxCloseAbortsOpen: Close aborts open transactions; the reopened
// broker's read_committed readers are not held up.
func TestTxCloseAbortsOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "left")))
	require.NoError(t, b.Close())
	require.ErrorIs(t, tx.Commit(ctx), ErrClosed)
	b = openBroker(t, dir, nil)
	require.Empty(t, txValues(t, b, "a", 0, ReadCommitted))
	require.Equal(t, int64(2), txEnd(t, b, "a", 0))
}

// TestTxReadCommittedWaits: a read_committed reader waiting at the last
// stable offset gets the records once the transaction commits.
func TestTxReadCommittedWaits(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "v")))
	r, err := b.NewReader("a", 0, OffsetEarliest, &ReaderOptions{Isolation: ReadCommitted})
	require.NoError(t, err)
	defer r.Close()
	got := make(chan string, 1)
	go func() {
		rec, err := r.Next(ctx)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(rec.Value)
	}()
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, "v", <-got)
}

// TestTxConsumerReadCommitted: a group member under ReadCommitted gets
// committed records only, and its lag counts to the last stable offset.
func TestTxConsumerReadCommitted(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	for i, commit := range []bool{true, false, true} {
		tx, err := p.Begin()
		require.NoError(t, err)
		require.NoError(t, tx.Publish(ctx, txRec("a", 0, fmt.Sprint(i))))
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Abort())
		}
	}
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "open")))
	c, err := b.Subscribe("g", []string{"a"}, &ConsumerOptions{Reset: ResetEarliest, Isolation: ReadCommitted, MaxWait: time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	var got []string
	for len(got) < 2 {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	require.Equal(t, []string{"0", "2"}, got)
	tp := TopicPartition{Topic: "a", Partition: 0}
	lag, err := c.Lag(tp)
	require.NoError(t, err)
	require.Equal(t, int64(0), lag, "the open transaction is past the last stable offset")
	require.NoError(t, tx.Commit(ctx))
	lag, err = c.Lag(tp)
	require.NoError(t, err)
	require.Equal(t, int64(2), lag)
	recs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "open", string(recs[0].Value))
}

// TestTxAppendBatchesNeedsAddedPartition: a transactional batch through
// AppendBatches is refused unless its producer's transaction added the
// partition.
func TestTxAppendBatchesNeedsAddedPartition(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	pid, epoch, err := b.InitTransactions("wire", 0)
	require.NoError(t, err)
	raw := rawTxnBatch(pid, epoch, 0, "x")
	_, err = b.AppendBatches("a", 0, raw)
	require.ErrorIs(t, err, ErrTxnState)
	require.NoError(t, b.AddTxnPartitions("wire", pid, epoch, []TopicPartition{{Topic: "a"}}))
	res, err := b.AppendBatches("a", 0, rawTxnBatch(pid, epoch, 0, "x"))
	require.NoError(t, err)
	require.Equal(t, int64(0), res.BaseOffset)
	require.Empty(t, txValues(t, b, "a", 0, ReadCommitted))
	require.NoError(t, b.EndTxn("wire", pid, epoch, true))
	require.NoError(t, b.EndTxn("wire", pid, epoch, true), "a retried EndTxn succeeds")
	require.ErrorIs(t, b.EndTxn("wire", pid, epoch, false), ErrTxnState)
	require.Equal(t, []string{"x"}, txValues(t, b, "a", 0, ReadCommitted))
	_, err = b.AppendBatches("a", 0, rawTxnBatch(pid, epoch-1+1, 1, "y"))
	require.ErrorIs(t, err, ErrTxnState, "the transaction is over")
}

// TestTxSessionExactlyOnce runs two sessions over one input topic with a
// rebalance in the middle: every input is reflected exactly once in the
// committed output.
func TestTxSessionExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := openBroker(t, "", &Options{Sync: SyncNever})
	require.NoError(t, b.CreateTopic("in", TopicConfig{Partitions: 4}))
	require.NoError(t, b.CreateTopic("out", TopicConfig{Partitions: 2}))
	const n = 400
	for i := range n {
		require.NoError(t, b.Publish(ctx, &Record{Topic: "in", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}))
	}
	var wg sync.WaitGroup
	run := func(id string, stopAfter int) {
		defer wg.Done()
		s, err := b.NewTxSession(id, "g", []string{"in"}, &TxSessionOptions{Consumer: ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 7, MaxWait: time.Millisecond}})
		if !assertNoErr(t, err) {
			return
		}
		defer s.Close()
		steps := 0
		for ctx.Err() == nil && committedCount(b) < n {
			recs, err := s.Poll(ctx)
			if !assertNoErr(t, err) {
				return
			}
			for _, r := range recs {
				if !assertNoErr(t, s.Publish(ctx, &Record{Topic: "out", Key: r.Key, Value: r.Value})) {
					return
				}
			}
			if _, err := s.End(ctx, steps%5 != 3); !assertNoErr(t, err) {
				return
			}
			steps++
			if steps == stopAfter {
				return
			}
		}
	}
	wg.Add(2)
	go run("s1", 0)
	go run("s2", 15) // leaves mid-way: its partitions move to s1
	wg.Wait()
	seen := map[string]int{}
	for p := range int32(2) {
		for _, v := range txValues(t, b, "out", p, ReadCommitted) {
			seen[v]++
		}
	}
	require.Len(t, seen, n)
	for v, c := range seen {
		require.Equal(t, 1, c, "input %s output %d times", v, c)
	}
}

// committedCount is how many records group g has committed past on "in".
func committedCount(b *Broker) int {
	got, err := b.groups.Committed("g")
	if err != nil {
		return 0
	}
	total := 0
	for _, off := range got {
		total += int(off)
	}
	return total
}

func assertNoErr(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Error(err)
		return false
	}
	return true
}

// rawTxnBatch is a transactional batch of one record, as a Kafka
// producer sends it.
func rawTxnBatch(pid int64, epoch int16, seq int32, value string) []byte {
	var bld batch.Builder
	bld.Reset(0)
	bld.Add(time.Now().UnixMilli(), nil, []byte(value), nil)
	out := append(batch.Batch(nil), bld.Finish()...)
	out.SetProducer(pid, epoch, seq, true)
	return out
}

// TestTxReadOnlyAndFollower: a read-only broker and a follower read a
// directory's transactions as its owner does: aborted records hidden,
// committed ones shown, an open transaction's held back.
func TestTxReadOnlyAndFollower(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	for i, commit := range []bool{true, false, true} {
		tx, err := p.Begin()
		require.NoError(t, err)
		require.NoError(t, tx.Publish(ctx, txRec("a", 0, fmt.Sprint(i))))
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Abort())
		}
	}
	f := openBroker(t, dir, &Options{Follow: true, FollowInterval: time.Hour})
	require.Equal(t, []string{"0", "2"}, txValues(t, f, "a", 0, ReadCommitted))

	// The owner opens a transaction: the follower, refreshed, stops at it.
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "open")))
	require.NoError(t, b.Publish(ctx, txRec("a", 0, "after")))
	require.NoError(t, f.Refresh())
	require.Equal(t, []string{"0", "2"}, txValues(t, f, "a", 0, ReadCommitted))
	require.Equal(t, []string{"0", "1", "2", "open", "after"}, txValues(t, f, "a", 0, ReadUncommitted))
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, f.Refresh())
	require.Equal(t, []string{"0", "2", "open", "after"}, txValues(t, f, "a", 0, ReadCommitted))

	require.NoError(t, b.Close())
	ro := openBroker(t, dir, &Options{ReadOnly: true})
	require.Equal(t, []string{"0", "2", "open", "after"}, txValues(t, ro, "a", 0, ReadCommitted))
}

// TestTxDecidedButRecordsLost: a commit is decided while its records are
// being synced; if a machine crash then loses a partition's records, Open
// undoes the decision: the offsets go back and the rest is aborted, so the
// inputs are processed again rather than lost.
func TestTxDecidedButRecordsLost(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 2}))
	in := TopicPartition{Topic: "in", Partition: 0}
	require.NoError(t, b.CreateTopic("in", TopicConfig{Partitions: 1}))
	require.NoError(t, b.meta.CommitOffsets("g", map[TopicPartition]int64{in: 3}, time.Now()))

	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "kept"), txRec("a", 1, "lost")))
	require.NoError(t, tx.CommitOffsets("g", map[TopicPartition]int64{in: 7}))
	decideOnly(t, b, p)
	got, err := b.groups.Committed("g", in)
	require.NoError(t, err)
	require.Equal(t, int64(7), got[in])
	crash(t, b)
	// The machine crash: partition a/1's records never reached the disk.
	require.NoError(t, os.Truncate(filepath.Join(dir, "topics", "a", "1", "00000000000000000000.log"), 0))

	b = openBroker(t, dir, nil)
	got, err = b.groups.Committed("g", in)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{in: 3}, got)
	require.Empty(t, txValues(t, b, "a", 0, ReadCommitted))
	require.Equal(t, []string{"kept"}, txValues(t, b, "a", 0, ReadUncommitted))
	_, l, err := b.partitionLog("a", 0)
	require.NoError(t, err)
	require.Equal(t, l.HighWatermark(), l.LastStable())
}

// TestTxCloseRacesPublishAndCommit: Close of a TxProducer while another
// goroutine publishes or commits in its transaction neither deadlocks
// nor races.
func TestTxCloseRacesPublishAndCommit(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 8}))
	recs := func() []*Record {
		out := make([]*Record, 8)
		for i := range out {
			out[i] = txRec("a", int32(i), "v")
		}
		return out
	}
	for i := range 30 {
		p, err := b.NewTxProducer("x", nil)
		require.NoError(t, err)
		tx, err := p.Begin()
		require.NoError(t, err)
		require.NoError(t, tx.Publish(ctx, recs()...))
		var wg sync.WaitGroup
		wg.Go(func() {
			if i%2 == 0 {
				_ = tx.Publish(ctx, recs()...)
			} else {
				_ = tx.Commit(ctx)
			}
		})
		wg.Go(func() { _ = p.Close() })
		wg.Wait()
	}
	for p := range int32(8) {
		_, l, err := b.partitionLog("a", p)
		require.NoError(t, err)
		require.Equal(t, l.HighWatermark(), l.LastStable())
	}
}

// TestTxBrokerCloseRacesCalls: coordinator calls racing Broker.Close fail
// with ErrClosed or succeed, and leave nothing open behind.
func TestTxBrokerCloseRacesCalls(t *testing.T) {
	b, err := Open(t.TempDir(), &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	pid, epoch, err := b.InitTransactions("x", 0)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if err := b.AddTxnPartitions("x", pid, epoch, []TopicPartition{{Topic: "a"}}); err != nil {
				return
			}
		}
	})
	require.NoError(t, b.Close())
	wg.Wait()
	require.ErrorIs(t, b.AddTxnPartitions("x", pid, epoch, []TopicPartition{{Topic: "a"}}), ErrClosed)
}

// TestTxSyncAlwaysCommitIsDurable: under SyncAlways a commit is durable
// when it returns, its marker included, also for a transaction of one
// partition (which stores no decision: its marker is the decision).
func TestTxSyncAlwaysCommitIsDurable(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", &Options{Sync: SyncAlways})
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 2}))
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "one")))
	require.NoError(t, tx.Commit(ctx))
	_, l, err := b.partitionLog("a", 0)
	require.NoError(t, err)
	require.True(t, l.Durable(l.HighWatermark()), "the marker of a one-partition commit is durable")
	require.Equal(t, []string{"one"}, txValues(t, b, "a", 0, ReadCommitted))
}

// TestTxDeleteRecordsPastOpenTransaction: the last stable offset never
// falls below the log start, which DeleteRecords may move past an open
// transaction's start.
func TestTxDeleteRecordsPastOpenTransaction(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("a", TopicConfig{Partitions: 1}))
	p, err := b.NewTxProducer("x", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, txRec("a", 0, "open")))
	require.NoError(t, b.Publish(ctx, txRec("a", 0, "plain")))
	_, err = b.DeleteRecords("a", 0, 2)
	require.NoError(t, err)
	_, l, err := b.partitionLog("a", 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), l.LastStable())
	r, err := b.NewReader("a", 0, OffsetLatest, &ReaderOptions{Isolation: ReadCommitted, StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, io.EOF)
}

// TestTxCommitOffsetsKeepsTheMembersCheck: offsets staged without a member
// after CommitConsumer staged a member's positions in the same group do
// not drop the member's check: once the member has left, the transaction
// cannot commit (found by the model test).
func TestTxCommitOffsetsKeepsTheMembersCheck(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("in", TopicConfig{Partitions: 1}))
	in := TopicPartition{Topic: "in", Partition: 0}
	require.NoError(t, b.Publish(ctx, txRec("in", 0, "a")))
	c, err := b.Subscribe("g", []string{"in"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	recs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)

	p, err := b.NewTxProducer("tx", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.CommitConsumer(c))
	require.NoError(t, tx.CommitOffsets("g", map[TopicPartition]int64{{Topic: "other"}: 3}))
	require.NoError(t, c.Close())
	require.ErrorIs(t, tx.Commit(ctx), ErrTxnAborted)
	got, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.NotContains(t, got, in)
}

// TestTxCommitOffsetsBesideAMembersPositions: offsets of other partitions
// staged without a member, before or after CommitConsumer, commit with
// the member's positions: the member's check covers its own partitions
// only (found by the model test).
func TestTxCommitOffsetsBesideAMembersPositions(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("in", TopicConfig{Partitions: 1}))
	in, other := TopicPartition{Topic: "in", Partition: 0}, TopicPartition{Topic: "other"}
	require.NoError(t, b.Publish(ctx, txRec("in", 0, "a")))
	c, err := b.Subscribe("g", []string{"in"}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	defer c.Close()
	recs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	p, err := b.NewTxProducer("tx", nil)
	require.NoError(t, err)
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.CommitOffsets("g", map[TopicPartition]int64{other: 3}))
	require.NoError(t, tx.CommitConsumer(c))
	require.NoError(t, tx.Commit(ctx))
	got, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{in: 1, other: 3}, got)
}

// decideOnly stores p's open transaction's commit decision (records
// synced, offsets committed) and stops there, before any marker, as a
// crash would: the caller crashes the broker next.
func decideOnly(t *testing.T, b *Broker, p *TxProducer) {
	t.Helper()
	e, err := b.txns.entry(p.id, p.pid, p.epoch)
	require.NoError(t, err)
	defer e.mu.Unlock()
	_, err = b.txns.decideLocked(e, slices.Collect(maps.Values(e.parts)))
	require.NoError(t, err)
	e.timer.Stop()
}
