package stream

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// Publish to a compressing topic allocates nothing in steady state: the
// compressed batches go through pooled scratch, and the codecs' encoders
// are pooled (batch package). Under the race detector sync.Pool drops
// what it is given at random, so the count means nothing there.
func TestCompressionPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	settings := []Compression{{Codec: CodecGzip}, {Codec: CodecGzip, Level: 9}, {Codec: CodecSnappy}, {Codec: CodecLZ4},
		{Codec: CodecLZ4, Level: 10}, {Codec: CodecZstd}, {Codec: CodecZstd, Level: 19}}
	for _, cc := range settings {
		t.Run(cc.String(), func(t *testing.T) {
			b := openCompressionBroker(t, "")
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, Compression: cc}))
			// Values past snappy's and lz4's 32 and 64 KiB blocks too.
			big := bytes.Repeat([]byte("steady state "), 12_000)
			one := &Record{Topic: "t", Key: []byte("k"), Value: big}
			many := []*Record{{Topic: "t", Value: big}, {Topic: "t", Partition: 1, Value: []byte("b")},
				{Topic: "t", Value: []byte("c")}, {Topic: "t", Partition: 1, Value: big}}
			var failed error
			ones, manys := 0, 0
			publish := func(recs ...*Record) func() {
				return func() {
					if len(recs) == 1 {
						ones++
					} else {
						manys++
					}
					if err := b.Publish(t.Context(), recs...); err != nil {
						failed = err
					}
				}
			}
			for range 5 { // warm the pools and scratch
				publish(one)()
				publish(many...)()
			}
			require.Zero(t, testing.AllocsPerRun(50, publish(one)), "allocations per Publish of one record")
			require.Zero(t, testing.AllocsPerRun(50, publish(many...)), "allocations per Publish of many")
			require.NoError(t, failed)
			require.Equal(t, []int64{int64(ones + 2*manys), int64(2 * manys)}, endOffsets(t, b, "t"), "every record written")
		})
	}
}
