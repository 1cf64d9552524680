package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkClean times one cleaning round (Broker.Compact) of a compacted
// partition holding 100,000 records of 100 B over 10,000 keys drawn at
// random, in segments of an eighth of the log (seven sealed, cleaned; the
// active one is not). SetBytes is what the round read (Stats.CleanerBytes),
// so benchstat shows the cleaner's throughput (the bench/ row's goal:
// ≥ 200 MB/s); removed-% is the share of the partition's bytes removed.
func BenchmarkClean(b *testing.B) {
	const records, keys = 100_000, 10_000
	br := tbOpen(b, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, DisableCleaner: true})
	ctx := context.Background()
	keyset := make([][]byte, keys)
	for i := range keyset {
		keyset[i] = fmt.Appendf(nil, "user-%06d", i)
	}
	value := make([]byte, 100)
	recs := make([]Record, 1000)
	ptrs := make([]*Record, len(recs))
	var read, before, after int64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		topic := fmt.Sprintf("t%d", i)
		tbCreate(b, br, topic, TopicConfig{Cleanup: CleanupCompact, SegmentBytes: records * 130 / 8})
		rng := rand.New(rand.NewPCG(18, 1))
		for done := 0; done < records; done += len(recs) {
			for j := range recs {
				recs[j] = Record{Topic: topic, Key: keyset[rng.IntN(keys)], Value: value}
				ptrs[j] = &recs[j]
			}
			if err := br.Publish(ctx, ptrs...); err != nil {
				b.Fatal(err)
			}
		}
		info, err := br.DescribeTopic(topic)
		if err != nil {
			b.Fatal(err)
		}
		st := br.Stats()
		b.StartTimer()

		if err := br.Compact(ctx, topic); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		read = br.Stats().CleanerBytes - st.CleanerBytes
		cleaned, err := br.DescribeTopic(topic)
		if err != nil {
			b.Fatal(err)
		}
		before, after = info.Partitions[0].Bytes, cleaned.Partitions[0].Bytes
		if err := br.DeleteTopic(topic); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.SetBytes(read)
	b.ReportMetric(100*float64(before-after)/float64(before), "removed-%")
}
