package main

import (
	"context"
	"fmt"

	"github.com/embedstream/stream/batch"
)

// codecPeer is the codec alone, the limit of the JSON-event rows: the same
// events encoded into the same batches (eventBatchBytes each) as ours
// makes, untimed, then only the codec timed, on one goroutine:
// batch.AppendCompressed of each batch's records to publish,
// batch.AppendDecompressed of them to consume. These are the calls ours
// makes (klauspost/compress and pierrec/lz4 with pooled encoders, in
// Kafka's framings), without the log around them. Its stored bytes are the
// batches as compressed: header and compressed records. It has no other
// workloads.
type codecPeer struct{}

func (codecPeer) name() string { return "codec alone" }
func (codecPeer) id() string   { return "codec" }

func (codecPeer) start(_ context.Context, _ string, o startOptions) (instance, error) {
	switch {
	case o.codec == nil:
		return nil, notSupported("a codec, not a log: JSON-event rows only")
	case o.codec.wire == batch.None:
		return nil, notSupported("no codec")
	}
	return &codecInstance{codec: o.codec.wire}, nil
}

type codecInstance struct {
	codec batch.Codec
	chunker
	// plain are the prepared events' batches, uncompressed, in plainBuf.
	plain    []batch.Batch
	plainBuf []byte
	// comp holds the records of the last pass's batches, compressed, back
	// to back: batch i's end at ends[i], with counts[i] records.
	comp   []byte
	ends   []int
	counts []int
	out    []byte // decompression scratch
	// published counts every record compressed, for records.
	published int64
}

// prepare encodes the events' batches, as ours' Producer would, and sizes
// the buffers a pass needs.
func (c *codecInstance) prepare(events [][]byte) {
	c.chunker.prepare(events)
	c.plainBuf, c.plain = c.plainBuf[:0], c.plain[:0]
	var bld batch.Builder
	var offs []int
	for _, chunk := range c.chunks {
		bld.Reset(0)
		for _, v := range chunk {
			bld.Add(0, nil, v, nil)
		}
		offs = append(offs, len(c.plainBuf))
		c.plainBuf = append(c.plainBuf, bld.Finish()...)
	}
	offs = append(offs, len(c.plainBuf))
	for i := range c.chunks {
		c.plain = append(c.plain, c.plainBuf[offs[i]:offs[i+1]])
	}
	if need := len(c.plainBuf) + len(c.plainBuf)/8 + 64<<10; cap(c.comp) < need {
		c.comp = make([]byte, 0, need)
	}
	if need := eventBatchBytes + 64<<10; cap(c.out) < need {
		c.out = make([]byte, 0, need)
	}
}

// publishEvents compresses the prepared batches' records: the codec alone,
// the same for both of ours' paths.
func (c *codecInstance) publishEvents(_ context.Context, events [][]byte, _ bool) error {
	if len(events) != len(c.events) || len(events) > 0 && &events[0] != &c.events[0] {
		return fmt.Errorf("codec alone: %d events published, not the %d prepared", len(events), len(c.events))
	}
	c.comp, c.ends, c.counts = c.comp[:0], c.ends[:0], c.counts[:0]
	for i, b := range c.plain {
		var err error
		if c.comp, err = batch.AppendCompressed(c.comp, c.codec, 0, b[batch.HeaderSize:]); err != nil {
			return err
		}
		c.ends = append(c.ends, len(c.comp))
		c.counts = append(c.counts, len(c.chunks[i]))
	}
	c.published += int64(len(events))
	return nil
}

// read decompresses the last pass's batches until n records are covered.
func (c *codecInstance) read(_ context.Context, n int, _ readMode) error {
	var sum checksum
	defer sum.flush()
	got, start := 0, 0
	for i, end := range c.ends {
		if got >= n {
			break
		}
		var err error
		if c.out, err = batch.AppendDecompressed(c.out[:0], c.codec, c.comp[start:end], batch.MaxUncompressedBytes); err != nil {
			return err
		}
		sum.add(c.out)
		got += c.counts[i]
		start = end
	}
	if got < n {
		return fmt.Errorf("codec alone: %d records compressed, %d asked for", got, n)
	}
	return nil
}

func (c *codecInstance) stored(context.Context) (int64, int64, error) {
	var records int64
	for _, k := range c.counts {
		records += int64(k)
	}
	return int64(len(c.comp) + len(c.ends)*batch.HeaderSize), records, nil
}

func (c *codecInstance) records(context.Context) (int64, error) { return c.published, nil }

func (c *codecInstance) publishBatched(context.Context, int, []byte) error {
	return notSupported("a codec, not a log")
}

func (c *codecInstance) publishOne(context.Context, []byte) error {
	return notSupported("a codec, not a log")
}

func (c *codecInstance) tail(context.Context) (func() error, error) {
	return nil, notSupported("a codec, not a log")
}

func (c *codecInstance) group(context.Context, int, int, func()) error {
	return notSupported("a codec, not a log")
}

func (c *codecInstance) newProducer(context.Context, bool) (asyncProducer, error) {
	return nil, notSupported("a codec, not a log")
}

func (c *codecInstance) publishParallel(context.Context, int, int, int, []byte) error {
	return notSupported("a codec, not a log")
}

func (c *codecInstance) readParallel(context.Context, int, int) error {
	return notSupported("a codec, not a log")
}

func (c *codecInstance) close() error { return nil }
