package listener

import (
	"context"
	"encoding/binary"
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

// request sends req straight to s's one broker, as it is.
func request[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	require.NoError(t, err)
	return resp.(R)
}

// rawAs is rawRequest with the response's type: req goes at exactly its
// version (kgo would pick the version itself).
func rawAs[R kmsg.Response](t *testing.T, s *Server, req kmsg.Request) R {
	t.Helper()
	return rawRequest(t, s, req).(R)
}

// rawBatch is a record batch as a producer encodes it: values at now, of
// producer pid (-1: none) at epoch and base sequence seq, with codec.
func rawBatch(t *testing.T, pid int64, epoch int16, seq int32, codec batch.Codec, vals ...string) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Reset(0)
	for _, v := range vals {
		bld.Add(time.Now().UnixMilli(), []byte("k-"+v), []byte(v), nil)
	}
	b := append(batch.Batch(nil), bld.Finish()...)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], b.ComputeCRC())
	if codec != batch.None {
		var err error
		b, err = batch.Compress(nil, b, codec, 0)
		require.NoError(t, err)
	}
	return b
}

// produceReq is a Produce request of one partition's records.
func produceReq(version int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func partitionAnswer(resp *kmsg.ProduceResponse) kmsg.ProduceResponseTopicPartition {
	return resp.Topics[0].Partitions[0]
}

// readAll reads a partition in-process from the start.
func readAll(t *testing.T, b *stream.Broker, topic string, partition int32) []*stream.Record {
	t.Helper()
	r, err := b.NewReader(topic, partition, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	var out []*stream.Record
	for rec, err := range r.All(t.Context()) {
		require.NoError(t, err)
		out = append(out, rec.Clone())
	}
	return out
}

func TestProduceFranzGoReadInProcess(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: 3}))
	s := startServer(t, b, nil)
	cl := newClient(t, s) // idempotent, snappy: franz-go's defaults

	var sent []*kgo.Record
	for i := range 60 {
		sent = append(sent, &kgo.Record{Topic: "t", Key: []byte(fmt.Sprintf("key-%d", i%7)), Value: []byte(fmt.Sprintf("value-%d", i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}})
	}
	require.NoError(t, cl.ProduceSync(t.Context(), sent...).FirstErr())

	got := map[int32][]*stream.Record{}
	for p := range int32(3) {
		got[p] = readAll(t, b, "t", p)
	}
	n := 0
	for _, r := range sent {
		require.Less(t, r.Offset, int64(len(got[r.Partition])))
		in := got[r.Partition][r.Offset]
		require.Equal(t, r.Key, in.Key)
		require.Equal(t, r.Value, in.Value)
		require.Len(t, in.Headers, 1)
		require.Equal(t, r.Headers[0].Value, in.Headers[0].Value)
		require.Equal(t, r.Timestamp.UnixMilli(), in.Timestamp.UnixMilli())
		n++
	}
	total := len(got[0]) + len(got[1]) + len(got[2])
	require.Equal(t, n, total, "every record stored once")
}

func TestProduceAcksZeroAndCompressionPerTopic(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("z", stream.TopicConfig{Compression: stream.Compression{Codec: stream.CodecZstd}}))
	s := startServer(t, b, nil)

	cl := newClient(t, s) // snappy batches into a zstd topic
	require.NoError(t, cl.ProduceSync(t.Context(), &kgo.Record{Topic: "z", Value: []byte("recompressed")}).FirstErr())
	v, err := b.ReadBatches("z", 0, 0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, batch.Zstd, batch.Batch(v.Data).Codec())
	v.Release()

	noAck := newClient(t, s, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	require.NoError(t, noAck.ProduceSync(t.Context(), &kgo.Record{Topic: "z", Value: []byte("fire and forget")}).FirstErr())
	require.Eventually(t, func() bool { return len(readAll(t, b, "z", 0)) == 2 }, 10*time.Second, 5*time.Millisecond)

	// A raw acks=0 request gets no answer: the next request's answer is
	// the next one on the connection.
	req := produceReq(7, "z", 0, rawBatch(t, -1, -1, -1, batch.None, "quiet"))
	req.Acks = 0
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	br := cl.SeedBrokers()[0]
	done := make(chan error, 1)
	go func() { _, err := br.Request(ctx, req); done <- err }() // kgo expects no response for acks=0
	require.NoError(t, <-done)
	resp := request[*kmsg.ProduceResponse](t, cl, produceReq(7, "z", 0, rawBatch(t, -1, -1, -1, batch.None, "loud")))
	require.Equal(t, int64(3), partitionAnswer(resp).BaseOffset)
}

