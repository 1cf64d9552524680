package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// noBackoff retries at once: the suite checks what is retried, not when.
func noBackoff(int) time.Duration { return 0 }

// handlerRun is Handle or HandleBatch running on its own goroutine until
// stop.
type handlerRun struct {
	cancel context.CancelFunc
	done   chan error
}

func startHandler(ctx context.Context, run func(ctx context.Context) error) *handlerRun {
	ctx, cancel := context.WithCancel(ctx)
	h := &handlerRun{cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- run(ctx) }()
	return h
}

// stop cancels the run and returns what it returned.
func (h *handlerRun) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	return h.wait(t)
}

func (h *handlerRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		return err
	case <-time.After(Timeout):
		t.Fatal("the handler did not return")
		return nil
	}
}

// publishNumbers publishes the values "0" to "n-1" to a topic of one
// partition.
func publishNumbers(t *testing.T, ctx context.Context, c stream.Client, topic string, n int) {
	t.Helper()
	var recs []*stream.Record
	for i := range n {
		recs = append(recs, &stream.Record{Topic: topic, Value: fmt.Appendf(nil, "%d", i)})
	}
	require.NoError(t, c.Publish(ctx, recs...))
}

// countRecords counts a partition's records now; 0 if it cannot be read
// (the topic does not exist yet).
func countRecords(ctx context.Context, c stream.Client, topic string, partition int32) int {
	rd, err := c.ReadPartition(ctx, topic, partition, stream.OffsetEarliest)
	if err != nil {
		return 0
	}
	defer rd.Close()
	n := 0
	for {
		if _, err := rd.Next(ctx); err != nil {
			return n
		}
		n++
	}
}

// handled records what a handler saw, per partition, in order.
type handled struct {
	mu       sync.Mutex
	values   map[int32][]string
	attempts map[string]int
}

func newHandled() *handled {
	return &handled{values: map[int32][]string{}, attempts: map[string]int{}}
}

func (h *handled) attempt(r *stream.Record) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts[string(r.Value)]++
	return h.attempts[string(r.Value)]
}

func (h *handled) done(r *stream.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.values[r.Partition] = append(h.values[r.Partition], string(r.Value))
}

func (h *handled) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.values {
		n += len(v)
	}
	return n
}

func (h *handled) partition(p int32) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.values[p]...)
}

func (h *handled) attemptsOf(value string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts[value]
}

