package stream

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/log"
)

// tableRec is a keyed record for partition p; a nil value is a tombstone.
func tableRec(topic string, p int32, key string, value []byte) *Record {
	return &Record{Topic: topic, Partition: p, Key: []byte(key), Value: value}
}

// openTable opens a table and waits until it is ready.
func openTable(t testing.TB, b *Broker, topic string, opts *TableOptions) *Table {
	t.Helper()
	tb, err := b.OpenTable(topic, opts)
	require.NoError(t, err)
	t.Cleanup(func() { tb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tb.WaitReady(ctx))
	return tb
}

// tableKeys lists what an iteration yields, checking each key is its
// entry's.
func tableKeys(t *testing.T, it func(func([]byte, TableEntry) bool)) []string {
	t.Helper()
	var out []string
	for k, e := range it {
		require.Equal(t, k, e.Key)
		out = append(out, string(k))
	}
	return out
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A table holds the latest record of every key over all partitions, from
// the log at open and then from new appends; tombstones delete, records
// without a key are ignored; iteration is ordered by key bytes.
func TestTableGetAndIterate(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("cfg", TopicConfig{Partitions: 2}))
	hdr := &Record{Topic: "cfg", Partition: 1, Key: []byte("b"), Value: []byte("B1"),
		Headers: []Header{{Key: "h", Value: []byte("v")}, {Key: "nil"}}}
	require.NoError(t, b.Publish(ctx,
		tableRec("cfg", 0, "a", []byte("A1")),
		tableRec("cfg", 0, "c", []byte("C1")),
		tableRec("cfg", 0, "a", []byte("A2")),
		tableRec("cfg", 0, "", []byte("empty key")),
		&Record{Topic: "cfg", Partition: 0, Value: []byte("no key")},
		tableRec("cfg", 0, "c", nil), // deletes c
		tableRec("cfg", 0, "gone", nil),
	))
	require.NoError(t, b.Publish(ctx, hdr, tableRec("cfg", 1, "d", []byte{})))

	tb := openTable(t, b, "cfg", nil)
	require.Equal(t, "cfg", tb.Topic())
	require.Equal(t, 4, tb.Len())
	e, ok := tb.Get([]byte("a"))
	require.True(t, ok)
	require.Equal(t, "A2", string(e.Value))
	require.Equal(t, int64(2), e.Offset)
	require.Equal(t, int32(0), e.Partition)
	_, ok = tb.Get([]byte("c"))
	require.False(t, ok, "a tombstone deletes")
	_, ok = tb.Get([]byte("gone"))
	require.False(t, ok)
	e, ok = tb.Get([]byte{})
	require.True(t, ok, "an empty key is a key")
	require.Equal(t, "empty key", string(e.Value))
	e, ok = tb.Get([]byte("b"))
	require.True(t, ok)
	require.Equal(t, hdr.Offset, e.Offset)
	require.Equal(t, int32(1), e.Partition)
	require.Equal(t, hdr.Timestamp.UnixMilli(), e.Timestamp.UnixMilli())
	require.Equal(t, []Header{{Key: "h", Value: []byte("v")}, {Key: "nil"}}, e.Headers)
	require.Nil(t, e.Headers[1].Value, "a nil header value stays nil")
	e, ok = tb.Get([]byte("d"))
	require.True(t, ok)
	require.NotNil(t, e.Value, "an empty value is a value, not a tombstone")
	require.Empty(t, e.Value)

	require.Equal(t, []string{"", "a", "b", "d"}, tableKeys(t, tb.All()))
	require.Equal(t, []string{"a", "b"}, tableKeys(t, tb.Range([]byte("a"), []byte("c"))))
	require.Equal(t, []string{"b", "d"}, tableKeys(t, tb.Range([]byte("aa"), nil)))
	require.Equal(t, []string{"", "a"}, tableKeys(t, tb.Range(nil, []byte("b"))))
	require.Empty(t, tableKeys(t, tb.Range([]byte("x"), nil)))
	require.Equal(t, []string{"b"}, tableKeys(t, tb.Prefix([]byte("b"))))
	require.Equal(t, []string{"", "a", "b", "d"}, tableKeys(t, tb.Prefix(nil)))
	for range tb.All() {
		break // stopping early is fine
	}

	// It follows new records.
	add := tableRec("cfg", 1, "aa", []byte("AA"))
	del := tableRec("cfg", 0, "a", nil)
	require.NoError(t, b.Publish(ctx, add, del))
	require.NoError(t, tb.WaitApplied(ctx, del.Partition, del.Offset))
	require.NoError(t, tb.WaitApplied(ctx, add.Partition, add.Offset))
	require.Equal(t, []string{"", "aa", "b", "d"}, tableKeys(t, tb.All()))
	require.Zero(t, tb.Lag())
	require.Equal(t, []TablePosition{{Partition: 0, Position: 8, End: 8}, {Partition: 1, Position: 3, End: 3}}, tb.Positions())
	require.NoError(t, tb.Err())
}

// prefixEnd is the first key after every key with the prefix.
func TestTablePrefixEnd(t *testing.T) {
	require.Equal(t, []byte("ac"), prefixEnd([]byte("ab")))
	require.Equal(t, []byte("b"), prefixEnd([]byte("a\xff\xff")))
	require.Nil(t, prefixEnd([]byte("\xff")))
	require.Nil(t, prefixEnd(nil))
}

// An iteration runs over a snapshot: records applied while it runs are not
// seen, and a snapshot built from the previous one plus the changed keys
// equals one built whole.
func TestTableSnapshot(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("s", TopicConfig{}))
	for i := range 10 {
		require.NoError(t, b.Publish(ctx, tableRec("s", 0, fmt.Sprintf("k%d", i), []byte("v"))))
	}
	tb := openTable(t, b, "s", nil)
	var seen []string
	for k := range tb.All() {
		if len(seen) == 0 {
			r := tableRec("s", 0, "k05", []byte("new"))
			require.NoError(t, b.Publish(ctx, r, tableRec("s", 0, "k9", nil)))
			require.NoError(t, tb.WaitApplied(ctx, 0, r.Offset+1))
		}
		seen = append(seen, string(k))
	}
	require.Equal(t, []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}, seen)
	require.Equal(t, []string{"k0", "k05", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"}, tableKeys(t, tb.All()))
	e, ok := tb.Get([]byte("k05"))
	require.True(t, ok)
	require.Equal(t, "new", string(e.Value))

	// Incremental rebuilds: change a few keys at a time, iterating between.
	for i := range 20 {
		r := tableRec("s", 0, fmt.Sprintf("k%d", i%13), []byte(fmt.Sprint(i)))
		if i%3 == 0 {
			r.Value = nil
		}
		require.NoError(t, b.Publish(ctx, r))
		require.NoError(t, tb.WaitApplied(ctx, 0, r.Offset))
		var want []string
		tb.mu.RLock()
		for k := range tb.m {
			want = append(want, k)
		}
		tb.mu.RUnlock()
		slices.Sort(want)
		require.Equal(t, want, tableKeys(t, tb.All()))
		for k, e := range tb.All() {
			g, ok := tb.Get(k)
			require.True(t, ok)
			require.Equal(t, g, e)
		}
	}
}

// WaitChange returns when a key's latest record differs from the one the
// caller has: set, replaced, deleted; at once if it differs already.
func TestTableWaitChange(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("w", TopicConfig{Partitions: 2}))
	tb := openTable(t, b, "w", nil)

	type result struct {
		e   TableEntry
		ok  bool
		err error
	}
	wait := func(key string, seen int64) chan result {
		ch := make(chan result, 1)
		go func() {
			e, ok, err := tb.WaitChange(ctx, []byte(key), seen)
			ch <- result{e, ok, err}
		}()
		return ch
	}
	// parked waits until n waiters wait on key, so that the change comes
	// after they looked.
	parked := func(key string, n int) {
		require.Eventually(t, func() bool {
			tb.mu.RLock()
			defer tb.mu.RUnlock()
			w := tb.waits[key]
			return w != nil && w.n == n
		}, 10*time.Second, time.Millisecond)
	}

	// Absent: wait for a set. Two waiters share the key's bell.
	w1, w2 := wait("k", -1), wait("k", -1)
	parked("k", 2)
	set := tableRec("w", 1, "k", []byte("v1"))
	require.NoError(t, b.Publish(ctx, set))
	for _, w := range []chan result{w1, w2} {
		r := <-w
		require.NoError(t, r.err)
		require.True(t, r.ok)
		require.Equal(t, "v1", string(r.e.Value))
		require.Equal(t, set.Offset, r.e.Offset)
	}

	// Present: a record of another key does not wake it; a new value does.
	w1 = wait("k", set.Offset)
	parked("k", 1)
	require.NoError(t, b.Publish(ctx, tableRec("w", 1, "other", []byte("x"))))
	upd := tableRec("w", 1, "k", []byte("v2"))
	require.NoError(t, b.Publish(ctx, upd))
	r := <-w1
	require.NoError(t, r.err)
	require.Equal(t, "v2", string(r.e.Value))

	// A stale offset returns at once.
	e, ok, err := tb.WaitChange(ctx, []byte("k"), set.Offset)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, upd.Offset, e.Offset)

	// A delete is a change.
	w1 = wait("k", upd.Offset)
	parked("k", 1)
	require.NoError(t, b.Publish(ctx, tableRec("w", 1, "k", nil)))
	r = <-w1
	require.NoError(t, r.err)
	require.False(t, r.ok)
	// Having seen a value that is now deleted returns at once too.
	_, ok, err = tb.WaitChange(ctx, []byte("k"), upd.Offset)
	require.NoError(t, err)
	require.False(t, ok)

	// A cancelled wait leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	w1 = make(chan result, 1)
	go func() {
		e, ok, err := tb.WaitChange(cctx, []byte("k"), -1)
		w1 <- result{e, ok, err}
	}()
	parked("k", 1)
	cancel()
	require.ErrorIs(t, (<-w1).err, context.Canceled)
	tb.mu.RLock()
	require.Empty(t, tb.waits)
	tb.mu.RUnlock()
}

