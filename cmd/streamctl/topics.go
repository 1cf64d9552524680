package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/embedstream/stream"
)

// topicsCommand is "topics": kafka-topics.sh.
func topicsCommand() *command {
	return &command{name: "topics", summary: "list, create, describe and delete topics; add partitions; delete records; compact", subs: []*command{
		{name: "list", args: "[flags]", summary: "list the topics", run: topicsList},
		{name: "create", args: "-topic T [flags]", summary: "create a topic", run: topicsCreate,
			help: `Zero values take the library's defaults (1 partition, 1 GiB segments, 1 MiB records, keep forever,
compression as each writer chose). With -compression every batch is stored with
that codec, recompressed if a writer used another, as Kafka's compression.type;
-max-record-bytes then applies to a record as stored (compressed).`},
		{name: "describe", args: "[-topic T] [flags]", summary: "show topics' configs and per-partition offsets, bytes and segments",
			run: topicsDescribe, help: "Without -topic, every topic is described."},
		{name: "alter", args: "-topic T SETTING-FLAGS... [flags]", summary: "change a topic's settings", run: topicsAlter,
			help: `Only the settings given change (kafka-configs.sh --alter); each takes the same
values as in topics create, where 0 means the library's default. Settings apply
to the records written from now on: a smaller -segment-bytes rolls the active
segment at the next append, lower retention deletes at the next retention
check, a new -compression applies to the batches written from then on (those
stored keep theirs). -compression without -compression-level takes the codec's
default level. The partition count changes with add-partitions. Prints each
changed setting before and after.`},
		{name: "delete", args: "-topic T [flags]", summary: "delete a topic and all its records", run: topicsDelete},
		{name: "add-partitions", args: "-topic T -partitions N [flags]", summary: "grow a topic to N partitions in all",
			run: topicsAddPartitions},
		{name: "compact", args: "-topic T [flags]", summary: "clean a compacted topic now: keep the latest record of each key",
			run: topicsCompact, help: `Runs a cleaning round on every partition of a topic whose cleanup policy
compacts (Broker.Compact), whatever its dirty ratio: the sealed segments keep
the latest record of each key (and tombstones until their delete retention has
passed since the first round that kept them); the active segment is never
cleaned, as in Kafka. Offsets do not change, so a cleaned partition has gaps.
Prints each partition's bytes before and after.`},
		{name: "delete-records", args: "-topic T -partition P -before O [flags]", summary: "delete a partition's records before offset O",
			run: topicsDeleteRecords, help: "Moves the partition's log start to O (kafka-delete-records.sh); O may be at most the end offset."},
	}}
}

// topicsDeleteRecords runs "topics delete-records".
func topicsDeleteRecords(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	partition := fs.Int("partition", 0, "the `partition` (default 0)")
	var before requiredInt64
	fs.Var(&before, "before", "delete the records before this `offset` (required)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	switch {
	case !before.set:
		return a.usagef("-before is required")
	case before.v < 0:
		return a.usagef("-before %d: offsets are not negative", before.v)
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		start, err := b.DeleteRecords(*topic, int32(*partition), before.v)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s partition %d now starts at offset %d\n", *topic, *partition, start)
		return nil
	})
}

// topicsCompact runs "topics compact".
func topicsCompact(ctx context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		before, err := b.DescribeTopic(*topic)
		if err != nil {
			return err
		}
		if err := b.Compact(ctx, *topic); err != nil {
			return err
		}
		after, err := b.DescribeTopic(*topic)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tBYTES BEFORE\tBYTES AFTER\tSEGMENTS BEFORE\tSEGMENTS AFTER\tDIRTY\tLAST CLEANED")
		for i, p := range after.Partitions {
			q := before.Partitions[i]
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%.2f\t%s\n", p.Partition, q.Bytes, p.Bytes, q.Segments, p.Segments,
				p.DirtyRatio, lastCleaned(p.LastCleaned))
		}
		return tw.Flush()
	})
}

// topicsList runs "topics list".
func topicsList(_ context.Context, a *app, args []string) error {
	if err := a.parseFlags(a.flags(), args); err != nil {
		return err
	}
	return a.withBroker(readAccess, func(b *stream.Broker) error {
		for _, t := range b.Topics() {
			fmt.Fprintln(a.stdout, t)
		}
		return nil
	})
}

// topicsCreate runs "topics create".
func topicsCreate(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	var cfg stream.TopicConfig
	fs.IntVar(&cfg.Partitions, "partitions", 1, "number of `partitions`")
	settingFlags(fs, &cfg)
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	return a.withBroker(createAccess, func(b *stream.Broker) error {
		if err := b.CreateTopic(*topic, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "created topic %s with %s\n", *topic, plural(cfg.Partitions, "partition"))
		return nil
	})
}

