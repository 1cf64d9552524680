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
	// Cleanup is what happens to old records (cleanup.policy): retention
	// deletes whole segments (CleanupDelete, the default), the cleaner
	// keeps the latest record of each key (CleanupCompact), or both
	// (CleanupCompactDelete). A compacted topic refuses records without a
	// key (ErrInvalidRecord), as Kafka does; under CleanupCompact alone
	// Retention and RetentionBytes are kept but not applied.
	Cleanup CleanupPolicy
	// MinCleanableDirtyRatio is how much of a compacted partition's
	// cleanable log must be dirty (written since its last cleaning) before
	// the cleaner takes it (min.cleanable.dirty.ratio). 0 means
	// DefaultMinCleanableDirtyRatio (0.5); a negative value is Kafka's 0,
	// cleaning whenever anything is dirty; over 1 is ErrInvalidConfig.
	MinCleanableDirtyRatio float64
	// MinCompactionLag keeps records younger than this from being cleaned
	// (min.compaction.lag.ms): a consumer this close to the head sees
	// every record. 0, the default: no minimum.
	MinCompactionLag time.Duration
	// MaxCompactionLag makes a partition due for cleaning once a dirty
	// record is older than this, whatever MinCleanableDirtyRatio says
	// (max.compaction.lag.ms); the active segment then also rolls at this
	// age, as SegmentAge would. 0, the default: no limit (Kafka's
	// Long.MAX_VALUE). It must not be below MinCompactionLag.
	MaxCompactionLag time.Duration
	// DeleteRetention is how long tombstones (records with a nil Value)
	// and spent transaction markers stay after the cleaner first meets
	// them (delete.retention.ms): a consumer that reads a compacted topic
	// from its start within this time sees the deletes. 0 means
	// DefaultDeleteRetention (24h); a negative value means 0, removing
	// them at the cleaner's next round.
	DeleteRetention time.Duration
}

// CleanupPolicy is a topic's cleanup.policy: what happens to old records.
type CleanupPolicy uint8

// The policies.
const (
	// CleanupDelete: retention deletes old segments (the default).
	CleanupDelete CleanupPolicy = iota
	// CleanupCompact: the cleaner keeps the latest record of each key;
	// retention settings are ignored.
	CleanupCompact
	// CleanupCompactDelete: both, retention deleting old segments and the
	// cleaner compacting the rest (Kafka's "compact,delete").
	CleanupCompactDelete
)

var cleanupNames = [...]string{"delete", "compact", "compact,delete"}

// String returns Kafka's name of the policy: delete, compact or
// compact,delete.
func (p CleanupPolicy) String() string {
	if int(p) < len(cleanupNames) {
		return cleanupNames[p]
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(p))
}

// ParseCleanupPolicy reads a cleanup.policy value as Kafka does: a
// comma-separated list of delete and compact, in any order and case,
// spaces around them ignored ("compact, DELETE" is CleanupCompactDelete).
// Anything else, an empty list included, is ErrInvalidConfig.
func ParseCleanupPolicy(s string) (CleanupPolicy, error) {
	var compact, del bool
	for name := range strings.SplitSeq(s, ",") {
		switch name = strings.TrimSpace(name); {
		case strings.EqualFold(name, "compact"):
			compact = true
		case strings.EqualFold(name, "delete"):
			del = true
		default:
			return 0, fmt.Errorf("%w: cleanup policy %q (want delete, compact or compact,delete)", ErrInvalidConfig, s)
		}
	}
	switch {
	case compact && del:
		return CleanupCompactDelete, nil
	case compact:
		return CleanupCompact, nil
	}
	return CleanupDelete, nil
}

// compacts reports whether the cleaner compacts the topic's partitions,
// which then refuse records without a key.
func (p CleanupPolicy) compacts() bool { return p == CleanupCompact || p == CleanupCompactDelete }

// deletes reports whether retention applies.
func (p CleanupPolicy) deletes() bool { return p != CleanupCompact }

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

