package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/embedstream/stream"
)

// produceCommand is "produce": kafka-console-producer.sh.
func produceCommand() *command {
	return &command{name: "produce", args: "-topic T [flags] < LINES", summary: "publish the lines of stdin, one record a line",
		run: produce, help: `Each line (without its line ending) is a record's value; with -key-separator,
"KEY<SEP>VALUE" sets the key too, and a line without the separator is an error.
Records are batched and placed by key (-partitioner), or all sent to -partition
(which places them as Kafka's explicit partition does: stream.ManualPartitioner).
A summary (records, partitions) goes to stderr. -compression compresses the
batches (the producer's compression.type); a topic created with a -compression
of its own stores its codec instead, as a Kafka broker recompresses.

A topic that does not exist is an error, unless -auto-create is given: then it
is created with the library's defaults (1 partition; see topics create), as a
broker with Options.AutoCreateTopics (Kafka's auto.create.topics.enable) does
on the first record published to it.`}
}

// headerFlags collects repeated -header KEY=VALUE flags; a KEY alone is a
// header with a null value.
type headerFlags []stream.Header

// String implements flag.Value.
func (h *headerFlags) String() string {
	parts := make([]string, len(*h))
	for i, x := range *h {
		parts[i] = x.Key + "=" + string(x.Value)
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value.
func (h *headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if k == "" {
		return errors.New("want KEY=VALUE")
	}
	hd := stream.Header{Key: k}
	if ok {
		hd.Value = []byte(v)
	}
	*h = append(*h, hd)
	return nil
}

// produceOptions are produce's flags.
type produceOptions struct {
	topic       string
	partition   int
	sep         string
	headers     headerFlags
	partitioner stream.Partitioner
	autoCreate  bool
	compression stream.Compression
}

// partitioners are the -partitioner choices.
var partitioners = map[string]func() stream.Partitioner{
	"hash":       func() stream.Partitioner { return stream.HashPartitioner{} },
	"kafka":      func() stream.Partitioner { return stream.KafkaPartitioner{} },
	"roundrobin": func() stream.Partitioner { return new(stream.RoundRobinPartitioner) },
}

// parseProduce parses produce's flags.
func parseProduce(a *app, args []string) (*produceOptions, error) {
	o := &produceOptions{}
	fs := a.flags()
	fs.StringVar(&o.topic, "topic", "", "the topic `name` (required)")
	partitionVar(fs, &o.partition, "send every record to this `partition` (default: by key)")
	fs.StringVar(&o.sep, "key-separator", "", "split each line into KEY<`SEP`>VALUE (default: no key)")
	fs.Var(&o.headers, "header", "add a header `KEY=VALUE` to every record (repeatable)")
	part := fs.String("partitioner", "hash", "place keyed records by `name`: hash (xxhash), kafka (murmur2, as the Java client) or roundrobin")
	fs.BoolVar(&o.autoCreate, "auto-create", false, "create the topic if it does not exist (auto.create.topics.enable)")
	compressionFlags(fs, &o.compression,
		"compress batches with this `codec` (the producer's compression.type): none (the default), gzip, snappy, lz4 or zstd; a topic with a codec of its own stores its own")
	if err := a.parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := a.needTopic(o.topic); err != nil {
		return nil, err
	}
	newPart, ok := partitioners[*part]
	if !ok {
		return nil, a.usagef("-partitioner %q: want hash, kafka or roundrobin", *part)
	}
	o.partitioner = newPart()
	if o.partition >= 0 {
		// The only partitioner that honours Record.Partition.
		o.partitioner = stream.ManualPartitioner{}
	}
	return o, nil
}

// produce runs "produce".
func produce(ctx context.Context, a *app, args []string) error {
	o, err := parseProduce(a, args)
	if err != nil {
		return err
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		if err := o.ensureTopic(a, b); err != nil {
			return err
		}
		// Made first: a bad option (-compression-level) is refused before
		// any input is read.
		p, err := b.NewProducer(&stream.ProducerOptions{Partitioner: o.partitioner, Compression: o.compression})
		if err != nil {
			return err
		}
		t := &tally{counts: map[int32]int64{}}
		err = o.publishLines(ctx, p, a.stdin, t)
		fmt.Fprintln(a.stderr, t.summary(o.topic))
		return errors.Join(err, t.failure())
	})
}

// ensureTopic checks that the topic exists, creating it under -auto-create.
func (o *produceOptions) ensureTopic(a *app, b *stream.Broker) error {
	_, err := b.DescribeTopic(o.topic)
	if !errors.Is(err, stream.ErrTopicNotFound) {
		return err
	}
	if !o.autoCreate {
		return fmt.Errorf("%w (-auto-create creates it)", err)
	}
	if err := b.CreateTopic(o.topic, stream.TopicConfig{}); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "created topic %s with 1 partition\n", o.topic)
	return nil
}

