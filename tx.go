package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/internal/log"
)

// TxOptions configure a TxProducer. The zero value (or nil) takes the
// defaults.
type TxOptions struct {
	// Timeout is how long a transaction may stay open before the broker
	// aborts it (transaction.timeout.ms): an abandoned transaction would
	// otherwise hold read_committed readers at its first offset for ever.
	// Default DefaultTxnTimeout (1 minute), at most MaxTxnTimeout.
	Timeout time.Duration
}

// TxProducer publishes in transactions: records to any partitions of any
// topics, and offsets of consumer groups, that become visible (to
// ReadCommitted readers and consumers) and committed all together at
// Commit, or not at all. It is Kafka's transactional producer, and its
// records are stored as Kafka's (transactional batches, commit and abort
// markers), so Kafka clients reading through the listener see the same.
//
// One transactional ID is one producer at a time: NewTxProducer with an ID
// fences the producer that had it before, in this process or (through the
// listener) a remote one; the fenced producer's open transaction is
// aborted and its later calls fail with ErrFenced. An application that
// restarts takes its ID back the same way, and so cleans up after itself.
//
// A TxProducer runs one transaction at a time (Begin); it is safe for
// concurrent use, and its Tx may be used from several goroutines.
type TxProducer struct {
	b     *Broker
	id    string
	pid   int64
	epoch int16

	mu     sync.Mutex // guards tx; taken before a Tx's
	tx     *Tx
	closed atomic.Bool
}

// NewTxProducer returns the transactional producer of transactional ID id
// (transactional.id; any non-empty string), fencing any earlier one (see
// TxProducer). It writes to meta.db, durably: ErrReadOnly on a read-only
// broker.
func (b *Broker) NewTxProducer(id string, opts *TxOptions) (*TxProducer, error) {
	var o TxOptions
	if opts != nil {
		o = *opts
	}
	pid, epoch, err := b.InitTransactions(id, o.Timeout)
	if err != nil {
		return nil, err
	}
	return &TxProducer{b: b, id: id, pid: pid, epoch: epoch}, nil
}

// ID returns the producer's transactional ID.
func (p *TxProducer) ID() string { return p.id }

// Begin starts a transaction. It fails with ErrTxnState while the
// producer's last transaction is still open, ErrClosed after Close (its
// own or the broker's).
func (p *TxProducer) Begin() (*Tx, error) {
	p.b.mu.RLock()
	err := p.b.checkOpen()
	p.b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if tx := p.tx; tx != nil {
		tx.mu.Lock()
		done := tx.done
		tx.mu.Unlock()
		if !done {
			return nil, fmt.Errorf("%w: a transaction is open; Commit or Abort it first", ErrTxnState)
		}
	}
	p.tx = &Tx{p: p}
	return p.tx, nil
}

// Close aborts the open transaction, if any, and releases the producer;
// later calls fail with ErrClosed. It is idempotent.
func (p *TxProducer) Close() error {
	p.mu.Lock()
	if p.closed.Swap(true) {
		p.mu.Unlock()
		return nil
	}
	tx := p.tx
	p.mu.Unlock()
	if tx == nil {
		return nil
	}
	// Without the producer's lock: a Publish holds the transaction's and
	// the coordinator's, and ends before the abort runs.
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done || !tx.begun {
		tx.done = true
		return nil
	}
	tx.done = true
	return ignoreFenced(p.b.EndTxn(p.id, p.pid, p.epoch, false))
}

// ignoreFenced drops ErrFenced and ErrClosed from an abort on the way out:
// whoever fenced the producer, or closed the broker, aborted the
// transaction already.
func ignoreFenced(err error) error {
	if errors.Is(err, ErrFenced) || errors.Is(err, ErrClosed) || errors.Is(err, ErrTxnState) {
		return nil
	}
	return err
}

// Tx is one transaction of a TxProducer: Publish records and stage
// consumer offsets, then Commit or Abort. Its records take offsets at
// once (Publish fills them in) but stay hidden from ReadCommitted readers
// until Commit; ReadUncommitted readers see them, aborted or not, as
// Kafka's do, once they are appended (under SyncAlways, once durable: at
// the latest when the transaction ends).
type Tx struct {
	p     *TxProducer
	mu    sync.Mutex
	begun bool // the coordinator has opened it
	done  bool // Commit or Abort was called
}

