package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/embedstream/stream/group"
)

// Poll returns the next records from the member's partitions, at most
// MaxPollRecords, in offset order per partition, blocking until there are
// some, ctx ends (its error), Wakeup is called (ErrWakeup) or the consumer
// or broker closes (ErrClosed). Rebalance callbacks run inside it, on the
// calling goroutine, before it fetches. A batch of a codec that is not
// Kafka's fails it with ErrUnsupported. Damaged records (compressed
// records that do not decompress included) fail it with a *CorruptError
// (ErrCorrupt) once the records before them have been returned; the
// partition stays there until Seek moves it (see CorruptError).
//
// The returned records, and the slices in them, are valid until the next
// Poll or Close: they alias the memory-mapped log, or for compressed
// batches a buffer of the consumer's that holds all of this Poll's
// records and is reused by the next. Clone what you keep.
func (c *Consumer) Poll(ctx context.Context) ([]*Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	// A panic in a rebalance callback goes on up to the caller, as Kafka's
	// poll throws a callback's exception, but this runs first: the member
	// stays usable and keeps its place in the group.
	done := false
	defer func() {
		if !done {
			c.m.PollDone()
			c.state.CompareAndSwap(consumerPolling, consumerIdle)
			c.unfetch()
		}
	}()
	recs, err := c.poll(ctx)
	done = true
	c.m.PollDone()
	if !c.state.CompareAndSwap(consumerPolling, consumerIdle) {
		err = ErrClosed // Close came meanwhile; it finishes once we are out
	}
	if err != nil {
		// Records gathered but not handed out are not consumed: the next
		// Poll (or a commit, or Close's auto-commit) starts before them.
		c.unfetch()
		return nil, err
	}
	c.countOut(recs)
	return recs, nil
}

// countOut counts the records Poll returns in their partitions' traffic
// (and Stats.RecordsOut): here, not when gathered, since records gathered
// and then unfetched were not consumed. Poll returns each partition's
// records together, so this is one count per partition.
func (c *Consumer) countOut(recs []*Record) {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Partition == recs[i].Partition && recs[j].Topic == recs[i].Topic {
			j++
		}
		if ps := c.pos[TopicPartition{Topic: recs[i].Topic, Partition: recs[i].Partition}]; ps != nil {
			ps.part.CountOut(int64(j-i), 0)
		}
		i = j
	}
}

// unfetch moves positions back to the first record gathered for the
// current Poll and drops the records.
func (c *Consumer) unfetch() {
	for _, r := range c.out {
		if ps := c.pos[TopicPartition{Topic: r.Topic, Partition: r.Partition}]; ps != nil && r.Offset < ps.next {
			ps.next = r.Offset
		}
	}
	c.release()
}

func (c *Consumer) poll(ctx context.Context) ([]*Record, error) {
	c.release()
	var deadline time.Time
	gathered := 0 // bytes of records gathered so far, for MinBytes
	for {
		select {
		case <-c.stop:
			return nil, ErrClosed
		case <-c.wake:
			return nil, ErrWakeup
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.opts.AutoCommit && len(c.out) == 0 && c.b.opts.Now().Sub(c.lastCommit) >= c.opts.AutoCommitEvery {
			// Only with nothing gathered: positions then cover exactly the
			// records already returned.
			c.autoCommit(nil)
		}
		// Register before looking, so that no change can slip by; a ring
		// left from an earlier wait only costs a look.
		select {
		case <-c.bell:
		default:
		}
		c.m.Notify(c.bell)
		task, err := c.m.Poll()
		switch {
		case errors.Is(err, group.ErrUnknownMember):
			if err := c.lost(); err != nil {
				return nil, err
			}
			continue
		case errors.Is(err, group.ErrFenced):
			return nil, fmt.Errorf("%w: instance id %q", ErrFenced, c.opts.InstanceID)
		case err != nil:
			return nil, err
		}
		if task.Kind != group.Fetch && len(c.out) > 0 {
			// Records gathered while waiting for MinBytes go out first; the
			// group's news is handled at the next Poll (nothing was
			// acknowledged, so the coordinator asks again).
			return c.out, nil
		}
		switch task.Kind {
		case group.Revoke:
			c.b.opts.Logger.Info("stream: partitions revoked", "group", c.m.Group(), "member", c.m.ID(), "partitions", len(task.Partitions))
			c.revokeAndAck(task)
			continue
		case group.Assign:
			c.b.opts.Logger.Info("stream: partitions assigned", "group", c.m.Group(), "member", c.m.ID(),
				"generation", task.Generation, "added", len(task.Partitions), "owned", len(task.Owned))
			c.assign(task)
			continue
		case group.Wait:
			if err := c.waitFor(ctx, time.Time{}); err != nil {
				return nil, err
			}
			continue
		}
		// Fetch, after reporting damage an earlier fetch met, if the
		// partition is still there (no Seek or rebalance moved it).
		if err := c.takeDamage(); err != nil {
			return nil, err
		}
		bytes, err := c.fetch()
		if err != nil {
			return nil, err
		}
		gathered += bytes
		if c.damage != nil {
			if len(c.out) > 0 {
				return c.out, nil // the records gathered go out first
			}
			return nil, c.takeDamage()
		}
		if len(c.out) > 0 {
			if gathered >= c.opts.MinBytes || len(c.out) >= c.opts.MaxPollRecords {
				return c.out, nil
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(c.opts.MaxWait)
			} else if !time.Now().Before(deadline) {
				return c.out, nil
			}
			// Keep what we have and wait for more: the next fetch starts
			// from the advanced positions.
		}
		ready := false
		for _, tp := range c.owned {
			ps := c.pos[tp]
			if c.paused[tp] || ps == nil || ps.part == nil {
				continue
			}
			ps.part.Notify(c.bell)
			if ps.known && c.end(ps.part) > ps.next {
				ready = true // arrived since the fetch
			}
		}
		if ready {
			continue
		}
		if err := c.waitFor(ctx, deadline); err != nil {
			if errors.Is(err, errDeadline) {
				return c.out, nil
			}
			return nil, err
		}
	}
}

var errDeadline = errors.New("deadline")

// takeDamage returns (and forgets) the damage a fetch met, unless the
// partition has moved or gone since.
func (c *Consumer) takeDamage() error {
	ce := c.damage
	c.damage = nil
	if ce == nil {
		return nil
	}
	tp := TopicPartition{Topic: ce.Topic, Partition: ce.Partition}
	if ps := c.pos[tp]; ps == nil || !ps.known || ps.next != ce.Offset || !slices.Contains(c.owned, tp) {
		return nil
	}
	return ce
}

// waitFor blocks until the bell rings (the group changed, or a partition
// Poll registered with moved), ctx ends, Wakeup, Close, the deadline
// (errDeadline), or the group's next eviction check is due.
func (c *Consumer) waitFor(ctx context.Context, deadline time.Time) error {
	var timer *time.Timer
	var timerC <-chan time.Time
	if !deadline.IsZero() {
		timer = time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		timerC = timer.C
	}
	var evict <-chan time.Time
	if due := c.m.NextDeadline(); !due.IsZero() {
		t := time.NewTimer(max(due.Sub(c.b.opts.Now()), 0))
		defer t.Stop()
		evict = t.C
	}
	select {
	case <-c.bell:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.wake:
		return ErrWakeup
	case <-c.stop:
		return ErrClosed
	case <-timerC:
		return errDeadline
	case <-evict:
	}
	return nil
}
