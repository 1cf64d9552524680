// Package conformance is the behaviour every stream.Client backend shares,
// as one test suite: the embedded Broker (Broker.Client) runs it in this
// module's tests, and the Kafka client of the kafka module runs it against
// an in-process cluster. Application code written against stream.Client can
// rely on what it checks:
//
//   - Publish and PublishAsync fill in partition, offset and timestamp;
//     records read back (ReadPartition, Poll) are in offset order, with keys,
//     values, headers and timestamps unchanged, nil and empty kept apart.
//   - The partitioner places every published record. By default (ByKey)
//     keyed records land where stream.KafkaPartitioner puts them (Kafka's
//     murmur2 placement), whatever their Partition says; the embedded
//     backend must be opened with Options.Partitioner set to
//     stream.KafkaPartitioner{} for this to hold. Under a manual
//     partitioner (Manual) a record goes to the partition it names, over
//     its key, a record left at stream.AnyPartition to some partition, and
//     a partition the topic lacks fails with ErrInvalidPartition.
//   - Consumer groups split partitions between members with each of the four
//     balancers, hand partitions over with OnRevoked before the new owner's
//     OnAssigned (never two owners at once), and a commit made in OnRevoked
//     is where the new owner starts: no record is read twice, none is lost.
//   - Committed offsets are the next offset to read; a new member resumes
//     there; AutoCommit commits on Close; the reset policies apply only
//     without a commit (ResetNone fails Poll with ErrNoCommittedOffset).
//   - Seek moves a member's position, also from OnAssigned, and Commit then
//     commits the sought position.
//   - AlterTopic changes a topic's settings for the records published next
//     (MaxRecordBytes checked here), changes the cleanup policy and the
//     compaction settings, and refuses a change of Partitions and a
//     MinCompactionLag over MaxCompactionLag.
//   - Transactions: a committed transaction's records, over several
//     partitions, reach a ReadCommitted group and reader together; an
//     aborted one's never do, though ReadUncommitted readers see them;
//     an open transaction holds ReadCommitted readers at its first offset,
//     the records published after it too; each commit or abort takes one
//     offset per partition; offsets staged in a transaction are committed
//     only if it commits; a new producer with a transactional ID fences
//     the older one (ErrFenced) and aborts its transaction; a
//     TransactSession loop outputs every input exactly once across a
//     rebalance.
//   - Handlers (stream.Handle, stream.HandleBatch): a failing record is
//     retried up to MaxAttempts (once if its error is Permanent), then
//     copied to topic.DLT with its key, value and headers and the headers
//     DeadLetterOf reads; handled and dead-lettered records are committed,
//     in offset order per partition, also with several partitions handled
//     at once; cancelling the context commits what was handled and a new
//     run resumes there; without a dead-letter topic a failure stops the
//     handler with a *HandlerError; a batch is retried whole and split at
//     a *BatchError's record.
//   - Typed errors (errors.Is): ErrTopicExists, ErrTopicNotFound,
//     ErrInvalidTopic, ErrInvalidPartition, ErrOffsetOutOfRange,
//     ErrInvalidGroup, ErrNotAssigned, ErrNoCommittedOffset, ErrClosed.
//
// Every subtest makes its own client with newClient, with the placement it
// needs, and its own uniquely named topics and groups, so one cluster can
// serve the whole suite (and several runs of it). Waits are bounded polls with deadlines, never sleeps,
// so the suite tolerates a backend's latency (a network round trip, a
// consumer group's heartbeats) without depending on timing.
package conformance

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// Timeout bounds every wait of the suite: a backend that has not done what a
// test waits for by then fails it. It is generous, for slow CI machines and
// the race detector; a healthy backend needs a small fraction of it.
const Timeout = 20 * time.Second

// pollSlice is how long a member goroutine's Poll waits before it looks
// whether its test wants it to stop. It is not a sleep: Poll returns at once
// when records arrive.
const pollSlice = 50 * time.Millisecond

// Placement is the partitioner a test asks newClient for.
type Placement int

const (
	// ByKey is the backend's default partitioner, set to Kafka's: keyed
	// records by murmur2, as stream.KafkaPartitioner places them, keyless
	// ones stickily; Record.Partition is ignored. On the embedded backend:
	// Options.Partitioner stream.KafkaPartitioner{}.
	ByKey Placement = iota
	// Manual places each record on the partition it names, and one left at
	// stream.AnyPartition stickily: stream.ManualPartitioner{} on the
	// embedded backend, kgo.ManualPartitioner() on a cluster.
	Manual
)

// String names the placement.
func (p Placement) String() string {
	if p == Manual {
		return "manual"
	}
	return "by key"
}

// Run runs the shared behaviour tests as subtests of t, each against a client
// newClient makes with the placement asked for (and the suite closes;
// newClient may also register its own cleanup, since Close may be called
// more than once).
func Run(t *testing.T, newClient func(t *testing.T, p Placement) stream.Client) {
	s := &suite{newClient: newClient}
	t.Run("PublishReadBack", s.publishReadBack)
	t.Run("RecordFields", s.recordFields)
	t.Run("PublishAsync", s.publishAsync)
	t.Run("KeyedPlacement", s.keyedPlacement)
	t.Run("ManualPlacement", s.manualPlacement)
	t.Run("Errors", s.errorsTest)
	t.Run("DeleteTopic", s.deleteTopic)
	t.Run("DeleteRecords", s.deleteRecords)
	t.Run("AlterTopic", s.alterTopic)
	t.Run("GroupSplitHandOver", func(t *testing.T) {
		for _, b := range []stream.Balancer{
			stream.RangeBalancer{}, stream.RoundRobinBalancer{},
			stream.StickyBalancer{}, stream.CooperativeStickyBalancer{},
		} {
			t.Run(b.Name(), func(t *testing.T) { s.groupSplitHandOver(t, b) })
		}
	})
	t.Run("CommitResume", s.commitResume)
	t.Run("AutoCommitOnClose", s.autoCommitOnClose)
	t.Run("ResetEarliest", s.resetEarliest)
	t.Run("ResetLatest", s.resetLatest)
	t.Run("ResetNone", s.resetNone)
	t.Run("Seek", s.seek)
	t.Run("SeekInOnAssigned", s.seekInOnAssigned)
	t.Run("EnforceRebalance", s.enforceRebalance)
	t.Run("Close", s.closeTest)
	t.Run("TxCommit", s.txCommit)
	t.Run("TxAbort", s.txAbort)
	t.Run("TxHoldsLastStable", s.txHoldsLastStable)
	t.Run("TxOffsets", s.txOffsets)
	t.Run("TxFencing", s.txFencing)
	t.Run("TxSessionExactlyOnce", s.txSessionExactlyOnce)
	t.Run("TxErrors", s.txErrors)
	t.Run("HandlerRetryDeadLetter", s.handlerRetryDeadLetter)
	t.Run("HandlerStopCommits", s.handlerStopCommits)
	t.Run("HandlerNoDeadLetter", s.handlerNoDeadLetter)
	t.Run("HandleBatch", s.handleBatch)
	t.Run("HandlerConcurrency", s.handlerConcurrency)
	t.Run("HandlerErrors", s.handlerErrors)
}

