package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/embedstream/stream"
)

// replayCommand is "replay".
func replayCommand() *command {
	return &command{name: "replay", args: "[-topic T [-partition N|all]] -from TIME [-to TIME] [flags]",
		summary: "print the records of a time range", run: replay,
		help: `Prints the records whose timestamp t has FROM <= t < TO (no -to: up to the end
of the log), merging partitions in timestamp order (ties: topics by name, then
partitions by number). Without -topic it replays every topic, merged the same
way. TIME is RFC 3339 (2006-01-02T15:04:05Z), now, or -DURATION back from now
(-1h). It starts at each partition's first offset at or after FROM and reads to
the end of the log, since timestamps need not be ordered. When stderr is a
terminal, it shows progress there.

` + formatHelp}
}

// replayOptions are replay's flags.
type replayOptions struct {
	topic     string // "": every topic
	partition int    // -1: all
	from, to  time.Time
	format    string
}

// parseReplay parses replay's flags.
func parseReplay(a *app, args []string) (*replayOptions, error) {
	o := &replayOptions{}
	fs := a.flags()
	fs.StringVar(&o.topic, "topic", "", "the topic `name` (default: every topic)")
	partitionVar(fs, &o.partition, "the `partition` of -topic to replay, or all (default: all)")
	from := fs.String("from", "", "the start `time`, inclusive (required)")
	to := fs.String("to", "", "the end `time`, exclusive (default: no end)")
	fs.StringVar(&o.format, "format", "json", "output `format`: json, raw or a template (see above)")
	if err := a.parseFlags(fs, args); err != nil {
		return nil, err
	}
	if o.topic == "" && o.partition >= 0 {
		return nil, a.usagef("-partition needs -topic")
	}
	if err := a.checkFormat(o.format); err != nil {
		return nil, err
	}
	return o, o.parseRange(a, *from, *to)
}

// parseRange reads -from and -to.
func (o *replayOptions) parseRange(a *app, from, to string) error {
	if from == "" {
		return a.usagef("-from is required")
	}
	var err error
	if o.from, err = parseTime(from, a.now()); err != nil {
		return a.usagef("-from: %v", err)
	}
	o.to = time.UnixMilli(1<<62 - 1)
	if to != "" {
		if o.to, err = parseTime(to, a.now()); err != nil {
			return a.usagef("-to: %v", err)
		}
	}
	if !o.to.After(o.from) {
		return a.usagef("-to must be after -from")
	}
	return nil
}

// replay runs "replay".
func replay(ctx context.Context, a *app, args []string) error {
	o, err := parseReplay(a, args)
	if err != nil {
		return err
	}
	out := newRecordWriter(a.stdout, o.format)
	err = a.withBroker(readAccess, func(b *stream.Broker) error {
		m, err := o.open(b)
		if err != nil {
			return err
		}
		defer m.close()
		m.progress = a.progressTo()
		return m.run(ctx, o, out)
	})
	return errors.Join(err, out.flush())
}

// progressTo returns where to show progress: stderr if it is a terminal.
func (a *app) progressTo() io.Writer {
	if a.progress {
		return a.stderr
	}
	return nil
}

// open starts a reader at -from on each partition to replay: those of
// -topic, or of every topic.
func (o *replayOptions) open(b *stream.Broker) (*merger, error) {
	topics := []string{o.topic}
	if o.topic == "" {
		topics = b.Topics()
	}
	m := &merger{}
	for _, topic := range topics {
		if err := o.openTopic(b, topic, m); err != nil {
			m.close()
			return nil, err
		}
	}
	return m, nil
}

// openTopic adds to m a reader at -from on each partition of topic to
// replay.
func (o *replayOptions) openTopic(b *stream.Broker, topic string, m *merger) error {
	info, err := b.DescribeTopic(topic)
	if err != nil {
		return err
	}
	if o.partition >= len(info.Partitions) {
		return fmt.Errorf("%w: topic %q has %d partitions", stream.ErrInvalidPartition, topic, len(info.Partitions))
	}
	for _, p := range info.Partitions {
		if o.partition >= 0 && p.Partition != int32(o.partition) {
			continue
		}
		rd, err := b.NewReader(topic, p.Partition, stream.AtTime(o.from), &stream.ReaderOptions{StopAtEnd: true})
		if err != nil {
			return err
		}
		m.add(rd, p.EndOffset)
	}
	return nil
}

// run prints the records in [o.from, o.to) in timestamp order.
func (m *merger) run(ctx context.Context, o *replayOptions, out *recordWriter) error {
	if err := m.fill(ctx); err != nil {
		return err
	}
	for {
		r := m.pop()
		if r == nil {
			m.showProgress(true)
			return nil
		}
		if !r.Timestamp.Before(o.from) && r.Timestamp.Before(o.to) {
			if err := out.write(r); err != nil {
				return err
			}
			m.out++
		}
		if err := m.advance(ctx); err != nil {
			return err
		}
		m.showProgress(false)
	}
}
