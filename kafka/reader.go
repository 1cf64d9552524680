package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionReader reads one partition without a group, from a start offset
// to the partition's end (high watermark, or last stable offset under
// ReadCommitted) as it was when ReadPartition made it; *PartitionReader
// implements stream.PartitionReader. It has a franz-go client of its own,
// consuming that partition directly. Next is meant for one goroutine;
// Close may come from another to end a blocked Next.
type PartitionReader struct {
	c         *Client
	topic     string
	partition int32
	next, end int64 // next offset to return; io.EOF from end on
	cl        *kgo.Client

	mu     sync.Mutex
	closed bool
	buf    []*kgo.Record
}

var _ stream.PartitionReader = (*PartitionReader)(nil)

// ReadPartition returns a reader of one partition from an offset:
// stream.OffsetEarliest (the log start), stream.OffsetLatest (the end: the
// reader is empty), stream.AtOffset(n), or stream.AtTime(t) (the first
// record stamped at or after t). It reads up to the high watermark as it
// is now, then Next returns io.EOF; under ReadOptions.Isolation
// ReadCommitted it fetches read_committed (kgo.FetchIsolationLevel) and
// reads up to the last stable offset instead (ListOffsets with
// read_committed), skipping aborted records. Transaction markers are never
// returned. It fails with stream.ErrTopicNotFound,
// stream.ErrInvalidPartition, or stream.ErrOffsetOutOfRange for an offset
// outside [log start, high watermark]; stream.ErrInvalidArgument for more
// than one ReadOptions.
func (c *Client) ReadPartition(ctx context.Context, topic string, partition int32, from stream.Offset, opts ...stream.ReadOptions) (stream.PartitionReader, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if err := validTopic(topic); err != nil {
		return nil, err
	}
	var o stream.ReadOptions
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		return nil, errorf(stream.ErrInvalidArgument, "%d ReadOptions, at most one", len(opts))
	}
	if o.Isolation != stream.ReadUncommitted && o.Isolation != stream.ReadCommitted {
		return nil, errorf(stream.ErrInvalidConfig, "isolation level %d", o.Isolation)
	}
	kind, n, at, err := parseOffset(from)
	if err != nil {
		return nil, err
	}
	counts, err := c.topicPartitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	if partition < 0 || int(partition) >= counts[topic] {
		return nil, errorf(stream.ErrInvalidPartition, "partition %d of %q (%d partitions)", partition, topic, counts[topic])
	}
	start, err := c.listed(ctx, topic, partition, c.adm.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	hw, err := c.listed(ctx, topic, partition, c.adm.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	end := hw
	if o.Isolation == stream.ReadCommitted {
		if end, err = c.listed(ctx, topic, partition, c.adm.ListCommittedOffsets); err != nil {
			return nil, err
		}
	}
	next := start
	switch kind {
	case fromLatest:
		next = end
	case fromOffset:
		if n < start || n > hw {
			return nil, errorf(stream.ErrOffsetOutOfRange, "offset %d of %s/%d, log has offsets [%d, %d)", n, topic, partition, start, hw)
		}
		next = n
	case fromTime:
		next, err = c.listed(ctx, topic, partition, func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
			return c.adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...)
		})
		if err != nil {
			return nil, err
		}
		if next < 0 {
			next = end
		}
	}
	rd := &PartitionReader{c: c, topic: topic, partition: partition, next: next, end: end}
	if next < end {
		opts := append(c.opts.base(),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(next)}}),
			kgo.ConsumeResetOffset(kgo.NoResetOffset()),
			kgo.FetchIsolationLevel(isolation(o.Isolation)),
			// Markers tell where the records end when the last ones
			// before the end are a marker or aborted: they are skipped
			// in Next, never returned.
			kgo.KeepControlRecords(),
		)
		rd.cl, err = kgo.NewClient(opts...)
		if err != nil {
			return nil, errorf(stream.ErrInvalidConfig, "kafka: %v", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		if rd.cl != nil {
			rd.cl.Close()
		}
		return nil, stream.ErrClosed
	}
	c.readers[rd] = struct{}{}
	return rd, nil
}

// listed returns one partition's offset from a kadm listing.
func (c *Client) listed(ctx context.Context, topic string, partition int32, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
	offs, err := list(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: list offsets of %q: %w", topic, mapErr(err))
	}
	lo, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, errorf(stream.ErrTopicNotFound, "%s/%d", topic, partition)
	}
	if lo.Err != nil {
		return 0, fmt.Errorf("kafka: list offsets of %s/%d: %w", topic, partition, mapErr(lo.Err))
	}
	return lo.Offset, nil
}

// Next returns the next record, or io.EOF at the end the reader was made
// with. It returns ctx's error, stream.ErrClosed after Close,
// stream.ErrOffsetOutOfRange if retention deleted the records being read,
// and stream.ErrTopicNotFound if the topic was deleted. Records stay valid
// after the next call (no Clone needed, unlike the embedded Reader's).
func (rd *PartitionReader) Next(ctx context.Context) (*stream.Record, error) {
	for {
		rd.mu.Lock()
		if rd.closed {
			rd.mu.Unlock()
			return nil, stream.ErrClosed
		}
		if rd.next >= rd.end {
			rd.mu.Unlock()
			return nil, io.EOF
		}
		for len(rd.buf) > 0 {
			kr := rd.buf[0]
			rd.buf = rd.buf[1:]
			if kr.Offset < rd.next {
				continue
			}
			if kr.Offset >= rd.end {
				rd.next = rd.end
				rd.buf = nil
				rd.mu.Unlock()
				return nil, io.EOF
			}
			rd.next = kr.Offset + 1
			if kr.Attrs.IsControl() {
				if rd.next >= rd.end {
					rd.buf = nil
					rd.mu.Unlock()
					return nil, io.EOF
				}
				continue
			}
			rd.mu.Unlock()
			return FromKgo(kr), nil
		}
		rd.mu.Unlock()

		fs := rd.cl.PollRecords(ctx, 1000)
		var recs []*kgo.Record
		fs.EachRecord(func(kr *kgo.Record) { recs = append(recs, kr) })
		if len(recs) == 0 {
			if err := rd.fetchErr(ctx, fs); err != nil {
				return nil, err
			}
			continue
		}
		rd.mu.Lock()
		rd.buf = recs
		rd.mu.Unlock()
	}
}

// fetchErr picks the error to return from a poll without records.
func (rd *PartitionReader) fetchErr(ctx context.Context, fs kgo.Fetches) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, kgo.ErrClientClosed):
			return stream.ErrClosed
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			return fe.Err
		}
		var dl *kgo.ErrDataLoss
		if errors.As(fe.Err, &dl) {
			continue
		}
		return fmt.Errorf("kafka: read %s/%d: %w", rd.topic, rd.partition, mapErr(fe.Err))
	}
	return nil
}

// Close releases the reader; a Next blocked in another goroutine returns
// stream.ErrClosed. Close is idempotent.
func (rd *PartitionReader) Close() error {
	rd.mu.Lock()
	if rd.closed {
		rd.mu.Unlock()
		return nil
	}
	rd.closed = true
	rd.buf = nil
	rd.mu.Unlock()
	if rd.cl != nil {
		rd.cl.Close()
	}
	rd.c.forgetReader(rd)
	return nil
}
