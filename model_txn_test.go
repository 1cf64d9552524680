package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// Transactions in the model test (see model_test.go): one transactional
// ID, mdlTxnID, whose producer the runner makes at its first use and
// again after a restart or a fence.

const mdlTxnID = "mdl-tx"

type mdlTxnState int

const (
	mdlTxnOpen mdlTxnState = iota
	mdlTxnCommitted
	mdlTxnAborted
)

func (s mdlTxnState) String() string {
	return [...]string{"open", "committed", "aborted"}[s]
}

// bound is where reads at iso end in tp: the high watermark, or under
// ReadCommitted the last stable offset (the open transaction's first
// offset there, if it wrote any below the high watermark).
func (m *mdlModel) bound(tp TopicPartition, iso IsolationLevel) int64 {
	p := m.part(tp)
	if iso == ReadCommitted && p.openFirst >= 0 {
		return min(p.hw, p.openFirst)
	}
	return p.hw
}

// visible says whether a read at iso returns offset off of tp: not a
// marker, below the bound, and under ReadCommitted not of an aborted (or
// open) transaction.
func (m *mdlModel) visible(tp TopicPartition, off int64, iso IsolationLevel) bool {
	p := m.part(tp)
	if off < p.start || off >= m.bound(tp, iso) {
		return false
	}
	rec := p.recs[off]
	if rec.ctrl {
		return false
	}
	return iso == ReadUncommitted || rec.txn == 0 || m.txns[rec.txn] == mdlTxnCommitted
}

// nextVisible is the first offset at or after from that a read at iso
// returns, or the bound if none.
func (m *mdlModel) nextVisible(tp TopicPartition, from int64, iso IsolationLevel) int64 {
	bound := m.bound(tp, iso)
	for off := max(from, m.part(tp).start); off < bound; off++ {
		if m.visible(tp, off, iso) {
			return off
		}
	}
	return max(from, bound)
}

// endModelTxn ends the open transaction in the model: a marker in each
// partition it wrote (stamped with the clock), and for a commit its
// staged offsets committed.
func (r *mdlRunner) endModelTxn(commit bool) {
	m := &r.m
	m.txns[m.open] = mdlTxnAborted
	if commit {
		m.txns[m.open] = mdlTxnCommitted
		maps.Copy(m.committed, m.staged)
	}
	for _, tp := range m.written {
		p := m.part(tp)
		p.recs = append(p.recs, mdlRec{ts: r.clock.Load(), txn: m.open, ctrl: true})
		p.hw, p.openFirst, p.loose = p.next(), -1, true
	}
	m.open, m.staged, m.stagedBy, m.written = 0, nil, nil, nil
}

// txBegin makes the producer if there is none and begins a transaction if
// none is open.
func (r *mdlRunner) txBegin() error {
	if r.txp == nil {
		p, err := r.b.NewTxProducer(mdlTxnID, nil)
		if err != nil {
			return fmt.Errorf("NewTxProducer: %w", err)
		}
		r.txp = p
	}
	if r.tx != nil {
		return nil
	}
	tx, err := r.txp.Begin()
	if err != nil {
		return fmt.Errorf("Begin: %w", err)
	}
	r.tx = tx
	r.m.open = len(r.m.txns) + 1
	r.m.txns[r.m.open] = mdlTxnOpen
	r.m.staged = map[TopicPartition]int64{}
	return nil
}

func (r *mdlRunner) txPublish(ctx context.Context, o mdlOp) error {
	t := r.m.topicAt(o.topic)
	if t == nil {
		return nil
	}
	if err := r.txBegin(); err != nil {
		return err
	}
	recs := r.records(t, o.recs)
	if err := r.tx.Publish(ctx, recs...); err != nil {
		return fmt.Errorf("tx.Publish: %w", err)
	}
	r.st.txPublishes++
	if err := r.appendAckedTxn(t, o.recs, recs, r.m.open); err != nil {
		return err
	}
	return r.rollRetention(t)
}