type suite struct {
	newClient func(t *testing.T, p Placement) stream.Client
}

// client makes a client that places records by key (ByKey), closed when
// the test ends.
func (s *suite) client(t *testing.T) stream.Client {
	t.Helper()
	return s.clientWith(t, ByKey)
}

// manualClient makes a client that places records where they say (Manual),
// closed when the test ends.
func (s *suite) manualClient(t *testing.T) stream.Client {
	t.Helper()
	return s.clientWith(t, Manual)
}

func (s *suite) clientWith(t *testing.T, p Placement) stream.Client {
	t.Helper()
	c := s.newClient(t, p)
	require.NotNil(t, c, "newClient(%s)", p)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testContext is the test's overall deadline.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

var (
	// runID tells runs apart when several share one long-lived cluster.
	runID = strconv.FormatInt(time.Now().UnixNano()%(36*36*36*36*36), 36)
	seq   atomic.Int64
)

// unique returns a new topic or group name, valid under Kafka's rules.
func unique(t *testing.T, kind string) string {
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '-'
	}, t.Name())
	if len(base) > 150 {
		base = base[len(base)-150:]
	}
	return fmt.Sprintf("conf-%s-%s-%s-%d", kind, base, runID, seq.Add(1))
}

func createTopic(t *testing.T, ctx context.Context, c stream.Client, partitions int) string {
	t.Helper()
	name := unique(t, "t")
	require.NoError(t, c.CreateTopic(ctx, name, stream.TopicConfig{Partitions: partitions}))
	return name
}

// publishSpread publishes n records to each partition, explicitly placed,
// with values "<tag>-<partition>-<i>". c must come from manualClient, unless
// the topic has one partition.
func publishSpread(t *testing.T, ctx context.Context, c stream.Client, topic string, partitions, n int, tag string) {
	t.Helper()
	var recs []*stream.Record
	for i := range n {
		for p := range partitions {
			recs = append(recs, &stream.Record{Topic: topic, Partition: int32(p),
				Value: fmt.Appendf(nil, "%s-%d-%d", tag, p, i)})
		}
	}
	require.NoError(t, c.Publish(ctx, recs...))
	for i, r := range recs {
		require.Equal(t, int32(i%partitions), r.Partition, "publishSpread on a client without Manual placement")
	}
}

// readAll reads a partition from an offset to its end as it is now.
func readAll(t *testing.T, ctx context.Context, c stream.Client, topic string, partition int32, from stream.Offset) []*stream.Record {
	t.Helper()
	rd, err := c.ReadPartition(ctx, topic, partition, from)
	require.NoError(t, err)
	defer rd.Close()
	var out []*stream.Record
	for {
		r, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, r.Clone())
	}
}

// pollUntil polls a member on the calling goroutine until done says so, and
// returns every record polled (cloned).
func pollUntil(t *testing.T, ctx context.Context, gc stream.GroupConsumer, done func(all []*stream.Record) bool) []*stream.Record {
	t.Helper()
	var all []*stream.Record
	for !done(all) {
		recs, err := gc.Poll(ctx)
		require.NoError(t, err, "Poll (after %d records)", len(all))
		for _, r := range recs {
			all = append(all, r.Clone())
		}
	}
	return all
}

func atLeast(n int) func([]*stream.Record) bool {
	return func(all []*stream.Record) bool { return len(all) >= n }
}

func untilOffset(off int64) func([]*stream.Record) bool {
	return func(all []*stream.Record) bool {
		return len(all) > 0 && all[len(all)-1].Offset >= off
	}
}

func offsets(recs []*stream.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Offset
	}
	return out
}

func seqOffsets(from, to int64) []int64 {
	var out []int64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// ---------------------------------------------------------------------------
// Publishing and reading back.

func (s *suite) publishReadBack(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)

	base := time.UnixMilli(1_700_000_000_000)
	var recs []*stream.Record
	for i := range 10 {
		recs = append(recs, &stream.Record{
			Topic:     topic,
			Key:       fmt.Appendf(nil, "k%d", i),
			Value:     fmt.Appendf(nil, "v%d", i),
			Headers:   []stream.Header{{Key: "i", Value: []byte(strconv.Itoa(i))}},
			Timestamp: base.Add(time.Duration(i) * time.Second),
		})
	}
	require.NoError(t, c.Publish(ctx, recs[:4]...), "several records in one call")
	for _, r := range recs[4:] {
		require.NoError(t, c.Publish(ctx, r))
	}
	for i, r := range recs {
		require.Equal(t, int32(0), r.Partition)
		require.Equal(t, int64(i), r.Offset, "Publish fills in consecutive offsets")
		require.Equal(t, base.Add(time.Duration(i)*time.Second).UnixMilli(), r.Timestamp.UnixMilli())
	}

	got := readAll(t, ctx, c, topic, 0, stream.OffsetEarliest)
	require.Len(t, got, 10)
	for i, r := range got {
		require.Equal(t, topic, r.Topic)
		require.Equal(t, int32(0), r.Partition)
		require.Equal(t, int64(i), r.Offset)
		require.Equal(t, recs[i].Key, r.Key)
		require.Equal(t, recs[i].Value, r.Value)
		require.Equal(t, recs[i].Headers, r.Headers)
		require.Equal(t, recs[i].Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
	}

	require.Equal(t, seqOffsets(6, 9), offsets(readAll(t, ctx, c, topic, 0, stream.AtOffset(6))))
	require.Empty(t, readAll(t, ctx, c, topic, 0, stream.AtOffset(10)), "the end offset itself is a valid start")
	require.Empty(t, readAll(t, ctx, c, topic, 0, stream.OffsetLatest))

	// A reader stops at the end as it was when it was made.
	rd, err := c.ReadPartition(ctx, topic, 0, stream.OffsetEarliest)
	require.NoError(t, err)
	defer rd.Close()
	require.NoError(t, c.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("later")}))
	n := 0
	for {
		_, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 10, n)
	require.NoError(t, rd.Close())
	require.Len(t, readAll(t, ctx, c, topic, 0, stream.OffsetEarliest), 11)
}

