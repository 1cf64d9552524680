package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options configure a Client.
type Options struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string
	// ClientID is the client.id the cluster sees. Default "embedstream".
	ClientID string
	// Partitioner places every published record (kgo.RecordPartitioner,
	// partitioner.class), as stream.Options.Partitioner does on the embedded
	// side. Default kgo.StickyKeyPartitioner(nil): Kafka's murmur2
	// placement of keyed records, the same as stream.KafkaPartitioner, and
	// sticky placement of keyless ones; Record.Partition is ignored. Use
	// kgo.ManualPartitioner() (stream.ManualPartitioner's counterpart) to
	// place records on the partition they name: one left at
	// stream.AnyPartition is then placed stickily, and a partition the
	// topic lacks fails with stream.ErrInvalidPartition.
	Partitioner kgo.Partitioner
	// Compression is the codec, and level, the Client's producer
	// compresses record batches with (kgo.ProducerBatchCompression; Kafka's
	// producer compression.type and compression.<codec>.level), as
	// stream.ProducerOptions.Compression is on the embedded side. Default
	// CodecDefault: uncompressed, as Kafka's producer and the embedded
	// broker write by default (franz-go's own default, snappy, is not
	// used). Levels are Kafka's, as stream.Compression documents them,
	// mapped onto franz-go's libraries' (lz4 1 to 9 are its levels 1 to 9
	// and 10 to 17 its highest; zstd's onto four speeds). A topic with a
	// codec of its own (TopicConfig.Compression) is recompressed by the
	// cluster. A kgo.ProducerBatchCompression in Opts overrides it. New
	// fails with stream.ErrInvalidConfig for a codec or level the embedded
	// side would refuse.
	Compression stream.Compression
	// Opts are more franz-go options (TLS, SASL, timeouts, heartbeats,
	// logging...) for every franz-go client the Client makes: its
	// producer, each group member, each partition reader. They come after
	// the options the Client derives, so they override them, except the
	// ones the mapping depends on: the partitioner wrapper, and a group
	// member's group, topics, balancer, reset offset and callbacks.
	Opts []kgo.Opt
}

// Client is a stream.Client on an Apache Kafka cluster (or anything that
// speaks its protocol: Redpanda, WarpStream, franz-go's kfake). It is safe
// for concurrent use. See the package doc for how the embedded semantics
// map onto the cluster's.
type Client struct {
	opts    Options
	cl      *kgo.Client  // producing and metadata
	adm     *kadm.Client // topic admin and offset listing, on cl
	refused *refusals    // records the partitioner failed, until finish

	mu        sync.Mutex
	closed    bool
	consumers map[*GroupConsumer]struct{}
	readers   map[*PartitionReader]struct{}
	txns      map[io.Closer]struct{} // transactional producers and sessions
}

var _ stream.Client = (*Client)(nil)

// New connects to a cluster. It fails if no seed broker answers before ctx
// ends (a metadata request), so a wrong address fails here rather than at
// the first Publish.
func New(ctx context.Context, opts Options) (*Client, error) {
	if len(opts.Brokers) == 0 {
		return nil, errorf(stream.ErrInvalidConfig, "kafka: no brokers")
	}
	if opts.ClientID == "" {
		opts.ClientID = "embedstream"
	}
	if opts.Partitioner == nil {
		opts.Partitioner = kgo.StickyKeyPartitioner(nil)
	}
	if err := checkCompression(opts.Compression); err != nil {
		return nil, fmt.Errorf("kafka: producer: %w", err)
	}
	refused := &refusals{}
	cl, err := kgo.NewClient(opts.producer(refused)...)
	if err != nil {
		return nil, errorf(stream.ErrInvalidConfig, "kafka: %v", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: no broker of %v answered: %w", opts.Brokers, err)
	}
	return &Client{
		opts: opts, cl: cl, adm: kadm.NewClient(cl), refused: refused,
		consumers: map[*GroupConsumer]struct{}{},
		readers:   map[*PartitionReader]struct{}{},
		txns:      map[io.Closer]struct{}{},
	}, nil
}

// base is the options every franz-go client of the Client starts with.
func (o Options) base() []kgo.Opt {
	out := []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID(o.ClientID)}
	return append(out, o.Opts...)
}

