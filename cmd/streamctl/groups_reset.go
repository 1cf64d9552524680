package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/embedstream/stream"
)

// resetOptions are groups reset-offsets' flags.
type resetOptions struct {
	group     string
	topic     string
	partition int
	to        position
	dryRun    bool
}

// parseReset parses groups reset-offsets' flags.
func parseReset(a *app, args []string) (*resetOptions, error) {
	o := &resetOptions{}
	fs := a.flags()
	fs.StringVar(&o.group, "group", "", "the group `name` (required)")
	fs.StringVar(&o.topic, "topic", "", "the topic `name` (required)")
	partitionVar(fs, &o.partition, "reset only this `partition` (default: all)")
	to := fs.String("to", "", "the new `position`: earliest, latest, OFFSET or TIME (required)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "show the new offsets without committing them")
	if err := a.parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case o.group == "":
		return nil, a.usagef("-group is required")
	case o.topic == "":
		return nil, a.usagef("-topic is required")
	case *to == "":
		return nil, a.usagef("-to is required")
	}
	var err error
	if o.to, err = parsePosition(*to, a.now()); err != nil {
		return nil, a.usagef("-to: %v", err)
	}
	return o, nil
}

// groupsReset runs "groups reset-offsets".
func groupsReset(_ context.Context, a *app, args []string) error {
	o, err := parseReset(a, args)
	if err != nil {
		return err
	}
	acc := writeAccess
	if o.dryRun {
		acc = readAccess
	}
	return a.withBroker(acc, func(b *stream.Broker) error {
		old, offsets, err := o.plan(b)
		if err != nil {
			return err
		}
		if !o.dryRun {
			if err := b.SetCommittedOffsets(o.group, offsets); err != nil {
				return err
			}
		}
		o.print(a, old, offsets)
		return nil
	})
}

// plan returns the group's committed offsets now and the new ones.
func (o *resetOptions) plan(b *stream.Broker) (old, offsets map[stream.TopicPartition]int64, err error) {
	info, err := b.DescribeTopic(o.topic)
	if err != nil {
		return nil, nil, err
	}
	if o.partition >= len(info.Partitions) {
		return nil, nil, fmt.Errorf("%w: topic %q has %d partitions", stream.ErrInvalidPartition, o.topic, len(info.Partitions))
	}
	if old, err = b.CommittedOffsets(o.group); err != nil {
		return nil, nil, err
	}
	offsets = map[stream.TopicPartition]int64{}
	for _, p := range info.Partitions {
		if o.partition >= 0 && p.Partition != int32(o.partition) {
			continue
		}
		off, err := o.to.resolve(b, o.topic, p)
		if err != nil {
			return nil, nil, err
		}
		offsets[stream.TopicPartition{Topic: o.topic, Partition: p.Partition}] = off
	}
	return old, offsets, nil
}

// print shows the old and new offsets.
func (o *resetOptions) print(a *app, old, offsets map[stream.TopicPartition]int64) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tOLD\tNEW")
	byPartition := func(x, y stream.TopicPartition) int { return cmp.Compare(x.Partition, y.Partition) }
	for _, tp := range slices.SortedFunc(maps.Keys(offsets), byPartition) {
		was, had := old[tp]
		if !had {
			was = -1
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", o.group, tp.Topic, tp.Partition, offsetOrDash(was), offsets[tp])
	}
	tw.Flush()
	if o.dryRun {
		fmt.Fprintln(a.stdout, "dry run: nothing committed")
	}
}