// recordFields publishes records that exercise every field's edge cases and
// reads them back through both read paths (ReadPartition and a group).
func (s *suite) recordFields(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)

	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	ts := time.UnixMilli(1_234_567_890_123)
	recs := []*stream.Record{
		{Topic: topic, Key: nil, Value: nil, Timestamp: ts},                  // no key, tombstone
		{Topic: topic, Key: []byte{}, Value: []byte{}, Timestamp: ts},        // empty, not nil
		{Topic: topic, Key: []byte{0, 1, 0, 255}, Value: big, Timestamp: ts}, // binary, large
		{Topic: topic, Key: []byte("h"), Value: []byte("headers"), Timestamp: ts, // headers
			Headers: []stream.Header{
				{Key: "a", Value: []byte("1")},
				{Key: "nil", Value: nil},
				{Key: "a", Value: []byte("2")}, // a repeated key keeps its place
				{Key: "empty", Value: []byte{}},
				{Key: "", Value: []byte("no key")},
			}},
		{Topic: topic, Key: []byte("sub-ms"), Value: []byte("x"), Timestamp: ts.Add(999 * time.Microsecond)},
		{Topic: topic, Key: []byte("now"), Value: []byte("zero timestamp means now")},
	}
	before := time.Now().Add(-time.Minute)
	for _, r := range recs {
		require.NoError(t, c.Publish(ctx, r))
	}
	after := time.Now().Add(time.Minute)
	now := recs[len(recs)-1].Timestamp
	require.True(t, now.After(before) && now.Before(after), "a zero Timestamp is filled in with the time of publishing, got %v", now)

	check := func(how string, got []*stream.Record) {
		t.Helper()
		require.Len(t, got, len(recs), how)
		for i, r := range got {
			want := recs[i]
			require.Equal(t, int64(i), r.Offset, how)
			require.Equal(t, want.Key == nil, r.Key == nil, "%s: record %d: nil key stays nil, empty stays empty", how, i)
			require.Equal(t, want.Value == nil, r.Value == nil, "%s: record %d: nil value stays nil, empty stays empty", how, i)
			require.Equal(t, string(want.Key), string(r.Key), how)
			require.Equal(t, string(want.Value), string(r.Value), how)
			require.Equal(t, len(want.Headers), len(r.Headers), "%s: record %d headers", how, i)
			for j, h := range want.Headers {
				require.Equal(t, h.Key, r.Headers[j].Key, how)
				require.Equal(t, h.Value == nil, r.Headers[j].Value == nil, "%s: header %q: nil stays nil", how, h.Key)
				require.Equal(t, string(h.Value), string(r.Headers[j].Value), how)
			}
			require.Equal(t, want.Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "%s: record %d timestamp (millisecond precision)", how, i)
		}
	}
	check("ReadPartition", readAll(t, ctx, c, topic, 0, stream.OffsetEarliest))

	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer gc.Close()
	check("Poll", pollUntil(t, ctx, gc, atLeast(len(recs))))
}

func (s *suite) publishAsync(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	const parts, per = 3, 30
	topic := createTopic(t, ctx, c, parts)

	var mu sync.Mutex
	done := map[int32][]int64{}
	calls := 0
	var recs []*stream.Record
	for i := range parts * per {
		r := &stream.Record{Topic: topic, Partition: int32(i % parts), Value: fmt.Appendf(nil, "%d", i)}
		recs = append(recs, r)
		c.PublishAsync(ctx, r, func(r *stream.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if err != nil {
				t.Errorf("PublishAsync %s: %v", r.Value, err)
				return
			}
			done[r.Partition] = append(done[r.Partition], r.Offset)
		})
	}
	require.NoError(t, c.Flush(ctx))
	mu.Lock()
	require.Equal(t, parts*per, calls, "Flush returns after every callback ran")
	for p := range int32(parts) {
		require.Equal(t, seqOffsets(0, per-1), done[p], "callbacks run in offset order per partition")
	}
	mu.Unlock()

	for p := range int32(parts) {
		got := readAll(t, ctx, c, topic, p, stream.OffsetEarliest)
		require.Len(t, got, per)
		for i, r := range got {
			want := recs[i*parts+int(p)]
			require.Equal(t, want.Value, r.Value, "publish order kept within a partition")
			require.Equal(t, want.Offset, r.Offset)
		}
	}
	require.NoError(t, c.Flush(ctx), "Flush with nothing queued")
}

