package stream

import (
	"errors"
	"fmt"
	"slices"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/mmap"
	"github.com/embedstream/stream/segment"
)

// position is where the consumer reads a partition next.
type position struct {
	next   int64 // next offset to return; valid when known
	known  bool  // false: resolve from the committed offset or the reset policy
	seek   OffsetReset
	seekTo bool // a SeekToBeginning/End waits for the next Poll
	part   *log.Log
	topic  *topic
}

// fetch appends records from the owned, unpaused partitions to c.out, up to
// MaxPollRecords, and returns the bytes of record values and keys added.
// A partition at damaged records is passed over, its records before the
// damage kept, and the first such *CorruptError is kept in c.damage: the
// other partitions are not held up by it, and Poll reports it.
func (c *Consumer) fetch() (int, error) {
	n := len(c.owned)
	total := 0
	for i := 0; i < n && len(c.out) < c.opts.MaxPollRecords; i++ {
		tp := c.owned[(c.next+i)%n]
		if c.paused[tp] {
			continue
		}
		added, err := c.fetchPartition(tp)
		total += added
		if ce := (*CorruptError)(nil); errors.As(err, &ce) {
			if c.damage == nil {
				c.damage = ce
			}
			continue
		}
		if err != nil {
			return total, err
		}
	}
	if n > 0 {
		c.next = (c.next + 1) % n
	}
	return total, nil
}

func (c *Consumer) fetchPartition(tp TopicPartition) (int, error) {
	ps, err := c.resolve(tp)
	if err != nil {
		return 0, err
	}
	v, err := c.read(ps)
	if errors.Is(err, ErrOffsetOutOfRange) {
		// Retention moved the log start past us, or the log lost its tail.
		if err := c.reset(tp, ps, fmt.Errorf("%s: %w", tp, err)); err != nil {
			return 0, err
		}
		v, err = c.read(ps)
	}
	if err != nil {
		if errors.Is(err, ErrClosed) && ps.topic.deleted.Load() {
			return 0, nil // the topic is gone; a rebalance follows
		}
		return 0, corruptError(tp.Topic, tp.Partition, err)
	}
	if len(v.Data) == 0 {
		return 0, nil
	}
	c.views = append(c.views, v)
	ps.part.CountOut(0, int64(len(v.Data)))
	bytes, count := 0, 0
	c.walk.Reset(v.Data, ps.next)
	if c.opts.Isolation == ReadCommitted {
		c.walk.SkipAborted(&c.filter)
	}
	// A Poll returns records of many batches together: those of compressed
	// ones must outlive the walk's next batch, until the next Poll.
	c.walk.KeepDecompressed()
	// A Poll that ends inside a compressed batch leaves it decompressed
	// for this partition's next fetch, which resumes in it.
	c.walk.SetSource(ps)
	var lr batch.Record
	walk := func() error {
		for len(c.out) < c.opts.MaxPollRecords && c.walk.Next(&lr) {
			r := c.record()
			r.fromLog(tp.Topic, tp.Partition, &lr)
			c.out = append(c.out, r)
			// Every record counts, a keyless tombstone too: Kafka's
			// fetch.min.bytes counts what the fetch returns.
			bytes += max(len(lr.Key)+len(lr.Value), 1)
			count++
		}
		return nil
	}
	if c.b.follow != nil {
		// A follower's files are another's: a fault (a file cut under the
		// view by someone else) must not take the process down.
		before := len(c.out)
		if err := mmap.Guard(walk); err != nil {
			// Nothing of this fetch is returned; the next Poll reads again.
			clear(c.out[before:])
			c.out = c.out[:before]
			return 0, fmt.Errorf("%s at offset %d: %w", tp, ps.next, err)
		}
	} else {
		walk()
	}
	ps.next = c.walk.Offset() // past what it returned and the markers it skipped
	if c.walk.Err() != nil {
		err := walkError(tp.Topic, tp.Partition, &c.walk)
		if ce := (*CorruptError)(nil); count > 0 && !errors.As(err, &ce) {
			// A batch it cannot decode (ErrUnsupported): the records before
			// it go out first, and the next Poll fails there.
			return bytes, nil
		}
		return bytes, err
	}
	return bytes, nil
}

// record returns the next reusable Record of this Poll's result.
func (c *Consumer) record() *Record {
	i := len(c.out)
	if i == len(c.slab) {
		c.slab = append(c.slab, make([]Record, max(16, len(c.slab)))...)
		// Records handed out earlier in this Poll point into the old slab:
		// they stay valid (the old array lives on); later ones use the new.
	}
	return &c.slab[i]
}

// resolve makes tp's position known: a pending seek, else the committed
// offset, else the reset policy.
func (c *Consumer) resolve(tp TopicPartition) (*position, error) {
	ps := c.pos[tp]
	if ps == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotAssigned, tp)
	}
	if ps.part == nil {
		t, p, err := c.b.partitionLog(tp.Topic, tp.Partition)
		if err != nil {
			return nil, err
		}
		ps.topic, ps.part = t, p
	}
	if ps.seekTo {
		ps.seekTo = false
		return ps, c.applyReset(ps, ps.seek)
	}
	if ps.known {
		return ps, nil
	}
	committed, err := c.b.groups.Committed(c.m.Group(), tp)
	if err != nil {
		return nil, err
	}
	if off, ok := committed[tp]; ok {
		ps.next, ps.known = off, true
		start, end := ps.part.StartOffset(), ps.part.HighWatermark() // a commit may pass the LSO: it is still in range
		if off < start || off > end {
			// Committed past what survived a crash, or before retention:
			// out of range, and the reset policy decides.
			return ps, c.reset(tp, ps, fmt.Errorf("%w: committed offset %d of %s, log has offsets [%d, %d)", ErrOffsetOutOfRange, off, tp, start, end))
		}
		return ps, nil
	}
	if c.opts.Reset == ResetNone {
		return nil, fmt.Errorf("%w: group %q, %s", ErrNoCommittedOffset, c.m.Group(), tp)
	}
	return ps, c.applyReset(ps, c.opts.Reset)
}

