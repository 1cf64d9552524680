package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/embedstream/stream"
)

// The transactions rows (#17's goals), ours only: a consume-transform-
// publish step of 100 records over 4 partitions plus the consumer's offset
// commit, in a transaction and without one (the baseline), under SyncNever
// and SyncAlways; and reading a log with 10% aborted transactions under
// read_committed beside read_uncommitted.
//
// The peers sit these rows out. kfake has transactions, but only over TCP
// through kgo's transactional producer (AddPartitionsToTxn, EndTxn and the
// rest as round trips), so its figures would measure the protocol, not the
// store; JetStream has atomic batches of one stream, not Kafka's
// transactions; the raw file has none.

const (
	txnSection    = "Transactions: a step of 100 × 100 B records over 4 partitions + the consumer's offset commit (4 partitions), in a transaction (Begin, Publish, CommitConsumer, Commit) and, as the baseline, without one (Broker.Publish of the same records, then Consumer.Commit)."
	txnRecords    = 100
	txnPartitions = 4
	txnValue      = 100
	txnNotOurs    = "no fair comparison: kfake's transactions are kgo round trips over TCP; JetStream and the raw file have none"
)

func txnWorkloads(s sizes) []workload {
	never := txnSteps(s, false)
	always := txnSteps(s, true)
	return []workload{
		{id: "txn-never", section: txnSection,
			title: fmt.Sprintf("SyncNever, %s steps each", count(never)),
			metrics: []metricSpec{
				rateMetric("txn_never_tx_per_s", "transactions/s"),
				rateMetric("txn_never_plain_per_s", "baseline steps/s"),
				factorMetric("txn_never_cost_ratio", "transaction ÷ baseline time", false),
			},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) { return txnStep(ctx, e, p, false) }},
		{id: "txn-always", section: txnSection,
			title: fmt.Sprintf("SyncAlways, %s steps each", count(always)),
			metrics: []metricSpec{
				usMetric("txn_always_tx_p50_us", "transaction p50"),
				usMetric("txn_always_plain_p50_us", "baseline p50"),
				factorMetric("txn_always_tx_fsyncs", "fsync calls / transaction (segments + meta.db)", false),
				factorMetric("txn_always_tx_rounds", "sequential fsync rounds / transaction", false),
				factorMetric("txn_always_plain_fsyncs", "fsync calls / baseline step", false),
				factorMetric("txn_always_plain_rounds", "sequential fsync rounds / baseline step", false),
			},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) { return txnStep(ctx, e, p, true) }},
		{id: "txn-read", section: txnSection,
			title: fmt.Sprintf("consume %s × 100 B in transactions of 100, 10%% aborted", count(s.records)),
			metrics: []metricSpec{
				rateMetric("txn_read_uncommitted_msgs", "Reader read_uncommitted, log records/s"),
				rateMetric("txn_read_committed_msgs", "Reader read_committed, log records/s"),
				factorMetric("txn_read_ratio", "Reader read_committed ÷ read_uncommitted", true),
				rateMetric("txn_poll_uncommitted_msgs", "Consumer read_uncommitted, log records/s"),
				rateMetric("txn_poll_committed_msgs", "Consumer read_committed, log records/s"),
				factorMetric("txn_poll_ratio", "Consumer read_committed ÷ read_uncommitted", true),
			},
			run: txnRead},
	}
}

// txnGoals are #17's goals on the rows above.
func txnGoals() []goal {
	return []goal{
		{"txn_never_cost_ratio", "≤ 1.5× the baseline", func(v float64, _ *report) bool { return v <= 1.5 }},
		{"txn_always_tx_rounds", "≤ 2 fsyncs", func(v float64, _ *report) bool { return v <= 2 }},
		{"txn_read_ratio", "≥ 0.9×", func(v float64, _ *report) bool { return v >= 0.9 }},
		{"txn_poll_ratio", "≥ 0.9×", func(v float64, _ *report) bool { return v >= 0.9 }},
	}
}

// factorMetric is a plain number: a ratio or a count per operation.
func factorMetric(key, label string, higher bool) metricSpec {
	return metricSpec{key: key, label: label, higher: higher, format: func(v float64) string { return fmt.Sprintf("%.2f", v) }}
}

// txnSteps is how many steps each side of a txn workload times.
func txnSteps(s sizes, durable bool) int {
	if durable {
		return max(s.durableMax/20, 5)
	}
	return max(s.records/1000, 20)
}

// txnRig is a broker with the step's topics and a consumer owning the
// input's 4 partitions, each with one record polled, so that every commit
// writes 4 offsets.
type txnRig struct {
	b    *stream.Broker
	c    *stream.Consumer
	p    *stream.TxProducer // nil for the baseline
	recs []stream.Record
	ptrs []*stream.Record
	v    []byte
}

