package stream

import (
	"cmp"

	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/catalog"

	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/internal/log"
)

// TopicConfig is a topic's settings. The zero value of each field means its
// default. The Kafka topic setting each one mirrors is named in its comment.
type TopicConfig struct {
	// Partitions is the number of partitions (default 1). It can only grow,
	// with AddPartitions.
	Partitions int
	// Retention deletes whole segments whose newest record is older than
	// this (retention.ms). 0 keeps records forever.
	Retention time.Duration
	// RetentionBytes deletes a partition's oldest segments while the rest
	// still holds at least this many bytes (retention.bytes). It is
	// enforced as appends grow the partition, not only every
	// RetentionCheckInterval, so even a burst of writes never takes a
	// partition more than one segment past it (whole segments go). 0: no
	// limit.
	RetentionBytes int64
	// SegmentBytes rolls a new segment file at this size (segment.bytes).
	// Default 1 GiB; between 4 KiB and 2 GiB - 1 byte.
	SegmentBytes int64
	// SegmentAge rolls the active segment once it is this old (segment.ms),
	// so time retention can delete it. 0: roll by size only.
	SegmentAge time.Duration
	// MaxRecordBytes is the largest record accepted, as stored
	// (max.message.bytes). Default 1 MiB. Uncompressed, a record counts its
	// key, value, headers and encoding overhead. Where the topic stores
	// batches compressed (Compression, or a Producer's under
	// CodecDefault), a record within the limit uncompressed is always
	// accepted, and a larger one if, compressed alone with that codec (a
	// batch of one record, as Kafka's max.message.bytes judges it), it
	// fits: a 3 MiB record that zstd makes 100 KiB passes a 1 MiB limit, an
	// incompressible one fails with ErrRecordTooLarge. The records a
	// record is batched with never change the verdict. A compressed batch
	// also holds at most batch.MaxUncompressedBytes (64 MiB) of records,
	// which bounds every record stored compressed, whatever this limit.
	MaxRecordBytes int
	// Sync overrides the broker's Options.Sync for this topic.
	Sync SyncPolicy
	// LogAppendTime stamps every record with the time it was appended,
	// replacing the producer's timestamp (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// MaxTimestampAhead rejects, with ErrInvalidRecord, a record whose own
	// timestamp is more than this far ahead of the broker's clock
	// (message.timestamp.after.max.ms): a far-future timestamp would keep
	// its segment from time retention. 0 means Kafka's default since 4.0,
	// DefaultMaxTimestampAhead; a negative value turns the check off. It
	// does not apply under LogAppendTime, nor to records without a
	// timestamp, which get the clock's.
	MaxTimestampAhead time.Duration
	// MaxTimestampBehind rejects, with ErrInvalidRecord, a record whose own
	// timestamp is more than this far behind the broker's clock
	// (message.timestamp.before.max.ms). 0: no limit, Kafka's default.
	MaxTimestampBehind time.Duration
	// Compression is the codec batches are stored with
	// (compression.type, and compression.<codec>.level for its Level).
	// CodecDefault, Kafka's "producer" and the default, keeps each batch as
	// its writer compressed it (a Producer's ProducerOptions.Compression;
	// Broker.Publish does not compress). Any other codec is the one every
	// batch is stored with: Broker.Publish compresses with it, and a
	// Producer batch of another codec is stored recompressed with it, as
	// Kafka's broker does (a Producer, knowing the topic, compresses with
	// the topic's codec directly; the same batch results). A batch of the
	// topic's codec keeps its writer's level. CodecNone stores batches
	// uncompressed. Reads decompress whatever they meet, so a topic may
	// hold batches of several codecs (after AlterTopic).
	Compression Compression
	// Compact asks for log compaction (cleanup.policy=compact). Not
	// implemented yet: CreateTopic rejects it with ErrInvalidConfig.
	Compact bool
}

// Defaults and limits of TopicConfig.
const (
	DefaultSegmentBytes      = 1 << 30
	DefaultMaxRecordBytes    = 1 << 20
	DefaultMaxTimestampAhead = time.Hour
	minSegmentBytes          = 4 << 10
	maxSegmentBytes          = math.MaxInt32 // positions in the index are uint32; Kafka's limit too
	maxPartitions            = 1 << 20
	maxTopicNameLength       = 249
)

// stored is the config as the catalog keeps it.
func (c TopicConfig) stored() catalog.TopicConfig {
	return catalog.TopicConfig{
		Partitions: c.Partitions, Retention: c.Retention, RetentionBytes: c.RetentionBytes,
		SegmentBytes: c.SegmentBytes, SegmentAge: c.SegmentAge, MaxRecordBytes: c.MaxRecordBytes,
		Sync: int(c.Sync), LogAppendTime: c.LogAppendTime, MaxTimestampAhead: c.MaxTimestampAhead,
		MaxTimestampBehind: c.MaxTimestampBehind, Compact: c.Compact,
		Codec: int(c.Compression.Codec), CodecLevel: c.Compression.Level,
	}
}

// storedTopicConfig is the inverse of TopicConfig.stored, before defaults.
func storedTopicConfig(s catalog.TopicConfig) TopicConfig {
	return TopicConfig{
		Partitions: s.Partitions, Retention: s.Retention, RetentionBytes: s.RetentionBytes,
		SegmentBytes: s.SegmentBytes, SegmentAge: s.SegmentAge, MaxRecordBytes: s.MaxRecordBytes,
		Sync: SyncPolicy(s.Sync), LogAppendTime: s.LogAppendTime, MaxTimestampAhead: s.MaxTimestampAhead,
		MaxTimestampBehind: s.MaxTimestampBehind, Compact: s.Compact,
		Compression: Compression{Codec: Codec(s.Codec), Level: s.CodecLevel},
	}
}

