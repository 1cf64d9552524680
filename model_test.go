package stream

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

// The model-based test: random sequences of operations run against the
// engine and against a plain in-memory model of Kafka's semantics (per
// partition a list of records and a log start; per group committed offsets;
// one consumer member at a time, so it owns every partition of its topics
// and its positions and commits are predictable). After each operation the
// engine must agree with the model: topic offsets, every record of every
// partition, committed offsets and lag, the consumer's assignment and
// positions, and what Poll returns.
//
// Transactions (model_txn_test.go) join in: one transactional producer
// publishes in transactions, stages offsets of the group (CommitOffsets,
// or CommitConsumer for the member's positions), commits, aborts, is
// fenced by a new instance of its ID, or is left open by a restart or a
// crash (aborted by Close, or by Open's recovery). The model keeps each
// record's transaction and each marker's offset; reads are checked at both
// isolation levels, up to the high watermark and to the last stable
// offset, and the member may read ReadCommitted.
//
// Sequences are generated from seeds and replayed exactly. On a failure the
// sequence is shrunk (cut after the failing operation, then chunks dropped
// while it still fails) and the seed, the shrunk sequence and the error are
// reported.
//
//	EMBEDSTREAM_MODEL_SEED=n       first seed (default 1); seeds are n, n+1, ...
//	EMBEDSTREAM_MODEL_SEQUENCES=k  how many sequences (default 200)
//	EMBEDSTREAM_MODEL_OPS=m        operations per sequence (default 60)

const mdlGroup = "g"

// mdlMaxWait is the members' MaxWait: long, so that a Poll that waits for
// MinBytes with records ready shows.
const mdlMaxWait = 2 * time.Second

// mdlEnvInt reads a positive integer from the environment.
func mdlEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%s=%q", name, s)
	return n
}

func TestModelRandomSequences(t *testing.T) {
	first := mdlEnvInt(t, "EMBEDSTREAM_MODEL_SEED", 1)
	sequences := mdlEnvInt(t, "EMBEDSTREAM_MODEL_SEQUENCES", 200)
	nops := mdlEnvInt(t, "EMBEDSTREAM_MODEL_OPS", 60)
	if testing.Short() {
		sequences = min(sequences, 20)
	}
	var st mdlStats
	start := time.Now()
	for i := 0; i < sequences; i++ {
		seed := uint64(first + i)
		ops := mdlGenOps(seed, nops)
		at, err := mdlRun(t, seed, ops, &st)
		if err == nil {
			continue
		}
		t.Logf("seed %d failed at op %d: %v", seed, at, err)
		small, smallErr := mdlShrink(t, seed, ops, at)
		var b strings.Builder
		for _, o := range small {
			fmt.Fprintf(&b, "\n  %s", o)
		}
		require.Failf(t, "model mismatch",
			"seed %d (rerun: EMBEDSTREAM_MODEL_SEED=%d EMBEDSTREAM_MODEL_SEQUENCES=1)\noriginal: %d ops, failed at op %d: %v\nshrunk to %d ops:%s\nshrunk failure: %v",
			seed, seed, len(ops), at, err, len(small), b.String(), smallErr)
	}
	t.Logf("%d sequences of %d ops in %v: %d publishes (%d records), %d producer flushes, %d polls (%d records, %d empty), %d commits, %d seeks, %d restarts (%d crashes), %d retention runs (%d records dropped, %d more at rolls), %d rebalances observed",
		sequences, nops, time.Since(start).Round(time.Millisecond), st.publishes, st.records, st.flushes, st.polls, st.polled, st.emptyPolls,
		st.commits, st.seeks, st.restarts, st.crashes, st.retentions, st.dropped, st.rollDropped, st.rebalances)
	t.Logf("transactions: %d publishes, %d offset stagings, %d commits (%d refused and aborted), %d aborts, %d fenced, %d left open at a restart",
		st.txPublishes, st.txStages, st.txCommits, st.txRefused, st.txAborts, st.txFenced, st.txRestarted)
}

type mdlStats struct {
	publishes, records, flushes, polls, polled, emptyPolls, commits, seeks int
	restarts, crashes, retentions, dropped, rollDropped, rebalances        int
	txPublishes, txStages, txCommits, txRefused, txAborts, txFenced        int
	txRestarted                                                            int
}

// mdlShrink looks for a shorter sequence that still fails: it cuts after
// the failing operation, then drops chunks of decreasing size (delta
// debugging) within a budget of runs and time.
func mdlShrink(t *testing.T, seed uint64, ops []mdlOp, at int) ([]mdlOp, error) {
	cur := slices.Clone(ops[:at+1])
	var curErr error
	fails := func(cand []mdlOp) bool {
		_, err := mdlRun(t, seed, cand, &mdlStats{})
		if err != nil {
			curErr = err
		}
		return err != nil
	}
	if !fails(cur) {
		t.Logf("seed %d: the failure did not reproduce on replay (timing dependent?); reporting the prefix", seed)
		return cur, nil
	}
	deadline := time.Now().Add(60 * time.Second)
	runs := 0
	for chunk := len(cur) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(cur) && runs < 400 && time.Now().Before(deadline); {
			cand := slices.Concat(cur[:i], cur[i+chunk:])
			runs++
			if fails(cand) {
				cur = cand
				if chunk > len(cur)/2 {
					chunk = max(len(cur)/2, 1)
				}
				continue
			}
			i += chunk
		}
	}
	// Report the error of the final sequence.
	fails(cur)
	return cur, curErr
}

// ---- operations ----

type mdlKind int

const (
	mdlCreate mdlKind = iota
	mdlPublish
	mdlProduce
	mdlSubscribe
	mdlPoll
	mdlCommit
	mdlSeek
	mdlCloseConsumer
	mdlRestart
	mdlRetention
	mdlAddPartitions
	mdlOffsetForTime
	mdlTxPublish
	mdlTxStage
	mdlTxEnd
	mdlTxFence
)

// mdlRecSpec is a record to publish. Its placement is resolved against the
// topic when the operation runs, so any subsequence of operations is valid.
type mdlRecSpec struct {
	mode    int // 0 keyed, 1 keyless, 2 explicit partition (tbExplicitPartitioner)
	key     []byte
	part    int // explicit partition, modulo the partition count
	value   []byte
	headers []Header
	ts      int64 // explicit timestamp (ms); 0: none
}

