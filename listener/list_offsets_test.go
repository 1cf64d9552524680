package listener

import (
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listOffsetsRequest asks version v for partition 0 of topic at ts.
func listOffsetsRequest(v int16, topic string, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(v)
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.MaxNumOffsets = ts, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestListOffsets(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	base := time.UnixMilli(1_700_000_000_000)
	publishAt(t, b, "t", 10, base)

	start, err := adm.ListStartOffsets(ctx, "t")
	require.NoError(t, err)
	require.NoError(t, start.Error())
	o, _ := start.Lookup("t", 0)
	require.EqualValues(t, 0, o.Offset)
	end, err := adm.ListEndOffsets(ctx, "t")
	require.NoError(t, err)
	o, _ = end.Lookup("t", 0)
	require.EqualValues(t, 10, o.Offset)

	// By time: the first record at or after it, with its timestamp.
	at, err := adm.ListOffsetsAfterMilli(ctx, base.Add(45*time.Millisecond).UnixMilli(), "t")
	require.NoError(t, err)
	o, _ = at.Lookup("t", 0)
	require.NoError(t, o.Err)
	require.EqualValues(t, 5, o.Offset)
	require.Equal(t, base.Add(50*time.Millisecond).UnixMilli(), o.Timestamp)
	require.EqualValues(t, 0, o.LeaderEpoch)

	// After every record: -1 and -1 on the wire (kadm makes it the end).
	resp := rawRequest(t, s, listOffsetsRequest(6, "t", base.Add(time.Hour).UnixMilli())).(*kmsg.ListOffsetsResponse)
	p := resp.Topics[0].Partitions[0]
	require.Zero(t, p.ErrorCode)
	require.EqualValues(t, -1, p.Offset)
	require.EqualValues(t, -1, p.Timestamp)

	// The largest timestamp (v7): the last record here.
	resp = rawRequest(t, s, listOffsetsRequest(7, "t", -3)).(*kmsg.ListOffsetsResponse)
	p = resp.Topics[0].Partitions[0]
	require.Zero(t, p.ErrorCode)
	require.EqualValues(t, 9, p.Offset)
	require.Equal(t, base.Add(90*time.Millisecond).UnixMilli(), p.Timestamp)
	resp = rawRequest(t, s, listOffsetsRequest(6, "t", -3)).(*kmsg.ListOffsetsResponse)
	require.Equal(t, kerr.InvalidRequest.Code, resp.Topics[0].Partitions[0].ErrorCode, "before v7")

	// Unknown topic and partition.
	resp = rawRequest(t, s, listOffsetsRequest(6, "missing", -1)).(*kmsg.ListOffsetsResponse)
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, resp.Topics[0].Partitions[0].ErrorCode)
	req := listOffsetsRequest(6, "t", -1)
	req.Topics[0].Partitions[0].Partition = 3
	resp = rawRequest(t, s, req).(*kmsg.ListOffsetsResponse)
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, resp.Topics[0].Partitions[0].ErrorCode)
	// A leader epoch newer than the only one, 0.
	req = listOffsetsRequest(4, "t", -1)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 1
	resp = rawRequest(t, s, req).(*kmsg.ListOffsetsResponse)
	require.Equal(t, kerr.UnknownLeaderEpoch.Code, resp.Topics[0].Partitions[0].ErrorCode)

	// read_committed (v2+) sees the same end: no transactions.
	req = listOffsetsRequest(2, "t", -1)
	req.IsolationLevel = 1
	resp = rawRequest(t, s, req).(*kmsg.ListOffsetsResponse)
	require.EqualValues(t, 10, resp.Topics[0].Partitions[0].Offset)
}

