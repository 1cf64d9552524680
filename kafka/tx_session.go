package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TxSession is a consume-transform-publish loop on a cluster that runs
// exactly once (NewTxSession returns one; it implements
// stream.TransactSession): franz-go's GroupTransactSession, a group member
// reading read_committed whose transactions carry both its outputs and its
// consumed positions (TxnOffsetCommit with the member's generation, so a
// member that lost its partitions cannot commit them).
//
// If the group rebalances during a transaction, End aborts it and rewinds
// the member to the group's committed offsets, as on the embedded side.
// Unlike the embedded TxSession, the rebalance callbacks of its
// GroupOptions run on franz-go's group goroutine, which may be while Poll
// is blocked or while the application processes records. Poll, Publish,
// End and Close are meant for one goroutine.
type TxSession struct {
	c     *Client
	s     *kgo.GroupTransactSession
	id    string
	max   int // MaxPollRecords
	refus *refusals

	mu     sync.Mutex
	inTxn  bool  // Begin was called and End was not
	failed error // a write failed: End must abort
	closed bool
}

var _ stream.TransactSession = (*TxSession)(nil)

// NewTxSession joins group as a member consuming topics (in the
// background, as Subscribe does) with transactional ID id for its outputs
// (kgo.NewGroupTransactSession with kgo.TransactionalID). It initializes
// the ID with the cluster before returning, which fences any earlier
// holder of it. opts map as Subscribe maps them, but AutoCommit must be off
// (stream.ErrInvalidConfig) and the member reads read_committed whatever
// Isolation says; tx.Timeout maps to kgo.TransactionTimeout as for
// NewTxProducer. It fails as Subscribe and NewTxProducer do.
func (c *Client) NewTxSession(ctx context.Context, id, group string, topics []string, opts *stream.GroupOptions, tx *stream.TxOptions) (stream.TransactSession, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if err := validTxnID(id); err != nil {
		return nil, err
	}
	timeout, err := txnTimeout(tx)
	if err != nil {
		return nil, err
	}
	o, reset, bal, err := groupConfig(group, topics, opts)
	if err != nil {
		return nil, err
	}
	if o.AutoCommit {
		return nil, errorf(stream.ErrInvalidConfig, "a transactional session commits positions with its transactions: AutoCommit must be off")
	}
	if _, err := c.topicPartitions(ctx, topics...); err != nil {
		return nil, err
	}
	s := &TxSession{c: c, id: id, max: o.MaxPollRecords, refus: &refusals{}}
	kopts := append(c.opts.producer(s.refus),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(bal),
		kgo.ConsumeResetOffset(reset),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(timeout),
	)
	if o.InstanceID != "" {
		kopts = append(kopts, kgo.InstanceID(o.InstanceID))
	}
	callback := func(f func([]stream.TopicPartition)) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if parts := sortedTPs(m); len(parts) > 0 {
				f(parts)
			}
		}
	}
	if f := o.OnAssigned; f != nil {
		kopts = append(kopts, kgo.OnPartitionsAssigned(callback(f)))
	}
	if f := o.OnRevoked; f != nil {
		kopts = append(kopts, kgo.OnPartitionsRevoked(callback(f)))
	}
	if f := o.OnLost; f != nil {
		kopts = append(kopts, kgo.OnPartitionsLost(callback(f)))
	}
	if s.s, err = kgo.NewGroupTransactSession(kopts...); err != nil {
		return nil, errorf(stream.ErrInvalidConfig, "kafka: %v", err)
	}
	if _, _, err := s.s.Client().ProducerID(ctx); err != nil {
		s.s.Close()
		return nil, fmt.Errorf("kafka: init transactional id %q: %w", id, mapErr(err))
	}
	if err := c.keepTxn(s); err != nil {
		s.s.Close()
		return nil, err
	}
	return s, nil
}

// Kgo returns the session's franz-go session, for what
// stream.TransactSession does not cover. Do not Close it, poll with it or
// begin or end transactions with it.
func (s *TxSession) Kgo() *kgo.GroupTransactSession { return s.s }

