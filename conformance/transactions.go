package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// committedOnly reads as stream.ReadCommitted readers do.
var committedOnly = stream.ReadOptions{Isolation: stream.ReadCommitted}

// values returns the records' values as strings.
func values(recs []*stream.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// readCommitted reads a partition from its start to its last stable offset.
func readCommitted(t *testing.T, ctx context.Context, c stream.Client, topic string, partition int32) []*stream.Record {
	t.Helper()
	rd, err := c.ReadPartition(ctx, topic, partition, stream.OffsetEarliest, committedOnly)
	require.NoError(t, err)
	defer rd.Close()
	var out []*stream.Record
	for {
		r, err := rd.Next(ctx)
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			return out
		}
		out = append(out, r.Clone())
	}
}

// newTx makes a transactional producer, closed when the test ends, and
// begins a transaction.
func newTx(t *testing.T, ctx context.Context, c stream.Client, id string) (stream.TxPublisher, stream.Transaction) {
	t.Helper()
	p, err := c.NewTxProducer(ctx, id, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	tx, err := p.Begin()
	require.NoError(t, err)
	return p, tx
}

// pollNothing checks that a member returns no record for a while: the
// bounded negative check of the suite (a record would come at once).
func pollNothing(t *testing.T, ctx context.Context, gc stream.GroupConsumer, what string) {
	t.Helper()
	for range 3 {
		pctx, cancel := context.WithTimeout(ctx, 4*pollSlice)
		recs, err := gc.Poll(pctx)
		cancel()
		require.Empty(t, recs, what)
		require.ErrorIs(t, err, context.DeadlineExceeded, what)
	}
}

// txCommit: a transaction over three partitions is invisible to
// ReadCommitted readers and groups until Commit, then visible whole; its
// commit marker takes one offset per partition.
func (s *suite) txCommit(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	const parts = 3
	topic := createTopic(t, ctx, c, parts)

	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest, Isolation: stream.ReadCommitted})
	require.NoError(t, err)
	defer gc.Close()

	_, tx := newTx(t, ctx, c, unique(t, "txn"))
	var recs []*stream.Record
	for i := range 2 {
		for p := range int32(parts) {
			recs = append(recs, &stream.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "tx-%d-%d", p, i)})
		}
	}
	require.NoError(t, tx.Publish(ctx, recs...))
	for i, r := range recs {
		require.Equal(t, int32(i%parts), r.Partition)
		require.Equal(t, int64(i/parts), r.Offset, "transactional records take offsets at once")
	}
	for p := range int32(parts) {
		require.Empty(t, readCommitted(t, ctx, c, topic, p), "partition %d: nothing committed yet", p)
		require.Len(t, readAll(t, ctx, c, topic, p, stream.OffsetEarliest), 2, "partition %d: ReadUncommitted sees the open transaction", p)
	}
	pollNothing(t, ctx, gc, "a ReadCommitted group sees nothing of an open transaction")

	require.NoError(t, tx.Commit(ctx))
	got := pollUntil(t, ctx, gc, atLeast(len(recs)))
	require.ElementsMatch(t, values(recs), values(got), "the committed transaction, whole")
	for p := range int32(parts) {
		require.Equal(t, []string{fmt.Sprintf("tx-%d-0", p), fmt.Sprintf("tx-%d-1", p)}, values(readCommitted(t, ctx, c, topic, p)))
	}
	require.ErrorIs(t, tx.Commit(ctx), stream.ErrTxnState, "a transaction ends once")

	// Two records and the commit marker: the next offset is 3 (Kafka: 3
	// records + commit → end offset 4).
	r := &stream.Record{Topic: topic, Partition: 0, Value: []byte("after")}
	require.NoError(t, c.Publish(ctx, r))
	require.Equal(t, int64(3), r.Offset, "the commit marker takes an offset")
	got = pollUntil(t, ctx, gc, atLeast(1))
	require.Equal(t, []string{"after"}, values(got), "markers are never returned")
}

