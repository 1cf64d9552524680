package embedwatermill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/embedstream/stream"
)

// SubscriberConfig configures a Subscriber. The zero value reads every
// partition of existing topics from the start, without a group.
type SubscriberConfig struct {
	// ConsumerGroup is the consumer group that Subscribe joins: its
	// members (in this process or, on a cluster, anywhere) split the
	// topic's partitions, and Acked messages are committed for the group,
	// so a restarted subscriber goes on where the group left off. Empty:
	// every Subscribe reads all partitions on its own (through a private
	// group of its own that commits nothing), as Watermill's Kafka
	// Subscriber does without a group.
	ConsumerGroup string
	// StartFromLatest makes a group without committed offsets (and every
	// subscription without a ConsumerGroup) start at the end of the log,
	// with the messages published after it subscribed. Default: from the
	// start, so a new group also gets the messages published before it
	// subscribed (which Watermill's tests expect of a persistent Pub/Sub).
	StartFromLatest bool
	// TopicConfig, if set, is the config of the topics that
	// SubscribeInitialize and Subscribe create when they do not exist.
	// Nil: SubscribeInitialize fails with stream.ErrInvalidConfig and
	// Subscribe to a missing topic with stream.ErrTopicNotFound.
	TopicConfig *stream.TopicConfig
	// NackResendSleep is how long a Nacked message waits before it is
	// delivered again (so that a message that keeps failing does not spin).
	// Default 100ms; negative: no wait.
	NackResendSleep time.Duration
	// Balancer assigns the group's partitions (all members of a group
	// must use the same kind). Default stream.RangeBalancer.
	Balancer stream.Balancer
	// Isolation is which records of transactions are delivered:
	// stream.ReadUncommitted (default) or stream.ReadCommitted.
	Isolation stream.IsolationLevel
	// MaxPollRecords caps the records read in one Poll. Default 500.
	MaxPollRecords int
	// BufferSize is how many records read but not yet Acked a partition
	// holds before reading from it pauses (until they are handled); a
	// Poll's records join the queue whole, so it may hold up to
	// BufferSize + MaxPollRecords - 1. Default MaxPollRecords.
	BufferSize int
	// RetrySleep is how long the subscription waits after a failed Poll
	// before it tries again. Default 1s.
	RetrySleep time.Duration
}

// Subscriber is Watermill's message.Subscriber (and
// message.SubscribeInitializer) over a stream.Client. It is safe for
// concurrent use. It does not own the client: close the client after the
// Subscriber.
type Subscriber struct {
	client stream.Client
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	wg     sync.WaitGroup // one per subscription still running
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber that consumes through client. logger
// may be nil (no logging). Negative sizes are stream.ErrInvalidConfig.
func NewSubscriber(client stream.Client, cfg SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", stream.ErrInvalidConfig)
	}
	if cfg.MaxPollRecords < 0 || cfg.BufferSize < 0 || cfg.RetrySleep < 0 {
		return nil, fmt.Errorf("%w: negative MaxPollRecords, BufferSize or RetrySleep", stream.ErrInvalidConfig)
	}
	if cfg.NackResendSleep == 0 {
		cfg.NackResendSleep = 100 * time.Millisecond
	}
	if cfg.MaxPollRecords == 0 {
		cfg.MaxPollRecords = 500
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = cfg.MaxPollRecords
	}
	if cfg.RetrySleep == 0 {
		cfg.RetrySleep = time.Second
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Subscriber{client: client, cfg: cfg, logger: logger, subs: map[*subscription]struct{}{}}, nil
}

// SubscribeInitialize creates topic with SubscriberConfig.TopicConfig (a
// topic that exists is fine); without a TopicConfig it fails with
// stream.ErrInvalidConfig.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return stream.ErrClosed
	}
	if s.cfg.TopicConfig == nil {
		return fmt.Errorf("%w: SubscribeInitialize needs SubscriberConfig.TopicConfig", stream.ErrInvalidConfig)
	}
	return createTopic(context.Background(), s.client, topic, *s.cfg.TopicConfig)
}

