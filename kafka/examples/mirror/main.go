// Command mirror copies topics from an embedstream data directory to a
// Kafka cluster: the first step of moving an application from the
// embedded broker to a cluster. It opens the directory read-only (so it
// works on a copy, or on the directory of a stopped application, and
// changes nothing), creates each topic on the cluster with the same number
// of partitions, and copies every record to the same partition, in order,
// with its key, value (nil stays nil), headers and timestamp. It then reads
// the copy back and compares it with the source, and last copies the
// consumer groups' committed offsets of those topics, so the application's
// groups resume on the cluster where they stopped.
//
//	go run ./examples/mirror                                          # a demo directory to an in-process cluster
//	go run ./examples/mirror -dir data/quickstart -brokers localhost:9092
//	go run ./examples/mirror -dir DIR -topic orders -brokers kafka-1:9092,kafka-2:9092
//
// Offsets are kept when the source partition starts at offset 0 (nothing
// deleted by retention): a record at offset n is at offset n on the cluster
// too. Otherwise each partition's offsets shift down by its log start, which
// mirror reports, and the committed offsets it copies shift the same way.
// Run it while the application is stopped: records or commits made during
// the copy are not copied.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	dir := flag.String("dir", "", "data directory to copy from, opened read-only (default: build a demo directory first)")
	topic := flag.String("topic", "", "topic to copy (default: every topic)")
	brokers := flag.String("brokers", "", "comma-separated seed brokers of the cluster (default: start an in-process cluster)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := run(ctx, *dir, *topic, *brokers, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir, topic, brokers string, stdout, stderr io.Writer) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "embedstream-mirror-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		if err := buildDemo(ctx, d); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "mirror: built a demo directory in %s\n", d)
		dir = d
	}
	var addrs []string
	if brokers != "" {
		addrs = strings.Split(brokers, ",")
	} else {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return err
		}
		defer cluster.Close()
		addrs = cluster.ListenAddrs()
		fmt.Fprintf(stderr, "mirror: started an in-process cluster on %s\n", strings.Join(addrs, ","))
	}

	src, err := stream.Open(dir, &stream.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer src.Close()
	// The manual partitioner puts each copy on the partition it names: the
	// source's, whatever the key.
	dst, err := kafka.New(ctx, kafka.Options{Brokers: addrs, ClientID: "embedstream-mirror", Partitioner: kgo.ManualPartitioner()})
	if err != nil {
		return err
	}
	defer dst.Close()

	topics := src.Topics()
	if topic != "" {
		topics = []string{topic}
	}
	shifts := map[stream.TopicPartition]int64{}
	for _, t := range topics {
		shift, err := Mirror(ctx, src, dst, t, stdout)
		if err != nil {
			return fmt.Errorf("topic %q: %w", t, err)
		}
		maps.Copy(shifts, shift)
	}
	return MirrorGroups(ctx, src, dst.Admin(), shifts, stdout)
}

// MirrorGroups commits, on the cluster, every source group's committed
// offsets of the partitions in shifts, shifted as the records were. Groups
// must have no members on the cluster (a cluster refuses admin commits to a
// live group).
func MirrorGroups(ctx context.Context, src *stream.Broker, adm *kadm.Client, shifts map[stream.TopicPartition]int64, out io.Writer) error {
	for _, g := range src.Groups() {
		committed, err := src.CommittedOffsets(g)
		if err != nil {
			return err
		}
		var offs kadm.Offsets
		for tp, off := range committed {
			shift, ok := shifts[tp]
			if !ok {
				continue // a topic not copied
			}
			offs.AddOffset(tp.Topic, tp.Partition, max(off-shift, 0), -1)
		}
		if len(offs) == 0 {
			continue
		}
		if err := adm.CommitAllOffsets(ctx, g, offs); err != nil {
			return fmt.Errorf("group %q: %w", g, err)
		}
		var parts []string
		for _, o := range offs.Sorted() {
			parts = append(parts, fmt.Sprintf("%s/%d=%d", o.Topic, o.Partition, o.At))
		}
		fmt.Fprintf(out, "group %s: committed %s\n", g, strings.Join(parts, " "))
	}
	return nil
}