// txAbort: an aborted transaction's records are never visible to
// ReadCommitted readers and groups, but ReadUncommitted ones see them.
func (s *suite) txAbort(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)

	_, tx := newTx(t, ctx, c, unique(t, "txn"))
	for i := range 3 {
		require.NoError(t, tx.Publish(ctx, &stream.Record{Topic: topic, Value: fmt.Appendf(nil, "aborted-%d", i)}))
	}
	require.NoError(t, tx.Abort(ctx))
	require.ErrorIs(t, tx.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("x")}), stream.ErrTxnState)

	r := &stream.Record{Topic: topic, Value: []byte("plain")}
	require.NoError(t, c.Publish(ctx, r))
	require.Equal(t, int64(4), r.Offset, "three aborted records and the abort marker")

	require.Equal(t, []string{"plain"}, values(readCommitted(t, ctx, c, topic, 0)))
	require.Equal(t, []string{"aborted-0", "aborted-1", "aborted-2", "plain"}, values(readAll(t, ctx, c, topic, 0, stream.OffsetEarliest)),
		"ReadUncommitted sees aborted records (and no marker)")

	committed, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest, Isolation: stream.ReadCommitted})
	require.NoError(t, err)
	defer committed.Close()
	got := pollUntil(t, ctx, committed, untilOffset(4))
	require.Equal(t, []string{"plain"}, values(got))

	uncommitted, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer uncommitted.Close()
	got = pollUntil(t, ctx, uncommitted, untilOffset(4))
	require.Equal(t, []int64{0, 1, 2, 4}, offsets(got))
}

// txHoldsLastStable: an open transaction holds ReadCommitted readers at
// its first offset, also for records published after it outside any
// transaction, until it ends.
func (s *suite) txHoldsLastStable(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	publishSpread(t, ctx, c, topic, 1, 2, "before")

	_, tx := newTx(t, ctx, c, unique(t, "txn"))
	require.NoError(t, tx.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("tx-0")}, &stream.Record{Topic: topic, Value: []byte("tx-1")}))
	publishSpread(t, ctx, c, topic, 1, 2, "after")

	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest, Isolation: stream.ReadCommitted})
	require.NoError(t, err)
	defer gc.Close()
	got := pollUntil(t, ctx, gc, atLeast(2))
	require.Equal(t, []string{"before-0-0", "before-0-1"}, values(got))
	pollNothing(t, ctx, gc, "records after an open transaction wait for it")
	require.Equal(t, []string{"before-0-0", "before-0-1"}, values(readCommitted(t, ctx, c, topic, 0)), "a ReadCommitted reader ends at the open transaction")
	rd, err := c.ReadPartition(ctx, topic, 0, stream.OffsetLatest, committedOnly)
	require.NoError(t, err)
	_, err = rd.Next(ctx)
	require.ErrorIs(t, err, io.EOF, "OffsetLatest is the last stable offset")
	require.NoError(t, rd.Close())
	require.Len(t, readAll(t, ctx, c, topic, 0, stream.OffsetEarliest), 6, "ReadUncommitted reads to the high watermark")

	require.NoError(t, tx.Commit(ctx))
	got = pollUntil(t, ctx, gc, atLeast(4))
	require.Equal(t, []string{"tx-0", "tx-1", "after-0-0", "after-0-1"}, values(got))
	require.Equal(t, []int64{2, 3, 4, 5}, offsets(got))
}

// committedOffsets returns a group's committed offsets, through a member
// that joins and leaves at once.
func committedOffsets(t *testing.T, ctx context.Context, c stream.Client, group, topic string) map[stream.TopicPartition]int64 {
	t.Helper()
	gc, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer func() { require.NoError(t, gc.Close()) }()
	got, err := gc.Committed(ctx)
	require.NoError(t, err)
	return got
}

