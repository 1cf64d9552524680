package stream

// The Poll loop: waiting on notifications, MinBytes / MaxWait, wakeups, MaxPollRecords.

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cgPublishSized appends one record with a value of size bytes.
func cgPublishSized(t testing.TB, b *Broker, topic string, p int32, size int) {
	t.Helper()
	r := &Record{Topic: topic, Partition: p, Value: make([]byte, size)}
	require.NoError(t, b.Publish(context.Background(), r))
	require.Equal(t, p, r.Partition, "cgPublishSized needs a broker with ManualPartitioner")
}

// ---------------------------------------------------------------------
// Poll, positions, MaxPollRecords, MinBytes / MaxWait

func TestPollReturnsEveryRecordInOrderWithinMaxPollRecords(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 3}))
	for p := int32(0); p < 3; p++ {
		for range 5 {
			cgPublish(t, b, "t", p, 10)
		}
	}
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 7})
	require.Empty(t, c.Assignment(), "partitions are assigned at the first Poll")
	_, err := c.Position(cgTP("t", 0))
	require.ErrorIs(t, err, ErrNotAssigned)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var all []*Record
	for len(all) < 150 {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		require.LessOrEqual(t, len(recs), 7, "MaxPollRecords caps one Poll")
		for _, r := range recs {
			all = append(all, r.Clone())
		}
	}
	cgCheckValues(t, all)
	for p := int32(0); p < 3; p++ {
		require.Equal(t, tbRange(0, 50), cgOffsets(all, p), "partition %d: ascending, no gaps, no duplicates", p)
		pos, err := c.Position(cgTP("t", p))
		require.NoError(t, err)
		require.Equal(t, int64(50), pos, "position = last returned + 1")
	}
	require.Equal(t, cgTPs("t", 0, 1, 2), c.Assignment())

	// Nothing left: Poll blocks until its context ends, never returning an
	// empty result.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	recs, err := c.Poll(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, recs)
}

// Poll waits for records with notifications: inside a bubble, a Poll with
// nothing to read is durably blocked, and a Publish wakes it without any
// (virtual) time passing, which a sleep loop could not do.
func TestPollBlocksOnNotificationNotSleepLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
		c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
		type result struct {
			recs []*Record
			err  error
		}
		res := make(chan result, 1)
		poll := func() {
			recs, err := c.Poll(t.Context())
			var clones []*Record
			for _, r := range recs {
				clones = append(clones, r.Clone())
			}
			res <- result{clones, err}
		}
		go poll()
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Poll returned with nothing to read: %v", r.err)
		default:
		}
		start := time.Now()
		cgPublish(t, b, "t", 1, 1)
		synctest.Wait()
		select {
		case r := <-res:
			require.NoError(t, r.err)
			require.Len(t, r.recs, 1)
			require.Equal(t, cgValue("t", 1, 0), string(r.recs[0].Value))
		default:
			t.Fatal("a Publish did not wake the blocked Poll")
		}
		require.Zero(t, time.Since(start), "woken by a notification, not a timer")

		// Same for the other partition, after a first fetch.
		go poll()
		synctest.Wait()
		cgPublish(t, b, "t", 0, 2)
		synctest.Wait()
		select {
		case r := <-res:
			require.NoError(t, r.err)
			require.Len(t, r.recs, 2)
		default:
			t.Fatal("a Publish did not wake the blocked Poll")
		}
		require.Zero(t, time.Since(start))
	})
}

