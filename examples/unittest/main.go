// Command unittest shows how to unit-test code built on embedstream with
// package streamtest. The code under test is a small order processor
// (processor.go): it consumes orders in a consumer group, publishes an
// invoice (or a rejection) for each, and commits, at-least-once. Its tests
// (processor_test.go) run it against a real broker in t.TempDir(): the happy
// path, a publish that fails (nothing committed, the orders come again), a
// publish whose acknowledgement is lost (a duplicate, identified by a
// header), a failed commit, a crash and restart, and, inside
// testing/synctest, a consumer group rebalance and a MaxPollInterval
// eviction that take no real time.
//
//	go run ./examples/unittest                 # a short demo, and how to run the tests
//	go test -race -v ./examples/unittest       # the tests
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/embedstream/stream"
)

func main() {
	if err := demo(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	fmt.Println("This example is about its tests. Run them with:")
	fmt.Println()
	fmt.Println("    go test -race -v ./examples/unittest")
	fmt.Println()
	fmt.Println("processor_test.go shows streamtest.NewBroker, Publish, Records, Committed,")
	fmt.Println("FaultyPublisher, FaultyConsumer, Crash and, under testing/synctest,")
	fmt.Println("a rebalance and a MaxPollInterval eviction in virtual time.")
}

// demo runs the processor once on a few orders, in a temporary directory.
func demo(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "embedstream-unittest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	if err != nil {
		return err
	}
	defer b.Close()
	for _, topic := range []string{OrdersTopic, InvoicesTopic, RejectedTopic} {
		if err := b.CreateTopic(topic, stream.TopicConfig{}); err != nil {
			return err
		}
	}
	for _, o := range []string{"alice:1000", "bob:250", "carol:lots"} {
		if err := b.Publish(ctx, &stream.Record{Topic: OrdersTopic, Value: []byte(o)}); err != nil {
			return err
		}
	}
	c, err := b.Subscribe("billing", []string{OrdersTopic}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
	if err != nil {
		return err
	}
	defer c.Close()
	p := &Processor{In: c, Out: b}
	n, err := p.Step(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "processed %d orders:\n", n)
	for _, topic := range []string{InvoicesTopic, RejectedTopic} {
		r, err := b.NewReader(topic, 0, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		if err != nil {
			return err
		}
		for rec, err := range r.All(ctx) {
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %-8s %q (from %s)\n", topic, rec.Value, SourceOf(rec))
		}
		r.Close()
	}
	return nil
}
