// Command eventbus shows embedstream as the event bus inside one
// application. An order service publishes orders through a batching
// Producer; two consumer groups read them independently: "billing", with two
// members that split the topic's partitions between them, and "shipping",
// with one member that is stopped half-way. Each group commits what it
// processed. Then the application shuts down and restarts on the same data
// directory, and each group resumes from its committed offsets: at the end
// every order has been billed once and shipped once, with no duplicates and
// no gaps.
//
//	go run ./examples/eventbus              # in a new temporary directory, kept: it says how to remove it
//	go run ./examples/eventbus -dir data/eb # in data/eb (run it again: it continues)
package main

import (
	"context"
	"encoding/json"
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
)

const topic = "orders"

// out is where the demo reports (tests replace it).
var out io.Writer = os.Stdout

// Order is the event the order service publishes.
type Order struct {
	ID       int    `json:"id"`
	Customer string `json:"customer"`
	Item     string `json:"item"`
}

func main() {
	dir := flag.String("dir", "", "data directory (default: a new temporary one, kept)")
	flag.Parse()
	if err := start(*dir); err != nil {
		log.Fatal(err)
	}
}

// start runs the demo in dir or, if dir is "", in a new temporary
// directory, which it keeps (its path was printed; a second run there
// continues) and says how to remove.
func start(dir string) error {
	if dir != "" {
		return run(dir)
	}
	dir, err := os.MkdirTemp("", "embedstream-eventbus-")
	if err != nil {
		return err
	}
	if err := run(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "the data stays in %s: run again with -dir %s to continue, or remove it with: rm -r %s\n", dir, dir, dir)
	return nil
}

// ledger records which orders each group processed, across restarts: it
// stands for the outside world, where bills were sent and parcels shipped.
type ledger struct {
	processed map[string][]int // by group
	published []int
}

func run(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Fprintf(out, "data directory %s\n", dir)
	seen := &ledger{processed: map[string][]int{}}

	fmt.Fprintln(out, "-- run 1 --")
	if err := runApp(ctx, dir, 8, seen, map[string]int{"shipping": 5}); err != nil {
		return err
	}
	fmt.Fprintln(out, "-- run 2: the application restarts on the same directory --")
	if err := runApp(ctx, dir, 4, seen, nil); err != nil {
		return err
	}

	fmt.Fprintln(out, "-- check --")
	from, to := seen.published[0], seen.published[len(seen.published)-1]
	for _, group := range []string{"billing", "shipping"} {
		ids := slices.Sorted(slices.Values(seen.processed[group]))
		if err := exactlyOnce(ids, from, to); err != nil {
			return fmt.Errorf("%s: %w", group, err)
		}
		fmt.Fprintf(out, "%-8s processed orders %d-%d, each exactly once (no duplicates, no gaps)\n", group, from, to)
	}
	return nil
}