// keyedPlacement checks that keys land where stream.KafkaPartitioner puts
// them, so one key stays on one partition across both backends, and that
// the partitioner places every record: a Partition set on one is ignored.
func (s *suite) keyedPlacement(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	const parts = 6
	topic := createTopic(t, ctx, c, parts)

	keys := [][]byte{{}, []byte("a"), []byte("alice"), []byte("bob"), {0}, {0xff, 0xfe}}
	for i := range 60 {
		keys = append(keys, fmt.Appendf(nil, "customer-%d", i))
	}
	want := func(k []byte) int32 {
		return stream.KafkaPartitioner{}.Partition(&stream.Record{Key: k}, parts)
	}
	var recs []*stream.Record
	for _, k := range keys {
		recs = append(recs, &stream.Record{Topic: topic, Key: k, Value: []byte("first")})
	}
	require.NoError(t, c.Publish(ctx, recs...))
	for _, k := range keys {
		r := &stream.Record{Topic: topic, Key: k, Value: []byte("second")}
		require.NoError(t, c.Publish(ctx, r))
		recs = append(recs, r)
	}
	// A Partition set on a record is no choice of partition: the key
	// decides, even for a partition the topic lacks.
	for i, k := range keys {
		named := (want(k) + 1) % parts
		if i%2 == 1 {
			named = parts + 3
		}
		r := &stream.Record{Topic: topic, Partition: named, Key: k, Value: []byte("named")}
		require.NoError(t, c.Publish(ctx, r))
		recs = append(recs, r)
	}
	// PublishAsync places keys the same way.
	async := make(chan *stream.Record, 2*len(keys))
	for i, k := range keys {
		for _, r := range []*stream.Record{
			{Topic: topic, Key: k, Value: []byte("async")},
			{Topic: topic, Partition: (want(k) + int32(i%2) + 1) % parts, Key: k, Value: []byte("async named")},
		} {
			c.PublishAsync(ctx, r, func(r *stream.Record, err error) {
				if err != nil {
					t.Errorf("PublishAsync: %v", err)
				}
				async <- r
			})
		}
	}
	require.NoError(t, c.Flush(ctx))
	close(async)
	for r := range async {
		recs = append(recs, r)
	}
	placed := map[int32]int{}
	for _, r := range recs {
		require.Equal(t, want(r.Key), r.Partition, "key %q (%s)", r.Key, r.Value)
		placed[r.Partition]++
	}
	require.Len(t, placed, parts, "66 keys reach every one of 6 partitions")

	// Keyless records go to some partition.
	for range 10 {
		r := &stream.Record{Topic: topic, Value: []byte("keyless")}
		require.NoError(t, c.Publish(ctx, r))
		require.True(t, r.Partition >= 0 && r.Partition < parts, "partition %d", r.Partition)
	}

	// What each partition holds agrees with what Publish reported.
	for p := range int32(parts) {
		for _, r := range readAll(t, ctx, c, topic, p, stream.OffsetEarliest) {
			if r.Key != nil {
				require.Equal(t, want(r.Key), p, "key %q read from partition %d", r.Key, p)
			}
		}
	}
}

// manualPlacement checks a manual partitioner: a record goes to the
// partition it names, over its key; one left at AnyPartition goes to some
// partition; a partition the topic lacks fails with ErrInvalidPartition,
// through Publish and through PublishAsync's callback.
func (s *suite) manualPlacement(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	const parts = 3
	topic := createTopic(t, ctx, c, parts)
	hashed := func(k []byte) int32 {
		return stream.KafkaPartitioner{}.Partition(&stream.Record{Key: k}, parts)
	}

	k := []byte("alice")
	named := (hashed(k) + 1) % parts
	r := &stream.Record{Topic: topic, Partition: named, Key: k, Value: []byte("sync")}
	require.NoError(t, c.Publish(ctx, r))
	require.Equal(t, named, r.Partition, "the named partition wins over the key")
	done := make(chan *stream.Record, 1)
	c.PublishAsync(ctx, &stream.Record{Topic: topic, Partition: named, Key: k, Value: []byte("async")},
		func(r *stream.Record, err error) {
			if err != nil {
				t.Errorf("PublishAsync: %v", err)
			}
			done <- r
		})
	require.NoError(t, c.Flush(ctx))
	require.Equal(t, named, (<-done).Partition)
	got := readAll(t, ctx, c, topic, named, stream.OffsetEarliest)
	require.Len(t, got, 2)
	require.Equal(t, "sync", string(got[0].Value))
	require.Equal(t, "async", string(got[1].Value))

	for range 5 {
		r := &stream.Record{Topic: topic, Partition: stream.AnyPartition, Key: k, Value: []byte("any")}
		require.NoError(t, c.Publish(ctx, r))
		require.True(t, r.Partition >= 0 && r.Partition < parts, "AnyPartition placed on %d", r.Partition)
	}

	for _, p := range []int32{parts, parts + 6, -2} {
		err := c.Publish(ctx, &stream.Record{Topic: topic, Partition: p, Value: []byte("x")})
		require.ErrorIs(t, err, stream.ErrInvalidPartition, "Publish to partition %d", p)
		var asyncErr error
		c.PublishAsync(ctx, &stream.Record{Topic: topic, Partition: p, Value: []byte("x")}, func(_ *stream.Record, err error) { asyncErr = err })
		require.NoError(t, c.Flush(ctx))
		require.ErrorIs(t, asyncErr, stream.ErrInvalidPartition, "PublishAsync to partition %d reports through its callback", p)
	}
}

func (s *suite) errorsTest(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	missing := unique(t, "missing")

	require.ErrorIs(t, c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: 1}), stream.ErrTopicExists)
	require.ErrorIs(t, c.CreateTopic(ctx, "bad name!", stream.TopicConfig{Partitions: 1}), stream.ErrInvalidTopic)
	require.ErrorIs(t, c.CreateTopic(ctx, "", stream.TopicConfig{Partitions: 1}), stream.ErrInvalidTopic)

	require.NoError(t, c.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("x")}))
	require.ErrorIs(t, c.Publish(ctx, &stream.Record{Topic: missing, Value: []byte("x")}), stream.ErrTopicNotFound)
	require.ErrorIs(t, c.Publish(ctx, nil), stream.ErrInvalidRecord)
	// ErrInvalidPartition on publishing: see manualPlacement.

	_, err := c.ReadPartition(ctx, missing, 0, stream.OffsetEarliest)
	require.ErrorIs(t, err, stream.ErrTopicNotFound)
	_, err = c.ReadPartition(ctx, topic, 5, stream.OffsetEarliest)
	require.ErrorIs(t, err, stream.ErrInvalidPartition)
	_, err = c.ReadPartition(ctx, topic, 0, stream.AtOffset(2))
	require.ErrorIs(t, err, stream.ErrOffsetOutOfRange, "one past the end")

	_, err = c.Subscribe(unique(t, "g"), []string{missing}, nil)
	require.ErrorIs(t, err, stream.ErrTopicNotFound)
	_, err = c.Subscribe("", []string{topic}, nil)
	require.ErrorIs(t, err, stream.ErrInvalidGroup)

	var asyncErr error
	c.PublishAsync(ctx, nil, func(_ *stream.Record, err error) { asyncErr = err })
	require.NoError(t, c.Flush(ctx))
	require.ErrorIs(t, asyncErr, stream.ErrInvalidRecord, "PublishAsync reports errors through its callback")
}