// Publish appends records inside the transaction, as Broker.Publish does
// (the same validation, placement and per-partition batches), filling in
// each one's Partition, Offset and Timestamp. An invalid record fails the
// call with nothing written, and the transaction stays usable; a write that
// fails after others succeeded leaves the transaction unable to commit
// (Commit then aborts it). It fails with ErrFenced once another producer
// took the transactional ID, ErrTxnTimedOut once the broker aborted the
// transaction at its timeout, and ErrTxnState after Commit or Abort.
func (tx *Tx) Publish(ctx context.Context, recs ...*Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	b, p := tx.p.b, tx.p
	plan := b.plans.Get().(*publishPlan)
	defer b.plans.Put(plan)
	defer plan.release()
	if err := b.plan(plan, recs); err != nil {
		return err
	}
	e, err := b.txns.entry(p.id, p.pid, p.epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	parts := make([]TopicPartition, len(plan.groups))
	for i := range plan.groups {
		g := &plan.groups[i]
		parts[i] = TopicPartition{Topic: g.topic.name, Partition: g.partition}
	}
	added, err := b.txns.addLocked(e, parts)
	if err != nil {
		return err
	}
	tx.begun = true
	for gi := range plan.groups {
		g, tp := &plan.groups[gi], added[gi]
		encoded := g.stored
		// Sequences go on from transaction to transaction for the
		// producer's epoch, under the coordinator's lock of the ID.
		if e.seqs == nil {
			e.seqs = map[*log.Log]int32{}
		}
		seq := e.seqs[g.part]
		encoded.SetProducer(p.pid, p.epoch, seq, true)
		res, err := g.part.AppendTxn(encoded)
		if err != nil {
			err = g.topic.writeErr(err)
			if gi > 0 {
				e.failed = err // some of the call is written: it cannot commit
			}
			return err
		}
		e.seqs[g.part] = nextSequence(seq, g.builder.Count())
		tp.last = max(tp.last, res.End)
		st := newStamp(g.partition, res.Base, encoded)
		for n := range g.builder.Count() {
			i := g.record(n)
			st.fill(recs[i], n, plan.timestamps[i])
		}
	}
	return nil
}

// nextSequence is the sequence after n records from seq, wrapping as
// Kafka's do.
func nextSequence(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// usable says why the transaction takes no more calls, if it does not.
// Callers hold tx.mu.
func (tx *Tx) usable() error {
	if tx.done {
		return fmt.Errorf("%w: the transaction is over", ErrTxnState)
	}
	if tx.p.closed.Load() {
		return ErrClosed
	}
	return nil
}

// CommitOffsets stages offsets (the next offset to read, per partition)
// for group, to be committed with the transaction: stored in the same
// durable step as its commit, discarded by its abort (Kafka's
// sendOffsetsToTransaction without group metadata). Use CommitConsumer
// for a Consumer's own positions: it also fences a member that lost its
// partitions.
func (tx *Tx) CommitOffsets(group string, offsets map[TopicPartition]int64) error {
	return tx.stage(group, "", 0, offsets)
}

// CommitConsumer stages the positions of every partition assigned to c
// (the offset after the last record Poll returned) for c's group, to be
// committed with the transaction, as CommitOffsets does, checking that c
// still holds them both now and at Commit (Kafka's
// sendOffsetsToTransaction with the consumer's group metadata, KIP-447):
// if a rebalance took them away meanwhile the transaction cannot commit,
// and the new owner reads from the offsets committed before it.
func (tx *Tx) CommitConsumer(c *Consumer) error {
	if err := c.callable(); err != nil {
		return err
	}
	return tx.stage(c.m.Group(), c.m.ID(), c.gen, c.positions(nil))
}

func (tx *Tx) stage(group, member string, gen int, offsets map[TopicPartition]int64) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(); err != nil {
		return err
	}
	p := tx.p
	if err := p.b.TxnCommitOffsets(p.id, p.pid, p.epoch, group, member, gen, maps.Clone(offsets)); err != nil {
		return err
	}
	tx.begun = true
	return nil
}

// Commit makes the transaction's records visible and its staged offsets
// committed, all at once, and returns once that is durable as the
// partitions' SyncPolicy makes records durable (under SyncAlways, before
// it returns; meta.db's decision is always fsynced unless the broker's
// Sync is SyncNever). If the transaction cannot commit (a write of it
// failed, a consumer lost its partitions), it is aborted instead and
// Commit returns ErrTxnAborted wrapping why. Either way the transaction is
// over; Begin the next one.
func (tx *Tx) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return tx.end(true)
}

// Abort ends the transaction without making anything visible: its
// records stay in the log (ReadUncommitted readers see them) and are
// skipped by ReadCommitted ones; its staged offsets are dropped.
func (tx *Tx) Abort() error { return tx.end(false) }

func (tx *Tx) end(commit bool) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(); err != nil {
		return err
	}
	tx.done = true
	if !tx.begun {
		return nil // nothing published or staged: nothing to end
	}
	p := tx.p
	return p.b.EndTxn(p.id, p.pid, p.epoch, commit)
}