// handlerRetryDeadLetter: Handle retries a failing record, gives up after
// MaxAttempts (at once for a Permanent error) and copies it to topic.DLT
// with its key, value and headers and headers saying where it came from
// and why; everything handled or dead-lettered is committed, in order per
// partition, and a new run starts after it.
func (s *suite) handlerRetryDeadLetter(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	topic := createTopic(t, ctx, c, 2)
	group := unique(t, "g")
	var recs []*stream.Record
	for p := range int32(2) {
		for i := range 6 {
			v := fmt.Sprintf("p%d-%d", p, i)
			switch i {
			case 1:
				v += "-flaky"
			case 3:
				v += "-poison"
			case 4:
				v += "-bad"
			}
			recs = append(recs, &stream.Record{Topic: topic, Partition: p, Key: []byte("k" + v), Value: []byte(v),
				Headers: []stream.Header{{Key: "origin", Value: []byte("test")}}})
		}
	}
	require.NoError(t, c.Publish(ctx, recs...))

	stamps := map[string]time.Time{} // Publish filled them in
	for _, r := range recs {
		stamps[string(r.Value)] = r.Timestamp
	}
	h := newHandled()
	var failures, notOne atomic.Int64
	opts := &stream.HandlerOptions{
		Group:       stream.GroupOptions{Reset: stream.ResetEarliest},
		MaxAttempts: 3,
		Backoff:     noBackoff,
		OnError: func(recs []*stream.Record, attempt int, err error) {
			if len(recs) != 1 {
				notOne.Add(1)
			}
			failures.Add(1)
		},
	}
	run := startHandler(ctx, func(ctx context.Context) error {
		return stream.Handle(ctx, c, group, []string{topic}, func(ctx context.Context, r *stream.Record) error {
			n := h.attempt(r)
			v := string(r.Value)
			switch {
			case strings.HasSuffix(v, "-flaky") && n == 1:
				return errors.New("flaky once")
			case strings.HasSuffix(v, "-poison"):
				return fmt.Errorf("poison %s", v)
			case strings.HasSuffix(v, "-bad"):
				return stream.Permanent(errors.New("cannot parse"))
			}
			h.done(r)
			return nil
		}, opts)
	})
	dlt := topic + stream.DeadLetterSuffix
	waitFor(t, "every good record handled and the failed ones dead-lettered", func() bool {
		return h.count() >= 8 && countRecords(ctx, c, dlt, 0) == 4
	})
	require.NoError(t, run.stop(t), "a clean stop returns nil")

	for p := range int32(2) {
		require.Equal(t, []string{
			fmt.Sprintf("p%d-0", p), fmt.Sprintf("p%d-1-flaky", p), fmt.Sprintf("p%d-2", p), fmt.Sprintf("p%d-5", p),
		}, h.partition(p), "partition %d: handled in offset order, each once", p)
		require.Equal(t, 2, h.attemptsOf(fmt.Sprintf("p%d-1-flaky", p)))
		require.Equal(t, 3, h.attemptsOf(fmt.Sprintf("p%d-3-poison", p)), "MaxAttempts")
		require.Equal(t, 1, h.attemptsOf(fmt.Sprintf("p%d-4-bad", p)), "a Permanent error is not retried")
	}
	require.Equal(t, int64(2*(1+3+1)), failures.Load(), "OnError after each failed attempt")
	require.Zero(t, notOne.Load(), "OnError gets the one record")

	dead := readAll(t, ctx, c, dlt, 0, stream.OffsetEarliest)
	require.Len(t, dead, 4)
	seen := map[string]bool{}
	for _, d := range dead {
		info, ok := stream.DeadLetterOf(d)
		require.True(t, ok)
		v := string(d.Value)
		seen[v] = true
		var p, i int
		_, err := fmt.Sscanf(v, "p%d-%d", &p, &i)
		require.NoError(t, err)
		require.Equal(t, topic, info.Topic)
		require.Equal(t, int32(p), info.Partition)
		require.Equal(t, int64(i), info.Offset)
		require.Equal(t, group, info.Group)
		require.Equal(t, "k"+v, string(d.Key), "the key is kept")
		require.Equal(t, "origin", d.Headers[0].Key, "the record's headers are kept, first")
		require.Equal(t, stamps[v].UnixMilli(), info.Timestamp.UnixMilli(), "the original timestamp")
		if i == 3 {
			require.Equal(t, "poison "+v, info.Error)
			require.Equal(t, "*errors.errorString", info.ErrorType)
		} else {
			require.Equal(t, "cannot parse", info.Error, "Permanent's wrapper is not part of the message")
		}
	}
	require.Len(t, seen, 4)

	require.Equal(t, map[stream.TopicPartition]int64{
		{Topic: topic, Partition: 0}: 6, {Topic: topic, Partition: 1}: 6,
	}, committedOffsets(t, ctx, c, group, topic), "handled and dead-lettered records are committed")
}

// handlerStopCommits: cancelling Handle's context commits what was handled
// (not the record being handled) and returns nil; the next run starts at
// the first record not handled.
func (s *suite) handlerStopCommits(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	group := unique(t, "g")
	publishNumbers(t, ctx, c, topic, 10)
	opts := &stream.HandlerOptions{Group: stream.GroupOptions{Reset: stream.ResetEarliest}, Backoff: noBackoff}

	h := newHandled()
	stopped := make(chan struct{})
	run := startHandler(ctx, func(ctx context.Context) error {
		return stream.Handle(ctx, c, group, []string{topic}, func(ctx context.Context, r *stream.Record) error {
			if r.Offset == 5 {
				close(stopped)
				<-ctx.Done() // a long handling the stop interrupts
				return ctx.Err()
			}
			h.done(r)
			return nil
		}, opts)
	})
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("record 5 never reached")
	}
	require.NoError(t, run.stop(t))
	require.Equal(t, []string{"0", "1", "2", "3", "4"}, h.partition(0))
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: topic, Partition: 0}: 5},
		committedOffsets(t, ctx, c, group, topic), "what was handled, not the interrupted record")

	again := newHandled()
	run = startHandler(ctx, func(ctx context.Context) error {
		return stream.Handle(ctx, c, group, []string{topic}, func(ctx context.Context, r *stream.Record) error {
			again.done(r)
			return nil
		}, opts)
	})
	waitFor(t, "the rest handled", func() bool { return again.count() >= 5 })
	require.NoError(t, run.stop(t))
	require.Equal(t, []string{"5", "6", "7", "8", "9"}, again.partition(0))
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: topic, Partition: 0}: 10},
		committedOffsets(t, ctx, c, group, topic))
}

