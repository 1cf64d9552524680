package listener

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch v4 is the first a client of record batch v2 needs; v13+ name
// topics by ID, which the broker does not have.
func init() { serve(kmsg.Fetch, 4, 12, handleFetch) }

// handleFetch answers with whole batches sliced from the mapped segments
// (stream.Broker.ReadBatches), not decoded: kmsg copies them into the
// response frame, after which they are released (releaseViews). It waits up
// to MaxWaitMillis for MinBytes across the partitions asked for, woken by
// their appends (stream.Broker.NotifyAppend), and answers at once if a
// partition has an error. Fetch sessions (KIP-227) are not kept: the
// answer's session ID 0 means "no session", so every request is a full
// fetch. A read_committed fetch (isolation level 1) is bounded by the last
// stable offset and lists the aborted transactions among its batches
// (stream.Broker.ReadCommittedBatches), which the client skips; control
// batches go out as they are stored, and clients skip them. Every answer
// carries the last stable offset.
func handleFetch(c *conn, req *kmsg.FetchRequest) (kmsg.Response, error) {
	if req.SessionID != 0 {
		// An incremental fetch of a session never handed out.
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	var (
		bell  chan struct{}
		stops []func()
		timer *time.Timer
	)
	defer func() {
		for _, stop := range stops {
			stop()
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		resp, size, failed := c.fetchOnce(req)
		if failed || size >= int(req.MinBytes) || req.MaxWaitMillis <= 0 {
			return resp, nil
		}
		if bell == nil {
			// Register, then look again: an append between the first
			// look and the registration is not missed.
			bell = make(chan struct{}, 1)
			for _, rt := range req.Topics {
				for _, rp := range rt.Partitions {
					if stop, err := c.s.broker.NotifyAppend(rt.Topic, rp.Partition, bell); err == nil {
						stops = append(stops, stop)
					}
				}
			}
			timer = time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
			c.releaseViews()
			continue
		}
		select {
		case <-bell:
			c.releaseViews()
		case <-timer.C:
			return resp, nil
		case <-c.ctx.Done():
			return resp, nil
		}
	}
}

// fetchOnce reads every partition of req once, within its byte limits. It
// returns the response, the bytes of batches in it, and whether some
// partition failed.
func (c *conn) fetchOnce(req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, total int, failed bool) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	// The server's cap bounds the memory a request may make it hold,
	// whatever the client asks for.
	budget := c.s.opts.MaxFetchBytes
	if req.MaxBytes > 0 {
		budget = min(budget, int(req.MaxBytes))
	}
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		allowed := c.allowed(opRead, resTopic, rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// Empty, never null: librdkafka and kafka-python fail to parse
			// a null record set (size -1), which kmsg writes for nil.
			sp.RecordBatches = []byte{}
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			if !allowed {
				sp.ErrorCode, failed = kerr.TopicAuthorizationFailed.Code, true
			} else if n, err := c.fetchPartition(rt.Topic, rp, &sp, total, budget, req.IsolationLevel == 1); err != nil {
				failed = true
			} else {
				total += n
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, total, failed
}

// fetchPartition reads one partition into sp, given total bytes already in
// the response out of budget, and returns the bytes it added. The first
// partition with data gets at least one whole batch, however large (KIP-74:
// a large batch must never stall a consumer); later ones only whole batches
// within both their PartitionMaxBytes and what is left of the budget.
func (c *conn) fetchPartition(topic string, rp *kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, total, budget int, committed bool) (int, error) {
	limit := min(int(rp.PartitionMaxBytes), budget-total)
	read := c.s.broker.ReadBatches
	if committed {
		read = c.s.broker.ReadCommittedBatches
	}
	v, err := read(topic, rp.Partition, rp.FetchOffset, max(limit, 1))
	if err != nil {
		code, known := knownErrorCode(err)
		var ce *stream.CorruptError
		if !known && !errors.As(err, &ce) {
			c.s.log.Error("listener: fetch failed", "topic", topic, "partition", rp.Partition, "remote", c.remote, "err", err)
		}
		sp.ErrorCode = code
		return 0, err
	}
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.HighWatermark, v.LastStableOffset, v.LogStartOffset
	data := v.Data
	if len(data) > limit {
		// A read returns about maxBytes: cut to whole batches within it,
		// keeping the first batch if the response has no data yet.
		cut := wholeBatches(data, limit)
		if len(cut) == 0 && total == 0 {
			cut = wholeBatches(data, batchSize(data))
		}
		data = cut
	}
	if len(data) == 0 {
		v.Release()
		return 0, nil
	}
	if committed {
		// Non-null even when empty: a read_committed answer with data
		// says "no aborted transactions" with an empty list.
		sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		for _, a := range v.AbortedTxns {
			if a.FirstOffset > lastBatchOffset(data) {
				continue // in the batches cut off
			}
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			sp.AbortedTransactions = append(sp.AbortedTransactions, at)
		}
	}
	sp.RecordBatches = data
	c.views = append(c.views, v)
	return len(data), nil
}

// wholeBatches is the longest prefix of data, batches laid back to back,
// that ends at a batch's end within limit bytes.
func wholeBatches(data []byte, limit int) []byte {
	n := 0
	for n+batchHeaderSize <= len(data) {
		size := batchSize(data[n:])
		if size <= 0 || n+size > limit || n+size > len(data) {
			break
		}
		n += size
	}
	return data[:n]
}

// releaseViews releases the batches the last response aliased: handleFrame
// calls it once the response is encoded (kmsg copied the bytes into the
// frame), and handleFetch before it reads again.
func (c *conn) releaseViews() {
	for i, v := range c.views {
		v.Release()
		c.views[i] = nil
	}
	c.views = c.views[:0]
}

// batchSize is the size of the batch at the start of data (at least a
// header long): batchLength plus the 12 bytes before it counts.
func batchSize(data []byte) int { return 12 + int(int32(binary.BigEndian.Uint32(data[8:]))) }

// lastBatchOffset is the last offset of data's last whole batch.
func lastBatchOffset(data []byte) int64 {
	last := int64(-1)
	for n := 0; n+batchHeaderSize <= len(data); n += batchSize(data[n:]) {
		last = batch.Batch(data[n:]).LastOffset()
	}
	return last
}