// producer is the options of a franz-go client that publishes: base with
// the compression (before Opts, which may override it) and the
// partitioner, which notes the records it fails in refused.
func (o Options) producer(refused *refusals) []kgo.Opt {
	kopts := append([]kgo.Opt{kgo.ProducerBatchCompression(producerCodec(o.Compression))}, o.base()...)
	return append(kopts, kgo.RecordPartitioner(partitioner{base: o.Partitioner, refused: refused}))
}

// producerCodec is franz-go's codec for cc, which checkCompression
// passed. franz-go takes its libraries' own levels: gzip's are Kafka's,
// lz4's are pierrec/lz4's CompressionLevel (Fast is 0, LevelN is
// 1<<(8+N)) and zstd's are klauspost/compress's EncoderLevel.
func producerCodec(cc stream.Compression) kgo.CompressionCodec {
	switch cc.Codec {
	case stream.CodecGzip:
		if cc.Level != 0 {
			return kgo.GzipCompression().WithLevel(cc.Level)
		}
		return kgo.GzipCompression()
	case stream.CodecSnappy:
		return kgo.SnappyCompression()
	case stream.CodecLZ4:
		if cc.Level != 0 {
			return kgo.Lz4Compression().WithLevel(1 << (8 + min(cc.Level, 9)))
		}
		return kgo.Lz4Compression()
	case stream.CodecZstd:
		if cc.Level != 0 {
			return kgo.ZstdCompression().WithLevel(int(zstd.EncoderLevelFromZstd(cc.Level)))
		}
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// Kgo returns the franz-go client the Client produces with, for what
// stream.Client does not cover (ACLs, quotas...). Do not
// Close it: Close the Client.
func (c *Client) Kgo() *kgo.Client { return c.cl }

// Admin returns a kadm client on the Client's connection, for topic
// configs, partition counts, group descriptions and the rest of Kafka's
// admin API. Do not Close it: Close the Client.
func (c *Client) Admin() *kadm.Client { return c.adm }

func (c *Client) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return stream.ErrClosed
	}
	return nil
}

