package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TxProducer is a transactional producer on a cluster (NewTxProducer
// returns one; it implements stream.TxPublisher): a franz-go client of its
// own with kgo.TransactionalID, publishing in transactions with
// BeginTransaction and EndTransaction, with the Client's partitioner and
// compression.
//
// It speaks the classic transaction protocol (KIP-98: AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn up to version 4) even where the
// cluster offers KIP-890's newer one, because staging offsets without a
// group member, which Transaction.CommitOffsets does, has no franz-go call
// and needs requests of its own that the newer protocol's epoch bumps would
// race. Every Kafka cluster since 0.11 serves the classic protocol.
type TxProducer struct {
	c       *Client
	id      string
	cl      *kgo.Client
	refused *refusals

	mu     sync.Mutex
	tx     *Tx // the last transaction; open until done
	closed bool
}

var _ stream.TxPublisher = (*TxProducer)(nil)

// txnTimeout checks and defaults a stream.TxOptions timeout as the
// embedded broker does.
func txnTimeout(opts *stream.TxOptions) (time.Duration, error) {
	var d time.Duration
	if opts != nil {
		d = opts.Timeout
	}
	if d == 0 {
		d = stream.DefaultTxnTimeout
	}
	if d < 0 || d > stream.MaxTxnTimeout {
		return 0, errorf(stream.ErrInvalidConfig, "transaction timeout %v outside (0, %v]", d, stream.MaxTxnTimeout)
	}
	return d, nil
}

// validTxnID refuses what the embedded broker refuses.
func validTxnID(id string) error {
	if id == "" || len(id) > 1<<15-1 {
		return errorf(stream.ErrInvalidArgument, "transactional id of %d bytes", len(id))
	}
	return nil
}

// classicTxnVersions caps EndTxn and TxnOffsetCommit below KIP-890 part
// 2's versions, which keeps franz-go on the classic transaction protocol
// (see TxProducer).
func classicTxnVersions() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	v.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
	return v
}

// NewTxProducer returns the transactional producer of transactional ID id
// (Kafka's transactional.id). It initializes the ID with the cluster
// before returning (InitProducerId), which fences any earlier producer with
// the ID and aborts the transaction it left open, as the embedded
// Broker.NewTxProducer does. opts.Timeout maps to
// transaction.timeout.ms (kgo.TransactionTimeout); default
// stream.DefaultTxnTimeout, at most stream.MaxTxnTimeout (and the
// cluster's transaction.max.timeout.ms). It fails with
// stream.ErrInvalidArgument for an empty id and stream.ErrInvalidConfig for
// a bad timeout. A kgo.MaxVersions in Options.Opts does not apply to it.
func (c *Client) NewTxProducer(ctx context.Context, id string, opts *stream.TxOptions) (stream.TxPublisher, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if err := validTxnID(id); err != nil {
		return nil, err
	}
	timeout, err := txnTimeout(opts)
	if err != nil {
		return nil, err
	}
	p := &TxProducer{c: c, id: id, refused: &refusals{}}
	kopts := append(c.opts.producer(p.refused),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(timeout),
		kgo.MaxVersions(classicTxnVersions()),
	)
	if p.cl, err = kgo.NewClient(kopts...); err != nil {
		return nil, errorf(stream.ErrInvalidConfig, "kafka: %v", err)
	}
	if _, _, err := p.cl.ProducerID(ctx); err != nil {
		p.cl.Close()
		return nil, fmt.Errorf("kafka: init transactional id %q: %w", id, mapErr(err))
	}
	if err := c.keepTxn(p); err != nil {
		p.cl.Close()
		return nil, err
	}
	return p, nil
}

// Kgo returns the producer's franz-go client. Do not Close it, or begin
// or end transactions with it.
func (p *TxProducer) Kgo() *kgo.Client { return p.cl }

