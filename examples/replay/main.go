// Command replay reads a data directory offline and writes its records, from
// a point in time on, to stdout as JSON lines: one object per record, with
// topic, partition, offset, timestamp, key, value and headers, the
// partitions merged in timestamp order. It opens the directory read-only
// (stream.Options.ReadOnly), so it changes nothing and works on a copy
// taken from another machine or on the directory of a stopped application;
// it reads straight from the memory-mapped segment files, without copying
// records, and reports its progress on stderr.
//
//	go run ./examples/replay                                   # builds a demo directory, replays it
//	go run ./examples/replay -dir data/quickstart              # every topic, from the start
//	go run ./examples/replay -dir DIR -topic orders -from 2025-06-01T12:00:00Z > orders.jsonl
//
// Without -dir it first builds a small demo directory in a new temporary
// location and replays it from its twentieth minute; the directory is kept
// for more replays (-dir), and the report says how to remove it.
package main

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/embedstream/stream"
)

func main() {
	dir := flag.String("dir", "", "data directory to replay (default: build a demo directory first)")
	topic := flag.String("topic", "", "topic to replay (default: every topic)")
	from := flag.String("from", "", "replay records with a timestamp at or after this RFC 3339 time (default: from the start)")
	flag.Parse()
	if err := run(context.Background(), *dir, *topic, *from, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir, topic, fromFlag string, stdout, stderr io.Writer) error {
	var from time.Time
	if fromFlag != "" {
		t, err := time.Parse(time.RFC3339Nano, fromFlag)
		if err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		from = t
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "embedstream-replay-")
		if err != nil {
			return err
		}
		dir = d
		defer func() {
			fmt.Fprintf(stderr, "replay: the demo directory stays in %s: replay it with -dir %s, remove it with: rm -r %s\n", dir, dir, dir)
		}()
		if err := buildDemo(ctx, dir); err != nil {
			return fmt.Errorf("build the demo directory: %w", err)
		}
		if fromFlag == "" {
			from = demoStart.Add(20 * time.Minute)
		}
		fmt.Fprintf(stderr, "replay: no -dir given: built a demo directory %s: topic %q, %d records, one a minute from %s\n",
			dir, demoTopic, demoRecords, demoStart.Format(time.RFC3339))
	}
	var topics []string
	if topic != "" {
		topics = []string{topic}
	}
	_, err := replay(ctx, dir, topics, from, stdout, stderr)
	return err
}

// Summary is what a replay did.
type Summary struct {
	Records    int64
	Bytes      int64 // of keys and values
	Partitions int
	Elapsed    time.Duration
}

// replay writes the records of topics (all if none) in dir with a
// timestamp at or after from to out as JSON lines, in timestamp order
// (ties: by topic, partition, offset), with progress on progress.
func replay(ctx context.Context, dir string, topics []string, from time.Time, out, progress io.Writer) (Summary, error) {
	start := time.Now()
	var sum Summary
	b, err := stream.Open(dir, &stream.Options{ReadOnly: true})
	if errors.Is(err, stream.ErrLocked) {
		return sum, fmt.Errorf("%w: a running application holds %s; stop it or replay a copy of the directory", err, dir)
	}
	if err != nil {
		return sum, err
	}
	defer b.Close()
	if len(topics) == 0 {
		topics = b.Topics()
	}

	// One bounded Reader per partition, positioned at from; a heap keeps
	// each partition's next record, earliest first.
	var h cursors
	defer func() {
		for _, c := range h {
			c.r.Close()
		}
	}()
	at := stream.OffsetEarliest
	if !from.IsZero() {
		at = stream.AtTime(from)
	}
	for _, topic := range topics {
		info, err := b.DescribeTopic(topic)
		if err != nil {
			return sum, err
		}
		for _, p := range info.Partitions {
			r, err := b.NewReader(topic, p.Partition, at, &stream.ReaderOptions{StopAtEnd: true})
			if err != nil {
				return sum, err
			}
			sum.Partitions++
			c := &cursor{r: r}
			if ok, err := c.next(ctx); err != nil {
				r.Close()
				return sum, err
			} else if !ok {
				r.Close()
				continue
			}
			h = append(h, c)
		}
	}
	heap.Init(&h)
	fmt.Fprintf(progress, "replay: %s, %d partitions of %s, from %s\n", dir, sum.Partitions, strings.Join(topics, ", "), describeFrom(from))

	enc := json.NewEncoder(out)
	lastReport := start
	for h.Len() > 0 {
		c := h[0]
		if err := enc.Encode(toJSON(c.rec)); err != nil {
			return sum, err
		}
		sum.Records++
		sum.Bytes += int64(len(c.rec.Key) + len(c.rec.Value))
		at := c.rec.Timestamp
		// The record is valid until its Reader's next Next: done with it.
		ok, err := c.next(ctx)
		if err != nil {
			return sum, err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			c.r.Close()
			heap.Pop(&h)
		}
		if sum.Records%4096 == 0 && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			fmt.Fprintf(progress, "replay: %d records so far, at %s\n", sum.Records, at.UTC().Format(time.RFC3339))
		}
	}
	sum.Elapsed = time.Since(start)
	fmt.Fprintf(progress, "replay: done: %d records (%d bytes of keys and values) from %d partitions in %v\n",
		sum.Records, sum.Bytes, sum.Partitions, sum.Elapsed.Round(time.Microsecond))
	return sum, nil
}