// mdlOp is one operation. Selectors (topic, part, where) are taken modulo
// what exists when the operation runs.
type mdlOp struct {
	idx  int // position in the generated sequence
	kind mdlKind

	name       string // create
	partitions int    // create
	segBytes   int64  // create
	retBytes   int64  // create

	topic int // publish, produce, addPartitions, offsetForTime: topic selector
	recs  []mdlRecSpec

	linger     time.Duration // produce: used when the producer is made
	batchBytes int

	maxPoll    int            // subscribe
	autoCommit bool           // subscribe
	isolation  IsolationLevel // subscribe

	variant int // commit: 0 Commit, 1 CommitOffsets, 2 CommitOffsets negative; restart: 1 crash; txStage: 1 CommitConsumer; txEnd: 1 abort
	part    int // seek, commit, offsetForTime: partition selector
	where   int // seek: target kind; offsetForTime: timestamp selector
	frac    uint64
}

func (o mdlOp) String() string {
	var s string
	switch o.kind {
	case mdlCreate:
		s = fmt.Sprintf("create %s partitions=%d segment=%d retention=%d", o.name, o.partitions, o.segBytes, o.retBytes)
	case mdlPublish, mdlProduce, mdlTxPublish:
		what := "publish"
		if o.kind == mdlProduce {
			what = fmt.Sprintf("produce+flush (linger=%v batch=%d)", o.linger, o.batchBytes)
		}
		var rs []string
		for _, r := range o.recs {
			var d string
			switch r.mode {
			case 0:
				d = fmt.Sprintf("key=%q", r.key)
			case 1:
				d = "nokey"
			default:
				d = fmt.Sprintf("p#%d", r.part)
			}
			d += fmt.Sprintf(" %dB", len(r.value))
			if len(r.headers) > 0 {
				d += fmt.Sprintf(" h%d", len(r.headers))
			}
			if r.ts != 0 {
				d += fmt.Sprintf(" ts=%d", r.ts)
			}
			rs = append(rs, d)
		}
		s = fmt.Sprintf("%s topic#%d [%s]", what, o.topic, strings.Join(rs, ", "))
		if o.kind == mdlTxPublish {
			s = "tx" + s
		}
	case mdlSubscribe:
		s = fmt.Sprintf("subscribe maxPoll=%d autoCommit=%v %v", o.maxPoll, o.autoCommit, o.isolation)
	case mdlTxStage:
		s = fmt.Sprintf("tx.CommitOffsets part#%d", o.part)
		if o.variant == 1 {
			s = "tx.CommitConsumer"
		}
	case mdlTxEnd:
		s = "tx.Commit"
		if o.variant == 1 {
			s = "tx.Abort"
		}
	case mdlTxFence:
		s = "NewTxProducer (fences the last)"
	case mdlPoll:
		s = "poll"
	case mdlCommit:
		s = [...]string{"commit", "commitOffsets", "commitOffsets(negative)"}[o.variant] + fmt.Sprintf(" part#%d", o.part)
	case mdlSeek:
		s = fmt.Sprintf("seek part#%d where=%d frac=%d", o.part, o.where, o.frac%1000)
	case mdlCloseConsumer:
		s = "close consumer"
	case mdlRestart:
		s = "restart (Close, Open)"
		if o.variant == 1 {
			s = "crash, Open"
		}
	case mdlRetention:
		s = "retention"
	case mdlAddPartitions:
		s = fmt.Sprintf("addPartitions topic#%d", o.topic)
	case mdlOffsetForTime:
		s = fmt.Sprintf("offsetForTime topic#%d part#%d ts#%d", o.topic, o.part, o.where)
	}
	return fmt.Sprintf("#%d %s", o.idx, s)
}

const mdlClockBase = 1_700_000_000_000 // ms

func mdlGenOps(seed uint64, n int) []mdlOp {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f64656c))
	ops := make([]mdlOp, 0, n)
	for i := 0; i < n; i++ {
		ops = append(ops, mdlGenOp(rng, seed, i))
	}
	return ops
}

func mdlGenOp(rng *rand.Rand, seed uint64, i int) mdlOp {
	o := mdlOp{idx: i, topic: rng.IntN(8), part: rng.IntN(16), where: rng.IntN(16), frac: rng.Uint64()}
	weights := []struct {
		k mdlKind
		w int
	}{
		{mdlCreate, 5}, {mdlPublish, 24}, {mdlProduce, 9}, {mdlSubscribe, 8}, {mdlPoll, 20},
		{mdlCommit, 8}, {mdlSeek, 5}, {mdlCloseConsumer, 3}, {mdlRestart, 4}, {mdlRetention, 5},
		{mdlAddPartitions, 2}, {mdlOffsetForTime, 3},
		{mdlTxPublish, 10}, {mdlTxStage, 3}, {mdlTxEnd, 6}, {mdlTxFence, 1},
	}
	total := 0
	for _, w := range weights {
		total += w.w
	}
	r := rng.IntN(total)
	for _, w := range weights {
		if r < w.w {
			o.kind = w.k
			break
		}
		r -= w.w
	}
	if i == 0 {
		o.kind = mdlCreate
	}
	switch o.kind {
	case mdlCreate:
		o.name = "t" + strconv.Itoa(rng.IntN(3))
		o.partitions = 1 + rng.IntN(3)
		o.segBytes = int64(4096 * (1 + rng.IntN(3)))
		if rng.IntN(3) > 0 {
			o.retBytes = int64(4096 * (1 + rng.IntN(3)))
		}
	case mdlPublish, mdlProduce, mdlTxPublish:
		n := 1 + rng.IntN(5)
		for j := 0; j < n; j++ {
			o.recs = append(o.recs, mdlGenRec(rng, seed, i, j))
		}
		o.linger = time.Duration(rng.IntN(3)) * time.Millisecond
		o.batchBytes = 256 << rng.IntN(4)
	case mdlSubscribe:
		o.maxPoll = []int{1, 2, 3, 5, 500}[rng.IntN(5)]
		o.autoCommit = rng.IntN(2) == 0
		if rng.IntN(3) == 0 {
			o.isolation = ReadCommitted
		}
	case mdlTxStage:
		o.variant = rng.IntN(2)
	case mdlTxEnd:
		if rng.IntN(3) == 0 {
			o.variant = 1
		}
	case mdlCommit:
		o.variant = []int{0, 0, 0, 1, 1, 2}[rng.IntN(6)]
	case mdlRestart:
		if rng.IntN(3) == 0 {
			o.variant = 1
		}
	}
	return o
}

