package main

import (
	"context"
	"errors"

	"github.com/embedstream/stream"
)

// consumeGroup consumes o.topic as a member of o.group, printing records and
// committing, after each Poll, the offsets after those printed. Without
// -follow it stops once every partition reached its end as it was at the
// start.
func (o *consumeOptions) consumeGroup(ctx context.Context, b *stream.Broker, s *sink) (err error) {
	reset := stream.ResetEarliest
	if o.from.kind == atEnd {
		reset = stream.ResetLatest
	}
	ends, pending, err := groupBacklog(b, o.group, o.topic, reset)
	if err != nil || (!o.follow && !pending) {
		return err // nothing to read: a Poll would wait for new records
	}
	c, err := b.Subscribe(o.group, []string{o.topic}, &stream.ConsumerOptions{Reset: reset})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			return err
		}
		if err := printAndCommit(ctx, c, recs, s); err != nil {
			return err
		}
		if o.follow {
			continue
		}
		if done, err := caughtUp(c, ends); done || err != nil {
			return err
		}
	}
}

// groupBacklog returns the end offsets of topic's partitions and whether
// group has records to read in any: from its commit, or where reset puts a
// partition without one (or with one outside the log).
func groupBacklog(b *stream.Broker, group, topic string, reset stream.OffsetReset) (map[stream.TopicPartition]int64, bool, error) {
	info, err := b.DescribeTopic(topic)
	if err != nil {
		return nil, false, err
	}
	committed, err := b.CommittedOffsets(group)
	if err != nil {
		return nil, false, err
	}
	ends, pending := map[stream.TopicPartition]int64{}, false
	for _, p := range info.Partitions {
		tp := stream.TopicPartition{Topic: topic, Partition: p.Partition}
		ends[tp] = p.EndOffset
		pos, ok := committed[tp]
		if !ok || pos < p.StartOffset || pos > p.EndOffset {
			pos = p.EndOffset
			if reset == stream.ResetEarliest {
				pos = p.StartOffset
			}
		}
		pending = pending || pos < p.EndOffset
	}
	return ends, pending, nil
}

// printAndCommit prints recs (up to the limit), flushes them and commits the
// offsets after the records printed.
func printAndCommit(ctx context.Context, c *stream.Consumer, recs []*stream.Record, s *sink) error {
	next := map[stream.TopicPartition]int64{}
	var err error
	for _, r := range recs {
		err = s.put(r)
		if err != nil && !errors.Is(err, errLimit) {
			return err // not printed: not committed
		}
		next[stream.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
		if err != nil {
			break
		}
	}
	if ferr := s.out.flush(); ferr != nil {
		return ferr
	}
	if len(next) == 0 {
		return err
	}
	if cerr := c.CommitOffsets(context.WithoutCancel(ctx), next); cerr != nil {
		return cerr
	}
	return err
}

// caughtUp reports whether the consumer's position in every partition it
// holds has reached ends.
func caughtUp(c *stream.Consumer, ends map[stream.TopicPartition]int64) (bool, error) {
	for _, tp := range c.Assignment() {
		pos, err := c.Position(tp)
		if err != nil {
			return false, err
		}
		if pos < ends[tp] {
			return false, nil
		}
	}
	return true, nil
}
