package streamtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

// Forward is the code under test of the package doc's worked example: it
// polls once, publishes an invoice per order, then commits.
func Forward(ctx context.Context, in streamtest.PollCommitter, out streamtest.Publisher) error {
	recs, err := in.Poll(ctx)
	if err != nil {
		return err
	}
	var invoices []*stream.Record
	for _, r := range recs {
		invoices = append(invoices, &stream.Record{Topic: "invoices",
			Key: r.Key, Value: append([]byte("invoice for "), r.Value...)})
	}
	if err := out.Publish(ctx, invoices...); err != nil {
		return err // not committed: the orders come again
	}
	return in.Commit(ctx)
}

// TestForward is the package doc's worked example, verbatim.
func TestForward(t *testing.T) {
	streamtest.CheckLeaks(t) // first: its check runs after every other cleanup
	b := streamtest.NewBroker(t,
		streamtest.WithTopic("orders", stream.TopicConfig{Partitions: 2}),
		streamtest.WithTopic("invoices", stream.TopicConfig{}))
	streamtest.PublishKeyed(t, b, "orders", "alice", "book", "pen")

	c := streamtest.Subscribe(t, b, "billing", nil, "orders")
	out := &streamtest.FaultyPublisher{Publisher: b}
	out.FailNext(errors.New("disk full"))

	// The first attempt fails to publish, so nothing is committed...
	require.Error(t, Forward(t.Context(), c, out))
	require.Empty(t, streamtest.Committed(t, b, "billing"))
	require.Empty(t, streamtest.Records(t, b, "invoices"))

	// ...and after a restart of the consumer the orders come again. (The
	// same consumer would not return them again: its position moved
	// past them. Code that retries must keep the batch, or Seek back.)
	c.Close()
	c = streamtest.Subscribe(t, b, "billing", nil, "orders")
	require.NoError(t, Forward(t.Context(), c, out))
	require.Equal(t, []string{"invoice for book", "invoice for pen"},
		streamtest.Values(streamtest.Records(t, b, "invoices")))
}
