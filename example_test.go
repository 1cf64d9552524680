package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/embedstream/stream"
)

// tempDir returns a throwaway directory for an example and the function
// that removes it.
func tempDir() (string, func()) {
	dir, err := os.MkdirTemp("", "embedstream-example-")
	if err != nil {
		log.Fatal(err)
	}
	return dir, func() { os.RemoveAll(dir) }
}

// Open a broker on a directory, create a topic, and look at it. Reopening
// the directory later finds the topic and its records again.
func ExampleOpen() {
	dir, cleanup := tempDir()
	defer cleanup()

	b, err := stream.Open(dir, nil) // nil: the defaults (SyncInterval durability)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	if err := b.CreateTopic("orders", stream.TopicConfig{Partitions: 3}); err != nil {
		log.Fatal(err)
	}
	info, err := b.DescribeTopic("orders")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("topics:", b.Topics())
	for _, p := range info.Partitions {
		fmt.Printf("partition %d: offsets [%d, %d)\n", p.Partition, p.StartOffset, p.EndOffset)
	}
	// Output:
	// topics: [orders]
	// partition 0: offsets [0, 0)
	// partition 1: offsets [0, 0)
	// partition 2: offsets [0, 0)
}

// Publish appends synchronously and fills in where each record went. The
// partitioner places every record: by default by the hash of its key, so
// one key always lands on one partition, in order.
func ExampleBroker_Publish() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("orders", stream.TopicConfig{Partitions: 3}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	first := &stream.Record{Topic: "orders", Key: []byte("alice"), Value: []byte("apples")}
	second := &stream.Record{Topic: "orders", Key: []byte("alice"), Value: []byte("pears")}
	if err := b.Publish(ctx, first, second); err != nil { // one call: one atomic batch
		log.Fatal(err)
	}
	fmt.Println("same partition:", first.Partition == second.Partition)
	fmt.Println("offsets:", first.Offset, second.Offset)
	// Output:
	// same partition: true
	// offsets: 0 1
}

// Keyed records spread over a topic's partitions, each key on its own
// partition: twenty customers' orders on four partitions.
func Example_keyedPlacement() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("orders", stream.TopicConfig{Partitions: 4}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	perPartition := make([]int, 4)
	for i := range 20 {
		k := fmt.Appendf(nil, "customer-%d", i)
		r := &stream.Record{Topic: "orders", Key: k, Value: []byte("order")}
		if err := b.Publish(ctx, r); err != nil {
			log.Fatal(err)
		}
		perPartition[r.Partition]++
	}
	fmt.Println("records per partition:", perPartition)
	// Output:
	// records per partition: [4 7 5 4]
}