// txStage stages offsets with the open transaction: of a few partitions
// at offsets inside their logs, or the member's positions.
func (r *mdlRunner) txStage(o mdlOp) error {
	if len(r.m.topics) == 0 {
		return nil
	}
	if o.variant == 1 {
		c := r.cons
		if c == nil || c.assigned == nil || c.rebalance {
			return nil // the member's positions are not the model's to predict
		}
		if err := r.txBegin(); err != nil {
			return err
		}
		if err := r.tx.CommitConsumer(c.c); err != nil {
			return fmt.Errorf("tx.CommitConsumer: %w", err)
		}
		for _, tp := range c.assigned {
			r.m.staged[tp] = c.pos[tp]
		}
		r.m.stagedBy, r.m.stagedGen = c, c.gen
		r.st.txStages++
		return nil
	}
	if err := r.txBegin(); err != nil {
		return err
	}
	var all []TopicPartition
	for _, name := range r.m.names() {
		for i := range r.m.topics[name].parts {
			all = append(all, TopicPartition{Topic: name, Partition: int32(i)})
		}
	}
	offs := map[TopicPartition]int64{}
	for i := 0; i <= o.part%3; i++ {
		tp := all[(o.part+i*7)%len(all)]
		p := r.m.part(tp)
		offs[tp] = p.start + int64((o.frac>>(8*i))%uint64(p.end()-p.start+1))
	}
	if err := r.tx.CommitOffsets(mdlGroup, offs); err != nil {
		return fmt.Errorf("tx.CommitOffsets %v: %w", offs, err)
	}
	maps.Copy(r.m.staged, offs)
	r.st.txStages++
	return nil
}

func (r *mdlRunner) txEnd(ctx context.Context, o mdlOp) error {
	if r.tx == nil {
		return nil
	}
	tx := r.tx
	r.tx = nil
	if o.variant == 1 {
		if err := tx.Abort(); err != nil {
			return fmt.Errorf("tx.Abort: %w", err)
		}
		r.st.txAborts++
		r.endModelTxn(false)
	} else {
		// KIP-447: positions staged by a member whose assignment changed
		// since (a rebalance, or it left) cannot commit.
		stale := r.m.stagedBy != nil && (r.cons != r.m.stagedBy || r.cons.gen != r.m.stagedGen)
		err := tx.Commit(ctx)
		switch {
		case stale && !errors.Is(err, ErrTxnAborted):
			return fmt.Errorf("tx.Commit with positions staged by a member since rebalanced: %v, want ErrTxnAborted", err)
		case stale:
			r.st.txRefused++
		case err != nil:
			return fmt.Errorf("tx.Commit: %w", err)
		default:
			r.st.txCommits++
		}
		r.endModelTxn(!stale)
	}
	if err := r.settleRetention(); err != nil {
		return err
	}
	// A finished transaction refuses more.
	if err := tx.Publish(ctx, &Record{Topic: r.m.names()[0], Value: []byte("late")}); !errors.Is(err, ErrTxnState) {
		return fmt.Errorf("tx.Publish after its end: %v, want ErrTxnState", err)
	}
	return nil
}

// txFence takes the transactional ID with a new producer: the old one's
// open transaction is aborted, and its calls fail with ErrFenced.
func (r *mdlRunner) txFence(ctx context.Context, o mdlOp) error {
	old, oldTx := r.txp, r.tx
	p, err := r.b.NewTxProducer(mdlTxnID, nil)
	if err != nil {
		return fmt.Errorf("NewTxProducer: %w", err)
	}
	r.txp, r.tx = p, nil
	r.st.txFenced++
	if r.m.open != 0 {
		r.endModelTxn(false)
	}
	if err := r.settleRetention(); err != nil {
		return err
	}
	t := r.m.topicAt(o.topic)
	if old == nil || t == nil {
		return nil
	}
	if oldTx == nil {
		var err error
		if oldTx, err = old.Begin(); err != nil {
			return fmt.Errorf("Begin on the fenced producer: %w", err)
		}
	}
	if err := oldTx.Publish(ctx, &Record{Topic: t.name, Value: []byte("zombie")}); !errors.Is(err, ErrFenced) {
		return fmt.Errorf("tx.Publish of a fenced producer: %v, want ErrFenced", err)
	}
	return nil
}

// settleRetention brings partitions where a transaction ended to what size
// retention keeps. Their markers' appends ran retention with the
// transaction still open, and asked the broker for a run in the background
// (so does Open after one); run it now, so that the model knows when.
// Retention is idempotent: the background run, before or after, changes
// nothing more.
func (r *mdlRunner) settleRetention() error {
	var loose []*mdlTopic
	for _, name := range r.m.names() {
		mt := r.m.topics[name]
		for _, p := range mt.parts {
			if p.loose {
				loose = append(loose, mt)
				break
			}
		}
	}
	if len(loose) == 0 {
		return nil
	}
	r.b.enforceRetention()
	for _, mt := range loose {
		for _, p := range mt.parts {
			p.loose = false
		}
		if err := r.rollRetentionAfter(mt, true); err != nil {
			return fmt.Errorf("retention after a transaction ended: %w", err)
		}
	}
	return nil
}