// topicConfigs maps a TopicConfig to Kafka topic settings. Sync has no
// topic setting here: durability on a cluster is acks and replication.
func topicConfigs(cfg stream.TopicConfig) map[string]*string {
	m := map[string]*string{}
	for k, v := range topicSettings(cfg) {
		if v != nil {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// topicSettings maps each TopicConfig field that has a Kafka topic setting
// to its value, or to nil for a zero field, which leaves the cluster's
// default.
func topicSettings(cfg stream.TopicConfig) map[string]*string {
	m := map[string]*string{}
	set := func(k string, ok bool, v any) {
		m[k] = nil
		if ok {
			s := fmt.Sprint(v)
			m[k] = &s
		}
	}
	set("retention.ms", cfg.Retention > 0, cfg.Retention.Milliseconds())
	set("retention.bytes", cfg.RetentionBytes > 0, cfg.RetentionBytes)
	set("segment.bytes", cfg.SegmentBytes > 0, cfg.SegmentBytes)
	set("segment.ms", cfg.SegmentAge > 0, cfg.SegmentAge.Milliseconds())
	set("max.message.bytes", cfg.MaxRecordBytes > 0, cfg.MaxRecordBytes)
	set("message.timestamp.type", cfg.LogAppendTime, "LogAppendTime")
	ahead := cfg.MaxTimestampAhead.Milliseconds()
	if cfg.MaxTimestampAhead < 0 {
		ahead = math.MaxInt64 // no limit
	}
	set("message.timestamp.after.max.ms", cfg.MaxTimestampAhead != 0, ahead)
	set("message.timestamp.before.max.ms", cfg.MaxTimestampBehind > 0, cfg.MaxTimestampBehind.Milliseconds())
	set("cleanup.policy", cfg.Cleanup != stream.CleanupDelete, cfg.Cleanup)
	// Kafka's 0 ratio and 0 ms delete retention are negative fields.
	set("min.cleanable.dirty.ratio", cfg.MinCleanableDirtyRatio != 0, max(cfg.MinCleanableDirtyRatio, 0))
	set("min.compaction.lag.ms", cfg.MinCompactionLag > 0, cfg.MinCompactionLag.Milliseconds())
	set("max.compaction.lag.ms", cfg.MaxCompactionLag > 0, cfg.MaxCompactionLag.Milliseconds())
	set("delete.retention.ms", cfg.DeleteRetention != 0, max(cfg.DeleteRetention, 0).Milliseconds())
	cc := cfg.Compression
	// A topic spells none "uncompressed" (Kafka's BrokerCompressionType):
	// a cluster refuses "none", the producer setting's name.
	codec := cc.Codec.String()
	if cc.Codec == stream.CodecNone {
		codec = "uncompressed"
	}
	set("compression.type", cc.Codec != stream.CodecDefault, codec)
	// A level is sent only when set: Kafka before 3.8 (KIP-390) knows no
	// compression.<codec>.level and refuses a topic that names one, so a
	// default level works on any cluster. kfake keeps every topic setting
	// it is given and describes it back, the level ones too, but compresses
	// nothing itself: it stores batches as their producer compressed them,
	// whatever compression.type says.
	for codec, key := range levelSettings {
		set(key, cc.Codec == codec && cc.Level != 0, cc.Level)
	}
	return m
}

// levelSettings are Kafka's level settings, by the codec they apply to.
var levelSettings = map[stream.Codec]string{
	stream.CodecGzip: "compression.gzip.level",
	stream.CodecLZ4:  "compression.lz4.level",
	stream.CodecZstd: "compression.zstd.level",
}

// checkCompression refuses, as the embedded broker does, a codec that is
// not one of Kafka's and a level its codec does not take.
func checkCompression(cc stream.Compression) error {
	if cc.Codec < stream.CodecDefault || cc.Codec > stream.CodecZstd {
		return errorf(stream.ErrInvalidConfig, "compression codec %v", cc.Codec)
	}
	if cc.Level == 0 {
		return nil
	}
	if _, ok := levelSettings[cc.Codec]; !ok {
		return errorf(stream.ErrInvalidConfig, "compression level %d for %v, which has none", cc.Level, cc.Codec)
	}
	// stream.CodecGzip and on are batch.Gzip and on, one apart.
	if err := batch.CheckLevel(batch.Codec(cc.Codec-1), cc.Level); err != nil {
		return errorf(stream.ErrInvalidConfig, "compression %v: %v", cc, err)
	}
	return nil
}

// configFromSettings is topicSettings' inverse: the TopicConfig a topic's
// described settings (defaults included) and partition count amount to.
// Kafka's "no limit" values read as the zero or negative values that mean
// it in a TopicConfig. compression.type "uncompressed" (a topic's spelling
// of none) reads as CodecNone. A compression level reads as
// Compression.Level only when set on the topic itself: the one a cluster
// describes as its default (Kafka 3.8 and later describe all three) is
// the zero Level, "the default".
func configFromSettings(configs []kadm.Config, partitions int) stream.TopicConfig {
	cfg := stream.TopicConfig{Partitions: partitions}
	levels := map[string]int{}
	for _, c := range configs {
		v := c.MaybeValue()
		n, err := strconv.ParseInt(v, 10, 64)
		num := err == nil
		ms := time.Duration(n) * time.Millisecond
		unlimited := n < 0 || n == math.MaxInt64
		switch c.Key {
		case "retention.ms":
			if num && !unlimited {
				cfg.Retention = ms
			}
		case "retention.bytes":
			if num && !unlimited {
				cfg.RetentionBytes = n
			}
		case "segment.bytes":
			if num {
				cfg.SegmentBytes = n
			}
		case "segment.ms":
			if num && !unlimited {
				cfg.SegmentAge = ms
			}
		case "max.message.bytes":
			if num {
				cfg.MaxRecordBytes = int(n)
			}
		case "message.timestamp.type":
			cfg.LogAppendTime = v == "LogAppendTime"
		case "message.timestamp.after.max.ms":
			if num {
				cfg.MaxTimestampAhead = ms
				if unlimited {
					cfg.MaxTimestampAhead = -1
				}
			}
		case "message.timestamp.before.max.ms":
			if num && !unlimited {
				cfg.MaxTimestampBehind = ms
			}
		case "cleanup.policy":
			if p, err := stream.ParseCleanupPolicy(v); err == nil {
				cfg.Cleanup = p
			}
		case "min.cleanable.dirty.ratio":
			if r, err := strconv.ParseFloat(v, 64); err == nil {
				cfg.MinCleanableDirtyRatio = r
				if r == 0 {
					cfg.MinCleanableDirtyRatio = -1
				}
			}
		case "min.compaction.lag.ms":
			if num && n > 0 && n <= math.MaxInt64/int64(time.Millisecond) {
				cfg.MinCompactionLag = ms
			}
		case "max.compaction.lag.ms":
			if num && !unlimited && n <= math.MaxInt64/int64(time.Millisecond) {
				cfg.MaxCompactionLag = ms
			}
		case "delete.retention.ms":
			switch {
			case num && n == 0:
				cfg.DeleteRetention = -1
			case num && n > 0 && n <= math.MaxInt64/int64(time.Millisecond):
				cfg.DeleteRetention = ms
			}
		case "compression.type":
			if codec, err := stream.ParseCodec(v); err == nil { // "uncompressed" included
				cfg.Compression.Codec = codec
			}
		case "compression.gzip.level", "compression.lz4.level", "compression.zstd.level":
			if num && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				levels[c.Key] = int(n)
			}
		}
	}
	if key, ok := levelSettings[cfg.Compression.Codec]; ok {
		cfg.Compression.Level = levels[key]
	}
	return cfg
}

// CreateTopic creates a topic with cfg.Partitions partitions (default 1)
// and the cluster's default replication factor. TopicConfig fields map to
// topic settings: Retention to retention.ms, RetentionBytes to
// retention.bytes, SegmentBytes to segment.bytes, SegmentAge to segment.ms,
// MaxRecordBytes to max.message.bytes, LogAppendTime to
// message.timestamp.type=LogAppendTime, MaxTimestampAhead and
// MaxTimestampBehind to message.timestamp.after.max.ms and
// message.timestamp.before.max.ms, Cleanup to cleanup.policy,
// MinCleanableDirtyRatio to min.cleanable.dirty.ratio (negative: 0),
// MinCompactionLag and MaxCompactionLag to min.compaction.lag.ms and
// max.compaction.lag.ms, DeleteRetention to delete.retention.ms (negative:
// 0), Compression to compression.type (producer,
// uncompressed for CodecNone, gzip, snappy, lz4 or zstd; CodecDefault is
// Kafka's default, producer) and a non-zero Compression.Level to compression.gzip.level,
// compression.lz4.level or compression.zstd.level, which Kafka 3.8 and
// later know (KIP-390; older clusters refuse them: leave Level 0 there).
// The cluster, not this client, then recompresses what producers send, as
// the embedded broker does. Sync is ignored: durability is the cluster's
// acks and replication. It fails with stream.ErrTopicExists,
// stream.ErrInvalidTopic or stream.ErrInvalidConfig (also for a codec or
// level, or compaction settings, the embedded broker would refuse).
func (c *Client) CreateTopic(ctx context.Context, name string, cfg stream.TopicConfig) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	if err := validTopic(name); err != nil {
		return err
	}
	if cfg.Partitions < 0 {
		return errorf(stream.ErrInvalidConfig, "%d partitions", cfg.Partitions)
	}
	if err := checkCompression(cfg.Compression); err != nil {
		return err
	}
	if err := checkCompaction(cfg); err != nil {
		return err
	}
	parts := int32(max(cfg.Partitions, 1))
	resp, err := c.adm.CreateTopic(ctx, parts, -1, topicConfigs(cfg), name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("kafka: create topic %q: %w", name, mapErr(err))
	}
	return nil
}

// AlterTopic changes a topic's settings with Kafka's
// IncrementalAlterConfigs (what kafka-configs.sh --alter sends). change is
// given the topic's config as the cluster describes it (its defaults
// included, mapped back as CreateTopic maps a TopicConfig to settings) and
// edits it; each setting whose field changed is set, or deleted (back to
// the cluster's default) when the field became zero. Compression changes
// compression.type and the codec's level setting, as CreateTopic maps
// them; the cluster recompresses batches appended after. Sync is ignored,
// as by CreateTopic. Partitions cannot change, and negative sizes and
// durations (other than MaxTimestampAhead and DeleteRetention) and
// compaction settings the embedded broker would refuse are refused:
// stream.ErrInvalidConfig, with nothing sent. Between the describe and the
// alter, another client's change of the same setting may be overwritten.
// It fails with stream.ErrTopicNotFound for an unknown topic, and with
// stream.ErrInvalidConfig for a value the cluster refuses.
func (c *Client) AlterTopic(ctx context.Context, name string, change func(*stream.TopicConfig)) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	if change == nil {
		return errorf(stream.ErrInvalidArgument, "AlterTopic of %q without a change", name)
	}
	if err := validTopic(name); err != nil {
		return err
	}
	cur, err := c.topicConfig(ctx, name)
	if err != nil {
		return fmt.Errorf("kafka: alter topic %q: %w", name, mapErr(err))
	}
	next := cur
	change(&next)
	if err := checkAlter(cur, next); err != nil {
		return fmt.Errorf("kafka: alter topic %q: %w", name, err)
	}
	was, now := topicSettings(cur), topicSettings(next)
	var alters []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(now)) {
		switch v := now[k]; {
		case v == nil && was[k] != nil:
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
		case v != nil && (was[k] == nil || *v != *was[k]):
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: v})
		}
	}
	if len(alters) == 0 {
		return nil
	}
	resps, err := c.adm.AlterTopicConfigs(ctx, alters, name)
	if err == nil {
		_, err = resps.On(name, func(r *kadm.AlterConfigsResponse) error { return r.Err })
	}
	if err != nil {
		return fmt.Errorf("kafka: alter topic %q: %w", name, mapErr(err))
	}
	return nil
}