func newTxnRig(ctx context.Context, dir string, durable, inTx bool) (*txnRig, error) {
	opts := &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}}
	if durable {
		opts.Sync = stream.SyncAlways
	}
	b, err := stream.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	r := &txnRig{b: b, v: payload(txnValue), recs: make([]stream.Record, txnRecords), ptrs: make([]*stream.Record, txnRecords)}
	for i := range r.recs {
		r.ptrs[i] = &r.recs[i]
	}
	if err := r.setup(ctx, inTx); err != nil {
		return nil, errors.Join(err, r.close())
	}
	return r, nil
}

func (r *txnRig) setup(ctx context.Context, inTx bool) error {
	for _, t := range []string{"in", "out"} {
		if err := r.b.CreateTopic(t, stream.TopicConfig{Partitions: txnPartitions}); err != nil {
			return err
		}
	}
	for p := range int32(txnPartitions) {
		if err := r.b.Publish(ctx, &stream.Record{Topic: "in", Partition: p, Value: []byte("x")}); err != nil {
			return err
		}
	}
	c, err := r.b.Subscribe("g", []string{"in"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
	if err != nil {
		return err
	}
	r.c = c
	for seen := 0; seen < txnPartitions; {
		recs, err := c.Poll(ctx)
		if err != nil {
			return err
		}
		seen += len(recs)
	}
	if inTx {
		if r.p, err = r.b.NewTxProducer("bench", nil); err != nil {
			return err
		}
	}
	return nil
}

// step publishes the 100 records and commits the consumer's positions, in
// a transaction if the rig has a producer.
func (r *txnRig) step(ctx context.Context) error {
	for i := range r.recs {
		r.recs[i] = stream.Record{Topic: "out", Partition: int32(i % txnPartitions), Value: r.v}
	}
	if r.p == nil {
		if err := r.b.Publish(ctx, r.ptrs...); err != nil {
			return err
		}
		return r.c.Commit(ctx)
	}
	tx, err := r.p.Begin()
	if err != nil {
		return err
	}
	if err := tx.Publish(ctx, r.ptrs...); err != nil {
		return err
	}
	if err := tx.CommitConsumer(r.c); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (r *txnRig) close() error {
	var errs []error
	if r.p != nil {
		errs = append(errs, r.p.Close())
	}
	if r.c != nil {
		errs = append(errs, r.c.Close())
	}
	return errors.Join(append(errs, r.b.Close())...)
}

// txnStep times steps on two brokers, one running them in transactions and
// one without, taking turns round after round (so that a neighbour's load
// falls on both alike). SyncNever: throughput of rounds of steps, the
// median round. SyncAlways: each step's latency, the medians, and the
// fsyncs per step: Stats.Fsyncs (segments) and Stats.MetaSyncs (meta.db,
// two per bbolt commit). Rounds: a transaction fsyncs its partitions at
// once (one round) while meta.db commits its decision (bbolt's two
// fdatasyncs in turn), so its rounds are the longer of the two;
// Broker.Publish fsyncs its partitions one after the other.
func txnStep(ctx context.Context, e *env, p peer, durable bool) ([]float64, error) {
	if p.id() != (embedPeer{}).id() {
		return nil, notSupported(txnNotOurs)
	}
	var rigs [2]*txnRig // 0: transactions, 1: the baseline
	for i := range rigs {
		dir, err := e.newDir(p)
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		r, err := newTxnRig(ctx, dir, durable, i == 0)
		if err != nil {
			return nil, err
		}
		defer r.close()
		rigs[i] = r
		for range 10 { // warm-up: first-use costs
			if err := r.step(ctx); err != nil {
				return nil, err
			}
		}
	}
	steps := txnSteps(e.sizes, durable)
	if !durable {
		var ds [2][]time.Duration
		began := time.Now()
		for len(ds[0]) < maxRounds && (len(ds[0]) == 0 || time.Since(began) < 2*e.budget) {
			for i, r := range rigs {
				d, err := timed(func() error {
					for range steps {
						if err := r.step(ctx); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
				ds[i] = append(ds[i], d)
			}
		}
		tx, plain := medianDuration(ds[0]), medianDuration(ds[1])
		return []float64{float64(steps) / seconds(tx), float64(steps) / seconds(plain), seconds(tx) / seconds(plain)}, nil
	}
	var lat [2][]time.Duration
	var fsyncs, metas [2]int64
	for i, r := range rigs {
		before := r.b.Stats()
		for range steps {
			start := time.Now()
			if err := r.step(ctx); err != nil {
				return nil, err
			}
			lat[i] = append(lat[i], time.Since(start))
		}
		after := r.b.Stats()
		fsyncs[i], metas[i] = after.Fsyncs-before.Fsyncs, after.MetaSyncs-before.MetaSyncs
	}
	n := float64(steps)
	txSeg, txMeta := float64(fsyncs[0])/n, float64(metas[0])/n
	plainCalls := float64(fsyncs[1]+metas[1]) / n
	return []float64{
		percentileOf(lat[0], 0.5), percentileOf(lat[1], 0.5),
		txSeg + txMeta, max(min(txSeg, 1), txMeta),
		plainCalls, plainCalls,
	}, nil
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentileOf(ds []time.Duration, q float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentile(s, q)
}

// txnRead fills a partition with e.records records of 100 B in
// transactions of 100 (one batch each), every tenth aborted, then times
// passes from the start to the end under each isolation level, taking
// turns: with a Reader (zero-copy), then with a Consumer (Poll,
// SeekToBeginning between passes). The rates count the log's records
// passed over; read_committed returns 90% of them.
func txnRead(ctx context.Context, e *env, p peer) ([]float64, error) {
	if p.id() != (embedPeer{}).id() {
		return nil, notSupported(txnNotOurs)
	}
	dir, err := e.newDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	n := max(e.records/txnRecords, 10) * txnRecords
	last, err := fillAborted(ctx, b, n)
	if err != nil {
		return nil, err
	}
	levels := []stream.IsolationLevel{stream.ReadUncommitted, stream.ReadCommitted}
	want := func(iso stream.IsolationLevel) int {
		if iso == stream.ReadCommitted {
			return n - n/10
		}
		return n
	}
	readPass := func(iso stream.IsolationLevel) error {
		rd, err := b.NewReader("t", 0, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true, Isolation: iso})
		if err != nil {
			return err
		}
		defer rd.Close()
		var sum checksum
		got := 0
		for rec, err := range rd.All(ctx) {
			if err != nil {
				return err
			}
			sum.add(rec.Value)
			got++
		}
		sum.flush()
		if got != want(iso) {
			return fmt.Errorf("%s: read %d records, want %d", iso, got, want(iso))
		}
		return nil
	}
	var consumers [2]*stream.Consumer
	for i, iso := range levels {
		c, err := b.Subscribe("g-"+iso.String(), []string{"t"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest, Isolation: iso, MaxPollRecords: maxPollRecords})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		consumers[i] = c
	}
	tp := stream.TopicPartition{Topic: "t", Partition: 0}
	pollPass := func(i int) error {
		c := consumers[i]
		var sum checksum
		got := 0
		for {
			recs, err := c.Poll(ctx)
			if err != nil {
				return err
			}
			for _, r := range recs {
				sum.add(r.Value)
			}
			got += len(recs)
			if len(recs) > 0 && recs[len(recs)-1].Offset == last {
				break
			}
		}
		sum.flush()
		if got != want(levels[i]) {
			return fmt.Errorf("%s: polled %d records, want %d", levels[i], got, want(levels[i]))
		}
		return c.SeekToBeginning(tp)
	}
	for i, iso := range levels { // warm-up, and the consumers join
		if err := readPass(iso); err != nil {
			return nil, err
		}
		if err := pollPass(i); err != nil {
			return nil, err
		}
	}
	var reads, polls [2][]time.Duration
	began := time.Now()
	for len(reads[0]) < maxRounds && (len(reads[0]) == 0 || time.Since(began) < 2*e.budget) {
		for i, iso := range levels {
			d, err := timed(func() error { return readPass(iso) })
			if err != nil {
				return nil, err
			}
			reads[i] = append(reads[i], d)
			if d, err = timed(func() error { return pollPass(i) }); err != nil {
				return nil, err
			}
			polls[i] = append(polls[i], d)
		}
	}
	rate := func(ds []time.Duration) float64 { return float64(n) / seconds(medianDuration(ds)) }
	ru, rc, pu, pc := rate(reads[0]), rate(reads[1]), rate(polls[0]), rate(polls[1])
	return []float64{ru, rc, rc / ru, pu, pc, pc / pu}, nil
}

// fillAborted writes n records to partition 0 of a new topic "t" in
// transactions of txnRecords, every tenth aborted and the last committed,
// and returns the last record's offset.
func fillAborted(ctx context.Context, b *stream.Broker, n int) (int64, error) {
	if err := b.CreateTopic("t", stream.TopicConfig{}); err != nil {
		return 0, err
	}
	p, err := b.NewTxProducer("fill", nil)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	v := payload(txnValue)
	recs := make([]*stream.Record, txnRecords)
	for k := range n / txnRecords {
		for i := range recs {
			recs[i] = &stream.Record{Topic: "t", Value: v}
		}
		tx, err := p.Begin()
		if err != nil {
			return 0, err
		}
		if err := tx.Publish(ctx, recs...); err != nil {
			return 0, err
		}
		if k%10 == 4 {
			err = tx.Abort()
		} else {
			err = tx.Commit(ctx)
		}
		if err != nil {
			return 0, err
		}
	}
	return recs[len(recs)-1].Offset, nil
}
