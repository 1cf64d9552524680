package stream

import (
	"context"
	"log/slog"
	"os"
	"testing"
)

// BenchmarkOpenPublishReadClose measures an embedded broker's whole life:
// Open a fresh directory, create a topic, publish one record, read it back
// with a Reader, Close. SyncNever and the default topic config (1 GiB
// segments).
func BenchmarkOpenPublishReadClose(b *testing.B) {
	benchLifecycle(b, TopicConfig{}, func() *Options { return &Options{Sync: SyncNever} })
}

// BenchmarkLifecycleTest is the same life with the options streamtest's
// NewBroker and CreateTopic pick (SyncNever, 1 MiB segments, a Warn-level
// logger): the cost of a unit test's broker.
func BenchmarkLifecycleTest(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	benchLifecycle(b, TopicConfig{SegmentBytes: 1 << 20}, func() *Options {
		return &Options{Sync: SyncNever, DefaultTopic: TopicConfig{SegmentBytes: 1 << 20}, Logger: logger}
	})
}

// BenchmarkLifecycleDefault is the same life with Open(dir, nil): its cost
// is mostly the disk's fsyncs of meta.db and the directories.
func BenchmarkLifecycleDefault(b *testing.B) {
	benchLifecycle(b, TopicConfig{}, func() *Options { return nil })
}

func benchLifecycle(b *testing.B, cfg TopicConfig, opts func() *Options) {
	root := b.TempDir()
	ctx := context.Background()
	value := []byte("hello")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir, err := os.MkdirTemp(root, "b")
		if err != nil {
			b.Fatal(err)
		}
		br, err := Open(dir, opts())
		if err != nil {
			b.Fatal(err)
		}
		if err := br.CreateTopic("t", cfg); err != nil {
			b.Fatal(err)
		}
		if err := br.Publish(ctx, &Record{Topic: "t", Value: value}); err != nil {
			b.Fatal(err)
		}
		rd, err := br.NewReader("t", 0, OffsetEarliest, nil)
		if err != nil {
			b.Fatal(err)
		}
		rec, err := rd.Next(ctx)
		if err != nil || string(rec.Value) != "hello" {
			b.Fatal(rec, err)
		}
		rd.Close()
		if err := br.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/op")
}