// topicConfig describes a topic's settings and partitions as a TopicConfig.
func (c *Client) topicConfig(ctx context.Context, name string) (stream.TopicConfig, error) {
	details, err := c.adm.ListTopics(ctx, name)
	if err != nil {
		return stream.TopicConfig{}, err
	}
	td, ok := details[name]
	switch {
	case !ok:
		return stream.TopicConfig{}, errorf(stream.ErrTopicNotFound, "%q", name)
	case td.Err != nil:
		return stream.TopicConfig{}, td.Err
	}
	rcs, err := c.adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return stream.TopicConfig{}, err
	}
	rc, err := rcs.On(name, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return stream.TopicConfig{}, err
	}
	return configFromSettings(rc.Configs, len(td.Partitions)), nil
}

// checkAlter refuses, as the embedded broker does, what AlterTopic cannot
// change and values no setting can hold.
func checkAlter(cur, next stream.TopicConfig) error {
	switch {
	case next.Partitions != cur.Partitions:
		return errorf(stream.ErrInvalidConfig, "partitions cannot be altered (it has %d)", cur.Partitions)
	case next.Retention < 0 || next.RetentionBytes < 0 || next.SegmentBytes < 0 || next.SegmentAge < 0 ||
		next.MaxRecordBytes < 0 || next.MaxTimestampBehind < 0:
		return errorf(stream.ErrInvalidConfig, "negative size or duration")
	}
	if err := checkCompaction(next); err != nil {
		return err
	}
	return checkCompression(next.Compression)
}

