package listener

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// A Fetch asking for more than MaxFetchBytes gets at most that (and at
// least one whole batch).
func TestFetchBoundedByServer(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}})
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	for range 4 {
		require.NoError(t, b.Publish(t.Context(), &stream.Record{Topic: "t", Value: make([]byte, 1000)}))
	}
	s := startServer(t, b, &Options{MaxFetchBytes: 1500})
	req := fetchReq(11, "t", map[int32]int64{0: 0})
	req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 1<<30, 1<<30
	resp := rawAs[*kmsg.FetchResponse](t, s, req)
	data := resp.Topics[0].Partitions[0].RecordBatches
	bt, err := batch.Parse(data)
	require.NoError(t, err)
	require.Len(t, data, len(bt), "one whole batch of the four: the server's cap, not the client's")
}

// OffsetFetch v1 has no top-level error: a group error goes on every
// partition asked for, never an empty "nothing committed".
func TestOffsetFetchOldVersionCarriesGroupError(t *testing.T) {
	s := startServer(t, openBroker(t, nil), nil)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 1, "" // not a valid group name
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "t", []int32{0, 1}
	req.Topics = append(req.Topics, rt)
	resp := rawAs[*kmsg.OffsetFetchResponse](t, s, req)
	require.Len(t, resp.Topics, 1)
	require.Len(t, resp.Topics[0].Partitions, 2)
	for _, p := range resp.Topics[0].Partitions {
		require.Equal(t, kerr.InvalidGroupID.Code, p.ErrorCode)
		require.Equal(t, int64(-1), p.Offset)
	}
}

// A failed acks=0 produce closes the connection (Kafka's way of telling a
// client that gets no answers).
func TestProduceAcksZeroFailureCloses(t *testing.T) {
	s := startServer(t, openBroker(t, nil), nil)
	req := produceReq(7, "missing", 0, rawBatch(t, -1, -1, -1, batch.None, "lost"))
	req.Acks = 0
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer nc.Close()
	frame := binary.BigEndian.AppendUint16(make([]byte, 4), uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 0xffff)
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	_, err = nc.Write(frame)
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = nc.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the server closed the connection")
}

// Before authentication a request may take 512 KiB at most, whatever
// MaxFrameBytes allows.
func TestFrameBoundBeforeAuthentication(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, SASL: testSASL(t)})
	rc := dialRaw(t, s)
	rc.write(binary.BigEndian.AppendUint32(nil, maxUnauthenticatedFrame+1))
	rc.requireClosed()
	requireLogged(t, lb, "before authentication")
	requireServing(t, s)
}

// A principal with no write permission anywhere gets no producer ID.
func TestInitProducerIDNeedsWrite(t *testing.T) {
	s := startServer(t, openBroker(t, nil), &Options{SASL: testSASL(t),
		ACLs: []ACL{{Principal: "alice", Resource: ResourceTopic, Name: "*", Operations: []Operation{OpWrite}}}})
	for user, want := range map[string]int16{"alice": 0, "bob": kerr.ClusterAuthorizationFailed.Code} {
		cl := newClient(t, s, kgo.SASL(plain.Auth{User: user, Pass: user + "-secret"}.AsMechanism()))
		resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(t.Context(), cl)
		require.NoError(t, err)
		require.Equal(t, want, resp.ErrorCode, user)
	}
}
