package stream

import "context"

// autoCommit commits the positions of parts (all owned if nil); failures
// are logged, not returned (Kafka's rule).
func (c *Consumer) autoCommit(parts []TopicPartition) {
	c.lastCommit = c.b.opts.Now()
	if err := c.commitPositions(parts); err != nil {
		c.b.opts.Logger.Warn("stream: auto-commit failed", "group", c.m.Group(), "member", c.m.ID(), "err", err)
	}
}

// positions returns the known positions of parts (all owned if nil).
func (c *Consumer) positions(parts []TopicPartition) map[TopicPartition]int64 {
	if parts == nil {
		parts = c.owned
	}
	out := make(map[TopicPartition]int64, len(parts))
	for _, tp := range parts {
		if ps := c.pos[tp]; ps != nil && ps.known && !ps.seekTo {
			out[tp] = ps.next
		}
	}
	return out
}

func (c *Consumer) commitPositions(parts []TopicPartition) error {
	return c.commit(c.positions(parts))
}

// commit stores offsets once the group accepts the member's right to. With
// nothing to commit it is a no-op, but fencing is final whatever the call:
// a fenced member gets ErrFenced.
func (c *Consumer) commit(offs map[TopicPartition]int64) error {
	if len(offs) == 0 {
		return c.m.Fenced()
	}
	return c.m.Commit(c.gen, offs)
}

// Commit commits the position of every assigned partition: the offset
// after the last record Poll returned from it (Kafka's commitSync). It
// fails with ErrStaleGeneration if the member was evicted or the group moved
// on without it.
func (c *Consumer) Commit(ctx context.Context) error {
	if err := c.callable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commitPositions(nil)
}

// CommitOffsets commits exactly the given offsets (the next offset to read,
// per partition), which must be assigned to this member (ErrNotAssigned).
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error {
	if err := c.callable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commit(offsets)
}

// Committed returns the group's committed offsets for parts (all the
// group's if none are named). Partitions never committed are absent.
func (c *Consumer) Committed(ctx context.Context, parts ...TopicPartition) (map[TopicPartition]int64, error) {
	if err := c.callable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.b.groups.Committed(c.m.Group(), parts...)
}