// Begin starts a transaction (kgo's BeginTransaction). It fails with
// stream.ErrTxnState while the last one is open, stream.ErrClosed after
// Close, and stream.ErrFenced once a newer producer took the ID.
func (p *TxProducer) Begin() (stream.Transaction, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, stream.ErrClosed
	}
	if p.tx != nil && !p.tx.done {
		return nil, errorf(stream.ErrTxnState, "a transaction is open; Commit or Abort it first")
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("kafka: begin transaction of %q: %w", p.id, mapErr(err))
	}
	p.tx = &Tx{p: p, groups: map[string]bool{}}
	return p.tx, nil
}

// Close aborts the open transaction, if any, and closes the producer's
// client; later calls fail with stream.ErrClosed. It is idempotent.
func (p *TxProducer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	tx := p.tx
	p.mu.Unlock()
	var err error
	if tx != nil {
		ctx, cancel := context.WithTimeout(context.Background(), metadataTimeout)
		err = tx.end(ctx, false, true)
		cancel()
		if errors.Is(err, stream.ErrFenced) || errors.Is(err, stream.ErrTxnState) {
			err = nil // whoever fenced the producer aborted the transaction
		}
	}
	p.cl.Close()
	p.c.forgetTxn(p)
	return err
}

// Tx is one transaction of a TxProducer; it implements
// stream.Transaction. Its calls are meant for one goroutine.
type Tx struct {
	p *TxProducer

	mu       sync.Mutex
	done     bool            // Commit or Abort was called
	produced bool            // a record was written: franz-go ends the transaction
	groups   map[string]bool // groups added with AddOffsetsToTxn
	failed   error           // a write failed: the transaction cannot commit
}

var _ stream.Transaction = (*Tx)(nil)

// Publish produces records in the transaction and waits for them all, as
// Client.Publish does. Records are validated first and none is sent if
// one fails; the transaction stays usable then, as it does when every
// record fails for an unknown topic or partition. Any other failed write
// leaves the transaction unable to commit (Commit aborts it). It fails with
// stream.ErrFenced once a newer producer took the ID (also when the
// cluster aborted the transaction at its timeout, which fences the
// producer), stream.ErrTxnState after Commit or Abort.
func (tx *Tx) Publish(ctx context.Context, recs ...*stream.Record) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(); err != nil {
		return err
	}
	for _, r := range recs {
		if err := validRecord(r); err != nil {
			return err
		}
	}
	n, err := produceSync(ctx, tx.p.cl, tx.p.refused, recs)
	if n > 0 {
		tx.produced = true
	}
	if err != nil && tx.failed == nil && (n > 0 || !refused(err)) {
		tx.failed = err
	}
	return err
}

// refused reports an error of a record that was never sent, which leaves
// the transaction as it was: an unknown topic or partition.
func refused(err error) bool {
	return errors.Is(err, stream.ErrTopicNotFound) || errors.Is(err, stream.ErrInvalidPartition)
}

// usable says why the transaction takes no more calls. Callers hold tx.mu.
func (tx *Tx) usable() error {
	tx.p.mu.Lock()
	closed := tx.p.closed
	tx.p.mu.Unlock()
	switch {
	case closed:
		return stream.ErrClosed
	case tx.done:
		return errorf(stream.ErrTxnState, "the transaction is over")
	}
	return nil
}

