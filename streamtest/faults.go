package streamtest

import (
	"context"
	"sync"
	"time"

	"github.com/embedstream/stream"
)

// Publisher is what code that publishes records synchronously needs.
// *stream.Broker satisfies it, and so does *FaultyPublisher: write the code
// under test against Publisher, give it the broker in production and a
// FaultyPublisher wrapping the broker in tests.
type Publisher interface {
	Publish(ctx context.Context, recs ...*stream.Record) error
}

// Poller is what a consume loop needs to fetch records. *stream.Consumer
// satisfies it.
type Poller interface {
	Poll(ctx context.Context) ([]*stream.Record, error)
}

// Committer is what a consume loop needs to commit its progress.
// *stream.Consumer satisfies it.
type Committer interface {
	Commit(ctx context.Context) error
}

// PollCommitter is a consume loop's whole view of a consumer: Poll, then
// Commit. *stream.Consumer satisfies it, and so does *FaultyConsumer.
type PollCommitter interface {
	Poller
	Committer
}

var (
	_ Publisher     = (*stream.Broker)(nil)
	_ PollCommitter = (*stream.Consumer)(nil)
	_ Publisher     = (*FaultyPublisher)(nil)
	_ PollCommitter = (*FaultyConsumer)(nil)
	_ Poller        = (*FaultyPoller)(nil)
	_ Committer     = (*FaultyCommitter)(nil)
)

// fault is what one call of a wrapped method does instead of, or before,
// calling through.
type fault struct {
	err        error         // returned
	afterWrite bool          // call through first, then return err
	delay      time.Duration // wait this long (or until ctx ends), then call through
}

// faults is a queue of faults for one method, one consumed per call, plus a
// sticky error used when the queue is empty. The zero value injects nothing.
type faults struct {
	mu     sync.Mutex
	queue  []fault
	always error
	calls  int
}

func (f *faults) push(x fault) {
	f.mu.Lock()
	f.queue = append(f.queue, x)
	f.mu.Unlock()
}

func (f *faults) setAlways(err error) {
	f.mu.Lock()
	f.always = err
	f.mu.Unlock()
}

func (f *faults) heal() {
	f.mu.Lock()
	f.queue, f.always = nil, nil
	f.mu.Unlock()
}

// next counts a call and returns the fault to apply to it, if any.
func (f *faults) next() (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.queue) > 0 {
		x := f.queue[0]
		f.queue = f.queue[1:]
		return x, true
	}
	if f.always != nil {
		return fault{err: f.always}, true
	}
	return fault{}, false
}

func (f *faults) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// mustErr rejects a nil error: a fault that "fails" with nil would report
// success for a call that never happened.
func mustErr(err error) error {
	if err == nil {
		panic("streamtest: a fault needs a non-nil error")
	}
	return err
}

// sleep waits d, or until ctx ends. Inside a testing/synctest bubble the
// wait is virtual.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FaultyPublisher wraps a Publisher and makes chosen calls fail, so a test
// can check how the code under test handles a failed publish. Without
// faults queued it passes every call through. Use it by pointer; it is safe
// for concurrent use.
//
//	p := &streamtest.FaultyPublisher{Publisher: b}
//	p.FailNext(errors.New("disk full"))
//	svc := orders.NewService(p) // depends on streamtest.Publisher-like interface
//
// Faults apply to calls in order: each FailNext or FailNextAfterWrite
// queues one faulty call; FailAlways applies once the queue is empty, until
// Heal.
type FaultyPublisher struct {
	// Publisher receives the calls that go through, typically the
	// *stream.Broker.
	Publisher Publisher

	f faults
}

// NewFaultyPublisher returns a FaultyPublisher wrapping p.
func NewFaultyPublisher(p Publisher) *FaultyPublisher { return &FaultyPublisher{Publisher: p} }

// Publish calls through to the wrapped Publisher unless a fault is due.
func (p *FaultyPublisher) Publish(ctx context.Context, recs ...*stream.Record) error {
	x, ok := p.f.next()
	if !ok {
		return p.Publisher.Publish(ctx, recs...)
	}
	if x.afterWrite {
		if err := p.Publisher.Publish(ctx, recs...); err != nil {
			return err
		}
	}
	return x.err
}

// FailNext makes the next Publish return err without writing anything: a
// publish that failed cleanly. err must not be nil (FailNext panics).
func (p *FaultyPublisher) FailNext(err error) { p.f.push(fault{err: mustErr(err)}) }

// FailNextAfterWrite makes the next Publish write its records and then
// return err: the write happened but its acknowledgement was lost (a
// timeout, a crash between write and reply). Code that retries will publish
// the records twice; this is how to test that it copes (idempotent
// consumers, deduplication by key).
func (p *FaultyPublisher) FailNextAfterWrite(err error) {
	p.f.push(fault{err: mustErr(err), afterWrite: true})
}

// FailAlways makes every Publish return err, without writing, once the
// queued faults are used up, until Heal.
func (p *FaultyPublisher) FailAlways(err error) { p.f.setAlways(err) }

// Heal drops queued faults and FailAlways: calls go through again.
func (p *FaultyPublisher) Heal() { p.f.heal() }