// Under ReadCommitted a table applies committed transactions only, and an
// open one holds back what follows it; ReadUncommitted applies everything.
// A trailing commit marker does not keep WaitReady waiting.
func TestTableReadCommitted(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("tx", TopicConfig{}))
	p, err := b.NewTxProducer("tx-1", nil)
	require.NoError(t, err)
	defer p.Close()
	run := func(commit bool, recs ...*Record) {
		tx, err := p.Begin()
		require.NoError(t, err)
		require.NoError(t, tx.Publish(ctx, recs...))
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Abort())
		}
	}
	run(true, tableRec("tx", 0, "a", []byte("A1")), tableRec("tx", 0, "b", []byte("B1")))
	run(false, tableRec("tx", 0, "a", []byte("aborted")), tableRec("tx", 0, "c", []byte("aborted")))
	run(true, tableRec("tx", 0, "b", nil))

	committed := openTable(t, b, "tx", &TableOptions{Isolation: ReadCommitted})
	uncommitted := openTable(t, b, "tx", nil)
	require.Equal(t, []string{"a"}, tableKeys(t, committed.All()))
	e, _ := committed.Get([]byte("a"))
	require.Equal(t, "A1", string(e.Value))
	require.Equal(t, []string{"a", "c"}, tableKeys(t, uncommitted.All()))
	e, _ = uncommitted.Get([]byte("a"))
	require.Equal(t, "aborted", string(e.Value))
	require.Zero(t, committed.Lag(), "the trailing marker is passed")

	// An open transaction holds back a later non-transactional record.
	tx, err := p.Begin()
	require.NoError(t, err)
	open := tableRec("tx", 0, "d", []byte("D"))
	require.NoError(t, tx.Publish(ctx, open))
	plain := tableRec("tx", 0, "e", []byte("E"))
	require.NoError(t, b.Publish(ctx, plain))
	require.NoError(t, uncommitted.WaitApplied(ctx, 0, plain.Offset))
	require.NoError(t, committed.WaitCaughtUp(ctx))
	_, ok := committed.Get([]byte("e"))
	require.False(t, ok)
	require.Equal(t, open.Offset, committed.Positions()[0].Position)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, committed.WaitApplied(ctx, 0, plain.Offset))
	require.Equal(t, []string{"a", "d", "e"}, tableKeys(t, committed.All()))
}