// enforceRebalance: the member's next Polls run a new rebalance (an eager
// balancer: OnRevoked, then OnAssigned again), and it keeps its partitions
// and consumes on.
func (s *suite) enforceRebalance(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	topic := createTopic(t, ctx, c, 2)
	publishSpread(t, ctx, c, topic, 2, 2, "a")
	var mu sync.Mutex
	assigned, revoked := 0, 0
	gc, err := c.Subscribe(unique(t, "group"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest,
		OnAssigned: func([]stream.TopicPartition) { mu.Lock(); assigned++; mu.Unlock() },
		OnRevoked:  func([]stream.TopicPartition) { mu.Lock(); revoked++; mu.Unlock() }})
	require.NoError(t, err)
	defer gc.Close()
	pollUntil(t, ctx, gc, atLeast(4))
	require.NoError(t, gc.Commit(ctx))
	mu.Lock()
	before := assigned
	mu.Unlock()
	require.NoError(t, gc.EnforceRebalance())
	publishSpread(t, ctx, c, topic, 2, 1, "b")
	pollUntil(t, ctx, gc, func([]*stream.Record) bool {
		mu.Lock()
		defer mu.Unlock()
		return assigned > before && revoked > 0
	})
	require.Len(t, gc.Assignment(), 2, "the only member has every partition again")
	require.NoError(t, gc.Close())
	require.ErrorIs(t, gc.EnforceRebalance(), stream.ErrClosed)
}

// deleteRecords: DeleteRecords moves a partition's start; readers and new
// groups start there; past the end is ErrOffsetOutOfRange.
func (s *suite) deleteRecords(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	publishSpread(t, ctx, c, topic, 1, 10, "r")

	start, err := c.DeleteRecords(ctx, topic, 0, 4)
	require.NoError(t, err)
	require.Equal(t, int64(4), start)
	require.Equal(t, seqOffsets(4, 9), offsets(readAll(t, ctx, c, topic, 0, stream.OffsetEarliest)))
	// Below the start: Kafka (and the embedded broker) change nothing and
	// answer the start; kfake answers OFFSET_OUT_OF_RANGE, so it is not
	// checked here.
	_, err = c.DeleteRecords(ctx, topic, 0, 11)
	require.ErrorIs(t, err, stream.ErrOffsetOutOfRange)
	_, err = c.DeleteRecords(ctx, unique(t, "missing"), 0, 1)
	require.ErrorIs(t, err, stream.ErrTopicNotFound)

	gc, err := c.Subscribe(unique(t, "group"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer gc.Close()
	require.Equal(t, seqOffsets(4, 9), offsets(pollUntil(t, ctx, gc, atLeast(6))), "a new group starts at the new start")
}

// alterTopic: a lowered MaxRecordBytes refuses the next large record, a
// raised one takes it; the compaction settings change and read back;
// Partitions cannot change that way.
func (s *suite) alterTopic(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	big := make([]byte, 8000)
	_, _ = crand.Read(big) // incompressible: a cluster bounds the batch as sent
	publish := func() error {
		return c.Publish(ctx, &stream.Record{Topic: topic, Partition: 0, Value: big})
	}
	require.NoError(t, c.AlterTopic(ctx, topic, func(cfg *stream.TopicConfig) { cfg.MaxRecordBytes = 4096 }))
	require.ErrorIs(t, publish(), stream.ErrRecordTooLarge)
	require.NoError(t, c.AlterTopic(ctx, topic, func(cfg *stream.TopicConfig) { cfg.MaxRecordBytes = 1 << 20 }))
	require.NoError(t, publish())
	require.ErrorIs(t, c.AlterTopic(ctx, topic, func(cfg *stream.TopicConfig) { cfg.Partitions = 2 }), stream.ErrInvalidConfig)
	require.ErrorIs(t, c.AlterTopic(ctx, unique(t, "missing"), func(*stream.TopicConfig) {}), stream.ErrTopicNotFound)

	// The cleanup policy and compaction settings change after creation,
	// and the next change is given them as set.
	want := stream.TopicConfig{Cleanup: stream.CleanupCompactDelete, MinCleanableDirtyRatio: 0.2,
		MinCompactionLag: time.Minute, MaxCompactionLag: time.Hour, DeleteRetention: 2 * time.Hour}
	require.NoError(t, c.AlterTopic(ctx, topic, func(cfg *stream.TopicConfig) {
		cfg.Cleanup, cfg.MinCleanableDirtyRatio, cfg.MinCompactionLag = want.Cleanup, want.MinCleanableDirtyRatio, want.MinCompactionLag
		cfg.MaxCompactionLag, cfg.DeleteRetention = want.MaxCompactionLag, want.DeleteRetention
	}))
	var got stream.TopicConfig
	require.NoError(t, c.AlterTopic(ctx, topic, func(cfg *stream.TopicConfig) {
		got = stream.TopicConfig{Cleanup: cfg.Cleanup, MinCleanableDirtyRatio: cfg.MinCleanableDirtyRatio,
			MinCompactionLag: cfg.MinCompactionLag, MaxCompactionLag: cfg.MaxCompactionLag, DeleteRetention: cfg.DeleteRetention}
	}))
	require.Equal(t, want, got)
	require.ErrorIs(t, c.AlterTopic(ctx, topic, func(cfg *stream.TopicConfig) { cfg.MinCompactionLag = 2 * time.Hour }),
		stream.ErrInvalidConfig, "min.compaction.lag.ms over max.compaction.lag.ms")
}

func (s *suite) deleteTopic(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	topic := createTopic(t, ctx, c, 2)
	publishSpread(t, ctx, c, topic, 2, 3, "old")

	require.NoError(t, c.DeleteTopic(ctx, topic))
	require.ErrorIs(t, c.DeleteTopic(ctx, unique(t, "missing")), stream.ErrTopicNotFound)
	// A cluster deletes asynchronously: wait for the topic to be gone and
	// its name to be free again.
	require.Eventually(t, func() bool {
		_, err := c.ReadPartition(ctx, topic, 0, stream.OffsetEarliest)
		return errors.Is(err, stream.ErrTopicNotFound)
	}, Timeout, 10*time.Millisecond, "ReadPartition of a deleted topic fails with ErrTopicNotFound")
	require.Eventually(t, func() bool {
		return c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: 1}) == nil
	}, Timeout, 10*time.Millisecond, "a deleted topic's name can be used again")

	r := &stream.Record{Topic: topic, Value: []byte("new")}
	require.NoError(t, c.Publish(ctx, r))
	require.Equal(t, int64(0), r.Offset, "a re-created topic starts at offset 0")
	got := readAll(t, ctx, c, topic, 0, stream.OffsetEarliest)
	require.Len(t, got, 1)
	require.Equal(t, "new", string(got[0].Value))
}

