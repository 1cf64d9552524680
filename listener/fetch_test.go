package listener

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchReq is a Fetch request of the given partitions of topic at offsets.
func fetchReq(version int16, topic string, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes = version, -1, 50<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for p := range int32(len(offsets)) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offsets[p], 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func TestConsumeFranzGoFromEarliest(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 2, SegmentBytes: 8 << 10}))
	var want []*stream.Record
	for i := range 200 {
		r := &stream.Record{Topic: "t", Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprintf("value %03d", i))}
		require.NoError(t, b.Publish(t.Context(), r))
		want = append(want, r)
	}
	s := startServer(t, b, nil)
	cl := newClient(t, s, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]*kgo.Record{}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachError(func(topic string, p int32, err error) { require.NoError(t, err, "%s/%d", topic, p) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r })
	}
	for _, w := range want {
		r := got[string(w.Value)]
		require.NotNil(t, r, string(w.Value))
		require.Equal(t, w.Key, r.Key)
		require.Equal(t, w.Partition, r.Partition)
		require.Equal(t, w.Offset, r.Offset)
		require.Equal(t, w.Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
	}
}

func TestFetchLongPoll(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 2}))
	s := startServer(t, b, nil)
	cl := newClient(t, s)

	// Nothing there: waits out MaxWait, answers empty; an empty record
	// set, not a null one (librdkafka's Fetch v4 and v11, kafka-python's
	// v4, fail to parse null).
	var req *kmsg.FetchRequest
	var resp *kmsg.FetchResponse
	for _, v := range []int16{4, 11, 12} {
		req = fetchReq(v, "t", map[int32]int64{0: 0, 1: 0})
		req.MinBytes, req.MaxWaitMillis = 1, 50
		resp = rawAs[*kmsg.FetchResponse](t, s, req) // at exactly v
		require.Zero(t, resp.SessionID)
		for _, p := range resp.Topics[0].Partitions {
			require.Zero(t, p.ErrorCode)
			require.NotNil(t, p.RecordBatches, "v%d", v)
			require.Empty(t, p.RecordBatches)
			require.Zero(t, p.HighWatermark)
		}
	}

	// A long poll wakes on an append to any of its partitions.
	req.MaxWaitMillis = 60_000
	answered := make(chan *kmsg.FetchResponse, 1)
	start := time.Now()
	go func() {
		resp, err := cl.SeedBrokers()[0].Request(t.Context(), req)
		if err == nil {
			answered <- resp.(*kmsg.FetchResponse)
		}
		close(answered)
	}()
	require.NoError(t, b.Publish(t.Context(), &stream.Record{Topic: "t", Partition: 1, Value: []byte("wake")}))
	resp = <-answered
	require.NotNil(t, resp)
	require.Less(t, time.Since(start), 30*time.Second)
	p1 := resp.Topics[0].Partitions[1]
	require.Equal(t, int64(1), p1.HighWatermark)
	require.Equal(t, int64(1), p1.LastStableOffset)
	bt, err := batch.Parse(p1.RecordBatches)
	require.NoError(t, err)
	require.Equal(t, int32(1), bt.NumRecords())
}

func TestFetchLimitsAndErrors(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 2}))
	for p := range int32(2) {
		for i := range 3 { // three batches of 1 KiB values per partition
			require.NoError(t, b.Publish(t.Context(), &stream.Record{Topic: "t", Partition: p, Value: make([]byte, 1024)},
				&stream.Record{Topic: "t", Partition: p, Value: []byte(fmt.Sprint(i))}))
		}
	}
	s := startServer(t, b, nil)
	cl := newClient(t, s)

	// Offset 3 sits inside the second batch: it comes whole, from 2.
	req := fetchReq(11, "t", map[int32]int64{0: 3, 1: 0})
	req.MaxBytes = 100 // below one batch: still one for the first partition, none for the next
	resp := request[*kmsg.FetchResponse](t, cl, req)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	bt, err := batch.Parse(p0.RecordBatches)
	require.NoError(t, err)
	require.Len(t, p0.RecordBatches, len(bt), "one whole batch")
	require.Equal(t, int64(2), bt.BaseOffset())
	require.Empty(t, p1.RecordBatches)
	require.Equal(t, int64(6), p1.HighWatermark, "watermarks come without data")

	// Room for two batches of the second partition, whole.
	req = fetchReq(11, "t", map[int32]int64{0: 6, 1: 0})
	req.Topics[0].Partitions[1].PartitionMaxBytes = int32(2*len(bt) + 10)
	resp = request[*kmsg.FetchResponse](t, cl, req)
	p1 = resp.Topics[0].Partitions[1]
	require.Len(t, p1.RecordBatches, 2*len(bt))

	resp = request[*kmsg.FetchResponse](t, cl, fetchReq(12, "t", map[int32]int64{0: 7}))
	require.Equal(t, kerr.OffsetOutOfRange.Code, resp.Topics[0].Partitions[0].ErrorCode)
	resp = request[*kmsg.FetchResponse](t, cl, fetchReq(12, "nope", map[int32]int64{0: 0}))
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, resp.Topics[0].Partitions[0].ErrorCode)

	// The lowest version served, exactly.
	resp = rawAs[*kmsg.FetchResponse](t, s, fetchReq(4, "t", map[int32]int64{0: 0}))
	require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	require.Len(t, resp.Topics[0].Partitions[0].RecordBatches, 3*len(bt))
}
