package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
)

// produced is a batch as a Kafka producer sends it: records with values
// vals at ts (ms), of producer pid (-1: none) at epoch and base sequence
// seq, compressed with codec.
func produced(t *testing.T, pid int64, epoch int16, seq int32, ts int64, codec batch.Codec, vals ...string) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Reset(0)
	for _, v := range vals {
		bld.Add(ts, []byte("k"), []byte(v), nil)
	}
	b := append(batch.Batch(nil), bld.Finish()...)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[12:], math.MaxUint32) // leader epoch -1, as clients send
	batchtest.FixCRC(b)
	if codec != batch.None {
		var err error
		b, err = batch.Compress(nil, b, codec, 0)
		require.NoError(t, err)
	}
	return b
}

// readStored reads a partition's batches as stored.
func readStored(t *testing.T, b *Broker, topic string, partition int32) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for off := int64(0); ; {
		v, err := b.ReadBatches(topic, partition, off, 1<<20)
		require.NoError(t, err)
		if len(v.Data) == 0 {
			v.Release()
			return out
		}
		for data := v.Data; len(data) > 0; {
			bt, err := batch.Parse(data)
			require.NoError(t, err)
			out = append(out, append(batch.Batch(nil), bt...))
			data = data[len(bt):]
			off = bt.LastOffset() + 1
		}
		v.Release()
	}
}

func TestAppendBatchesStoresAsSent(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
	in := produced(t, -1, -1, -1, time.Now().UnixMilli(), batch.Snappy, "a", "b", "c")
	sent := append([]byte(nil), in...)
	res, err := b.AppendBatches("t", 1, in)
	require.NoError(t, err)
	require.Equal(t, AppendResult{BaseOffset: 0}, res)
	res, err = b.AppendBatches("t", 1, produced(t, -1, -1, -1, time.Now().UnixMilli(), batch.None, "d"))
	require.NoError(t, err)
	require.Equal(t, int64(3), res.BaseOffset)
	require.Equal(t, []string{"a", "b", "c", "d"}, values(t, b, "t", 1))

	got := readStored(t, b, "t", 1)
	require.Len(t, got, 2)
	require.Equal(t, []byte(sent[batch.LogOverhead+4:]), []byte(got[0][batch.LogOverhead+4:]),
		"stored as sent from magic on; only base offset and leader epoch rewritten")
	require.Zero(t, binary.BigEndian.Uint32(got[0][12:]), "leader epoch 0")
	st := b.Stats()
	require.Equal(t, int64(2), st.BatchesIn)
	require.Equal(t, int64(4), st.RecordsIn)
}