func mdlGenRec(rng *rand.Rand, seed uint64, op, j int) mdlRecSpec {
	r := mdlRecSpec{mode: []int{0, 0, 1, 1, 2}[rng.IntN(5)], part: rng.IntN(16)}
	if r.mode == 0 {
		keys := []string{"a", "b", "c", "d", "e", "f", ""}
		r.key = []byte(keys[rng.IntN(len(keys))]) // "" is an empty, non-nil key
	} else if r.mode == 2 && rng.IntN(2) == 0 {
		r.key = []byte("x" + strconv.Itoa(rng.IntN(4)))
	}
	pad := rng.IntN(400)
	if rng.IntN(8) == 0 {
		pad = 1000 + rng.IntN(1500)
	}
	r.value = []byte(fmt.Sprintf("s%d.o%d.r%d|%s", seed, op, j, strings.Repeat(string(rune('a'+(op+j)%26)), pad)))
	switch rng.IntN(16) {
	case 0:
		r.value = nil // a tombstone: Kafka's null, distinct from empty
	case 1:
		r.value = []byte{}
	}
	if rng.IntN(4) == 0 {
		r.headers = []Header{{Key: "h", Value: []byte("1")}, {Key: "h", Value: nil}}
		if rng.IntN(2) == 0 {
			r.headers = append(r.headers, Header{Key: "e", Value: []byte{}})
		}
	}
	if rng.IntN(4) == 0 {
		r.ts = mdlClockBase - 100_000 + int64(rng.IntN(200_000))
	}
	return r
}

// ---- the model ----

type mdlRec struct {
	key, value []byte
	headers    []Header
	ts         int64
	txn        int  // the transaction that wrote it (mdlModel.txns), 0 for none
	ctrl       bool // a transaction's marker: takes an offset, never read
}

type mdlPart struct {
	start int64
	recs  []mdlRec // recs[o] is offset o; those below start are gone
	// hw is the high watermark: len(recs), but under SyncAlways an open
	// transaction's records wait for its end (or another fsync).
	hw int64
	// openFirst is the first offset of the open transaction here, -1 if
	// it wrote none.
	openFirst int64
	// loose: a transaction ended here since the last append or retention
	// run, so retention as appended saw it open and may have kept what it
	// could now delete.
	loose bool
	txnal bool // holds a transaction's records (or held them)
}

// end is the high watermark: where reads end, and DescribeTopic's end.
func (p *mdlPart) end() int64 { return p.hw }

// next is the offset the next record gets.
func (p *mdlPart) next() int64 { return int64(len(p.recs)) }

type mdlTopic struct {
	name  string
	cfg   TopicConfig
	parts []*mdlPart
}

type mdlConsumer struct {
	c          *Consumer
	topics     []string
	maxPoll    int
	autoCommit bool
	assigned   []TopicPartition         // nil until an assignment is observed
	pos        map[TopicPartition]int64 // the engine's positions of assigned partitions
	rebalance  bool                     // partitions were added to a subscribed topic
	isolation  IsolationLevel
	gen        int // counts assignments observed: a transaction staged at one gen cannot commit at another
}

type mdlModel struct {
	topics    map[string]*mdlTopic
	committed map[TopicPartition]int64
	txns      map[int]mdlTxnState // by transaction number, from 1
	open      int                 // the open transaction's number, 0 if none
	// staged are the open transaction's offsets for the group; stagedBy
	// is the member (and gen) whose positions CommitConsumer staged.
	staged    map[TopicPartition]int64
	stagedBy  *mdlConsumer
	stagedGen int
	written   []TopicPartition // partitions the open transaction wrote
}

