package batch_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// compressAll compresses each batch with codecs[i%len(codecs)], keeping
// the model records.
func compressAll(t testing.TB, batches []batchtest.Batch, codecs ...batch.Codec) []batchtest.Batch {
	t.Helper()
	out := make([]batchtest.Batch, len(batches))
	for i, b := range batches {
		out[i] = batchtest.Batch{Data: compress(t, b.Data, codecs[i%len(codecs)]), Records: b.Records}
	}
	return out
}

// walkCopy is walk for logs with compressed batches: it copies each record
// before the next, whose batch may reuse the memory.
func walkCopy(t *testing.T, it *batch.Iter, data []byte, from, minTS int64) ([]batchtest.Record, int64, error) {
	t.Helper()
	it.Reset(data, from)
	if minTS != math.MinInt64 {
		it.SkipOlder(minTS)
	}
	var out []batchtest.Record
	var r batch.Record
	for it.Next(&r) {
		out = append(out, copyRecord(r))
	}
	return out, it.Offset(), it.Err()
}

// mixedLog is batches of every codec and none back to back, with a
// compressed control batch among them.
func mixedLog(t *testing.T) []batchtest.Batch {
	rng := rand.New(rand.NewPCG(11, 11))
	batches := compressAll(t, batchtest.RandomBatches(t, rng, 0, 6, 8, 40), batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd)
	marker := control(batches[5].Next())
	marker.Data = compress(t, marker.Data, batch.Zstd)
	batches = append(batches, marker)
	more := batchtest.RandomBatches(t, rng, marker.Next(), 5, 8, 40)
	return append(batches, compressAll(t, more, batch.Zstd, batch.None, batch.LZ4, batch.Snappy, batch.Gzip)...)
}

// TestWalkCompressedFromEveryOffset: from any offset, a walk over mixed
// batches yields exactly the records at and after it, skipping the
// earlier records of a compressed batch it starts in and the control
// batch, and ends at the log's end.
func TestWalkCompressedFromEveryOffset(t *testing.T) {
	batches := mixedLog(t)
	data := batchtest.Concat(batches)
	model := batchtest.Records(batches)
	end := batches[len(batches)-1].Next()
	var it batch.Iter
	for from := int64(0); from <= end+1; from++ {
		var want []batchtest.Record
		for _, r := range model {
			if r.Offset >= from {
				want = append(want, r)
			}
		}
		got, next, err := walkCopy(t, &it, data, from, math.MinInt64)
		require.NoError(t, err)
		batchtest.RequireRecords(t, want, got)
		require.Equal(t, max(end, from), next, "from %d", from)
	}
}

// TestWalkCompressedSkipOlder: a lookup by time over mixed batches.
func TestWalkCompressedSkipOlder(t *testing.T) {
	batches := mixedLog(t)
	data := batchtest.Concat(batches)
	model := batchtest.Records(batches)
	var it batch.Iter
	for _, probe := range model {
		var want []batchtest.Record
		for _, r := range model {
			if r.Timestamp >= probe.Timestamp {
				want = append(want, r)
			}
		}
		got, _, err := walkCopy(t, &it, data, 0, probe.Timestamp)
		require.NoError(t, err)
		batchtest.RequireRecords(t, want, got)
	}
}

// TestWalkDamagedCompressedBatch: a compressed batch whose records do not
// decompress ends the walk with ErrCorrupt after the records before it;
// Offset stays at its base and Resume points past it, where a walk goes
// on.
func TestWalkDamagedCompressedBatch(t *testing.T) {
	for _, c := range compressedCodecs {
		t.Run(c.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(12, 12))
			batches := compressAll(t, batchtest.RandomBatches(t, rng, 0, 3, 5, 30), c)
			bad := batches[1].Data
			body := bytes.Clone(bad[batch.HeaderSize:])
			batches[1].Data = withRecords(bad, c, body[:len(body)/2])
			data := batchtest.Concat(batches)

			var it batch.Iter
			got, next, err := walkCopy(t, &it, data, 0, math.MinInt64)
			require.ErrorIs(t, err, batch.ErrCorrupt)
			batchtest.RequireRecords(t, batches[0].Records, got)
			require.Equal(t, batches[1].Base(), next)
			require.Equal(t, batches[2].Base(), it.Resume())

			got, _, err = walkCopy(t, &it, data, it.Resume(), math.MinInt64)
			require.NoError(t, err)
			batchtest.RequireRecords(t, batches[2].Records, got)
		})
	}
}

