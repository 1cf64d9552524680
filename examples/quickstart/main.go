// Command quickstart is embedstream in a few lines: it opens a broker on a
// directory, creates a topic, publishes records (one synchronously, a batch
// through a Producer), and replays the topic from the start.
//
//	go run ./examples/quickstart          # keeps its data in ./data/quickstart
//	go run ./examples/quickstart -temp    # in a new temporary directory, kept: it says how to remove it
//
// Run it twice without -temp: the second run finds the first run's records.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/embedstream/stream"
)

func main() {
	temp := flag.Bool("temp", false, "use a new temporary directory instead of ./data/quickstart")
	flag.Parse()
	if err := start(context.Background(), *temp, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// start runs the demo in ./data/quickstart or, with temp, in a new
// temporary directory, which it keeps for a look at what it wrote (its path
// was printed) and says how to remove.
func start(ctx context.Context, temp bool, w io.Writer) error {
	dir := "data/quickstart"
	if temp {
		d, err := os.MkdirTemp("", "embedstream-quickstart-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := run(ctx, dir); err != nil {
		return err
	}
	if temp {
		fmt.Fprintf(w, "the data stays in %s; remove it with: rm -r %s\n", dir, dir)
	}
	return nil
}

func run(ctx context.Context, dir string) error {
	start := time.Now()
	b, err := stream.Open(dir, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("opened %s in %v\n", dir, time.Since(start).Round(time.Microsecond))

	err = b.CreateTopic("orders", stream.TopicConfig{Partitions: 3})
	if err != nil && !errors.Is(err, stream.ErrTopicExists) {
		return err
	}

	// Synchronous publish: returns once appended, with the offset filled in.
	first := &stream.Record{Topic: "orders", Key: []byte("alice"), Value: []byte("1 x apples")}
	if err := b.Publish(ctx, first); err != nil {
		return err
	}
	fmt.Printf("published %q to partition %d at offset %d\n", first.Value, first.Partition, first.Offset)

	// Batching producer: records for alice's partition are batched together.
	p, err := b.NewProducer(&stream.ProducerOptions{Linger: time.Millisecond})
	if err != nil {
		return err
	}
	for _, v := range []string{"2 x pears", "3 x plums", "4 x figs"} {
		p.Publish(ctx, &stream.Record{Topic: "orders", Key: []byte("alice"), Value: []byte(v)}, func(r *stream.Record, err error) {
			if err != nil {
				log.Printf("publish failed: %v", err)
			}
		})
	}
	if err := p.Close(); err != nil {
		return err
	}

	// Replay alice's partition from the start; StopAtEnd makes it finite.
	r, err := b.NewReader("orders", first.Partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Printf("replaying partition %d:\n", first.Partition)
	for rec, err := range r.All(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf("  offset %d  %s  key=%s  value=%q\n", rec.Offset, rec.Timestamp.Format(time.TimeOnly), rec.Key, rec.Value)
	}
	info, err := b.DescribeTopic("orders")
	if err != nil {
		return err
	}
	for _, pi := range info.Partitions {
		fmt.Printf("partition %d: offsets [%d, %d), %d bytes\n", pi.Partition, pi.StartOffset, pi.EndOffset, pi.Bytes)
	}
	return nil
}