func TestListOffsetsOldVersions(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	base := time.UnixMilli(1_700_000_000_000)
	publishAt(t, b, "t", 4, base)
	_, err := b.DeleteRecords("t", 0, 1)
	require.NoError(t, err)

	// v0: the old list of offsets.
	for ts, want := range map[int64][]int64{-1: {4}, -2: {1}, base.Add(25 * time.Millisecond).UnixMilli(): {3}} {
		resp := rawRequest(t, s, listOffsetsRequest(0, "t", ts)).(*kmsg.ListOffsetsResponse)
		p := resp.Topics[0].Partitions[0]
		require.Zero(t, p.ErrorCode)
		require.Equal(t, want, p.OldStyleOffsets, "timestamp %d", ts)
	}
	// v1: one offset and its timestamp.
	resp := rawRequest(t, s, listOffsetsRequest(1, "t", base.UnixMilli())).(*kmsg.ListOffsetsResponse)
	p := resp.Topics[0].Partitions[0]
	require.Zero(t, p.ErrorCode)
	require.EqualValues(t, 1, p.Offset, "the first record still stored")
	require.Equal(t, base.Add(10*time.Millisecond).UnixMilli(), p.Timestamp)
	resp = rawRequest(t, s, listOffsetsRequest(1, "t", -2)).(*kmsg.ListOffsetsResponse)
	require.EqualValues(t, 1, resp.Topics[0].Partitions[0].Offset)
}

func TestDeleteRecords(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	publishAt(t, b, "t", 10, time.Now())

	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "t", Partition: 0, At: 4})
	resp, err := adm.DeleteRecords(ctx, offsets)
	require.NoError(t, err)
	r, ok := resp.Lookup("t", 0)
	require.True(t, ok)
	require.NoError(t, r.Err)
	require.EqualValues(t, 4, r.LowWatermark)

	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	require.EqualValues(t, 4, info.Partitions[0].StartOffset)
	start, err := adm.ListStartOffsets(ctx, "t")
	require.NoError(t, err)
	o, _ := start.Lookup("t", 0)
	require.EqualValues(t, 4, o.Offset)

	// Past the end; -1 is the high watermark; an unknown partition.
	for _, tc := range []struct {
		partition int32
		at        int64
		want      *kerr.Error
		low       int64
	}{
		{0, 11, kerr.OffsetOutOfRange, -1},
		{0, -1, nil, 10},
	} {
		offsets := kadm.Offsets{}
		offsets.Add(kadm.Offset{Topic: "t", Partition: tc.partition, At: tc.at})
		resp, err := adm.DeleteRecords(ctx, offsets)
		require.NoError(t, err)
		r, _ := resp.Lookup("t", tc.partition)
		if tc.want == nil {
			require.NoError(t, r.Err)
		} else {
			require.ErrorIs(t, r.Err, tc.want)
		}
		require.Equal(t, tc.low, r.LowWatermark)
	}
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.EqualValues(t, 10, info.Partitions[0].StartOffset)

	// A partition the topic lacks (kadm would not send it).
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 2, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw := rawRequest(t, s, req).(*kmsg.DeleteRecordsResponse)
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, raw.Topics[0].Partitions[0].ErrorCode)
	require.EqualValues(t, -1, raw.Topics[0].Partitions[0].LowWatermark)
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{}))
	publishAt(t, b, "t", 3, time.Now())

	for v := int16(0); v <= 4; v++ {
		for _, tc := range []struct {
			epoch, current int32
			code           int16
			endEpoch       int32
			end            int64
		}{
			{0, -1, 0, 0, 3},
			{7, -1, 0, -1, -1},
			{0, 1, kerr.UnknownLeaderEpoch.Code, -1, -1},
		} {
			if tc.current >= 0 && v < 2 {
				continue // no current epoch before v2
			}
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.SetVersion(v)
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.LeaderEpoch, rp.CurrentLeaderEpoch = tc.epoch, tc.current
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := rawRequest(t, s, req).(*kmsg.OffsetForLeaderEpochResponse)
			p := resp.Topics[0].Partitions[0]
			require.Equal(t, tc.code, p.ErrorCode, "v%d %+v", v, tc)
			require.Equal(t, tc.end, p.EndOffset, "v%d %+v", v, tc)
			if v >= 1 {
				require.Equal(t, tc.endEpoch, p.LeaderEpoch, "v%d %+v", v, tc)
			}
		}
	}
}
