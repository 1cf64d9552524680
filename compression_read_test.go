package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/segment"
)

// Tests of the read side of compression: Reader, Consumer, OffsetForTime
// and a follower over compressed batches, their memory, and compressed
// batches that do not decompress.

var readCodecs = []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

var crTS0 = time.UnixMilli(1_700_000_000_000)

// crRecord is the record at offset i of partition p, as crPublish writes
// it: compressible values of varying length, a null key now and then,
// headers on some, a timestamp per offset (ms).
func crRecord(topic string, p int32, i int64) *Record {
	r := &Record{Topic: topic, Partition: p, Offset: i, Timestamp: crTS0.Add(time.Duration(i) * time.Millisecond),
		Value: []byte(fmt.Sprintf("p%d-o%d-%s", p, i, bytes.Repeat([]byte("ab"), int(i%40))))}
	if i%7 != 0 {
		r.Key = []byte(fmt.Sprintf("key-%d", i%13))
	}
	if i%5 == 0 {
		r.Headers = []Header{{Key: "h", Value: []byte(fmt.Sprint(i))}, {Key: "null"}}
	}
	return r
}

// crPublish publishes n batches of per records to each of parts
// partitions of topic, one Publish per batch.
func crPublish(t testing.TB, b *Broker, topic string, parts int32, n, per int) {
	t.Helper()
	for p := range parts {
		for i := range n {
			recs := make([]*Record, per)
			for j := range recs {
				recs[j] = crRecord(topic, p, int64(i*per+j))
				recs[j].Offset = 0
			}
			require.NoError(t, b.Publish(context.Background(), recs...))
		}
	}
}

// crSame checks a read record against the one written at its offset.
func crSame(t testing.TB, p int32, got *Record) {
	t.Helper()
	want := crRecord(got.Topic, p, got.Offset)
	require.Equal(t, p, got.Partition)
	require.Equal(t, string(want.Value), string(got.Value), "offset %d", got.Offset)
	require.Equal(t, want.Key, got.Key, "offset %d", got.Offset)
	require.Equal(t, want.Headers, got.Headers, "offset %d", got.Offset)
	require.True(t, want.Timestamp.Equal(got.Timestamp), "offset %d", got.Offset)
}

// crCodecs returns the codec of every batch stored for a partition, up to
// the preallocated tail of an open segment.
func crCodecs(t *testing.T, dir, topic string, p int) []batch.Codec {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, topicsDir, topic, fmt.Sprint(p), "*"+segment.LogSuffix))
	require.NoError(t, err)
	var out []batch.Codec
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for pos := 0; pos < len(data) && batch.Batch(data[pos:]).Size() > batch.LogOverhead; {
			b, err := batch.Parse(data[pos:])
			require.NoError(t, err)
			out = append(out, b.Codec())
			pos += len(b)
		}
	}
	return out
}

// Each codec: every record read back by a Reader, and by a Consumer whose
// Polls return records of many compressed batches at once, all intact
// after the Poll returns.
func TestCompressedReadEveryCodec(t *testing.T) {
	const parts, batches, per = 3, 40, 25
	for _, codec := range readCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			b := openBroker(t, dir, nil)
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: parts, SegmentBytes: 16 << 10,
				Compression: Compression{Codec: codec}}))
			crPublish(t, b, "t", parts, batches, per)
			for p := range parts {
				codecs := crCodecs(t, dir, "t", p)
				require.Len(t, codecs, batches)
				for _, c := range codecs {
					require.Equal(t, codec.wire(), c, "stored compressed")
				}
			}

			for p := range int32(parts) {
				rd, err := b.NewReader("t", p, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
				require.NoError(t, err)
				n := int64(0)
				for rec, err := range rd.All(t.Context()) {
					require.NoError(t, err)
					require.Equal(t, n, rec.Offset)
					crSame(t, p, rec)
					n++
				}
				require.NoError(t, rd.Close())
				require.EqualValues(t, batches*per, n)
			}

			c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 100_000})
			next := map[int32]int64{}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			polls := 0
			for total := 0; total < parts*batches*per; polls++ {
				recs, err := c.Poll(ctx)
				require.NoError(t, err)
				// All checked after the Poll: records of every batch of it
				// alive together.
				for _, r := range recs {
					require.Equal(t, next[r.Partition], r.Offset)
					crSame(t, r.Partition, r)
					next[r.Partition]++
				}
				total += len(recs)
			}
			require.LessOrEqual(t, polls, 3*parts, "a Poll gathers many batches")
		})
	}
}

