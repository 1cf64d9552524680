package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DeadLetterSuffix names a topic's dead-letter topic by default: orders
// fails over to orders.DLT, as Spring Kafka's DeadLetterPublishingRecoverer
// names it up to Spring Kafka 3.2 (3.3 and later name it orders-dlt: set
// HandlerOptions.DeadLetter to match).
const DeadLetterSuffix = ".DLT"

// The headers a dead-letter copy carries, Spring Kafka's names and
// encodings (partition a 4-byte and offset and timestamp 8-byte big-endian
// integers, the rest strings), so that a Spring application reads our dead
// letters and we read its: DeadLetterOf decodes them.
const (
	headerDLTTopic         = "kafka_dlt-original-topic"
	headerDLTPartition     = "kafka_dlt-original-partition"
	headerDLTOffset        = "kafka_dlt-original-offset"
	headerDLTTimestamp     = "kafka_dlt-original-timestamp"
	headerDLTTimestampType = "kafka_dlt-original-timestamp-type"
	headerDLTGroup         = "kafka_dlt-original-consumer-group"
	headerDLTErrorMessage  = "kafka_dlt-exception-message"
	headerDLTErrorType     = "kafka_dlt-exception-fqcn"
)

// finishTimeout bounds a commit of Handle's and the writing of a dead
// letter, made with a context of their own: a stop must not cut a record's
// dead letter from its commit, nor lose the commit of what was handled.
const finishTimeout = 10 * time.Second

// HandlerOptions configure Handle and HandleBatch. nil or the zero value
// means the defaults.
type HandlerOptions struct {
	// Group configures the member as Subscribe's options do (Reset,
	// Balancer, InstanceID, Isolation, MaxPollRecords and the rebalance
	// callbacks). AutoCommit must be off (ErrInvalidConfig): the handler
	// commits a record once it is handled or dead-lettered, never before.
	Group GroupOptions
	// Concurrency is how many partitions are handled at once (default 1).
	// A partition's records are handled one at a time, in offset order,
	// whatever the concurrency.
	Concurrency int
	// MaxAttempts is how many times a record (HandleBatch: a batch) is
	// handled before it has failed (default 3; 1: no retry). An error
	// wrapped by Permanent fails it at the first attempt.
	MaxAttempts int
	// Backoff is the wait before retry n (n = 1 before the second
	// attempt). Default: 100 ms, doubling, at most 5 s.
	Backoff func(retry int) time.Duration
	// DeadLetter names the topic a failed record is copied to; default:
	// its topic + DeadLetterSuffix. A topic that does not exist is created
	// with the default TopicConfig (create it beforehand for another). ""
	// means no dead letter for the record: Handle commits what was handled
	// before it, stops (once the poll's other partitions are handled) and
	// returns a *HandlerError, leaving the record to the group's next
	// member.
	DeadLetter func(r *Record) string
	// OnError, if set, is called after each failed attempt with the
	// records it handled (one for Handle), the attempt (from 1) and the
	// error: for logging and metrics. It runs on the handling goroutine,
	// so concurrently for different partitions when Concurrency > 1.
	OnError func(recs []*Record, attempt int, err error)
}

// HandlerError is a record's final failure that was not dead-lettered
// (HandlerOptions.DeadLetter returned ""): Handle stopped there.
type HandlerError struct {
	Topic     string
	Partition int32
	Offset    int64
	Attempts  int   // how many times it was handled
	Err       error // the handler's last error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("stream: record %s/%d@%d failed after %d attempts: %v", e.Topic, e.Partition, e.Offset, e.Attempts, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// BatchError is what a HandleBatch function returns to say which record of
// the batch failed: those before Index were handled, the one at Index is
// the failure (Err, its cause in the dead letter). When the batch has
// failed its last attempt, the records before Index are committed, the one
// at Index is dead-lettered, and those after it are handled again as a new
// batch. Any other error fails the whole batch: every record of it is
// dead-lettered. An Index outside the batch is a bug in the function:
// HandleBatch stops with ErrInvalidArgument.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("stream: batch record %d: %v", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying (a record that can never be
// handled, say one that does not parse): Handle gives the record up at
// once, to its dead-letter topic. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// DeadLetterInfo is where a dead-lettered record came from and why it
// failed, as its headers say.
type DeadLetterInfo struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time // the original record's
	Group     string    // the consumer group that failed it
	Error     string    // the error's message
	ErrorType string    // the error's Go type (Spring: the exception's class)
}