// TableOptions.Partitions reads a share of the partitions; bad options and
// topics fail with typed errors.
func TestTableOptions(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("p", TopicConfig{Partitions: 3}))
	for i := range int32(3) {
		require.NoError(t, b.Publish(ctx, tableRec("p", i, fmt.Sprint("k", i), []byte("v"))))
	}
	tb := openTable(t, b, "p", &TableOptions{Partitions: []int32{2, 0}})
	require.Equal(t, []string{"k0", "k2"}, tableKeys(t, tb.All()))
	require.Equal(t, []TablePosition{{Partition: 2, Position: 1, End: 1}, {Partition: 0, Position: 1, End: 1}}, tb.Positions())
	require.ErrorIs(t, tb.WaitApplied(ctx, 1, 0), ErrInvalidPartition)

	_, err := b.OpenTable("nope", nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.OpenTable("p", &TableOptions{Partitions: []int32{3}})
	require.ErrorIs(t, err, ErrInvalidPartition)
	_, err = b.OpenTable("p", &TableOptions{Partitions: []int32{1, 1}})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.OpenTable("p", &TableOptions{Isolation: 7})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// After Close every wait fails with ErrClosed and Get reports nothing; a
// blocked wait is woken; the goroutine is gone. Broker.Close closes its
// tables.
func TestTableClose(t *testing.T) {
	ctx := tctx(t)
	before := runtime.NumGoroutine()
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("c", TopicConfig{}))
	require.NoError(t, b.Publish(ctx, tableRec("c", 0, "k", []byte("v"))))
	tb := openTable(t, b, "c", nil)

	waiting := make(chan error, 2)
	go func() {
		_, _, err := tb.WaitChange(ctx, []byte("k"), 0)
		waiting <- err
	}()
	go func() { waiting <- tb.WaitApplied(ctx, 0, 100) }()
	require.Eventually(t, func() bool {
		tb.mu.RLock()
		defer tb.mu.RUnlock()
		return tb.waits["k"] != nil
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, tb.Close())
	require.ErrorIs(t, <-waiting, ErrClosed)
	require.ErrorIs(t, <-waiting, ErrClosed)
	require.NoError(t, tb.Close(), "idempotent")

	_, ok := tb.Get([]byte("k"))
	require.False(t, ok)
	require.Zero(t, tb.Len())
	require.Empty(t, tableKeys(t, tb.All()))
	require.ErrorIs(t, tb.WaitReady(ctx), ErrClosed)
	require.ErrorIs(t, tb.WaitCaughtUp(ctx), ErrClosed)
	require.ErrorIs(t, tb.WaitApplied(ctx, 0, 0), ErrClosed)
	_, _, err := tb.WaitChange(ctx, []byte("k"), -1)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, tb.Err(), ErrClosed)

	// Broker.Close closes a table it opened, and a wait blocked on it.
	tb2 := openTable(t, b, "c", nil)
	go func() { waiting <- tb2.WaitApplied(ctx, 0, 100) }()
	require.NoError(t, b.Close())
	require.ErrorIs(t, <-waiting, ErrClosed)
	require.ErrorIs(t, tb2.Err(), ErrClosed)
	_, err = b.OpenTable("c", nil)
	require.ErrorIs(t, err, ErrClosed)
	if !assertEventually(func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: before %d, now %d\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

// A deleted topic stops the table with ErrTopicNotFound; it keeps
// answering Get with what it holds.
func TestTableTopicDeleted(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("d", TopicConfig{}))
	require.NoError(t, b.Publish(ctx, tableRec("d", 0, "k", []byte("v"))))
	tb := openTable(t, b, "d", nil)
	waiting := make(chan error, 1)
	go func() {
		_, _, err := tb.WaitChange(ctx, []byte("k"), 0)
		waiting <- err
	}()
	require.NoError(t, b.DeleteTopic("d"))
	require.ErrorIs(t, <-waiting, ErrTopicNotFound)
	require.ErrorIs(t, tb.Err(), ErrTopicNotFound)
	require.NoError(t, tb.WaitReady(ctx), "it got there before it stopped")
	require.ErrorIs(t, tb.WaitApplied(ctx, 0, 1), ErrTopicNotFound)
	e, ok := tb.Get([]byte("k"))
	require.True(t, ok)
	require.Equal(t, "v", string(e.Value))
}

// A table's entries are its own copies: they stay valid when the records
// they came from are deleted and their segments unmapped.
func TestTableEntriesOutliveTheLog(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("r", TopicConfig{SegmentBytes: 4096}))
	val := bytes.Repeat([]byte("x"), 1000)
	for i := range 20 {
		require.NoError(t, b.Publish(ctx, tableRec("r", 0, fmt.Sprint("k", i), val)))
	}
	tb := openTable(t, b, "r", nil)
	e, ok := tb.Get([]byte("k0"))
	require.True(t, ok)
	start, err := b.DeleteRecords("r", 0, 15)
	require.NoError(t, err)
	require.Equal(t, int64(15), start)
	require.NoError(t, b.Publish(ctx, tableRec("r", 0, "k0", nil)))
	require.NoError(t, tb.WaitCaughtUp(ctx))
	require.Equal(t, val, e.Value)
	require.Equal(t, 19, tb.Len())
}