// withDefaults fills zero fields with their defaults.
func (c TopicConfig) withDefaults() TopicConfig {
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.MaxTimestampAhead == 0 {
		c.MaxTimestampAhead = DefaultMaxTimestampAhead
	}
	return c
}

// Validate returns the error (ErrInvalidConfig) CreateTopic and AlterTopic
// would refuse cfg with, nil if they would accept it: zero fields take
// their defaults first. It checks the config alone, not a change from a
// topic's current one (AlterTopic also refuses to change Partitions).
func (c TopicConfig) Validate() error { return c.withDefaults().validate() }

// validate checks a config after withDefaults.
func (c TopicConfig) validate() error {
	switch {
	case c.Partitions < 1 || c.Partitions > maxPartitions:
		return fmt.Errorf("%w: %d partitions (want 1 to %d)", ErrInvalidConfig, c.Partitions, maxPartitions)
	case c.Retention < 0:
		return fmt.Errorf("%w: negative retention %v", ErrInvalidConfig, c.Retention)
	case c.RetentionBytes < 0:
		return fmt.Errorf("%w: negative retention bytes %d", ErrInvalidConfig, c.RetentionBytes)
	case c.SegmentBytes < minSegmentBytes || c.SegmentBytes > maxSegmentBytes:
		return fmt.Errorf("%w: segment bytes %d (want %d to %d)", ErrInvalidConfig, c.SegmentBytes, minSegmentBytes, maxSegmentBytes)
	case c.SegmentAge < 0:
		return fmt.Errorf("%w: negative segment age %v", ErrInvalidConfig, c.SegmentAge)
	case c.MaxTimestampBehind < 0:
		return fmt.Errorf("%w: negative max timestamp behind %v", ErrInvalidConfig, c.MaxTimestampBehind)
	case c.MaxRecordBytes < 0:
		return fmt.Errorf("%w: negative max record bytes %d", ErrInvalidConfig, c.MaxRecordBytes)
	case !c.Sync.valid():
		return fmt.Errorf("%w: sync policy %d", ErrInvalidConfig, c.Sync)
	case c.Compact:
		return fmt.Errorf("%w: log compaction is not implemented yet", ErrInvalidConfig)
	}
	if err := c.Compression.validate(); err != nil {
		return fmt.Errorf("topic compression: %w", err)
	}
	return nil
}

// maxBatchBytes is the largest batch a partition of the topic accepts: room
// for one maximal record, or for many small ones published together.
func (c TopicConfig) maxBatchBytes() int {
	return max(c.MaxRecordBytes+64<<10, 64<<20)
}

// reservedTopic reports whether name is, or collides with ('.' and '_'
// alike), one of Kafka's internal topics, which a cluster always has: code
// that created it here would fail when moved to a cluster.
func reservedTopic(name string) bool {
	n := strings.ReplaceAll(name, ".", "_")
	return n == "__consumer_offsets" || n == "__transaction_state"
}

// validateTopicName applies Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..". The rules also keep names from leaving
// the data directory.
func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxTopicNameLength {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has character %q (allowed: a-z A-Z 0-9 . _ -)", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// collisionKey maps names Kafka considers colliding ("a.b" and "a_b", whose
// metric names would clash) to one key.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// topic is an open topic: its config and partition logs.
type topic struct {
	name    string
	dir     string
	created time.Time // when CreateTopic made it, as stored

	conf atomic.Pointer[topicConf] // replaced whole by AlterTopic

	parts atomic.Pointer[[]*log.Log] // replaced whole by AddPartitions

	sticky  atomic.Uint32 // next partition for keyless records of a Publish call
	deleted atomic.Bool
}

// topicConf is a topic's config as the accept path reads it, never changed
// once stored: AlterTopic stores a new one, so each record is checked
// against the old config or the new one, never a mix of the two.
type topicConf struct {
	TopicConfig // with defaults applied; Partitions as created or last stored

	// The range around the clock a record's own timestamp must lie in,
	// from MaxTimestampAhead and MaxTimestampBehind in whole ms (-1: no
	// bound), kept ready for the accept path.
	aheadMS, behindMS int64
}

// newTopicConf prepares cfg, which has its defaults, for the accept path.
func newTopicConf(cfg TopicConfig) *topicConf {
	c := &topicConf{TopicConfig: cfg, aheadMS: -1, behindMS: -1}
	if cfg.MaxTimestampAhead > 0 {
		c.aheadMS = cfg.MaxTimestampAhead.Milliseconds()
	}
	if cfg.MaxTimestampBehind > 0 {
		c.behindMS = cfg.MaxTimestampBehind.Milliseconds()
	}
	return c
}

// newTopic returns a topic with no partitions yet; cfg has its defaults.
func newTopic(name string, cfg TopicConfig, dir string) *topic {
	t := &topic{name: name, dir: dir}
	t.conf.Store(newTopicConf(cfg))
	return t
}

// config returns the topic's current config; callers must not change it.
func (t *topic) config() *topicConf { return t.conf.Load() }

func (t *topic) partitions() []*log.Log {
	if p := t.parts.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *topic) partition(i int32) (*log.Log, error) {
	parts := t.partitions()
	if i < 0 || int(i) >= len(parts) {
		return nil, t.noPartition(i, len(parts))
	}
	return parts[i], nil
}

// TopicPartition names one partition of a topic.
type TopicPartition = group.TopicPartition

// compareTopicPartitions orders by topic, then partition.
func compareTopicPartitions(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}
