package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Item 3 and 5: Kafka's Utils.murmur2 test vectors.
func TestMurmur2Vectors(t *testing.T) {
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
		"":    275646681,
	} {
		require.Equal(t, want, murmur2([]byte(key)), "murmur2(%q)", key)
	}
	require.Equal(t, murmur2([]byte{}), murmur2(nil))
}

// Items 2, 4, 5: the Java client's placement.
func TestKafkaPartitionerPlacement(t *testing.T) {
	var p KafkaPartitioner
	for _, tc := range []struct {
		key   string
		parts int
		want  int32
	}{
		{"21", 6, 0}, {"abc", 6, 3}, {"foobar", 6, 0}, {"", 6, 3},
		{"foobar", 12, 6}, {"a-little-bit-long-string", 12, 8},
	} {
		got := p.Partition(&Record{Key: []byte(tc.key)}, tc.parts)
		require.Equal(t, tc.want, got, "key %q, %d partitions", tc.key, tc.parts)
	}
	// Only a nil key is keyless.
	require.Equal(t, AnyPartition, p.Partition(&Record{}, 6))
	require.Equal(t, int32(3), p.Partition(&Record{Key: []byte{}}, 6))
	// Negative hashes are masked, never a negative partition.
	for i := 0; i < 1000; i++ {
		got := p.Partition(&Record{Key: fmt.Appendf(nil, "key-%d", i)}, 7)
		require.GreaterOrEqual(t, got, int32(0))
		require.Less(t, got, int32(7))
	}
}

// The same placement through the Producer and through Broker.Publish.
func TestKafkaPartitionerThroughProducerAndPublish(t *testing.T) {
	want := map[string]int32{"21": 0, "abc": 3, "foobar": 0, "": 3}
	b := tbOpen(t, &Options{Partitioner: KafkaPartitioner{}})
	tbCreate(t, b, "six", TopicConfig{Partitions: 6})
	tbCreate(t, b, "twelve", TopicConfig{Partitions: 12})
	ctx := context.Background()
	for key, p := range want {
		r := &Record{Topic: "six", Key: []byte(key), Value: []byte("sync")}
		require.NoError(t, b.Publish(ctx, r))
		require.Equal(t, p, r.Partition, "Publish, key %q", key)
	}
	r1 := &Record{Topic: "twelve", Key: []byte("foobar")}
	r2 := &Record{Topic: "twelve", Key: []byte("a-little-bit-long-string")}
	require.NoError(t, b.Publish(ctx, r1, r2))
	require.Equal(t, int32(6), r1.Partition)
	require.Equal(t, int32(8), r2.Partition)

	pr := mustProducer(b, &ProducerOptions{Partitioner: KafkaPartitioner{}})
	defer pr.Close()
	recs := map[string]*Record{}
	for key := range want {
		r := &Record{Topic: "six", Key: []byte(key), Value: []byte("async")}
		recs[key] = r
		pr.Publish(ctx, r, func(_ *Record, err error) { require.NoError(t, err) })
	}
	require.NoError(t, pr.Flush(ctx))
	for key, r := range recs {
		require.Equal(t, want[key], r.Partition, "Producer, key %q", key)
	}
	// And the records are really stored there.
	for p := int32(0); p < 6; p++ {
		for _, r := range tbReadAll(t, b, "six", p) {
			require.Equal(t, want[string(r.Key)], p, "key %q", r.Key)
			require.NotNil(t, r.Key)
		}
	}
}

// The scenario: the package overview's own example, keyed records
// published with default options and no Partition set, lands each record
// where HashPartitioner puts its key, through Broker.Publish (one call or
// one per record) and through a Producer, not all on partition 0.
func TestKeyedRecordsArePlacedByDefault(t *testing.T) {
	const parts = 4
	b, err := Open(t.TempDir(), nil) // the defaults, as the overview opens it
	require.NoError(t, err)
	defer b.Close()
	tbCreate(t, b, "orders", TopicConfig{Partitions: parts})
	ctx := context.Background()
	key := func(i int) []byte { return fmt.Appendf(nil, "customer-%d", i) }
	want := func(r *Record) int32 { return HashPartitioner{}.Partition(r, parts) }

	var batch []*Record
	for i := range 20 {
		r := &Record{Topic: "orders", Key: key(i), Value: []byte("v")}
		require.NoError(t, b.Publish(ctx, r))
		require.Equal(t, want(r), r.Partition, "key %q, one record a call", r.Key)
		batch = append(batch, &Record{Topic: "orders", Key: key(i), Value: []byte("batched")})
	}
	require.NoError(t, b.Publish(ctx, batch...))
	pr := mustProducer(b, nil)
	defer pr.Close()
	var async []*Record
	for i := range 20 {
		r := &Record{Topic: "orders", Key: key(i), Value: []byte("async")}
		async = append(async, r)
		pr.Publish(ctx, r, func(_ *Record, err error) { require.NoError(t, err) })
	}
	require.NoError(t, pr.Flush(ctx))
	for _, r := range append(batch, async...) {
		require.Equal(t, want(r), r.Partition, "key %q, %s", r.Key, r.Value)
	}

	ends := tbEnds(t, b, "orders")
	require.Equal(t, int64(60), tbSum(ends))
	for p, end := range ends {
		require.Positive(t, end, "20 keys reach every one of 4 partitions: %v", ends)
		for _, r := range tbReadAll(t, b, "orders", int32(p)) {
			require.Equal(t, int32(p), want(r), "key %q stored on partition %d", r.Key, p)
		}
	}
}