// Mirror copies one topic from src to dst, which it creates there, and
// verifies the copy. dst must place records on the partition they name (a
// kafka.Client with kgo.ManualPartitioner, or a Broker's Client with
// stream.ManualPartitioner). It writes what it did to out, and returns how
// far each partition's offsets moved down (its source log start, when the
// copy starts at offset 0).
func Mirror(ctx context.Context, src *stream.Broker, dst stream.Client, topic string, out io.Writer) (map[stream.TopicPartition]int64, error) {
	info, err := src.DescribeTopic(topic)
	if err != nil {
		return nil, err
	}
	// Partitions, retention, the record size limit and the compression
	// carry over: a topic with a codec of its own gets it on the cluster,
	// which compresses the copies with it (reads decompress them on both
	// sides, whatever the codec). LogAppendTime does not: the cluster would
	// stamp the copies with the time of copying instead of keeping their
	// timestamps.
	cfg := stream.TopicConfig{
		Partitions:     len(info.Partitions),
		Retention:      info.Config.Retention,
		RetentionBytes: info.Config.RetentionBytes,
		MaxRecordBytes: info.Config.MaxRecordBytes,
		Compression:    info.Config.Compression,
	}
	err = dst.CreateTopic(ctx, topic, cfg)
	if errors.Is(err, stream.ErrInvalidConfig) && cfg.Compression.Level != 0 {
		// Kafka before 3.8 has no compression levels (KIP-390): keep
		// the codec, at the cluster's level.
		fmt.Fprintf(out, "%s: the cluster refuses compression %v (%v): using %v\n", topic, cfg.Compression, err, cfg.Compression.Codec)
		cfg.Compression.Level = 0
		err = dst.CreateTopic(ctx, topic, cfg)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "%s: created with %d partitions, compression %v\n", topic, cfg.Partitions, cfg.Compression)

	total := 0
	shifts := map[stream.TopicPartition]int64{}
	for _, pi := range info.Partitions {
		n, first, err := copyPartition(ctx, src, dst, topic, pi)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", pi.Partition, err)
		}
		total += n
		tp := stream.TopicPartition{Topic: topic, Partition: pi.Partition}
		shifts[tp] = pi.StartOffset // the copy of an empty partition starts at 0 too
		if n > 0 {
			shifts[tp] = pi.StartOffset - first
		}
		switch {
		case n == 0:
			fmt.Fprintf(out, "%s/%d: empty\n", topic, pi.Partition)
		case first == pi.StartOffset:
			fmt.Fprintf(out, "%s/%d: copied %d records, offsets %d-%d kept\n", topic, pi.Partition, n, pi.StartOffset, pi.EndOffset-1)
		default:
			fmt.Fprintf(out, "%s/%d: copied %d records, offsets %d-%d now %d-%d\n", topic, pi.Partition, n,
				pi.StartOffset, pi.EndOffset-1, first, first+int64(n)-1)
		}
	}
	if err := Verify(ctx, src, dst, topic); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "%s: verified %d records (partition, order, key, value, headers, timestamp)\n", topic, total)
	return shifts, nil
}

