package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/embedstream/stream"
)

// consumeCommand is "consume": kafka-console-consumer.sh, kcat -C.
func consumeCommand() *command {
	return &command{name: "consume", args: "-topic T [-partition N | -group G] [flags]", summary: "print a topic's records",
		run: consume, help: `Without -follow it stops at the end of the log as it was at the start.
Without -partition or -group it reads every partition (one after another, or
all at once with -follow), each from -from. With -group it consumes as a member
of the group, from the group's committed offsets, and commits what it printed;
-from is then where a partition without a commit starts (earliest or latest).

` + positionHelp + `
An OFFSET outside the log of the -partition named is an error; reading every
partition, each starts at the OFFSET or the end of its log nearest to it.

` + formatHelp + `

Without -group it reads the directory as a follower, taking no lock: it works
while an application owns the directory and publishes, never stops one from
opening it, and -follow prints the application's new records as they reach
the disk (within about 100ms) until interrupted (Ctrl-C) or -limit is
reached. With -group it commits, which needs the directory to itself.

Examples:
  consume -topic orders -from -3                 the last 3 records of each partition
  consume -topic orders -partition 1 -from +10   from the 11th record stored in partition 1
  consume -topic orders -format '%p:%o %k=%s\n'  kcat-style lines`}
}

// consumeOptions are consume's flags.
type consumeOptions struct {
	topic     string
	partition int
	group     string
	from      position
	follow    bool
	limit     int64
	format    string
}

// parseConsume parses consume's flags.
func parseConsume(a *app, args []string) (*consumeOptions, error) {
	o := &consumeOptions{}
	fs := a.flags()
	fs.StringVar(&o.topic, "topic", "", "the topic `name` (required)")
	partitionVar(fs, &o.partition, "read only this `partition` (default: all)")
	fs.StringVar(&o.group, "group", "", "consume in this consumer `group` and commit")
	from := fs.String("from", "earliest", "where to start in each partition read: a `POSITION` (see above)")
	fs.BoolVar(&o.follow, "follow", false, "keep waiting for new records (until interrupted or -limit)")
	fs.Int64Var(&o.limit, "limit", 0, "stop after `N` records (0: no limit)")
	fs.StringVar(&o.format, "format", "json", "output `format`: json, raw or a template (see above)")
	if err := a.parseFlags(fs, args); err != nil {
		return nil, err
	}
	return o, o.check(a, *from)
}

// check validates the flags' combination.
func (o *consumeOptions) check(a *app, from string) error {
	if err := a.needTopic(o.topic); err != nil {
		return err
	}
	if err := a.checkFormat(o.format); err != nil {
		return err
	}
	var err error
	if o.from, err = parsePosition(from, a.now()); err != nil {
		return a.usagef("-from: %v", err)
	}
	switch {
	case o.limit < 0:
		return a.usagef("-limit %d: want 0 (no limit) or more", o.limit)
	case o.group != "" && o.partition >= 0:
		return a.usagef("-partition and -group exclude each other: the group assigns partitions")
	case o.group != "" && o.from.kind != atStart && o.from.kind != atEnd:
		return a.usagef("with -group, -from is earliest or latest: where partitions without a commit start")
	}
	return nil
}

// errLimit reports that -limit records were printed.
var errLimit = errors.New("limit reached")

// sink prints records up to a limit.
type sink struct {
	out    *recordWriter
	limit  int64
	n      int64
	follow bool // flush after every record
}

// put prints r; it returns errLimit once the limit is reached.
func (s *sink) put(r *stream.Record) error {
	if err := s.out.write(r); err != nil {
		return err
	}
	s.n++
	if s.follow {
		if err := s.out.flush(); err != nil {
			return err
		}
	}
	if s.limit > 0 && s.n >= s.limit {
		return errLimit
	}
	return nil
}

