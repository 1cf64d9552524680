package stream

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/embedstream/stream/group"
)

// rebalanceSubscribers starts a rebalance in every group subscribed to
// topic: its partitions changed (added, or the topic deleted). Callers hold
// b.mu.
func (b *Broker) rebalanceSubscribers(topic string) {
	for _, g := range b.groups {
		g.do(func(co *group.Coordinator) {
			if slices.Contains(co.Subscribed(), topic) {
				co.Rebalance()
			}
		})
	}
}

// GroupInfo describes a consumer group.
type GroupInfo struct {
	Group      string
	State      string // Empty, PreparingRebalance, CompletingRebalance, Stable or Dead
	Generation int
	Balancer   string               // the balancer's Kafka name, "" with no members
	Members    []MemberInfo         // sorted as balancers sort them
	Partitions []GroupPartitionInfo // committed offsets and lag, sorted
}

// MemberInfo describes a group member.
type MemberInfo struct {
	ID         string
	InstanceID string
	Topics     []string
	Assignment []TopicPartition
}

// GroupPartitionInfo is one partition's committed offset and lag.
type GroupPartitionInfo struct {
	Topic     string
	Partition int32
	Committed int64 // -1 if the group never committed it
	End       int64 // the partition's end offset
	Lag       int64 // End - Committed; -1 without a commit (Kafka leaves it undefined)
}

// DescribeGroup returns a group's state, members and, for every partition of
// the topics it subscribes to or has committed, the committed offset and the
// lag. A group unknown to the broker is reported as Dead with no members.
func (b *Broker) DescribeGroup(name string) (GroupInfo, error) {
	if name == "" {
		return GroupInfo{}, fmt.Errorf("%w: empty group name", ErrInvalidGroup)
	}
	b.mu.RLock()
	err := b.checkOpen()
	g := b.groups[name]
	b.mu.RUnlock()
	if err != nil {
		return GroupInfo{}, err
	}
	info := GroupInfo{Group: name, State: group.Dead.String()}
	var subscribed []string
	if g != nil {
		g.do(func(co *group.Coordinator) {
			now := b.opts.Now()
			for _, m := range co.Members(now) {
				info.Members = append(info.Members, MemberInfo(m))
			}
			info.State, info.Generation, subscribed = co.State().String(), co.Generation(), co.Subscribed()
			if co.Len() > 0 {
				info.Balancer = g.balancer
			}
		})
	}
	committed, err := b.meta.Committed(name, nil)
	if err != nil {
		return info, err
	}
	if g == nil && len(committed) > 0 {
		info.State = group.Empty.String()
	}
	parts := map[TopicPartition]bool{}
	for tp := range committed {
		parts[tp] = true
	}
	for _, topicName := range subscribed {
		if t, err := b.topic(topicName); err == nil {
			for i := range t.partitions() {
				parts[TopicPartition{Topic: topicName, Partition: int32(i)}] = true
			}
		}
	}
	for _, tp := range slices.SortedFunc(maps.Keys(parts), compareTopicPartitions) {
		gp := GroupPartitionInfo{Topic: tp.Topic, Partition: tp.Partition, Committed: -1, Lag: -1}
		if _, p, err := b.partitionLog(tp.Topic, tp.Partition); err == nil {
			gp.End = p.HighWatermark()
		}
		if off, ok := committed[tp]; ok {
			gp.Committed, gp.Lag = off, max(gp.End-off, 0)
		}
		info.Partitions = append(info.Partitions, gp)
	}
	return info, nil
}

func compareTopicPartitions(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// Groups returns the names of groups with members or committed offsets,
// sorted.
func (b *Broker) Groups() []string {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil
	}
	names := map[string]bool{}
	for name, g := range b.groups {
		g.mu.Lock()
		if g.coord.Len() > 0 {
			names[name] = true
		}
		g.mu.Unlock()
	}
	b.mu.RUnlock()
	stored, _ := b.meta.Groups()
	for _, n := range stored {
		names[n] = true
	}
	return slices.Sorted(maps.Keys(names))
}