// copyPartition publishes one partition's records, in order, to the same
// partition of dst. It returns how many it copied and the offset the first
// one got.
func copyPartition(ctx context.Context, src *stream.Broker, dst stream.Client, topic string, pi stream.PartitionInfo) (int, int64, error) {
	rd, err := src.NewReader(topic, pi.Partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		return 0, 0, err
	}
	defer rd.Close()
	var (
		mu       sync.Mutex
		firstErr error
		first    int64 = -1
	)
	n := 0
	for rec, err := range rd.All(ctx) {
		if err != nil {
			return 0, 0, err
		}
		// The reader's record aliases the segment file until the next one;
		// the copy lives until the cluster acknowledged it.
		r := rec.Clone()
		r.Partition = pi.Partition // dst's manual partitioner keeps it, whatever the key
		n++
		dst.PublishAsync(ctx, r, func(r *stream.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil && (first < 0 || r.Offset < first) {
				first = r.Offset
			}
		})
	}
	if err := dst.Flush(ctx); err != nil {
		return 0, 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	return n, first, firstErr
}

// Verify reads every partition of topic on both sides and compares them
// record by record: the copy must hold the source's records, in order, with
// the same key, value, headers and timestamp (the copy's offsets may be
// shifted, and the cluster may hold records published after the copy).
func Verify(ctx context.Context, src *stream.Broker, dst stream.Client, topic string) error {
	info, err := src.DescribeTopic(topic)
	if err != nil {
		return err
	}
	for _, pi := range info.Partitions {
		want, err := readAll(ctx, func() (stream.PartitionReader, error) {
			return src.NewReader(topic, pi.Partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		})
		if err != nil {
			return err
		}
		got, err := readAll(ctx, func() (stream.PartitionReader, error) {
			return dst.ReadPartition(ctx, topic, pi.Partition, stream.OffsetEarliest)
		})
		if err != nil {
			return err
		}
		if len(got) < len(want) {
			return fmt.Errorf("%s/%d: %d records copied of %d", topic, pi.Partition, len(got), len(want))
		}
		for i, w := range want {
			if err := same(w, got[i]); err != nil {
				return fmt.Errorf("%s/%d: source offset %d: %w", topic, pi.Partition, w.Offset, err)
			}
		}
	}
	return nil
}

func readAll(ctx context.Context, open func() (stream.PartitionReader, error)) ([]*stream.Record, error) {
	rd, err := open()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var out []*stream.Record
	for {
		r, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r.Clone())
	}
}

// same compares what a copy must keep.
func same(want, got *stream.Record) error {
	switch {
	case want.Partition != got.Partition:
		return fmt.Errorf("partition %d, want %d", got.Partition, want.Partition)
	case (want.Key == nil) != (got.Key == nil) || !bytes.Equal(want.Key, got.Key):
		return fmt.Errorf("key %q, want %q", got.Key, want.Key)
	case (want.Value == nil) != (got.Value == nil) || !bytes.Equal(want.Value, got.Value):
		return fmt.Errorf("value differs")
	case want.Timestamp.UnixMilli() != got.Timestamp.UnixMilli():
		return fmt.Errorf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
	case !slices.EqualFunc(want.Headers, got.Headers, func(a, b stream.Header) bool {
		return a.Key == b.Key && (a.Value == nil) == (b.Value == nil) && bytes.Equal(a.Value, b.Value)
	}):
		return fmt.Errorf("headers %v, want %v", got.Headers, want.Headers)
	}
	return nil
}

// buildDemo fills dir with an "orders" topic (keyed orders over three
// partitions, with headers, a tombstone and timestamps an hour apart) and a
// "billing" group half way through it.
func buildDemo(ctx context.Context, dir string) error {
	b, err := stream.Open(dir, &stream.Options{Partitioner: stream.KafkaPartitioner{}})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic("orders", stream.TopicConfig{Partitions: 3}); err != nil {
		return err
	}
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var recs []*stream.Record
	for i := range 200 {
		recs = append(recs, &stream.Record{
			Topic:     "orders",
			Key:       fmt.Appendf(nil, "customer-%d", i%17),
			Value:     fmt.Appendf(nil, `{"order":%d,"amount":%d}`, i, 10+i%90),
			Headers:   []stream.Header{{Key: "source", Value: []byte("demo")}, {Key: "trace", Value: nil}},
			Timestamp: start.Add(time.Duration(i) * time.Hour),
		})
	}
	// A tombstone: the customer's record is deleted (nil value).
	recs = append(recs, &stream.Record{Topic: "orders", Key: []byte("customer-3"),
		Timestamp: start.Add(200 * time.Hour)})
	if err := b.Publish(ctx, recs...); err != nil {
		return err
	}
	// A "billing" group that processed the first half of each partition.
	info, err := b.DescribeTopic("orders")
	if err != nil {
		return err
	}
	committed := map[stream.TopicPartition]int64{}
	for _, pi := range info.Partitions {
		committed[stream.TopicPartition{Topic: "orders", Partition: pi.Partition}] = pi.EndOffset / 2
	}
	return b.SetCommittedOffsets("billing", committed)
}