// handlerNoDeadLetter: without a dead-letter topic a failed record stops
// Handle with a *HandlerError; the records before it are committed.
func (s *suite) handlerNoDeadLetter(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	group := unique(t, "g")
	publishNumbers(t, ctx, c, topic, 5)
	boom := errors.New("boom")
	err := stream.Handle(ctx, c, group, []string{topic}, func(ctx context.Context, r *stream.Record) error {
		if r.Offset == 3 {
			return boom
		}
		return nil
	}, &stream.HandlerOptions{
		Group:       stream.GroupOptions{Reset: stream.ResetEarliest},
		MaxAttempts: 2, Backoff: noBackoff,
		DeadLetter: func(*stream.Record) string { return "" },
	})
	var he *stream.HandlerError
	require.ErrorAs(t, err, &he)
	require.ErrorIs(t, err, boom)
	require.Equal(t, stream.HandlerError{Topic: topic, Partition: 0, Offset: 3, Attempts: 2, Err: boom}, *he)
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: topic, Partition: 0}: 3},
		committedOffsets(t, ctx, c, group, topic))
}

// handleBatch: a batch is retried whole; after its last attempt a
// *BatchError's record is dead-lettered, those before it committed and
// those after it handled again; any other error dead-letters the batch.
func (s *suite) handleBatch(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	group := unique(t, "g")
	publishNumbers(t, ctx, c, topic, 6)

	var mu sync.Mutex
	var ok []string // values of batches that succeeded
	run := startHandler(ctx, func(ctx context.Context) error {
		return stream.HandleBatch(ctx, c, group, []string{topic}, func(ctx context.Context, batch []*stream.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for i, r := range batch {
				if string(r.Value) == "2" {
					return &stream.BatchError{Index: i, Err: errors.New("two")}
				}
			}
			for _, r := range batch {
				ok = append(ok, string(r.Value))
			}
			return nil
		}, &stream.HandlerOptions{Group: stream.GroupOptions{Reset: stream.ResetEarliest}, MaxAttempts: 2, Backoff: noBackoff})
	})
	waitFor(t, "records after the failed one handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) > 0 && ok[len(ok)-1] == "5"
	})
	require.NoError(t, run.stop(t))
	dead := readAll(t, ctx, c, topic+stream.DeadLetterSuffix, 0, stream.OffsetEarliest)
	require.Len(t, dead, 1)
	require.Equal(t, "2", string(dead[0].Value))
	info, _ := stream.DeadLetterOf(dead[0])
	require.Equal(t, int64(2), info.Offset)
	require.Equal(t, "two", info.Error)
	require.Contains(t, ok, "3")
	require.NotContains(t, ok, "2")
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: topic, Partition: 0}: 6},
		committedOffsets(t, ctx, c, group, topic))

	// A plain error: every record of the failed batch is dead-lettered.
	topic2 := createTopic(t, ctx, c, 1)
	require.NoError(t, c.Publish(ctx, &stream.Record{Topic: topic2, Value: []byte("a")}, &stream.Record{Topic: topic2, Value: []byte("b")}))
	var attempts atomic.Int64
	run = startHandler(ctx, func(ctx context.Context) error {
		return stream.HandleBatch(ctx, c, unique(t, "g"), []string{topic2}, func(ctx context.Context, batch []*stream.Record) error {
			attempts.Add(1)
			return errors.New("all bad")
		}, &stream.HandlerOptions{Group: stream.GroupOptions{Reset: stream.ResetEarliest}, MaxAttempts: 2, Backoff: noBackoff})
	})
	waitFor(t, "both dead-lettered", func() bool { return countRecords(ctx, c, topic2+stream.DeadLetterSuffix, 0) == 2 })
	require.NoError(t, run.stop(t))
	require.Equal(t, int64(0), attempts.Load()%2, "each batch tried MaxAttempts times")

	// The last record at fault, without a dead letter: the records before
	// it are committed, HandleBatch stops with a *HandlerError for it, and
	// OnError saw the whole batch.
	topic3 := createTopic(t, ctx, c, 1)
	publishNumbers(t, ctx, c, topic3, 3)
	group3 := unique(t, "g")
	var sizes []int
	err := stream.HandleBatch(ctx, c, group3, []string{topic3}, func(ctx context.Context, batch []*stream.Record) error {
		for i, r := range batch {
			if string(r.Value) == "2" {
				return &stream.BatchError{Index: i, Err: errors.New("last")}
			}
		}
		return nil
	}, &stream.HandlerOptions{Group: stream.GroupOptions{Reset: stream.ResetEarliest}, MaxAttempts: 1,
		DeadLetter: func(*stream.Record) string { return "" },
		OnError:    func(recs []*stream.Record, _ int, _ error) { sizes = append(sizes, len(recs)) }})
	var he *stream.HandlerError
	require.ErrorAs(t, err, &he)
	require.Equal(t, int64(2), he.Offset)
	require.Equal(t, "last", he.Err.Error())
	require.NotEmpty(t, sizes)
	require.Equal(t, map[stream.TopicPartition]int64{{Topic: topic3, Partition: 0}: 2},
		committedOffsets(t, ctx, c, group3, topic3))
}