// A Partition set on a record is ignored unless the partitioner is
// ManualPartitioner: every other partitioner places the record, through
// Broker.Publish and through a Producer, and Partition is overwritten with
// where it went.
func TestPartitionIgnoredUnlessManual(t *testing.T) {
	const parts = 6
	ctx := context.Background()
	for _, part := range []Partitioner{nil, HashPartitioner{}, KafkaPartitioner{}, tbFixedPartitioner(1)} {
		t.Run(fmt.Sprintf("%T", part), func(t *testing.T) {
			b := tbOpen(t, &Options{Partitioner: part})
			tbCreate(t, b, "t", TopicConfig{Partitions: parts})
			pr := mustProducer(b, &ProducerOptions{Partitioner: part})
			defer pr.Close()
			placer := part
			if placer == nil {
				placer = HashPartitioner{}
			}
			key := []byte("21")
			want := placer.Partition(&Record{Key: key}, parts)
			named := (want + 1) % parts
			for _, p := range []int32{named, 99, -2} {
				r := &Record{Topic: "t", Partition: p, Key: key}
				require.NoError(t, b.Publish(ctx, r), "partition %d", p)
				require.Equal(t, want, r.Partition, "Publish: partition %d", p)
				pr.Publish(ctx, &Record{Topic: "t", Partition: p, Key: key}, func(r *Record, err error) {
					require.NoError(t, err)
					require.Equal(t, want, r.Partition, "Producer")
				})
			}
			require.NoError(t, pr.Flush(ctx))
			ends := make([]int64, parts)
			ends[want] = 6
			require.Equal(t, ends, tbEnds(t, b, "t"))
		})
	}
	t.Run("RoundRobin", func(t *testing.T) {
		b := tbOpen(t, &Options{Partitioner: &RoundRobinPartitioner{}})
		tbCreate(t, b, "t", TopicConfig{Partitions: 3})
		var got []int32
		for range 6 {
			r := &Record{Topic: "t", Partition: 2}
			require.NoError(t, b.Publish(ctx, r))
			got = append(got, r.Partition)
		}
		require.Equal(t, []int32{0, 1, 2, 0, 1, 2}, got, "every record reaches the partitioner")
	})
}

// ManualPartitioner, on a Broker or on one Producer, places each record on
// the partition it names (Kafka's explicit partition wins over the key); a
// partition the topic lacks fails with ErrInvalidPartition and writes
// nothing.
func TestManualPartitionerHonoursPartition(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, b *Broker, publish func(*Record) error) {
		t.Helper()
		r := &Record{Topic: "t", Partition: 4, Key: []byte("21")} // "21" hashes to 0 with murmur2
		require.NoError(t, publish(r))
		require.Equal(t, int32(4), r.Partition)
		for _, p := range []int32{6, 99, -2} {
			require.ErrorIs(t, publish(&Record{Topic: "t", Partition: p}), ErrInvalidPartition, "partition %d", p)
		}
		require.Equal(t, []int64{0, 0, 0, 0, 1, 0}, tbEnds(t, b, "t"))
	}
	t.Run("Broker", func(t *testing.T) {
		b := tbOpen(t, &Options{Partitioner: ManualPartitioner{}})
		tbCreate(t, b, "t", TopicConfig{Partitions: 6})
		check(t, b, func(r *Record) error { return b.Publish(ctx, r) })
		// In a call of several records, the bad one fails the call whole.
		err := b.Publish(ctx, &Record{Topic: "t", Partition: 1}, &Record{Topic: "t", Partition: 6})
		require.ErrorIs(t, err, ErrInvalidPartition)
		require.Equal(t, []int64{0, 0, 0, 0, 1, 0}, tbEnds(t, b, "t"))
		// The Broker's partitioner is not a Producer's: a default Producer
		// places by key.
		pr := mustProducer(b, nil)
		defer pr.Close()
		r := &Record{Topic: "t", Partition: 5, Key: []byte("21")}
		pr.Publish(ctx, r, func(_ *Record, err error) { require.NoError(t, err) })
		require.NoError(t, pr.Flush(ctx))
		require.Equal(t, HashPartitioner{}.Partition(r, 6), r.Partition)
	})
	t.Run("Producer", func(t *testing.T) {
		b := tbOpen(t, nil) // the Broker's own Publish places by key
		tbCreate(t, b, "t", TopicConfig{Partitions: 6})
		pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}})
		defer pr.Close()
		check(t, b, func(r *Record) error {
			var got error
			pr.Publish(ctx, r, func(_ *Record, err error) { got = err })
			require.NoError(t, pr.Flush(ctx))
			return got
		})
	})
}

