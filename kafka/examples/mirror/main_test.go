package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestMirror copies a directory's topics to an in-process cluster and
// checks every record on the cluster against the source, field by field
// and offset by offset.
func TestMirror(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The source: two topics, records with every kind of field.
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("orders", stream.TopicConfig{Partitions: 3}))
	require.NoError(t, b.CreateTopic("audit", stream.TopicConfig{Partitions: 1, LogAppendTime: true}))
	ts := time.UnixMilli(1_600_000_000_000)
	var recs []*stream.Record
	for i := range 90 {
		r := &stream.Record{Topic: "orders", Key: []byte{byte(i % 11)},
			Value: []byte{byte(i)}, Timestamp: ts.Add(time.Duration(i) * time.Minute),
			Headers: []stream.Header{{Key: "n", Value: []byte{byte(i)}}, {Key: "n", Value: nil}, {Key: "e", Value: []byte{}}}}
		switch i % 10 {
		case 3:
			r.Key = nil // keyless
		case 4:
			r.Key, r.Value = []byte{}, []byte{} // empty, not nil
		case 5:
			r.Value = nil // tombstone
		}
		recs = append(recs, r)
	}
	require.NoError(t, b.Publish(ctx, recs...))
	require.NoError(t, b.Publish(ctx, &stream.Record{Topic: "audit", Value: []byte("stamped by the broker")}))
	billing := map[stream.TopicPartition]int64{{Topic: "orders", Partition: 0}: 10, {Topic: "orders", Partition: 2}: 3, {Topic: "audit", Partition: 0}: 1}
	require.NoError(t, b.SetCommittedOffsets("billing", billing))
	require.NoError(t, b.Close())

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, dir, "", strings.Join(cluster.ListenAddrs(), ","), &out, &errOut))
	t.Log("\n" + out.String())
	require.Contains(t, out.String(), "orders: verified 90 records")
	require.Contains(t, out.String(), "audit: verified 1 records")

	// Independently of Verify: every source record, at the same partition
	// and offset on the cluster, with the same fields.
	src, err := stream.Open(dir, &stream.Options{ReadOnly: true})
	require.NoError(t, err)
	defer src.Close()
	dst, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs()})
	require.NoError(t, err)
	defer dst.Close()
	for _, topic := range []string{"orders", "audit"} {
		info, err := src.DescribeTopic(topic)
		require.NoError(t, err)
		n := 0
		for _, pi := range info.Partitions {
			want := read(t, ctx, func() (stream.PartitionReader, error) {
				return src.NewReader(topic, pi.Partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
			})
			got := read(t, ctx, func() (stream.PartitionReader, error) {
				return dst.ReadPartition(ctx, topic, pi.Partition, stream.OffsetEarliest)
			})
			require.Len(t, got, len(want))
			for i, w := range want {
				g := got[i]
				require.Equal(t, w.Partition, g.Partition)
				require.Equal(t, w.Offset, g.Offset, "offsets kept")
				require.Equal(t, w.Key == nil, g.Key == nil)
				require.Equal(t, w.Key, g.Key)
				require.Equal(t, w.Value == nil, g.Value == nil)
				require.Equal(t, w.Value, g.Value)
				require.Equal(t, w.Headers, g.Headers)
				require.Equal(t, w.Timestamp.UnixMilli(), g.Timestamp.UnixMilli())
			}
			n += len(want)
		}
		require.Equal(t, map[string]int{"orders": 90, "audit": 1}[topic], n)
	}

	// The group's commits came along: a member on the cluster resumes there.
	gc, err := dst.Subscribe("billing", []string{"orders", "audit"}, &stream.GroupOptions{Reset: stream.ResetNone})
	require.NoError(t, err)
	committed, err := gc.Committed(ctx)
	require.NoError(t, err)
	require.Equal(t, billing, committed)
	require.NoError(t, gc.Close())

	// A second run finds the topics there and stops.
	err = run(ctx, dir, "orders", strings.Join(cluster.ListenAddrs(), ","), io.Discard, io.Discard)
	require.ErrorIs(t, err, stream.ErrTopicExists)
}

// TestMirrorDemo runs the program as `go run` does without flags.
func TestMirrorDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, "", "", "", &out, io.Discard))
	require.Contains(t, out.String(), "orders: verified 201 records")
	require.Contains(t, out.String(), "group billing: committed orders/0=")
}

func read(t *testing.T, ctx context.Context, open func() (stream.PartitionReader, error)) []*stream.Record {
	t.Helper()
	rd, err := open()
	require.NoError(t, err)
	defer rd.Close()
	var out []*stream.Record
	for {
		r, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, r.Clone())
	}
}

// TestMirrorShiftsOffsets: a source partition whose start retention deleted
// is copied from offset 0 on; its records and its group's commits shift
// down by the same amount.
func TestMirrorShiftsOffsets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, RetentionCheckInterval: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("logs", stream.TopicConfig{SegmentBytes: 4096, RetentionBytes: 4096}))
	for i := range 200 {
		require.NoError(t, b.Publish(ctx, &stream.Record{Topic: "logs", Value: make([]byte, 100+i)}))
	}
	var start, end int64
	require.Eventually(t, func() bool {
		info, err := b.DescribeTopic("logs")
		require.NoError(t, err)
		start, end = info.Partitions[0].StartOffset, info.Partitions[0].EndOffset
		return start > 0
	}, 30*time.Second, time.Millisecond, "retention deletes the oldest segments")
	require.NoError(t, b.SetCommittedOffsets("readers", map[stream.TopicPartition]int64{{Topic: "logs", Partition: 0}: end - 1}))
	require.NoError(t, b.Close())
	// Retention may have gone on until Close: look at what is left.
	ro, err := stream.Open(dir, &stream.Options{ReadOnly: true})
	require.NoError(t, err)
	info, err := ro.DescribeTopic("logs")
	require.NoError(t, err)
	require.NoError(t, ro.Close())
	start = info.Partitions[0].StartOffset
	require.Positive(t, start)
	require.Equal(t, end, info.Partitions[0].EndOffset)

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	var out bytes.Buffer
	require.NoError(t, run(ctx, dir, "logs", strings.Join(cluster.ListenAddrs(), ","), &out, io.Discard))
	t.Log("\n" + out.String())
	n := end - start
	require.Contains(t, out.String(), fmt.Sprintf("logs/0: copied %d records, offsets %d-%d now 0-%d", n, start, end-1, n-1))
	require.Contains(t, out.String(), fmt.Sprintf("group readers: committed logs/0=%d", n-1))
}