// setting is a topic setting that topics create and alter take as a flag
// and topics alter shows before and after.
type setting struct {
	flag  string
	copy  func(dst *stream.TopicConfig, src stream.TopicConfig) // copies the setting from src
	value func(c stream.TopicConfig) string                     // shows it
}

// settings are the topic settings, by flag name.
var settings = []setting{
	{"retention", func(d *stream.TopicConfig, s stream.TopicConfig) { d.Retention = s.Retention },
		func(c stream.TopicConfig) string { return orNone(c.Retention, "forever") }},
	{"retention-bytes", func(d *stream.TopicConfig, s stream.TopicConfig) { d.RetentionBytes = s.RetentionBytes },
		func(c stream.TopicConfig) string { return bytesOrNone(c.RetentionBytes) }},
	{"segment-bytes", func(d *stream.TopicConfig, s stream.TopicConfig) { d.SegmentBytes = s.SegmentBytes },
		func(c stream.TopicConfig) string { return strconv.FormatInt(c.SegmentBytes, 10) }},
	{"segment-age", func(d *stream.TopicConfig, s stream.TopicConfig) { d.SegmentAge = s.SegmentAge },
		func(c stream.TopicConfig) string { return orNone(c.SegmentAge, "none") }},
	{"max-record-bytes", func(d *stream.TopicConfig, s stream.TopicConfig) { d.MaxRecordBytes = s.MaxRecordBytes },
		func(c stream.TopicConfig) string { return strconv.Itoa(c.MaxRecordBytes) }},
	{"sync", func(d *stream.TopicConfig, s stream.TopicConfig) { d.Sync = s.Sync },
		func(c stream.TopicConfig) string { return c.Sync.String() }},
	{"log-append-time", func(d *stream.TopicConfig, s stream.TopicConfig) { d.LogAppendTime = s.LogAppendTime },
		func(c stream.TopicConfig) string { return strconv.FormatBool(c.LogAppendTime) }},
	{"max-timestamp-ahead", func(d *stream.TopicConfig, s stream.TopicConfig) { d.MaxTimestampAhead = s.MaxTimestampAhead },
		func(c stream.TopicConfig) string { return orNone(max(c.MaxTimestampAhead, 0), "none") }},
	{"max-timestamp-behind", func(d *stream.TopicConfig, s stream.TopicConfig) { d.MaxTimestampBehind = s.MaxTimestampBehind },
		func(c stream.TopicConfig) string { return orNone(c.MaxTimestampBehind, "none") }},
	// A codec given alone takes its default level (s's level is 0 then):
	// the level of one codec means nothing to another.
	{"compression", func(d *stream.TopicConfig, s stream.TopicConfig) { d.Compression = s.Compression },
		func(c stream.TopicConfig) string { return c.Compression.Codec.String() }},
	{"compression-level", func(d *stream.TopicConfig, s stream.TopicConfig) { d.Compression.Level = s.Compression.Level },
		func(c stream.TopicConfig) string { return strconv.Itoa(c.Compression.Level) }},
	{"cleanup-policy", func(d *stream.TopicConfig, s stream.TopicConfig) { d.Cleanup = s.Cleanup },
		func(c stream.TopicConfig) string { return c.Cleanup.String() }},
	{"min-cleanable-dirty-ratio", func(d *stream.TopicConfig, s stream.TopicConfig) { d.MinCleanableDirtyRatio = s.MinCleanableDirtyRatio },
		func(c stream.TopicConfig) string { return ratio(c.MinCleanableDirtyRatio) }},
	{"min-compaction-lag", func(d *stream.TopicConfig, s stream.TopicConfig) { d.MinCompactionLag = s.MinCompactionLag },
		func(c stream.TopicConfig) string { return c.MinCompactionLag.String() }},
	{"max-compaction-lag", func(d *stream.TopicConfig, s stream.TopicConfig) { d.MaxCompactionLag = s.MaxCompactionLag },
		func(c stream.TopicConfig) string { return orNone(c.MaxCompactionLag, "none") }},
	{"delete-retention", func(d *stream.TopicConfig, s stream.TopicConfig) { d.DeleteRetention = s.DeleteRetention },
		func(c stream.TopicConfig) string { return max(c.DeleteRetention, 0).String() }},
}