// A custom Partitioner's AnyPartition means "no preference": the record is
// placed stickily; an answer outside the topic fails with
// ErrInvalidPartition.
func TestCustomPartitionerAnswers(t *testing.T) {
	ctx := context.Background()
	b := tbOpen(t, &Options{Partitioner: tbFixedPartitioner(AnyPartition)})
	tbCreate(t, b, "t", TopicConfig{Partitions: 4})
	recs := make([]*Record, 10)
	for i := range recs {
		recs[i] = &Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Partition: 3}
	}
	require.NoError(t, b.Publish(ctx, recs...))
	for _, r := range recs {
		require.Equal(t, recs[0].Partition, r.Partition, "one call's records without a preference share a partition")
	}
	for _, p := range []tbFixedPartitioner{4, -2} {
		bad := tbOpen(t, &Options{Partitioner: p})
		tbCreate(t, bad, "t", TopicConfig{Partitions: 4})
		require.ErrorIs(t, bad.Publish(ctx, &Record{Topic: "t"}), ErrInvalidPartition, "partitioner answers %d", p)
	}
}

// Item 9: same key, same partition with the default HashPartitioner; keys
// spread over partitions.
func TestHashPartitionerSameKeySamePartition(t *testing.T) {
	var hp HashPartitioner
	used := map[int32]bool{}
	for i := 0; i < 200; i++ {
		key := fmt.Appendf(nil, "user-%d", i)
		p := hp.Partition(&Record{Key: key}, 8)
		require.GreaterOrEqual(t, p, int32(0))
		require.Less(t, p, int32(8))
		for j := 0; j < 3; j++ {
			require.Equal(t, p, hp.Partition(&Record{Key: append([]byte(nil), key...)}, 8))
		}
		used[p] = true
	}
	require.Len(t, used, 8, "200 keys should cover 8 partitions")

	b := tbOpen(t, nil) // default partitioner
	tbCreate(t, b, "t", TopicConfig{Partitions: 8})
	ctx := context.Background()
	placed := map[string]int32{}
	pr := mustProducer(b, &ProducerOptions{})
	defer pr.Close()
	for round := 0; round < 3; round++ {
		for i := 0; i < 50; i++ {
			key := fmt.Sprintf("k%d", i)
			want := hp.Partition(&Record{Key: []byte(key)}, 8)
			r := &Record{Topic: "t", Key: []byte(key)}
			require.NoError(t, b.Publish(ctx, r))
			require.Equal(t, want, r.Partition)
			pr.Publish(ctx, &Record{Topic: "t", Key: []byte(key)}, func(r *Record, err error) {
				require.NoError(t, err)
				require.Equal(t, want, r.Partition)
			})
			if p, ok := placed[key]; ok {
				require.Equal(t, p, want)
			}
			placed[key] = want
		}
	}
	require.NoError(t, pr.Flush(ctx))
	require.Equal(t, int64(300), tbSum(tbEnds(t, b, "t")))
}