// DeadLetterOf decodes the dead-letter headers of r, a record read from a
// dead-letter topic (written by Handle, or by Spring Kafka's
// DeadLetterPublishingRecoverer). ok is false if r has none. A record
// dead-lettered more than once carries each failure's headers; the last
// wins.
func DeadLetterOf(r *Record) (info DeadLetterInfo, ok bool) {
	for _, h := range r.Headers {
		switch h.Key {
		case headerDLTTopic:
			info.Topic, ok = string(h.Value), true
		case headerDLTPartition:
			if len(h.Value) == 4 {
				info.Partition = int32(binary.BigEndian.Uint32(h.Value))
			}
		case headerDLTOffset:
			if len(h.Value) == 8 {
				info.Offset = int64(binary.BigEndian.Uint64(h.Value))
			}
		case headerDLTTimestamp:
			if len(h.Value) == 8 {
				info.Timestamp = time.UnixMilli(int64(binary.BigEndian.Uint64(h.Value)))
			}
		case headerDLTGroup:
			info.Group = string(h.Value)
		case headerDLTErrorMessage:
			info.Error = string(h.Value)
		case headerDLTErrorType:
			info.ErrorType = string(h.Value)
		}
	}
	return info, ok
}

// Handle joins group as a member consuming topics on c (either backend)
// and calls fn for every record it is assigned, until ctx ends; then it
// commits what was handled, leaves the group and returns nil. A record is
// committed once fn returns nil for it, or once it has failed and been
// copied to its dead-letter topic: fn is retried up to MaxAttempts times,
// Backoff apart (at once given up if the error is Permanent), and the copy
// keeps the record's key, value and headers and adds headers saying where
// it came from and why it failed (see DeadLetterOf). Delivery is at least
// once: a record being handled when the member loses its partition, or
// when the process stops, is handled again by the next member.
//
// Records are polled as Poll returns them and the next Poll waits until
// every record of this one is handled and committed; within a poll, up to
// Concurrency partitions are handled at once, each in offset order. The
// record passed to fn is valid until fn returns (Clone what you keep). The
// context passed to fn ends when ctx does: fn should return then; its
// record is not retried, not dead-lettered and not committed (a dead letter
// already being written is finished and committed). A panic in fn is not
// recovered. A poll's handling, retries and backoffs included, must fit in
// the member's liveness bound (the embedded broker's MaxPollInterval, a
// cluster's rebalance timeout): past it the member is evicted, its commit
// refused, and the records handled again by the next owner.
//
// Handle returns an error when it cannot go on: opts are invalid
// (ErrInvalidConfig), fn or c is nil (ErrInvalidArgument), the member fails
// (Subscribe's or Poll's error: ErrClosed, ErrNoCommittedOffset under
// ResetNone, ...), a commit fails for another reason than the member
// losing its partitions (those records are handled again), a dead letter
// cannot be written, or a record failed without a dead-letter topic (a
// *HandlerError). A failure in one partition stops Handle once the poll's
// other partitions are handled and committed; when more than one thing
// failed, the error joins them (errors.As finds each).
func Handle(ctx context.Context, c Client, group string, topics []string, fn func(ctx context.Context, r *Record) error, opts *HandlerOptions) error {
	if fn == nil {
		return fmt.Errorf("%w: Handle without a function", ErrInvalidArgument)
	}
	return runHandler(ctx, c, group, topics, opts, func(h *handler, ctx context.Context, recs []*Record) (int64, error) {
		return h.records(ctx, recs, fn)
	})
}

// HandleBatch is Handle with fn called for a partition's records of one
// poll at once, in offset order, all committed when fn returns nil. A batch
// is retried whole; when it has failed its last attempt, a *BatchError
// from fn says which record failed (those before it are committed, it is
// dead-lettered, those after it are handled again as a new batch); any
// other error dead-letters every record of the batch.
func HandleBatch(ctx context.Context, c Client, group string, topics []string, fn func(ctx context.Context, recs []*Record) error, opts *HandlerOptions) error {
	if fn == nil {
		return fmt.Errorf("%w: HandleBatch without a function", ErrInvalidArgument)
	}
	return runHandler(ctx, c, group, topics, opts, func(h *handler, ctx context.Context, recs []*Record) (int64, error) {
		return h.batches(ctx, recs, fn)
	})
}

// handler is one run of Handle or HandleBatch.
type handler struct {
	c           Client
	group       string
	groupOpts   GroupOptions
	concurrency int
	maxAttempts int
	backoff     func(int) time.Duration
	deadLetter  func(*Record) string
	onError     func([]*Record, int, error)

	mu      sync.Mutex
	created map[string]bool // dead-letter topics made or found to exist
}

