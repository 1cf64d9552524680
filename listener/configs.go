package listener

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic configs by Kafka's names: how each maps onto a stream.TopicConfig
// field, both ways (the kafka module's client maps the same names the
// other way, onto a cluster). CreateTopics, DescribeConfigs, AlterConfigs
// and IncrementalAlterConfigs all go through this table; a name not in it
// is INVALID_CONFIG, as Kafka answers an unknown topic config.
//
// Kafka spells "no limit" -1 (retention) or Long.MAX_VALUE (timestamps,
// segment.ms, flushes) where a TopicConfig has a zero field (a negative
// MaxTimestampAhead): both read as that. Values a TopicConfig cannot express are refused with a
// message saying what can be, never approximated silently, with one
// exception: flush.ms names the broker's SyncInterval policy, whose
// interval is the broker's (Options.SyncInterval) whatever the value.

// unlimited is Kafka's Long.MAX_VALUE, its spelling of "never".
const unlimited = math.MaxInt64

// topicSetting is one Kafka topic config.
type topicSetting struct {
	name   string
	broker string // the broker-wide default's name, "" if none is shown
	typ    kmsg.ConfigType
	doc    string
	// get is the value in cfg, whose zero fields read as their defaults;
	// o is the broker's options, whose Sync a topic of SyncDefault follows.
	get func(cfg stream.TopicConfig, o *stream.Options) string
	// set applies v to cfg; reset makes the setting its default again.
	set   func(cfg *stream.TopicConfig, v string) error
	reset func(cfg *stream.TopicConfig)
}

