package kafka_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The golden fixtures of batch/testdata/golden are record batches that
// foreign Kafka clients compressed, captured from the Produce requests
// they sent to an in-process kfake cluster, with the records franz-go
// decodes from them. The core's batch/golden_test.go reads them back with
// our decoder. TestGenerateGolden rewrites them; it runs only with
// EMBEDSTREAM_GOLDEN=1 (kcat must be installed for the librdkafka ones):
//
//	cd kafka && EMBEDSTREAM_GOLDEN=1 go test -run TestGenerateGolden -v .
//
// batch/testdata/golden/README.md says how they were made.

const goldenDir = "../batch/testdata/golden"

// goldenRecord is one expected record, as the fixtures' JSON files hold
// it: Offset is the batch's base offset (numbered from 0 in each fixture
// file) plus the record's offset delta; Key, Value and header values are
// base64, null for Kafka's null.
type goldenRecord struct {
	Offset    int64          `json:"offset"`
	Timestamp int64          `json:"timestamp"`
	Key       []byte         `json:"key"`
	Value     []byte         `json:"value"`
	Headers   []goldenHeader `json:"headers,omitempty"`
}

type goldenHeader struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

var goldenCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// goldenBaseTS is the first golden record's timestamp (ms).
const goldenBaseTS = 1_700_000_000_000

// goldenRecords are the records the franz-go fixtures hold: JSON values of
// about 300 bytes with repeated field names (so every codec has something
// to compress), null and empty keys, a null and an empty value, headers
// with null and empty values on every third record, and one timestamp
// before the first record's (a negative delta).
func goldenRecords() []goldenRecord {
	recs := make([]goldenRecord, 50)
	for i := range recs {
		r := &recs[i]
		r.Offset = int64(i)
		r.Timestamp = goldenBaseTS + int64(i)*13
		if i == 10 {
			r.Timestamp = goldenBaseTS - 5000
		}
		switch {
		case i%5 == 0:
			r.Key = nil
		case i == 6:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "customer-%d", i%7)
		}
		r.Value = goldenValue(i)
		switch i {
		case 17:
			r.Value = nil
		case 23:
			r.Value = []byte{}
		}
		if i%3 == 0 {
			r.Headers = []goldenHeader{
				{Key: "trace-id", Value: fmt.Appendf(nil, "trace-%04d", i)},
				{Key: "empty", Value: []byte{}},
				{Key: "null", Value: nil},
				{Key: "trace-id", Value: []byte("repeated key")},
			}
		}
	}
	return recs
}

// goldenValue is record i's JSON value: one line, no tabs (kcat splits on
// both).
func goldenValue(i int) []byte {
	return fmt.Appendf(nil, `{"order_id":%d,"customer":{"name":"customer-%d","email":"customer-%d@example.com","tier":"gold"},`+
		`"items":[{"sku":"SKU-%05d","quantity":%d,"unit_price":"12.50"},{"sku":"SKU-%05d","quantity":1,"unit_price":"3.99"}],`+
		`"status":"shipped","note":"golden fixture record %d of 50, compressed by a foreign client"}`,
		i, i%7, i%7, i, i%4+1, 1000+i, i)
}

// captureProduce makes cluster hand every Produce request's record batches
// to the returned function's result, while it handles the requests as
// usual.
func captureProduce(cluster *kfake.Cluster) func() [][]byte {
	var mu sync.Mutex
	var batches [][]byte
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		mu.Lock()
		defer mu.Unlock()
		for _, t := range pr.Topics {
			// Produce v13 names topics by ID alone: the cluster holds
			// no other topic.
			for _, p := range t.Partitions {
				batches = append(batches, bytes.Clone(p.Records))
			}
		}
		return nil, nil, false
	})
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return batches
	}
}