// settingFlags defines the flags of the settings on fs, writing to cfg:
// the same for topics create and topics alter.
func settingFlags(fs *flag.FlagSet, cfg *stream.TopicConfig) {
	fs.DurationVar(&cfg.Retention, "retention", 0, "delete segments whose newest record is older than this `duration` (0: keep forever)")
	fs.Int64Var(&cfg.RetentionBytes, "retention-bytes", 0, "keep about this many `bytes` per partition (0: no limit)")
	fs.Int64Var(&cfg.SegmentBytes, "segment-bytes", 0, "roll segment files at this many `bytes` (0: 1 GiB)")
	fs.DurationVar(&cfg.SegmentAge, "segment-age", 0, "roll the active segment at this `age` (0: by size only)")
	fs.IntVar(&cfg.MaxRecordBytes, "max-record-bytes", 0, "largest record accepted, in `bytes` (0: 1 MiB)")
	fs.BoolVar(&cfg.LogAppendTime, "log-append-time", false, "stamp records with their append time (-log-append-time=false: keep the producer's)")
	fs.DurationVar(&cfg.MaxTimestampAhead, "max-timestamp-ahead", 0, "refuse records timestamped more than this `duration` ahead of the clock (0: 1h; negative: no limit)")
	fs.DurationVar(&cfg.MaxTimestampBehind, "max-timestamp-behind", 0, "refuse records timestamped more than this `duration` behind the clock (0: no limit)")
	fs.Var(syncFlag{&cfg.Sync}, "sync", "durability `policy`: interval, never, always, or default: the broker's (the default)")
	compressionFlags(fs, &cfg.Compression,
		"store batches compressed with this `codec` (compression.type): none, gzip, snappy, lz4, zstd, or producer: as each writer compressed them (the default)")
	fs.Var(cleanupFlag{&cfg.Cleanup}, "cleanup-policy",
		"`policy` (cleanup.policy): delete (retention deletes old segments, the default), compact (keep the latest record of each key; records need a key) or compact,delete")
	fs.Float64Var(&cfg.MinCleanableDirtyRatio, "min-cleanable-dirty-ratio", 0,
		"clean a compacted partition once this `ratio` of it is dirty, at most 1 (0: 0.5; negative: whenever anything is dirty)")
	fs.DurationVar(&cfg.MinCompactionLag, "min-compaction-lag", 0, "never clean records younger than this `duration` (0: no minimum)")
	fs.DurationVar(&cfg.MaxCompactionLag, "max-compaction-lag", 0, "clean a partition with a record dirty for longer than this `duration`, whatever its ratio (0: no limit)")
	fs.DurationVar(&cfg.DeleteRetention, "delete-retention", 0, "keep tombstones this `duration` after the cleaner first meets them (0: 24h; negative: none)")
}

// cleanupFlag is a -cleanup-policy flag: a stream.CleanupPolicy by
// Kafka's name.
type cleanupFlag struct{ p *stream.CleanupPolicy }

// String implements flag.Value; the default policy reads as "", so that
// the usage shows no default of its own.
func (f cleanupFlag) String() string {
	if f.p == nil || *f.p == stream.CleanupDelete {
		return ""
	}
	return f.p.String()
}

// Set implements flag.Value.
func (f cleanupFlag) Set(s string) error {
	p, err := stream.ParseCleanupPolicy(s)
	if err != nil {
		return errors.New("want delete, compact or compact,delete")
	}
	*f.p = p
	return nil
}

// ratio prints a MinCleanableDirtyRatio; negative is 0.
func ratio(r float64) string { return strconv.FormatFloat(max(r, 0), 'g', -1, 64) }

// compressionFlags defines -compression and -compression-level on fs,
// writing to c: for topics create and alter, and produce.
func compressionFlags(fs *flag.FlagSet, c *stream.Compression, usage string) {
	fs.Var(codecFlag{&c.Codec}, "compression", usage)
	fs.IntVar(&c.Level, "compression-level", 0,
		"the codec's `level` (compression.<codec>.level): gzip 1-9, lz4 1-17, zstd -131072 to 22; 0: the codec's default")
}

// codecFlag is a -compression flag: a stream.Codec by Kafka's name.
type codecFlag struct{ c *stream.Codec }

// String implements flag.Value; the default codec reads as "", so that the
// usage shows no default of its own.
func (f codecFlag) String() string {
	if f.c == nil || *f.c == stream.CodecDefault {
		return ""
	}
	return f.c.String()
}

// Set implements flag.Value.
func (f codecFlag) Set(s string) error {
	c, err := stream.ParseCodec(s)
	if err != nil {
		return errors.New("want producer, none, gzip, snappy, lz4 or zstd")
	}
	*f.c = c
	return nil
}

// syncFlag is a -sync flag: a stream.SyncPolicy by name.
type syncFlag struct{ p *stream.SyncPolicy }

// String implements flag.Value; the default policy reads as "", so that
// the usage shows no default of its own.
func (f syncFlag) String() string {
	if f.p == nil || *f.p == stream.SyncDefault {
		return ""
	}
	return f.p.String()
}