// ---------------------------------------------------------------------------
// Consumer groups.

// event is a rebalance callback as a member saw it.
type event struct {
	member string
	kind   string // assigned, revoked, lost
	parts  []stream.TopicPartition
}

type eventLog struct {
	mu     sync.Mutex
	events []event
}

func (l *eventLog) add(member, kind string, parts []stream.TopicPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event{member, kind, slices.Clone(parts)})
}

func (l *eventLog) snapshot() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// member is a group member polling on its own goroutine, as an application's
// consumer loop would.
type member struct {
	t    *testing.T
	name string
	gc   stream.GroupConsumer

	stop    chan struct{}
	stopped chan struct{}

	mu      sync.Mutex
	assign  []stream.TopicPartition // after the latest Poll, from Assignment
	records []*stream.Record
}

// startMember subscribes a member that commits its positions in OnRevoked
// and logs its callbacks, and starts its poll loop.
func startMember(t *testing.T, ctx context.Context, c stream.Client, group, topic, name string, bal stream.Balancer, log *eventLog) *member {
	t.Helper()
	m := &member{t: t, name: name, stop: make(chan struct{}), stopped: make(chan struct{})}
	opts := &stream.GroupOptions{
		Reset: stream.ResetEarliest, Balancer: bal, MaxPollRecords: 7,
		OnAssigned: func(parts []stream.TopicPartition) { log.add(name, "assigned", parts) },
		OnRevoked: func(parts []stream.TopicPartition) {
			log.add(name, "revoked", parts)
			if err := m.gc.Commit(ctx); err != nil {
				t.Errorf("%s: Commit in OnRevoked(%v): %v", name, parts, err)
			}
		},
		OnLost: func(parts []stream.TopicPartition) { log.add(name, "lost", parts) },
	}
	gc, err := c.Subscribe(group, []string{topic}, opts)
	require.NoError(t, err)
	m.gc = gc
	go m.loop(ctx)
	t.Cleanup(func() { m.close() })
	return m
}

func (m *member) loop(ctx context.Context) {
	defer close(m.stopped)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, pollSlice)
		recs, err := m.gc.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() == nil {
				m.t.Errorf("%s: Poll: %v", m.name, err)
			}
			return
		}
		assign := m.gc.Assignment()
		m.mu.Lock()
		m.assign = assign
		for _, r := range recs {
			m.records = append(m.records, r.Clone())
		}
		m.mu.Unlock()
	}
}

// close stops the poll loop, then closes the member on this goroutine.
func (m *member) close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	<-m.stopped
	if err := m.gc.Close(); err != nil {
		m.t.Errorf("%s: Close: %v", m.name, err)
	}
}

func (m *member) assignment() []stream.TopicPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assign)
}

func (m *member) polled() []*stream.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.records)
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, Timeout, 5*time.Millisecond, "waiting for: %s", what)
}

// groupSplitHandOver: one member takes every partition; a second joins and
// the partitions split between them; the first leaves and the second takes
// everything. Records published along the way are each read exactly once,
// which holds only if every hand-over starts from the commit the old owner
// made in OnRevoked.
func (s *suite) groupSplitHandOver(t *testing.T, bal stream.Balancer) {
	ctx := testContext(t)
	c := s.manualClient(t)
	const parts = 4
	topic := createTopic(t, ctx, c, parts)
	group := unique(t, "g")
	log := &eventLog{}

	publishSpread(t, ctx, c, topic, parts, 5, "one")
	a := startMember(t, ctx, c, group, topic, "A", bal, log)
	waitFor(t, "A owns all partitions and read the first 20 records", func() bool {
		return len(a.assignment()) == parts && a.count() == 20
	})

	joined := len(log.snapshot())
	b := startMember(t, ctx, c, group, topic, "B", bal, log)
	waitFor(t, "A and B hold two partitions each", func() bool {
		aa, ba := a.assignment(), b.assignment()
		return len(aa) == 2 && len(ba) == 2 && !slices.ContainsFunc(aa, func(tp stream.TopicPartition) bool {
			return slices.Contains(ba, tp)
		})
	})
	publishSpread(t, ctx, c, topic, parts, 5, "two")
	waitFor(t, "A and B read the next 20 records", func() bool { return a.count()+b.count() == 40 })
	require.NotEmpty(t, b.polled(), "B read records from its partitions")

	// The first revocation A saw after B joined: cooperative-sticky gives up
	// only the partitions that move, the eager balancers everything.
	var firstRevoke []stream.TopicPartition
	for _, e := range log.snapshot()[joined:] {
		if e.member == "A" && e.kind == "revoked" {
			firstRevoke = e.parts
			break
		}
	}
	if bal.Name() == "cooperative-sticky" {
		require.Len(t, firstRevoke, 2, "cooperative: only the partitions that move are revoked")
	} else {
		require.Len(t, firstRevoke, parts, "eager: everything is revoked")
	}

	a.close()
	waitFor(t, "B owns all partitions after A left", func() bool { return len(b.assignment()) == parts })
	publishSpread(t, ctx, c, topic, parts, 2, "three")
	waitFor(t, "B read the last 8 records", func() bool { return a.count()+b.count() == 48 })
	b.close()

	// Every record read exactly once, each member in offset order per partition.
	seen := map[stream.TopicPartition]map[int64]string{}
	for _, m := range []*member{a, b} {
		last := map[stream.TopicPartition]int64{}
		for _, r := range m.polled() {
			tp := stream.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if prev, ok := last[tp]; ok {
				require.Greater(t, r.Offset, prev, "%s read %s out of order", m.name, tp)
			}
			last[tp] = r.Offset
			if seen[tp] == nil {
				seen[tp] = map[int64]string{}
			}
			if by, dup := seen[tp][r.Offset]; dup {
				t.Fatalf("%s offset %d read twice (by %s and %s): a hand-over did not start from the commit made in OnRevoked", tp, r.Offset, by, m.name)
			}
			seen[tp][r.Offset] = m.name
		}
	}
	for p := range int32(parts) {
		tp := stream.TopicPartition{Topic: topic, Partition: p}
		require.Len(t, seen[tp], 12, "%s: every record read", tp)
	}

	// Replaying the callbacks, a partition never has two owners: OnRevoked
	// on the old owner comes before OnAssigned on the new one.
	owner := map[stream.TopicPartition]string{}
	for i, e := range log.snapshot() {
		for _, tp := range e.parts {
			switch e.kind {
			case "assigned":
				if o := owner[tp]; o != "" && o != e.member {
					t.Fatalf("event %d: %s assigned to %s while %s still owned it (events: %+v)", i, tp, e.member, o, log.snapshot())
				}
				owner[tp] = e.member
			case "revoked", "lost":
				if owner[tp] == e.member {
					owner[tp] = ""
				}
			}
		}
	}
}