// A Poll's records, from many small compressed batches, stay intact until
// the next Poll, which reuses their memory: in steady state Poll and Next
// allocate (almost) nothing per record.
func TestCompressedReadMemory(t *testing.T) {
	const batches, per = 200, 10
	for _, codec := range readCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			b := openBroker(t, "", nil)
			require.NoError(t, b.CreateTopic("t", TopicConfig{Compression: Compression{Codec: codec}}))
			value := bytes.Repeat([]byte("compressible "), 8)
			for range batches {
				recs := make([]*Record, per)
				for j := range recs {
					recs[j] = &Record{Topic: "t", Value: value}
				}
				require.NoError(t, b.Publish(t.Context(), recs...))
			}
			const total = batches * per

			c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: total})
			tp := TopicPartition{Topic: "t"}
			ctx := t.Context()
			first := func() (*byte, []*Record) {
				recs, err := c.Poll(ctx)
				require.NoError(t, err)
				require.Len(t, recs, total)
				for i, r := range recs {
					require.EqualValues(t, i, r.Offset)
					require.Equal(t, value, r.Value)
				}
				require.NoError(t, c.SeekToBeginning(tp))
				return unsafe.SliceData(recs[0].Value), recs
			}
			first()
			p2, _ := first()
			p3, _ := first()
			require.Equal(t, p2, p3, "the next Poll decompresses into the same memory")

			var failed error
			allocs := testing.AllocsPerRun(20, func() {
				recs, err := c.Poll(ctx)
				if err != nil || len(recs) != total || !bytes.Equal(recs[total-1].Value, value) {
					failed = fmt.Errorf("poll: %d records, %v", len(recs), err)
				}
				if err := c.SeekToBeginning(tp); err != nil {
					failed = err
				}
			})
			require.NoError(t, failed)
			t.Logf("%v: %.1f allocations per Poll of %d records", codec, allocs, total)
			if !raceEnabled {
				require.LessOrEqual(t, allocs/total, 0.01, "allocations per record polled")
			}

			rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
			require.NoError(t, err)
			defer rd.Close()
			for range per { // the first batch: the buffer is made
				_, err := rd.Next(ctx)
				require.NoError(t, err)
			}
			allocs = testing.AllocsPerRun(total-2*per, func() {
				rec, err := rd.Next(ctx)
				if err != nil || !bytes.Equal(rec.Value, value) {
					failed = fmt.Errorf("offset %d: %v", rd.Offset(), err)
				}
			})
			require.NoError(t, failed)
			t.Logf("%v: %.3f allocations per Next", codec, allocs)
			if !raceEnabled {
				require.LessOrEqual(t, allocs, 0.01, "allocations per Next")
			}
		})
	}
}

// A Reader from an offset inside a compressed batch, and a Consumer Seek
// there, start at that very record.
func TestCompressedSeekIntoBatch(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Compression: Compression{Codec: CodecZstd}}))
	crPublish(t, b, "t", 1, 10, 50)
	for _, at := range []int64{0, 1, 49, 50, 77, 123, 499} {
		rd, err := b.NewReader("t", 0, AtOffset(at), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		rec, err := rd.Next(t.Context())
		require.NoError(t, err)
		require.Equal(t, at, rec.Offset)
		crSame(t, 0, rec)
		require.NoError(t, rd.Close())
	}
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 3})
	_, err := c.Poll(t.Context())
	require.NoError(t, err)
	for _, at := range []int64{123, 7, 451} {
		require.NoError(t, c.Seek(TopicPartition{Topic: "t"}, at))
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Len(t, recs, 3)
		for i, r := range recs {
			require.Equal(t, at+int64(i), r.Offset)
			crSame(t, 0, r)
		}
	}
}