// TestMirrorCompressed: topics whose batches the source stores compressed,
// with each codec (a topic codec, or a producer's on a topic that keeps
// it), are copied record for record, and the topic's codec carries over.
func TestMirrorCompressed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	topics := map[string]stream.Compression{
		"gzip":   {Codec: stream.CodecGzip, Level: 9},
		"snappy": {Codec: stream.CodecSnappy},
		"lz4":    {Codec: stream.CodecLZ4},
		"zstd":   {Codec: stream.CodecZstd, Level: 7},
		"kept":   {}, // producer: the Producer's zstd below
	}
	ts := time.UnixMilli(1_600_000_000_000)
	value := func(i int) []byte {
		return fmt.Appendf(nil, `{"id":%d,"customer":"customer-%d","items":[{"sku":"SKU-%05d","qty":%d}],"status":"shipped"}`, i, i%7, i, i%4+1)
	}
	for name, cc := range topics {
		require.NoError(t, b.CreateTopic(name, stream.TopicConfig{Partitions: 2, Compression: cc}))
		if name == "kept" {
			continue
		}
		for call := range 3 { // several batches per partition
			var recs []*stream.Record
			for i := range 40 {
				n := call*40 + i
				r := &stream.Record{Topic: name, Key: fmt.Appendf(nil, "k%d", n%5), Value: value(n),
					Timestamp: ts.Add(time.Duration(n) * time.Second),
					Headers:   []stream.Header{{Key: "n", Value: []byte{byte(n)}}, {Key: "null", Value: nil}}}
				switch n % 10 {
				case 3:
					r.Key = nil
				case 4:
					r.Key, r.Value = []byte{}, []byte{}
				case 5:
					r.Value = nil
				}
				recs = append(recs, r)
			}
			require.NoError(t, b.Publish(ctx, recs...))
		}
	}
	p, err := b.NewProducer(&stream.ProducerOptions{Compression: stream.Compression{Codec: stream.CodecZstd}})
	require.NoError(t, err)
	for i := range 100 {
		p.Publish(ctx, &stream.Record{Topic: "kept", Key: fmt.Appendf(nil, "k%d", i%3), Value: value(i),
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}, func(_ *stream.Record, err error) { require.NoError(t, err) })
	}
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, p.Close())
	require.NoError(t, b.Close())

	// The source really holds compressed batches, each with its codec.
	for name, cc := range topics {
		want := cc.Codec
		if name == "kept" {
			want = stream.CodecZstd
		}
		for part := range 2 {
			data, err := os.ReadFile(filepath.Join(dir, "topics", name, fmt.Sprint(part), "00000000000000000000.log"))
			require.NoError(t, err)
			require.NotEmpty(t, data)
			for len(data) > 0 {
				bt, err := batch.Parse(data)
				require.NoError(t, err)
				require.Equal(t, want.String(), bt.Codec().String(), "%s/%d", name, part)
				data = data[len(bt):]
			}
		}
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	var out bytes.Buffer
	require.NoError(t, run(ctx, dir, "", strings.Join(cluster.ListenAddrs(), ","), &out, io.Discard))
	t.Log("\n" + out.String())
	for name := range topics {
		n := 120
		if name == "kept" {
			n = 100
		}
		require.Contains(t, out.String(), fmt.Sprintf("%s: verified %d records", name, n))
	}

	// Independently of Verify: every record, field by field, offset by
	// offset; and each topic's codec on the cluster.
	src, err := stream.Open(dir, &stream.Options{ReadOnly: true})
	require.NoError(t, err)
	defer src.Close()
	dst, err := kafka.New(ctx, kafka.Options{Brokers: cluster.ListenAddrs()})
	require.NoError(t, err)
	defer dst.Close()
	for name, cc := range topics {
		for part := range int32(2) {
			want := read(t, ctx, func() (stream.PartitionReader, error) {
				return src.NewReader(name, part, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
			})
			got := read(t, ctx, func() (stream.PartitionReader, error) {
				return dst.ReadPartition(ctx, name, part, stream.OffsetEarliest)
			})
			require.NotEmpty(t, want)
			require.Len(t, got, len(want))
			for i, w := range want {
				g := got[i]
				require.Equal(t, w.Offset, g.Offset)
				require.Equal(t, w.Key == nil, g.Key == nil)
				require.Equal(t, w.Key, g.Key)
				require.Equal(t, w.Value == nil, g.Value == nil)
				require.Equal(t, w.Value, g.Value)
				require.Equal(t, w.Headers, g.Headers)
				require.Equal(t, w.Timestamp.UnixMilli(), g.Timestamp.UnixMilli())
			}
		}
		var cfg stream.TopicConfig
		require.NoError(t, dst.AlterTopic(ctx, name, func(c *stream.TopicConfig) { cfg = *c }))
		require.Equal(t, cc, cfg.Compression, "%s: the codec carries over", name)
	}
}