func TestAppendBatchesRefusesBadInputWritingNothing(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxRecordBytes: 1000, MaxTimestampBehind: time.Hour}))
	ms := now.UnixMilli()
	good := func() []byte { return produced(t, -1, -1, -1, ms, batch.None, "v") }
	mutate := func(f func(b []byte)) []byte {
		bt := good()
		f(bt)
		return bt
	}
	fixed := func(f func(b []byte)) []byte {
		return mutate(func(bt []byte) { f(bt); batchtest.FixCRC(bt) })
	}
	big := make([]byte, 2000) // incompressible
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name      string
		topic     string
		partition int32
		data      []byte
		want      error
	}{
		{"crc", "t", 0, mutate(func(b []byte) { b[len(b)-1] ^= 1 }), ErrCorrupt},
		{"magic", "t", 0, mutate(func(b []byte) { b[16] = 1 }), ErrCorrupt},
		{"short", "t", 0, good()[:40], ErrCorrupt},
		{"two batches", "t", 0, append(good(), good()...), ErrInvalidRecord},
		{"record count", "t", 0, fixed(func(b []byte) { binary.BigEndian.PutUint32(b[23:], 3) }), ErrInvalidRecord},
		{"control", "t", 0, fixed(func(b []byte) { b[22] |= batch.AttrControl }), ErrInvalidRecord},
		{"transactional", "t", 0, fixed(func(b []byte) { b[22] |= batch.AttrTransactional }), ErrInvalidRecord},
		{"codec 6", "t", 0, fixed(func(b []byte) { b[22] |= 6 }), ErrUnsupported},
		{"no sequence", "t", 0, produced(t, 7, 0, -1, ms, batch.None, "v"), ErrInvalidRecord},
		{"ahead", "t", 0, produced(t, -1, -1, -1, ms+2*time.Hour.Milliseconds(), batch.None, "v"), ErrInvalidTimestamp},
		{"ahead compressed", "t", 0, produced(t, -1, -1, -1, ms+2*time.Hour.Milliseconds(), batch.Gzip, "v"), ErrInvalidTimestamp},
		{"behind compressed", "t", 0, produced(t, -1, -1, -1, ms-2*time.Hour.Milliseconds(), batch.Gzip, "v"), ErrInvalidTimestamp},
		{"too large", "t", 0, produced(t, -1, -1, -1, ms, batch.None, string(big)), ErrRecordTooLarge},
		{"too large compressed", "t", 0, produced(t, -1, -1, -1, ms, batch.Gzip, string(big)), ErrRecordTooLarge},
		{"too large in several", "t", 0, produced(t, -1, -1, -1, ms, batch.Gzip, "a", string(big)), ErrRecordTooLarge},
		{"unknown topic", "nope", 0, good(), ErrTopicNotFound},
		{"partition", "t", 1, good(), ErrInvalidPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.AppendBatches(tc.topic, tc.partition, tc.data)
			require.ErrorIs(t, err, tc.want)
		})
	}
	require.Empty(t, values(t, b, "t", 0))
	require.Zero(t, b.Stats().BatchesIn)

	// Compressible and large: judged compressed, as Publish does.
	_, err := b.AppendBatches("t", 0, produced(t, -1, -1, -1, ms, batch.Gzip, string(make([]byte, 2000))))
	require.NoError(t, err)
}

func TestAppendBatchesAutoCreatesAndReadOnly(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, &Options{Sync: SyncNever, AutoCreateTopics: true})
	_, err := b.AppendBatches("auto", 0, produced(t, -1, -1, -1, time.Now().UnixMilli(), batch.None, "x"))
	require.NoError(t, err)
	require.NoError(t, b.Close())

	ro := openBroker(t, dir, &Options{ReadOnly: true})
	_, err = ro.AppendBatches("auto", 0, produced(t, -1, -1, -1, time.Now().UnixMilli(), batch.None, "y"))
	require.ErrorIs(t, err, ErrReadOnly)
	_, _, err = ro.InitProducerID()
	require.ErrorIs(t, err, ErrReadOnly)
	require.Equal(t, []string{"x"}, values(t, ro, "auto", 0))
}

func TestAppendBatchesLogAppendTimeAndRecompression(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: func() time.Time { return now }})
	require.NoError(t, b.CreateTopic("lat", TopicConfig{LogAppendTime: true}))
	require.NoError(t, b.CreateTopic("zstd", TopicConfig{Compression: Compression{Codec: CodecZstd}}))
	require.NoError(t, b.CreateTopic("none", TopicConfig{Compression: Compression{Codec: CodecNone}}))

	res, err := b.AppendBatches("lat", 0, produced(t, -1, -1, -1, 5, batch.Snappy, "a"))
	require.NoError(t, err)
	require.True(t, res.LogAppendTime.Equal(now), "%v", res.LogAppendTime)
	rd, err := b.NewReader("lat", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	rec, err := rd.Next(t.Context())
	require.NoError(t, err)
	require.True(t, rec.Timestamp.Equal(now))
	require.NoError(t, rd.Close())

	for topic, want := range map[string]batch.Codec{"zstd": batch.Zstd, "none": batch.None} {
		_, err := b.AppendBatches(topic, 0, produced(t, -1, -1, -1, now.UnixMilli(), batch.Snappy, "a", "b"))
		require.NoError(t, err)
		got := readStored(t, b, topic, 0)
		require.Len(t, got, 1)
		require.Equal(t, want, got[0].Codec(), topic)
		require.Equal(t, []string{"a", "b"}, values(t, b, topic, 0), topic)
	}
}

