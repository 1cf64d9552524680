package kafka_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch v2 attribute bits (Kafka's DefaultRecordBatch).
const (
	attrCodec         = 0x07
	attrTransactional = 0x10
	attrControl       = 0x20
	attrDeleteHorizon = 0x40 // KIP-534: baseTimestamp is the delete horizon
)

// franzRecord is a data record as franz-go decodes it from a segment file.
type franzRecord struct {
	offset, timestamp int64
	key, value        []byte
	headers           []stream.Header
}

// franzBatch is a batch as franz-go reads it from a segment file.
type franzBatch struct {
	kmsg.RecordBatch
	file    string
	records []franzRecord // data records; none for a control batch
	markers int           // control records
}

// readSegmentsWithFranz reads the .log files of a partition directory
// byte by byte with franz-go alone (kmsg.RecordBatch, kmsg.Record, kgo's
// decompressor), checking what Kafka's log loader checks of each batch:
// magic 2, the length, the CRC-32C over the bytes from the attributes on.
// A zero-filled tail (preallocated, never written) ends a file.
func readSegmentsWithFranz(t *testing.T, dir string) []franzBatch {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	slices.Sort(names) // 20-digit names sort by offset
	require.NotEmpty(t, names)
	dec := kgo.DefaultDecompressor()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	var out []franzBatch
	for _, name := range names {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		for len(data) > 0 {
			if !slices.ContainsFunc(data, func(c byte) bool { return c != 0 }) {
				break
			}
			var b franzBatch
			b.file = filepath.Base(name)
			require.NoError(t, b.ReadFrom(data), "%s", name)
			size := int(b.Length) + 12
			require.LessOrEqual(t, size, len(data))
			require.EqualValues(t, 2, b.Magic)
			require.Equal(t, uint32(b.CRC), crc32.Checksum(data[21:size], castagnoli), "CRC of the batch at %d in %s", b.FirstOffset, name)
			data = data[size:]

			raw, err := dec.Decompress(b.Records, kgo.CompressionCodecType(b.Attributes&attrCodec))
			require.NoError(t, err, "batch at %d", b.FirstOffset)
			for range b.NumRecords {
				length, n := binary.Varint(raw)
				require.Positive(t, n)
				require.LessOrEqual(t, n+int(length), len(raw))
				var r kmsg.Record
				require.NoError(t, r.ReadFrom(raw[:n+int(length)]))
				raw = raw[n+int(length):]
				if b.Attributes&attrControl != 0 {
					b.markers++
					continue
				}
				fr := franzRecord{offset: b.FirstOffset + int64(r.OffsetDelta), timestamp: b.FirstTimestamp + r.TimestampDelta64,
					key: r.Key, value: r.Value}
				for _, h := range r.Headers {
					fr.headers = append(fr.headers, stream.Header{Key: h.Key, Value: h.Value})
				}
				b.records = append(b.records, fr)
			}
			require.Empty(t, raw, "bytes after the records of the batch at %d", b.FirstOffset)
			out = append(out, b)
		}
	}
	return out
}

// TestCompactedSegmentsKafkaFormat writes a compacted topic with the
// embedded broker (keyed records in every codec, tombstones, a committed
// and an aborted transaction), cleans it with Broker.Compact, and reads
// the partition's segment files with franz-go alone: every batch is a
// valid v2 batch with its CRC, base offsets ascend with gaps, tombstones
// kept by the cleaner carry the delete horizon, the codecs survive the
// rewrite, and the records franz-go decodes are the ones our Reader returns.
func TestCompactedSegmentsKafkaFormat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	const deleteRetention = time.Hour
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever, DisableCleaner: true, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic("kv", stream.TopicConfig{Cleanup: stream.CleanupCompact, SegmentBytes: 4096, DeleteRetention: deleteRetention}))

	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	n := 0
	record := func(key int) *stream.Record {
		n++
		return &stream.Record{Topic: "kv", Key: fmt.Appendf(nil, "key-%03d", key),
			Value:     fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, strings.Repeat("x", n%40)),
			Timestamp: ts.Add(time.Duration(n) * time.Millisecond), Headers: []stream.Header{{Key: "n", Value: fmt.Append(nil, n)}}}
	}
	// Rounds over each codec's 30 keys (codec i: keys 100i to 100i+29),
	// in batches of 10 from a producer with that codec.
	codecs := []stream.Codec{stream.CodecNone, stream.CodecGzip, stream.CodecSnappy, stream.CodecLZ4, stream.CodecZstd}
	for round := range 4 {
		for i, c := range codecs {
			p, err := b.NewProducer(&stream.ProducerOptions{Compression: stream.Compression{Codec: c}})
			require.NoError(t, err)
			for k := range 30 {
				if round >= 2 && i == 0 && k < 5 {
					continue // deleted in round 1
				}
				p.Publish(ctx, record(100*i+k), func(_ *stream.Record, err error) { require.NoError(t, err) })
				if k%10 == 9 {
					require.NoError(t, p.Flush(ctx))
				}
			}
			require.NoError(t, p.Close())
		}
		if round == 1 {
			// Tombstones for keys 0-4, in a batch of their own.
			var del []*stream.Record
			for k := range 5 {
				r := record(k)
				r.Value = nil
				del = append(del, r)
			}
			require.NoError(t, b.Publish(ctx, del...))
			// A committed transaction (keys 900-904) and an aborted one
			// (905-909).
			tp, err := b.NewTxProducer("tx", nil)
			require.NoError(t, err)
			for i, commit := range []bool{true, false} {
				tx, err := tp.Begin()
				require.NoError(t, err)
				for k := range 5 {
					require.NoError(t, tx.Publish(ctx, record(900+5*i+k)))
				}
				if commit {
					require.NoError(t, tx.Commit(ctx))
				} else {
					require.NoError(t, tx.Abort())
				}
			}
			require.NoError(t, tp.Close())
		}
	}
	// A last few records, so that the active segment holds only these.
	for k := range 30 {
		require.NoError(t, b.Publish(ctx, record(1000+k)))
	}

	cleanedAt := time.Now()
	require.NoError(t, b.Compact(ctx, "kv"))
	pdir := filepath.Join(dir, "topics", "kv", "0")
	batches := readSegmentsWithFranz(t, pdir)

	// What our Reader returns: every data record, in offset order.
	rd, err := b.NewReader("kv", 0, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	var ours []franzRecord
	for {
		r, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		c := r.Clone()
		ours = append(ours, franzRecord{offset: c.Offset, timestamp: c.Timestamp.UnixMilli(), key: c.Key, value: c.Value, headers: c.Headers})
	}
	require.NoError(t, rd.Close())

	active := batches[len(batches)-1].file
	var theirs []franzRecord
	next := int64(0)
	gaps, horizons, markers := 0, 0, 0
	codecsKept := map[int16]bool{}
	cleanedKeys := map[string]int64{}
	for _, bt := range batches {
		require.GreaterOrEqual(t, bt.FirstOffset, next, "base offsets ascend (%s)", bt.file)
		if bt.FirstOffset > next {
			gaps++
		}
		next = bt.FirstOffset + int64(bt.LastOffsetDelta) + 1
		theirs = append(theirs, bt.records...)
		markers += bt.markers
		if bt.file == active {
			require.Zero(t, bt.Attributes&attrDeleteHorizon, "the active segment is never cleaned")
			continue
		}
		codecsKept[bt.Attributes&attrCodec] = true
		tombstones := 0
		for _, r := range bt.records {
			require.GreaterOrEqual(t, r.offset, bt.FirstOffset)
			require.LessOrEqual(t, r.offset, bt.FirstOffset+int64(bt.LastOffsetDelta))
			_, dup := cleanedKeys[string(r.key)]
			require.False(t, dup, "key %s twice in the cleaned segments", r.key)
			cleanedKeys[string(r.key)] = r.offset
			if r.value == nil {
				tombstones++
			}
		}
		if tombstones > 0 {
			horizons++
			require.NotZero(t, bt.Attributes&attrDeleteHorizon, "a batch keeping tombstones carries the delete horizon (batch at %d)", bt.FirstOffset)
			horizon := time.UnixMilli(bt.FirstTimestamp)
			require.WithinRange(t, horizon, cleanedAt.Add(deleteRetention-time.Second), time.Now().Add(deleteRetention+time.Second))
		}
		if bt.Attributes&attrControl != 0 {
			require.NotZero(t, bt.Attributes&attrTransactional, "markers end transactions")
		}
	}
	require.Positive(t, gaps, "a cleaned log has offset gaps")
	require.Equal(t, 1, horizons, "the one tombstone batch kept its five tombstones")
	require.Equal(t, 2, markers, "the commit and abort markers stay")
	for _, c := range []int16{0, 1, 2, 3, 4} {
		require.True(t, codecsKept[c], "codec %d survives the rewrite", c)
	}
	for k := range 5 {
		require.Contains(t, cleanedKeys, fmt.Sprintf("key-%03d", k), "tombstones stay within delete.retention.ms")
	}
	for k := 905; k < 910; k++ {
		require.NotContains(t, cleanedKeys, fmt.Sprintf("key-%03d", k), "the aborted transaction's records went")
	}
	require.Contains(t, cleanedKeys, "key-900", "the committed transaction's records stay")

	// franz-go reads what our Reader returns, field for field.
	require.Equal(t, len(ours), len(theirs))
	for i := range ours {
		o, f := ours[i], theirs[i]
		require.Equal(t, o.offset, f.offset)
		require.Equal(t, o.timestamp, f.timestamp, "record timestamps survive the delete horizon (offset %d)", o.offset)
		require.True(t, bytes.Equal(o.key, f.key))
		require.Equal(t, o.value == nil, f.value == nil, "offset %d", o.offset)
		require.True(t, bytes.Equal(o.value, f.value))
		require.Equal(t, o.headers, f.headers)
	}
}