// consume runs "consume".
func consume(ctx context.Context, a *app, args []string) error {
	o, err := parseConsume(a, args)
	if err != nil {
		return err
	}
	acc := readAccess
	if o.group != "" {
		acc = writeAccess
	}
	s := &sink{out: newRecordWriter(a.stdout, o.format), limit: o.limit, follow: o.follow}
	err = a.withBroker(acc, func(b *stream.Broker) error {
		if o.group != "" {
			return o.consumeGroup(ctx, b, s)
		}
		return o.consumePartitions(ctx, b, s)
	})
	if errors.Is(err, errLimit) || errors.Is(err, context.Canceled) {
		err = nil // -limit, or an interrupt of -follow: a normal end
	}
	return errors.Join(err, s.out.flush())
}

// starts returns where to read each partition to read: -from in it.
func (o *consumeOptions) starts(b *stream.Broker) (map[int32]stream.Offset, error) {
	info, err := b.DescribeTopic(o.topic)
	if err != nil {
		return nil, err
	}
	parts := info.Partitions
	if o.partition >= 0 {
		if o.partition >= len(parts) {
			return nil, fmt.Errorf("%w: topic %q has no partition %d (it has %d)", stream.ErrInvalidPartition, o.topic, o.partition, len(parts))
		}
		parts = parts[o.partition : o.partition+1]
	}
	starts := map[int32]stream.Offset{}
	for _, p := range parts {
		// An OFFSET outside one named partition's log is an error; for
		// every partition, each starts as close to it as its log allows.
		if starts[p.Partition], err = o.from.readFrom(b, o.topic, p, o.partition >= 0); err != nil {
			return nil, err
		}
	}
	return starts, nil
}

// consumePartitions reads partitions without a group.
func (o *consumeOptions) consumePartitions(ctx context.Context, b *stream.Broker, s *sink) error {
	starts, err := o.starts(b)
	if err != nil {
		return err
	}
	if o.follow {
		return followPartitions(ctx, b, o.topic, starts, s)
	}
	for _, p := range slices.Sorted(maps.Keys(starts)) {
		if err := readToEnd(ctx, b, o.topic, p, starts[p], s); err != nil {
			return err
		}
	}
	return nil
}

// readToEnd prints a partition's records from from to its current end.
func readToEnd(ctx context.Context, b *stream.Broker, topic string, p int32, from stream.Offset, s *sink) error {
	rd, err := b.NewReader(topic, p, from, &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		return err
	}
	defer rd.Close()
	for r, err := range rd.All(ctx) {
		if err != nil {
			return err
		}
		if err := s.put(r); err != nil {
			return err
		}
	}
	return nil
}

// followPartitions prints the records of several partitions as they come,
// until ctx ends, a read fails or the limit is reached.
func followPartitions(ctx context.Context, b *stream.Broker, topic string, starts map[int32]stream.Offset, s *sink) error {
	readers := make([]*stream.Reader, 0, len(starts))
	defer func() {
		for _, rd := range readers {
			rd.Close()
		}
	}()
	for _, p := range slices.Sorted(maps.Keys(starts)) {
		rd, err := b.NewReader(topic, p, starts[p], nil)
		if err != nil {
			return err
		}
		readers = append(readers, rd)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs, errs := make(chan *stream.Record), make(chan error, len(readers))
	var wg sync.WaitGroup
	for _, rd := range readers {
		wg.Go(func() { errs <- pump(ctx, rd, recs) })
	}
	err := drain(ctx, recs, errs, s)
	cancel()
	wg.Wait() // the readers are closed (deferred) only once their pumps end
	return err
}

// pump sends copies of rd's records to recs until an error.
func pump(ctx context.Context, rd *stream.Reader, recs chan<- *stream.Record) error {
	for {
		r, err := rd.Next(ctx)
		if err != nil {
			return err
		}
		select {
		case recs <- r.Clone():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// drain prints what the pumps send until one fails, ctx ends or the limit
// is reached.
func drain(ctx context.Context, recs <-chan *stream.Record, errs <-chan error, s *sink) error {
	for {
		select {
		case r := <-recs:
			if err := s.put(r); err != nil {
				return err
			}
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