// joinBatches lays captured batches back to back, each a Produce request's
// (base offset 0), renumbering their base offsets to follow one another as
// a log would. The base offset is outside the CRC.
func joinBatches(t *testing.T, captured [][]byte) []byte {
	var out []byte
	next := int64(0)
	for _, records := range captured {
		for len(records) > 0 {
			var b kmsg.RecordBatch
			require.NoError(t, b.ReadFrom(records))
			size := int(b.Length) + 12
			one := bytes.Clone(records[:size])
			binary.BigEndian.PutUint64(one, uint64(next))
			next += int64(b.LastOffsetDelta) + 1
			out = append(out, one...)
			records = records[size:]
		}
	}
	return out
}

// franzDecode decodes batches laid back to back with franz-go alone
// (kmsg and kgo's DefaultDecompressor): the expectation our decoder is
// held to. It also returns each batch's codec.
func franzDecode(data []byte) ([]goldenRecord, []kgo.CompressionCodecType, error) {
	var recs []goldenRecord
	var codecs []kgo.CompressionCodecType
	dec := kgo.DefaultDecompressor()
	for len(data) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(data); err != nil {
			return nil, nil, err
		}
		data = data[int(b.Length)+12:]
		codec := kgo.CompressionCodecType(b.Attributes & 0x7)
		codecs = append(codecs, codec)
		raw, err := dec.Decompress(b.Records, codec)
		if err != nil {
			return nil, nil, fmt.Errorf("batch at offset %d: %w", b.FirstOffset, err)
		}
		for range b.NumRecords {
			length, n := binary.Varint(raw)
			if n <= 0 || int(length) > len(raw)-n {
				return nil, nil, fmt.Errorf("batch at offset %d: record cut short", b.FirstOffset)
			}
			var r kmsg.Record
			if err := r.ReadFrom(raw[:n+int(length)]); err != nil {
				return nil, nil, err
			}
			raw = raw[n+int(length):]
			g := goldenRecord{
				Offset:    b.FirstOffset + int64(r.OffsetDelta),
				Timestamp: b.FirstTimestamp + r.TimestampDelta64,
				Key:       r.Key,
				Value:     r.Value,
			}
			for _, h := range r.Headers {
				g.Headers = append(g.Headers, goldenHeader{Key: h.Key, Value: h.Value})
			}
			recs = append(recs, g)
		}
		if len(raw) != 0 {
			return nil, nil, fmt.Errorf("batch at offset %d: %d bytes after its records", b.FirstOffset, len(raw))
		}
	}
	return recs, codecs, nil
}