// CommitOffsets stages offsets for group with the transaction (Kafka's
// AddOffsetsToTxn, then TxnOffsetCommit without member or generation).
// The cluster takes them only for a group without live members (else
// stream.ErrStaleGeneration, as Kafka's UNKNOWN_MEMBER_ID maps). Offsets
// must not be negative (stream.ErrInvalidArgument).
func (tx *Tx) CommitOffsets(ctx context.Context, group string, offsets map[stream.TopicPartition]int64) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(); err != nil {
		return err
	}
	if group == "" {
		return errorf(stream.ErrInvalidGroup, "empty group name")
	}
	for k, off := range offsets {
		if off < 0 {
			return errorf(stream.ErrInvalidArgument, "negative offset %d for %s", off, k)
		}
		if err := validTopic(k.Topic); err != nil {
			return err
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	p := tx.p
	pid, epoch, err := p.cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("kafka: transaction of %q: %w", p.id, mapErr(err))
	}
	if !tx.groups[group] {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = p.id, pid, epoch, group
		resp, err := req.RequestWith(ctx, p.cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("kafka: add offsets of group %q to the transaction of %q: %w", group, p.id, mapErr(err))
		}
		tx.groups[group] = true
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = p.id, group, pid, epoch
	byTopic := map[string]int{}
	for k, off := range offsets {
		i, ok := byTopic[k.Topic]
		if !ok {
			i = len(req.Topics)
			byTopic[k.Topic] = i
			t := kmsg.NewTxnOffsetCommitRequestTopic()
			t.Topic = k.Topic
			req.Topics = append(req.Topics, t)
		}
		part := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		part.Partition, part.Offset = k.Partition, off
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, part)
	}
	resp, err := req.RequestWith(ctx, p.cl)
	if err == nil {
	each:
		for _, t := range resp.Topics {
			for _, part := range t.Partitions {
				if err = kerr.ErrorForCode(part.ErrorCode); err != nil {
					break each
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("kafka: commit offsets of group %q in the transaction of %q: %w", group, p.id, mapErr(err))
	}
	return nil
}

// Commit flushes, then commits the transaction (EndTxn): its records
// become visible to read_committed consumers and its staged offsets
// committed, together. If a write of it failed, it aborts instead and
// returns stream.ErrTxnAborted wrapping the failure; it returns
// stream.ErrFenced when a newer producer took the ID (or the cluster
// aborted the transaction at its timeout). Either way the transaction is
// over.
func (tx *Tx) Commit(ctx context.Context) error {
	return tx.end(ctx, true, false)
}

// Abort aborts the transaction: records buffered and not yet sent are
// dropped, what was written stays in the log for read_uncommitted readers,
// staged offsets are discarded.
func (tx *Tx) Abort(ctx context.Context) error {
	return tx.end(ctx, false, false)
}

// end ends the transaction; closing lets TxProducer.Close end it after
// the producer is marked closed.
func (tx *Tx) end(ctx context.Context, commit, closing bool) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done {
		if closing {
			return nil
		}
		return errorf(stream.ErrTxnState, "the transaction is over")
	}
	if !closing {
		if err := tx.usable(); err != nil {
			return err
		}
	}
	tx.done = true
	p := tx.p
	why := tx.failed
	if commit && why == nil {
		if err := p.cl.Flush(ctx); err != nil {
			why = err
		}
	}
	if !commit || why != nil {
		if err := p.cl.AbortBufferedRecords(ctx); err != nil {
			return fmt.Errorf("kafka: abort transaction of %q: %w", p.id, mapErr(err))
		}
		commit = false
	}
	err := tx.endTxn(ctx, commit)
	if commit && err != nil && !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		// The commit was not made (OPERATION_NOT_ATTEMPTED,
		// TRANSACTION_ABORTABLE, an unconfirmed outcome): franz-go's rule
		// is to retry as an abort.
		why = err
		err = tx.endTxn(ctx, false)
	}
	switch {
	case err != nil:
		return fmt.Errorf("kafka: end transaction of %q: %w", p.id, mapErr(err))
	case why != nil:
		return fmt.Errorf("%w: %w", stream.ErrTxnAborted, mapErr(why))
	}
	return nil
}

// endTxn sends EndTxn. franz-go sends it when a record was written in the
// transaction; one that only staged offsets it does not know of, so EndTxn
// is sent here, and EndTransaction then only clears franz-go's state.
func (tx *Tx) endTxn(ctx context.Context, commit bool) error {
	p := tx.p
	if !tx.produced && len(tx.groups) > 0 {
		pid, epoch, err := p.cl.ProducerID(ctx)
		if err != nil {
			return err
		}
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.id, pid, epoch, commit
		resp, err := req.RequestWith(ctx, p.cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return err
		}
		clear(tx.groups) // ended: a retry as an abort has nothing to send
	}
	return p.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}