// tableModel is the expected table: the latest published record per key.
type tableModel map[string]*Record

func (m tableModel) apply(r *Record) {
	if cur, ok := m[string(r.Key)]; ok && cur.Offset > r.Offset {
		return // keys stay in one partition: offsets order them
	}
	m[string(r.Key)] = r
}

// check compares the table with the model: Len, Get of every key ever
// written, All, and a Range.
func (m tableModel) check(t *testing.T, tb *Table, rng *rand.Rand, keys []string) {
	t.Helper()
	var live []string
	for k, r := range m {
		if r.Value != nil {
			live = append(live, k)
		}
	}
	slices.Sort(live)
	require.Equal(t, len(live), tb.Len())
	for _, k := range keys {
		e, ok := tb.Get([]byte(k))
		r := m[k]
		if r == nil || r.Value == nil {
			require.False(t, ok, "key %s", k)
			continue
		}
		require.True(t, ok, "key %s", k)
		require.Equal(t, r.Value, e.Value, "key %s", k)
		require.Equal(t, r.Offset, e.Offset, "key %s", k)
		require.Equal(t, r.Partition, e.Partition, "key %s", k)
		require.Equal(t, r.Timestamp.UnixMilli(), e.Timestamp.UnixMilli(), "key %s", k)
		require.Equal(t, len(r.Headers), len(e.Headers), "key %s", k)
		for i := range r.Headers {
			require.Equal(t, r.Headers[i].Key, e.Headers[i].Key)
			require.Equal(t, r.Headers[i].Value, e.Headers[i].Value)
		}
	}
	require.Equal(t, live, tableKeys(t, tb.All()))
	from, to := keys[rng.IntN(len(keys))], keys[rng.IntN(len(keys))]
	var want []string
	for _, k := range live {
		if k >= from && k < to {
			want = append(want, k)
		}
	}
	require.Equal(t, want, tableKeys(t, tb.Range([]byte(from), []byte(to))))
}

