package stream

import (
	"context"
	"errors"
	"fmt"
)

// TxSession runs a consume-transform-publish loop exactly once, in the
// spirit of franz-go's GroupTransactSession: a consumer group member and a
// transactional producer whose transactions carry both the outputs and the
// consumed positions. Each step reads, publishes what it derives, and ends:
//
//	s, err := b.NewTxSession("enricher-1", "enricher", []string{"in"}, nil)
//	for {
//		recs, err := s.Poll(ctx)         // opens a transaction if none is
//		for _, r := range recs {
//			err = s.Publish(ctx, transform(r))
//		}
//		committed, err := s.End(ctx, true) // outputs and positions, together
//	}
//
// If a rebalance takes partitions from the member while a transaction is
// open (or the member was evicted), End aborts instead of committing and
// rewinds the member to the group's committed offsets: the records whose
// outputs were dropped are read again, by this member or their new owner,
// and nothing is output twice or lost. The consumer reads ReadCommitted,
// so a chain of sessions passes only committed outputs on.
type TxSession struct {
	c  *Consumer
	p  *TxProducer
	tx *Tx

	// lost is set by a revocation or loss of partitions after the open
	// transaction consumed records: it must not commit.
	lost     bool
	consumed bool // the open transaction's Polls returned records
}

// TxSessionOptions configure a TxSession. Nil takes the defaults.
type TxSessionOptions struct {
	// Consumer configures the member, as Subscribe's options do, but
	// AutoCommit must be off (ErrInvalidConfig): the session commits
	// positions with its transactions; Isolation is ReadCommitted whatever
	// it says. The session chains its own OnRevoked and OnLost before
	// these.
	Consumer ConsumerOptions
	// Tx configures the transactional producer.
	Tx TxOptions
}

// NewTxSession joins group as a member consuming topics and takes
// transactional ID id for its outputs (fencing any earlier holder, see
// TxProducer). It fails as Subscribe and NewTxProducer do.
func (b *Broker) NewTxSession(id, group string, topics []string, opts *TxSessionOptions) (*TxSession, error) {
	var o TxSessionOptions
	if opts != nil {
		o = *opts
	}
	if o.Consumer.AutoCommit {
		return nil, fmt.Errorf("%w: a TxSession commits positions with its transactions: AutoCommit must be off", ErrInvalidConfig)
	}
	o.Consumer.Isolation = ReadCommitted
	s := &TxSession{}
	userRevoked, userLost := o.Consumer.OnRevoked, o.Consumer.OnLost
	o.Consumer.OnRevoked = func(c *Consumer, parts []TopicPartition) {
		if len(parts) > 0 && s.consumed {
			s.lost = true
		}
		if userRevoked != nil {
			userRevoked(c, parts)
		}
	}
	o.Consumer.OnLost = func(c *Consumer, parts []TopicPartition) {
		if s.consumed {
			s.lost = true
		}
		if userLost != nil {
			userLost(c, parts)
		}
	}
	p, err := b.NewTxProducer(id, &o.Tx)
	if err != nil {
		return nil, err
	}
	c, err := b.Subscribe(group, topics, &o.Consumer)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	s.c, s.p = c, p
	return s, nil
}

// Consumer returns the session's group member, for its assignment,
// positions and lag; commit only through End.
func (s *TxSession) Consumer() *Consumer { return s.c }

// Poll returns the next records, as Consumer.Poll does, opening a
// transaction first if none is open.
func (s *TxSession) Poll(ctx context.Context) ([]*Record, error) {
	if s.tx == nil {
		tx, err := s.p.Begin()
		if err != nil {
			return nil, err
		}
		s.tx, s.lost, s.consumed = tx, false, false
	}
	recs, err := s.c.Poll(ctx)
	if len(recs) > 0 {
		s.consumed = true
	}
	return recs, err
}

// Publish publishes records in the open transaction (see Tx.Publish);
// ErrTxnState if none is open (Poll opens one).
func (s *TxSession) Publish(ctx context.Context, recs ...*Record) error {
	if s.tx == nil {
		return fmt.Errorf("%w: no transaction is open: Poll first", ErrTxnState)
	}
	return s.tx.Publish(ctx, recs...)
}

// End ends the open transaction. With commit, it commits the outputs
// published and the member's positions together and reports committed;
// it aborts instead, rewinding the member to the group's committed
// offsets, when commit is false, when a rebalance took partitions during
// the transaction, or when the commit itself could not be made (the member
// lost its generation, a write failed, the transaction timed out): then
// committed is false and err nil, and the next Poll reads those records
// again. err reports what the session cannot go on from: ErrFenced (a
// newer holder of the transactional ID), ErrClosed.
func (s *TxSession) End(ctx context.Context, commit bool) (committed bool, err error) {
	tx := s.tx
	if tx == nil {
		return false, nil
	}
	s.tx = nil
	if commit && !s.lost {
		err := tx.CommitConsumer(s.c)
		if err == nil {
			err = tx.Commit(ctx)
			if err == nil {
				return true, nil
			}
		} else {
			err = errors.Join(err, tx.Abort())
		}
		if fatal(err) {
			return false, err
		}
	} else if err := tx.Abort(); fatal(err) {
		return false, err
	}
	// The outputs are dropped: the inputs must be read again.
	if err := s.c.SeekToCommitted(); err != nil && !errors.Is(err, ErrNotAssigned) {
		return false, err
	}
	return false, nil
}

// fatal reports an error a session cannot recover from by aborting.
func fatal(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrClosed)
}

// Close aborts the open transaction, if any, and closes the member and
// the producer.
func (s *TxSession) Close() error {
	s.tx = nil
	return errors.Join(s.p.Close(), s.c.Close())
}