// Defaults of TopicConfig's compaction settings, Kafka's.
const (
	// DefaultMinCleanableDirtyRatio is min.cleanable.dirty.ratio's
	// default (TopicConfig.MinCleanableDirtyRatio).
	DefaultMinCleanableDirtyRatio = 0.5
	// DefaultDeleteRetention is delete.retention.ms's default
	// (TopicConfig.DeleteRetention): one day.
	DefaultDeleteRetention = 24 * time.Hour
)

// stored is the config as the catalog keeps it.
func (c TopicConfig) stored() catalog.TopicConfig {
	return catalog.TopicConfig{
		Partitions: c.Partitions, Retention: c.Retention, RetentionBytes: c.RetentionBytes,
		SegmentBytes: c.SegmentBytes, SegmentAge: c.SegmentAge, MaxRecordBytes: c.MaxRecordBytes,
		Sync: int(c.Sync), LogAppendTime: c.LogAppendTime, MaxTimestampAhead: c.MaxTimestampAhead,
		MaxTimestampBehind: c.MaxTimestampBehind, Cleanup: int(c.Cleanup),
		Codec: int(c.Compression.Codec), CodecLevel: c.Compression.Level,
		MinCleanableDirtyRatio: c.MinCleanableDirtyRatio, DeleteRetention: c.DeleteRetention,
		MinCompactionLag: c.MinCompactionLag, MaxCompactionLag: c.MaxCompactionLag,
	}
}

// storedTopicConfig is the inverse of TopicConfig.stored, before defaults.
func storedTopicConfig(s catalog.TopicConfig) TopicConfig {
	if s.Compact && s.Cleanup == 0 {
		s.Cleanup = int(CleanupCompact) // the retired form
	}
	return TopicConfig{
		Partitions: s.Partitions, Retention: s.Retention, RetentionBytes: s.RetentionBytes,
		SegmentBytes: s.SegmentBytes, SegmentAge: s.SegmentAge, MaxRecordBytes: s.MaxRecordBytes,
		Sync: SyncPolicy(s.Sync), LogAppendTime: s.LogAppendTime, MaxTimestampAhead: s.MaxTimestampAhead,
		MaxTimestampBehind: s.MaxTimestampBehind, Cleanup: CleanupPolicy(s.Cleanup),
		MinCleanableDirtyRatio: s.MinCleanableDirtyRatio, DeleteRetention: s.DeleteRetention,
		MinCompactionLag: s.MinCompactionLag, MaxCompactionLag: s.MaxCompactionLag,
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
	if c.MinCleanableDirtyRatio == 0 {
		c.MinCleanableDirtyRatio = DefaultMinCleanableDirtyRatio
	}
	if c.DeleteRetention == 0 {
		c.DeleteRetention = DefaultDeleteRetention
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
	case c.Cleanup > CleanupCompactDelete:
		return fmt.Errorf("%w: cleanup policy %d", ErrInvalidConfig, c.Cleanup)
	case c.MinCleanableDirtyRatio > 1 || math.IsNaN(c.MinCleanableDirtyRatio):
		return fmt.Errorf("%w: min cleanable dirty ratio %v (want at most 1; negative for 0)", ErrInvalidConfig, c.MinCleanableDirtyRatio)
	case c.MinCompactionLag < 0:
		return fmt.Errorf("%w: negative min compaction lag %v", ErrInvalidConfig, c.MinCompactionLag)
	case c.MaxCompactionLag < 0:
		return fmt.Errorf("%w: negative max compaction lag %v", ErrInvalidConfig, c.MaxCompactionLag)
	case c.MaxCompactionLag > 0 && c.MinCompactionLag > c.MaxCompactionLag:
		// Kafka's words (LogConfig.validateValues), with the fields' names.
		return fmt.Errorf("%w: conflict topic config setting min.compaction.lag.ms (MinCompactionLag %v) > max.compaction.lag.ms (MaxCompactionLag %v)",
			ErrInvalidConfig, c.MinCompactionLag, c.MaxCompactionLag)
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