// publishLines publishes each line of r through p, stopping at the first
// failure, at the end of r or at an interrupt (the end of ctx), writes out
// what it published and closes p.
func (o *produceOptions) publishLines(ctx context.Context, p *stream.Producer, r io.Reader, t *tally) error {
	err := o.publishEach(ctx, p, readLines(ctx, r), t)
	wctx := context.WithoutCancel(ctx) // after an interrupt, still write what was read
	return errors.Join(err, p.Flush(wctx), p.Close())
}

// publishEach publishes the lines until the end, a failure or ctx's end.
func (o *produceOptions) publishEach(ctx context.Context, p *stream.Producer, lines <-chan lineRead, t *tally) error {
	for n := 1; t.failure() == nil; n++ {
		var l lineRead
		select {
		case <-ctx.Done():
			return nil // an interrupt ends the input
		case l = <-lines:
		}
		if len(l.line) > 0 {
			rec, err := o.record(l.line, n)
			if err != nil {
				return err
			}
			p.Publish(context.WithoutCancel(ctx), rec, t.done)
		}
		if l.err == io.EOF {
			return nil
		}
		if l.err != nil {
			return l.err
		}
	}
	return nil
}

// lineRead is a line read from the input (with its ending), or the error
// that ended the input (io.EOF at its end).
type lineRead struct {
	line []byte
	err  error
}

// readLines reads r's lines on a goroutine, so an interrupt need not wait
// for input; it stops once ctx ends.
func readLines(ctx context.Context, r io.Reader) <-chan lineRead {
	ch := make(chan lineRead)
	go func() {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			select {
			case ch <- lineRead{line, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// record makes the record of line number n.
func (o *produceOptions) record(line []byte, n int) (*stream.Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	r := &stream.Record{Topic: o.topic, Partition: int32(o.partition), Value: line, Headers: o.headers}
	if o.sep != "" {
		k, v, ok := bytes.Cut(line, []byte(o.sep))
		if !ok {
			return nil, fmt.Errorf("line %d: no key separator %q", n, o.sep)
		}
		r.Key, r.Value = k, v
	}
	return r, nil
}

// tally counts the records a Producer wrote, per partition, and keeps the
// first failure.
type tally struct {
	mu     sync.Mutex
	counts map[int32]int64
	total  int64
	err    error
}

// done is the Producer callback.
func (t *tally) done(r *stream.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return
	}
	t.counts[r.Partition]++
	t.total++
}

// failure returns the first failed record's error.
func (t *tally) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// summary describes what was written.
func (t *tally) summary(topic string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(t.counts)) {
		parts = append(parts, fmt.Sprintf("%d: %d", p, t.counts[p]))
	}
	s := fmt.Sprintf("produced %s to %s", plural(t.total, "record"), topic)
	if len(parts) > 0 {
		s += " (partition " + strings.Join(parts, ", partition ") + ")"
	}
	return s
}