// txOffsets: offsets staged in a transaction are committed only if it
// commits, with or without records in it.
func (s *suite) txOffsets(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	out := createTopic(t, ctx, c, 1)
	tp := stream.TopicPartition{Topic: topic, Partition: 0}
	group := unique(t, "g")
	publishSpread(t, ctx, c, topic, 1, 10, "in")

	p, err := c.NewTxProducer(ctx, unique(t, "txn"), nil)
	require.NoError(t, err)
	defer p.Close()
	step := func(offset int64, publish, commit bool) {
		t.Helper()
		tx, err := p.Begin()
		require.NoError(t, err)
		if publish {
			require.NoError(t, tx.Publish(ctx, &stream.Record{Topic: out, Value: fmt.Appendf(nil, "out-%d", offset)}))
		}
		require.NoError(t, tx.CommitOffsets(ctx, group, map[stream.TopicPartition]int64{tp: offset}))
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Abort(ctx))
		}
	}

	step(2, false, false)
	require.Empty(t, committedOffsets(t, ctx, c, group, topic), "offsets of an aborted transaction are dropped")
	step(3, false, true)
	require.Equal(t, map[stream.TopicPartition]int64{tp: 3}, committedOffsets(t, ctx, c, group, topic), "a transaction of offsets only")
	step(5, true, false)
	require.Equal(t, map[stream.TopicPartition]int64{tp: 3}, committedOffsets(t, ctx, c, group, topic))
	step(6, true, true)
	require.Equal(t, map[stream.TopicPartition]int64{tp: 6}, committedOffsets(t, ctx, c, group, topic), "offsets with records")
	require.Equal(t, []string{"out-6"}, values(readCommitted(t, ctx, c, out, 0)))

	// A member resumes at the transaction's commit.
	gc, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer gc.Close()
	require.Equal(t, seqOffsets(6, 9), offsets(pollUntil(t, ctx, gc, untilOffset(9))))
}

// txFencing: a second producer with the same transactional ID fences the
// first: the first's open transaction is aborted and its Commit fails with
// ErrFenced; the second goes on.
func (s *suite) txFencing(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	id := unique(t, "txn")

	p1, tx1 := newTx(t, ctx, c, id)
	require.NoError(t, tx1.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("zombie")}))

	_, tx2 := newTx(t, ctx, c, id)
	require.ErrorIs(t, tx1.Commit(ctx), stream.ErrFenced, "the fenced producer cannot commit")
	require.NoError(t, tx2.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("new")}))
	require.NoError(t, tx2.Commit(ctx))

	require.Equal(t, []string{"new"}, values(readCommitted(t, ctx, c, topic, 0)), "the zombie's transaction was aborted")
	require.Equal(t, []string{"zombie", "new"}, values(readAll(t, ctx, c, topic, 0, stream.OffsetEarliest)))
	require.NoError(t, p1.Close(), "closing a fenced producer")
}

