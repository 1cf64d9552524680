package batch_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
)

// The golden fixtures are record batches foreign Kafka clients compressed
// (franz-go, and librdkafka through kcat), captured from their Produce
// requests, with the records franz-go decodes from them; README.md beside
// them says how they were made. Our decoder must read the same records
// from every one of them.

const goldenDir = "testdata/golden"

// goldenRecord is one expected record as the fixtures' JSON holds it:
// Offset is the batch's base offset plus the record's offset delta; null
// keys, values and header values are JSON null, empty ones "".
type goldenRecord struct {
	Offset    int64          `json:"offset"`
	Timestamp int64          `json:"timestamp"`
	Key       []byte         `json:"key"`
	Value     []byte         `json:"value"`
	Headers   []goldenHeader `json:"headers"`
}

type goldenHeader struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

var goldenCodecs = map[string]batch.Codec{
	"none": batch.None, "gzip": batch.Gzip, "snappy": batch.Snappy, "lz4": batch.LZ4, "zstd": batch.Zstd,
}

// goldenFixture is one fixture file: its batches, their codec and the
// records they hold.
type goldenFixture struct {
	name    string
	data    []byte
	codec   batch.Codec
	records []goldenRecord
}

// loadGolden reads every fixture: <client>-<codec>.batch, with its records
// in <client>-<codec>.json, or in records.json (the franz-go fixtures all
// hold the records the generator wrote).
func loadGolden(t *testing.T) []goldenFixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.batch"))
	require.NoError(t, err)
	var out []goldenFixture
	clients := map[string]bool{}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".batch")
		client, codecName, ok := strings.Cut(name, "-")
		require.True(t, ok, "fixture %s: want <client>-<codec>.batch", name)
		codec, ok := goldenCodecs[codecName]
		require.True(t, ok, "fixture %s: unknown codec %q", name, codecName)
		clients[client] = true
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		want := filepath.Join(goldenDir, name+".json")
		if _, err := os.Stat(want); err != nil {
			want = filepath.Join(goldenDir, "records.json")
		}
		js, err := os.ReadFile(want)
		require.NoError(t, err)
		var recs []goldenRecord
		require.NoError(t, json.Unmarshal(js, &recs), "%s", want)
		require.NotEmpty(t, recs, "%s", want)
		out = append(out, goldenFixture{name: name, data: data, codec: codec, records: recs})
	}
	// Every codec from both clients: a fixture lost by mistake fails here.
	require.Len(t, out, 10, "fixtures: %v", paths)
	require.Equal(t, map[string]bool{"franz": true, "librdkafka": true}, clients)
	return out
}

// splitBatches parses data, batches back to back, checking each header
// and CRC.
func splitBatches(t *testing.T, data []byte) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for len(data) > 0 {
		b, err := batch.Parse(data)
		require.NoError(t, err)
		out = append(out, b)
		data = data[len(b):]
	}
	require.NotEmpty(t, out)
	return out
}

// collect gathers the records it yields, copied.
func collect(t *testing.T, it *batch.Iter) []goldenRecord {
	t.Helper()
	var out []goldenRecord
	var r batch.Record
	for it.Next(&r) {
		g := goldenRecord{Offset: r.Offset, Timestamp: r.Timestamp, Key: clone(r.Key), Value: clone(r.Value)}
		for _, h := range r.Headers {
			g.Headers = append(g.Headers, goldenHeader{Key: h.Key, Value: clone(h.Value)})
		}
		out = append(out, g)
	}
	require.NoError(t, it.Err())
	return out
}

func ptr[T any](v T) *T { return &v }

