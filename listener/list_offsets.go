package listener

import (
	"context"
	"fmt"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets stops at v7 (max timestamp, KIP-734): v8 asks for tiered
// storage offsets and v9 for the last tiered offset, none of which exist
// here.
func init() { serve(kmsg.ListOffsets, 0, 7, handleListOffsets) }

// Kafka's special ListOffsets timestamps.
const (
	listLatest       = -1
	listEarliest     = -2
	listMaxTimestamp = -3 // v7+
)

// handleListOffsets answers, per partition, the log start (timestamp -2),
// the high watermark (-1; the last stable offset for isolation level 1,
// read_committed, v2+), the record with the largest
// timestamp (-3, v7+) or the first offset whose record is at or after a
// timestamp (with that record's timestamp; -1 and -1 if none is). v0 answers in its old form, a list of at most MaxNumOffsets
// offsets.
func handleListOffsets(c *conn, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		allowed := c.allowed(opDescribe, resTopic, rt.Topic)
		info, infoErr := c.s.broker.DescribeTopic(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition, p.Timestamp, p.Offset, p.LeaderEpoch = rp.Partition, -1, -1, -1
			var err error
			switch {
			case !allowed:
				err = kerr.TopicAuthorizationFailed
			case infoErr != nil:
				err = infoErr
			case rp.Partition < 0 || int(rp.Partition) >= len(info.Partitions):
				err = stream.ErrInvalidPartition
			case rp.CurrentLeaderEpoch > 0:
				err = kerr.UnknownLeaderEpoch // the only epoch is 0
			default:
				p.Offset, p.Timestamp, err = c.listOffset(info, rp.Partition, rp.Timestamp, req.Version, req.IsolationLevel == 1)
			}
			p.ErrorCode = errorCode(err)
			if err == nil && p.Offset >= 0 {
				p.LeaderEpoch = 0
			}
			if req.Version == 0 && err == nil {
				if p.Offset >= 0 && rp.MaxNumOffsets > 0 {
					p.OldStyleOffsets = []int64{p.Offset}
				}
				p.Offset, p.Timestamp = 0, 0
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// listOffset answers one partition's query: the offset and, for a query
// by time, the found record's timestamp (-1 otherwise, as Kafka answers
// the earliest and latest queries).
func (c *conn) listOffset(info stream.TopicInfo, partition int32, ts int64, version int16, committed bool) (offset, timestamp int64, err error) {
	pi := info.Partitions[partition]
	switch {
	case ts == listEarliest:
		return pi.StartOffset, -1, nil
	case ts == listLatest && committed:
		return pi.LastStable, -1, nil
	case ts == listLatest:
		return pi.EndOffset, -1, nil
	case ts == listMaxTimestamp && version >= 7:
		off, at, err := c.s.broker.OffsetForMaxTimestamp(info.Name, partition)
		if err != nil || off < 0 {
			return -1, -1, err
		}
		return off, at.UnixMilli(), nil
	case ts < 0:
		return -1, -1, fmt.Errorf("%w: timestamp %d: want -1 (latest), -2 (earliest), -3 (max timestamp, v7+) or a time in ms", kerr.InvalidRequest, ts)
	}
	offset, err = c.s.broker.OffsetForTime(info.Name, partition, time.UnixMilli(ts))
	if err != nil || offset < 0 {
		return -1, -1, err
	}
	return offset, c.timestampAt(info.Name, partition, offset), nil
}

// timestampAt is the timestamp of the record at offset, which Kafka
// returns with an offset found by time; -1 if it cannot be read (deleted
// meanwhile, damaged).
func (c *conn) timestampAt(topic string, partition int32, offset int64) int64 {
	r, err := c.s.broker.NewReader(topic, partition, stream.AtOffset(offset), &stream.ReaderOptions{StopAtEnd: true})
	if err != nil {
		return -1
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	rec, err := r.Next(ctx)
	if err != nil {
		return -1
	}
	return rec.Timestamp.UnixMilli()
}
