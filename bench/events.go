package main

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
)

// codecSpec is one codec of the JSON-event workloads, as each side names it.
type codecSpec struct {
	name string       // Kafka's compression.type
	ours stream.Codec // TopicConfig.Compression and ProducerOptions.Compression
	wire batch.Codec  // in batch attributes: the codec alone's and kgo's
}

// jsonCodecs are the codecs of the JSON-event workloads, in table order,
// each at its default level.
var jsonCodecs = []codecSpec{
	{"none", stream.CodecNone, batch.None},
	{"gzip", stream.CodecGzip, batch.Gzip},
	{"snappy", stream.CodecSnappy, batch.Snappy},
	{"lz4", stream.CodecLZ4, batch.LZ4},
	{"zstd", stream.CodecZstd, batch.Zstd},
}

// jsonKey is the JSON key of a JSON-event metric for codec c.
func jsonKey(c codecSpec, metric string) string { return "json_" + c.name + "_" + metric }

// The batches of the JSON-event workloads. eventBatchBytes is ours'
// Producer BatchBytes (its default) and the most a Broker.Publish call
// carries, kgo's ProducerBatchMaxBytes, the raw file's most per frame and
// the codec alone's batch size: every peer compresses (or frames) the same
// ~1,700 events at a time. eventLinger is ours' and kgo's linger (Kafka
// 4's linger.ms default); batches fill to eventBatchBytes long before it
// passes, so it only matters for the last batch of a pass.
const (
	eventBatchBytes = 512 << 10
	eventLinger     = 5 * time.Millisecond
)

// eventChunks splits events into runs that each make a batch of at most
// limit bytes, as ours' Producer closes its batches: a record that would
// take the batch past limit starts the next.
func eventChunks(events [][]byte, limit int) [][][]byte {
	var out [][][]byte
	start, size := 0, batch.HeaderSize
	for i, e := range events {
		rs := batch.RecordSize(0, int64(i-start), nil, e, nil)
		if i > start && size+rs > limit {
			out = append(out, events[start:i])
			start, size = i, batch.HeaderSize
			rs = batch.RecordSize(0, 0, nil, e, nil)
		}
		size += rs
	}
	if start < len(events) {
		out = append(out, events[start:])
	}
	return out
}

// chunker keeps the eventChunks of the events last prepared, so that
// splitting them is not timed.
type chunker struct {
	events [][]byte
	chunks [][][]byte
}

func (c *chunker) prepare(events [][]byte) {
	c.events, c.chunks = events, eventChunks(events, eventBatchBytes)
}

// of returns the chunks of events: prepared ones if these are the events
// prepared.
func (c *chunker) of(events [][]byte) [][][]byte {
	if len(events) == len(c.events) && (len(events) == 0 || &events[0] == &c.events[0]) {
		return c.chunks
	}
	return eventChunks(events, eventBatchBytes)
}

// eventsSeed makes every run, and every peer in it, get the same events.
const eventsSeed = 20261122

// jsonEvents returns n JSON events of about 300 bytes, the same for a given
// n and seed: what an application logs to a stream, and what its codecs
// see. Every event has the same field names in the same order (what
// compresses), and values that vary as they do in practice: a random UUID
// and session id, a timestamp a few ms after the previous one, a user id,
// short strings picked from small sets (event type, country, page, device),
// and a few numbers. All n events share one backing array.
func jsonEvents(n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	buf := make([]byte, 0, n*320)
	offsets := make([]int, n+1)
	ts := time.Date(2026, 11, 22, 3, 32, 25, 0, time.UTC).UnixMilli()
	for i := range n {
		offsets[i] = len(buf)
		ts += int64(r.IntN(8))
		buf = appendEvent(buf, r, ts)
	}
	offsets[n] = len(buf)
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[offsets[i]:offsets[i+1]:offsets[i+1]]
	}
	return out
}

// The small sets an event's short strings come from.
var (
	eventTypes = []string{"page_view", "click", "add_to_cart", "checkout", "search", "login", "logout", "purchase"}
	countries  = []string{"US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "NL", "ES", "IT", "SE"}
	pages      = []string{"/", "/products", "/products/detail", "/cart", "/checkout", "/search", "/account", "/help"}
	referrers  = []string{"https://www.google.com/", "https://news.ycombinator.com/", "https://t.co/", "", "https://www.bing.com/", "https://duckduckgo.com/"}
	oses       = []string{"Android", "iOS", "Windows", "macOS", "Linux"}
	browsers   = []string{"Chrome", "Safari", "Firefox", "Edge"}
)

const hexDigits = "0123456789abcdef"

// appendEvent appends one event at timestamp ts (ms since the epoch).
func appendEvent(b []byte, r *rand.Rand, ts int64) []byte {
	pick := func(set []string) string { return set[r.IntN(len(set))] }
	hex := func(b []byte, n int) []byte {
		for range n {
			b = append(b, hexDigits[r.IntN(16)])
		}
		return b
	}
	b = append(b, `{"event_id":"`...)
	b = hex(b, 8)
	b = append(b, '-')
	b = hex(b, 4)
	b = append(b, "-4"...)
	b = hex(b, 3)
	b = append(b, '-')
	b = hex(b, 4)
	b = append(b, '-')
	b = hex(b, 12)
	b = append(b, `","type":"`...)
	b = append(b, pick(eventTypes)...)
	b = append(b, `","ts":"`...)
	b = time.UnixMilli(ts).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","user":{"id":`...)
	b = strconv.AppendInt(b, 100000+r.Int64N(900000), 10)
	b = append(b, `,"country":"`...)
	b = append(b, pick(countries)...)
	b = append(b, `"},"session":"`...)
	b = hex(b, 16)
	b = append(b, `","page":"`...)
	b = append(b, pick(pages)...)
	if r.IntN(2) == 0 {
		b = append(b, '/')
		b = strconv.AppendInt(b, r.Int64N(10000), 10)
	}
	b = append(b, `","referrer":"`...)
	b = append(b, pick(referrers)...)
	b = append(b, `","device":{"os":"`...)
	b = append(b, pick(oses)...)
	b = append(b, `","browser":"`...)
	b = append(b, pick(browsers)...)
	b = append(b, `","version":"`...)
	b = strconv.AppendInt(b, 100+r.Int64N(40), 10)
	b = append(b, ".0"...)
	b = append(b, `"},"duration_ms":`...)
	b = strconv.AppendInt(b, r.Int64N(30000), 10)
	b = append(b, `,"ok":`...)
	b = strconv.AppendBool(b, r.IntN(20) != 0)
	b = append(b, '}')
	return b
}

// eventBytes is the total size of events, the bytes every JSON workload's
// MB/s counts.
func eventBytes(events [][]byte) int64 {
	var n int64
	for _, e := range events {
		n += int64(len(e))
	}
	return n
}
