package stream

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProducer publishes 100-byte values through an async Producer
// (default options but Linger), a callback per record, and flushes at the
// end: from one goroutine and from 8, keyless to one partition and keyed
// to 8.
func BenchmarkProducer(b *testing.B) {
	for _, linger := range []time.Duration{0, 5 * time.Millisecond} {
		for _, g := range []int{1, 8} {
			for _, keyed := range []bool{false, true} {
				name := fmt.Sprintf("linger=%v/goroutines=%d/keyed=%v", linger, g, keyed)
				b.Run(name, func(b *testing.B) { benchProducer(b, linger, g, keyed) })
			}
		}
	}
}

func benchProducer(b *testing.B, linger time.Duration, goroutines int, keyed bool) {
	br := tbOpen(b, &Options{Sync: SyncNever})
	partitions := 1
	if keyed {
		partitions = 8
	}
	tbCreate(b, br, "t", TopicConfig{Partitions: partitions})
	pr := mustProducer(br, &ProducerOptions{Linger: linger})
	defer pr.Close()
	ctx := context.Background()
	value := make([]byte, 100)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%d", i)
	}
	var acked, failed atomic.Int64
	done := func(_ *Record, err error) {
		if err != nil {
			failed.Add(1)
			return
		}
		acked.Add(1)
	}
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range goroutines {
		n := b.N / goroutines
		if g == 0 {
			n += b.N % goroutines
		}
		wg.Go(func() {
			for i := range n {
				r := &Record{Topic: "t", Value: value}
				if keyed {
					r.Key = keys[i%len(keys)]
				}
				pr.Publish(ctx, r, done)
			}
		})
	}
	wg.Wait()
	if err := pr.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if acked.Load() != int64(b.N) || failed.Load() != 0 {
		b.Fatalf("%d callbacks acked, %d failed, want %d acked", acked.Load(), failed.Load(), b.N)
	}
	var stored int64
	for _, end := range tbEnds(b, br, "t") {
		stored += end
	}
	if stored != int64(b.N) {
		b.Fatalf("stored %d records, want %d", stored, b.N)
	}
}

// BenchmarkPublishBatch publishes 100-byte values to one partition, 1,000
// records per Broker.Publish call (SyncNever), as the bench program's
// "publish batched" workload does. The records are reused between calls.
func BenchmarkPublishBatch(b *testing.B) {
	br := tbOpen(b, &Options{Sync: SyncNever})
	tbCreate(b, br, "t", TopicConfig{})
	ctx := context.Background()
	value := make([]byte, 100)
	recs := make([]Record, 1000)
	ptrs := make([]*Record, len(recs))
	for i := range recs {
		ptrs[i] = &recs[i]
	}
	b.SetBytes(100 * int64(len(recs)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range recs {
			recs[i].Topic, recs[i].Partition, recs[i].Value, recs[i].Timestamp = "t", 0, value, time.Time{}
		}
		if err := br.Publish(ctx, ptrs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPublishParallel has GOMAXPROCS goroutines publish to a partition
// each, 100 records of 100 bytes per Broker.Publish call (SyncNever): with
// -mutexprofile it shows whether partitions wait on a lock they share.
func BenchmarkPublishParallel(b *testing.B) {
	br := tbOpen(b, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	n := runtime.GOMAXPROCS(0)
	tbCreate(b, br, "t", TopicConfig{Partitions: n})
	ctx := context.Background()
	value := make([]byte, 100)
	var next atomic.Int32
	b.SetBytes(100 * 100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		part := (next.Add(1) - 1) % int32(n)
		recs := make([]Record, 100)
		ptrs := make([]*Record, len(recs))
		for i := range recs {
			ptrs[i] = &recs[i]
		}
		for pb.Next() {
			for i := range recs {
				recs[i] = Record{Topic: "t", Partition: part, Value: value}
			}
			if err := br.Publish(ctx, ptrs...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPublishSync publishes one 100-byte record per Broker.Publish call
// (SyncNever) and reports the latency distribution of the calls.
func BenchmarkPublishSync(b *testing.B) {
	br := tbOpen(b, &Options{Sync: SyncNever})
	tbCreate(b, br, "t", TopicConfig{})
	ctx := context.Background()
	value := make([]byte, 100)
	r := &Record{Topic: "t", Value: value}
	lat := make([]time.Duration, 0, 1<<20)
	b.SetBytes(100)
	b.ReportAllocs()
	for b.Loop() {
		r.Timestamp = time.Time{}
		start := time.Now()
		if err := br.Publish(ctx, r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReader reads 1M records of 100 bytes from the start with a
// Reader, per iteration.
func BenchmarkReader(b *testing.B) {
	for _, keep := range []string{"none", "arena", "clone"} {
		b.Run("keep="+keep, func(b *testing.B) { benchReader(b, keep) })
	}
}

// benchReader reads 1M records of 100 B from the start, keeping each
// (a copy that outlives the next Next) with keep: "none" (zero-copy),
// "arena" (an Arena) or "clone" (Record.Clone).
func benchReader(b *testing.B, keep string) {
	br := tbOpen(b, &Options{Sync: SyncNever})
	tbCreate(b, br, "t", TopicConfig{})
	ctx := context.Background()
	value := make([]byte, 100)
	const total, perBatch = 1_000_000, 1000
	recs := make([]*Record, perBatch)
	for i := 0; i < total; i += perBatch {
		for j := range recs {
			recs[j] = &Record{Topic: "t", Value: value}
		}
		if err := br.Publish(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(total * 100)
	b.ReportAllocs()
	for b.Loop() {
		rd, err := br.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		var arena Arena
		for rec, err := range rd.All(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			switch keep {
			case "arena":
				rec = arena.Clone(rec)
			case "clone":
				rec = rec.Clone()
			}
			n += len(rec.Value)
		}
		rd.Close()
		if n != total*100 {
			b.Fatalf("read %d bytes", n)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSyncAlways64 has 64 goroutines publish one 100-byte record per
// Publish call under SyncAlways: group commit shares fsyncs among them.
func BenchmarkSyncAlways64(b *testing.B) {
	br := tbOpen(b, &Options{Sync: SyncAlways})
	tbCreate(b, br, "t", TopicConfig{})
	ctx := context.Background()
	const writers = 64
	per := b.N/writers + 1
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			value := make([]byte, 100)
			for i := 0; i < per; i++ {
				if err := br.Publish(ctx, &Record{Topic: "t", Value: value}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "records/s")
	fsyncs := br.Stats().Fsyncs
	b.ReportMetric(float64(per*writers)/float64(max(fsyncs, 1)), "records/fsync")
}
