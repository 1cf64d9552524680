package listener

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// txnBatch is rawBatch of one transactional batch (attributes bit 4).
func txnBatch(t *testing.T, pid int64, epoch int16, seq int32, vals ...string) []byte {
	t.Helper()
	b := batch.Batch(rawBatch(t, pid, epoch, seq, batch.None, vals...))
	b[22] |= 0x10
	crc := b.ComputeCRC()
	b[17], b[18], b[19], b[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return b
}

// eosBroker opens a broker with topics "in" (4 partitions, n records
// "0".."n-1") and "out" (2 partitions), served on a loopback port.
func eosBroker(t *testing.T, n int) (*stream.Broker, *Server) {
	t.Helper()
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("in", stream.TopicConfig{Partitions: 4}))
	require.NoError(t, b.CreateTopic("out", stream.TopicConfig{Partitions: 2}))
	recs := make([]*stream.Record, n)
	for i := range recs {
		recs[i] = &stream.Record{Topic: "in", Key: fmt.Append(nil, i), Value: fmt.Append(nil, i)}
	}
	require.NoError(t, b.Publish(t.Context(), recs...))
	return b, startServer(t, b, nil)
}

// committedInputs is how many input records group g has committed past.
func committedInputs(b *stream.Broker) int {
	got, err := b.CommittedOffsets("g")
	if err != nil {
		return 0
	}
	total := 0
	for _, off := range got {
		total += int(off)
	}
	return total
}

// topicValues reads every partition of topic in-process at isolation,
// returning the values and how often each occurs.
func topicValues(t *testing.T, b *stream.Broker, topic string, isolation stream.IsolationLevel) map[string]int {
	t.Helper()
	info, err := b.DescribeTopic(topic)
	require.NoError(t, err)
	seen := map[string]int{}
	for _, p := range info.Partitions {
		r, err := b.NewReader(topic, p.Partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true, Isolation: isolation})
		require.NoError(t, err)
		for rec, err := range r.All(t.Context()) {
			require.NoError(t, err)
			seen[string(rec.Value)]++
		}
		require.NoError(t, r.Close())
	}
	return seen
}

// requireExactlyOnce checks that "out", read_committed, holds every input
// value exactly once.
func requireExactlyOnce(t *testing.T, b *stream.Broker, n int) {
	t.Helper()
	seen := topicValues(t, b, "out", stream.ReadCommitted)
	require.Len(t, seen, n)
	for v, c := range seen {
		require.Equal(t, 1, c, "input %s output %d times", v, c)
	}
}

// remoteSession is a franz-go GroupTransactSession of group "g" copying
// "in" to "out".
func remoteSession(t *testing.T, s *Server, id string, opts ...kgo.Opt) *kgo.GroupTransactSession {
	t.Helper()
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{
		kgo.SeedBrokers(s.Addr()), kgo.TransactionalID(id), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(50 * time.Millisecond), kgo.FetchMaxWait(50 * time.Millisecond),
		kgo.TransactionTimeout(20 * time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	}, opts...)...)
	require.NoError(t, err)
	// franz-go (v1.22.2) publishes a produce topic's partitions only after
	// partitioning the records that waited for them. Records of the first
	// transaction to "out" can be acknowledged, and the transaction ended,
	// before that: EndTransaction then does not see the partitions and
	// leaves them marked as added, the next transaction skips
	// AddPartitionsToTxn, its produce is refused (INVALID_TXN_STATE), and
	// End still commits its offsets. A warm-up transaction whose second
	// produce waits for the partitions (it takes the producer's
	// unknown-topic lock, held until they are published) ends only after
	// they are, so later transactions add "out" as they should. It aborts:
	// read_committed readers never see "warm-up".
	require.NoError(t, sess.Begin())
	for range 2 {
		require.NoError(t, sess.ProduceSync(t.Context(), &kgo.Record{Topic: "out", Value: []byte("warm-up")}).FirstErr())
	}
	_, err = sess.End(t.Context(), kgo.TryAbort)
	require.NoError(t, err)
	return sess
}