// reset handles an out-of-range position by the reset policy.
func (c *Consumer) reset(tp TopicPartition, ps *position, cause error) error {
	if c.opts.Reset == ResetNone {
		return cause
	}
	return c.applyReset(ps, c.opts.Reset)
}

func (c *Consumer) applyReset(ps *position, how OffsetReset) error {
	start, end := ps.part.StartOffset(), c.end(ps.part)
	if how == ResetEarliest {
		ps.next = start
	} else {
		ps.next = end
	}
	ps.known = true
	return nil
}

// release unpins the views behind the previous Poll's records.
func (c *Consumer) release() {
	for i := range c.views {
		c.views[i].Release()
	}
	clear(c.views)
	c.views = c.views[:0]
	clear(c.out)
	c.out = c.out[:0]
	// Records of compressed batches the walk kept for the previous Poll.
	c.walk.Recycle()
}

// assignedPos returns the position state of an assigned partition.
func (c *Consumer) assignedPos(tp TopicPartition) (*position, error) {
	if err := c.callable(); err != nil {
		return nil, err
	}
	ps := c.pos[tp]
	if ps == nil || !slices.Contains(c.owned, tp) {
		return nil, fmt.Errorf("%w: %s", ErrNotAssigned, tp)
	}
	return ps, nil
}

// Seek makes the next Poll read tp from offset (the last Seek wins). An
// offset outside the log is handled by the reset policy at that Poll.
func (c *Consumer) Seek(tp TopicPartition, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidArgument, offset)
	}
	ps, err := c.assignedPos(tp)
	if err != nil {
		return err
	}
	ps.next, ps.known, ps.seekTo = offset, true, false
	return nil
}

// SeekToBeginning makes the next Poll read parts (all assigned if none)
// from the log start as it is then.
func (c *Consumer) SeekToBeginning(parts ...TopicPartition) error {
	return c.seekTo(ResetEarliest, parts)
}

// SeekToEnd makes the next Poll read parts (all assigned if none) from the
// log end as it is then: only records published later.
func (c *Consumer) SeekToEnd(parts ...TopicPartition) error {
	return c.seekTo(ResetLatest, parts)
}

func (c *Consumer) seekTo(how OffsetReset, parts []TopicPartition) error {
	states, err := c.assignedPositions(parts)
	for _, ps := range states {
		ps.seek, ps.seekTo = how, true
	}
	return err
}

// SeekToCommitted makes the next Poll read parts (all assigned if none)
// from the group's committed offsets again (or the reset policy where
// there are none): a rewind after the records polled could not be
// processed.
func (c *Consumer) SeekToCommitted(parts ...TopicPartition) error {
	states, err := c.assignedPositions(parts)
	for _, ps := range states {
		ps.known, ps.seekTo = false, false
	}
	return err
}

// assignedPositions returns the position states of parts (all assigned
// if none), or none and an error if one is not assigned.
func (c *Consumer) assignedPositions(parts []TopicPartition) ([]*position, error) {
	if len(parts) == 0 {
		parts = c.owned
	}
	states := make([]*position, 0, len(parts))
	for _, tp := range parts {
		ps, err := c.assignedPos(tp)
		if err != nil {
			return nil, err
		}
		states = append(states, ps)
	}
	return states, c.callable()
}

// Position returns the offset of the next record Poll will return from tp,
// resolving a pending seek, the committed offset or the reset policy.
func (c *Consumer) Position(tp TopicPartition) (int64, error) {
	if _, err := c.assignedPos(tp); err != nil {
		return 0, err
	}
	ps, err := c.resolve(tp)
	if err != nil {
		return 0, err
	}
	return ps.next, nil
}

// Lag returns how many records of tp lie past the member's position: the
// partition's end minus the position (Kafka's currentLag). The end is the
// high watermark, or under ReadCommitted the last stable offset.
// It fails with ErrNotAssigned for a partition the member does not hold.
func (c *Consumer) Lag(tp TopicPartition) (int64, error) {
	pos, err := c.Position(tp)
	if err != nil {
		return 0, err
	}
	return max(c.end(c.pos[tp].part)-pos, 0), nil
}

// end is where the consumer's isolation level ends a partition.
func (c *Consumer) end(p *log.Log) int64 {
	if c.opts.Isolation == ReadCommitted {
		return p.LastStable()
	}
	return p.HighWatermark()
}

// read maps a partition's batches from the position on, and under
// ReadCommitted readies the filter with the aborted transactions among
// them.
func (c *Consumer) read(ps *position) (segment.View, error) {
	return readIsolated(ps.part, ps.next, 1<<20, c.opts.Isolation == ReadCommitted, &c.filter)
}