// checkCompaction refuses, as the embedded broker does, compaction
// settings no topic may have (stream.TopicConfig.Validate's rules):
// a cluster would refuse most, but a negative lag would be sent as none.
func checkCompaction(cfg stream.TopicConfig) error {
	// The compaction fields alone: a cluster's other settings may lie
	// outside the embedded broker's ranges (segment.bytes, say).
	return stream.TopicConfig{
		Cleanup: cfg.Cleanup, MinCleanableDirtyRatio: cfg.MinCleanableDirtyRatio,
		MinCompactionLag: cfg.MinCompactionLag, MaxCompactionLag: cfg.MaxCompactionLag,
	}.Validate()
}

// DeleteTopic deletes a topic (stream.ErrTopicNotFound if there is none).
// A cluster deletes asynchronously: for a moment after, the name may still
// be taken.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	if err := validTopic(name); err != nil {
		return err
	}
	resp, err := c.adm.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("kafka: delete topic %q: %w", name, mapErr(err))
	}
	// Forget the topic's partitions, so a topic re-created under the same
	// name is looked up afresh.
	c.cl.PurgeTopicsFromClient(name)
	return nil
}

// DeleteRecords moves a partition's log start offset to before (Kafka's
// DeleteRecords request) and returns the new start. It fails with
// stream.ErrOffsetOutOfRange past the partition's end,
// stream.ErrTopicNotFound or stream.ErrInvalidPartition.
func (c *Client) DeleteRecords(ctx context.Context, topic string, partition int32, before int64) (int64, error) {
	if err := c.checkOpen(); err != nil {
		return 0, err
	}
	if err := validTopic(topic); err != nil {
		return 0, err
	}
	if before < 0 {
		return 0, errorf(stream.ErrInvalidArgument, "delete before negative offset %d", before)
	}
	if partition < 0 {
		return 0, errorf(stream.ErrInvalidPartition, "partition %d", partition)
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: partition, At: before})
	resp, err := c.adm.DeleteRecords(ctx, offs)
	if err == nil {
		r, ok := resp.Lookup(topic, partition)
		switch {
		case !ok:
			err = errorf(stream.ErrTopicNotFound, "no answer for %s partition %d", topic, partition)
		case r.Err != nil:
			err = r.Err
		default:
			return r.LowWatermark, nil
		}
	}
	return 0, fmt.Errorf("kafka: delete records of %s partition %d: %w", topic, partition, mapErr(err))
}

