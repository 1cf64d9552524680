package stream

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// GroupInfo describes a consumer group.
//
// Balancer is the Kafka name of the balancer the group's members use. A
// group without members (Empty) keeps the one its last members used, while
// the broker remembers the group: until a restart, DeleteGroup, offsets
// expiry, or a member joining with another balancer, which an Empty group
// accepts. It is "" for a group known only by its committed offsets. Kafka
// instead clears an Empty group's protocol (keeping only its protocol type,
// "consumer", which has no counterpart here): the last balancer tells an
// operator more.
type GroupInfo struct {
	Group string
	State string // Empty, PreparingRebalance, Stable or Dead
	// Generation is the group's generation: it goes on across restarts
	// from the last one stored, as in Kafka.
	Generation int
	Balancer   string               // the balancer's Kafka name; see above
	Members    []MemberInfo         // sorted as balancers sort them
	Partitions []GroupPartitionInfo // committed offsets and lag, sorted
	// Last is the group's last completed rebalance as the broker stored it,
	// nil if there is none: who was assigned what, kept after the members
	// and the process are gone (so a directory opened later, by streamctl
	// say, still shows it), until the group's offsets expire or it is
	// deleted, or, for a group that never committed, until it is empty at
	// a retention check.
	Last *GenerationInfo
	// Rebalances counts the group's completed rebalances and Evictions its
	// members removed because their MaxPollInterval (or, static ones
	// departed, SessionTimeout) ran out, while the broker kept the group's
	// state: since Open, or since the group was last dropped (DeleteGroup,
	// offsets expiry, or, for a group that never committed, its emptying).
	// Zero for a group the broker holds no state of. Stats has the totals
	// of every group, which never go down.
	Rebalances, Evictions int64
}

// GenerationInfo describes a completed rebalance of a group.
type GenerationInfo struct {
	Generation int
	Balancer   string       // the balancer's Kafka name
	Completed  time.Time    // when the rebalance completed
	Members    []MemberInfo // sorted as balancers sort them; Assignment is what the generation assigned
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
	if err := validateGroupName(name); err != nil {
		return GroupInfo{}, err
	}
	b.mu.RLock()
	err := b.checkOpen()
	b.mu.RUnlock()
	if err != nil {
		return GroupInfo{}, err
	}
	gi, err := b.groups.Describe(name)
	if err != nil {
		return GroupInfo{}, err
	}
	info := GroupInfo{Group: name, State: gi.State, Generation: gi.Generation, Balancer: gi.Balancer,
		Rebalances: gi.Rebalances, Evictions: gi.Evictions}
	for _, m := range gi.Members {
		info.Members = append(info.Members, MemberInfo(m))
	}
	if l := gi.Last; l != nil {
		info.Last = &GenerationInfo{Generation: l.Generation, Balancer: l.Balancer, Completed: l.Completed}
		for _, m := range l.Members {
			info.Last.Members = append(info.Last.Members, MemberInfo(m))
		}
	}
	committed := gi.Committed
	parts := map[TopicPartition]bool{}
	for tp := range committed {
		parts[tp] = true
	}
	for _, topicName := range gi.Subscribed {
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

// Groups returns the names of groups with members or committed offsets,
// sorted.
func (b *Broker) Groups() []string {
	b.mu.RLock()
	err := b.checkOpen()
	b.mu.RUnlock()
	if err != nil {
		return nil
	}
	names, _ := b.groups.Names()
	return names
}

// DeleteGroup drops a group's committed offsets. It fails with
// ErrGroupNotEmpty while the group has members.
func (b *Broker) DeleteGroup(name string) error {
	if err := validateGroupName(name); err != nil {
		return err
	}
	b.mu.RLock() // Close waits: the catalog stays open
	defer b.mu.RUnlock()
	if err := b.checkWritable(); err != nil {
		return err
	}
	return b.groups.Delete(name)
}

// CommittedOffsets returns every offset the group has committed (the next
// offset to read, per partition), without joining it.
func (b *Broker) CommittedOffsets(groupName string) (map[TopicPartition]int64, error) {
	if err := validateGroupName(groupName); err != nil {
		return nil, err
	}
	b.mu.RLock()
	err := b.checkOpen()
	b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return b.groups.Committed(groupName)
}

// SetCommittedOffsets overwrites a group's committed offsets for the given
// partitions, as kafka-consumer-groups.sh --reset-offsets does. Like Kafka,
// it refuses while the group has members (ErrGroupNotEmpty). Offsets must be
// within the partitions' logs (ErrOffsetOutOfRange), of existing topics.
func (b *Broker) SetCommittedOffsets(groupName string, offsets map[TopicPartition]int64) error {
	if err := validateGroupName(groupName); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.checkWritable(); err != nil {
		return err
	}
	// Kafka's order: a group with members is refused first.
	return b.groups.SetOffsets(groupName, offsets, func() error {
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
				return fmt.Errorf("%w: offset %d for %s, log has offsets [%d, %d)", ErrOffsetOutOfRange, off, tp, start, end)
			}
		}
		return nil
	})
}

// maxGroupNameBytes is the longest group name: Kafka's protocol carries a
// group.id as a STRING, an int16 length and that many bytes of UTF-8.
const maxGroupNameBytes = math.MaxInt16

// validateGroupName refuses, with ErrInvalidGroup, a group name that a
// Kafka client could not send (empty, Kafka's InvalidGroupIdException;
// longer than 32767 bytes; not UTF-8) or that holds a control character
// (Kafka accepts those, but a newline or an escape breaks every line-based
// listing of groups, streamctl's among them).
func validateGroupName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty group name", ErrInvalidGroup)
	case len(name) > maxGroupNameBytes:
		return fmt.Errorf("%w: group name of %d bytes (at most %d)", ErrInvalidGroup, len(name), maxGroupNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: group name %q is not UTF-8", ErrInvalidGroup, name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: group name %q holds a control character", ErrInvalidGroup, name)
	}
	return nil
}

// DefaultOffsetsRetention is Options.OffsetsRetention's default: Kafka's
// offsets.retention.minutes, 7 days.
const DefaultOffsetsRetention = 7 * 24 * time.Hour