// compactTopic runs one forced cleaning round at now on every partition of
// topic, with compaction turned on in the logs' settings (a topic cannot
// ask for it yet; Broker.Compact, the public way, is not on main: switch to
// it when it is).
// It returns how many records the rounds removed.
func compactTopic(t *testing.T, b *Broker, topic string, now time.Time) int64 {
	t.Helper()
	tp, err := b.topic(topic)
	require.NoError(t, err)
	var removed int64
	for _, p := range tp.partitions() {
		if s := p.Settings(); !s.Compact {
			s.Compact, s.DeleteRetention = true, 24*time.Hour
			require.NoError(t, p.Reconfigure(s))
		}
		res, err := p.Clean(t.Context(), now, log.NewKeyMap(1<<20), true)
		require.NoError(t, err)
		removed += res.Removed
	}
	return removed
}

// The model test: several goroutines publish and delete random keys over
// three partitions while others read the table and the log is compacted
// under it; after each round the table, caught up, equals the map model;
// every other round the broker restarts, after compactions that also drop
// the tombstones (their delete retention passed), and the table is rebuilt
// from the log.
func TestTableModel(t *testing.T) {
	const (
		parts      = 3
		nkeys      = 64
		writers    = 4
		opsPerTurn = 150
		rounds     = 6
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 18))
	ctx := tctx(t)
	dir := t.TempDir()
	opts := &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}}
	b := openBroker(t, dir, opts)
	require.NoError(t, b.CreateTopic("m", TopicConfig{Partitions: parts, SegmentBytes: 4 << 10}))
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%02d", i)
	}
	partOf := func(k string) int32 { return int32(k[len(k)-1]) % parts }
	model := tableModel{}
	tb := openTable(t, b, "m", nil)
	var removed, dropped int64 // records compaction removed under the table, and at restarts

	for round := range rounds {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		clean := make(chan struct{}, 1) // rung by writers every few records
		for w := range writers {
			wrng := rand.New(rand.NewPCG(seed, uint64(round*writers+w)))
			wg.Go(func() {
				for i := range opsPerTurn {
					k := keys[wrng.IntN(nkeys)]
					r := tableRec("m", partOf(k), k, nil)
					if wrng.IntN(4) != 0 {
						r.Value = fmt.Appendf(nil, "%d/%d/%d%s", round, w, i, bytes.Repeat([]byte("v"), wrng.IntN(40)))
						if wrng.IntN(5) == 0 {
							r.Headers = []Header{{Key: "w", Value: fmt.Append(nil, w)}}
						}
					}
					if err := b.Publish(ctx, r); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					model.apply(r)
					mu.Unlock()
					if i%25 == 0 {
						select {
						case clean <- struct{}{}:
						default:
						}
					}
				}
			})
		}
		// Readers race the applier (for -race), and see only whole entries.
		var others sync.WaitGroup
		others.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for k, e := range tb.Prefix([]byte("key-1")) {
					if !bytes.Equal(k, e.Key) || e.Value == nil {
						t.Error("torn entry", string(k))
						return
					}
				}
				if e, ok := tb.Get([]byte(keys[3])); ok && string(e.Key) != keys[3] {
					t.Error("wrong entry", string(e.Key))
					return
				}
			}
		})
		// The cleaner rewrites segments under the table as it reads them.
		crng := rand.New(rand.NewPCG(seed, uint64(1000+round)))
		others.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-clean:
				}
				if crng.IntN(2) == 0 {
					removed += compactTopic(t, b, "m", time.Now())
				}
			}
		})
		wg.Wait()
		close(stop)
		others.Wait()
		require.False(t, t.Failed())

		require.NoError(t, tb.WaitCaughtUp(ctx))
		require.Zero(t, tb.Lag())
		model.check(t, tb, rng, keys)

		if round%2 == 1 {
			require.NoError(t, tb.Close())
			// Past the tombstones' delete retention: a second round drops
			// those the first one met.
			later := time.Now().Add(48 * time.Hour)
			dropped += compactTopic(t, b, "m", later)
			dropped += compactTopic(t, b, "m", later.Add(time.Minute))
			require.NoError(t, b.Close())
			b = openBroker(t, dir, opts)
			tb = openTable(t, b, "m", nil)
			model.check(t, tb, rng, keys)
		}
	}
	t.Logf("compaction removed %d records under the table, %d at restarts", removed, dropped)
	require.Positive(t, removed)
}