// checkGroupEmptyLocked fails with ErrGroupNotEmpty if the group has
// members: admin changes to its offsets wait until it has none, as in
// Kafka. Callers hold b.mu.
func (b *Broker) checkGroupEmptyLocked(name string) error {
	g := b.groups[name]
	if g == nil {
		return nil
	}
	g.mu.Lock()
	n := g.coord.Len()
	g.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("%w: %q has %d members", ErrGroupNotEmpty, name, n)
	}
	return nil
}

// DeleteGroup drops a group's committed offsets. It fails with
// ErrGroupNotEmpty while the group has members.
func (b *Broker) DeleteGroup(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalidGroup)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkWritable(); err != nil {
		return err
	}
	if err := b.checkGroupEmptyLocked(name); err != nil {
		return err
	}
	delete(b.groups, name)
	return b.meta.DeleteGroup(name)
}

// CommittedOffsets returns every offset the group has committed (the next
// offset to read, per partition), without joining it.
func (b *Broker) CommittedOffsets(groupName string) (map[TopicPartition]int64, error) {
	if groupName == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalidGroup)
	}
	b.mu.RLock()
	err := b.checkOpen()
	b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return b.meta.Committed(groupName, nil)
}

// SetCommittedOffsets overwrites a group's committed offsets for the given
// partitions, as kafka-consumer-groups.sh --reset-offsets does. Like Kafka,
// it refuses while the group has members (ErrGroupNotEmpty). Offsets must be
// within the partitions' logs (ErrOffsetOutOfRange), of existing topics.
func (b *Broker) SetCommittedOffsets(groupName string, offsets map[TopicPartition]int64) error {
	if groupName == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalidGroup)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkWritable(); err != nil {
		return err
	}
	if err := b.checkGroupEmptyLocked(groupName); err != nil {
		return err
	}
	for tp, off := range offsets {
		t, ok := b.topics[tp.Topic]
		if !ok {
			return fmt.Errorf("%w: %q", ErrTopicNotFound, tp.Topic)
		}
		p, err := t.partition(tp.Partition)
		if err != nil {
			return err
		}
		if start, end := p.StartOffset(), p.HighWatermark(); off < start || off > end {
			return fmt.Errorf("%w: offset %d for %s, log has [%d, %d]", ErrOffsetOutOfRange, off, tp, start, end)
		}
	}
	return b.meta.CommitOffsets(groupName, offsets, b.opts.Now())
}

// DefaultOffsetsRetention is Options.OffsetsRetention's default: Kafka's
// offsets.retention.minutes, 7 days.
const DefaultOffsetsRetention = 7 * 24 * time.Hour

// expireOffsets deletes the committed offsets of groups that have had no
// member and no commit for OffsetsRetention (Kafka's offsets expiry). When
// a group emptied is known within a check interval (the last member's
// leave, or this check last seeing members); for one that was empty at
// Open, it counts from Open: never sooner than Kafka would.
func (b *Broker) expireOffsets() {
	if b.opts.OffsetsRetention < 0 || b.opts.ReadOnly {
		return
	}
	// Under b.mu throughout: SetCommittedOffsets and DeleteGroup hold it
	// too, so no standalone commit lands between the look and the delete.
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.checkWritable() != nil {
		return
	}
	last, err := b.meta.LastCommits()
	if err != nil {
		b.opts.Logger.Error("stream: offsets expiry failed", "err", err)
		return
	}
	now := b.opts.Now()
	for name, committed := range last {
		since := later(committed, b.opened)
		if g := b.groups[name]; g != nil {
			g.mu.Lock()
			g.coord.Expire(now) // evicted members and departed static ones go first
			members := g.coord.Len()
			if members > 0 {
				g.lastActive = now
			}
			since = later(since, g.lastActive)
			g.mu.Unlock()
			if members > 0 {
				continue
			}
		}
		if now.Sub(since) < b.opts.OffsetsRetention {
			continue
		}
		if err := b.meta.DeleteGroup(name); err != nil {
			b.opts.Logger.Error("stream: offsets expiry failed", "group", name, "err", err)
			continue
		}
		delete(b.groups, name) // a Subscribe that raced this joins afresh
		b.opts.Logger.Info("stream: group offsets expired", "group", name, "last commit", committed,
			"retention", b.opts.OffsetsRetention)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