func TestProduceRawIdempotence(t *testing.T) {
	dir := t.TempDir()
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	s := startServer(t, b, nil)
	cl := newClient(t, s)

	ipid := request[*kmsg.InitProducerIDResponse](t, cl, kmsg.NewPtrInitProducerIDRequest())
	require.Zero(t, ipid.ErrorCode)
	pid := ipid.ProducerID

	first := produceReq(9, "t", 0, rawBatch(t, pid, 0, 0, batch.Snappy, "a", "b"))
	resp := request[*kmsg.ProduceResponse](t, cl, first)
	require.Zero(t, partitionAnswer(resp).ErrorCode)
	require.Equal(t, int64(0), partitionAnswer(resp).BaseOffset)
	require.Equal(t, int64(-1), partitionAnswer(resp).LogAppendTime)

	again := produceReq(9, "t", 0, rawBatch(t, pid, 0, 0, batch.Snappy, "a", "b"))
	resp = request[*kmsg.ProduceResponse](t, cl, again)
	require.Zero(t, partitionAnswer(resp).ErrorCode)
	require.Equal(t, int64(0), partitionAnswer(resp).BaseOffset, "a duplicate gets its original offset")

	resp = request[*kmsg.ProduceResponse](t, cl, produceReq(9, "t", 0, rawBatch(t, pid, 0, 5, batch.None, "gap")))
	require.Equal(t, kerr.OutOfOrderSequenceNumber.Code, partitionAnswer(resp).ErrorCode)

	bad := rawBatch(t, -1, -1, -1, batch.None, "flipped")
	bad[len(bad)-1] ^= 0xff
	resp = request[*kmsg.ProduceResponse](t, cl, produceReq(9, "t", 0, bad))
	require.Equal(t, kerr.CorruptMessage.Code, partitionAnswer(resp).ErrorCode)

	resp = rawAs[*kmsg.ProduceResponse](t, s, produceReq(3, "t", 0, rawBatch(t, -1, -1, -1, batch.Zstd, "z")))
	require.Equal(t, kerr.UnsupportedCompressionType.Code, partitionAnswer(resp).ErrorCode, "zstd needs Produce v7")
	resp = request[*kmsg.ProduceResponse](t, cl, produceReq(9, "nope", 0, rawBatch(t, -1, -1, -1, batch.None, "x")))
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, partitionAnswer(resp).ErrorCode)

	txn := produceReq(9, "t", 0, txnBatch(t, pid, 0, 2, "x"))
	txn.TransactionID = kmsg.StringPtr("tx")
	resp = request[*kmsg.ProduceResponse](t, cl, txn)
	require.Equal(t, kerr.InvalidTxnState.Code, partitionAnswer(resp).ErrorCode, "a transactional batch outside a transaction")

	values := func(b *stream.Broker) []string {
		var out []string
		for _, r := range readAll(t, b, "t", 0) {
			out = append(out, string(r.Value))
		}
		return out
	}
	require.Equal(t, []string{"a", "b"}, values(b), "stored once, nothing of the refused")

	// Restart broker and server between a produce and its retry.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx)) // again at cleanup: a no-op
	require.NoError(t, b.Close())
	b, err = stream.Open(dir, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	s2 := startServer(t, b, nil)
	cl2 := newClient(t, s2)
	resp = request[*kmsg.ProduceResponse](t, cl2, produceReq(9, "t", 0, rawBatch(t, pid, 0, 0, batch.Snappy, "a", "b")))
	require.Zero(t, partitionAnswer(resp).ErrorCode)
	require.Equal(t, int64(0), partitionAnswer(resp).BaseOffset)
	require.Equal(t, []string{"a", "b"}, values(b))

	next := request[*kmsg.InitProducerIDResponse](t, cl2, kmsg.NewPtrInitProducerIDRequest())
	require.Greater(t, next.ProducerID, pid, "producer IDs not reused after a restart")
}

func TestInitProducerIDTransactional(t *testing.T) {
	s := startServer(t, openBroker(t, nil), nil)
	cl := newClient(t, s)
	init := func(id string, timeoutMS int32) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID = kmsg.StringPtr(id)
		req.TransactionTimeoutMillis = timeoutMS
		return request[*kmsg.InitProducerIDResponse](t, cl, req)
	}
	resp := init("", 1000)
	require.Equal(t, kerr.InvalidRequest.Code, resp.ErrorCode)
	require.Equal(t, int64(-1), resp.ProducerID)
	for _, bad := range []int32{0, -1, int32(stream.MaxTxnTimeout.Milliseconds()) + 1} {
		require.Equal(t, kerr.InvalidTransactionTimeout.Code, init("tx", bad).ErrorCode, "timeout %d", bad)
	}
	resp = init("tx", 1000)
	require.Zero(t, resp.ErrorCode)
	require.GreaterOrEqual(t, resp.ProducerID, int64(0))
	require.Zero(t, resp.ProducerEpoch)
	again := init("tx", 1000)
	require.Zero(t, again.ErrorCode)
	require.Equal(t, resp.ProducerID, again.ProducerID, "a transactional ID keeps its producer ID")
	require.Equal(t, int16(1), again.ProducerEpoch, "and bumps its epoch")

	for v := range int16(5) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = v
		resp := rawAs[*kmsg.InitProducerIDResponse](t, s, req)
		require.Zero(t, resp.ErrorCode, "v%d", v)
		require.GreaterOrEqual(t, resp.ProducerID, int64(0))
		require.Zero(t, resp.ProducerEpoch)
	}
}
