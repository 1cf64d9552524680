package stream

import (
	"context"
	"fmt"
	"testing"
)

// benchCompressedTopic publishes total records of 100 bytes (a counter in
// text, then padding: compressible, as most payloads are), 1000 per batch,
// to a topic compressed with c.
func benchCompressedTopic(b *testing.B, c Codec, total int) *Broker {
	br := tbOpen(b, &Options{Sync: SyncNever})
	tbCreate(b, br, "t", TopicConfig{Compression: Compression{Codec: c}})
	recs := make([]*Record, 1000)
	for i := 0; i < total; i += len(recs) {
		for j := range recs {
			v := fmt.Appendf(make([]byte, 0, 100), "record %09d ", i+j)
			for len(v) < 100 {
				v = append(v, 'x')
			}
			recs[j] = &Record{Topic: "t", Value: v}
		}
		if err := br.Publish(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	return br
}

// BenchmarkReaderCompressed is BenchmarkReader over compressed batches:
// 200k records per iteration.
func BenchmarkReaderCompressed(b *testing.B) {
	for _, c := range readCodecs {
		b.Run(c.String(), func(b *testing.B) {
			const total = 200_000
			br := benchCompressedTopic(b, c, total)
			ctx := context.Background()
			b.SetBytes(total * 100)
			b.ReportAllocs()
			for b.Loop() {
				rd, err := br.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rec, err := range rd.All(ctx) {
					if err != nil {
						b.Fatal(err)
					}
					n += len(rec.Value)
				}
				rd.Close()
				if n != total*100 {
					b.Fatalf("read %d bytes", n)
				}
			}
			b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkConsumerPollCompressed is BenchmarkConsumerPoll over compressed
// batches. One op is one record.
func BenchmarkConsumerPollCompressed(b *testing.B) {
	for _, c := range readCodecs {
		b.Run(c.String(), func(b *testing.B) {
			const total = 200_000
			br := benchCompressedTopic(b, c, total)
			ctx := context.Background()
			cons, err := br.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
			if err != nil {
				b.Fatal(err)
			}
			defer cons.Close()
			tp := TopicPartition{Topic: "t", Partition: 0}
			if _, err := cons.Poll(ctx); err != nil {
				b.Fatal(err)
			}
			if err := cons.SeekToBeginning(tp); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			read := 0
			for read < b.N {
				recs, err := cons.Poll(ctx)
				if err != nil {
					b.Fatal(err)
				}
				read += len(recs)
				if recs[len(recs)-1].Offset == total-1 {
					if err := cons.SeekToBeginning(tp); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
