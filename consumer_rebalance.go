package stream

import (
	"slices"

	"github.com/embedstream/stream/group"
)

// revoke gives partitions up: auto-commit, then OnRevoked, then forget them.
func (c *Consumer) revoke(parts []TopicPartition) {
	defer func() { // even if OnRevoked panics: the partitions are gone
		for _, tp := range parts {
			if ps := c.pos[tp]; ps != nil && ps.part != nil {
				ps.part.Forget(c.bell)
			}
			delete(c.pos, tp)
			delete(c.paused, tp)
		}
		c.owned, _ = group.Diff(parts, c.owned) // owned, less what was revoked
	}()
	if c.opts.AutoCommit {
		c.autoCommit(parts)
	}
	if c.opts.OnRevoked != nil && len(parts) > 0 {
		c.opts.OnRevoked(c, slices.Clone(parts))
	}
}

// assign carries out an Assign task: the assignment applies and is
// acknowledged before OnAssigned runs (as Kafka's SyncGroup completes
// before onPartitionsAssigned: the callback may already Commit or Seek),
// and even if the empty OnRevoked of an eager rebalance panics.
func (c *Consumer) assign(task group.Task) {
	apply := func() {
		c.revoked = false
		c.gen, c.owned = task.Generation, task.Owned
		for _, tp := range task.Owned {
			if c.pos[tp] == nil {
				c.pos[tp] = &position{}
			}
		}
		c.m.Ack(task)
	}
	if c.gen > 0 && !c.revoked && c.opts.OnRevoked != nil && c.m.Protocol() == group.Eager {
		// Kafka's eager rebalance starts with onPartitionsRevoked on
		// every member, one that owns nothing included.
		func() {
			defer apply()
			c.opts.OnRevoked(c, []TopicPartition{})
		}()
	} else {
		apply()
	}
	if c.opts.OnAssigned != nil {
		c.opts.OnAssigned(c, slices.Clone(task.Partitions))
	}
}

// revokeAndAck carries out a Revoke task and acknowledges it, even if
// OnRevoked panics: the rebalance must go on for the other members.
func (c *Consumer) revokeAndAck(task group.Task) {
	defer c.m.Ack(task)
	c.revoked = true
	c.revoke(task.Partitions)
}

// lost handles eviction: OnLost, forget everything, rejoin. The rejoin
// fails only if the group, dropped meanwhile, was taken over by members
// with another balancer.
func (c *Consumer) lost() (err error) {
	c.b.opts.Logger.Warn("stream: member was evicted from its group; rejoining", "group", c.m.Group(), "member", c.m.ID(), "partitions", len(c.owned))
	defer func() { // even if OnLost panics
		c.release() // gathered records are from partitions it lost
		clear(c.pos)
		clear(c.paused)
		err = c.m.Rejoin()
		c.gen, c.owned = 0, nil
	}()
	if c.opts.OnLost != nil && len(c.owned) > 0 {
		c.opts.OnLost(c, slices.Clone(c.owned))
	}
	return nil
}

// EnforceRebalance asks the group to rebalance (Kafka's enforceRebalance),
// say after a change that should move partitions; it does nothing if a
// rebalance is already under way. The rebalance runs in the members' next
// Polls, this one's included.
func (c *Consumer) EnforceRebalance() error {
	if err := c.callable(); err != nil {
		return err
	}
	return c.m.RequestRebalance()
}
