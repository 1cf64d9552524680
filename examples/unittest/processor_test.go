package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

// newBroker opens a broker for one test, with the processor's topics.
func newBroker(t *testing.T) *stream.Broker {
	return streamtest.NewBroker(t,
		streamtest.WithTopic(OrdersTopic, stream.TopicConfig{Partitions: 4}),
		streamtest.WithTopic(InvoicesTopic, stream.TopicConfig{}),
		streamtest.WithTopic(RejectedTopic, stream.TopicConfig{}))
}

// publishOrders publishes orders keyed by their customer and returns them.
func publishOrders(t *testing.T, b *stream.Broker, orders ...string) []*stream.Record {
	t.Helper()
	var out []*stream.Record
	for _, o := range orders {
		customer, _, _ := strings.Cut(o, ":")
		out = append(out, streamtest.PublishKeyed(t, b, OrdersTopic, customer, o)...)
	}
	return out
}

func invoices(t *testing.T, b *stream.Broker) []string {
	t.Helper()
	return streamtest.Values(streamtest.Records(t, b, InvoicesTopic))
}

// committedTotal is how many orders the group has committed, over all
// partitions.
func committedTotal(t *testing.T, b *stream.Broker, group string) int64 {
	t.Helper()
	var n int64
	for _, off := range streamtest.Committed(t, b, group) {
		n += off
	}
	return n
}

func TestProcessorInvoicesAndRejects(t *testing.T) {
	streamtest.CheckLeaks(t)
	b := newBroker(t)
	publishOrders(t, b, "alice:1000", "bob:250", "carol:lots")

	p := &Processor{In: streamtest.Subscribe(t, b, "billing", nil, OrdersTopic), Out: b}
	n, err := p.Step(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, n)

	require.ElementsMatch(t, []string{"alice owes 12.00", "bob owes 3.00"}, invoices(t, b))
	rejected := streamtest.Records(t, b, RejectedTopic)
	require.Len(t, rejected, 1)
	require.Contains(t, string(rejected[0].Value), `bad order "carol:lots"`)
	require.Equal(t, "carol", string(rejected[0].Key))
	require.Regexp(t, `^orders/\d@0$`, SourceOf(rejected[0]))
	require.EqualValues(t, 3, committedTotal(t, b, "billing"))
}