func (s *suite) commitResume(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	tp := stream.TopicPartition{Topic: topic, Partition: 0}
	group := unique(t, "g")
	publishSpread(t, ctx, c, topic, 1, 10, "r")

	m1, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest, MaxPollRecords: 3})
	require.NoError(t, err)
	got := pollUntil(t, ctx, m1, atLeast(4))
	require.Equal(t, int64(0), got[0].Offset)
	require.Equal(t, []stream.TopicPartition{tp}, m1.Assignment())
	require.NoError(t, m1.CommitOffsets(ctx, map[stream.TopicPartition]int64{tp: 4}))
	committed, err := m1.Committed(ctx, tp)
	require.NoError(t, err)
	require.Equal(t, map[stream.TopicPartition]int64{tp: 4}, committed, "the committed offset is the next to read")
	require.ErrorIs(t, m1.CommitOffsets(ctx, map[stream.TopicPartition]int64{{Topic: topic, Partition: 7}: 1}), stream.ErrNotAssigned)
	require.NoError(t, m1.Close())

	// A new member resumes at the commit, not at the reset policy.
	m2, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetLatest})
	require.NoError(t, err)
	got = pollUntil(t, ctx, m2, untilOffset(9))
	require.Equal(t, seqOffsets(4, 9), offsets(got))
	require.NoError(t, m2.Commit(ctx))
	committed, err = m2.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, map[stream.TopicPartition]int64{tp: 10}, committed, "Commit commits the position after the last record polled")
	require.NoError(t, m2.Close())

	publishSpread(t, ctx, c, topic, 1, 2, "s")
	m3, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer m3.Close()
	got = pollUntil(t, ctx, m3, untilOffset(11))
	require.Equal(t, []int64{10, 11}, offsets(got))

	// Another group has its own offsets.
	other, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer other.Close()
	committed, err = other.Committed(ctx)
	require.NoError(t, err)
	require.Empty(t, committed)
	got = pollUntil(t, ctx, other, untilOffset(11))
	require.Equal(t, seqOffsets(0, 11), offsets(got))
}

func (s *suite) autoCommitOnClose(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	tp := stream.TopicPartition{Topic: topic, Partition: 0}
	group := unique(t, "g")
	publishSpread(t, ctx, c, topic, 1, 6, "r")

	m1, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest, AutoCommit: true, MaxPollRecords: 2})
	require.NoError(t, err)
	got := pollUntil(t, ctx, m1, atLeast(1))
	next := got[len(got)-1].Offset + 1
	require.NoError(t, m1.Close(), "Close commits what Poll returned")

	m2, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetNone})
	require.NoError(t, err)
	defer m2.Close()
	committed, err := m2.Committed(ctx, tp)
	require.NoError(t, err)
	require.Equal(t, map[stream.TopicPartition]int64{tp: next}, committed)
	got = pollUntil(t, ctx, m2, untilOffset(5))
	require.Equal(t, seqOffsets(next, 5), offsets(got))
}

func (s *suite) resetEarliest(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	topic := createTopic(t, ctx, c, 2)
	publishSpread(t, ctx, c, topic, 2, 3, "r")
	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer gc.Close()
	got := pollUntil(t, ctx, gc, atLeast(6))
	require.Len(t, got, 6)
	byPart := map[int32][]int64{}
	for _, r := range got {
		byPart[r.Partition] = append(byPart[r.Partition], r.Offset)
	}
	require.Equal(t, map[int32][]int64{0: {0, 1, 2}, 1: {0, 1, 2}}, byPart)
}

// resetLatest: a new group with ResetLatest never sees what was published
// before it joined. When exactly "latest" is resolved differs by backend,
// so the test publishes probes until one arrives and checks that nothing
// older came first.
func (s *suite) resetLatest(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	publishSpread(t, ctx, c, topic, 1, 5, "old")
	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetLatest})
	require.NoError(t, err)
	defer gc.Close()
	for i := 0; ; i++ {
		require.NoError(t, ctx.Err(), "no probe arrived")
		require.NoError(t, c.Publish(ctx, &stream.Record{Topic: topic, Value: fmt.Appendf(nil, "probe-%d", i)}))
		pctx, cancel := context.WithTimeout(ctx, 5*pollSlice)
		recs, err := gc.Poll(pctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		require.NoError(t, err)
		if len(recs) == 0 {
			continue
		}
		require.GreaterOrEqual(t, recs[0].Offset, int64(5), "ResetLatest returned a record published before the group joined: %q", recs[0].Value)
		require.True(t, strings.HasPrefix(string(recs[0].Value), "probe-"))
		return
	}
}