// ManualPartitioner honours each record's Partition (Kafka's explicit
// partition); every other partitioner ignores it. Set it for one Producer
// (ProducerOptions.Partitioner) or for a Broker's Publish
// (Options.Partitioner).
func ExampleManualPartitioner() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, &stream.Options{Partitioner: stream.ManualPartitioner{}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("orders", stream.TopicConfig{Partitions: 3}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	pinned := &stream.Record{Topic: "orders", Partition: 2, Key: []byte("alice"), Value: []byte("plums")}
	if err := b.Publish(ctx, pinned); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: partition %d, offset %d\n", pinned.Value, pinned.Partition, pinned.Offset)

	err = b.Publish(ctx, &stream.Record{Topic: "orders", Partition: 7, Value: []byte("lost")})
	fmt.Println("partition 7:", errors.Is(err, stream.ErrInvalidPartition))
	// Output:
	// plums: partition 2, offset 0
	// partition 7: true
}

// A Producer batches records and publishes them asynchronously; each
// record's callback runs once it is written (or failed), in offset order
// per partition. Flush waits for every callback.
func ExampleBroker_NewProducer() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("events", stream.TopicConfig{}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	p, err := b.NewProducer(&stream.ProducerOptions{Linger: 5 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	var written []string // appended by the callbacks, which run one at a time
	for _, v := range []string{"started", "progress", "finished"} {
		p.Publish(ctx, &stream.Record{Topic: "events", Value: []byte(v)}, func(r *stream.Record, err error) {
			if err != nil {
				written = append(written, "error: "+err.Error())
				return
			}
			written = append(written, fmt.Sprintf("%s at offset %d", r.Value, r.Offset))
		})
	}
	if err := p.Flush(ctx); err != nil { // every callback has run when Flush returns
		log.Fatal(err)
	}
	for _, w := range written {
		fmt.Println(w)
	}
	// Output:
	// started at offset 0
	// progress at offset 1
	// finished at offset 2
}

// A consumer group member polls records, processes them, and commits; a
// member that joins the group later (after a restart, say) starts from the
// committed offsets.
func ExampleBroker_Subscribe() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("orders", stream.TopicConfig{}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range []string{"apples", "pears"} {
		if err := b.Publish(ctx, &stream.Record{Topic: "orders", Value: []byte(v)}); err != nil {
			log.Fatal(err)
		}
	}

	// ResetEarliest: a group without commits starts at the first record
	// (the default, ResetLatest, would wait for new ones).
	c, err := b.Subscribe("billing", []string{"orders"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
	if err != nil {
		log.Fatal(err)
	}
	recs, err := c.Poll(ctx) // valid until the next Poll: Clone what you keep
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Printf("billing %s (partition %d, offset %d)\n", r.Value, r.Partition, r.Offset)
	}
	if err := c.Commit(ctx); err != nil { // the offsets after the records Poll returned
		log.Fatal(err)
	}
	c.Close()

	committed, err := b.CommittedOffsets("billing")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed:", committed[stream.TopicPartition{Topic: "orders", Partition: 0}])

	// A new member of the group resumes after the commit.
	if err := b.Publish(ctx, &stream.Record{Topic: "orders", Value: []byte("plums")}); err != nil {
		log.Fatal(err)
	}
	c, err = b.Subscribe("billing", []string{"orders"}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	recs, err = c.Poll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Printf("billing %s (partition %d, offset %d)\n", r.Value, r.Partition, r.Offset)
	}
	// Output:
	// billing apples (partition 0, offset 0)
	// billing pears (partition 0, offset 1)
	// committed: 2
	// billing plums (partition 0, offset 2)
}

// A Reader replays one partition from an offset (or OffsetEarliest,
// OffsetLatest, AtTime) without a consumer group. StopAtEnd makes it stop at
// the end of the log instead of waiting for new records.
func ExampleBroker_NewReader() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("log", stream.TopicConfig{}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range []string{"a", "b", "c", "d"} {
		if err := b.Publish(ctx, &stream.Record{Topic: "log", Value: []byte(v)}); err != nil {
			log.Fatal(err)
		}
	}

	r, err := b.NewReader("log", 0, stream.AtOffset(1), &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for rec, err := range r.All(ctx) { // each record is valid during its step only
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("offset %d: %s\n", rec.Offset, rec.Value)
	}
	// Output:
	// offset 1: b
	// offset 2: c
	// offset 3: d
}

// A Table is a key→latest-value view of a topic: built from the log when
// opened, then following what is published. A nil value (a tombstone)
// deletes a key; WaitChange waits for a key to change; iteration is in key
// order.
func ExampleBroker_OpenTable() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close() // closes the table too
	if err := b.CreateTopic("config", stream.TopicConfig{Partitions: 2}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	set := func(key, value string) *stream.Record {
		r := &stream.Record{Topic: "config", Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		if err := b.Publish(ctx, r); err != nil {
			log.Fatal(err)
		}
		return r
	}
	set("db.host", "10.0.0.1")
	set("db.port", "5432")
	set("cache.ttl", "60s")
	set("db.host", "10.0.0.2")
	set("cache.ttl", "") // a tombstone

	t, err := b.OpenTable("config", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	if err := t.WaitReady(ctx); err != nil { // holds what the log held at open
		log.Fatal(err)
	}
	host, _ := t.Get([]byte("db.host"))
	fmt.Printf("db.host = %s (offset %d)\n", host.Value, host.Offset)
	_, ok := t.Get([]byte("cache.ttl"))
	fmt.Println("cache.ttl present:", ok)

	// Wait for db.host to change from the value we have.
	changed := make(chan stream.TableEntry)
	go func() {
		e, _, err := t.WaitChange(ctx, []byte("db.host"), host.Offset)
		if err != nil {
			log.Fatal(err)
		}
		changed <- e
	}()
	set("db.host", "10.0.0.3")
	fmt.Printf("db.host changed to %s\n", (<-changed).Value)

	// Read your writes: wait until the table applied a record published.
	r := set("db.user", "app")
	if err := t.WaitApplied(ctx, r.Partition, r.Offset); err != nil {
		log.Fatal(err)
	}
	for key, e := range t.Prefix([]byte("db.")) {
		fmt.Printf("%s = %s\n", key, e.Value)
	}
	fmt.Println("lag:", t.Lag())
	// Output:
	// db.host = 10.0.0.2 (offset 2)
	// cache.ttl present: false
	// db.host changed to 10.0.0.3
	// db.host = 10.0.0.3
	// db.port = 5432
	// db.user = app
	// lag: 0
}

// Handle runs a function per record for a consumer group, commits what it
// handled, retries failures and copies what still fails to a dead-letter
// topic (orders.DLT) with headers saying where it came from and why.
func ExampleHandle() {
	dir, cleanup := tempDir()
	defer cleanup()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	if err != nil {
		log.Fatal(err)
	}
	client := b.Client()
	defer client.Close()

	ctx, stop := context.WithCancel(context.Background())
	if err := client.CreateTopic(ctx, "orders", stream.TopicConfig{}); err != nil {
		log.Fatal(err)
	}
	for _, v := range []string{"42", "oops", "7"} {
		if err := client.Publish(ctx, &stream.Record{Topic: "orders", Value: []byte(v)}); err != nil {
			log.Fatal(err)
		}
	}

	err = stream.Handle(ctx, client, "billing", []string{"orders"}, func(ctx context.Context, r *stream.Record) error {
		var amount int
		if _, err := fmt.Sscan(string(r.Value), &amount); err != nil {
			return stream.Permanent(fmt.Errorf("not an amount: %q", r.Value)) // retrying will not help
		}
		fmt.Println("billed", amount)
		if r.Offset == 2 {
			stop() // the example ends here; a service runs until shutdown
		}
		return nil
	}, &stream.HandlerOptions{Group: stream.GroupOptions{Reset: stream.ResetEarliest}})
	if err != nil {
		log.Fatal(err)
	}

	rd, err := b.NewReader("orders.DLT", 0, stream.OffsetEarliest, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rd.Close()
	r, err := rd.Next(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	dl, _ := stream.DeadLetterOf(r)
	fmt.Printf("dead letter %s from %s/%d@%d: %s\n", r.Value, dl.Topic, dl.Partition, dl.Offset, dl.Error)
	// Output:
	// billed 42
	// billed 7
	// dead letter oops from orders/0@1: not an amount: "oops"
}
