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
	shiftBy   requiredInt64 // instead of to: move each committed offset by this
	dryRun    bool
}

// parseReset parses groups reset-offsets' flags.
func parseReset(a *app, args []string) (*resetOptions, error) {
	o := &resetOptions{}
	fs := a.flags()
	fs.StringVar(&o.group, "group", "", "the group `name` (required)")
	fs.StringVar(&o.topic, "topic", "", "the topic `name` (required)")
	partitionVar(fs, &o.partition, "reset only this `partition` (default: all)")
	to := fs.String("to", "", "the new `POSITION` (see above; this or -shift-by is required)")
	fs.Var(&o.shiftBy, "shift-by", "move each committed offset by `N` (negative: back)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "show the new offsets without committing them")
	if err := a.parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case o.group == "":
		return nil, a.usagef("-group is required")
	case o.topic == "":
		return nil, a.usagef("-topic is required")
	case *to == "" && !o.shiftBy.set:
		return nil, a.usagef("-to or -shift-by is required")
	case *to != "" && o.shiftBy.set:
		return nil, a.usagef("-to and -shift-by exclude each other")
	case o.shiftBy.set:
		return o, nil
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
		old, offsets, clamped, err := o.plan(b)
		if err != nil {
			return err
		}
		if !o.dryRun {
			if err := b.SetCommittedOffsets(o.group, offsets); err != nil {
				return err
			}
		}
		for _, c := range clamped {
			fmt.Fprintln(a.stderr, c)
		}
		o.print(a, old, offsets)
		return nil
	})
}

// plan returns the group's committed offsets now and the new ones, each
// within its partition's log, with a note for each that had to be moved
// into it (kafka-consumer-groups.sh's rule: a reset never points outside
// the log).
func (o *resetOptions) plan(b *stream.Broker) (old, offsets map[stream.TopicPartition]int64, clamped []string, err error) {
	info, err := b.DescribeTopic(o.topic)
	if err != nil {
		return nil, nil, nil, err
	}
	if o.partition >= len(info.Partitions) {
		return nil, nil, nil, fmt.Errorf("%w: topic %q has %d partitions", stream.ErrInvalidPartition, o.topic, len(info.Partitions))
	}
	if old, err = b.CommittedOffsets(o.group); err != nil {
		return nil, nil, nil, err
	}
	offsets = map[stream.TopicPartition]int64{}
	for _, p := range info.Partitions {
		if o.partition >= 0 && p.Partition != int32(o.partition) {
			continue
		}
		tp := stream.TopicPartition{Topic: o.topic, Partition: p.Partition}
		var want int64
		if o.shiftBy.set {
			cur, ok := old[tp]
			if !ok {
				return nil, nil, nil, fmt.Errorf("%w: group %q has no committed offset for %s partition %d to shift", stream.ErrNoCommittedOffset, o.group, o.topic, p.Partition)
			}
			want = cur + o.shiftBy.v
		} else if want, err = o.to.resolve(b, o.topic, p); err != nil {
			return nil, nil, nil, err
		}
		off, moved := clamp(want, p)
		if moved {
			clamped = append(clamped, fmt.Sprintf("%s partition %d: offset %d is outside the log [%d, %d]; using %d",
				o.topic, p.Partition, want, p.StartOffset, p.EndOffset, off))
		}
		offsets[tp] = off
	}
	return old, offsets, clamped, nil
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
