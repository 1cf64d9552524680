package stream

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// tableBenchKeys is the size of the benchmarks' table: a config or
// profile table, well past the CPU caches' fastest levels.
const tableBenchKeys = 10_000

// benchTable publishes tableBenchKeys keys of 100-byte values over 4
// partitions and opens a table on them.
func benchTable(b *testing.B) (*Broker, *Table, [][]byte) {
	br := tbOpen(b, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	tbCreate(b, br, "t", TopicConfig{Partitions: 4})
	ctx := context.Background()
	keys := make([][]byte, tableBenchKeys)
	value := make([]byte, 100)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user-%06d", i)
		if err := br.Publish(ctx, &Record{Topic: "t", Partition: int32(i % 4), Key: keys[i], Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	return br, openTable(b, br, "t", nil), keys
}

// BenchmarkTableGet looks up existing keys of a 10k-key table (goal:
// ≤ 200 ns, no allocation), from one goroutine and from GOMAXPROCS at once
// while nothing is applied.
func BenchmarkTableGet(b *testing.B) {
	_, tb, keys := benchTable(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := tb.Get(keys[i%len(keys)]); !ok {
				b.Fatal("missing")
			}
			i += 7919 // a prime stride: no two neighbours in a row
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := tb.Get(keys[i%len(keys)]); !ok {
					b.Error("missing")
					return
				}
				i += 7919
			}
		})
	})
}

// BenchmarkTableCatchUp publishes one record at a time (SyncNever) and
// times from Publish's return until WaitChange sees it in the table: the
// view's catch-up latency (goal: p99 ≤ 50 µs).
func BenchmarkTableCatchUp(b *testing.B) {
	br, tb, keys := benchTable(b)
	ctx := context.Background()
	value := make([]byte, 100)
	lat := make([]time.Duration, 0, 1<<20)
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i++
		prev, _ := tb.Get(k)
		r := &Record{Topic: "t", Partition: prev.Partition, Key: k, Value: value}
		if err := br.Publish(ctx, r); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, _, err := tb.WaitChange(ctx, k, prev.Offset); err != nil {
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
}