// prepare validates and converts one record for producing.
func prepare(r *stream.Record) (*kgo.Record, error) {
	if err := validRecord(r); err != nil {
		return nil, err
	}
	return ToKgo(r), nil
}

// finish copies what the cluster assigned back into r, and maps err.
func (c *Client) finish(r *stream.Record, kr *kgo.Record, err error) error {
	return finish(c.refused, r, kr, err)
}

// finish copies what the cluster assigned back into r, and maps err;
// refused are the refusals of the client that produced kr.
func finish(refused *refusals, r *stream.Record, kr *kgo.Record, err error) error {
	if err != nil {
		if ref, ok := refused.take(kr); ok {
			return errorf(stream.ErrInvalidPartition, "partition %d of %q (it has %d)", ref.partition, r.Topic, ref.partitions)
		}
		return fmt.Errorf("kafka: produce to %q: %w", r.Topic, mapErr(err))
	}
	r.Partition, r.Offset, r.Timestamp = kr.Partition, kr.Offset, kr.Timestamp
	return nil
}

// Publish produces records and waits until the cluster acknowledged each
// (with the client's acks, by default all in-sync replicas), then fills in
// each record's Partition, Offset and Timestamp. Records are validated
// first (stream.ErrInvalidRecord, stream.ErrInvalidTopic) and none is sent
// if one fails. Options.Partitioner places every record: Record.Partition
// counts only under kgo.ManualPartitioner, where a partition the topic
// lacks fails that record with stream.ErrInvalidPartition. Unlike the
// embedded backend, records for one partition are not guaranteed to be one
// atomic batch, and a failure (a bad partition among them too) can leave
// some records written: the first error is returned.
func (c *Client) Publish(ctx context.Context, recs ...*stream.Record) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	_, err := produceSync(ctx, c.cl, c.refused, recs)
	return err
}

