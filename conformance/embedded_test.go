package conformance_test

import (
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/conformance"
	"github.com/stretchr/testify/require"
)

// TestEmbedded runs the shared behaviour tests against the embedded Broker,
// a new one in a temporary directory for each subtest. KafkaPartitioner
// places keyed records as a Kafka cluster's default partitioner does, which
// the keyed-placement test checks; ManualPartitioner is the Manual
// placement.
func TestEmbedded(t *testing.T) {
	conformance.Run(t, func(t *testing.T, p conformance.Placement) stream.Client {
		var part stream.Partitioner = stream.KafkaPartitioner{}
		if p == conformance.Manual {
			part = stream.ManualPartitioner{}
		}
		b, err := stream.Open(t.TempDir(), &stream.Options{Sync: stream.SyncNever, Partitioner: part})
		require.NoError(t, err)
		return b.Client()
	})
}