// step runs one consume-transform-produce transaction of sess: it
// returns how many records it read and whether End committed.
func step(ctx context.Context, sess *kgo.GroupTransactSession, commit bool) (int, bool, error) {
	if err := sess.Begin(); err != nil {
		return 0, false, err
	}
	pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	fetches := sess.PollRecords(pollCtx, 10)
	cancel()
	var recs []*kgo.Record
	fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	// franz-go leaves it to the caller to abort a transaction one of
	// whose records failed; a commit would lose the record.
	var produced kgo.FirstErrPromise
	for _, r := range recs {
		sess.Produce(ctx, &kgo.Record{Topic: "out", Key: r.Key, Value: r.Value}, produced.Promise())
	}
	how := kgo.TryAbort
	if commit {
		how = kgo.TryCommit
	}
	committed, err := sess.End(ctx, how)
	if perr := produced.Err(); err == nil && perr != nil && !errors.Is(perr, kgo.ErrAborting) {
		err = fmt.Errorf("a record of the transaction failed (committed: %v): %w", committed, perr)
	}
	return len(recs), committed, err
}

// loop steps sess until every input is committed, aborting every fifth
// transaction.
func loop(ctx context.Context, b *stream.Broker, sess *kgo.GroupTransactSession, n int) error {
	for i := 0; committedInputs(b) < n; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, _, err := step(ctx, sess, i%5 != 4); err != nil {
			return err
		}
	}
	return nil
}

// franz-go's GroupTransactSession copies "in" to "out" exactly once, with
// one session, and with a second joining while the first has a
// transaction open: the rebalance aborts it, and its records are copied
// once, by whichever session owns them next.
func TestTxnGroupTransactSession(t *testing.T) {
	const n = 200
	t.Run("alone", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		b, s := eosBroker(t, n)
		sess := remoteSession(t, s, "s1")
		defer sess.Close()
		require.NoError(t, loop(ctx, b, sess, n))
		requireExactlyOnce(t, b, n)
		// Aborted outputs are there for read_uncommitted readers.
		require.Greater(t, len(topicValues(t, b, "out", stream.ReadUncommitted)), 0)
	})
	t.Run("rebalance", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		b, s := eosBroker(t, n)
		revoked := make(chan struct{})
		var once sync.Once
		s1 := remoteSession(t, s, "s1", kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { close(revoked) })
		}))
		defer s1.Close()
		_, committed, err := step(ctx, s1, true)
		require.NoError(t, err)
		require.True(t, committed)

		// s1 holds a transaction with outputs while s2 joins.
		require.NoError(t, s1.Begin())
		var got int
		for got == 0 {
			fetches := s1.PollRecords(ctx, 10)
			fetches.EachRecord(func(r *kgo.Record) {
				got++
				s1.Produce(ctx, &kgo.Record{Topic: "out", Key: r.Key, Value: r.Value}, nil)
			})
		}
		s2 := remoteSession(t, s, "s2")
		defer s2.Close()
		s2done := make(chan error, 1)
		go func() { s2done <- loop(ctx, b, s2, n) }()
		select {
		case <-revoked:
		case <-ctx.Done():
			t.Fatal("s1 never heard of the rebalance")
		}
		committed, err = s1.End(ctx, kgo.TryCommit)
		require.NoError(t, err)
		require.False(t, committed, "a rebalance during the transaction aborts it")

		require.NoError(t, loop(ctx, b, s1, n))
		require.NoError(t, <-s2done)
		requireExactlyOnce(t, b, n)
	})
}