// produceSync validates recs (sending none if one fails), produces them
// with cl, waits for them all, and fills in what the cluster assigned. It
// returns how many were written and the first error.
func produceSync(ctx context.Context, cl *kgo.Client, refused *refusals, recs []*stream.Record) (int, error) {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr, err := prepare(r)
		if err != nil {
			return 0, err
		}
		krs[i] = kr
	}
	// ProduceSync skips the linger for the partitions it writes to; its
	// results come in completion order.
	errs := make(map[*kgo.Record]error, len(krs))
	for _, res := range cl.ProduceSync(ctx, krs...) {
		errs[res.Record] = res.Err
	}
	var first error
	written := 0
	for i, r := range recs {
		if err := finish(refused, r, krs[i], errs[krs[i]]); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		written++
	}
	return written, first
}

// PublishAsync produces r in the background, batched with other records
// (franz-go's linger and batch settings), and calls done (which may be nil)
// once with r and the outcome; on success r's Partition, Offset and
// Timestamp are filled in. Callbacks run in offset order per partition, on
// franz-go's promise goroutine: keep them short. Validation errors call done
// before PublishAsync returns. Unlike the embedded backend, ctx also bounds
// the record's life: if it ends before the record is sent, the record fails
// with ctx's error (franz-go's rule). r must not be modified until done runs.
func (c *Client) PublishAsync(ctx context.Context, r *stream.Record, done func(*stream.Record, error)) {
	if done == nil {
		done = func(*stream.Record, error) {}
	}
	if err := c.checkOpen(); err != nil {
		done(r, err)
		return
	}
	kr, err := prepare(r)
	if err != nil {
		done(r, err)
		return
	}
	c.cl.Produce(ctx, kr, func(kr *kgo.Record, err error) {
		done(r, c.finish(r, kr, err))
	})
}

// Flush waits until every record PublishAsync queued before it is
// acknowledged (or failed) and its callback has run.
func (c *Client) Flush(ctx context.Context) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	return mapErr(c.cl.Flush(ctx))
}

// topicPartitions returns the partition count of each topic, failing with
// stream.ErrTopicNotFound for one the cluster does not have.
func (c *Client) topicPartitions(ctx context.Context, topics ...string) (map[string]int, error) {
	details, err := c.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make(map[string]int, len(topics))
	for _, t := range topics {
		d, ok := details[t]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return nil, errorf(stream.ErrTopicNotFound, "%q", t)
		}
		if d.Err != nil {
			return nil, fmt.Errorf("kafka: topic %q: %w", t, mapErr(d.Err))
		}
		out[t] = len(d.Partitions)
	}
	return out, nil
}

// metadataTimeout bounds the metadata lookups of calls that take no context
// (Subscribe).
const metadataTimeout = 30 * time.Second

// Close flushes what PublishAsync queued, closes every group member and
// partition reader the Client made (members leave their groups, running
// OnRevoked on the calling goroutine), and disconnects. Later calls return
// stream.ErrClosed; Close itself is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	consumers := c.consumers
	readers := c.readers
	txns := c.txns
	c.consumers, c.readers, c.txns = nil, nil, nil
	c.mu.Unlock()

	var errs []error
	for t := range txns {
		errs = append(errs, t.Close())
	}
	for gc := range consumers {
		errs = append(errs, gc.Close())
	}
	for rd := range readers {
		errs = append(errs, rd.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), metadataTimeout)
	defer cancel()
	if err := c.cl.Flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("kafka: flush on close: %w", err))
	}
	c.cl.Close()
	return errors.Join(errs...)
}

// forgetConsumer and forgetReader drop a closed member or reader from the
// Client's books.
func (c *Client) forgetConsumer(gc *GroupConsumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.consumers, gc)
}

func (c *Client) forgetReader(rd *PartitionReader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.readers, rd)
}

// keepTxn adds a transactional producer or session to the Client's books,
// for Close; ErrClosed if the Client is closed.
func (c *Client) keepTxn(t io.Closer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return stream.ErrClosed
	}
	c.txns[t] = struct{}{}
	return nil
}

func (c *Client) forgetTxn(t io.Closer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.txns, t)
}