// txSessionExactlyOnce runs two TransactSessions of one group copying an
// input topic to an output topic, the second joining half-way, which
// rebalances the group while the first is in its loop. Every input is in
// the committed output exactly once, and the group's offsets are at the
// input's end.
func (s *suite) txSessionExactlyOnce(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	const parts, half = 3, 50 // 300 records in all
	in := createTopic(t, ctx, c, parts)
	out := createTopic(t, ctx, c, parts)
	group := unique(t, "g")

	var committed, aborted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(name string) {
		sess, err := c.NewTxSession(ctx, unique(t, "txn-"+name), group, []string{in},
			&stream.GroupOptions{Reset: stream.ResetEarliest, MaxPollRecords: 20}, nil)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if err := sess.Close(); err != nil {
					t.Errorf("%s: Close: %v", name, err)
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, cancel := context.WithTimeout(ctx, pollSlice)
				recs, err := sess.Poll(pctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				if err != nil {
					t.Errorf("%s: Poll: %v", name, err)
					return
				}
				outs := make([]*stream.Record, len(recs))
				for i, r := range recs {
					outs[i] = &stream.Record{Topic: out, Partition: r.Partition, Value: r.Value}
				}
				if err := sess.Publish(ctx, outs...); err != nil {
					t.Errorf("%s: Publish: %v", name, err)
					return
				}
				ok, err := sess.End(ctx, true)
				if err != nil {
					t.Errorf("%s: End: %v", name, err)
					return
				}
				if ok {
					committed.Add(int64(len(recs)))
				} else {
					aborted.Add(int64(len(recs)))
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	publishSpread(t, ctx, c, in, parts, half, "first")
	run("A")
	waitFor(t, "A copied the first half", func() bool { return committed.Load() >= parts*half })
	run("B")
	publishSpread(t, ctx, c, in, parts, half, "second")
	waitFor(t, "A and B copied the second half", func() bool { return committed.Load() >= 2*parts*half })
	close(stop)
	wg.Wait()
	t.Logf("records in committed transactions %d, in aborted ones %d", committed.Load(), aborted.Load())

	var want, got []string
	for p := range int32(parts) {
		for _, tag := range []string{"first", "second"} {
			for i := range half {
				want = append(want, fmt.Sprintf("%s-%d-%d", tag, p, i))
			}
		}
		outp := readCommitted(t, ctx, c, out, p)
		got = append(got, values(outp)...)
	}
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got, "every input in the committed output exactly once")

	offs := committedOffsets(t, ctx, c, group, in)
	for p := range int32(parts) {
		require.Equal(t, int64(2*half), offs[stream.TopicPartition{Topic: in, Partition: p}], "partition %d: the group's offset is the input's end", p)
	}
}

// txErrors: bad transactional IDs and options, calls out of order, and a
// closed client, with the same typed errors on both backends.
func (s *suite) txErrors(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)

	_, err := c.NewTxProducer(ctx, "", nil)
	require.ErrorIs(t, err, stream.ErrInvalidArgument, "an empty transactional ID")
	_, err = c.NewTxProducer(ctx, unique(t, "txn"), &stream.TxOptions{Timeout: stream.MaxTxnTimeout + 1})
	require.ErrorIs(t, err, stream.ErrInvalidConfig, "a timeout above MaxTxnTimeout")
	_, err = c.NewTxSession(ctx, unique(t, "txn"), unique(t, "g"), []string{topic}, &stream.GroupOptions{AutoCommit: true}, nil)
	require.ErrorIs(t, err, stream.ErrInvalidConfig, "a session commits with its transactions, not by itself")
	_, err = c.NewTxSession(ctx, unique(t, "txn"), "", []string{topic}, nil, nil)
	require.ErrorIs(t, err, stream.ErrInvalidGroup)
	_, err = c.ReadPartition(ctx, topic, 0, stream.OffsetEarliest, committedOnly, committedOnly)
	require.ErrorIs(t, err, stream.ErrInvalidArgument, "at most one ReadOptions")

	p, tx := newTx(t, ctx, c, unique(t, "txn"))
	_, err = p.Begin()
	require.ErrorIs(t, err, stream.ErrTxnState, "one transaction at a time")
	require.ErrorIs(t, tx.Publish(ctx, &stream.Record{Topic: unique(t, "missing"), Value: []byte("x")}), stream.ErrTopicNotFound)
	require.ErrorIs(t, tx.Publish(ctx, nil), stream.ErrInvalidRecord)
	require.ErrorIs(t, tx.CommitOffsets(ctx, "", map[stream.TopicPartition]int64{{Topic: topic}: 1}), stream.ErrInvalidGroup)
	require.NoError(t, tx.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("ok")}), "a refused record leaves the transaction usable")
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, []string{"ok"}, values(readCommitted(t, ctx, c, topic, 0)))
	require.ErrorIs(t, tx.Abort(ctx), stream.ErrTxnState, "a transaction ends once")

	sess, err := c.NewTxSession(ctx, unique(t, "txn"), unique(t, "g"), []string{topic}, nil, nil)
	require.NoError(t, err)
	require.ErrorIs(t, sess.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("x")}), stream.ErrTxnState, "no transaction before Poll")
	committed, err := sess.End(ctx, true)
	require.NoError(t, err)
	require.False(t, committed, "nothing to end")

	tx2, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, err = p.Begin()
	require.ErrorIs(t, err, stream.ErrClosed, "the client's Close closes its producers")
	require.ErrorIs(t, tx2.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("x")}), stream.ErrClosed)
	_, err = sess.Poll(ctx)
	require.ErrorIs(t, err, stream.ErrClosed, "and its sessions")
	_, err = c.NewTxProducer(ctx, unique(t, "txn"), nil)
	require.ErrorIs(t, err, stream.ErrClosed)
}