// Calls returns how many times Publish was called, faulty calls included.
func (p *FaultyPublisher) Calls() int { return p.f.count() }

// FaultyCommitter wraps a Committer (a *stream.Consumer) and makes chosen
// commits fail without committing. Use it by pointer; it is safe for
// concurrent use.
type FaultyCommitter struct {
	// Committer receives the commits that go through.
	Committer Committer

	f faults
}

// Commit calls through to the wrapped Committer unless a fault is due.
func (c *FaultyCommitter) Commit(ctx context.Context) error {
	if x, ok := c.f.next(); ok {
		return x.err
	}
	return c.Committer.Commit(ctx)
}

// FailNextCommit makes the next Commit return err without committing.
// Pass stream.ErrStaleGeneration or stream.ErrRebalanceInProgress to
// imitate the group's own failures.
func (c *FaultyCommitter) FailNextCommit(err error) { c.f.push(fault{err: mustErr(err)}) }

// FailCommits makes every Commit fail with err once queued faults are used
// up, until Heal.
func (c *FaultyCommitter) FailCommits(err error) { c.f.setAlways(err) }

// Heal drops queued faults and FailCommits.
func (c *FaultyCommitter) Heal() { c.f.heal() }

// Calls returns how many times Commit was called, faulty calls included.
func (c *FaultyCommitter) Calls() int { return c.f.count() }

// FaultyPoller wraps a Poller (a *stream.Consumer) and delays or fails
// chosen polls. Use it by pointer; it is safe for concurrent use.
type FaultyPoller struct {
	// Poller receives the polls that go through.
	Poller Poller

	f faults
}

// Poll calls through to the wrapped Poller unless a fault is due.
func (p *FaultyPoller) Poll(ctx context.Context) ([]*stream.Record, error) {
	return poll(ctx, &p.f, p.Poller)
}

func poll(ctx context.Context, f *faults, p Poller) ([]*stream.Record, error) {
	x, ok := f.next()
	if !ok {
		return p.Poll(ctx)
	}
	if x.err != nil {
		return nil, x.err
	}
	if err := sleep(ctx, x.delay); err != nil {
		return nil, err
	}
	return p.Poll(ctx)
}

// DelayPoll makes the next Poll wait d (or until its context ends) before
// it calls the wrapped Poll: the code under test behaves as if it had
// spent d between two polls. The consumer is not inside Poll meanwhile, so
// a delay past the consumer's MaxPollInterval gets it evicted from its
// group, exactly as slow processing would. Under testing/synctest the wait
// is virtual.
func (p *FaultyPoller) DelayPoll(d time.Duration) { p.f.push(fault{delay: d}) }

// FailNextPoll makes the next Poll return err without polling.
func (p *FaultyPoller) FailNextPoll(err error) { p.f.push(fault{err: mustErr(err)}) }

// Heal drops queued faults.
func (p *FaultyPoller) Heal() { p.f.heal() }

// Calls returns how many times Poll was called, faulty calls included.
func (p *FaultyPoller) Calls() int { return p.f.count() }

// FaultyConsumer wraps a whole consumer (Poll and Commit), for code that
// takes a PollCommitter: it combines FaultyPoller and FaultyCommitter. Use
// it by pointer; it is safe for concurrent use.
//
//	c := streamtest.Subscribe(t, b, "billing", nil, "orders")
//	fc := &streamtest.FaultyConsumer{Consumer: c}
//	fc.FailNextCommit(stream.ErrRebalanceInProgress)
type FaultyConsumer struct {
	// Consumer receives the calls that go through, typically the
	// *stream.Consumer.
	Consumer PollCommitter

	poll, commit faults
}

// Poll calls through unless a poll fault is due.
func (c *FaultyConsumer) Poll(ctx context.Context) ([]*stream.Record, error) {
	return poll(ctx, &c.poll, c.Consumer)
}

// Commit calls through unless a commit fault is due.
func (c *FaultyConsumer) Commit(ctx context.Context) error {
	if x, ok := c.commit.next(); ok {
		return x.err
	}
	return c.Consumer.Commit(ctx)
}

// DelayPoll is FaultyPoller.DelayPoll.
func (c *FaultyConsumer) DelayPoll(d time.Duration) { c.poll.push(fault{delay: d}) }

// FailNextPoll is FaultyPoller.FailNextPoll.
func (c *FaultyConsumer) FailNextPoll(err error) { c.poll.push(fault{err: mustErr(err)}) }

// FailNextCommit is FaultyCommitter.FailNextCommit.
func (c *FaultyConsumer) FailNextCommit(err error) { c.commit.push(fault{err: mustErr(err)}) }

// FailCommits is FaultyCommitter.FailCommits.
func (c *FaultyConsumer) FailCommits(err error) { c.commit.setAlways(err) }

// Heal drops every queued fault and FailCommits.
func (c *FaultyConsumer) Heal() {
	c.poll.heal()
	c.commit.heal()
}

// Polls returns how many times Poll was called, faulty calls included.
func (c *FaultyConsumer) Polls() int { return c.poll.count() }

// Commits returns how many times Commit was called, faulty calls included.
func (c *FaultyConsumer) Commits() int { return c.commit.count() }