// A publish that fails commits nothing; the processor retries the same
// batch, and each order is invoiced once.
func TestProcessorRetriesAFailedPublish(t *testing.T) {
	b := newBroker(t)
	publishOrders(t, b, "alice:1000", "bob:250")
	out := &streamtest.FaultyPublisher{Publisher: b}
	p := &Processor{In: streamtest.Subscribe(t, b, "billing", nil, OrdersTopic), Out: out}

	out.FailNext(errors.New("disk full"))
	_, err := p.Step(t.Context())
	require.ErrorIs(t, err, ErrPublish)
	require.Empty(t, invoices(t, b))
	require.Empty(t, streamtest.Committed(t, b, "billing"))

	n, err := p.Step(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.ElementsMatch(t, []string{"alice owes 12.00", "bob owes 3.00"}, invoices(t, b))
	require.EqualValues(t, 2, committedTotal(t, b, "billing"))
}

// When a publish succeeds but reports a failure (its acknowledgement was
// lost), the retry publishes the invoices again: at-least-once. The source
// header tells the duplicates apart.
func TestProcessorLostAcknowledgementDuplicates(t *testing.T) {
	b := newBroker(t)
	publishOrders(t, b, "alice:1000", "bob:250")
	out := &streamtest.FaultyPublisher{Publisher: b}
	p := &Processor{In: streamtest.Subscribe(t, b, "billing", nil, OrdersTopic), Out: out}

	out.FailNextAfterWrite(errors.New("timeout"))
	_, err := p.Step(t.Context())
	require.ErrorIs(t, err, ErrPublish)
	_, err = p.Step(t.Context())
	require.NoError(t, err)

	recs := streamtest.Records(t, b, InvoicesTopic)
	require.Len(t, recs, 4, "each invoice twice")
	sources := map[string]bool{}
	for _, r := range recs {
		sources[SourceOf(r)] = true
	}
	require.Len(t, sources, 2, "two distinct orders")
}

// A failed commit is made good by the next one: commits are cumulative.
func TestProcessorFailedCommit(t *testing.T) {
	b := newBroker(t)
	publishOrders(t, b, "alice:1000")
	in := &streamtest.FaultyConsumer{Consumer: streamtest.Subscribe(t, b, "billing", nil, OrdersTopic)}
	p := &Processor{In: in, Out: b}

	in.FailNextCommit(stream.ErrRebalanceInProgress)
	_, err := p.Step(t.Context())
	require.ErrorIs(t, err, stream.ErrRebalanceInProgress)
	require.True(t, retryable(err))
	require.Empty(t, streamtest.Committed(t, b, "billing"))

	publishOrders(t, b, "bob:250")
	_, err = p.Step(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 2, committedTotal(t, b, "billing"))
	require.ElementsMatch(t, []string{"alice owes 12.00", "bob owes 3.00"}, invoices(t, b))
}

// After a crash, a new processor resumes from the committed offsets.
func TestProcessorResumesAfterACrash(t *testing.T) {
	b := newBroker(t)
	publishOrders(t, b, "alice:1000", "bob:250")
	p := &Processor{In: streamtest.Subscribe(t, b, "billing", nil, OrdersTopic), Out: b}
	_, err := p.Step(t.Context())
	require.NoError(t, err)
	publishOrders(t, b, "carol:100") // published, not yet processed

	b = streamtest.Crash(t, b)
	p = &Processor{In: streamtest.Subscribe(t, b, "billing", nil, OrdersTopic), Out: b}
	n, err := p.Step(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the order not yet committed")
	require.ElementsMatch(t, []string{"alice owes 12.00", "bob owes 3.00", "carol owes 1.20"}, invoices(t, b))
}

// worker runs a Processor in a goroutine and records its assignments.
type worker struct {
	consumer *stream.Consumer
	start    func() // runs the Processor in a goroutine
	cancel   context.CancelFunc
	done     chan error

	mu         sync.Mutex
	assignment []stream.TopicPartition
}

// newWorker subscribes a member to "billing" for a Processor. wrap, if not
// nil, wraps the consumer (to inject faults). Subscribe all the workers of
// a test before starting any, so that the first assignment already
// includes them all.
func newWorker(t *testing.T, b *stream.Broker, wrap func(Source) Source) *worker {
	w := &worker{done: make(chan error, 1)}
	opts := streamtest.ConsumerOptions() // MaxPollInterval: 10s
	opts.OnAssigned = func(c *stream.Consumer, _ []stream.TopicPartition) {
		w.mu.Lock()
		w.assignment = c.Assignment()
		w.mu.Unlock()
	}
	w.consumer = streamtest.Subscribe(t, b, "billing", opts, OrdersTopic)
	var in Source = w.consumer
	if wrap != nil {
		in = wrap(in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.start = func() { go func() { w.done <- (&Processor{In: in, Out: b}).Run(ctx) }() }
	return w
}

func (w *worker) partitions() []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int32
	for _, tp := range w.assignment {
		out = append(out, tp.Partition)
	}
	return out
}

// stop ends the worker as a shutdown would: Run returns, the consumer
// leaves the group.
func (w *worker) stop(t *testing.T) {
	w.cancel()
	require.NoError(t, <-w.done)
	require.NoError(t, w.consumer.Close())
}

// orders returns n orders for customers c0, c1, ... starting at order first.
func orders(first, n int) []string {
	var out []string
	for i := first; i < first+n; i++ {
		out = append(out, "c"+string(rune('0'+i%8))+":"+string(rune('1'+i%9))+"00")
	}
	return out
}

// requireExactlyOnce checks that every order published was invoiced once.
func requireExactlyOnce(t *testing.T, b *stream.Broker) {
	t.Helper()
	published := streamtest.Records(t, b, OrdersTopic)
	invoiced := streamtest.Records(t, b, InvoicesTopic)
	var sources []string
	for _, r := range invoiced {
		sources = append(sources, SourceOf(r))
	}
	slices.Sort(sources)
	require.Len(t, invoiced, len(published))
	require.Len(t, slices.Compact(sources), len(published), "no duplicates")
}

// Two processors share the orders' partitions; when one leaves, the other
// takes its partitions over and carries on from the committed offsets.
// Inside synctest, synctest.Wait returns once both are idle, blocked in
// Poll, so the test needs no sleeps and no polling loops.
func TestProcessorsRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		w1 := newWorker(t, b, nil)
		w2 := newWorker(t, b, nil)
		w1.start()
		w2.start()
		publishOrders(t, b, orders(0, 8)...)
		synctest.Wait()
		require.Equal(t, []int32{0, 1}, w1.partitions())
		require.Equal(t, []int32{2, 3}, w2.partitions())
		requireExactlyOnce(t, b)

		w2.stop(t)
		synctest.Wait()
		require.Equal(t, []int32{0, 1, 2, 3}, w1.partitions())
		publishOrders(t, b, orders(8, 8)...)
		synctest.Wait()
		requireExactlyOnce(t, b)
		require.EqualValues(t, 16, committedTotal(t, b, "billing"))
		w1.stop(t)
	})
}