// OffsetForTime (and AtTime) finds the exact record inside compressed
// batches, also when timestamps within a batch are out of order.
func TestCompressedOffsetForTime(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Compression: Compression{Codec: CodecLZ4}, MaxTimestampAhead: -1}))
	crPublish(t, b, "t", 1, 8, 25)
	for i := int64(0); i < 200; i += 3 {
		off, err := b.OffsetForTime("t", 0, crTS0.Add(time.Duration(i)*time.Millisecond))
		require.NoError(t, err)
		require.Equal(t, i, off)
	}
	off, err := b.OffsetForTime("t", 0, crTS0.Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, -1, off)
	rd, err := b.NewReader("t", 0, AtTime(crTS0.Add(137*time.Millisecond)), nil)
	require.NoError(t, err)
	defer rd.Close()
	rec, err := rd.Next(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 137, rec.Offset)

	// One batch whose records' timestamps run backwards.
	var bld batch.Builder
	bld.Reset(0)
	for i := range 10 {
		bld.Add(crTS0.Add(time.Hour).UnixMilli()-int64(i), nil, []byte{byte(i)}, nil)
	}
	zb, err := batch.Compress(nil, bld.Finish(), batch.Gzip, 0)
	require.NoError(t, err)
	_, l, err := b.partitionLog("t", 0)
	require.NoError(t, err)
	_, err = l.Append(zb)
	require.NoError(t, err)
	off, err = b.OffsetForTime("t", 0, crTS0.Add(time.Hour).Add(-5*time.Millisecond))
	require.NoError(t, err)
	require.EqualValues(t, 200, off, "the first record at or after the time, by offset")
	off, err = b.OffsetForTime("t", 0, crTS0.Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 200, off)
}

// crBatch builds a batch of n records (values "m<i>") compressed with c
// (None: not), timestamps from ts.
func crBatch(t testing.TB, c batch.Codec, n int, ts int64) batch.Batch {
	t.Helper()
	var bld batch.Builder
	bld.Reset(0)
	for i := range n {
		bld.Add(ts+int64(i), nil, []byte(fmt.Sprint("m", i)), nil)
	}
	b := bld.Finish()
	if c == batch.None {
		return append(batch.Batch(nil), b...)
	}
	out, err := batch.Compress(nil, b, c, 0)
	require.NoError(t, err)
	return out
}

// Compressed batches of every codec and uncompressed ones, mixed in one
// partition, read in order; the topic keeps each as written.
func TestCompressedMixedBatches(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxTimestampAhead: -1}))
	_, l, err := b.partitionLog("t", 0)
	require.NoError(t, err)
	codecs := []batch.Codec{batch.None, batch.Zstd, batch.None, batch.Gzip, batch.Snappy, batch.None, batch.LZ4, batch.Zstd}
	var want []string
	for i, c := range codecs {
		_, err := l.Append(crBatch(t, c, 5+i, crTS0.UnixMilli()+int64(100*i)))
		require.NoError(t, err)
		for j := range 5 + i {
			want = append(want, fmt.Sprint("m", j))
		}
	}
	// And records Publish writes.
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("published")}))
	want = append(want, "published")
	require.Equal(t, append(codecs, batch.None), crCodecs(t, dir, "t", 0))

	require.Equal(t, want, values(t, b, "t", 0))
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	got := cgPollN(t, c, len(want))
	for i, r := range got {
		require.EqualValues(t, i, r.Offset)
		require.Equal(t, want[i], string(r.Value))
	}
	off, err := b.OffsetForTime("t", 0, time.UnixMilli(crTS0.UnixMilli()+int64(100*4)+2))
	require.NoError(t, err)
	require.EqualValues(t, 5+6+7+8+2, off, "inside the snappy batch")
}