// filled is a batch at base of n records whose values are fill bytes.
func filled(t *testing.T, base int64, n int, fill byte) batchtest.Batch {
	recs := make([]batchtest.Record, n)
	for i := range recs {
		recs[i] = batchtest.Record{Timestamp: int64(i), Value: bytes.Repeat([]byte{fill}, 100)}
	}
	return batchtest.Encode(t, base, recs)
}

// TestWalkCompressedLifetime documents how long records of compressed
// batches stay valid. By default: until the walk starts the next
// compressed batch, whose records take the same memory. With
// KeepDecompressed: across batches and Resets, until Recycle.
func TestWalkCompressedLifetime(t *testing.T) {
	for _, c := range compressedCodecs {
		t.Run(c.String(), func(t *testing.T) {
			a, b := filled(t, 0, 10, 'a'), filled(t, 10, 10, 'b')
			data := batchtest.Concat(compressAll(t, []batchtest.Batch{a, b}, c))

			var it batch.Iter
			it.Reset(data, 0)
			var first, r batch.Record
			require.True(t, it.Next(&first))
			want := copyRecord(first)
			for range 9 {
				require.True(t, it.Next(&r))
				require.Equal(t, want.Value, first.Value, "valid while its batch is read")
			}
			require.True(t, it.Next(&r))
			require.Equal(t, b.Records[0].Offset, r.Offset)
			require.Equal(t, bytes.Repeat([]byte{'b'}, 100), first.Value, "overwritten by the next compressed batch")

			// Kept: many batches, read back only after walking them all,
			// and after a Reset onto other bytes.
			var batches []batchtest.Batch
			for i := range 20 {
				batches = append(batches, filled(t, int64(10*i), 10, byte('A'+i)))
			}
			logs := [][]byte{
				batchtest.Concat(compressAll(t, batches[:10], c)),
				batchtest.Concat(compressAll(t, batches[10:], c)),
			}
			it.KeepDecompressed()
			var got []batch.Record
			for _, log := range logs {
				it.Reset(log, 0)
				for it.Next(&r) {
					got = append(got, r)
				}
				require.NoError(t, it.Err())
			}
			var gotModel []batchtest.Record
			for _, r := range got {
				gotModel = append(gotModel, batchtest.Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
			}
			batchtest.RequireRecords(t, batchtest.Records(batches), gotModel)

			// Recycled: the memory is reused, in keep mode still. The first
			// Recycle after the arena outgrew its memory replaces the pieces
			// with one arena the size of the whole walk (records in the old
			// pieces stay); from the next on that arena is reused.
			it.Recycle()
			got = got[:0]
			for _, log := range logs {
				it.Reset(log, 0)
				for it.Next(&r) {
					got = append(got, r)
				}
				require.NoError(t, it.Err())
			}
			it.Recycle()
			it.Reset(data, 0)
			for it.Next(&r) {
			}
			require.NoError(t, it.Err())
			overwritten := 0
			for i, r := range batchtest.Records(batches) {
				if !bytes.Equal(r.Value, got[i].Value) {
					overwritten++
				}
			}
			require.NotZero(t, overwritten, "records kept before Recycle are overwritten")
		})
	}
}

// TestWalkCompressedDoesNotAllocate: walking compressed batches again and
// again allocates nothing once the walk's arena and the codecs' pooled
// decoders are warm.
func TestWalkCompressedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	var bld batch.Builder
	value := make([]byte, benchValueBytes)
	streamed := batch.Codec(-1) // zstd frames without their size, as Kafka's Java client writes them
	for _, c := range append(compressedCodecs, streamed) {
		name := c.String()
		if c == streamed {
			name = "zstd streamed"
		}
		t.Run(name, func(t *testing.T) {
			var data []byte
			for i := range 4 {
				orig := batchtest.BenchBatch(&bld, value, int64(i))
				var b batch.Batch
				if c == streamed {
					b = withRecords(orig, batch.Zstd, zstdStream(t, orig[batch.HeaderSize:]))
				} else {
					var err error
					b, err = batch.Compress(nil, orig, c, 0)
					require.NoError(t, err)
				}
				b.SetBaseOffset(int64(i * batchtest.BenchRecords))
				data = append(data, b...)
			}
			var it batch.Iter
			var r batch.Record
			allocs := testing.AllocsPerRun(20, func() {
				it.Reset(data, 0)
				n := 0
				for it.Next(&r) {
					n++
				}
				if it.Err() != nil || n != 4*batchtest.BenchRecords {
					t.Fatal(n, it.Err())
				}
			})
			require.Zero(t, allocs, "per walk of 4 batches")
		})
	}
}