// A processor that goes quiet for longer than MaxPollInterval (here, one
// whose consumer is a minute late to poll, as a slow handler would be) is
// evicted: the other takes its partitions over, and when the slow one comes
// back it rejoins. A minute passes in virtual time; the test takes
// milliseconds.
func TestSlowProcessorIsEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		start := time.Now()
		publishOrders(t, b, orders(0, 8)...)
		w1 := newWorker(t, b, func(in Source) Source {
			slow := &streamtest.FaultyConsumer{Consumer: in}
			slow.DelayPoll(0)           // the first Poll is on time...
			slow.DelayPoll(time.Minute) // ...the next comes a minute late
			return slow
		})
		w2 := newWorker(t, b, nil)
		w1.start()
		w2.start()
		synctest.Wait()
		require.Equal(t, []int32{0, 1}, w1.partitions())
		require.Equal(t, []int32{2, 3}, w2.partitions())
		requireExactlyOnce(t, b)

		// Five seconds later more orders come: w2 invoices those of its
		// partitions at once; those of w1's wait.
		time.Sleep(5 * time.Second)
		waiting := 0
		for _, r := range publishOrders(t, b, orders(8, 8)...) {
			if r.Partition < 2 {
				waiting++
			}
		}
		require.NotZero(t, waiting)
		synctest.Wait()
		require.Len(t, invoices(t, b), 16-waiting)

		// MaxPollInterval (10s) after w1's last Poll returned, the group
		// evicts it: w2 takes all the partitions and invoices the orders
		// that waited, from w1's last commit on.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, []int32{0, 1, 2, 3}, w2.partitions())
		requireExactlyOnce(t, b)

		// w1 comes back after its minute, rejoins (as a new member, whose
		// id sorts after w2's), and the group splits the partitions again.
		time.Sleep(time.Minute)
		require.Equal(t, []int32{2, 3}, w1.partitions())
		require.Equal(t, []int32{0, 1}, w2.partitions())
		require.Equal(t, time.Minute+10*time.Second, time.Since(start))
		publishOrders(t, b, orders(16, 8)...)
		synctest.Wait()
		requireExactlyOnce(t, b)
		require.EqualValues(t, 24, committedTotal(t, b, "billing"))
		w1.stop(t)
		w2.stop(t)
	})
}

func TestDemo(t *testing.T) {
	var out strings.Builder
	require.NoError(t, demo(t.Context(), &out))
	require.Contains(t, out.String(), "processed 3 orders")
	require.Contains(t, out.String(), `"alice owes 12.00"`)
}