// A follower reads the compressed topic its owner writes, with a Reader
// and a Consumer.
func TestCompressedFollower(t *testing.T) {
	dir := t.TempDir()
	owner := openBroker(t, dir, nil)
	require.NoError(t, owner.CreateTopic("t", TopicConfig{Partitions: 2, SegmentBytes: 8 << 10,
		Compression: Compression{Codec: CodecSnappy}}))
	crPublish(t, owner, "t", 2, 10, 20)
	f := openFollower(t, dir, nil)
	for p := range int32(2) {
		rd, err := f.NewReader("t", p, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		n := int64(0)
		for rec, err := range rd.All(t.Context()) {
			require.NoError(t, err)
			require.Equal(t, n, rec.Offset)
			crSame(t, p, rec)
			n++
		}
		require.EqualValues(t, 200, n)
		require.NoError(t, rd.Close())
	}

	// Written after the follower opened: seen at a Refresh.
	rd, err := f.NewReader("t", 1, OffsetLatest, nil)
	require.NoError(t, err)
	defer rd.Close()
	more := make([]*Record, 30)
	for i := range more {
		more[i] = crRecord("t", 1, 200+int64(i))
		more[i].Offset = 0
	}
	require.NoError(t, owner.Publish(t.Context(), more...))
	require.NoError(t, f.Refresh())
	for i := range more {
		rec, err := rd.Next(t.Context())
		require.NoError(t, err)
		require.EqualValues(t, 200+i, rec.Offset)
		crSame(t, 1, rec)
	}

	c := cgSubscribe(t, f, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 1000})
	next := map[int32]int64{}
	for total := 0; total < 430; {
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		for _, r := range recs {
			require.Equal(t, next[r.Partition], r.Offset)
			crSame(t, r.Partition, r)
			next[r.Partition]++
		}
		total += len(recs)
	}
}

// recrc sets b's codec, length and CRC after its bytes were changed.
func recrc(b []byte, c batch.Codec) batch.Batch {
	attrs := binary.BigEndian.Uint16(b[21:]) &^ batch.AttrCompressionMask
	binary.BigEndian.PutUint16(b[21:], attrs|uint16(c))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batch.LogOverhead))
	binary.BigEndian.PutUint32(b[17:], batch.Batch(b).ComputeCRC())
	return b
}

// badBatches are compressed batches whose CRC holds but whose records do
// not decompress, of 3 records each.
func badBatches(t testing.TB) map[string]batch.Batch {
	t.Helper()
	out := map[string]batch.Batch{}
	// Damaged payloads, made CRC-valid.
	for _, c := range []batch.Codec{batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		b := crBatch(t, c, 3, crTS0.UnixMilli())
		for i := batch.HeaderSize + 4; i < len(b); i += 3 {
			b[i] ^= 0x5a
		}
		out["damaged "+c.String()] = recrc(b, c)
	}
	// Zip bombs: a few KiB that expand past the cap.
	zeros := make([]byte, batch.MaxUncompressedBytes+1)
	for _, c := range []batch.Codec{batch.Gzip, batch.Zstd} {
		b := append(batch.Batch(nil), crBatch(t, batch.None, 3, crTS0.UnixMilli())[:batch.HeaderSize]...)
		b, err := batch.AppendCompressed(b, c, 0, zeros)
		require.NoError(t, err)
		require.Less(t, len(b), 1<<20)
		out["bomb "+c.String()] = recrc(b, c)
	}
	// Records that decompress but do not decode.
	b := append(batch.Batch(nil), crBatch(t, batch.None, 3, crTS0.UnixMilli())[:batch.HeaderSize]...)
	b, err := batch.AppendCompressed(b, batch.LZ4, 0, []byte("not records at all"))
	require.NoError(t, err)
	out["garbage lz4"] = recrc(b, batch.LZ4)
	return out
}