func TestPollMinBytesMaxWait(t *testing.T) {
	type result struct {
		n   int
		err error
		at  time.Duration
	}
	// pollAsync polls in a goroutine and reports how many records came
	// back and how much (virtual) time it took.
	pollAsync := func(t *testing.T, c *Consumer) chan result {
		res := make(chan result, 1)
		start := time.Now()
		go func() {
			recs, err := c.Poll(t.Context())
			res <- result{len(recs), err, time.Since(start)}
		}()
		return res
	}
	open := func(t *testing.T, o ConsumerOptions) (*Broker, *Consumer) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		o.Reset = ResetEarliest
		return b, cgSubscribe(t, b, "g", []string{"t"}, &o)
	}

	t.Run("waits up to MaxWait for MinBytes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 1000, MaxWait: 2 * time.Second})
			cgPublishSized(t, b, "t", 0, 10)
			r := <-pollAsync(t, c)
			require.NoError(t, r.err)
			require.Equal(t, 1, r.n)
			require.Equal(t, 2*time.Second, r.at, "returns what it has once MaxWait passed")
		})
	})
	t.Run("returns at once when MinBytes are there", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 100, MaxWait: time.Hour})
			cgPublishSized(t, b, "t", 0, 200)
			r := <-pollAsync(t, c)
			require.NoError(t, r.err)
			require.Equal(t, 1, r.n)
			require.Zero(t, r.at)
		})
	})
	t.Run("MinBytes counts records gathered across fetches", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 100, MaxWait: time.Hour})
			res := pollAsync(t, c)
			cgPublishSized(t, b, "t", 0, 60)
			synctest.Wait()
			select {
			case r := <-res:
				t.Fatalf("returned %d records before MinBytes or MaxWait: %v", r.n, r.err)
			default:
			}
			cgPublishSized(t, b, "t", 0, 60)
			synctest.Wait()
			select {
			case r := <-res:
				require.NoError(t, r.err)
				require.Equal(t, 2, r.n)
				require.Zero(t, r.at, "120 bytes >= MinBytes: no wait for MaxWait")
			default:
				c.Wakeup()
				t.Fatal("Poll still waits although 120 bytes >= MinBytes were gathered")
			}
		})
	})
	t.Run("MaxPollRecords ends the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c := open(t, ConsumerOptions{MinBytes: 1 << 20, MaxWait: time.Hour, MaxPollRecords: 5})
			cgPublish(t, b, "t", 0, 8)
			r := <-pollAsync(t, c)
			require.NoError(t, r.err)
			require.Equal(t, 5, r.n)
			require.Zero(t, r.at)
		})
	})
	t.Run("no records: MaxWait never makes Poll return empty", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, c := open(t, ConsumerOptions{MaxWait: 10 * time.Millisecond})
			res := pollAsync(t, c)
			time.Sleep(time.Hour)
			synctest.Wait()
			select {
			case r := <-res:
				t.Fatalf("Poll returned %d records, %v, with nothing to read", r.n, r.err)
			default:
			}
			c.Wakeup()
			r := <-res
			require.ErrorIs(t, r.err, ErrWakeup)
			require.Zero(t, r.n)
		})
	})
}

// Records a Poll gathered while waiting for MinBytes but did not return
// are not consumed: a Poll that ends with an error (Wakeup, its context,
// Close) leaves the position at the first of them, and no commit, explicit
// or automatic, covers them.
func TestPollGatheredRecordsAreNotLostWhenPollFails(t *testing.T) {
	// start subscribes with a MinBytes no single record reaches, publishes
	// one small record and starts a Poll that gathers it and waits.
	start := func(t *testing.T, o ConsumerOptions) (*Broker, *Consumer, context.CancelFunc, chan error) {
		b := openBroker(t, "", nil)
		require.NoError(t, b.CreateTopic("t", TopicConfig{}))
		o.Reset, o.MinBytes, o.MaxWait = ResetEarliest, 1000, time.Hour
		c := cgSubscribe(t, b, "g", []string{"t"}, &o)
		cgPublish(t, b, "t", 0, 1)
		ctx, cancel := context.WithCancel(t.Context())
		res := make(chan error, 1)
		go func() {
			recs, err := c.Poll(ctx)
			if err == nil {
				err = fmt.Errorf("Poll returned %d records early", len(recs))
			}
			res <- err
		}()
		synctest.Wait() // it has the record and waits for more bytes
		return b, c, cancel, res
	}
	// rest checks that the next Poll returns offset 0 first.
	rest := func(t *testing.T, b *Broker, c *Consumer) {
		pos, err := c.Position(cgTP("t", 0))
		require.NoError(t, err)
		require.Zero(t, pos, "the gathered record was never returned: the position must not pass it")
		cgPublishSized(t, b, "t", 0, 2000)
		recs := cgPollN(t, c, 2)
		require.Equal(t, []int64{0, 1}, cgOffsets(recs, 0))
	}

	t.Run("wakeup", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, _, res := start(t, ConsumerOptions{})
			c.Wakeup()
			require.ErrorIs(t, <-res, ErrWakeup)
			rest(t, b, c)
		})
	})
	t.Run("context canceled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, cancel, res := start(t, ConsumerOptions{})
			cancel()
			require.ErrorIs(t, <-res, context.Canceled)
			rest(t, b, c)
		})
	})
	t.Run("close with auto-commit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, _, res := start(t, ConsumerOptions{AutoCommit: true})
			require.NoError(t, c.Close())
			require.ErrorIs(t, <-res, ErrClosed)
			require.Equal(t, int64(0), cgCommitted(t, b, "g", cgTP("t", 0)),
				"Close commits the position after the records Poll returned, not after ones it dropped")
		})
	})
	t.Run("auto-commit while gathering", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, c, _, res := start(t, ConsumerOptions{AutoCommit: true, AutoCommitEvery: time.Second})
			time.Sleep(2 * time.Second)
			cgPublish(t, b, "t", 0, 1) // wakes the Poll: an auto-commit is due
			synctest.Wait()
			require.Equal(t, int64(-1), cgCommitted(t, b, "g", cgTP("t", 0)),
				"auto-commit covers only records already returned: none yet")
			c.Wakeup()
			<-res
		})
	})
}