// topicSettings in the order changes apply: compression.type before the
// levels, flush.messages before flush.ms (see applySettings).
var topicSettings = []topicSetting{
	{
		name: "cleanup.policy", broker: "log.cleanup.policy", typ: kmsg.ConfigTypeList,
		doc: "delete: retention deletes old segments. compact: the cleaner keeps the latest record of each key, and records need a key. compact,delete: both.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string { return cfg.Cleanup.String() },
		set: func(cfg *stream.TopicConfig, v string) error {
			p, err := stream.ParseCleanupPolicy(v)
			if err != nil {
				return fmt.Errorf("cleanup.policy=%s: %w", v, err)
			}
			cfg.Cleanup = p
			return nil
		},
		reset: func(cfg *stream.TopicConfig) { cfg.Cleanup = stream.CleanupDelete },
	},
	{
		name: "compression.type", broker: "compression.type", typ: kmsg.ConfigTypeString,
		doc: "The codec batches are stored with: producer (as sent), uncompressed, gzip, snappy, lz4 or zstd.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			if cfg.Compression.Codec == stream.CodecNone {
				return "uncompressed" // a topic's spelling of none
			}
			return cfg.Compression.Codec.String()
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			codec, err := stream.ParseCodec(v)
			if err != nil {
				return fmt.Errorf("compression.type=%s: %w", v, err)
			}
			if codec != cfg.Compression.Codec {
				// A level belongs to its codec; one set with this
				// request is applied after.
				cfg.Compression = stream.Compression{Codec: codec}
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) { cfg.Compression = stream.Compression{} },
	},
	levelSetting("compression.gzip.level", stream.CodecGzip, -1),
	levelSetting("compression.lz4.level", stream.CodecLZ4, 9),
	levelSetting("compression.zstd.level", stream.CodecZstd, 3),
	{
		name: "delete.retention.ms", broker: "log.cleaner.delete.retention.ms", typ: kmsg.ConfigTypeLong,
		doc: "How long the cleaner keeps tombstones (records with a null value) and spent transaction markers after it first meets them.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			d := cmp.Or(cfg.DeleteRetention, stream.DefaultDeleteRetention)
			return strconv.FormatInt(max(d, 0).Milliseconds(), 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			d, err := parseMillisOrZero(v)
			cfg.DeleteRetention = d
			if err == nil && d == 0 {
				cfg.DeleteRetention = -1 // 0: TopicConfig's spelling of none is negative
			}
			return settingErr("delete.retention.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.DeleteRetention = 0 },
	},
	{
		name: "flush.messages", broker: "log.flush.interval.messages", typ: kmsg.ConfigTypeLong,
		doc: "1 fsyncs every batch before it is acknowledged (SyncAlways); 9223372036854775807 leaves it to flush.ms.",
		get: func(cfg stream.TopicConfig, o *stream.Options) string {
			if syncOf(cfg, o) == stream.SyncAlways {
				return "1"
			}
			return strconv.FormatInt(unlimited, 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			switch n, err := strconv.ParseInt(v, 10, 64); {
			case err == nil && n == 1:
				cfg.Sync = stream.SyncAlways
			case err == nil && n == unlimited:
				if cfg.Sync == stream.SyncAlways {
					cfg.Sync = stream.SyncDefault
				}
			default:
				return fmt.Errorf("%w: flush.messages=%s: want 1 (fsync every batch) or %d (leave it to flush.ms)", stream.ErrInvalidConfig, v, int64(unlimited))
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) {
			if cfg.Sync == stream.SyncAlways {
				cfg.Sync = stream.SyncDefault
			}
		},
	},
	{
		name: "flush.ms", broker: "log.flush.interval.ms", typ: kmsg.ConfigTypeLong,
		doc: "9223372036854775807 leaves fsyncs to the OS (SyncNever); any other value fsyncs every broker SyncInterval (SyncInterval); 0 with flush.messages=1 is SyncAlways.",
		get: func(cfg stream.TopicConfig, o *stream.Options) string {
			switch syncOf(cfg, o) {
			case stream.SyncAlways:
				return "0"
			case stream.SyncNever:
				return strconv.FormatInt(unlimited, 10)
			}
			return strconv.FormatInt(o.SyncInterval.Milliseconds(), 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil || n < 0:
				return fmt.Errorf("%w: flush.ms=%s: want a number of ms, %d for none", stream.ErrInvalidConfig, v, int64(unlimited))
			case cfg.Sync == stream.SyncAlways: // flush.messages=1 rules
			case n == unlimited:
				cfg.Sync = stream.SyncNever
			default:
				cfg.Sync = stream.SyncInterval
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) {
			if cfg.Sync != stream.SyncAlways {
				cfg.Sync = stream.SyncDefault
			}
		},
	},
	{
		name: "max.compaction.lag.ms", broker: "log.cleaner.max.compaction.lag.ms", typ: kmsg.ConfigTypeLong,
		doc: "A compacted partition with a record dirty for longer than this is cleaned whatever its dirty ratio; 9223372036854775807 for no limit.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			return millisOrUnlimited(cfg.MaxCompactionLag)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			d, err := parseMillis(v)
			cfg.MaxCompactionLag = d
			return settingErr("max.compaction.lag.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.MaxCompactionLag = 0 },
	},
	{
		name: "max.message.bytes", broker: "message.max.bytes", typ: kmsg.ConfigTypeInt,
		doc: "The largest record accepted, as stored (compressed where the topic compresses).",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			return strconv.Itoa(cmp.Or(cfg.MaxRecordBytes, stream.DefaultMaxRecordBytes))
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			n, err := parseInt(v, 1, math.MaxInt32)
			cfg.MaxRecordBytes = int(n)
			return settingErr("max.message.bytes", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.MaxRecordBytes = 0 },
	},
	{
		name: "message.timestamp.after.max.ms", typ: kmsg.ConfigTypeLong,
		doc: "How far ahead of the broker's clock a record's timestamp may be.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			switch d := cmp.Or(cfg.MaxTimestampAhead, stream.DefaultMaxTimestampAhead); {
			case d < 0:
				return strconv.FormatInt(unlimited, 10)
			default:
				return strconv.FormatInt(d.Milliseconds(), 10)
			}
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			d, err := parseMillis(v)
			switch {
			case err == nil && d == 0:
				cfg.MaxTimestampAhead = -1 // no limit
			case err == nil:
				cfg.MaxTimestampAhead = d
			}
			return settingErr("message.timestamp.after.max.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.MaxTimestampAhead = 0 },
	},
	{
		name: "message.timestamp.before.max.ms", typ: kmsg.ConfigTypeLong,
		doc: "How far behind the broker's clock a record's timestamp may be.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			return millisOrUnlimited(cfg.MaxTimestampBehind)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			d, err := parseMillis(v)
			cfg.MaxTimestampBehind = d
			return settingErr("message.timestamp.before.max.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.MaxTimestampBehind = 0 },
	},
	{
		name: "message.timestamp.type", broker: "log.message.timestamp.type", typ: kmsg.ConfigTypeString,
		doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps records as they are appended.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			if cfg.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			switch v {
			case "CreateTime":
				cfg.LogAppendTime = false
			case "LogAppendTime":
				cfg.LogAppendTime = true
			default:
				return fmt.Errorf("%w: message.timestamp.type=%s: want CreateTime or LogAppendTime", stream.ErrInvalidConfig, v)
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) { cfg.LogAppendTime = false },
	},
	{
		name: "min.cleanable.dirty.ratio", broker: "log.cleaner.min.cleanable.ratio", typ: kmsg.ConfigTypeDouble,
		doc: "The share of a compacted partition's log that must be dirty (not yet cleaned) before the cleaner takes it, from 0 to 1.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			r := cmp.Or(cfg.MinCleanableDirtyRatio, stream.DefaultMinCleanableDirtyRatio)
			return formatDouble(max(r, 0))
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			switch {
			case err != nil || !(r >= 0 && r <= 1): // NaN too
				return fmt.Errorf("%w: min.cleanable.dirty.ratio=%s: want a number from 0 to 1", stream.ErrInvalidConfig, v)
			case r == 0:
				cfg.MinCleanableDirtyRatio = -1 // 0: TopicConfig's spelling of Kafka's 0 is negative
			default:
				cfg.MinCleanableDirtyRatio = r
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) { cfg.MinCleanableDirtyRatio = 0 },
	},
	{
		name: "min.compaction.lag.ms", broker: "log.cleaner.min.compaction.lag.ms", typ: kmsg.ConfigTypeLong,
		doc: "Records younger than this are not cleaned from a compacted partition.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			return strconv.FormatInt(cfg.MinCompactionLag.Milliseconds(), 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			d, err := parseMillisOrZero(v)
			cfg.MinCompactionLag = d
			return settingErr("min.compaction.lag.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.MinCompactionLag = 0 },
	},
	{
		name: "min.insync.replicas", broker: "min.insync.replicas", typ: kmsg.ConfigTypeInt,
		doc: "Always 1: the broker is the only replica.",
		get: func(stream.TopicConfig, *stream.Options) string { return "1" },
		set: func(_ *stream.TopicConfig, v string) error {
			if v != "1" {
				return fmt.Errorf("%w: min.insync.replicas=%s: there is one replica, so only 1", stream.ErrInvalidConfig, v)
			}
			return nil
		},
		reset: func(*stream.TopicConfig) {},
	},
	{
		name: "retention.bytes", broker: "log.retention.bytes", typ: kmsg.ConfigTypeLong,
		doc: "Delete a partition's oldest segments while the rest hold at least this many bytes; -1 for no limit.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			if cfg.RetentionBytes <= 0 {
				return "-1"
			}
			return strconv.FormatInt(cfg.RetentionBytes, 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err == nil && n == -1:
				cfg.RetentionBytes = 0
			case err == nil && n > 0:
				cfg.RetentionBytes = n
			default:
				return fmt.Errorf("%w: retention.bytes=%s: want a positive number of bytes, -1 for no limit", stream.ErrInvalidConfig, v)
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) { cfg.RetentionBytes = 0 },
	},
	{
		name: "retention.ms", broker: "log.retention.ms", typ: kmsg.ConfigTypeLong,
		doc: "Delete whole segments whose newest record is older than this; -1 keeps records forever.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			if cfg.Retention <= 0 {
				return "-1"
			}
			return strconv.FormatInt(cfg.Retention.Milliseconds(), 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			if v == "-1" {
				cfg.Retention = 0
				return nil
			}
			d, err := parseMillis(v)
			if err == nil && d == 0 {
				err = fmt.Errorf("want a positive number of ms, -1 for no limit")
			}
			cfg.Retention = d
			return settingErr("retention.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.Retention = 0 },
	},
	{
		name: "segment.bytes", broker: "log.segment.bytes", typ: kmsg.ConfigTypeInt,
		doc: "Roll a new segment file at this size.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			return strconv.FormatInt(cmp.Or(cfg.SegmentBytes, stream.DefaultSegmentBytes), 10)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			n, err := parseInt(v, 1, math.MaxInt32)
			cfg.SegmentBytes = n
			return settingErr("segment.bytes", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.SegmentBytes = 0 },
	},
	{
		name: "segment.ms", broker: "log.roll.ms", typ: kmsg.ConfigTypeLong,
		doc: "Roll the active segment once it is this old; 9223372036854775807 rolls by size only.",
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			return millisOrUnlimited(cfg.SegmentAge)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			d, err := parseMillis(v)
			cfg.SegmentAge = d
			return settingErr("segment.ms", v, err)
		},
		reset: func(cfg *stream.TopicConfig) { cfg.SegmentAge = 0 },
	},
}

// levelSetting is the compression level setting of codec (KIP-390),
// whose default Kafka describes as def.
func levelSetting(name string, codec stream.Codec, def int) topicSetting {
	return topicSetting{
		name: name, broker: name, typ: kmsg.ConfigTypeInt,
		doc: fmt.Sprintf("The %v level, when compression.type is %v.", codec, codec),
		get: func(cfg stream.TopicConfig, _ *stream.Options) string {
			if cfg.Compression.Codec == codec && cfg.Compression.Level != 0 {
				return strconv.Itoa(cfg.Compression.Level)
			}
			return strconv.Itoa(def)
		},
		set: func(cfg *stream.TopicConfig, v string) error {
			n, err := strconv.Atoi(v)
			switch {
			case err != nil:
				return fmt.Errorf("%w: %s=%s: not a number", stream.ErrInvalidConfig, name, v)
			case cfg.Compression.Codec != codec && n == def:
				// The default, as described: tools send back every
				// value they were shown.
				return nil
			case cfg.Compression.Codec != codec:
				// One level is kept, the topic codec's: a level for
				// another codec would be lost.
				return fmt.Errorf("%w: %s=%s: applies only with compression.type=%v (the topic's is %s)", stream.ErrInvalidConfig, name, v, codec, cfg.Compression.Codec)
			}
			cfg.Compression.Level = n
			if n == def {
				cfg.Compression.Level = 0
			}
			return nil
		},
		reset: func(cfg *stream.TopicConfig) {
			if cfg.Compression.Codec == codec {
				cfg.Compression.Level = 0
			}
		},
	}
}

// settingOf finds a topic setting by name.
func settingOf(name string) (*topicSetting, bool) {
	i := slices.IndexFunc(topicSettings, func(s topicSetting) bool { return s.name == name })
	if i < 0 {
		return nil, false
	}
	return &topicSettings[i], true
}

// syncOf is the policy a topic follows: its own, or the broker's.
func syncOf(cfg stream.TopicConfig, o *stream.Options) stream.SyncPolicy {
	if cfg.Sync == stream.SyncDefault {
		return o.Sync
	}
	return cfg.Sync
}

// configChange sets one config (value nil: back to its default), or with
// op APPEND or SUBTRACT adds values to or removes them from a list config.
type configChange struct {
	name  string
	value *string
	op    kmsg.IncrementalAlterConfigOp // SET (the zero value), APPEND or SUBTRACT
}

// applySettings applies changes to cfg in the table's order (so that a
// codec is set before its level whatever the request's order). An unknown
// name or a bad value is an error wrapping stream.ErrInvalidConfig, and
// then cfg is left half changed: apply to a copy.
func applySettings(cfg *stream.TopicConfig, changes []configChange) error {
	byName := make(map[string]configChange, len(changes))
	for _, ch := range changes {
		s, ok := settingOf(ch.name)
		switch {
		case !ok:
			return fmt.Errorf("%w: unknown topic config %q", stream.ErrInvalidConfig, ch.name)
		case ch.op != kmsg.IncrementalAlterConfigOpSet && s.typ != kmsg.ConfigTypeList:
			// Kafka's answer to APPEND or SUBTRACT on a scalar config.
			return fmt.Errorf("%w: %s: %v applies only to list configs", stream.ErrInvalidConfig, ch.name, ch.op)
		}
		byName[ch.name] = ch
	}
	for i := range topicSettings {
		s := &topicSettings[i]
		ch, ok := byName[s.name]
		switch {
		case !ok:
		case ch.value == nil:
			s.reset(cfg)
		default:
			v := *ch.value
			if ch.op != kmsg.IncrementalAlterConfigOpSet {
				// A list setting's get does not read the Options.
				v = editList(s.get(*cfg, nil), v, ch.op == kmsg.IncrementalAlterConfigOpAppend)
			}
			if err := s.set(cfg, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// editList is list (a list config's value) with the values of edit added
// (add) or removed, as Kafka's APPEND and SUBTRACT do: an appended value
// already there is not repeated.
func editList(list, edit string, add bool) string {
	var out []string
	for v := range strings.SplitSeq(list, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	for v := range strings.SplitSeq(edit, ",") {
		v = strings.TrimSpace(v)
		switch i := slices.IndexFunc(out, func(o string) bool { return strings.EqualFold(o, v) }); {
		case add && i < 0 && v != "":
			out = append(out, v)
		case !add && i >= 0:
			out = slices.Delete(out, i, i+1)
		}
	}
	return strings.Join(out, ",")
}

// describeSettings lists cfg's settings (all, or those named), each with
// its source: the topic's own (DYNAMIC_TOPIC_CONFIG) where it differs from
// the default a topic created without configs gets, DEFAULT_CONFIG
// otherwise.
func describeSettings(cfg stream.TopicConfig, o *stream.Options, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, s := range topicSettings {
		if len(names) > 0 && !slices.Contains(names, s.name) {
			continue
		}
		v, def := s.get(cfg, o), s.get(stream.TopicConfig{}, o)
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ConfigType = s.name, kmsg.StringPtr(v), s.typ
		c.IsDefault = v == def
		c.Source = kmsg.ConfigSourceDynamicTopicConfig
		if c.IsDefault {
			c.Source = kmsg.ConfigSourceDefaultConfig
		}
		if synonyms {
			if !c.IsDefault {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(s.name, v, kmsg.ConfigSourceDynamicTopicConfig))
			}
			name := s.broker
			if name == "" {
				name = s.name
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(name, def, kmsg.ConfigSourceDefaultConfig))
		}
		if docs {
			c.Documentation = kmsg.StringPtr(s.doc)
		}
		out = append(out, c)
	}
	return out
}

func synonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	syn.Name, syn.Value, syn.Source = name, kmsg.StringPtr(value), src
	return syn
}

// createdConfigs is describeSettings' list as CreateTopics v5+ returns it.
func createdConfigs(cfg stream.TopicConfig, o *stream.Options) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, d := range describeSettings(cfg, o, nil, false, false) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source = d.Name, d.Value, int8(d.Source)
		out = append(out, c)
	}
	return out
}

// parseMillis reads a duration in ms: 1 or more, or Long.MAX_VALUE (and
// -1, Kafka's other "no limit") for none, read as 0.
func parseMillis(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("not a number of ms")
	case n == unlimited || n == -1:
		return 0, nil
	case n < 1:
		return 0, fmt.Errorf("want 1 ms or more, %d for no limit", int64(unlimited))
	case n > math.MaxInt64/int64(time.Millisecond):
		return 0, fmt.Errorf("over %d ms", math.MaxInt64/int64(time.Millisecond))
	}
	return time.Duration(n) * time.Millisecond, nil
}

// parseMillisOrZero reads a duration in ms, 0 or more: for settings whose
// 0 is a value, not "none".
func parseMillisOrZero(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("not a number of ms")
	case n < 0:
		return 0, fmt.Errorf("want 0 ms or more")
	case n > math.MaxInt64/int64(time.Millisecond):
		return 0, fmt.Errorf("over %d ms", math.MaxInt64/int64(time.Millisecond))
	}
	return time.Duration(n) * time.Millisecond, nil
}

// formatDouble writes v as Java's Double.toString does for the values a
// ratio takes: 0.5, 0.0, 1.0.
func formatDouble(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}

// millisOrUnlimited describes a duration whose zero value means none.
func millisOrUnlimited(d time.Duration) string {
	if d <= 0 {
		return strconv.FormatInt(unlimited, 10)
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want a number from %d to %d", lo, hi)
	}
	return n, nil
}

// settingErr wraps a value's parse error as an invalid config.
func settingErr(name, v string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s=%s: %v", stream.ErrInvalidConfig, name, v, err)
}
