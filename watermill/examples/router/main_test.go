package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream"
)

// TestRun runs the example and checks its output, then reads the topics
// it left behind: every order billed once, the broken one also on the
// poison topic with the reason, and the group's commits.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	require.NoError(t, run(ctx, dir, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// All orders are alice's: one partition, so the same every run.
	require.Len(t, lines, 8, out.String())
	require.Equal(t, "billed order-1 (customer alice", lines[0][:len("billed order-1 (customer alice")])
	require.Equal(t, []string{
		"order-2 flaky: attempt 1 failed, retrying",
	}, lines[1:2])
	require.True(t, strings.HasPrefix(lines[2], "billed order-2 flaky (customer alice"), lines[2])
	require.True(t, strings.HasPrefix(lines[3], "billed order-3 (customer alice"), lines[3])
	require.Equal(t, []string{ // MaxRetries 2: three attempts
		"order-4 broken: attempt 1 failed",
		"order-4 broken: attempt 2 failed",
		"order-4 broken: attempt 3 failed",
		"poison queue: order-4 broken from handler bill: card declined",
	}, lines[4:])

	b, err := stream.Open(dir, nil)
	require.NoError(t, err)
	defer b.Close()
	var poisoned []string
	for part := range int32(3) {
		rd, err := b.NewReader(poisonTopic, part, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		for r, err := range rd.All(ctx) {
			require.NoError(t, err)
			poisoned = append(poisoned, string(r.Value))
			headers := map[string]string{}
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			require.Equal(t, "card declined", headers[middleware.ReasonForPoisonedKey])
			require.Equal(t, ordersTopic, headers[middleware.PoisonedTopicKey])
		}
		require.NoError(t, rd.Close())
	}
	require.Equal(t, []string{"order-4 broken"}, poisoned)
	// The billing group committed the orders (one partition): a restart
	// bills none of the first three again. The last one's Ack comes from
	// the router after the poison handler may already have reported it,
	// and Router.Close closes the subscriber without waiting for it, so it
	// may not be committed: a restart would then deliver it again
	// (at-least-once), as with Watermill's Kafka subscriber.
	c, err := b.Subscribe("billing", []string{ordersTopic}, nil)
	require.NoError(t, err)
	defer c.Close()
	committed, err := c.Committed(ctx)
	require.NoError(t, err)
	var total int64
	for tp, off := range committed {
		if tp.Topic == ordersTopic {
			total += off
		}
	}
	require.Contains(t, []int64{int64(len(orders)) - 1, int64(len(orders))}, total)
}