func TestAppendBatchesIdempotence(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	pid, epoch, err := b.InitProducerID()
	require.NoError(t, err)
	require.Zero(t, epoch)
	ts := time.Now().UnixMilli()
	send := func(epoch int16, seq int32, vals ...string) (AppendResult, error) {
		return b.AppendBatches("t", 0, produced(t, pid, epoch, seq, ts, batch.Snappy, vals...))
	}

	res, err := send(0, 0, "a", "b")
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	res, err = send(0, 2, "c")
	require.NoError(t, err)
	require.Equal(t, int64(2), res.BaseOffset)

	res, err = send(0, 0, "a", "b") // a retry
	require.NoError(t, err)
	require.Equal(t, AppendResult{BaseOffset: 0, Duplicate: true}, res)

	_, err = send(0, 4, "e") // 3 lost
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	_, err = send(0, 1, "b") // overlapping, not a batch sent
	require.ErrorIs(t, err, ErrOutOfOrderSequence)

	_, err = send(1, 5, "x") // a new epoch starts at 0
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	_, err = send(1, 0, "x")
	require.NoError(t, err)
	_, err = send(0, 3, "d") // fenced
	require.ErrorIs(t, err, ErrInvalidProducerEpoch)
	require.Equal(t, []string{"a", "b", "c", "x"}, values(t, b, "t", 0))

	// Five batches are remembered; the sixth back is out of the window.
	for seq := int32(1); seq <= 6; seq++ {
		_, err = send(1, seq, fmt.Sprint(seq))
		require.NoError(t, err)
	}
	res, err = send(1, 2, "2")
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	_, err = send(1, 1, "1")
	require.ErrorIs(t, err, ErrOutOfOrderSequence)

	// A producer the partition does not know starts anywhere (KIP-360).
	other, _, err := b.InitProducerID()
	require.NoError(t, err)
	require.NotEqual(t, pid, other)
	_, err = b.AppendBatches("t", 0, produced(t, other, 0, 42, ts, batch.None, "o"))
	require.NoError(t, err)
}

func TestAppendBatchesSequenceWraps(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	ts := time.Now().UnixMilli()
	_, err := b.AppendBatches("t", 0, produced(t, 9, 0, math.MaxInt32-1, ts, batch.None, "a", "b"))
	require.NoError(t, err)
	_, err = b.AppendBatches("t", 0, produced(t, 9, 0, 0, ts, batch.None, "c"))
	require.NoError(t, err)
	res, err := b.AppendBatches("t", 0, produced(t, 9, 0, math.MaxInt32-1, ts, batch.None, "a", "b"))
	require.NoError(t, err)
	require.True(t, res.Duplicate)
}

func TestIdempotenceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{Sync: SyncNever}
	b := openBroker(t, dir, opts)
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 4096}))
	pid, _, err := b.InitProducerID()
	require.NoError(t, err)
	ts := time.Now().UnixMilli()
	var bases []int64
	for seq := range int32(40) { // several segments
		res, err := b.AppendBatches("t", 0, produced(t, pid, 0, seq, ts, batch.None, fmt.Sprintf("%0200d", seq)))
		require.NoError(t, err)
		bases = append(bases, res.BaseOffset)
	}
	require.NoError(t, b.Close())

	b = openBroker(t, dir, opts)
	res, err := b.AppendBatches("t", 0, produced(t, pid, 0, 38, ts, batch.None, fmt.Sprintf("%0200d", 38)))
	require.NoError(t, err)
	require.Equal(t, AppendResult{BaseOffset: bases[38], Duplicate: true}, res)
	_, err = b.AppendBatches("t", 0, produced(t, pid, 0, 41, ts, batch.None, "gap"))
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	_, err = b.AppendBatches("t", 0, produced(t, pid, 0, 40, ts, batch.None, "next"))
	require.NoError(t, err)
	next, _, err := b.InitProducerID()
	require.NoError(t, err)
	require.Greater(t, next, pid, "producer IDs are never handed out again")
}

