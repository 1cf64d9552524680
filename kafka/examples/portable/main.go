// Command portable is one program, written only against stream.Client, that
// runs unchanged on the embedded broker and on a Kafka cluster: a flag picks
// the backend, and the output is the same on both.
//
//	go run ./examples/portable                                # embedded, in a temporary directory
//	go run ./examples/portable -backend kafka                 # an in-process Kafka cluster (franz-go's kfake)
//	go run ./examples/portable -backend kafka -brokers localhost:9092
//	go run ./examples/portable -backend embedded -dir data/portable
//
// It publishes orders keyed by customer, so each customer's orders land on
// one partition (the same one on both backends: the embedded broker is
// opened with stream.KafkaPartitioner, Kafka's own placement); a two-member
// "billing" group splits the partitions and processes every order once,
// committing as it goes; a replay reads each partition back from the start;
// and a new billing member resumes after the group's commits.
//
// Only newClient knows which backend it talks to; everything else is
// application code.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	backend := flag.String("backend", "embedded", "embedded or kafka")
	brokers := flag.String("brokers", "", "with -backend kafka: comma-separated seed brokers (default: start an in-process cluster)")
	dir := flag.String("dir", "", "with -backend embedded: data directory (default: a temporary one)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, cleanup, err := newClient(ctx, *backend, *brokers, *dir)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	if err := run(ctx, client, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// newClient is the only code that knows the backend.
func newClient(ctx context.Context, backend, brokers, dir string) (stream.Client, func(), error) {
	switch backend {
	case "embedded":
		cleanup := func() {}
		if dir == "" {
			d, err := os.MkdirTemp("", "embedstream-portable-")
			if err != nil {
				return nil, nil, err
			}
			dir, cleanup = d, func() { os.RemoveAll(d) }
		}
		b, err := stream.Open(dir, &stream.Options{Partitioner: stream.KafkaPartitioner{}})
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		c := b.Client()
		return c, func() { c.Close(); cleanup() }, nil

	case "kafka":
		opts := kafka.Options{ClientID: "portable-example"}
		cleanup := func() {}
		if brokers != "" {
			opts.Brokers = strings.Split(brokers, ",")
		} else {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				return nil, nil, err
			}
			opts.Brokers = cluster.ListenAddrs()
			// An in-process cluster answers at once: heartbeat often, so
			// the group rebalances without waiting seconds.
			opts.Opts = []kgo.Opt{kgo.HeartbeatInterval(100 * time.Millisecond)}
			cleanup = cluster.Close
		}
		c, err := kafka.New(ctx, opts)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		return c, func() { c.Close(); cleanup() }, nil
	}
	return nil, nil, fmt.Errorf("-backend %q: want embedded or kafka", backend)
}

// ---------------------------------------------------------------------------
// The application: nothing below knows which backend it runs on.

const (
	topic      = "portable-orders"
	partitions = 3
	group      = "billing"
)

var customers = []string{"alice", "bob", "carol", "dave", "erin"}

// order i's customer, value and time: fixed, so runs print the same.
func order(i int) *stream.Record {
	c := customers[i%len(customers)]
	return &stream.Record{
		Topic:     topic,
		Key:       []byte(c),
		Value:     fmt.Appendf(nil, "order-%02d", i),
		Headers:   []stream.Header{{Key: "source", Value: []byte("portable")}},
		Timestamp: time.Date(2025, 6, 1, 12, i, 0, 0, time.UTC),
	}
}

func run(ctx context.Context, c stream.Client, out io.Writer) error {
	if err := c.CreateTopic(ctx, topic, stream.TopicConfig{Partitions: partitions}); err != nil {
		return fmt.Errorf("create topic: %w (the example wants a fresh topic)", err)
	}

	// 1. Publish: a customer's orders land on one partition.
	fmt.Fprintln(out, "== publish")
	var orders []*stream.Record
	for i := 1; i <= 12; i++ {
		orders = append(orders, order(i))
	}
	if err := c.Publish(ctx, orders[:6]...); err != nil { // several in one call
		return err
	}
	for _, r := range orders[6:] {
		if err := c.Publish(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range orders {
		fmt.Fprintf(out, "%s customer=%-5s partition=%d offset=%d\n", r.Value, r.Key, r.Partition, r.Offset)
	}

	// 2. A two-member billing group processes every order once.
	fmt.Fprintln(out, "== billing group")
	processed, err := bill(ctx, c, len(orders))
	if err != nil {
		return err
	}
	for p := range int32(partitions) {
		fmt.Fprintf(out, "partition %d: %s\n", p, strings.Join(processed[p], " "))
	}

	// 3. Replay each partition from the start, without a group.
	fmt.Fprintln(out, "== replay")
	for p := range int32(partitions) {
		rd, err := c.ReadPartition(ctx, topic, p, stream.OffsetEarliest)
		if err != nil {
			return err
		}
		for {
			r, err := rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rd.Close()
				return err
			}
			fmt.Fprintf(out, "%d/%d %s %s key=%s source=%s\n", r.Partition, r.Offset,
				r.Timestamp.UTC().Format("15:04"), r.Value, r.Key, header(r, "source"))
		}
		rd.Close()
	}

	// 4. A new member of the group resumes after the commits: it sees only
	// the order published now.
	fmt.Fprintln(out, "== resume")
	late := order(13)
	if err := c.Publish(ctx, late); err != nil {
		return err
	}
	m, err := c.Subscribe(group, []string{topic}, &stream.GroupOptions{Reset: stream.ResetEarliest})
	if err != nil {
		return err
	}
	defer m.Close()
	recs, err := m.Poll(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Fprintf(out, "billing resumed with %s (partition %d, offset %d)\n", r.Value, r.Partition, r.Offset)
	}
	return m.Commit(ctx)
}

func header(r *stream.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// bill runs two group members, each polling on its own goroutine and
// committing after every Poll (and in OnRevoked, so a partition that moves
// is picked up where it was left), until they processed want orders between
// them. It returns the orders processed, per partition, in offset order.
func bill(ctx context.Context, c stream.Client, want int) (map[int32][]string, error) {
	type done struct {
		offset int64
		order  string
	}
	var (
		mu        sync.Mutex
		processed = map[int32][]done{}
		count     int
		finished  bool
		all       = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		var m stream.GroupConsumer
		opts := &stream.GroupOptions{
			Reset: stream.ResetEarliest, MaxPollRecords: 2,
			OnRevoked: func([]stream.TopicPartition) { _ = m.Commit(ctx) },
		}
		m, err := c.Subscribe(group, []string{topic}, opts)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.Close()
			for {
				recs, err := m.Poll(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				mu.Lock()
				for _, r := range recs {
					processed[r.Partition] = append(processed[r.Partition], done{r.Offset, string(r.Value)})
				}
				mu.Unlock()
				if err := m.Commit(ctx); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				// Counted once committed: finishing when the other member
				// has processed its last records but not yet committed them
				// would cancel that commit, and a later member would see
				// them again.
				mu.Lock()
				count += len(recs)
				if count == want && !finished {
					finished = true
					close(all) // every order processed and committed
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-all:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if count != want {
		return nil, fmt.Errorf("billing processed %d of %d orders", count, want)
	}
	out := map[int32][]string{}
	for p, ds := range processed {
		slices.SortFunc(ds, func(a, b done) int { return cmp.Compare(a.offset, b.offset) })
		for _, d := range ds {
			out[p] = append(out[p], fmt.Sprintf("%s@%d", d.order, d.offset))
		}
	}
	return out, nil
}
