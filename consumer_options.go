package stream

import (
	"fmt"
	"time"

	"github.com/embedstream/stream/group"
)

// Balancer assigns a group's partitions to its members. Use one of
// RangeBalancer (the default), RoundRobinBalancer, StickyBalancer or
// CooperativeStickyBalancer; all members of a group must use the same kind.
type Balancer = group.Balancer

// The balancers (Kafka's partition.assignment.strategy values).
type (
	// RangeBalancer gives each member a contiguous range of each topic's
	// partitions (Kafka's RangeAssignor). Eager.
	RangeBalancer = group.RangeBalancer
	// RoundRobinBalancer deals all partitions round-robin (RoundRobinAssignor). Eager.
	RoundRobinBalancer = group.RoundRobinBalancer
	// StickyBalancer balances, then keeps partitions where they were (StickyAssignor). Eager.
	StickyBalancer = group.StickyBalancer
	// CooperativeStickyBalancer is StickyBalancer's target reached
	// incrementally: only partitions that move are revoked, and members
	// keep consuming the rest through a rebalance (CooperativeStickyAssignor).
	CooperativeStickyBalancer = group.CooperativeStickyBalancer
)

// OffsetReset says where a consumer starts in a partition that has no
// committed offset, or whose position fell outside the log
// (auto.offset.reset).
type OffsetReset int

const (
	// ResetLatest starts at the log end: only new records (Kafka's default).
	ResetLatest OffsetReset = iota
	// ResetEarliest starts at the log start.
	ResetEarliest
	// ResetNone fails Poll with ErrNoCommittedOffset (no commit) or
	// ErrOffsetOutOfRange (position outside the log).
	ResetNone
)

// ConsumerOptions configure a group member. Zero fields take their defaults.
type ConsumerOptions struct {
	// Reset applies where there is no committed offset or the position is
	// out of range (auto.offset.reset). Default ResetLatest.
	Reset OffsetReset
	// AutoCommit commits the positions of records already returned, inside
	// Poll every AutoCommitEvery, before partitions are revoked, and on
	// Close (enable.auto.commit; note the default here is off).
	AutoCommit bool
	// AutoCommitEvery is the auto-commit interval (auto.commit.interval.ms).
	// Default 5s.
	AutoCommitEvery time.Duration
	// MaxPollRecords caps the records one Poll returns (max.poll.records).
	// Default 500.
	MaxPollRecords int
	// Isolation is which records of transactions Poll returns
	// (isolation.level; see IsolationLevel): ReadUncommitted, the default,
	// returns every record; ReadCommitted only committed ones, never past
	// a partition's last stable offset, which is then also the end that
	// ResetLatest, SeekToEnd and Lag count from.
	Isolation IsolationLevel
	// MinBytes makes Poll wait, up to MaxWait, until this many bytes of
	// records are ready (fetch.min.bytes). Default 1.
	MinBytes int
	// MaxWait bounds the wait for MinBytes (fetch.max.wait.ms). Default 500ms.
	// Poll never returns an empty result because of it: with no records at
	// all it keeps waiting, until ctx ends.
	MaxWait time.Duration
	// SessionTimeout is how long a static member's partitions wait for it
	// after it closes before they are reassigned (session.timeout.ms).
	// Default 45s. In-process there are no heartbeats: a member is alive
	// while it is inside Poll or has returned from Poll within
	// MaxPollInterval.
	SessionTimeout time.Duration
	// MaxPollInterval evicts a member that has not called Poll for this long
	// since its last Poll returned (max.poll.interval.ms): its partitions go
	// to the others, its commits fail with ErrStaleGeneration, and its next
	// Poll calls OnLost and rejoins. Default 5 minutes.
	MaxPollInterval time.Duration
	// Balancer assigns partitions (partition.assignment.strategy). Default
	// RangeBalancer{}.
	Balancer Balancer
	// InstanceID makes the member static (group.instance.id): after Close it
	// keeps its partitions for SessionTimeout, and a member subscribing with
	// the same InstanceID within that time gets them back without a
	// rebalance. A second live member with the same InstanceID fences the
	// first (ErrFenced).
	InstanceID string
	// OnAssigned runs inside Poll, on the polling goroutine, with the
	// partitions newly assigned. Eager balancers pass the whole new
	// assignment; cooperative ones only what was added (maybe nothing).
	OnAssigned func(c *Consumer, parts []TopicPartition)
	// OnRevoked runs inside Poll or Close with partitions being taken away,
	// before any other member gets them: commit there (Commit or
	// CommitOffsets) and the new owner starts from that commit. Under an
	// eager balancer every rebalance calls it on every member, with an
	// empty list on one that owns nothing (as Kafka does); cooperative
	// ones only with partitions to give up.
	OnRevoked func(c *Consumer, parts []TopicPartition)
	// OnLost runs inside Poll when the member was evicted: its partitions
	// may already belong to others, so commits fail. Default: nothing.
	//
	// A panic in any of the three goes on up through Poll or Close, as
	// Kafka's poll rethrows a callback's exception, but the rebalance is
	// carried out first: the assignment or revocation applies, the group
	// goes on, and the Consumer stays usable.
	OnLost func(c *Consumer, parts []TopicPartition)
}

func (o *ConsumerOptions) withDefaults() (ConsumerOptions, error) {
	var opts ConsumerOptions
	if o != nil {
		opts = *o
	}
	if opts.Reset < ResetLatest || opts.Reset > ResetNone {
		return opts, fmt.Errorf("%w: offset reset %d", ErrInvalidConfig, opts.Reset)
	}
	if !opts.Isolation.valid() {
		return opts, fmt.Errorf("%w: isolation level %d", ErrInvalidConfig, opts.Isolation)
	}
	if opts.AutoCommitEvery < 0 || opts.MaxPollRecords < 0 || opts.MinBytes < 0 || opts.MaxWait < 0 ||
		opts.SessionTimeout < 0 || opts.MaxPollInterval < 0 {
		return opts, fmt.Errorf("%w: negative consumer option", ErrInvalidConfig)
	}
	if opts.AutoCommitEvery == 0 {
		opts.AutoCommitEvery = 5 * time.Second
	}
	if opts.MaxPollRecords == 0 {
		opts.MaxPollRecords = 500
	}
	if opts.MinBytes == 0 {
		opts.MinBytes = 1
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 500 * time.Millisecond
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 45 * time.Second
	}
	if opts.MaxPollInterval == 0 {
		opts.MaxPollInterval = 5 * time.Minute
	}
	if opts.Balancer == nil {
		opts.Balancer = RangeBalancer{}
	}
	return opts, nil
}