// zstdStream is src in a zstd frame that does not state its size.
func zstdStream(t testing.TB, src []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = zw.Write(src)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestWalkCarriesStoppedBatch: a keeping walk that stops inside a
// compressed batch keeps it decompressed through Recycle, and the next walk
// of the same source that starts in it decodes from that copy. Shown by
// damaging the batch's compressed bytes (not its header) between the walks:
// the carried copy still reads, a walk of another source does not.
func TestWalkCarriesStoppedBatch(t *testing.T) {
	for _, c := range compressedCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := compressAll(t, []batchtest.Batch{filled(t, 0, 10, 'a')}, c)[0]
			data := append([]byte(nil), b.Data...)
			var it batch.Iter
			it.KeepDecompressed()
			src, other := new(int), new(int)
			it.Reset(data, 0)
			it.SetSource(src)
			var r batch.Record
			for range 4 { // a Poll that stops after 4 records
				require.True(t, it.Next(&r))
			}
			it.Recycle()
			// The stored bytes change under the same header: only a walk
			// that decompresses again sees it.
			for i := batch.HeaderSize; i < len(data); i++ {
				data[i] ^= 0xff
			}

			it.Reset(data, 4)
			it.SetSource(src)
			var got []batchtest.Record
			for it.Next(&r) {
				got = append(got, copyRecord(r))
			}
			require.NoError(t, it.Err())
			batchtest.RequireRecords(t, b.Records[4:], got)

			// Consumed whole: nothing is carried now.
			it.Recycle()
			it.Reset(data, 4)
			it.SetSource(src)
			require.False(t, it.Next(&r))
			require.ErrorIs(t, it.Err(), batch.ErrCorrupt)

			// Another source never takes a carried batch.
			copy(data, b.Data)
			it.Reset(data, 0)
			it.SetSource(src)
			require.True(t, it.Next(&r))
			it.Recycle()
			for i := batch.HeaderSize; i < len(data); i++ {
				data[i] ^= 0xff
			}
			it.Reset(data, 1)
			it.SetSource(other)
			require.False(t, it.Next(&r))
			require.ErrorIs(t, it.Err(), batch.ErrCorrupt)
		})
	}
}

// TestWalkCarryKeepsRecordsValid: records a walk hands out from a carried
// batch stay valid until the next Recycle, as any kept record does, while
// the walk decompresses other batches after it.
func TestWalkCarryKeepsRecordsValid(t *testing.T) {
	a := filled(t, 0, 10, 'a')
	b := filled(t, 10, 10, 'b')
	data := batchtest.Concat(compressAll(t, []batchtest.Batch{a, b}, batch.LZ4))
	var it batch.Iter
	it.KeepDecompressed()
	key := new(int)
	it.Reset(data, 0)
	it.SetSource(key)
	var r batch.Record
	for range 5 {
		require.True(t, it.Next(&r))
	}
	it.Recycle()
	it.Reset(data, 5)
	it.SetSource(key)
	var got []batch.Record
	for it.Next(&r) {
		got = append(got, r)
	}
	require.NoError(t, it.Err())
	require.Len(t, got, 15)
	for i, r := range got {
		want := byte('a')
		if i >= 5 {
			want = 'b'
		}
		require.Equal(t, bytes.Repeat([]byte{want}, 100), r.Value, "record %d", i)
	}
}