func TestPollWakeup(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	cgPublish(t, b, "t", 0, 3)
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	ctx := t.Context()

	// A Wakeup before Poll is kept for it; several coalesce.
	c.Wakeup()
	c.Wakeup()
	recs, err := c.Poll(ctx)
	require.ErrorIs(t, err, ErrWakeup)
	require.Empty(t, recs)
	recs = cgPollN(t, c, 3)
	require.Equal(t, []int64{0, 1, 2}, cgOffsets(recs, 0), "a wakeup consumes nothing")

	// A blocked Poll returns ErrWakeup.
	res := make(chan error, 1)
	go func() {
		_, err := c.Poll(ctx)
		res <- err
	}()
	require.Eventually(t, func() bool { return c.state.Load() == consumerPolling }, 10*time.Second, time.Millisecond)
	c.Wakeup()
	require.ErrorIs(t, tbRecv(t, res), ErrWakeup)

	// And the consumer goes on.
	cgPublish(t, b, "t", 0, 1)
	recs = cgPollN(t, c, 1)
	require.Equal(t, []int64{3}, cgOffsets(recs, 0))
}

func TestPollFromTwoGoroutinesIsConcurrentUse(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	res := make(chan error, 1)
	go func() {
		_, err := c.Poll(t.Context())
		res <- err
	}()
	require.Eventually(t, func() bool { return c.state.Load() == consumerPolling }, 10*time.Second, time.Millisecond)
	_, err := c.Poll(t.Context())
	require.ErrorIs(t, err, ErrConcurrentUse)
	select {
	case err := <-res:
		t.Fatalf("the first Poll ended: %v", err)
	default:
	}
	c.Wakeup()
	require.ErrorIs(t, tbRecv(t, res), ErrWakeup)
	cgPublish(t, b, "t", 0, 1)
	require.Len(t, cgPollN(t, c, 1), 1, "the consumer works on after the refused call")
}

// A member blocked in Poll over many partitions wakes for a record in any
// of them, and Close leaves no registration behind.
func TestPollWakesForAnyOfManyPartitions(t *testing.T) {
	b := openBroker(t, "", nil)
	const parts = 12
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts}))
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetLatest})
	require.NoError(t, err)
	for _, p := range []int32{parts - 1, 0, 5} { // the first Poll joins, then parks
		done := make(chan []*Record)
		go func() {
			recs, err := c.Poll(t.Context())
			assert.NoError(t, err)
			done <- recs
		}()
		_, part, err := b.partitionLog("t", p)
		require.NoError(t, err)
		require.Eventually(t, func() bool { // parked, registered with every partition
			return part.Bells() == 1
		}, 10*time.Second, time.Millisecond)
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Partition: p, Value: []byte("v")}))
		recs := <-done
		require.Len(t, recs, 1)
		require.Equal(t, p, recs[0].Partition)
	}
	require.NoError(t, c.Close())
	for p := range int32(parts) {
		_, part, err := b.partitionLog("t", p)
		require.NoError(t, err)
		require.Zero(t, part.Bells(), "partition %d", p)
	}
}