// An in-process TxSession and a remote GroupTransactSession share group
// "g" and its inputs, two partitions each: together they copy every input
// exactly once.
func TestTxnMixedSessions(t *testing.T) {
	const n = 200
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b, s := eosBroker(t, n)
	remote := remoteSession(t, s, "remote", kgo.Balancers(kgo.CooperativeStickyBalancer()))
	defer remote.Close()
	split := func(owners int) func() bool {
		return func() bool {
			info, err := b.DescribeGroup("g")
			if err != nil || len(info.Members) != owners {
				return false
			}
			for _, m := range info.Members {
				if len(m.Assignment) != 4/owners {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, split(1), 10*time.Second, 5*time.Millisecond, "the remote session holds every partition")
	local, err := b.NewTxSession("local", "g", []string{"in"}, &stream.TxSessionOptions{Consumer: stream.ConsumerOptions{
		Reset: stream.ResetEarliest, MaxPollRecords: 7, MaxWait: 10 * time.Millisecond, Balancer: stream.CooperativeStickyBalancer{},
	}})
	require.NoError(t, err)
	defer local.Close()

	var localRead int
	localDone := make(chan error, 1)
	go func() {
		localDone <- func() error {
			for i := 0; committedInputs(b) < n; i++ {
				pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				recs, err := local.Poll(pollCtx)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				for _, r := range recs {
					if err := local.Publish(ctx, &stream.Record{Topic: "out", Key: r.Key, Value: r.Value}); err != nil {
						return err
					}
				}
				committed, err := local.End(ctx, i%5 != 4)
				if err != nil {
					return err
				}
				if committed {
					localRead += len(recs)
				}
			}
			return nil
		}()
	}()
	// The remote session starts once the group is split, so both copy.
	require.Eventually(t, split(2), 10*time.Second, 5*time.Millisecond, "two partitions each")
	remoteRead := 0
	for i := 0; committedInputs(b) < n; i++ {
		read, committed, err := step(ctx, remote, i%5 != 4)
		require.NoError(t, err)
		if committed {
			remoteRead += read
		}
	}
	require.NoError(t, <-localDone)
	requireExactlyOnce(t, b, n)
	require.Positive(t, localRead)
	require.Positive(t, remoteRead)
	require.Equal(t, n, localRead+remoteRead)
}

// Transactions of a plain franz-go client: read_committed readers over
// the wire see the committed records only, read_uncommitted ones the
// aborted too; ListOffsets answers the last stable offset for
// read_committed while a transaction is open.
func TestTxnIsolationOverTheWire(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 1}))
	s := startServer(t, b, nil)
	prod := newClient(t, s, kgo.TransactionalID("p"), kgo.DefaultProduceTopic("t"))
	txn := func(commit bool, vals ...string) {
		require.NoError(t, prod.BeginTransaction())
		for _, v := range vals {
			require.NoError(t, prod.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr())
		}
		require.NoError(t, prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
	}
	txn(true, "c1", "c2")
	txn(false, "a1", "a2")
	plain := newClient(t, s, kgo.DefaultProduceTopic("t"))
	require.NoError(t, plain.ProduceSync(ctx, kgo.StringRecord("plain")).FirstErr(), "outside a transaction")
	// Offsets: c1 c2 COMMIT a1 a2 ABORT plain.
	consume := func(level kgo.IsolationLevel) []string {
		cl := newClient(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(level))
		var out []string
		for len(out) < 3 || level == kgo.ReadUncommitted() && len(out) < 5 {
			fetches := cl.PollFetches(ctx)
			require.NoError(t, fetches.Err())
			fetches.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		}
		return out
	}
	require.Equal(t, []string{"c1", "c2", "plain"}, consume(kgo.ReadCommitted()))
	require.Equal(t, []string{"c1", "c2", "a1", "a2", "plain"}, consume(kgo.ReadUncommitted()))

	// An open transaction holds read_committed at its first offset.
	require.NoError(t, prod.BeginTransaction())
	require.NoError(t, prod.ProduceSync(ctx, kgo.StringRecord("open")).FirstErr())
	list := func(level int8) int64 {
		req := listOffsetsRequest(7, "t", -1)
		req.IsolationLevel = level
		return rawAs[*kmsg.ListOffsetsResponse](t, s, req).Topics[0].Partitions[0].Offset
	}
	require.Equal(t, int64(8), list(0))
	require.Equal(t, int64(7), list(1))
	fetch := fetchReq(11, "t", map[int32]int64{0: 7})
	fetch.IsolationLevel = 1
	fp := rawAs[*kmsg.FetchResponse](t, s, fetch).Topics[0].Partitions[0]
	require.Zero(t, fp.ErrorCode)
	require.Equal(t, int64(8), fp.HighWatermark)
	require.Equal(t, int64(7), fp.LastStableOffset)
	require.Empty(t, fp.RecordBatches, "nothing at or past the last stable offset")
	require.NoError(t, prod.EndTransaction(ctx, kgo.TryAbort))
	require.Equal(t, int64(9), list(1), "the abort marker ends it")

	// A read_committed fetch from the start names the aborted transaction.
	fetch = fetchReq(11, "t", map[int32]int64{0: 0})
	fetch.IsolationLevel = 1
	fp = rawAs[*kmsg.FetchResponse](t, s, fetch).Topics[0].Partitions[0]
	require.Equal(t, int64(9), fp.LastStableOffset)
	require.Len(t, fp.AbortedTransactions, 2)
	require.Equal(t, int64(3), fp.AbortedTransactions[0].FirstOffset)
	require.Equal(t, int64(7), fp.AbortedTransactions[1].FirstOffset)
	fetch.IsolationLevel = 0
	fp = rawAs[*kmsg.FetchResponse](t, s, fetch).Topics[0].Partitions[0]
	require.Nil(t, fp.AbortedTransactions, "read_uncommitted: none")
	require.Equal(t, int64(9), fp.LastStableOffset)
}

// A second client initializing the same transactional ID fences the
// first: its open transaction is aborted, and its produce and commit fail
// as fenced.
func TestTxnFencing(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 2}))
	s := startServer(t, b, nil)
	opts := []kgo.Opt{kgo.TransactionalID("same"), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	old := newClient(t, s, opts...)
	require.NoError(t, old.BeginTransaction())
	require.NoError(t, old.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie"), Partition: 0}).FirstErr())

	fresh := newClient(t, s, opts...)
	require.NoError(t, fresh.BeginTransaction())
	require.NoError(t, fresh.ProduceSync(ctx, &kgo.Record{Value: []byte("fresh"), Partition: 0}).FirstErr())
	require.NoError(t, fresh.EndTransaction(ctx, kgo.TryCommit))

	// The zombie's produce to a partition new to its transaction, and its
	// commit, are refused.
	err := old.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie2"), Partition: 1}).FirstErr()
	require.ErrorIs(t, err, kerr.ProducerFenced)
	require.Error(t, old.EndTransaction(ctx, kgo.TryCommit))
	require.Equal(t, map[string]int{"fresh": 1}, topicValues(t, b, "t", stream.ReadCommitted))

	// Over raw requests: the old epoch's produce is INVALID_PRODUCER_EPOCH.
	infos := b.Transactions()
	require.Len(t, infos, 1)
	require.Equal(t, int16(1), infos[0].Epoch)
	add := addPartitionsReq(3, "same", infos[0].ProducerID, 1, "t", 0)
	require.Zero(t, rawAs[*kmsg.AddPartitionsToTxnResponse](t, s, add).Topics[0].Partitions[0].ErrorCode)
	produce := produceReq(9, "t", 0, txnBatch(t, infos[0].ProducerID, 0, 5, "late"))
	produce.TransactionID = kmsg.StringPtr("same")
	require.Equal(t, kerr.InvalidProducerEpoch.Code, partitionAnswer(rawAs[*kmsg.ProduceResponse](t, s, produce)).ErrorCode)
	end := endTxnReq(3, "same", infos[0].ProducerID, 1, false)
	require.Zero(t, rawAs[*kmsg.EndTxnResponse](t, s, end).ErrorCode)
}

func addPartitionsReq(version int16, id string, pid int64, epoch int16, topic string, parts ...int32) *kmsg.AddPartitionsToTxnRequest {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = version, id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	req.Topics = append(req.Topics, rt)
	return req
}

func endTxnReq(version int16, id string, pid int64, epoch int16, commit bool) *kmsg.EndTxnRequest {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = version, id, pid, epoch, commit
	return req
}

func initTxnReq(version int16, id string, timeout time.Duration) *kmsg.InitProducerIDRequest {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = version, kmsg.StringPtr(id), int32(timeout.Milliseconds())
	return req
}

func txnOffsetCommitReq(version int16, id string, pid int64, epoch int16, group, member string, gen int32, offset int64) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = version, id, pid, epoch
	req.Group, req.MemberID, req.Generation = group, member, gen
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// The coordinator's error paths over raw requests, and what
// DescribeTransactions and ListTransactions report.
func TestTxnRawErrors(t *testing.T) {
	b, s := topicBroker(t, 2)
	init := rawAs[*kmsg.InitProducerIDResponse](t, s, initTxnReq(4, "tx", 10*time.Second))
	require.Zero(t, init.ErrorCode)
	pid, epoch := init.ProducerID, init.ProducerEpoch

	// EndTxn without a transaction.
	require.Equal(t, kerr.InvalidTxnState.Code, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(3, "tx", pid, epoch, true)).ErrorCode)
	// An unknown transactional ID; an empty one.
	require.Equal(t, kerr.InvalidProducerIDMapping.Code, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(3, "nope", pid, epoch, true)).ErrorCode)
	require.Equal(t, kerr.InvalidRequest.Code, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(3, "", pid, epoch, true)).ErrorCode)

	// A transactional batch before its partition was added.
	produce := produceReq(9, "t", 0, txnBatch(t, pid, epoch, 0, "early"))
	produce.TransactionID = kmsg.StringPtr("tx")
	require.Equal(t, kerr.InvalidTxnState.Code, partitionAnswer(rawAs[*kmsg.ProduceResponse](t, s, produce)).ErrorCode)

	// AddPartitionsToTxn: an unknown partition fails, the others are not
	// attempted; an epoch ahead is INVALID_PRODUCER_EPOCH.
	apr := rawAs[*kmsg.AddPartitionsToTxnResponse](t, s, addPartitionsReq(3, "tx", pid, epoch, "t", 0, 7))
	require.Equal(t, kerr.OperationNotAttempted.Code, apr.Topics[0].Partitions[0].ErrorCode)
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, apr.Topics[0].Partitions[1].ErrorCode)
	apr = rawAs[*kmsg.AddPartitionsToTxnResponse](t, s, addPartitionsReq(3, "tx", pid, epoch+1, "t", 0))
	require.Equal(t, kerr.InvalidProducerEpoch.Code, apr.Topics[0].Partitions[0].ErrorCode)

	// A new instance fences this one: an old epoch is PRODUCER_FENCED from
	// v2, INVALID_PRODUCER_EPOCH before (librdkafka sends v0).
	init = rawAs[*kmsg.InitProducerIDResponse](t, s, initTxnReq(4, "tx", 10*time.Second))
	require.Zero(t, init.ErrorCode)
	require.Equal(t, epoch+1, init.ProducerEpoch)
	apr = rawAs[*kmsg.AddPartitionsToTxnResponse](t, s, addPartitionsReq(3, "tx", pid, epoch, "t", 0))
	require.Equal(t, kerr.ProducerFenced.Code, apr.Topics[0].Partitions[0].ErrorCode)
	apr = rawAs[*kmsg.AddPartitionsToTxnResponse](t, s, addPartitionsReq(0, "tx", pid, epoch, "t", 0))
	require.Equal(t, kerr.InvalidProducerEpoch.Code, apr.Topics[0].Partitions[0].ErrorCode)
	require.Equal(t, kerr.InvalidProducerEpoch.Code, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(1, "tx", pid, epoch, false)).ErrorCode)
	epoch = init.ProducerEpoch

	// KIP-360: a re-init naming another producer ID, or an epoch ahead, is fenced.
	re := initTxnReq(4, "tx", 10*time.Second)
	re.ProducerID, re.ProducerEpoch = pid+1, epoch
	require.Equal(t, kerr.ProducerFenced.Code, rawAs[*kmsg.InitProducerIDResponse](t, s, re).ErrorCode)
	re.ProducerID, re.ProducerEpoch = pid, epoch+1
	require.Equal(t, kerr.ProducerFenced.Code, rawAs[*kmsg.InitProducerIDResponse](t, s, re).ErrorCode)
	re.ProducerID, re.ProducerEpoch = pid, epoch
	init = rawAs[*kmsg.InitProducerIDResponse](t, s, re)
	require.Zero(t, init.ErrorCode)
	require.Equal(t, epoch+1, init.ProducerEpoch)
	epoch = init.ProducerEpoch

	// TxnOffsetCommit of a member: a stale generation is refused, the
	// current one staged with the transaction.
	cl := newClient(t, s)
	member, gen := rawJoin(t, cl, "g", "range", 10*time.Second)
	aor := kmsg.NewPtrAddOffsetsToTxnRequest()
	aor.Version, aor.TransactionalID, aor.ProducerID, aor.ProducerEpoch, aor.Group = 3, "tx", pid, epoch, "g"
	require.Zero(t, rawAs[*kmsg.AddOffsetsToTxnResponse](t, s, aor).ErrorCode)
	tor := rawAs[*kmsg.TxnOffsetCommitResponse](t, s, txnOffsetCommitReq(3, "tx", pid, epoch, "g", member, gen+1, 1))
	require.Equal(t, kerr.IllegalGeneration.Code, tor.Topics[0].Partitions[0].ErrorCode)
	tor = rawAs[*kmsg.TxnOffsetCommitResponse](t, s, txnOffsetCommitReq(3, "tx", pid, epoch, "g", "who", gen, 1))
	require.Equal(t, kerr.UnknownMemberID.Code, tor.Topics[0].Partitions[0].ErrorCode)
	tor = rawAs[*kmsg.TxnOffsetCommitResponse](t, s, txnOffsetCommitReq(3, "tx", pid, epoch-1, "g", member, gen, 1))
	require.Equal(t, kerr.InvalidProducerEpoch.Code, tor.Topics[0].Partitions[0].ErrorCode)
	tor = rawAs[*kmsg.TxnOffsetCommitResponse](t, s, txnOffsetCommitReq(3, "tx", pid, epoch, "g", member, gen, 1))
	require.Zero(t, tor.Topics[0].Partitions[0].ErrorCode)

	apr = rawAs[*kmsg.AddPartitionsToTxnResponse](t, s, addPartitionsReq(3, "tx", pid, epoch, "t", 1))
	require.Zero(t, apr.Topics[0].Partitions[0].ErrorCode)
	produce = produceReq(9, "t", 1, txnBatch(t, pid, epoch, 0, "in-txn"))
	produce.TransactionID = kmsg.StringPtr("tx")
	require.Zero(t, partitionAnswer(rawAs[*kmsg.ProduceResponse](t, s, produce)).ErrorCode)

	// Describe and List while it is open.
	dr := kmsg.NewPtrDescribeTransactionsRequest()
	dr.TransactionalIDs = []string{"tx", "nope"}
	dresp := rawAs[*kmsg.DescribeTransactionsResponse](t, s, dr)
	require.Len(t, dresp.TransactionStates, 2)
	st := dresp.TransactionStates[0]
	require.Zero(t, st.ErrorCode)
	require.Equal(t, "Ongoing", st.State)
	require.Equal(t, pid, st.ProducerID)
	require.Equal(t, epoch, st.ProducerEpoch)
	require.Equal(t, int32(10000), st.TimeoutMillis)
	require.Positive(t, st.StartTimestamp)
	require.Len(t, st.Topics, 1)
	require.Equal(t, "t", st.Topics[0].Topic)
	require.Equal(t, []int32{1}, st.Topics[0].Partitions)
	require.Equal(t, kerr.TransactionalIDNotFound.Code, dresp.TransactionStates[1].ErrorCode)

	require.Zero(t, rawAs[*kmsg.InitProducerIDResponse](t, s, initTxnReq(4, "other", time.Minute)).ErrorCode)
	list := func(version int16, states []string, pids []int64, pattern *string) *kmsg.ListTransactionsResponse {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version, req.StateFilters, req.ProducerIDFilters, req.TransactionalIDPattern = version, states, pids, pattern
		return rawAs[*kmsg.ListTransactionsResponse](t, s, req)
	}
	ids := func(resp *kmsg.ListTransactionsResponse) map[string]string {
		out := map[string]string{}
		for _, st := range resp.TransactionStates {
			out[st.TransactionalID] = st.TransactionState
		}
		return out
	}
	require.Equal(t, map[string]string{"tx": "Ongoing", "other": "Empty"}, ids(list(0, nil, nil, nil)))
	lresp := list(0, []string{"Ongoing", "Bogus"}, nil, nil)
	require.Equal(t, map[string]string{"tx": "Ongoing"}, ids(lresp))
	require.Equal(t, []string{"Bogus"}, lresp.UnknownStateFilters)
	require.Equal(t, map[string]string{"tx": "Ongoing"}, ids(list(1, nil, []int64{pid}, nil)))
	require.Equal(t, map[string]string{"other": "Empty"}, ids(list(2, nil, nil, kmsg.StringPtr("^oth"))))
	require.Equal(t, kerr.InvalidRegularExpression.Code, list(2, nil, nil, kmsg.StringPtr("(")).ErrorCode)

	// Commit: the staged offset and the record go in together.
	require.Zero(t, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(3, "tx", pid, epoch, true)).ErrorCode)
	require.Zero(t, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(3, "tx", pid, epoch, true)).ErrorCode, "a retry")
	require.Equal(t, kerr.InvalidTxnState.Code, rawAs[*kmsg.EndTxnResponse](t, s, endTxnReq(3, "tx", pid, epoch, false)).ErrorCode)
	committed, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Equal(t, int64(1), committed[TopicPartition{Topic: "t", Partition: 0}])
	require.Equal(t, map[string]int{"in-txn": 1}, topicValues(t, b, "t", stream.ReadCommitted))
	require.Equal(t, "CompleteCommit", rawAs[*kmsg.DescribeTransactionsResponse](t, s, dr).TransactionStates[0].State)
}

