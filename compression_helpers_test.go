package stream

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/segment"
)

// Helpers of the compression tests: what is on disk, and what reads give
// back.

// compressionNow is the clock of the compression tests' brokers.
var compressionNow = time.UnixMilli(1_750_000_000_000)

// openCompressionBroker opens a broker in dir (a new one for "") with a
// fixed clock and the manual partitioner, so records say their partition.
func openCompressionBroker(t *testing.T, dir string) *Broker {
	t.Helper()
	return openBroker(t, dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{},
		Now: func() time.Time { return compressionNow }})
}

// diskBatches reads a partition's segment files straight from disk and
// returns their batches in order, each checked whole (batch.Parse: the
// CRC over the stored bytes). What follows the last batch of a file must be
// the zeros of its preallocated tail.
func diskBatches(t *testing.T, b *Broker, topic string, partition int32) []batch.Batch {
	t.Helper()
	dir := filepath.Join(b.dir, topicsDir, topic, strconv.Itoa(int(partition)))
	files, err := filepath.Glob(filepath.Join(dir, "*"+segment.LogSuffix))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no segment in %s", dir)
	var out []batch.Batch
	for _, f := range files { // 20-digit names: Glob's order is offset order
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for len(data) >= batch.HeaderSize && !isZeros(data[:batch.HeaderSize]) {
			bt, err := batch.Parse(data)
			require.NoError(t, err, "%s at %d", f, len(out))
			out = append(out, bt)
			data = data[len(bt):]
		}
		require.True(t, isZeros(data), "%s: %d bytes after the last batch are not its preallocated tail", f, len(data))
	}
	return out
}

func isZeros(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

// codecsOf returns the codec of each batch.
func codecsOf(bs []batch.Batch) []batch.Codec {
	out := make([]batch.Codec, len(bs))
	for i, b := range bs {
		out[i] = b.Codec()
	}
	return out
}

// storedCodecs returns the codec of each stored batch of a partition.
func storedCodecs(t *testing.T, b *Broker, topic string, partition int32) []batch.Codec {
	t.Helper()
	return codecsOf(diskBatches(t, b, topic, partition))
}

// storedRec is a record as a test compares it: content and position, copied
// out of whatever memory it came in.
type storedRec struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   string
	TS        int64
}

func storedRecOf(r *Record) storedRec {
	var h bytes.Buffer
	for _, x := range r.Headers {
		fmt.Fprintf(&h, "%q=%q;", x.Key, x.Value)
	}
	return storedRec{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value),
		Headers: h.String(), TS: r.Timestamp.UnixMilli()}
}

func storedRecsOf(rs []*Record) []storedRec {
	out := make([]storedRec, len(rs))
	for i, r := range rs {
		out[i] = storedRecOf(r)
	}
	return out
}

// readBack reads a partition from the start with a Reader.
func readBack(t *testing.T, b *Broker, topic string, partition int32) []storedRec {
	t.Helper()
	r, err := b.NewReader(topic, partition, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	var out []storedRec
	for got, err := range r.All(t.Context()) {
		require.NoError(t, err)
		out = append(out, storedRecOf(got))
	}
	return out
}

// consumeBack reads n records of topic through a new consumer group, by
// partition in offset order.
func consumeBack(t *testing.T, b *Broker, topic string, n int) map[int32][]storedRec {
	t.Helper()
	c, err := b.Subscribe("g-"+topic+strconv.Itoa(rand.IntN(1<<30)), []string{topic}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := map[int32][]storedRec{}
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		for _, r := range recs {
			out[r.Partition] = append(out[r.Partition], storedRecOf(r))
		}
		got += len(recs)
	}
	return out
}

// storedByPartition groups records by partition, in the order given.
func storedByPartition(rs []storedRec) map[int32][]storedRec {
	out := map[int32][]storedRec{}
	for _, r := range rs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

// testRecords makes n records for topic over partitions: keys, values of
// every compressibility (repetitive text, random bytes, empty), headers,
// and timestamps of their own or none.
func testRecords(topic string, partitions, n int, seed uint64) []*Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]*Record, n)
	for i := range out {
		r := &Record{Topic: topic, Partition: int32(i % partitions)}
		switch i % 4 {
		case 0:
			r.Value = bytes.Repeat([]byte(fmt.Sprintf("value %d ", i)), 50)
		case 1:
			r.Value = make([]byte, 300)
			for j := range r.Value {
				r.Value[j] = byte(rng.Uint32())
			}
		case 2:
			r.Value = nil
		case 3:
			r.Value = []byte(fmt.Sprintf("short %d", i))
		}
		if i%3 != 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", i))
		}
		if i%5 == 0 {
			r.Headers = []Header{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: "empty"}}
		}
		if i%2 == 0 {
			r.Timestamp = compressionNow.Add(-time.Duration(i) * time.Second)
		}
		out[i] = r
	}
	return out
}

// incompressible returns n random bytes.
func incompressible(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// endOffsets returns each partition's end offset.
func endOffsets(t *testing.T, b *Broker, topic string) []int64 {
	t.Helper()
	info := describe(t, b, topic)
	out := make([]int64, len(info.Partitions))
	for i, p := range info.Partitions {
		out[i] = p.EndOffset
	}
	return out
}

// allCodecs are the codecs that compress.
var allCodecs = []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// produce publishes recs through p, flushes, and returns each record's
// outcome, in the order given.
func produce(t *testing.T, p *Producer, recs []*Record) []error {
	t.Helper()
	errs := make([]error, len(recs))
	for i, r := range recs {
		p.Publish(t.Context(), r, func(_ *Record, err error) { errs[i] = err })
	}
	require.NoError(t, p.Flush(t.Context()))
	return errs
}

// mustProduce is produce where every record must be written.
func mustProduce(t *testing.T, p *Producer, recs []*Record) {
	t.Helper()
	for i, err := range produce(t, p, recs) {
		require.NoError(t, err, "record %d", i)
	}
}