// Set implements flag.Value.
func (f syncFlag) Set(s string) error {
	p, err := stream.ParseSyncPolicy(s)
	if err != nil {
		return errors.New("want default, interval, never or always")
	}
	*f.p = p
	return nil
}

// topicsAlter runs "topics alter".
func topicsAlter(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	var given stream.TopicConfig
	settingFlags(fs, &given)
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	var changed []setting
	fs.Visit(func(f *flag.Flag) {
		for _, s := range settings {
			if s.flag == f.Name {
				changed = append(changed, s)
			}
		}
	})
	if len(changed) == 0 {
		return a.usagef("no setting to change: give at least one of -%s", settingNames())
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		var before stream.TopicConfig
		err := b.AlterTopic(*topic, func(c *stream.TopicConfig) {
			before = *c
			for _, s := range changed {
				s.copy(c, given)
			}
		})
		if err != nil {
			return err
		}
		info, err := b.DescribeTopic(*topic)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SETTING\tBEFORE\tAFTER")
		for _, s := range changed {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.flag, s.value(before), s.value(info.Config))
		}
		return tw.Flush()
	})
}

// settingNames lists the settings' flags for messages.
func settingNames() string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.flag
	}
	return strings.Join(names, ", -")
}

// topicsDescribe runs "topics describe".
func topicsDescribe(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (default: all topics)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	return a.withBroker(readAccess, func(b *stream.Broker) error {
		names := b.Topics()
		if *topic != "" {
			names = []string{*topic}
		}
		for i, name := range names {
			info, err := b.DescribeTopic(name)
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			printTopic(a.stdout, info)
		}
		return nil
	})
}

// printTopic prints a topic's config and partitions.
func printTopic(w io.Writer, info stream.TopicInfo) {
	c := info.Config
	fmt.Fprintf(w, "Topic: %s  Partitions: %d  Retention: %s  RetentionBytes: %s  SegmentBytes: %d  SegmentAge: %s  MaxRecordBytes: %d  Sync: %s  LogAppendTime: %t  MaxTimestampAhead: %s  MaxTimestampBehind: %s  Compression: %s\n",
		info.Name, len(info.Partitions), orNone(c.Retention, "forever"), bytesOrNone(c.RetentionBytes),
		c.SegmentBytes, orNone(c.SegmentAge, "none"), c.MaxRecordBytes, c.Sync, c.LogAppendTime,
		orNone(max(c.MaxTimestampAhead, 0), "none"), orNone(c.MaxTimestampBehind, "none"), c.Compression)
	fmt.Fprintf(w, "Cleanup: %s", c.Cleanup)
	if c.Cleanup != stream.CleanupDelete {
		fmt.Fprintf(w, "  MinCleanableDirtyRatio: %s  MinCompactionLag: %s  MaxCompactionLag: %s  DeleteRetention: %s",
			ratio(c.MinCleanableDirtyRatio), c.MinCompactionLag, orNone(c.MaxCompactionLag, "none"), max(c.DeleteRetention, 0))
	}
	fmt.Fprintln(w)
	// A compacted partition has offset gaps: RECORDS counts offsets, an
	// upper bound of the records it holds.
	compacted := c.Cleanup != stream.CleanupDelete
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "PARTITION\tSTART\tEND\tRECORDS\tBYTES\tSEGMENTS")
	if compacted {
		fmt.Fprint(tw, "\tDIRTY\tLAST CLEANED")
	}
	fmt.Fprintln(tw)
	for _, p := range info.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d", p.Partition, p.StartOffset, p.EndOffset,
			p.EndOffset-p.StartOffset, p.Bytes, p.Segments)
		if compacted {
			fmt.Fprintf(tw, "\t%.2f\t%s", p.DirtyRatio, lastCleaned(p.LastCleaned))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// lastCleaned prints the time of a partition's last cleaning round.
func lastCleaned(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return formatTime(t)
}

// orNone prints a duration, or none for zero.
func orNone(d time.Duration, none string) string {
	if d == 0 {
		return none
	}
	return d.String()
}

// bytesOrNone prints a byte limit, or unlimited for zero.
func bytesOrNone(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

// topicsDelete runs "topics delete".
func topicsDelete(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		if err := b.DeleteTopic(*topic); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "deleted topic %s\n", *topic)
		return nil
	})
}

// topicsAddPartitions runs "topics add-partitions".
func topicsAddPartitions(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	total := fs.Int("partitions", 0, "the new `total` number of partitions (required)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	if *total <= 0 {
		return a.usagef("-partitions is required: the new total")
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		if err := b.AddPartitions(*topic, *total); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "topic %s now has %d partitions\n", *topic, *total)
		return nil
	})
}