// Transactional IDs are ACL resources: a client needs Write on its ID to
// initialize, add partitions, end, and produce transactionally, Describe
// to find its coordinator and to see it listed.
func TestTxnACLs(t *testing.T) {
	b := openBroker(t, nil)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 1}))
	s := startServer(t, b, &Options{SASL: testSASL(t), ACLs: []ACL{
		{Principal: "*", Resource: ResourceTopic, Name: "t", Operations: []Operation{OpWrite}},
		{Principal: "alice", Resource: ResourceTransactionalID, Name: "mine", Operations: []Operation{OpWrite}},
	}})
	alice := newClient(t, s, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()))
	bob := newClient(t, s, kgo.SASL(plain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism()))

	init := request[*kmsg.InitProducerIDResponse](t, alice, initTxnReq(4, "mine", time.Minute))
	require.Zero(t, init.ErrorCode)
	denied := kerr.TransactionalIDAuthorizationFailed.Code
	require.Equal(t, denied, request[*kmsg.InitProducerIDResponse](t, bob, initTxnReq(4, "mine", time.Minute)).ErrorCode)
	require.Equal(t, denied, request[*kmsg.InitProducerIDResponse](t, alice, initTxnReq(4, "theirs", time.Minute)).ErrorCode)

	find := kmsg.NewPtrFindCoordinatorRequest()
	find.Version, find.CoordinatorType, find.CoordinatorKeys = 4, 1, []string{"mine"}
	require.Zero(t, request[*kmsg.FindCoordinatorResponse](t, alice, find).Coordinators[0].ErrorCode)
	require.Equal(t, denied, request[*kmsg.FindCoordinatorResponse](t, bob, find).Coordinators[0].ErrorCode)

	add := addPartitionsReq(3, "mine", init.ProducerID, init.ProducerEpoch, "t", 0)
	require.Equal(t, denied, request[*kmsg.AddPartitionsToTxnResponse](t, bob, add).Topics[0].Partitions[0].ErrorCode)
	require.Zero(t, request[*kmsg.AddPartitionsToTxnResponse](t, alice, add).Topics[0].Partitions[0].ErrorCode)
	produce := produceReq(9, "t", 0, txnBatch(t, init.ProducerID, init.ProducerEpoch, 0, "x"))
	produce.TransactionID = kmsg.StringPtr("mine")
	require.Equal(t, denied, partitionAnswer(request[*kmsg.ProduceResponse](t, bob, produce)).ErrorCode)
	require.Zero(t, partitionAnswer(request[*kmsg.ProduceResponse](t, alice, produce)).ErrorCode)
	end := endTxnReq(3, "mine", init.ProducerID, init.ProducerEpoch, true)
	require.Equal(t, denied, request[*kmsg.EndTxnResponse](t, bob, end).ErrorCode)
	require.Zero(t, request[*kmsg.EndTxnResponse](t, alice, end).ErrorCode)

	list := kmsg.NewPtrListTransactionsRequest()
	require.Len(t, request[*kmsg.ListTransactionsResponse](t, alice, list).TransactionStates, 1)
	require.Empty(t, request[*kmsg.ListTransactionsResponse](t, bob, list).TransactionStates)
}