// A compressed batch that passes its CRC but does not decompress (damaged,
// or a zip bomb) survives recovery, and reads report it as a
// *CorruptError for its offsets alone, going on past it; a zip bomb costs
// no more memory than the cap.
func TestCompressedBadBatch(t *testing.T) {
	for name, bad := range badBatches(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Open(dir, &Options{Sync: SyncNever})
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic("t", TopicConfig{MaxTimestampAhead: -1, Compression: Compression{Codec: CodecZstd}}))
			ctx := t.Context()
			before := crTS0.Add(-time.Hour)
			require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte("v0"), Timestamp: before}, &Record{Topic: "t", Value: []byte("v1"), Timestamp: before}))
			_, l, err := b.partitionLog("t", 0)
			require.NoError(t, err)
			_, err = l.Append(bad) // offsets 2-4
			require.NoError(t, err)
			require.NoError(t, b.Publish(ctx, &Record{Topic: "t", Value: []byte("v5")}, &Record{Topic: "t", Value: []byte("v6")}))
			require.NoError(t, b.Close())
			stored, err := os.ReadFile(filepath.Join(dir, topicsDir, "t", "0", segment.FileName(0, segment.LogSuffix)))
			require.NoError(t, err)

			// Recovery checks CRCs, never decompresses: the batch stays.
			b = openBroker(t, dir, &Options{Sync: SyncNever})
			require.Equal(t, tbEnds(t, b, "t"), []int64{7})
			require.Zero(t, b.Stats().CorruptBatches, "recovery saw nothing wrong")

			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
			require.NoError(t, err)
			defer rd.Close()
			var got []string
			var corrupt []*CorruptError
			for {
				rec, err := rd.Next(ctx)
				if err == io.EOF {
					break
				}
				if ce := (*CorruptError)(nil); errors.As(err, &ce) {
					corrupt = append(corrupt, ce)
					continue
				}
				require.NoError(t, err)
				got = append(got, string(rec.Value))
			}
			runtime.ReadMemStats(&ms1)
			require.Equal(t, []string{"v0", "v1", "v5", "v6"}, got)
			require.Len(t, corrupt, 1)
			require.ErrorIs(t, corrupt[0], ErrCorrupt)
			require.Equal(t, int64(2), corrupt[0].Offset)
			require.Equal(t, int64(5), corrupt[0].Next)
			require.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(3*batch.MaxUncompressedBytes), "bytes allocated by the read")

			c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
			recs, err := c.Poll(ctx)
			require.NoError(t, err)
			require.Len(t, recs, 2)
			_, err = c.Poll(ctx)
			var ce *CorruptError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, int64(2), ce.Offset)
			require.Equal(t, int64(5), ce.Next)
			_, err = c.Poll(ctx)
			require.ErrorAs(t, err, &ce, "a group stays at damage until told")
			require.NoError(t, c.Seek(TopicPartition{Topic: "t"}, ce.Next))
			recs, err = c.Poll(ctx)
			require.NoError(t, err)
			require.Len(t, recs, 2)
			require.Equal(t, "v5", string(recs[0].Value))

			// A time lookup passes it as damage.
			off, err := b.OffsetForTime("t", 0, crTS0)
			require.NoError(t, err)
			require.EqualValues(t, 5, off)

			require.NoError(t, b.Close())
			after, err := os.ReadFile(filepath.Join(dir, topicsDir, "t", "0", segment.FileName(0, segment.LogSuffix)))
			require.NoError(t, err)
			require.Equal(t, stored, after[:len(stored)], "reading changed nothing")
		})
	}
}

// A batch of a codec that is not Kafka's (5-7) is ErrUnsupported, after
// the records before it; the Reader stays there.
func TestReaderUnknownCodec(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxTimestampAhead: -1}))
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("plain")}))
	_, l, err := b.partitionLog("t", 0)
	require.NoError(t, err)
	for _, c := range []batch.Codec{5, 6, 7} {
		_, err = l.Append(recrc(crBatch(t, batch.None, 2, crTS0.UnixMilli()), c))
		require.NoError(t, err)
	}
	rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer rd.Close()
	rec, err := rd.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, "plain", string(rec.Value))
	for range 2 {
		_, err = rd.Next(t.Context())
		require.ErrorIs(t, err, ErrUnsupported)
		require.NotErrorIs(t, err, ErrCorrupt)
		require.EqualValues(t, 1, rd.Offset())
	}
	c := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest})
	_, err = c.Poll(t.Context())
	require.NoError(t, err)
	_, err = c.Poll(t.Context())
	require.ErrorIs(t, err, ErrUnsupported)
}