// Item 5: a nil key is keyless (sticky); an empty, non-nil key is a key.
func TestNilKeyKeylessEmptyKeyIsKey(t *testing.T) {
	for _, part := range []Partitioner{HashPartitioner{}, KafkaPartitioner{}} {
		require.Equal(t, AnyPartition, part.Partition(&Record{}, 8), "%T", part)
		p := part.Partition(&Record{Key: []byte{}}, 8)
		require.NotEqual(t, AnyPartition, p, "%T", part)
		require.GreaterOrEqual(t, p, int32(0))
	}

	// Through Broker.Publish: empty keys all land on one partition (p3 of 6
	// with murmur2), while nil keys rotate between calls.
	b := tbOpen(t, &Options{Partitioner: KafkaPartitioner{}})
	tbCreate(t, b, "t", TopicConfig{Partitions: 6})
	ctx := context.Background()
	nilParts := map[int32]bool{}
	for i := 0; i < 12; i++ {
		r := &Record{Topic: "t", Key: []byte{}}
		require.NoError(t, b.Publish(ctx, r))
		require.Equal(t, int32(3), r.Partition)
		r = &Record{Topic: "t"}
		require.NoError(t, b.Publish(ctx, r))
		nilParts[r.Partition] = true
	}
	require.Greater(t, len(nilParts), 1, "keyless records never moved")
	// The empty key is stored as an empty key, not as null.
	for _, r := range tbReadAll(t, b, "t", 3) {
		if r.Key != nil {
			require.Empty(t, r.Key)
		}
	}
}

// Item 7: over many keyless sends every partition gets records.
func TestKeylessRecordsSpreadOverAllPartitions(t *testing.T) {
	b := tbOpen(t, nil)
	const parts = 6
	tbCreate(t, b, "sync", TopicConfig{Partitions: parts})
	tbCreate(t, b, "async", TopicConfig{Partitions: parts})
	ctx := context.Background()
	for i := 0; i < 120; i++ {
		require.NoError(t, b.Publish(ctx, &Record{Topic: "sync", Value: []byte("v")}))
	}
	for p, end := range tbEnds(t, b, "sync") {
		require.Positive(t, end, "partition %d got no keyless records", p)
	}

	pr := mustProducer(b, &ProducerOptions{BatchBytes: 500})
	defer pr.Close()
	for i := 0; i < 2000; i++ {
		pr.Publish(ctx, &Record{Topic: "async", Value: make([]byte, 100)}, nil)
	}
	require.NoError(t, pr.Flush(ctx))
	ends := tbEnds(t, b, "async")
	require.Equal(t, int64(2000), tbSum(ends))
	for p, end := range ends {
		require.Positive(t, end, "partition %d got no keyless records: %v", p, ends)
	}
}

// Item 6: through the Producer, consecutive keyless records stick to one
// partition for a whole batch; within one Broker.Publish call they share one
// partition too.
func TestKeylessRecordsAreSticky(t *testing.T) {
	b := tbOpen(t, nil)
	const parts = 6
	tbCreate(t, b, "t", TopicConfig{Partitions: parts})
	tbCreate(t, b, "sync", TopicConfig{Partitions: parts})
	ctx := context.Background()

	pr := mustProducer(b, &ProducerOptions{Linger: time.Hour})
	defer pr.Close()
	batches := b.Stats().BatchesIn
	for i := 0; i < 50; i++ {
		pr.Publish(ctx, &Record{Topic: "t", Value: []byte("v")}, nil)
	}
	require.NoError(t, pr.Flush(ctx))
	ends := tbEnds(t, b, "t")
	require.Contains(t, ends, int64(50), "keyless records of one batch were spread: %v", ends)
	require.Equal(t, int64(1), b.Stats().BatchesIn-batches, "one batch")

	recs := make([]*Record, 20)
	for i := range recs {
		recs[i] = &Record{Topic: "sync", Value: []byte("v")}
	}
	batches = b.Stats().BatchesIn
	require.NoError(t, b.Publish(ctx, recs...))
	for _, r := range recs {
		require.Equal(t, recs[0].Partition, r.Partition)
	}
	require.Equal(t, int64(1), b.Stats().BatchesIn-batches, "one batch")
}

// Item 6: the sticky partition changes once about BatchBytes went there, to
// a different partition.
func TestKeylessStickySwitchesAfterBatchBytes(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 4})
	ctx := context.Background()
	pr := mustProducer(b, &ProducerOptions{BatchBytes: 2000, Linger: time.Hour})
	defer pr.Close()
	const n = 400
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: "t", Value: make([]byte, 100)}
		pr.Publish(ctx, recs[i], nil)
	}
	require.NoError(t, pr.Flush(ctx))
	var runs []int
	for i, r := range recs {
		if i == 0 || r.Partition != recs[i-1].Partition {
			runs = append(runs, 0)
		}
		runs[len(runs)-1]++
	}
	require.GreaterOrEqual(t, len(runs), 10, "never moved on: runs %v", runs)
	for _, n := range runs[:len(runs)-1] {
		// ~2000 bytes of ~100-byte records (the estimate counts overhead).
		require.GreaterOrEqual(t, n, 2000/140, "runs %v", runs)
		require.LessOrEqual(t, n, 2000/100+1, "runs %v", runs)
	}
}