// Subscribe consumes topic and returns the channel of its messages: one
// at a time per partition, the next after the last is Acked (which
// commits it, with a ConsumerGroup) or, after a Nack, the same message
// again. The channel closes when ctx ends, the Subscriber closes or the
// client closes; every message's context (with its Origin) is cancelled
// once it is Acked or Nacked, or when its partition moves to another
// member or the subscription ends. After Close it fails with
// stream.ErrClosed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, stream.ErrClosed
	}
	sub := &subscription{
		s: s, topic: topic, group: s.cfg.ConsumerGroup, commits: s.cfg.ConsumerGroup != "",
		out: make(chan *message.Message), parts: map[stream.TopicPartition]*partition{},
		acked: map[stream.TopicPartition]int64{},
	}
	if sub.group == "" {
		sub.group = "embedwatermill-" + watermill.NewUUID()
	}
	sub.log = watermill.LogFields{"topic": topic, "consumer_group": sub.group}
	opts := &stream.GroupOptions{
		Reset: stream.ResetEarliest, MaxPollRecords: s.cfg.MaxPollRecords,
		Balancer: s.cfg.Balancer, Isolation: s.cfg.Isolation,
		OnAssigned: sub.assigned, OnRevoked: sub.revoked, OnLost: sub.lost,
	}
	if s.cfg.StartFromLatest {
		opts.Reset = stream.ResetLatest
	}
	gc, err := s.client.Subscribe(sub.group, []string{topic}, opts)
	if errors.Is(err, stream.ErrTopicNotFound) && s.cfg.TopicConfig != nil {
		if err = createTopic(ctx, s.client, topic, *s.cfg.TopicConfig); err == nil {
			gc, err = s.client.Subscribe(sub.group, []string{topic}, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("embedwatermill: subscribe to %q: %w", topic, err)
	}
	sub.gc = gc
	sub.pauser, _ = gc.(pauser)
	sub.ctx, sub.cancel = context.WithCancel(ctx)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.cancel()
		_ = gc.Close()
		return nil, stream.ErrClosed
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.logger.Info("Subscribed", sub.log)
	go sub.run()
	return sub.out, nil
}

// Close ends every subscription: the messages in flight are not
// committed (they come again to the group's next member), what was Acked
// is committed, and Close returns once every subscription's channel is
// closed. Later Subscribe calls fail with stream.ErrClosed. It does not
// close the client. Calling it again does nothing.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for sub := range s.subs {
		sub.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// pauser is what a GroupConsumer may offer to stop reading a partition
// while keeping it (the embedded *stream.Consumer does). Without it, a
// full partition's records are dropped and read again later (Seek).
type pauser interface {
	Pause(parts ...stream.TopicPartition)
	Resume(parts ...stream.TopicPartition)
}

// commitTimeout bounds a commit: the subscription's context may be over
// when it commits for the last time.
const commitTimeout = 30 * time.Second

// throttleWait is how long a subscription whose consumer cannot pause
// waits before it reads again after dropping a full partition's records,
// unless the partition drains first; Poll also serves the group, so it is
// short.
const throttleWait = 100 * time.Millisecond

// subscription is one Subscribe: a goroutine that owns the GroupConsumer
// (run: Poll, Commit, Seek, Pause, the rebalance callbacks), and one per
// assigned partition that hands its records to out one at a time.
type subscription struct {
	s       *Subscriber
	topic   string
	group   string
	commits bool // false without a ConsumerGroup
	log     watermill.LogFields
	gc      stream.GroupConsumer
	pauser  pauser          // gc's, if it has one
	ctx     context.Context // Subscribe's, also cancelled by Close; messages' contexts derive from it
	cancel  context.CancelFunc
	out     chan *message.Message

	// The consumer state. The rebalance callbacks run inside Poll on run's
	// goroutine, but also on the goroutine that closes the client (its
	// Close revokes every member's partitions), so run holds stateMu
	// whenever it is not in Poll.
	stateMu   sync.Mutex
	parts     map[stream.TopicPartition]*partition
	throttled bool         // records were dropped: wait for blocked to drain
	blocked   []*partition // the partitions whose records were dropped
	until     time.Time    // the end of the throttle, when run polls anyway

	mu         sync.Mutex
	acked      map[stream.TopicPartition]int64 // offsets to commit (next to read)
	kicked     bool                            // something for run to do since it last looked
	pollCancel context.CancelFunc              // ends run's current Poll or wait
}

func (sub *subscription) run() {
	defer sub.finish()
	for sub.ctx.Err() == nil {
		var throttled bool
		var until time.Time
		sub.locked(func() {
			sub.commit()
			sub.pause()
			throttled, until = sub.throttled, sub.until
		})
		ctx, cancel := sub.arm()
		if throttled {
			// Until the throttle ends, however often acks wake run.
			t := time.NewTimer(time.Until(until))
			expired := false
			select {
			case <-ctx.Done():
			case <-t.C:
				expired = true
			}
			t.Stop()
			cancel()
			sub.locked(func() {
				if expired || sub.drained() {
					sub.throttled, sub.blocked = false, nil
				}
			})
			continue
		}
		recs, err := sub.gc.Poll(ctx)
		kicked := ctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			sub.locked(func() { sub.dispatch(recs) })
		case sub.ctx.Err() != nil:
			return
		case errors.Is(err, stream.ErrClosed):
			sub.s.logger.Info("Client closed, subscription ends", sub.log)
			return
		case kicked:
			// A partition has news: an offset to commit, room again.
		case errors.As(err, new(*stream.CorruptError)):
			// The consumer stays at the damage until told otherwise, and a
			// subscription has no one to tell: the records are unreadable
			// and cannot be delivered, so it logs them and goes on after.
			var ce *stream.CorruptError
			errors.As(err, &ce)
			sub.s.logger.Error("Records unreadable, skipped", err, sub.log.Add(watermill.LogFields{
				"partition": ce.Partition, "from": ce.Offset, "to": ce.Next}))
			if err := sub.gc.Seek(stream.TopicPartition{Topic: ce.Topic, Partition: ce.Partition}, ce.Next); err != nil {
				sub.s.logger.Error("Seek past unreadable records failed", err, sub.log)
			}
		default:
			sub.s.logger.Error("Poll failed, retrying", err, sub.log)
			t := time.NewTimer(sub.s.cfg.RetrySleep)
			select {
			case <-sub.ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// locked runs f with stateMu held, released even if f panics: finish,
// deferred, takes it again.
func (sub *subscription) locked(f func()) {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	f()
}

// finish stops the partitions, commits what they Acked, leaves the group
// and closes out.
func (sub *subscription) finish() {
	sub.stateMu.Lock()
	for _, p := range sub.parts {
		p.halt()
	}
	sub.commit()
	clear(sub.parts)
	// Not held through Close: the client's Close may be inside revoked,
	// waiting for stateMu, and Close waits for it.
	sub.stateMu.Unlock()
	if err := sub.gc.Close(); err != nil && !errors.Is(err, stream.ErrClosed) {
		sub.s.logger.Error("Closing the consumer failed", err, sub.log)
	}
	close(sub.out)
	sub.s.mu.Lock()
	delete(sub.s.subs, sub)
	sub.s.mu.Unlock()
	sub.s.logger.Info("Subscription closed", sub.log)
	sub.s.wg.Done()
}

// arm returns the context of run's next Poll or wait: kick cancels it,
// at once if it kicked since run last looked.
func (sub *subscription) arm() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(sub.ctx)
	sub.mu.Lock()
	sub.pollCancel = cancel
	if sub.kicked {
		cancel()
	}
	sub.mu.Unlock()
	return ctx, cancel
}

// kickLocked makes run look again (ending its Poll): there is an offset to
// commit or a partition to read again. Called with sub.mu held.
func (sub *subscription) kickLocked() {
	sub.kicked = true
	if sub.pollCancel != nil {
		sub.pollCancel()
	}
}

// handled records that a partition's message at offset was Acked, which
// left n records in its queue.
func (sub *subscription) handled(tp stream.TopicPartition, offset int64, n int) {
	size := sub.s.cfg.BufferSize
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.commits {
		sub.acked[tp] = offset + 1
		sub.kickLocked()
	} else if n == size-1 || n == size/2 {
		// Under the size again (resume it) or half drained (read again
		// after a throttle).
		sub.kickLocked()
	}
}

// commit commits the offsets Acked since the last commit. Called with
// stateMu held.
func (sub *subscription) commit() {
	sub.mu.Lock()
	sub.kicked = false
	if len(sub.acked) == 0 || !sub.commits {
		sub.mu.Unlock()
		return
	}
	offs := sub.acked
	sub.acked = map[stream.TopicPartition]int64{}
	sub.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sub.ctx), commitTimeout)
	defer cancel()
	if err := sub.gc.CommitOffsets(ctx, offs); err != nil {
		sub.s.logger.Error("Commit failed", err, sub.log)
		if errors.Is(err, stream.ErrStaleGeneration) || errors.Is(err, stream.ErrNotAssigned) || errors.Is(err, stream.ErrClosed) {
			return // the partitions moved on without this member: their messages come again to the new owner
		}
		// Another failure (a cluster's transient one): try them again with
		// the next commit, unless a later Ack already took their place.
		sub.mu.Lock()
		for tp, off := range offs {
			if _, newer := sub.acked[tp]; !newer {
				sub.acked[tp] = off
			}
		}
		sub.mu.Unlock()
		return
	}
	sub.s.logger.Trace("Committed", sub.log.Add(watermill.LogFields{"partitions": len(offs)}))
}

// pause stops reading the partitions whose queues are full, and resumes
// the others.
func (sub *subscription) pause() {
	if sub.pauser == nil {
		return
	}
	var full, free []stream.TopicPartition
	for tp, p := range sub.parts {
		if p.len() >= sub.s.cfg.BufferSize {
			full = append(full, tp)
		} else {
			free = append(free, tp)
		}
	}
	sub.pauser.Pause(full...)
	sub.pauser.Resume(free...)
}

// drained reports whether a partition whose records were dropped has room
// again (or is gone).
func (sub *subscription) drained() bool {
	for _, p := range sub.blocked {
		if sub.parts[p.tp] != p || p.len() <= sub.s.cfg.BufferSize/2 {
			return true
		}
	}
	return false
}

// dispatch queues a Poll's records on their partitions. A partition that
// is full (possible only without a pauser) gets none: its position goes
// back to its first record of this Poll, and run waits for it to drain.
func (sub *subscription) dispatch(recs []*stream.Record) {
	if len(sub.parts) == 0 {
		// Every partition was revoked after Poll returned: only the
		// client's Close does that (a rebalance happens inside Poll), and
		// it releases the records, so they are not touched.
		return
	}
	var batch []delivery
	var cur *partition
	flush := func() {
		if cur != nil && len(batch) > 0 {
			cur.push(batch)
		}
		batch = nil
	}
	var dropped map[*partition]bool
	for _, r := range recs {
		p := sub.parts[stream.TopicPartition{Topic: r.Topic, Partition: r.Partition}]
		if p != cur {
			flush()
			cur = p
			if p != nil && !dropped[p] && sub.pauser == nil && p.len() >= sub.s.cfg.BufferSize {
				if err := sub.gc.Seek(p.tp, r.Offset); err != nil {
					// Without the rewind, dropping would skip them: queue
					// them after all.
					sub.s.logger.Error("Seek failed", err, sub.log)
					batch = append(batch, unmarshal(r))
					continue
				}
				if dropped == nil {
					dropped = map[*partition]bool{}
				}
				dropped[p] = true
				sub.blocked = append(sub.blocked, p)
				if !sub.throttled {
					sub.throttled, sub.until = true, time.Now().Add(throttleWait)
				}
			}
		}
		if p == nil || dropped[p] {
			continue // not assigned (cannot happen) or full
		}
		batch = append(batch, unmarshal(r))
	}
	flush()
}

// assigned starts the new partitions (a rebalance callback, on run's
// goroutine).
func (sub *subscription) assigned(parts []stream.TopicPartition) {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	for _, tp := range parts {
		if sub.parts[tp] != nil {
			continue
		}
		p := &partition{sub: sub, tp: tp, ready: make(chan struct{}, 1),
			stop: make(chan struct{}), done: make(chan struct{})}
		sub.parts[tp] = p
		go p.run()
	}
	if len(parts) > 0 {
		sub.s.logger.Debug("Partitions assigned", sub.log.Add(watermill.LogFields{"partitions": len(parts)}))
	}
}

// revoked stops the partitions taken away and commits what they Acked,
// before the group gives them to another member.
func (sub *subscription) revoked(parts []stream.TopicPartition) {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	sub.stop(parts)
	sub.commit()
	if len(parts) > 0 {
		sub.s.logger.Debug("Partitions revoked", sub.log.Add(watermill.LogFields{"partitions": len(parts)}))
	}
}

// stop halts the partitions' deliveries (each waits for its message in
// flight) and forgets them. Called with stateMu held.
func (sub *subscription) stop(parts []stream.TopicPartition) {
	for _, tp := range parts {
		if p := sub.parts[tp]; p != nil {
			p.halt()
			delete(sub.parts, tp)
		}
	}
}

// lost stops the partitions of an evicted member: they are already
// another's, so what they Acked cannot be committed (it comes again).
func (sub *subscription) lost(parts []stream.TopicPartition) {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	sub.stop(parts)
	sub.mu.Lock()
	for _, tp := range parts {
		delete(sub.acked, tp)
	}
	sub.mu.Unlock()
	sub.s.logger.Info("Partitions lost (member evicted)", sub.log.Add(watermill.LogFields{"partitions": len(parts)}))
}

// partition hands one assigned partition's records to the output
// channel, one at a time, each until it is Acked.
type partition struct {
	sub   *subscription
	tp    stream.TopicPartition
	mu    sync.Mutex
	queue []delivery
	ready chan struct{} // capacity 1: the queue got records
	stop  chan struct{} // closed by halt
	done  chan struct{} // closed when run returns
}

func (p *partition) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

func (p *partition) push(ds []delivery) {
	p.mu.Lock()
	p.queue = append(p.queue, ds...)
	p.mu.Unlock()
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// halt stops run and waits for it: a message in flight stays uncommitted
// and its context is cancelled.
func (p *partition) halt() {
	close(p.stop)
	<-p.done
}

func (p *partition) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			select {
			case <-p.ready:
				continue
			case <-p.stop:
				return
			}
		}
		d := p.queue[0]
		p.mu.Unlock()
		if !p.deliver(&d) {
			return
		}
		p.mu.Lock()
		p.queue[0] = delivery{}
		p.queue = p.queue[1:]
		n := len(p.queue)
		p.mu.Unlock()
		p.sub.handled(p.tp, d.origin.Offset, n)
	}
}

// deliver sends d until it is Acked (true), or until the partition stops
// (false); a Nack sends it again after NackResendSleep.
func (p *partition) deliver(d *delivery) bool {
	sub := p.sub
	for {
		ctx, cancel := context.WithCancel(sub.ctx)
		msg := d.message(ctx)
		select {
		case sub.out <- msg:
		case <-p.stop:
			cancel()
			return false
		case <-sub.ctx.Done():
			cancel()
			return false
		}
		select {
		case <-msg.Acked():
			cancel()
			return true
		case <-msg.Nacked():
			cancel()
		case <-p.stop:
			cancel()
			return false
		case <-sub.ctx.Done():
			cancel()
			return false
		}
		if wait := sub.s.cfg.NackResendSleep; wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.stop:
				t.Stop()
				return false
			case <-sub.ctx.Done():
				t.Stop()
				return false
			}
		}
	}
}