// A follower's table reads what the owner wrote and follows it as the
// follower's refreshes find more.
func TestTableOnFollower(t *testing.T) {
	ctx := tctx(t)
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	require.NoError(t, owner.CreateTopic("f", TopicConfig{Partitions: 2}))
	require.NoError(t, owner.Publish(ctx, tableRec("f", 0, "a", []byte("A1")), tableRec("f", 1, "b", []byte("B1"))))

	f := openFollower(t, dir, nil)
	tb := openTable(t, f, "f", nil)
	require.Equal(t, []string{"a", "b"}, tableKeys(t, tb.All()))

	r := tableRec("f", 0, "a", []byte("A2"))
	require.NoError(t, owner.Publish(ctx, r, tableRec("f", 1, "b", nil)))
	require.NoError(t, f.Refresh())
	e, ok, err := tb.WaitChange(ctx, []byte("a"), 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "A2", string(e.Value))
	require.NoError(t, tb.WaitCaughtUp(ctx))
	require.Equal(t, []string{"a"}, tableKeys(t, tb.All()))
}

// A table behind the log start (records deleted before it read them)
// skips to the new start and keeps what it had.
func TestTableSkipsToLogStart(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("s", TopicConfig{}))
	require.NoError(t, b.Publish(ctx, tableRec("s", 0, "k0", []byte("v"))))
	p, err := b.NewTxProducer("tx", nil)
	require.NoError(t, err)
	defer p.Close()
	tx, err := p.Begin()
	require.NoError(t, err)
	require.NoError(t, tx.Publish(ctx, tableRec("s", 0, "k1", []byte("v")))) // holds ReadCommitted at 1
	for _, k := range []string{"k2", "k3", "k4", "k5"} {
		require.NoError(t, b.Publish(ctx, tableRec("s", 0, k, []byte("v"))))
	}
	tb := openTable(t, b, "s", &TableOptions{Isolation: ReadCommitted})
	require.Equal(t, []TablePosition{{Partition: 0, Position: 1, End: 1}}, tb.Positions())

	_, err = b.DeleteRecords("s", 0, 4)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, tb.WaitCaughtUp(ctx))
	require.Equal(t, []string{"k0", "k4", "k5"}, tableKeys(t, tb.All()))
	require.NoError(t, tb.Err())
}

// Read-your-writes through iteration: after WaitApplied, Prefix must see
// the value, even while another goroutine builds a snapshot.
func TestTableIterationReadsYourWrites(t *testing.T) {
	ctx := tctx(t)
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1}))
	var recs []*Record
	for i := range 5000 {
		recs = append(recs, tableRec("t", 0, fmt.Sprintf("a%06d", i), []byte("x")))
	}
	require.NoError(t, b.Publish(ctx, recs...))
	tb := openTable(t, b, "t", nil)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for range tb.All() {
				break
			}
		}
	}()
	stale := 0
	for i := range 200 {
		r := tableRec("t", 0, "b", []byte(fmt.Sprint(i)))
		require.NoError(t, b.Publish(ctx, r))
		require.NoError(t, tb.WaitApplied(ctx, 0, r.Offset))
		e, ok := tb.Get([]byte("b"))
		require.True(t, ok)
		require.Equal(t, fmt.Sprint(i), string(e.Value))
		got := ""
		for _, e := range tb.Prefix([]byte("b")) {
			got = string(e.Value)
		}
		if got != fmt.Sprint(i) {
			stale++
		}
	}
	stop.Store(true)
	wg.Wait()
	require.Zero(t, stale, "iterations that missed an applied write")
}