// Poll returns the next records (read_committed), at most
// MaxPollRecords, opening a transaction first if none is open. It blocks
// until there are some, ctx ends (its error) or the session closes
// (stream.ErrClosed).
func (s *TxSession) Poll(ctx context.Context) ([]*stream.Record, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, stream.ErrClosed
	}
	if !s.inTxn {
		if err := s.s.Begin(); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("kafka: begin transaction of %q: %w", s.id, mapErr(err))
		}
		s.inTxn, s.failed = true, nil
	}
	s.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs := s.s.PollRecords(ctx, s.max)
		var out []*stream.Record
		fs.EachRecord(func(kr *kgo.Record) { out = append(out, FromKgo(kr)) })
		if len(out) > 0 {
			return out, nil
		}
		if err := pollErr(ctx, fs); err != nil {
			return nil, err
		}
	}
}

// pollErr picks the error to report from a poll without records, nil
// for what the group handles itself (rebalances, resets, a deleted topic).
func pollErr(ctx context.Context, fs kgo.Fetches) error {
	for _, fe := range fs.Errors() {
		var dl *kgo.ErrDataLoss
		var gs *kgo.ErrGroupSession
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			if err := ctx.Err(); err != nil {
				return err
			}
		case errors.Is(fe.Err, kgo.ErrClientClosed):
			return stream.ErrClosed
		case errors.As(fe.Err, &dl), errors.As(fe.Err, &gs),
			errors.Is(fe.Err, kerr.UnknownTopicOrPartition), errors.Is(fe.Err, kerr.UnknownTopicID):
		default:
			return fmt.Errorf("kafka: poll %s/%d: %w", fe.Topic, fe.Partition, mapErr(fe.Err))
		}
	}
	return nil
}

// Publish produces records in the open transaction and waits for them, as
// Client.Publish does; stream.ErrTxnState if none is open (Poll opens one).
// A write that fails (other than for an unknown topic or partition, with
// nothing written) makes End abort.
func (s *TxSession) Publish(ctx context.Context, recs ...*stream.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return stream.ErrClosed
	}
	if !s.inTxn {
		return errorf(stream.ErrTxnState, "no transaction is open: Poll first")
	}
	for _, r := range recs {
		if err := validRecord(r); err != nil {
			return err
		}
	}
	n, err := produceSync(ctx, s.s.Client(), s.refus, recs)
	if err != nil && s.failed == nil && (n > 0 || !refused(err)) {
		s.failed = err
	}
	return err
}

// End ends the open transaction (kgo's GroupTransactSession.End): with
// commit, it commits the outputs and the member's positions together and
// reports committed; it aborts instead, rewinding the member to the
// group's committed offsets, when commit is false, when the group
// rebalanced during the transaction, when a write failed, or when the
// offsets could not be committed. err is what franz-go does not recover
// from (stream.ErrFenced when a newer session took the ID, stream.ErrClosed).
func (s *TxSession) End(ctx context.Context, commit bool) (committed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, stream.ErrClosed
	}
	if !s.inTxn {
		return false, nil
	}
	s.inTxn = false
	try := kgo.TransactionEndTry(commit && s.failed == nil)
	committed, err = s.s.End(ctx, try)
	if err != nil {
		return false, fmt.Errorf("kafka: end transaction of %q: %w", s.id, mapErr(err))
	}
	return committed, nil
}

// Close aborts the open transaction, if any, and leaves the group. It is
// idempotent.
func (s *TxSession) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	inTxn := s.inTxn
	s.inTxn = false
	s.mu.Unlock()
	var err error
	if inTxn {
		ctx, cancel := context.WithTimeout(context.Background(), metadataTimeout)
		_, err = s.s.End(ctx, kgo.TryAbort)
		cancel()
		if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
			err = nil // whoever fenced the session aborted the transaction
		}
	}
	s.s.Close()
	s.c.forgetTxn(s)
	if err != nil {
		return fmt.Errorf("kafka: abort transaction of %q: %w", s.id, mapErr(err))
	}
	return nil
}