func writeJSON(t *testing.T, path string, recs []goldenRecord) {
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, r := range recs {
		line, err := json.Marshal(r)
		require.NoError(t, err)
		buf.Write(line)
		if i < len(recs)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func TestGenerateGolden(t *testing.T) {
	if os.Getenv("EMBEDSTREAM_GOLDEN") != "1" {
		t.Skip("set EMBEDSTREAM_GOLDEN=1 to regenerate batch/testdata/golden")
	}
	require.NoError(t, os.MkdirAll(goldenDir, 0o755))
	want := goldenRecords()
	writeJSON(t, filepath.Join(goldenDir, "records.json"), want)
	for _, c := range goldenCodecs {
		t.Run("franz-"+c.name, func(t *testing.T) { generateFranz(t, c.name, c.codec, want) })
	}
	for _, c := range goldenCodecs {
		t.Run("librdkafka-"+c.name, func(t *testing.T) { generateKcat(t, c.name) })
	}
}

// generateFranz produces the golden records with a franz-go client
// compressing with codec, all in one batch (manual flushing), and writes
// the batch to franz-<name>.batch.
func generateFranz(t *testing.T, name string, codec kgo.CompressionCodec, want []goldenRecord) {
	ctx := testCtx(t)
	cluster := newCluster(t, kfake.SeedTopics(1, "golden"))
	captured := captureProduce(cluster)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("golden"),
		kgo.ProducerBatchCompression(codec), kgo.ManualFlushing(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	for _, g := range want {
		r := &kgo.Record{Key: g.Key, Value: g.Value, Timestamp: time.UnixMilli(g.Timestamp)}
		for _, h := range g.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { require.NoError(t, err) })
	}
	require.NoError(t, cl.Flush(ctx))
	data := joinBatches(t, captured())
	got, codecs, err := franzDecode(data)
	require.NoError(t, err)
	require.Equal(t, want, got, "franz-go decodes what it wrote")
	for _, c := range codecs {
		require.Equal(t, name, codecName(c))
	}
	require.NoError(t, os.WriteFile(filepath.Join(goldenDir, "franz-"+name+".batch"), data, 0o644))
	t.Logf("franz-%s.batch: %d batches, %d bytes", name, len(codecs), len(data))
}

// generateKcat produces the golden records' keys, values and headers as
// text through kcat (librdkafka), compressing with name, and writes the
// batches librdkafka sent to librdkafka-<name>.batch and what franz-go
// decodes from them to librdkafka-<name>.json. kcat gives every record
// the same headers (-H) and librdkafka's clock for timestamps; with -Z an
// empty key or value is null, so the text cannot carry an empty one.
func generateKcat(t *testing.T, name string) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not installed (apt-get install kcat): %v", err)
	}
	ctx := testCtx(t)
	cluster := newCluster(t, kfake.SeedTopics(1, "golden"))
	widenProduceVersions(t, cluster)
	captured := captureProduce(cluster)
	var in strings.Builder
	for i, g := range goldenRecords() {
		switch {
		case i == 17:
			fmt.Fprintf(&in, "%s\t\n", g.Key) // -Z: null value
		case g.Key == nil:
			fmt.Fprintf(&in, "%s\n", g.Value) // no delimiter: null key
		default:
			fmt.Fprintf(&in, "%s\t%s\n", g.Key, g.Value)
		}
	}
	args := []string{"-P", "-b", strings.Join(cluster.ListenAddrs(), ","), "-t", "golden", "-p", "0",
		"-K", `\t`, "-Z", "-z", name,
		"-H", "trace-id=kcat", "-H", "empty=",
		"-X", "linger.ms=500", "-X", "batch.num.messages=1000", "-X", "broker.address.family=v4"}
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kcat %s: %s", strings.Join(args, " "), out)
	data := joinBatches(t, captured())
	require.NotEmpty(t, data, "kcat sent no batch: %s", out)
	got, codecs, err := franzDecode(data)
	require.NoError(t, err)
	require.Len(t, got, 50)
	for _, c := range codecs {
		require.Equal(t, name, codecName(c))
	}
	require.NoError(t, os.WriteFile(filepath.Join(goldenDir, "librdkafka-"+name+".batch"), data, 0o644))
	writeJSON(t, filepath.Join(goldenDir, "librdkafka-"+name+".json"), got)
	t.Logf("librdkafka-%s.batch: %d batches, %d bytes", name, len(codecs), len(data))
}

// widenProduceVersions makes cluster advertise Produce and Fetch from
// version 0 on. librdkafka before 2.10 takes a broker that does not (Kafka
// 4.0, kfake) for one older than 0.10, without gzip, snappy or lz4 ("Broker
// does not support compression type gzip: not compressing batch"), and
// sends those batches uncompressed. It still sends the newest versions both
// sides support (Produce v7, magic 2), so the batches are as it sends them
// to any modern broker.
func widenProduceVersions(t *testing.T, cluster *kfake.Cluster) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	kresp, err := cl.Request(testCtx(t), kmsg.NewPtrApiVersionsRequest())
	require.NoError(t, err)
	versions := kresp.(*kmsg.ApiVersionsResponse)
	for i := range versions.ApiKeys {
		if k := versions.ApiKeys[i].ApiKey; k == int16(kmsg.Produce) || k == int16(kmsg.Fetch) {
			versions.ApiKeys[i].MinVersion = 0
		}
	}
	cluster.ControlKey(int16(kmsg.ApiVersions), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		resp := *versions
		resp.Version = req.GetVersion()
		return &resp, nil, true
	})
}

func codecName(c kgo.CompressionCodecType) string {
	return [...]string{"none", "gzip", "snappy", "lz4", "zstd"}[c]
}