// partitionFunc handles one partition's records of a poll, in order, and
// returns the offset to commit (-1: none was handled) and an error that
// stops the handler.
type partitionFunc func(h *handler, ctx context.Context, recs []*Record) (next int64, err error)

func defaultBackoff(retry int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < retry && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

func defaultDeadLetter(r *Record) string { return r.Topic + DeadLetterSuffix }

func newHandler(c Client, group string, opts *HandlerOptions) (*handler, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: Handle without a Client", ErrInvalidArgument)
	}
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Group.AutoCommit:
		return nil, fmt.Errorf("%w: Handle commits itself: Group.AutoCommit must be off", ErrInvalidConfig)
	case o.Concurrency < 0:
		return nil, fmt.Errorf("%w: Concurrency %d", ErrInvalidConfig, o.Concurrency)
	case o.MaxAttempts < 0:
		return nil, fmt.Errorf("%w: MaxAttempts %d", ErrInvalidConfig, o.MaxAttempts)
	}
	h := &handler{c: c, group: group, groupOpts: o.Group, concurrency: max(o.Concurrency, 1), maxAttempts: o.MaxAttempts,
		backoff: o.Backoff, deadLetter: o.DeadLetter, onError: o.OnError, created: map[string]bool{}}
	if h.maxAttempts == 0 {
		h.maxAttempts = 3
	}
	if h.backoff == nil {
		h.backoff = defaultBackoff
	}
	if h.deadLetter == nil {
		h.deadLetter = defaultDeadLetter
	}
	return h, nil
}

func runHandler(ctx context.Context, c Client, group string, topics []string, opts *HandlerOptions, part partitionFunc) error {
	h, err := newHandler(c, group, opts)
	if err != nil {
		return err
	}
	gc, err := c.Subscribe(group, topics, &h.groupOpts)
	if err != nil {
		return err
	}
	err = h.loop(ctx, gc, part)
	if cerr := gc.Close(); err == nil && ctx.Err() == nil {
		err = cerr
	}
	return err
}

