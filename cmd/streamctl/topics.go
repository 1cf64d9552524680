package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/embedstream/stream"
)

// topicsCommand is "topics": kafka-topics.sh.
func topicsCommand() *command {
	return &command{name: "topics", summary: "list, create, describe and delete topics; add partitions; delete records", subs: []*command{
		{name: "list", args: "[flags]", summary: "list the topics", run: topicsList},
		{name: "create", args: "-topic T [flags]", summary: "create a topic", run: topicsCreate,
			help: "Zero values take the library's defaults (1 partition, 1 GiB segments, 1 MiB records, keep forever)."},
		{name: "describe", args: "[-topic T] [flags]", summary: "show topics' configs and per-partition offsets, bytes and segments",
			run: topicsDescribe, help: "Without -topic, every topic is described."},
		{name: "delete", args: "-topic T [flags]", summary: "delete a topic and all its records", run: topicsDelete},
		{name: "add-partitions", args: "-topic T -partitions N [flags]", summary: "grow a topic to N partitions in all",
			run: topicsAddPartitions},
		{name: "delete-records", args: "-topic T -partition P -before O [flags]", summary: "delete a partition's records before offset O",
			run: topicsDeleteRecords, help: "Moves the partition's log start to O (kafka-delete-records.sh); O may be at most the end offset."},
	}}
}

// topicsDeleteRecords runs "topics delete-records".
func topicsDeleteRecords(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "the topic `name` (required)")
	partition := fs.Int("partition", 0, "the `partition`")
	before := fs.Int64("before", -1, "delete the records before this `offset` (required)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	if *before < 0 {
		return a.usagef("-before is required")
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		start, err := b.DeleteRecords(*topic, int32(*partition), *before)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s partition %d now starts at offset %d\n", *topic, *partition, start)
		return nil
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
	fs.DurationVar(&cfg.Retention, "retention", 0, "delete segments whose newest record is older than this `duration` (0: keep forever)")
	fs.Int64Var(&cfg.RetentionBytes, "retention-bytes", 0, "keep about this many `bytes` per partition (0: no limit)")
	fs.Int64Var(&cfg.SegmentBytes, "segment-bytes", 0, "roll segment files at this many `bytes` (0: 1 GiB)")
	fs.DurationVar(&cfg.SegmentAge, "segment-age", 0, "roll the active segment at this `age` (0: by size only)")
	fs.IntVar(&cfg.MaxRecordBytes, "max-record-bytes", 0, "largest record accepted, in `bytes` (0: 1 MiB)")
	fs.BoolVar(&cfg.LogAppendTime, "log-append-time", false, "stamp records with their append time")
	fs.DurationVar(&cfg.MaxTimestampAhead, "max-timestamp-ahead", 0, "refuse records timestamped more than this `duration` ahead of the clock (0: 1h; negative: no limit)")
	fs.DurationVar(&cfg.MaxTimestampBehind, "max-timestamp-behind", 0, "refuse records timestamped more than this `duration` behind the clock (0: no limit)")
	sync := fs.String("sync", "default", "durability `policy`: default (the broker's), interval, never or always")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needTopic(*topic); err != nil {
		return err
	}
	var err error
	if cfg.Sync, err = stream.ParseSyncPolicy(*sync); err != nil {
		return a.usagef("-sync %q: want default, interval, never or always", *sync)
	}
	return a.withBroker(createAccess, func(b *stream.Broker) error {
		if err := b.CreateTopic(*topic, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "created topic %s with %s\n", *topic, plural(cfg.Partitions, "partition"))
		return nil
	})
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
	fmt.Fprintf(w, "Topic: %s  Partitions: %d  Retention: %s  RetentionBytes: %s  SegmentBytes: %d  SegmentAge: %s  MaxRecordBytes: %d  Sync: %s  LogAppendTime: %t  MaxTimestampAhead: %s  MaxTimestampBehind: %s\n",
		info.Name, len(info.Partitions), orNone(c.Retention, "forever"), bytesOrNone(c.RetentionBytes),
		c.SegmentBytes, orNone(c.SegmentAge, "none"), c.MaxRecordBytes, c.Sync, c.LogAppendTime,
		orNone(max(c.MaxTimestampAhead, 0), "none"), orNone(c.MaxTimestampBehind, "none"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSTART\tEND\tRECORDS\tBYTES\tSEGMENTS")
	for _, p := range info.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\n", p.Partition, p.StartOffset, p.EndOffset,
			p.EndOffset-p.StartOffset, p.Bytes, p.Segments)
	}
	tw.Flush()
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