// Damage to a compressed batch that many offsets take in few bytes costs
// only its records: recovery and reads find the batches after it, though
// they start more offsets after the damage than it has bytes.
func TestCompressedDamageKeepsWhatFollows(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Compression: Compression{Codec: CodecZstd}}))
	const batches, per = 6, 5000
	for range batches {
		recs := make([]*Record, per)
		for j := range recs {
			recs[j] = &Record{Topic: "t", Value: []byte("same")}
		}
		require.NoError(t, b.Publish(t.Context(), recs...))
	}
	require.NoError(t, b.Close())
	sb := storedBatches(t, dir, "t", 0)
	require.Len(t, sb, batches)
	require.Less(t, sb[2].end-sb[2].pos, int64(per), "fewer bytes than offsets")
	data, err := os.ReadFile(sb[2].file)
	require.NoError(t, err)
	data[sb[2].end-3] ^= 0xff
	require.NoError(t, os.WriteFile(sb[2].file, data, 0o600))

	for range 2 { // after recovery, and after a clean close
		b = openBroker(t, dir, &Options{Sync: SyncNever})
		require.Equal(t, []int64{batches * per}, tbEnds(t, b, "t"))
		rd, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		var offsets []int64
		var corrupt []*CorruptError
		for {
			rec, err := rd.Next(t.Context())
			if err == io.EOF {
				break
			}
			if ce := (*CorruptError)(nil); errors.As(err, &ce) {
				corrupt = append(corrupt, ce)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, "same", string(rec.Value))
			offsets = append(offsets, rec.Offset)
		}
		require.NoError(t, rd.Close())
		require.True(t, slices.Equal(offsetsExcept(batches*per, 2*per, 3*per-1), offsets), "%d offsets read", len(offsets))
		require.Len(t, corrupt, 1)
		require.Equal(t, int64(2*per), corrupt[0].Offset)
		require.Equal(t, int64(3*per), corrupt[0].Next)
		require.NoError(t, b.Close())
	}
}

// TestCompressedPollsInsideBatch: Polls smaller than a compressed batch
// resume inside it (from the copy the last Poll left decompressed, see
// batch.Iter.SetSource) and return every record once, in order, intact
// until the next Poll, across partitions and a Seek back.
func TestCompressedPollsInsideBatch(t *testing.T) {
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			b := openBroker(t, "", nil)
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, Compression: Compression{Codec: c}}))
			want := map[int32][]string{}
			for p := range int32(2) {
				var recs []*Record
				for i := range 300 {
					v := fmt.Sprintf("p%d-%04d-%s", p, i, strings.Repeat("x", i%50))
					recs = append(recs, &Record{Topic: "t", Partition: p, Value: []byte(v)})
					want[p] = append(want[p], v)
				}
				require.NoError(t, b.Publish(t.Context(), recs[:200]...)) // one batch of 200
				require.NoError(t, b.Publish(t.Context(), recs[200:]...))
			}
			cons, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 7})
			require.NoError(t, err)
			defer cons.Close()
			got := map[int32][]string{}
			for len(got[0])+len(got[1]) < 600 {
				recs, err := cons.Poll(t.Context())
				require.NoError(t, err)
				seen := make([]string, len(recs))
				for i, r := range recs {
					seen[i] = string(r.Value)
					got[r.Partition] = append(got[r.Partition], string(r.Value))
				}
				for i, r := range recs { // still intact after the whole Poll
					require.Equal(t, seen[i], string(r.Value))
				}
			}
			require.Equal(t, want, got)

			require.NoError(t, cons.Seek(TopicPartition{Topic: "t", Partition: 1}, 195))
			recs, err := cons.Poll(t.Context())
			require.NoError(t, err)
			require.NotEmpty(t, recs)
			require.Equal(t, int64(195), recs[0].Offset)
			require.Equal(t, want[1][195], string(recs[0].Value))
		})
	}
}