// loop polls, handles each poll's records and commits them, until ctx ends
// or something fails.
func (h *handler) loop(ctx context.Context, gc GroupConsumer, part partitionFunc) error {
	for {
		recs, err := gc.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		byPartition := splitByPartition(recs)
		next := make([]int64, len(byPartition))
		errs := make([]error, len(byPartition))
		h.each(len(byPartition), func(i int) {
			next[i], errs[i] = part(h, ctx, byPartition[i])
		})
		offsets := map[TopicPartition]int64{}
		for i, recs := range byPartition {
			if next[i] >= 0 {
				offsets[TopicPartition{Topic: recs[0].Topic, Partition: recs[0].Partition}] = next[i]
			}
		}
		errs = slices.DeleteFunc(append(errs, h.commit(ctx, gc, offsets)), func(err error) bool { return err == nil })
		switch len(errs) {
		case 0:
		case 1:
			return errs[0]
		default:
			return errors.Join(errs...)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// each runs f(0..n-1), up to h.concurrency at once; on the calling
// goroutine when one at a time.
func (h *handler) each(n int, f func(i int)) {
	if h.concurrency == 1 || n == 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, h.concurrency)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// commit commits offsets, with a context of its own (see finishTimeout). A member that lost partitions
// meanwhile (evicted, or the group moved on) commits nothing: their
// records are handled again by their new owner, and the next Poll rejoins.
func (h *handler) commit(ctx context.Context, gc GroupConsumer, offsets map[TopicPartition]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	err := gc.CommitOffsets(ctx, offsets)
	if errors.Is(err, ErrStaleGeneration) || errors.Is(err, ErrRebalanceInProgress) || errors.Is(err, ErrNotAssigned) {
		return nil
	}
	return err
}

// splitByPartition groups a poll's records by partition, each group in
// offset order (Poll's order within a partition).
func splitByPartition(recs []*Record) [][]*Record {
	var out [][]*Record
	index := map[TopicPartition]int{}
	for _, r := range recs {
		tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
		i, ok := index[tp]
		if !ok {
			i = len(out)
			index[tp] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// records handles a partition's records one at a time.
func (h *handler) records(ctx context.Context, recs []*Record, fn func(context.Context, *Record) error) (int64, error) {
	next := int64(-1)
	for i, r := range recs {
		if ctx.Err() != nil {
			return next, nil
		}
		attempts, err := h.attempt(ctx, recs[i:i+1:i+1], func() error { return fn(ctx, r) })
		if err == nil {
			next = r.Offset + 1
			continue
		}
		if ctx.Err() != nil {
			return next, nil
		}
		if err := h.giveUp(ctx, r, attempts, err); err != nil {
			return next, err
		}
		next = r.Offset + 1
	}
	return next, nil
}

// batches handles a partition's records of a poll as one batch, split at a
// *BatchError's record once the batch has failed.
func (h *handler) batches(ctx context.Context, recs []*Record, fn func(context.Context, []*Record) error) (int64, error) {
	next := int64(-1)
	for len(recs) > 0 {
		if ctx.Err() != nil {
			return next, nil
		}
		batch := recs
		attempts, err := h.attempt(ctx, batch, func() error { return fn(ctx, batch) })
		if err == nil {
			return batch[len(batch)-1].Offset + 1, nil
		}
		if ctx.Err() != nil {
			return next, nil
		}
		var be *BatchError
		if errors.As(err, &be) {
			if be.Index < 0 || be.Index >= len(batch) {
				return next, fmt.Errorf("%w: BatchError.Index %d in a batch of %d records", ErrInvalidArgument, be.Index, len(batch))
			}
			if be.Index > 0 {
				next = batch[be.Index-1].Offset + 1
			}
			failed, cause := batch[be.Index], be.Err
			if cause == nil {
				cause = be
			}
			if err := h.giveUp(ctx, failed, attempts, cause); err != nil {
				return next, err
			}
			next, recs = failed.Offset+1, batch[be.Index+1:]
			continue
		}
		for _, r := range batch {
			if err := h.giveUp(ctx, r, attempts, err); err != nil {
				return next, err
			}
			next = r.Offset + 1
		}
		return next, nil
	}
	return next, nil
}

// attempt calls try until it succeeds, its error is Permanent, MaxAttempts
// are used up or ctx ends, waiting Backoff between attempts. It returns
// the attempts made and the last error (nil on success).
func (h *handler) attempt(ctx context.Context, recs []*Record, try func() error) (int, error) {
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || ctx.Err() != nil {
			return attempt, err
		}
		if h.onError != nil {
			h.onError(recs, attempt, err)
		}
		var perm *permanentError
		if attempt >= h.maxAttempts || errors.As(err, &perm) {
			return attempt, err
		}
		if d := h.backoff(attempt); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return attempt, err
			}
		}
	}
}

// giveUp copies r, which failed, to its dead-letter topic, or returns a
// *HandlerError if it has none.
func (h *handler) giveUp(ctx context.Context, r *Record, attempts int, cause error) error {
	var perm *permanentError
	if errors.As(cause, &perm) {
		cause = perm.err
	}
	if cause == nil {
		cause = errors.New("stream: failed without an error")
	}
	topic := h.deadLetter(r)
	if topic == "" {
		return &HandlerError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Attempts: attempts, Err: cause}
	}
	dl := &Record{Topic: topic, Partition: AnyPartition, Key: r.Key, Value: r.Value,
		Headers: append(slices.Clip(r.Headers),
			Header{Key: headerDLTTopic, Value: []byte(r.Topic)},
			Header{Key: headerDLTPartition, Value: binary.BigEndian.AppendUint32(nil, uint32(r.Partition))},
			Header{Key: headerDLTOffset, Value: binary.BigEndian.AppendUint64(nil, uint64(r.Offset))},
			Header{Key: headerDLTTimestamp, Value: binary.BigEndian.AppendUint64(nil, uint64(r.Timestamp.UnixMilli()))},
			Header{Key: headerDLTTimestampType, Value: []byte("CreateTime")},
			Header{Key: headerDLTGroup, Value: []byte(h.group)},
			Header{Key: headerDLTErrorMessage, Value: []byte(cause.Error())},
			Header{Key: headerDLTErrorType, Value: fmt.Appendf(nil, "%T", cause)},
		)}
	// Once begun, a dead letter is written and then committed whatever the
	// stop: cut in between, the next member would write it again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := h.ensureTopic(ctx, topic); err != nil {
		return err
	}
	if err := h.c.Publish(ctx, dl); err != nil {
		return fmt.Errorf("stream: dead-lettering %s/%d@%d to %s: %w", r.Topic, r.Partition, r.Offset, topic, err)
	}
	return nil
}

// ensureTopic creates a dead-letter topic the first time this run writes to
// it, unless it exists.
func (h *handler) ensureTopic(ctx context.Context, topic string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.created[topic] {
		return nil
	}
	if err := h.c.CreateTopic(ctx, topic, TopicConfig{}); err != nil && !errors.Is(err, ErrTopicExists) {
		return fmt.Errorf("stream: creating dead-letter topic %s: %w", topic, err)
	}
	h.created[topic] = true
	return nil
}
