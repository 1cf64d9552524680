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
// deleted by retention) and has no gaps: a record at offset n is at offset n
// on the cluster too. Otherwise each partition's offsets shift down by its
// log start, which mirror reports, and the committed offsets it copies shift
// the same way. A compacted topic's partitions have gaps (the cleaner
// removed superseded records, offsets never change): the copies get
// consecutive offsets, and a committed offset moves to the copy of the
// record it pointed at (or the one after a gap). The topic is created
// compacted on the cluster too, with the same compaction settings.
// Run it while the application is stopped: records or commits made during
// the copy are not copied.
package main

import (
	"bytes"
	"cmp"
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
	moved := map[stream.TopicPartition]OffsetMap{}
	for _, t := range topics {
		m, err := Mirror(ctx, src, dst, t, stdout)
		if err != nil {
			return fmt.Errorf("topic %q: %w", t, err)
		}
		maps.Copy(moved, m)
	}
	return MirrorGroups(ctx, src, dst.Admin(), moved, stdout)
}

// OffsetMap is where a partition's records went: runs of consecutive
// source offsets and the offset each run's first copy got. One run, from
// the log start, for a partition without gaps; one per stretch between
// gaps for a compacted one.
type OffsetMap []offsetRun

type offsetRun struct {
	src, dst, n int64 // source offsets [src, src+n) are at [dst, dst+n)
}

// add notes that the source record at off was copied next, as the copy
// numbered i from the first.
func (m *OffsetMap) add(off, i int64) {
	if k := len(*m) - 1; k >= 0 && (*m)[k].src+(*m)[k].n == off {
		(*m)[k].n++
		return
	}
	*m = append(*m, offsetRun{src: off, dst: i, n: 1})
}

// shift moves every copy's offset up by first, the offset the first copy got.
func (m OffsetMap) shift(first int64) {
	for i := range m {
		m[i].dst += first
	}
}

// Translate returns where a position in the source (the offset of the next
// record to read, as committed offsets are) is on the cluster: the copy of
// the record at off, or of the first record after it.
func (m OffsetMap) Translate(off int64) int64 {
	if len(m) == 0 {
		return 0 // an empty partition's copy
	}
	i, _ := slices.BinarySearchFunc(m, off, func(r offsetRun, off int64) int { return cmp.Compare(r.src, off) })
	switch {
	case i < len(m) && m[i].src == off:
		return m[i].dst
	case i == 0:
		return m[0].dst // before the first record
	}
	r := m[i-1]
	return r.dst + min(off-r.src, r.n) // inside a run, or in the gap after it
}

// MirrorGroups commits, on the cluster, every source group's committed
// offsets of the partitions in moved, moved as the records were (see
// OffsetMap.Translate). Groups must have no members on the cluster (a
// cluster refuses admin commits to a live group).
func MirrorGroups(ctx context.Context, src *stream.Broker, adm *kadm.Client, moved map[stream.TopicPartition]OffsetMap, out io.Writer) error {
	for _, g := range src.Groups() {
		committed, err := src.CommittedOffsets(g)
		if err != nil {
			return err
		}
		var offs kadm.Offsets
		for tp, off := range committed {
			m, ok := moved[tp]
			if !ok {
				continue // a topic not copied
			}
			offs.AddOffset(tp.Topic, tp.Partition, m.Translate(off), -1)
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
// stream.ManualPartitioner). It writes what it did to out, and returns
// where each partition's records went.
func Mirror(ctx context.Context, src *stream.Broker, dst stream.Client, topic string, out io.Writer) (map[stream.TopicPartition]OffsetMap, error) {
	info, err := src.DescribeTopic(topic)
	if err != nil {
		return nil, err
	}
	// Partitions, retention, the record size limit and the compression
	// carry over: a topic with a codec of its own gets it on the cluster,
	// which compresses the copies with it (reads decompress them on both
	// sides, whatever the codec). LogAppendTime does not: the cluster would
	// stamp the copies with the time of copying instead of keeping their
	// timestamps. A compacted topic stays compacted, with its settings.
	c := info.Config
	cfg := stream.TopicConfig{
		Partitions:             len(info.Partitions),
		Retention:              c.Retention,
		RetentionBytes:         c.RetentionBytes,
		MaxRecordBytes:         c.MaxRecordBytes,
		Compression:            c.Compression,
		Cleanup:                c.Cleanup,
		MinCleanableDirtyRatio: c.MinCleanableDirtyRatio,
		MinCompactionLag:       c.MinCompactionLag,
		MaxCompactionLag:       c.MaxCompactionLag,
		DeleteRetention:        c.DeleteRetention,
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
	fmt.Fprintf(out, "%s: created with %d partitions, compression %v, cleanup policy %v\n", topic, cfg.Partitions, cfg.Compression, cfg.Cleanup)

	total := 0
	moved := map[stream.TopicPartition]OffsetMap{}
	for _, pi := range info.Partitions {
		m, err := copyPartition(ctx, src, dst, topic, pi)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", pi.Partition, err)
		}
		moved[stream.TopicPartition{Topic: topic, Partition: pi.Partition}] = m
		if len(m) == 0 {
			fmt.Fprintf(out, "%s/%d: empty\n", topic, pi.Partition)
			continue
		}
		head, tail := m[0], m[len(m)-1]
		n := tail.dst + tail.n - head.dst
		total += int(n)
		srcRange := fmt.Sprintf("offsets %d-%d", head.src, tail.src+tail.n-1)
		if len(m) > 1 {
			srcRange += fmt.Sprintf(" with %s (compacted)", plural(len(m)-1, "gap"))
		}
		if len(m) == 1 && head.dst == head.src {
			fmt.Fprintf(out, "%s/%d: copied %d records, %s kept\n", topic, pi.Partition, n, srcRange)
		} else {
			fmt.Fprintf(out, "%s/%d: copied %d records, %s now %d-%d\n", topic, pi.Partition, n, srcRange, head.dst, head.dst+n-1)
		}
	}
	if err := Verify(ctx, src, dst, topic); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "%s: verified %d records (partition, order, key, value, headers, timestamp)\n", topic, total)
	return moved, nil
}

// plural prints n and word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// copyPartition publishes one partition's records, in order, to the same
// partition of dst, and returns where they went (the cluster numbers the
// copies of a new partition consecutively, in the order published).
func copyPartition(ctx context.Context, src *stream.Broker, dst stream.Client, topic string, pi stream.PartitionInfo) (OffsetMap, error) {
	rd, err := src.NewReader(topic, pi.Partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var (
		mu       sync.Mutex
		firstErr error
		first    int64 = -1
	)
	var m OffsetMap
	n := int64(0)
	for rec, err := range rd.All(ctx) {
		if err != nil {
			return nil, err
		}
		m.add(rec.Offset, n)
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
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return nil, firstErr
	}
	m.shift(first)
	return m, nil
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
