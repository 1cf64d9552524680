package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/embedstream/stream/internal/log"
)

// DefaultCleanerBufferBytes is Options.CleanerBufferBytes' default, Kafka's
// log.cleaner.dedupe.buffer.size.
const DefaultCleanerBufferBytes = 128 << 20

// cleaner is a broker's log cleaner: one goroutine that cleans the
// dirtiest due partition of a compacted topic, then the next, until none
// is due, and then sleeps until a compacted partition rolls a segment, a
// topic is altered, or (only while a time-based setting may make a
// partition due later) CleanerBackoff has passed. An idle broker arms no
// timer. Rounds run one at a time, Broker.Compact's included: they share
// one key map.
type cleaner struct {
	wakeC  chan struct{}   // capacity 1; nil until started
	ctx    context.Context // the goroutine's: cancelled by Close, it also stops a round midway
	cancel context.CancelFunc
	done   chan struct{}

	turn chan struct{} // capacity 1: held for a round (one at a time; guards keys), taken with a ctx
	keys *log.KeyMap
}

// wake tells the cleaner to look at the partitions again.
func (c *cleaner) wake() {
	if c.wakeC == nil {
		return
	}
	select {
	case c.wakeC <- struct{}{}:
	default:
	}
}

// startCleaner starts a writable broker's cleaner goroutine, unless the
// options disable it.
func (b *Broker) startCleaner() {
	b.cleaner.keys = log.NewKeyMap(b.opts.CleanerBufferBytes)
	b.cleaner.turn = make(chan struct{}, 1)
	if b.opts.DisableCleaner {
		return
	}
	c := &b.cleaner
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.done = make(chan struct{})
	c.wakeC = make(chan struct{}, 1)
	c.wake() // compacted topics may be due at Open
	go b.runCleaner()
}

// stopCleaner stops the cleaner goroutine, ending a round in progress
// (which changes nothing then), and waits for it.
func (b *Broker) stopCleaner() {
	if c := &b.cleaner; c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

func (b *Broker) runCleaner() {
	c := &b.cleaner
	defer close(c.done)
	var t wakeTimer
	defer t.stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wakeC:
		case <-t.c:
			t.c = nil
		}
		again := b.cleanDue(c.ctx)
		if again && t.c == nil {
			t.at(time.Now().Add(b.opts.CleanerBackoff))
		}
	}
}

// cleanDue cleans due partitions, dirtiest first, until none is due, and
// reports whether one may become due with time alone.
func (b *Broker) cleanDue(ctx context.Context) (later bool) {
	for ctx.Err() == nil {
		type candidate struct {
			p     *log.Log
			ratio float64
		}
		var due []candidate
		later = false
		var now time.Time // read once there is a compacted partition: a test's clock may not expect the cleaner
		for _, p := range b.allPartitions() {
			set := p.Settings()
			if !set.Compact {
				continue
			}
			if now.IsZero() {
				now = b.opts.Now()
			}
			st, err := p.CleanState(now)
			if err != nil {
				b.opts.Logger.Error("stream: cleaner cannot read a partition's state", "dir", p.Dir(), "err", err)
				continue
			}
			if st.Due(set.MinCleanableRatio) {
				due = append(due, candidate{p, st.Ratio})
			} else if set.MinCompactionLag > 0 || set.MaxCompactionLag > 0 {
				later = true
			}
		}
		if len(due) == 0 {
			return later
		}
		best := slices.MaxFunc(due, func(a, b candidate) int { return compareFloat(a.ratio, b.ratio) })
		if _, err := b.cleanPartition(ctx, best.p, false); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) {
			b.opts.Logger.Error("stream: cleaning failed", "dir", best.p.Dir(), "err", err)
			return true // try again after the backoff, not in a loop
		}
	}
	return later
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cleanPartition runs one round on p, with the broker's key map.
func (b *Broker) cleanPartition(ctx context.Context, p *log.Log, force bool) (log.CleanResult, error) {
	c := &b.cleaner
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return log.CleanResult{}, ctx.Err()
	}
	defer func() { <-c.turn }()
	res, err := p.Clean(ctx, b.opts.Now(), c.keys, force)
	if res.Cleaned {
		b.opts.Logger.Info("stream: cleaned", "dir", p.Dir(), "read", res.BytesRead, "written", res.BytesWritten,
			"records", res.Records, "removed", res.Removed)
	}
	return res, err
}

// Compact runs a cleaning round now on every partition of a compacted
// topic (CleanupCompact or CleanupCompactDelete), whatever its dirty ratio
// (the background cleaner waits for MinCleanableDirtyRatio): each keeps the
// latest record of every key in its sealed segments, within the topic's
// MinCompactionLag and below its last stable offset. The active segment is
// never cleaned, as in Kafka. Tombstones stay DeleteRetention after the
// first round that met them; a later round removes them. A round needs
// something new to clean: a partition whose sealed segments were all
// cleaned already is left as it is (expired tombstones and spent markers
// go at the next round after more records were sealed), as Kafka's
// cleaner does.
//
// It returns ErrInvalidConfig for a topic that is not compacted,
// ErrTopicNotFound, ErrReadOnly on a read-only broker, ErrClosed after
// Close, and ctx's error if ctx ends first, while it waits for a
// background round to finish or in its own round (a round stopped midway
// changes nothing).
func (b *Broker) Compact(ctx context.Context, topic string) error {
	if err := b.writable(); err != nil {
		return err
	}
	t, err := b.topic(topic)
	if err != nil {
		return err
	}
	if !t.config().Cleanup.compacts() {
		return fmt.Errorf("%w: topic %q is not compacted (cleanup policy %v)", ErrInvalidConfig, topic, t.config().Cleanup)
	}
	var errs []error
	for i, p := range t.partitions() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := b.cleanPartition(ctx, p, true); err != nil {
			if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			errs = append(errs, fmt.Errorf("topic %q partition %d: %w", topic, i, t.writeErr(err)))
		}
	}
	return errors.Join(errs...)
}