func (s *suite) resetNone(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	tp := stream.TopicPartition{Topic: topic, Partition: 0}
	group := unique(t, "g")
	publishSpread(t, ctx, c, topic, 1, 5, "r")

	gc, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetNone})
	require.NoError(t, err)
	recs, err := gc.Poll(ctx)
	require.ErrorIs(t, err, stream.ErrNoCommittedOffset, "ResetNone without a commit fails Poll (got %d records)", len(recs))
	_, err = gc.Poll(ctx)
	require.ErrorIs(t, err, stream.ErrNoCommittedOffset, "and keeps failing until the position is set")

	// A Seek sets the position.
	require.Equal(t, []stream.TopicPartition{tp}, gc.Assignment())
	require.NoError(t, gc.Seek(tp, 2))
	got := pollUntil(t, ctx, gc, untilOffset(4))
	require.Equal(t, []int64{2, 3, 4}, offsets(got))
	require.NoError(t, gc.CommitOffsets(ctx, map[stream.TopicPartition]int64{tp: 3}))
	require.NoError(t, gc.Close())

	// With a commit, ResetNone resumes there.
	gc, err = c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetNone})
	require.NoError(t, err)
	defer gc.Close()
	got = pollUntil(t, ctx, gc, untilOffset(4))
	require.Equal(t, []int64{3, 4}, offsets(got))
}

func (s *suite) seek(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	topic := createTopic(t, ctx, c, 2)
	tp := stream.TopicPartition{Topic: topic, Partition: 0}
	group := unique(t, "g")
	publishSpread(t, ctx, c, topic, 2, 10, "r")

	gc, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	defer gc.Close()
	got := pollUntil(t, ctx, gc, atLeast(20))
	require.Len(t, got, 20)

	only := func(p int32, upTo int64) func([]*stream.Record) bool {
		return func(all []*stream.Record) bool {
			return len(all) > 0 && all[len(all)-1].Partition == p && all[len(all)-1].Offset >= upTo
		}
	}
	require.NoError(t, gc.Seek(tp, 3))
	got = pollUntil(t, ctx, gc, only(0, 9))
	require.Equal(t, seqOffsets(3, 9), offsets(got), "Seek rewinds; the other partition, at its end, adds nothing")

	require.NoError(t, gc.Seek(tp, 8))
	got = pollUntil(t, ctx, gc, only(0, 9))
	require.Equal(t, []int64{8, 9}, offsets(got))

	// Commit commits the position a Seek set.
	require.NoError(t, gc.Seek(tp, 5))
	require.NoError(t, gc.Commit(ctx))
	committed, err := gc.Committed(ctx, tp)
	require.NoError(t, err)
	require.Equal(t, int64(5), committed[tp])

	require.ErrorIs(t, gc.Seek(stream.TopicPartition{Topic: topic, Partition: 9}, 0), stream.ErrNotAssigned)
	require.ErrorIs(t, gc.Seek(stream.TopicPartition{Topic: unique(t, "other"), Partition: 0}, 0), stream.ErrNotAssigned)
}

// seekInOnAssigned: a Seek made in OnAssigned decides where the member starts.
func (s *suite) seekInOnAssigned(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	publishSpread(t, ctx, c, topic, 1, 10, "r")

	var gc stream.GroupConsumer
	var seekErr error
	opts := &stream.GroupOptions{Reset: stream.ResetEarliest, OnAssigned: func(parts []stream.TopicPartition) {
		for _, tp := range parts {
			if err := gc.Seek(tp, 7); err != nil {
				seekErr = err
			}
		}
	}}
	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, opts)
	require.NoError(t, err)
	defer gc.Close()
	got := pollUntil(t, ctx, gc, untilOffset(9))
	require.NoError(t, seekErr)
	require.Equal(t, []int64{7, 8, 9}, offsets(got))
}

func (s *suite) closeTest(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	publishSpread(t, ctx, c, topic, 1, 3, "r")

	// A closed member.
	gc, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	pollUntil(t, ctx, gc, atLeast(1))
	require.NoError(t, gc.Close())
	require.NoError(t, gc.Close(), "Close twice")
	_, err = gc.Poll(ctx)
	require.ErrorIs(t, err, stream.ErrClosed)
	require.ErrorIs(t, gc.Commit(ctx), stream.ErrClosed)

	// A closed reader.
	rd, err := c.ReadPartition(ctx, topic, 0, stream.OffsetEarliest)
	require.NoError(t, err)
	require.NoError(t, rd.Close())
	_, err = rd.Next(ctx)
	require.ErrorIs(t, err, stream.ErrClosed)

	// A closed client, and what it made.
	open, err := c.Subscribe(unique(t, "g"), []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	require.NoError(t, err)
	pollUntil(t, ctx, open, atLeast(1))
	require.NoError(t, c.Close())
	_ = c.Close() // twice: no panic, no hang
	_, err = open.Poll(ctx)
	require.ErrorIs(t, err, stream.ErrClosed, "a member's Poll after its client closed")
	_ = open.Close()

	require.ErrorIs(t, c.Publish(ctx, &stream.Record{Topic: topic, Value: []byte("x")}), stream.ErrClosed)
	require.ErrorIs(t, c.CreateTopic(ctx, unique(t, "t"), stream.TopicConfig{}), stream.ErrClosed)
	_, err = c.ReadPartition(ctx, topic, 0, stream.OffsetEarliest)
	require.ErrorIs(t, err, stream.ErrClosed)
	_, err = c.Subscribe(unique(t, "g"), []string{topic}, nil)
	require.ErrorIs(t, err, stream.ErrClosed)
	var asyncErr error
	c.PublishAsync(ctx, &stream.Record{Topic: topic, Value: []byte("x")}, func(_ *stream.Record, err error) { asyncErr = err })
	require.ErrorIs(t, asyncErr, stream.ErrClosed, "PublishAsync after Close calls back at once")
}