// handlerConcurrency: with Concurrency 3 over 3 partitions, at most 3
// records are handled at once and never two of one partition, and each
// partition's records are handled in offset order.
func (s *suite) handlerConcurrency(t *testing.T) {
	ctx := testContext(t)
	c := s.manualClient(t)
	const parts, per = 3, 20
	topic := createTopic(t, ctx, c, parts)
	publishSpread(t, ctx, c, topic, parts, per, "c")
	h := newHandled()
	var inFlight, maxInFlight atomic.Int64
	var perPartition [parts]atomic.Int64
	run := startHandler(ctx, func(ctx context.Context) error {
		return stream.Handle(ctx, c, unique(t, "g"), []string{topic}, func(ctx context.Context, r *stream.Record) error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			if perPartition[r.Partition].Add(1) != 1 {
				return stream.Permanent(errors.New("two records of a partition at once"))
			}
			defer perPartition[r.Partition].Add(-1)
			h.done(r)
			return nil
		}, &stream.HandlerOptions{Group: stream.GroupOptions{Reset: stream.ResetEarliest}, Concurrency: parts,
			DeadLetter: func(*stream.Record) string { return "" }})
	})
	waitFor(t, "every record handled", func() bool { return h.count() >= parts*per })
	require.NoError(t, run.stop(t))
	require.LessOrEqual(t, maxInFlight.Load(), int64(parts))
	for p := range int32(parts) {
		var want []string
		for i := range per {
			want = append(want, fmt.Sprintf("c-%d-%d", p, i))
		}
		require.Equal(t, want, h.partition(p), "partition %d in offset order", p)
	}
}

// handlerErrors: invalid options and a closed client are typed errors.
func (s *suite) handlerErrors(t *testing.T) {
	ctx := testContext(t)
	c := s.client(t)
	topic := createTopic(t, ctx, c, 1)
	nop := func(context.Context, *stream.Record) error { return nil }
	err := stream.Handle(ctx, c, unique(t, "g"), []string{topic}, nop, &stream.HandlerOptions{Group: stream.GroupOptions{AutoCommit: true}})
	require.ErrorIs(t, err, stream.ErrInvalidConfig)
	err = stream.Handle(ctx, c, unique(t, "g"), []string{topic}, nop, &stream.HandlerOptions{MaxAttempts: -1})
	require.ErrorIs(t, err, stream.ErrInvalidConfig)
	err = stream.Handle(ctx, c, unique(t, "g"), []string{topic}, nil, nil)
	require.ErrorIs(t, err, stream.ErrInvalidArgument)
	err = stream.Handle(ctx, c, "", []string{topic}, nop, nil)
	require.ErrorIs(t, err, stream.ErrInvalidGroup)
	require.NoError(t, c.Close())
	err = stream.Handle(ctx, c, unique(t, "g"), []string{topic}, nop, nil)
	require.ErrorIs(t, err, stream.ErrClosed)
}
