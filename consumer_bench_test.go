package stream

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedstream/stream/group"
)

// BenchmarkConsumerPoll polls one member's single partition holding 1M
// pre-published 100-byte records (wrapping around with SeekToBeginning).
// One op is one record; allocs/record must stay near 0.
func BenchmarkConsumerPoll(b *testing.B) {
	const total = 1_000_000
	br := tbOpen(b, nil)
	tbCreate(b, br, "t", TopicConfig{})
	ctx := context.Background()
	value := make([]byte, 100)
	batch := make([]*Record, 1000)
	for i := 0; i < total; i += len(batch) {
		for j := range batch {
			batch[j] = &Record{Topic: "t", Value: value}
		}
		if err := br.Publish(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	c, err := br.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tp := TopicPartition{Topic: "t", Partition: 0}
	if _, err := c.Poll(ctx); err != nil { // joins and takes the assignment
		b.Fatal(err)
	}
	if err := c.SeekToBeginning(tp); err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	read := 0
	for read < b.N {
		recs, err := c.Poll(ctx)
		if err != nil {
			b.Fatal(err)
		}
		read += len(recs)
		if recs[len(recs)-1].Offset == total-1 {
			if err := c.SeekToBeginning(tp); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(read), "allocs/record")
}

// BenchmarkPublishToPollLatency measures, for a member blocked in Poll,
// the time from the start of a Publish of one record to Poll returning it.
func BenchmarkPublishToPollLatency(b *testing.B) {
	br := tbOpen(b, nil)
	tbCreate(b, br, "t", TopicConfig{})
	assigned := make(chan struct{}, 1)
	c, err := br.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest,
		OnAssigned: func(*Consumer, []TopicPartition) { assigned <- struct{}{} }})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Time)
	go func() {
		defer close(got)
		for {
			recs, err := c.Poll(ctx)
			if err != nil {
				return
			}
			if len(recs) > 0 {
				got <- time.Now()
			}
		}
	}()
	<-assigned
	_, part, err := br.partitionLog("t", 0)
	if err != nil {
		b.Fatal(err)
	}
	// waiting reports whether Poll waits on the partition's append
	// notification: it found nothing to read and is (about to be) parked.
	waiting := func() bool { return part.Bells() > 0 }
	r := &Record{Topic: "t", Value: make([]byte, 100)}
	lat := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		for !waiting() {
			runtime.Gosched()
		}
		r.Timestamp = time.Time{}
		start := time.Now()
		if err := br.Publish(ctx, r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	cancel()
	for range got {
	}
	reportLatency(b, lat)
}

// reportLatency reports the p50 and p99 of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkRebalance: 8 members poll in loops over 64 partitions; a 9th
// joins. One op is the time until all 9 ran OnAssigned for the new
// assignment and the group is stable with every member holding its share
// (acknowledged) and polling again. The 9th then leaves, untimed.
func BenchmarkRebalance(b *testing.B) {
	const parts = 64
	br := tbOpen(b, nil)
	tbCreate(b, br, "t", TopicConfig{Partitions: parts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	assigned := make(chan struct{}, 1024)
	type member struct {
		c    *Consumer
		done chan struct{}
	}
	start := func() *member {
		c, err := br.Subscribe("g", []string{"t"}, &ConsumerOptions{
			OnAssigned: func(*Consumer, []TopicPartition) { assigned <- struct{}{} }})
		if err != nil {
			b.Fatal(err)
		}
		m := &member{c: c, done: make(chan struct{})}
		go func() {
			defer close(m.done)
			for {
				if _, err := c.Poll(ctx); err != nil {
					return
				}
			}
		}()
		return m
	}
	// stable reports whether n members hold all partitions, acknowledged.
	stable := func(n int) bool {
		info, err := br.groups.Describe("g")
		if err != nil || info.State != group.Stable.String() || len(info.Members) != n {
			return false
		}
		held := 0
		for _, m := range info.Members {
			if len(m.Assignment) == 0 {
				return false
			}
			held += len(m.Assignment)
		}
		return held == parts
	}
	waitStable := func(n int) {
		deadline := time.Now().Add(time.Minute)
		for !stable(n) {
			if time.Now().After(deadline) {
				b.Fatalf("group of %d did not settle", n)
			}
			runtime.Gosched()
		}
	}
	drain := func() {
		for {
			select {
			case <-assigned:
			default:
				return
			}
		}
	}
	var members []*member
	for range 8 {
		members = append(members, start())
	}
	waitStable(8)
	drain()
	b.ResetTimer()
	for range b.N {
		ninth := start()
		for range 9 {
			<-assigned
		}
		waitStable(9)
		b.StopTimer()
		if err := ninth.c.Close(); err != nil {
			b.Fatal(err)
		}
		<-ninth.done
		for range 8 {
			<-assigned
		}
		waitStable(8)
		drain()
		b.StartTimer()
	}
	b.StopTimer()
	cancel()
	for _, m := range members {
		m.c.Close()
		<-m.done
	}
}

// BenchmarkCommit measures synchronous Commit calls of one member's
// position, with the metadata store unsynced (SyncNever) and fsynced per
// commit (SyncInterval: bbolt syncs each transaction).
func BenchmarkCommit(b *testing.B) {
	for _, sp := range []SyncPolicy{SyncNever, SyncInterval} {
		b.Run(fmt.Sprintf("sync=%s", sp), func(b *testing.B) {
			br := tbOpen(b, &Options{Sync: sp})
			tbCreate(b, br, "t", TopicConfig{})
			ctx := context.Background()
			if err := br.Publish(ctx, &Record{Topic: "t", Value: []byte("x")}); err != nil {
				b.Fatal(err)
			}
			c, err := br.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Poll(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// BenchmarkHandle runs Handle over b.N pre-published 100-byte records on
// four partitions, with a function that only counts: the cost the handler
// adds to Poll (splitting by partition, the attempt loop, a commit per
// poll). One op is one record.
func BenchmarkHandle(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			br := tbOpen(b, &Options{Partitioner: ManualPartitioner{}})
			tbCreate(b, br, "t", TopicConfig{Partitions: 4})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			value := make([]byte, 100)
			batch := make([]*Record, 1000)
			for i := 0; i < b.N; i += len(batch) {
				for j := range batch {
					batch[j] = &Record{Topic: "t", Partition: int32(j % 4), Value: value}
				}
				if err := br.Publish(ctx, batch[:min(len(batch), b.N-i)]...); err != nil {
					b.Fatal(err)
				}
			}
			var seen atomic.Int64
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			err := Handle(ctx, br.Client(), "g", []string{"t"}, func(context.Context, *Record) error {
				if seen.Add(1) == int64(b.N) {
					cancel()
				}
				return nil
			}, &HandlerOptions{Group: GroupOptions{Reset: ResetEarliest}, Concurrency: conc})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