// clone copies b, keeping nil apart from empty.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// requireRecords compares records field by field, null apart from empty.
func requireRecords(t *testing.T, want, got []goldenRecord, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i, w := range want {
		g := got[i]
		require.Equal(t, w.Offset, g.Offset, "%s: record %d offset", what, i)
		require.Equal(t, w.Timestamp, g.Timestamp, "%s: record %d timestamp", what, i)
		require.Equal(t, w.Key == nil, g.Key == nil, "%s: record %d key null", what, i)
		require.Equal(t, w.Key, g.Key, "%s: record %d key", what, i)
		require.Equal(t, w.Value == nil, g.Value == nil, "%s: record %d value null", what, i)
		require.Equal(t, w.Value, g.Value, "%s: record %d value", what, i)
		require.Len(t, g.Headers, len(w.Headers), "%s: record %d headers", what, i)
		for j, wh := range w.Headers {
			gh := g.Headers[j]
			require.Equal(t, wh.Key, gh.Key, "%s: record %d header %d key", what, i, j)
			require.Equal(t, wh.Value == nil, gh.Value == nil, "%s: record %d header %d value null", what, i, j)
			require.Equal(t, wh.Value, gh.Value, "%s: record %d header %d value", what, i, j)
		}
	}
}

// TestGoldenDecode: every batch of every fixture passes Parse, carries the
// codec its client compressed with, and yields exactly the records franz-go
// decodes from it, walked as a log (Iter.Reset) and batch by batch
// (Batch.Records).
func TestGoldenDecode(t *testing.T) {
	for _, f := range loadGolden(t) {
		t.Run(f.name, func(t *testing.T) {
			var byBatch []goldenRecord
			for _, b := range splitBatches(t, f.data) {
				require.Equal(t, f.codec, b.Codec())
				recs := collect(t, ptr(b.Records()))
				require.Len(t, recs, int(b.NumRecords()))
				require.Equal(t, b.LastOffset(), recs[len(recs)-1].Offset)
				maxTS := recs[0].Timestamp
				for _, r := range recs {
					maxTS = max(maxTS, r.Timestamp)
				}
				require.Equal(t, maxTS, b.MaxTimestamp(), "the header's max timestamp is the records' newest")
				byBatch = append(byBatch, recs...)
			}
			requireRecords(t, f.records, byBatch, "Batch.Records")

			var it batch.Iter
			it.Reset(f.data, 0)
			requireRecords(t, f.records, collect(t, &it), "Iter")
			require.Equal(t, f.records[len(f.records)-1].Offset+1, it.Offset())
		})
	}
}

// TestGoldenRecompress: each fixture batch decompresses to a valid
// uncompressed batch with the same records, which compresses with every
// codec into a valid batch with the same records, which decompresses back
// to the same bytes.
func TestGoldenRecompress(t *testing.T) {
	codecs := []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd}
	for _, f := range loadGolden(t) {
		t.Run(f.name, func(t *testing.T) {
			for _, b := range splitBatches(t, f.data) {
				want := collect(t, ptr(b.Records()))
				plain, err := batch.Decompress(nil, b)
				require.NoError(t, err)
				_, err = batch.Parse(plain)
				require.NoError(t, err, "the decompressed batch's CRC")
				require.Equal(t, batch.None, plain.Codec())
				require.Equal(t, b.BaseOffset(), plain.BaseOffset())
				require.Equal(t, b.NumRecords(), plain.NumRecords())
				requireRecords(t, want, collect(t, ptr(plain.Records())), "decompressed")
				if f.codec == batch.None {
					require.Equal(t, []byte(b), []byte(plain), "decompressing an uncompressed batch copies it")
				}
				for _, c := range codecs {
					packed, err := batch.Compress(nil, plain, c, 0)
					require.NoError(t, err, "%v", c)
					_, err = batch.Parse(packed)
					require.NoError(t, err, "%v: the compressed batch's CRC", c)
					require.Equal(t, c, packed.Codec())
					requireRecords(t, want, collect(t, ptr(packed.Records())), c.String())
					again, err := batch.Decompress(nil, packed)
					require.NoError(t, err, "%v", c)
					require.Equal(t, []byte(plain), []byte(again), "%v: decompress(compress(b)) == b", c)
				}
			}
		})
	}
}