func TestProducerStateExpires(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { return now }
	b := openBroker(t, "", &Options{Sync: SyncNever, Now: clock})
	require.NoError(t, b.CreateTopic("t", TopicConfig{MaxTimestampAhead: -1}))
	_, err := b.AppendBatches("t", 0, produced(t, 5, 0, 0, now.UnixMilli(), batch.None, "a"))
	require.NoError(t, err)
	_, err = b.AppendBatches("t", 0, produced(t, 5, 0, 7, now.UnixMilli(), batch.None, "b"))
	require.ErrorIs(t, err, ErrOutOfOrderSequence)

	now = now.Add(24 * time.Hour)
	_, err = b.AppendBatches("t", 0, produced(t, 5, 0, 7, now.UnixMilli(), batch.None, "b"))
	require.NoError(t, err, "an expired producer is unknown: any sequence")
}

func TestReadBatches(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	ts := time.Now().UnixMilli()
	for i := range 3 {
		_, err := b.AppendBatches("t", 0, produced(t, -1, -1, -1, ts, batch.None, fmt.Sprint(i), "x", "y"))
		require.NoError(t, err)
	}
	v, err := b.ReadBatches("t", 0, 4, 1) // inside the second batch
	require.NoError(t, err)
	bt, err := batch.Parse(v.Data)
	require.NoError(t, err)
	require.Len(t, v.Data, len(bt), "one whole batch, however small maxBytes")
	require.Equal(t, int64(3), bt.BaseOffset())
	require.Equal(t, int64(9), v.HighWatermark)
	require.Zero(t, v.LogStartOffset)
	v.Release()
	v.Release()

	v, err = b.ReadBatches("t", 0, 0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, int64(8), lastOffset(v.Data))
	v.Release()

	v, err = b.ReadBatches("t", 0, 9, 1<<20)
	require.NoError(t, err)
	require.Empty(t, v.Data)
	v.Release()

	_, err = b.ReadBatches("t", 0, 10, 1<<20)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	_, err = b.DeleteRecords("t", 0, 3)
	require.NoError(t, err)
	_, err = b.ReadBatches("t", 0, 2, 1<<20)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	_, err = b.ReadBatches("nope", 0, 0, 1<<20)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.ReadBatches("t", 3, 0, 1<<20)
	require.ErrorIs(t, err, ErrInvalidPartition)
}

func TestNotifyAppend(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))
	bell := make(chan struct{}, 1)
	stop, err := b.NotifyAppend("t", 0, bell)
	require.NoError(t, err)
	for i := range 2 { // every append rings, until stop
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte{byte(i)}}))
		<-bell
	}
	stop()
	require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("z")}))
	require.Empty(t, bell)
	_, err = b.NotifyAppend("nope", 0, bell)
	require.ErrorIs(t, err, ErrTopicNotFound)
}

func TestReadBatchesPassesOverDamage(t *testing.T) {
	dir, _ := damageFixture(t, 300)
	stored := storedBatches(t, dir, "t", 0)
	hit := stored[len(stored)/3]
	data, err := os.ReadFile(hit.file)
	require.NoError(t, err)
	data[hit.end-3] ^= 0x40 // only the CRC sees it
	require.NoError(t, os.WriteFile(hit.file, data, 0o600))

	b := openBroker(t, dir, &Options{Sync: SyncNever})
	v, err := b.ReadBatches("t", 0, hit.base+3, 1)
	require.NoError(t, err)
	bt, err := batch.Parse(v.Data)
	require.NoError(t, err)
	require.Equal(t, hit.last+1, bt.BaseOffset(), "reading goes on after the damaged batch")
	v.Release()
	require.Positive(t, b.Stats().CorruptBatches)
}