// runApp is one life of the application: open the broker, publish n new
// orders, let each group consume what it has not yet committed (shipping
// stops early if stopAfter says so), and close.
func runApp(ctx context.Context, dir string, n int, seen *ledger, stopAfter map[string]int) error {
	b, err := stream.Open(dir, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic(topic, stream.TopicConfig{Partitions: 4}); err != nil && !errors.Is(err, stream.ErrTopicExists) {
		return err
	}

	first, last, err := publishOrders(ctx, b, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "order service: published orders %d-%d to %q (4 partitions) through a Producer\n", first, last, topic)
	for id := first; id <= last; id++ {
		seen.published = append(seen.published, id)
	}

	for _, g := range []struct {
		name    string
		members int
	}{{"billing", 2}, {"shipping", 1}} {
		lag, resume, err := backlog(b, g.name)
		if err != nil {
			return err
		}
		if resume != "" {
			fmt.Fprintf(out, "%-8s resumes from its committed offsets (partition@next offset) %s: %d orders to process\n", g.name, resume, lag)
		}
		want := lag
		if s, ok := stopAfter[g.name]; ok && s < want {
			want = s
		}
		if err := consume(ctx, b, g.name, g.members, want, seen); err != nil {
			return err
		}
		if want < lag {
			fmt.Fprintf(out, "%-8s stops here, its progress committed: the application shuts down with %d orders not yet shipped\n", g.name, lag-want)
		}
	}
	if err := b.Close(); err != nil {
		return err
	}
	fmt.Fprintln(out, "broker closed")
	return nil
}

// backlog returns how many records of the topic group has not committed,
// and its committed offsets as text ("" if it never committed).
func backlog(b *stream.Broker, group string) (int, string, error) {
	info, err := b.DescribeTopic(topic)
	if err != nil {
		return 0, "", err
	}
	committed, err := b.CommittedOffsets(group)
	if err != nil {
		return 0, "", err
	}
	lag := 0
	var resume []string
	if len(committed) == 0 {
		return int(total(info)), "", nil
	}
	for _, p := range info.Partitions {
		off, ok := committed[stream.TopicPartition{Topic: topic, Partition: p.Partition}]
		if ok {
			resume = append(resume, fmt.Sprintf("%d@%d", p.Partition, off))
		} else {
			off = p.StartOffset // no commit: the group starts at the earliest record
			resume = append(resume, fmt.Sprintf("%d@none", p.Partition))
		}
		lag += int(p.EndOffset - off)
	}
	return lag, strings.Join(resume, " "), nil
}

// total counts the records stored in a topic.
func total(info stream.TopicInfo) int64 {
	var n int64
	for _, p := range info.Partitions {
		n += p.EndOffset - p.StartOffset
	}
	return n
}

var customers = []string{"alice", "bob", "carol", "dave", "erin", "frank"}

// publishOrders publishes n orders, numbered after those already in the
// topic, keyed by customer (so one customer's orders stay in order, in one
// partition).
func publishOrders(ctx context.Context, b *stream.Broker, n int) (first, last int, err error) {
	info, err := b.DescribeTopic(topic)
	if err != nil {
		return 0, 0, err
	}
	existing := 0
	for _, p := range info.Partitions {
		existing += int(p.EndOffset)
	}
	p, err := b.NewProducer(&stream.ProducerOptions{Linger: time.Millisecond})
	if err != nil {
		return 0, 0, err
	}
	var mu sync.Mutex
	var errs []error
	for id := existing + 1; id <= existing+n; id++ {
		o := Order{ID: id, Customer: customers[id%len(customers)], Item: fmt.Sprintf("item-%d", id)}
		value, _ := json.Marshal(o)
		p.Publish(ctx, &stream.Record{Topic: topic, Key: []byte(o.Customer), Value: value},
			func(_ *stream.Record, err error) {
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
	}
	// Close flushes: every callback has run when it returns.
	if err := p.Close(); err != nil {
		return 0, 0, err
	}
	return existing + 1, existing + n, errors.Join(errs...)
}

// consume runs members members of group, each polling in its own
// goroutine, until the group has processed want orders. Each member
// commits exactly the records it processed.
func consume(ctx context.Context, b *stream.Broker, group string, members, want int, seen *ledger) error {
	if want == 0 {
		return nil
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	processed := 0
	// claim reserves the right to process one more order.
	claim := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if processed == want {
			return false
		}
		processed++
		if processed == want {
			stop() // the others stop polling
		}
		return true
	}

	// Subscribe every member before any polls, so the first assignment
	// already splits the partitions between them.
	consumers := make([]*stream.Consumer, members)
	for i := range consumers {
		c, err := b.Subscribe(group, []string{topic}, &stream.ConsumerOptions{Reset: stream.ResetEarliest})
		if err != nil {
			return err
		}
		defer c.Close()
		consumers[i] = c
	}
	type result struct {
		ids        []int
		assignment []stream.TopicPartition
		err        error
	}
	results := make([]result, members)
	var wg sync.WaitGroup
	for i, c := range consumers {
		wg.Go(func() {
			res := &results[i]
			for {
				recs, err := c.Poll(ctx)
				if err != nil {
					if ctx.Err() == nil {
						res.err = err
					}
					break
				}
				done := map[stream.TopicPartition]int64{}
				for _, r := range recs {
					if !claim() {
						break // not processed, so not committed either
					}
					var o Order
					if err := json.Unmarshal(r.Value, &o); err != nil {
						res.err = err
						return
					}
					res.ids = append(res.ids, o.ID)
					done[stream.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
				}
				if err := c.CommitOffsets(context.Background(), done); err != nil {
					res.err = err
					return
				}
			}
			res.assignment = c.Assignment()
		})
	}
	wg.Wait()
	for i, res := range results {
		if res.err != nil {
			return fmt.Errorf("%s member %d: %w", group, i+1, res.err)
		}
		mu.Lock()
		seen.processed[group] = append(seen.processed[group], res.ids...)
		mu.Unlock()
		fmt.Fprintf(out, "%-8s member %d of %d, partitions %s: processed orders %s\n",
			group, i+1, members, partitions(res.assignment), ints(slices.Sorted(slices.Values(res.ids))))
	}
	return nil
}

func partitions(tps []stream.TopicPartition) string {
	var s []string
	for _, tp := range tps {
		s = append(s, fmt.Sprint(tp.Partition))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func ints(ids []int) string {
	if len(ids) == 0 {
		return "(none)"
	}
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprint(id))
	}
	return strings.Join(s, " ")
}

// exactlyOnce checks that sorted ids are from, from+1, ..., to.
func exactlyOnce(ids []int, from, to int) error {
	for i, id := range ids {
		if i > 0 && id == ids[i-1] {
			return fmt.Errorf("order %d processed twice", id)
		}
	}
	for id := from; id <= to; id++ {
		if _, found := slices.BinarySearch(ids, id); !found {
			return fmt.Errorf("order %d never processed", id)
		}
	}
	if len(ids) != to-from+1 {
		return fmt.Errorf("processed %d orders, want %d", len(ids), to-from+1)
	}
	return nil
}