func (m *mdlModel) names() []string {
	var out []string
	for n := range m.topics {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (m *mdlModel) topicAt(sel int) *mdlTopic {
	names := m.names()
	if len(names) == 0 {
		return nil
	}
	return m.topics[names[sel%len(names)]]
}

func (m *mdlModel) part(tp TopicPartition) *mdlPart {
	return m.topics[tp.Topic].parts[tp.Partition]
}

// resume is where a newly assigned partition starts: the committed offset
// if it is inside the log, else the log start (ResetEarliest).
func (m *mdlModel) resume(tp TopicPartition) int64 {
	p := m.part(tp)
	if off, ok := m.committed[tp]; ok && off >= p.start && off <= p.end() {
		return off
	}
	return p.start
}

// effective is where a fetch at position pos really reads: out of range
// resets to the log start (ResetEarliest).
func (m *mdlModel) effective(tp TopicPartition, pos int64) int64 {
	p := m.part(tp)
	if pos < p.start || pos > p.end() {
		return p.start
	}
	return pos
}

// expected returns the partitions the single member must own.
func (m *mdlModel) expected(c *mdlConsumer) []TopicPartition {
	var out []TopicPartition
	for _, name := range c.topics {
		for i := range m.topics[name].parts {
			out = append(out, TopicPartition{Topic: name, Partition: int32(i)})
		}
	}
	slices.SortFunc(out, compareTopicPartitions)
	return out
}

// ---- running a sequence ----

type mdlRunner struct {
	t     *testing.T
	seed  uint64
	dir   string
	opts  Options
	clock atomic.Int64
	b     *Broker
	prod  *Producer
	cons  *mdlConsumer
	m     mdlModel
	st    *mdlStats
	txp   *TxProducer // the transactional producer, made by the first use
	tx    *Tx         // its open transaction
}

func (r *mdlRunner) now() time.Time { return time.UnixMilli(r.clock.Load()) }

// mdlRun replays ops on a fresh directory and returns the first mismatch
// and the index (in ops) of the operation that showed it.
func mdlRun(t *testing.T, seed uint64, ops []mdlOp, st *mdlStats) (at int, err error) {
	dir, derr := os.MkdirTemp(t.TempDir(), "model")
	if derr != nil {
		return 0, derr
	}
	defer os.RemoveAll(dir)
	r := &mdlRunner{t: t, seed: seed, dir: filepath.Join(dir, "data"), st: st,
		m: mdlModel{topics: map[string]*mdlTopic{}, committed: map[TopicPartition]int64{}, txns: map[int]mdlTxnState{}}}
	r.clock.Store(mdlClockBase)
	rng := rand.New(rand.NewPCG(seed, 1))
	r.opts = Options{Now: r.now, Partitioner: tbExplicitPartitioner{}}
	switch rng.IntN(20) {
	case 0, 1, 2:
		r.opts.Sync = SyncAlways
	case 3, 4, 5, 6, 7:
		r.opts.Sync, r.opts.SyncInterval = SyncInterval, 2*time.Millisecond
	default:
		r.opts.Sync = SyncNever
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
		r.cleanup()
	}()
	if r.b, err = Open(r.dir, &r.opts); err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	for i, o := range ops {
		at = i
		r.clock.Add(1)
		if err := r.apply(o); err != nil {
			return i, fmt.Errorf("%s (sync %v): %w", o, r.opts.Sync, err)
		}
		if err := r.check(); err != nil {
			return i, fmt.Errorf("after %s (sync %v): %w", o, r.opts.Sync, err)
		}
	}
	return 0, nil
}

func (r *mdlRunner) cleanup() {
	r.tx, r.txp = nil, nil // the broker's Close aborts
	if r.cons != nil {
		r.cons.c.Close()
		r.cons = nil
	}
	if r.prod != nil {
		r.prod.Close()
		r.prod = nil
	}
	if r.b != nil {
		r.b.Close()
		r.b = nil
	}
}

func (r *mdlRunner) apply(o mdlOp) error {
	ctx := context.Background()
	switch o.kind {
	case mdlCreate:
		return r.create(o)
	case mdlPublish:
		return r.publish(ctx, o)
	case mdlProduce:
		return r.produce(ctx, o)
	case mdlSubscribe:
		return r.subscribe(o)
	case mdlPoll:
		return r.poll()
	case mdlCommit:
		return r.commit(ctx, o)
	case mdlSeek:
		return r.seek(o)
	case mdlCloseConsumer:
		if r.cons == nil {
			return nil
		}
		if err := r.cons.c.Close(); err != nil {
			return fmt.Errorf("consumer close: %w", err)
		}
		r.consumerClosed()
		return nil
	case mdlRestart:
		return r.restart(o.variant == 1)
	case mdlRetention:
		return r.retention()
	case mdlAddPartitions:
		return r.addPartitions(o)
	case mdlOffsetForTime:
		return r.offsetForTime(o)
	case mdlTxPublish:
		return r.txPublish(ctx, o)
	case mdlTxStage:
		return r.txStage(o)
	case mdlTxEnd:
		return r.txEnd(ctx, o)
	case mdlTxFence:
		return r.txFence(ctx, o)
	}
	return fmt.Errorf("unknown op %d", o.kind)
}

func (r *mdlRunner) create(o mdlOp) error {
	cfg := TopicConfig{Partitions: o.partitions, SegmentBytes: o.segBytes, RetentionBytes: o.retBytes}
	err := r.b.CreateTopic(o.name, cfg)
	if _, ok := r.m.topics[o.name]; ok {
		if !errors.Is(err, ErrTopicExists) {
			return fmt.Errorf("create of an existing topic: %v, want ErrTopicExists", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	t := &mdlTopic{name: o.name, cfg: cfg.withDefaults()}
	for i := 0; i < o.partitions; i++ {
		t.parts = append(t.parts, &mdlPart{openFirst: -1})
	}
	r.m.topics[o.name] = t
	return nil
}

// records builds the records of a publish for topic t.
func (r *mdlRunner) records(t *mdlTopic, specs []mdlRecSpec) []*Record {
	var out []*Record
	for _, s := range specs {
		rec := &Record{Topic: t.name, Partition: AnyPartition, Key: s.key, Value: s.value, Headers: s.headers}
		if s.mode == 2 {
			rec.Partition = int32(s.part % len(t.parts))
		}
		if s.mode == 1 {
			rec.Key = nil
		}
		if s.ts != 0 {
			rec.Timestamp = time.UnixMilli(s.ts)
		}
		out = append(out, rec)
	}
	return out
}

// placed checks where the engine put a record and returns its partition.
func (r *mdlRunner) placed(t *mdlTopic, s mdlRecSpec, rec *Record) error {
	n := len(t.parts)
	switch {
	case rec.Partition < 0 || int(rec.Partition) >= n:
		return fmt.Errorf("record placed on partition %d of %d", rec.Partition, n)
	case s.mode == 2 && rec.Partition != int32(s.part%n):
		return fmt.Errorf("explicit partition %d ignored: got %d", s.part%n, rec.Partition)
	case s.mode == 0 && rec.Partition != int32(xxhash.Sum64(s.key)%uint64(n)):
		return fmt.Errorf("key %q placed on %d, hash says %d", s.key, rec.Partition, xxhash.Sum64(s.key)%uint64(n))
	}
	return nil
}

// appendAcked checks the offsets and timestamps the engine assigned to
// records acknowledged in order and adds them to the model. Within a
// partition, acknowledgement order must be offset order, from the end.
func (r *mdlRunner) appendAcked(t *mdlTopic, specs []mdlRecSpec, recs []*Record) error {
	return r.appendAckedTxn(t, specs, recs, 0)
}

// appendAckedTxn is appendAcked for records of transaction txn (0: none).
func (r *mdlRunner) appendAckedTxn(t *mdlTopic, specs []mdlRecSpec, recs []*Record, txn int) error {
	for i, rec := range recs {
		s := specs[i]
		if err := r.placed(t, s, rec); err != nil {
			return err
		}
		p := t.parts[rec.Partition]
		if rec.Offset != p.next() {
			return fmt.Errorf("record %d on partition %d got offset %d, want %d", i, rec.Partition, rec.Offset, p.next())
		}
		ts := s.ts
		if ts == 0 {
			ts = r.clock.Load()
		}
		if rec.Timestamp.UnixMilli() != ts {
			return fmt.Errorf("record %d timestamp %d, want %d", i, rec.Timestamp.UnixMilli(), ts)
		}
		key := s.key
		if s.mode == 1 {
			key = nil
		}
		p.txnal = p.txnal || txn != 0
		if txn != 0 && p.openFirst < 0 {
			p.openFirst = p.next()
			r.m.written = append(r.m.written, TopicPartition{Topic: t.name, Partition: rec.Partition})
		}
		p.recs = append(p.recs, mdlRec{key: key, value: s.value, headers: s.headers, ts: ts, txn: txn})
		p.loose = false
		if txn == 0 || r.opts.Sync != SyncAlways {
			// A publish waits for its records' fsync under SyncAlways,
			// which covers a transaction's before them; a transaction's
			// own wait for its end there.
			p.hw = p.next()
		}
		r.st.records++
	}
	return nil
}

func (r *mdlRunner) publish(ctx context.Context, o mdlOp) error {
	t := r.m.topicAt(o.topic)
	if t == nil {
		return nil
	}
	recs := r.records(t, o.recs)
	if err := r.b.Publish(ctx, recs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	r.st.publishes++
	// Keyless records of one call go to one partition together.
	keyless := int32(-1)
	for i, s := range o.recs {
		if s.mode != 1 {
			continue
		}
		if keyless >= 0 && recs[i].Partition != keyless {
			return fmt.Errorf("keyless records of one call split over partitions %d and %d", keyless, recs[i].Partition)
		}
		keyless = recs[i].Partition
	}
	// Records of one call to one partition are one batch at consecutive
	// offsets in argument order: acknowledgement order is argument order.
	if err := r.appendAcked(t, o.recs, recs); err != nil {
		return err
	}
	return r.rollRetention(t)
}

func (r *mdlRunner) produce(ctx context.Context, o mdlOp) error {
	t := r.m.topicAt(o.topic)
	if t == nil {
		return nil
	}
	if r.prod == nil {
		r.prod = mustProducer(r.b, &ProducerOptions{Linger: o.linger, BatchBytes: o.batchBytes, Partitioner: tbExplicitPartitioner{}})
	}
	recs := r.records(t, o.recs)
	var mu sync.Mutex
	var order []int // callbacks in the order they ran
	var errs []error
	for i, rec := range recs {
		r.prod.Publish(ctx, rec, func(_ *Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, i)
			if err != nil {
				errs = append(errs, fmt.Errorf("record %d: %w", i, err))
			}
		})
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.prod.Flush(fctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	r.st.flushes++
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(order) != len(recs) {
		return fmt.Errorf("flush returned with %d of %d callbacks run", len(order), len(recs))
	}
	// One producer, one goroutine: per partition, offsets follow publish
	// order. Add them to the model in offset order.
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	for i, rec := range recs {
		if err := r.placed(t, o.recs[i], rec); err != nil {
			return err
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if recs[a].Partition != recs[b].Partition {
			return int(recs[a].Partition - recs[b].Partition)
		}
		return cmp.Compare(recs[a].Offset, recs[b].Offset)
	})
	for k := 1; k < len(idx); k++ {
		a, b := idx[k-1], idx[k]
		if recs[a].Partition == recs[b].Partition && a > b {
			return fmt.Errorf("partition %d: record %d got offset %d after record %d's %d", recs[a].Partition, b, recs[b].Offset, a, recs[a].Offset)
		}
	}
	sortedSpecs := make([]mdlRecSpec, len(idx))
	sortedRecs := make([]*Record, len(idx))
	for k, i := range idx {
		sortedSpecs[k], sortedRecs[k] = o.recs[i], recs[i]
	}
	if err := r.appendAcked(t, sortedSpecs, sortedRecs); err != nil {
		return err
	}
	return r.rollRetention(t)
}

func (r *mdlRunner) subscribe(o mdlOp) error {
	if r.cons != nil || len(r.m.topics) == 0 {
		return nil
	}
	topics := r.m.names()
	c, err := r.b.Subscribe(mdlGroup, topics, &ConsumerOptions{Reset: ResetEarliest, Balancer: RangeBalancer{},
		MaxPollRecords: o.maxPoll, AutoCommit: o.autoCommit, AutoCommitEvery: time.Hour, MaxWait: mdlMaxWait, Isolation: o.isolation})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	r.cons = &mdlConsumer{c: c, topics: topics, maxPoll: o.maxPoll, autoCommit: o.autoCommit, pos: map[TopicPartition]int64{}, isolation: o.isolation}
	return nil
}

// revoked applies a revocation of everything the member holds: auto-commit
// of its positions, then they are forgotten.
func (r *mdlRunner) revoked() {
	c := r.cons
	if c.autoCommit {
		for _, tp := range c.assigned {
			r.m.committed[tp] = c.pos[tp]
		}
	}
	c.assigned = nil
	c.gen++
	clear(c.pos)
}

// consumerClosed applies a clean Close of the member.
func (r *mdlRunner) consumerClosed() {
	if r.cons.autoCommit {
		for _, tp := range r.cons.assigned {
			r.m.committed[tp] = r.cons.pos[tp]
		}
	}
	r.cons = nil
}

func (r *mdlRunner) poll() error {
	c := r.cons
	if c == nil {
		return nil
	}
	want := r.m.expected(c)
	// Where each partition will be read from once the member holds the
	// expected assignment.
	from := map[TopicPartition]int64{}
	rebalancing := c.assigned == nil || c.rebalance
	for _, tp := range want {
		switch {
		case !rebalancing:
			from[tp] = r.m.effective(tp, c.pos[tp])
		case c.autoCommit && slices.Contains(c.assigned, tp):
			// Revocation auto-commits the position, and the new
			// assignment resumes there.
			from[tp] = r.m.effective(tp, c.pos[tp])
		default:
			from[tp] = r.m.resume(tp)
		}
	}
	available := false
	for _, tp := range want {
		if r.m.nextVisible(tp, from[tp], c.isolation) < r.m.bound(tp, c.isolation) {
			available = true
		}
	}
	timeout := time.Millisecond
	if available {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	began := time.Now()
	recs, err := c.c.Poll(ctx)
	took := time.Since(began)
	cancel()
	r.st.polls++
	switch {
	case available && took >= mdlMaxWait:
		// MinBytes is 1 (the default): any ready record is enough, a
		// tombstone too (Kafka's fetch.min.bytes counts what the fetch
		// returns, overhead included).
		return fmt.Errorf("poll took %v with records available: it waited out MaxWait (%v) for MinBytes=1 (%d records, %v)", took.Round(time.Millisecond), mdlMaxWait, len(recs), err)
	case available && err != nil:
		return fmt.Errorf("poll with records available: %w", err)
	case available && len(recs) == 0:
		return fmt.Errorf("poll with records available returned none")
	case !available && err == nil:
		return fmt.Errorf("poll with nothing available returned %d records", len(recs))
	case !available && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("poll with nothing available: %v, want the context's deadline", err)
	}
	if len(recs) == 0 {
		r.st.emptyPolls++
	}
	r.st.polled += len(recs)

	// What happened to the assignment.
	got := c.c.Assignment()
	switch {
	case slices.Equal(got, want) && (c.assigned == nil || c.rebalance):
		if c.assigned != nil {
			r.revoked()
			r.st.rebalances++
		}
		c.assigned, c.rebalance = want, false
		c.gen++
		for _, tp := range want {
			c.pos[tp] = r.m.resume(tp)
		}
	case slices.Equal(got, want) && slices.Equal(c.assigned, want):
		// No change.
	case len(got) == 0 && c.assigned != nil && c.rebalance:
		// Revoked; the assignment comes at the next Poll.
		r.revoked()
		c.rebalance = false
	case len(got) == 0 && c.assigned == nil:
		// The deadline came before the assignment.
	case c.rebalance && slices.Equal(got, c.assigned):
		// The deadline came before the rebalance reached the member.
	default:
		return fmt.Errorf("assignment %v, want %v (model holds %v, rebalance pending %v)", got, want, c.assigned, c.rebalance)
	}

	// The records: per partition, the next ones from the position, in
	// offset order, at most MaxPollRecords in all.
	if len(recs) > c.maxPoll {
		return fmt.Errorf("poll returned %d records, MaxPollRecords is %d", len(recs), c.maxPoll)
	}
	next := map[TopicPartition]int64{}
	for i, rec := range recs {
		tp := TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
		if !slices.Contains(c.assigned, tp) {
			return fmt.Errorf("poll returned a record of %s, which the member does not hold (%v)", tp, c.assigned)
		}
		exp, ok := next[tp]
		if !ok {
			exp = r.m.effective(tp, c.pos[tp])
		}
		// Markers, and under ReadCommitted aborted records, are passed.
		exp = r.m.nextVisible(tp, exp, c.isolation)
		if rec.Offset != exp {
			return fmt.Errorf("poll record %d: %s offset %d, want %d (position %d, log [%d, %d))",
				i, tp, rec.Offset, exp, c.pos[tp], r.m.part(tp).start, r.m.part(tp).end())
		}
		if err := r.sameAt(tp, rec, c.isolation); err != nil {
			return fmt.Errorf("poll record %d: %w", i, err)
		}
		next[tp] = rec.Offset + 1
	}
	for _, tp := range c.assigned {
		pos, err := c.c.Position(tp)
		if err != nil {
			return fmt.Errorf("position of %s: %w", tp, err)
		}
		// A fetch may move the position past records it does not return
		// (markers, aborted records under ReadCommitted), up to the next
		// one it would.
		if n, ok := next[tp]; ok {
			if pos < n || pos > r.m.nextVisible(tp, n, c.isolation) {
				return fmt.Errorf("position of %s is %d after poll returned up to %d (next readable %d)", tp, pos, n-1, r.m.nextVisible(tp, n, c.isolation))
			}
		} else if raw, eff := c.pos[tp], r.m.effective(tp, c.pos[tp]); pos != raw && (pos < eff || pos > r.m.nextVisible(tp, eff, c.isolation)) {
			// An out-of-range position may or may not have been reset by
			// a fetch that found nothing.
			return fmt.Errorf("position of %s is %d, want %d (or %d after a reset, up to %d)", tp, pos, raw, eff, r.m.nextVisible(tp, eff, c.isolation))
		}
		c.pos[tp] = pos
	}
	return nil
}

// sameAt compares a record read from the engine at isolation level iso
// with the model's.
func (r *mdlRunner) sameAt(tp TopicPartition, rec *Record, iso IsolationLevel) error {
	p := r.m.part(tp)
	if bound := r.m.bound(tp, iso); rec.Offset < p.start || rec.Offset >= bound {
		return fmt.Errorf("%s offset %d outside the model's log [%d, %d) at %v", tp, rec.Offset, p.start, bound, iso)
	}
	want := p.recs[rec.Offset]
	switch {
	case !r.m.visible(tp, rec.Offset, iso):
		return fmt.Errorf("%s offset %d read at %v: a marker or an aborted record (transaction %d, %v)", tp, rec.Offset, iso, want.txn, r.m.txns[want.txn])
	case rec.Topic != tp.Topic || rec.Partition != tp.Partition:
		return fmt.Errorf("%s offset %d: record says %s/%d", tp, rec.Offset, rec.Topic, rec.Partition)
	case !mdlBytesEqual(rec.Key, want.key):
		return fmt.Errorf("%s offset %d: key %q (nil %v), want %q (nil %v)", tp, rec.Offset, rec.Key, rec.Key == nil, want.key, want.key == nil)
	case !mdlBytesEqual(rec.Value, want.value):
		return fmt.Errorf("%s offset %d: value %.40q, want %.40q", tp, rec.Offset, rec.Value, want.value)
	case rec.Timestamp.UnixMilli() != want.ts:
		return fmt.Errorf("%s offset %d: timestamp %d, want %d", tp, rec.Offset, rec.Timestamp.UnixMilli(), want.ts)
	case len(rec.Headers) != len(want.headers):
		return fmt.Errorf("%s offset %d: %d headers, want %d", tp, rec.Offset, len(rec.Headers), len(want.headers))
	}
	for i, h := range rec.Headers {
		if h.Key != want.headers[i].Key || !mdlBytesEqual(h.Value, want.headers[i].Value) {
			return fmt.Errorf("%s offset %d: header %d is %q=%q, want %q=%q", tp, rec.Offset, i, h.Key, h.Value, want.headers[i].Key, want.headers[i].Value)
		}
	}
	return nil
}

// mdlBytesEqual compares byte slices keeping nil (Kafka's null) and empty apart.
func mdlBytesEqual(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func (r *mdlRunner) commit(ctx context.Context, o mdlOp) error {
	c := r.cons
	if c == nil {
		return nil
	}
	r.st.commits++
	switch o.variant {
	case 0:
		if err := c.c.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		for _, tp := range c.assigned {
			r.m.committed[tp] = c.pos[tp]
		}
		return nil
	case 2:
		want := r.m.expected(c)
		if len(want) == 0 {
			return nil
		}
		err := c.c.CommitOffsets(ctx, map[TopicPartition]int64{want[o.part%len(want)]: -1})
		if !errors.Is(err, ErrInvalidArgument) {
			return fmt.Errorf("commit of a negative offset: %v, want ErrInvalidArgument", err)
		}
		return nil
	}
	// CommitOffsets of a subset, at offsets inside the logs.
	want := r.m.expected(c)
	if len(want) == 0 {
		return nil
	}
	offs := map[TopicPartition]int64{}
	for i := 0; i <= o.part%3; i++ {
		tp := want[(o.part+i*7)%len(want)]
		p := r.m.part(tp)
		offs[tp] = p.start + int64((o.frac>>(8*i))%uint64(p.end()-p.start+1))
	}
	err := c.c.CommitOffsets(ctx, offs)
	for tp := range offs {
		if !slices.Contains(c.assigned, tp) {
			if !errors.Is(err, ErrNotAssigned) {
				return fmt.Errorf("commitOffsets %v of unassigned %s: %v, want ErrNotAssigned", offs, tp, err)
			}
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("commitOffsets %v: %w", offs, err)
	}
	for tp, off := range offs {
		r.m.committed[tp] = off
	}
	return nil
}

func (r *mdlRunner) seek(o mdlOp) error {
	c := r.cons
	if c == nil {
		return nil
	}
	want := r.m.expected(c)
	if len(want) == 0 {
		return nil
	}
	tp := want[o.part%len(want)]
	p := r.m.part(tp)
	var off int64
	switch o.where % 5 {
	case 0:
		off = p.start
	case 1:
		off = p.end()
	case 2:
		off = p.start + int64(o.frac%uint64(p.end()-p.start+1))
	case 3:
		off = p.end() + 1 + int64(o.frac%3) // past the end: reset at the next fetch
	case 4:
		off = p.start - 1 // below the log start, or negative
	}
	r.st.seeks++
	err := c.c.Seek(tp, off)
	switch {
	case off < 0:
		if !errors.Is(err, ErrInvalidArgument) {
			return fmt.Errorf("seek %s to %d: %v, want ErrInvalidArgument", tp, off, err)
		}
		return nil
	case !slices.Contains(c.assigned, tp):
		if !errors.Is(err, ErrNotAssigned) {
			return fmt.Errorf("seek unassigned %s: %v, want ErrNotAssigned", tp, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("seek %s to %d: %w", tp, off, err)
	}
	c.pos[tp] = off
	return nil
}

func (r *mdlRunner) restart(crashIt bool) error {
	r.st.restarts++
	if crashIt {
		r.st.crashes++
		// A killed process: nothing is flushed, closed or committed.
		crash(r.t, r.b)
		if r.cons != nil {
			r.cons.c.Close() // its auto-commit fails: the metadata store is gone
			r.cons = nil
		}
		if r.prod != nil {
			r.prod.Close() // flushed by its operation: holds nothing
			r.prod = nil
		}
	} else {
		if err := r.b.Close(); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if r.cons != nil {
			r.consumerClosed() // Close closed it
		}
		r.prod = nil
	}
	r.b = nil
	// An open transaction is aborted: by Close, or by Open's recovery
	// after a crash. Its producer is fenced either way.
	r.tx, r.txp = nil, nil
	if r.m.open != 0 {
		r.st.txRestarted++
		r.endModelTxn(false)
	}
	b, err := Open(r.dir, &r.opts)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	r.b = b
	return r.settleRetention()
}

func (r *mdlRunner) retention() error {
	r.st.retentions++
	// The rule (Kafka's retention.bytes): delete whole sealed segments,
	// oldest first, while the rest still holds at least RetentionBytes.
	want := map[TopicPartition]int64{}
	for _, name := range r.m.names() {
		mt := r.m.topics[name]
		t, err := r.b.topic(name)
		if err != nil {
			return err
		}
		for i, p := range t.partitions() {
			tp := TopicPartition{Topic: name, Partition: int32(i)}
			segs := p.Segments()
			n := 0
			if mt.cfg.RetentionBytes > 0 {
				var total int64
				for _, s := range segs {
					total += s.Size
				}
				lso := r.m.bound(tp, ReadCommitted)
				for ; n < len(segs)-1 && segs[n].Next <= lso && total-segs[n].Size >= mt.cfg.RetentionBytes; n++ {
					total -= segs[n].Size
				}
			}
			if segs[0].Base != mt.parts[i].start {
				return fmt.Errorf("%s: first segment starts at %d, the log at %d", tp, segs[0].Base, mt.parts[i].start)
			}
			want[tp] = segs[n].Base
		}
	}
	r.b.enforceRetention()
	for tp, start := range want {
		p := r.m.part(tp)
		p.loose = false
		r.st.dropped += int(start - p.start)
		p.start = start
	}
	return nil
}

// rollRetention follows size retention run by an operation's appends
// (retention's rule, applied as they grow the log). Where the segments are
// is the engine's, so the model takes the new log starts from it, after
// checking them against the rule: a start only moves up, and only while
// the rest still holds at least RetentionBytes; and the sealed segments
// hold nothing more the rule would delete (appends here are sequential, so
// even under SyncAlways an append finds every sealed segment below the high
// watermark).
func (r *mdlRunner) rollRetention(mt *mdlTopic) error {
	return r.rollRetentionAfter(mt, true)
}

// rollRetentionAfter is rollRetention; strict says whether the appends
// could see the model's LSO (a marker's append ran retention while its
// transaction was still open, so after one it need not have deleted all
// it now could).
func (r *mdlRunner) rollRetentionAfter(mt *mdlTopic, strict bool) error {
	if mt.cfg.RetentionBytes <= 0 {
		return nil
	}
	t, err := r.b.topic(mt.name)
	if err != nil {
		return err
	}
	for i, p := range t.partitions() {
		tp := TopicPartition{Topic: mt.name, Partition: int32(i)}
		mp := mt.parts[i]
		segs := p.Segments()
		var total int64
		for _, s := range segs {
			total += s.Size
		}
		start := segs[0].Base
		switch {
		case start < mp.start:
			return fmt.Errorf("%s: log start went back from %d to %d", tp, mp.start, start)
		case start > mp.start && start > r.m.bound(tp, ReadCommitted):
			return fmt.Errorf("%s: retention moved the log start to %d, past the last stable offset %d", tp, start, r.m.bound(tp, ReadCommitted))
		case start > mp.start && total < mt.cfg.RetentionBytes:
			return fmt.Errorf("%s: retention as appended left %d bytes, under RetentionBytes %d", tp, total, mt.cfg.RetentionBytes)
		case strict && !mp.loose && len(segs) > 1 && segs[0].Next <= r.m.bound(tp, ReadCommitted) && total-segs[0].Size >= mt.cfg.RetentionBytes:
			return fmt.Errorf("%s: retention as appended kept segments %v over RetentionBytes %d", tp, segs, mt.cfg.RetentionBytes)
		}
		if start > mp.start {
			r.st.rollDropped += int(start - mp.start)
			mp.start = start
		}
	}
	return nil
}

func (r *mdlRunner) addPartitions(o mdlOp) error {
	t := r.m.topicAt(o.topic)
	if t == nil {
		return nil
	}
	n := len(t.parts)
	if n >= 4 {
		if err := r.b.AddPartitions(t.name, n); !errors.Is(err, ErrInvalidConfig) {
			return fmt.Errorf("addPartitions to the same count: %v, want ErrInvalidConfig", err)
		}
		return nil
	}
	if err := r.b.AddPartitions(t.name, n+1); err != nil {
		return fmt.Errorf("addPartitions: %w", err)
	}
	t.parts = append(t.parts, &mdlPart{openFirst: -1})
	if r.cons != nil && slices.Contains(r.cons.topics, t.name) {
		r.cons.rebalance = true
	}
	return nil
}

func (r *mdlRunner) offsetForTime(o mdlOp) error {
	t := r.m.topicAt(o.topic)
	if t == nil {
		return nil
	}
	pi := o.part % len(t.parts)
	p := t.parts[pi]
	// A timestamp near a stored one, or one past them all.
	ts := int64(mdlClockBase + 1_000_000)
	if p.end() > p.start {
		ts = p.recs[p.start+int64(o.frac%uint64(p.end()-p.start))].ts + int64(o.where%3) - 1
	}
	want := int64(-1)
	for off := p.start; off < p.end(); off++ {
		if p.recs[off].ts >= ts {
			want = off
			break
		}
	}
	got, err := r.b.OffsetForTime(t.name, int32(pi), time.UnixMilli(ts))
	if err != nil {
		return fmt.Errorf("offsetForTime: %w", err)
	}
	if got != want {
		return fmt.Errorf("offsetForTime(%s/%d, %d) = %d, want %d", t.name, pi, ts, got, want)
	}
	return nil
}

// check compares everything observable with the model.
func (r *mdlRunner) check() error {
	b := r.b
	if got, want := b.Topics(), r.m.names(); !slices.Equal(got, want) {
		return fmt.Errorf("topics %v, want %v", got, want)
	}
	for _, name := range r.m.names() {
		mt := r.m.topics[name]
		info, err := b.DescribeTopic(name)
		if err != nil {
			return err
		}
		if len(info.Partitions) != len(mt.parts) {
			return fmt.Errorf("%s has %d partitions, want %d", name, len(info.Partitions), len(mt.parts))
		}
		for i, pi := range info.Partitions {
			p := mt.parts[i]
			if p.hw < p.next() && pi.EndOffset > p.hw && pi.EndOffset <= p.next() {
				// Under SyncAlways an open transaction's records wait
				// for its end, unless an fsync for something else (a
				// segment's roll) covered some.
				p.hw = pi.EndOffset
			}
			if pi.StartOffset != p.start || pi.EndOffset != p.end() {
				return fmt.Errorf("%s/%d: log [%d, %d), want [%d, %d)", name, i, pi.StartOffset, pi.EndOffset, p.start, p.end())
			}
			if err := r.checkRead(name, int32(i)); err != nil {
				return err
			}
		}
	}
	committed, err := b.CommittedOffsets(mdlGroup)
	if err != nil {
		return err
	}
	if !maps.Equal(committed, r.m.committed) {
		return fmt.Errorf("committed offsets %v, want %v", committed, r.m.committed)
	}
	gi, err := b.DescribeGroup(mdlGroup)
	if err != nil {
		return err
	}
	for _, gp := range gi.Partitions {
		tp := TopicPartition{Topic: gp.Topic, Partition: gp.Partition}
		end := r.m.part(tp).end() // the high watermark, whatever the isolation
		off, ok := r.m.committed[tp]
		wantCommitted, wantLag := int64(-1), int64(-1)
		if ok {
			wantCommitted, wantLag = off, max(end-off, 0)
		}
		if gp.End != end || gp.Committed != wantCommitted || gp.Lag != wantLag {
			return fmt.Errorf("group %s: end %d committed %d lag %d, want %d %d %d", tp, gp.End, gp.Committed, gp.Lag, end, wantCommitted, wantLag)
		}
	}
	if c := r.cons; c != nil {
		if got := c.c.Assignment(); !slices.Equal(got, c.assigned) {
			return fmt.Errorf("assignment %v, want %v", got, c.assigned)
		}
		for _, tp := range c.assigned {
			pos, err := c.c.Position(tp)
			if err != nil {
				return fmt.Errorf("position of %s: %w", tp, err)
			}
			if pos != c.pos[tp] {
				return fmt.Errorf("position of %s is %d, want %d", tp, pos, c.pos[tp])
			}
		}
	}
	return nil
}

// checkRead reads a whole partition with a Reader, and from an offset in
// the middle, at both isolation levels, and compares with the model.
func (r *mdlRunner) checkRead(topic string, partition int32) error {
	tp := TopicPartition{Topic: topic, Partition: partition}
	p := r.m.part(tp)
	froms := []Offset{OffsetEarliest}
	if p.end()-p.start > 1 {
		froms = append(froms, AtOffset((p.start+p.end())/2))
	}
	for _, iso := range []IsolationLevel{ReadUncommitted, ReadCommitted} {
		bound := r.m.bound(tp, iso)
		if iso == ReadCommitted && !p.txnal {
			break // no transaction here: the same as ReadUncommitted's
		}
		for _, from := range froms {
			rd, err := r.b.NewReader(topic, partition, from, &ReaderOptions{StopAtEnd: true, Isolation: iso})
			if err != nil {
				return fmt.Errorf("reader %s from %v at %v: %w", tp, from, iso, err)
			}
			want := p.start
			if from.kind == offsetExact {
				want = from.n
			}
			for rec, err := range rd.All(context.Background()) {
				if err != nil {
					rd.Close()
					return fmt.Errorf("read %s from %v at %v: %w", tp, from, iso, err)
				}
				want = r.m.nextVisible(tp, want, iso)
				if rec.Offset != want {
					rd.Close()
					return fmt.Errorf("read %s from %v at %v: offset %d, want %d (bound %d)", tp, from, iso, rec.Offset, want, bound)
				}
				if err := r.sameAt(tp, rec, iso); err != nil {
					rd.Close()
					return fmt.Errorf("read from %v: %w", from, err)
				}
				want++
			}
			rd.Close()
			if next := r.m.nextVisible(tp, want, iso); next < bound {
				return fmt.Errorf("read %s from %v at %v: ended at %d, offset %d is readable (bound %d)", tp, from, iso, want, next, bound)
			}
		}
	}
	return nil
}