// RoundRobinPartitioner deals records to partitions in turn, keys or not.
func TestRoundRobinPartitionerCycles(t *testing.T) {
	var rr RoundRobinPartitioner // the zero value works
	var got []int32
	for i := 0; i < 7; i++ {
		got = append(got, rr.Partition(&Record{Key: []byte("same")}, 3))
	}
	require.Equal(t, []int32{0, 1, 2, 0, 1, 2, 0}, got)

	b := tbOpen(t, &Options{Partitioner: &RoundRobinPartitioner{}})
	tbCreate(t, b, "t", TopicConfig{Partitions: 3})
	ctx := context.Background()
	got = got[:0]
	for i := 0; i < 6; i++ {
		r := &Record{Topic: "t", Key: []byte("same")}
		require.NoError(t, b.Publish(ctx, r))
		got = append(got, r.Partition)
	}
	require.Equal(t, []int32{0, 1, 2, 0, 1, 2}, got)

	pr := mustProducer(b, &ProducerOptions{Partitioner: &RoundRobinPartitioner{}})
	defer pr.Close()
	recs := make([]*Record, 9)
	for i := range recs {
		recs[i] = &Record{Topic: "t", Value: []byte{byte(i)}}
		pr.Publish(ctx, recs[i], nil)
	}
	require.NoError(t, pr.Flush(ctx))
	got = got[:0]
	for _, r := range recs {
		got = append(got, r.Partition)
	}
	require.Equal(t, []int32{0, 1, 2, 0, 1, 2, 0, 1, 2}, got)
	require.Equal(t, []int64{5, 5, 5}, tbEnds(t, b, "t"))
}

// ManualPartitioner uses r.Partition; records left at AnyPartition are
// placed stickily, keys or not.
func TestManualPartitioner(t *testing.T) {
	var mp ManualPartitioner
	require.Equal(t, int32(2), mp.Partition(&Record{Partition: 2, Key: []byte("21")}, 6))
	require.Equal(t, AnyPartition, mp.Partition(&Record{Partition: AnyPartition, Key: []byte("21")}, 6))

	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{Partitions: 4})
	ctx := context.Background()
	pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}, Linger: time.Hour})
	defer pr.Close()
	keyed := make([]*Record, 10)
	for i := range keyed {
		keyed[i] = &Record{Topic: "t", Partition: AnyPartition, Key: fmt.Appendf(nil, "k%d", i)}
		pr.Publish(ctx, keyed[i], nil)
	}
	pr.Publish(ctx, &Record{Topic: "t", Partition: 3, Key: []byte("x")}, nil)
	require.NoError(t, pr.Flush(ctx))
	// Keys are ignored: the AnyPartition records all went to one partition.
	for _, r := range keyed {
		require.Equal(t, keyed[0].Partition, r.Partition)
	}
	ends := tbEnds(t, b, "t")
	require.Equal(t, int64(11), tbSum(ends))
	require.GreaterOrEqual(t, ends[3], int64(1))
}

// Item 9: adding partitions may remap keys, but old records never move.
func TestAddPartitionsRemapsKeysOldRecordsStay(t *testing.T) {
	b := tbOpen(t, &Options{Partitioner: KafkaPartitioner{}})
	tbCreate(t, b, "t", TopicConfig{Partitions: 6})
	ctx := context.Background()
	r := &Record{Topic: "t", Key: []byte("foobar"), Value: []byte("old")}
	require.NoError(t, b.Publish(ctx, r))
	require.Equal(t, int32(0), r.Partition)
	require.NoError(t, b.AddPartitions("t", 12))
	r2 := &Record{Topic: "t", Key: []byte("foobar"), Value: []byte("new")}
	require.NoError(t, b.Publish(ctx, r2))
	require.Equal(t, int32(6), r2.Partition)
	old := tbReadAll(t, b, "t", 0)
	require.Len(t, old, 1)
	require.Equal(t, "old", string(old[0].Value))
	require.Equal(t, int64(0), old[0].Offset)

	// A producer made before the growth sees the new partitions too.
	pr := mustProducer(b, &ProducerOptions{Partitioner: ManualPartitioner{}})
	defer pr.Close()
	require.NoError(t, b.AddPartitions("t", 13))
	pr.Publish(ctx, &Record{Topic: "t", Partition: 12, Value: []byte("p12")}, func(_ *Record, err error) { require.NoError(t, err) })
	require.NoError(t, pr.Flush(ctx))
	require.Equal(t, int64(1), tbEnds(t, b, "t")[12])
}
