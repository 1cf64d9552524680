package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSameOutputOnBothBackends runs the program on the embedded broker and
// on an in-process Kafka cluster and compares what it printed.
func TestSameOutputOnBothBackends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	outputs := map[string]string{}
	for _, backend := range []string{"embedded", "kafka"} {
		dir := ""
		if backend == "embedded" {
			dir = t.TempDir()
		}
		c, cleanup, err := newClient(ctx, backend, "", dir)
		require.NoError(t, err)
		var out bytes.Buffer
		err = run(ctx, c, &out)
		cleanup()
		require.NoError(t, err, "backend %s; output so far:\n%s", backend, out.String())
		outputs[backend] = out.String()
	}
	require.Equal(t, outputs["embedded"], outputs["kafka"])

	out := outputs["embedded"]
	t.Log("\n" + out)
	require.Equal(t, 12, strings.Count(out, " customer="), "every order published")
	billing := out[strings.Index(out, "== billing group"):strings.Index(out, "== replay")]
	require.Equal(t, 12, strings.Count(billing, "order-"), "every order billed once")
	require.Contains(t, out, "billing resumed with order-13")
	require.Equal(t, 1, strings.Count(out, "billing resumed"), "the new member saw only the new order")

	_, _, err := newClient(ctx, "nats", "", "")
	require.Error(t, err)
}
