// Package streamtest helps unit-test code that uses package stream: a real
// broker per test, in t.TempDir(), with fast defaults, plus helpers to
// publish, consume and inspect in one line, wrappers that inject faults into
// the code under test, crash and restart simulation, and a goroutine leak
// check.
//
// There is no mock: the broker is the real one, with the same partitions,
// offsets, consumer groups and commits as in production, kept on disk in
// the test's temporary directory. Under streamtest's defaults nothing is
// fsynced: a broker's life (open, create a topic, publish, read, close)
// takes about half a millisecond, waiting on no disk.
//
// # A worked example
//
// Suppose the code under test forwards paid orders to an "invoices" topic
// and commits what it consumed:
//
//	// Forward polls once, publishes an invoice per order, then commits.
//	func Forward(ctx context.Context, in streamtest.PollCommitter, out streamtest.Publisher) error {
//		recs, err := in.Poll(ctx)
//		if err != nil {
//			return err
//		}
//		var invoices []*stream.Record
//		for _, r := range recs {
//			invoices = append(invoices, &stream.Record{Topic: "invoices",
//				Key: r.Key, Value: append([]byte("invoice for "), r.Value...)})
//		}
//		if err := out.Publish(ctx, invoices...); err != nil {
//			return err // not committed: the orders come again
//		}
//		return in.Commit(ctx)
//	}
//
// (It would declare its own small interfaces; streamtest.PollCommitter and
// streamtest.Publisher have the same method sets, so a *stream.Consumer and
// a *stream.Broker satisfy them in production.) A test:
//
//	func TestForward(t *testing.T) {
//		streamtest.CheckLeaks(t) // first: its check runs after every other cleanup
//		b := streamtest.NewBroker(t,
//			streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 2}),
//			streamtest.WithTopic("invoices", stream.TopicConfig{}))
//		streamtest.PublishKeyed(t, b, "orders", "alice", "book", "pen")
//
//		c := streamtest.Subscribe(t, b, "billing", nil, "orders")
//		out := &streamtest.FaultyPublisher{Publisher: b}
//		out.FailNext(errors.New("disk full"))
//
//		// The first attempt fails to publish, so nothing is committed...
//		require.Error(t, Forward(t.Context(), c, out))
//		require.Empty(t, streamtest.Committed(t, b, "billing"))
//		require.Empty(t, streamtest.Records(t, b, "invoices"))
//
//		// ...and after a restart of the consumer the orders come again. (The
//		// same consumer would not return them again: its position moved
//		// past them. Code that retries must keep the batch, or Seek back.)
//		c.Close()
//		c = streamtest.Subscribe(t, b, "billing", nil, "orders")
//		require.NoError(t, Forward(t.Context(), c, out))
//		require.Equal(t, []string{"invoice for book", "invoice for pen"},
//			streamtest.Values(streamtest.Records(t, b, "invoices")))
//	}
//
// The broker, the consumers from Subscribe and everything else streamtest
// opens are closed by t.Cleanup.
//
// # The helpers
//
// NewBroker opens a broker (options: WithTopic, WithOptions, WithDir);
// CreateTopic and TopicConfig give further topics the same small segments;
// Dir returns a broker's directory.
// Publish, PublishKeyed, PublishBytes and PublishRecords publish and
// return the records with their offsets. Consume reads n records as a group
// member and commits exactly those; Records reads a whole topic with
// Readers, without a group; Committed returns a group's committed offsets;
// Values turns records into strings for require.Equal. Subscribe and
// ConsumerOptions make consumers with test-friendly settings (earliest
// offset reset, short timeouts).
//
// Helpers fail the test with t.FailNow on error, so like require they
// must be called from the goroutine running the test.
//
// # Faults
//
// The broker is not faulty on demand; the code under test's view of it
// can be. FaultyPublisher, FaultyPoller, FaultyCommitter and FaultyConsumer
// wrap the broker or a consumer behind the small interfaces Publisher,
// Poller, Committer and PollCommitter, and fail or delay chosen calls:
// FailNext, FailNextAfterWrite (the write happened, its acknowledgement was
// lost), DelayPoll (the code behaves as if slow between polls, which gets
// it evicted past MaxPollInterval), FailNextCommit.
//
// Reopen closes a broker and opens its directory again (a clean restart);
// Crash copies the directory of a broker in use and opens the copy (a
// process crash: see Crash for exactly what is and is not simulated).
//
// # Virtual time
//
// Everything here works inside a testing/synctest bubble, which makes
// timeouts instant: open the broker inside the bubble, and MaxPollInterval
// evictions, static members' session timeouts, Producer lingers and
// DelayPoll happen in virtual time:
//
//	synctest.Test(t, func(t *testing.T) {
//		b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 4}))
//		...
//		time.Sleep(time.Minute) // virtual: returns at once, after every timer due meanwhile fired
//	})
//
// The broker arms timers only for work that is due (an fsync, a retention
// or offsets expiry deadline, an eviction), and a consumer waiting in Poll
// has none. So a test that waits for a record that never comes fails at
// once with synctest's "deadlock: all goroutines in bubble are blocked",
// instead of running virtual time until go test's timeout.
//
// # Leaks
//
// CheckLeaks, called first in a test, fails it if goroutines of the
// module outlive it: a Producer or Consumer never closed, a goroutine left
// blocked in Poll.
package streamtest