func describeFrom(t time.Time) string {
	if t.IsZero() {
		return "the start"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// cursor is one partition's Reader and its current record.
type cursor struct {
	r   *stream.Reader
	rec *stream.Record
}

func (c *cursor) next(ctx context.Context) (bool, error) {
	rec, err := c.r.Next(ctx)
	if errors.Is(err, io.EOF) {
		c.rec = nil
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.rec = rec
	return true, nil
}

// cursors is a min-heap of cursors by their record's timestamp.
type cursors []*cursor

func (h cursors) Len() int { return len(h) }
func (h cursors) Less(i, j int) bool {
	a, b := h[i].rec, h[j].rec
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.Before(b.Timestamp)
	}
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	if a.Partition != b.Partition {
		return a.Partition < b.Partition
	}
	return a.Offset < b.Offset
}
func (h cursors) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursors) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursors) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// jsonRecord is one line of output. Keys, values and header values are
// strings when they are valid UTF-8, and base64 (in the *Base64 field)
// otherwise; a null value is left out.
type jsonRecord struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   string       `json:"timestamp"`
	Key         *string      `json:"key,omitempty"`
	KeyBase64   []byte       `json:"key_base64,omitempty"`
	Value       *string      `json:"value,omitempty"`
	ValueBase64 []byte       `json:"value_base64,omitempty"`
	Headers     []jsonHeader `json:"headers,omitempty"`
}

type jsonHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 []byte  `json:"value_base64,omitempty"`
}

func toJSON(r *stream.Record) jsonRecord {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano)}
	j.Key, j.KeyBase64 = text(r.Key)
	j.Value, j.ValueBase64 = text(r.Value)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueBase64 = text(h.Value)
		j.Headers = append(j.Headers, jh)
	}
	return j
}

// text returns b as a string if it is UTF-8, else as bytes for base64; nil
// stays absent. The JSON encoder copies both, so the record may go.
func text(b []byte) (*string, []byte) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, b
}

// The demo directory: one topic of three partitions, one click a minute.
const (
	demoTopic   = "clicks"
	demoRecords = 30
)

var demoStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func buildDemo(ctx context.Context, dir string) error {
	b, err := stream.Open(dir, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic(demoTopic, stream.TopicConfig{Partitions: 3, SegmentBytes: 1 << 20}); err != nil {
		return err
	}
	users := []string{"ana", "ben", "cleo", "dan", "eve", "finn"}
	pages := []string{"/", "/pricing", "/docs", "/signup", "/blog"}
	for i := range demoRecords {
		user := users[i%len(users)]
		r := &stream.Record{
			Topic:     demoTopic,
			Key:       []byte(user),
			Value:     fmt.Appendf(nil, `{"user":%q,"page":%q}`, user, pages[i%len(pages)]),
			Timestamp: demoStart.Add(time.Duration(i) * time.Minute),
		}
		if i%10 == 9 {
			r.Headers = []stream.Header{{Key: "trace", Value: []byte{0xff, 0xfe, byte(i)}}}
		}
		if err := b.Publish(ctx, r); err != nil {
			return err
		}
	}
	return b.Close()
}
