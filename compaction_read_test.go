package stream

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
)

// Reads over the gaps cleaning leaves (issue 18, item 3): every read path
// that starts at an offset, or a time, finds the next surviving record.

// gappyTopic publishes 300 records of 7 keys to partition 0 of a new
// compacted topic "g" (3 per batch, so that cleaning empties some batches
// and thins others), record i stamped base + i seconds, compacts it, and
// returns base and the surviving records' offsets.
func gappyTopic(t *testing.T, b *Broker) (base time.Time, offs []int64) {
	t.Helper()
	require.NoError(t, b.CreateTopic("g", compactedTopic(1)))
	base = time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 0; i < 300; i += 3 {
		var recs []*Record
		for j := i; j < i+3; j++ {
			recs = append(recs, &Record{Topic: "g", Key: fmt.Appendf(nil, "k%d", j%7), Value: fmt.Appendf(nil, "v%d", j),
				Timestamp: base.Add(time.Duration(j) * time.Second)})
		}
		require.NoError(t, b.Publish(t.Context(), recs...))
		require.Equal(t, int64(i), recs[0].Offset)
	}
	require.NoError(t, b.Compact(t.Context(), "g"))
	offs = gappyOffsets(t, b)
	require.Less(t, len(offs), 200, "cleaning removed records")
	require.Equal(t, int64(299), offs[len(offs)-1])
	return base, offs
}

// gappyOffsets reads partition 0 of "g" whole and checks each record is
// the one published at its offset.
func gappyOffsets(t *testing.T, b *Broker) []int64 {
	t.Helper()
	r, err := b.NewReader("g", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	var offs []int64
	for rec, err := range r.All(t.Context()) {
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("v%d", rec.Offset), string(rec.Value))
		offs = append(offs, rec.Offset)
	}
	return offs
}

// nextSurvivor returns the first of offs at or after off, or -1.
func nextSurvivor(offs []int64, off int64) int64 {
	i, _ := slices.BinarySearch(offs, off)
	if i == len(offs) {
		return -1
	}
	return offs[i]
}

func TestCompactedReadsOverGaps(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, DisableCleaner: true})
	base, offs := gappyTopic(t, b)
	info, err := b.DescribeTopic("g")
	require.NoError(t, err)
	require.Equal(t, int64(0), info.Partitions[0].StartOffset, "cleaning never moves the log start")
	require.Equal(t, int64(300), info.Partitions[0].EndOffset)

	wholeBatchGap := false // ReadBatches answered past the offset asked
	for off := int64(0); off < 300; off++ {
		want := nextSurvivor(offs, off)

		// A Reader from inside a gap starts at the next survivor.
		r, err := b.NewReader("g", 0, AtOffset(off), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		rec, err := r.Next(t.Context())
		require.NoError(t, err, "from %d", off)
		require.Equal(t, want, rec.Offset, "reader from %d", off)
		require.NoError(t, r.Close())

		// The first record at or after a time is the first survivor at
		// or after it (timestamps grow with offsets here).
		got, err := b.OffsetForTime("g", 0, base.Add(time.Duration(off)*time.Second))
		require.NoError(t, err)
		require.Equal(t, want, got, "offset for the time of %d", off)
		got, err = b.OffsetForTime("g", 0, base.Add(time.Duration(off)*time.Second-time.Millisecond))
		require.NoError(t, err)
		require.Equal(t, want, got, "offset for just before the time of %d", off)
		r, err = b.NewReader("g", 0, AtTime(base.Add(time.Duration(off)*time.Second)), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		rec, err = r.Next(t.Context())
		require.NoError(t, err)
		require.Equal(t, want, rec.Offset, "reader from the time of %d", off)
		require.NoError(t, r.Close())

		// ReadBatches: whole batches, the first ending at or after the
		// offset (it may begin past it, where a whole batch went); the
		// first record at or after the offset is the next survivor.
		bs, err := b.ReadBatches("g", 0, off, 1)
		require.NoError(t, err)
		require.NotEmpty(t, bs.Data, "ReadBatches from %d", off)
		first := batch.Batch(bs.Data)
		first = first[:first.Size()]
		require.GreaterOrEqual(t, first.LastOffset(), off, "ReadBatches from %d", off)
		wholeBatchGap = wholeBatchGap || first.BaseOffset() > off
		it := first.Records()
		var r0 batch.Record
		found := int64(-1)
		for it.Next(&r0) {
			if r0.Offset >= off {
				found = r0.Offset
				break
			}
		}
		require.NoError(t, it.Err())
		require.Equal(t, want, found, "ReadBatches from %d: first record at or after it", off)
		bs.Release()
	}
	require.True(t, wholeBatchGap, "some batch went whole")
	got, err := b.OffsetForTime("g", 0, base.Add(300*time.Second))
	require.NoError(t, err)
	require.Equal(t, int64(-1), got, "no record at or after the time")

	// ReadBatches at the end: nothing; past it: out of range.
	bs, err := b.ReadBatches("g", 0, 300, 1)
	require.NoError(t, err)
	require.Empty(t, bs.Data)
	bs.Release()
	_, err = b.ReadBatches("g", 0, 301, 1)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
}

// A Consumer over gaps: lag counts offsets (end - position), positions
// move past gaps, and a seek into a gap reads from the next survivor.
func TestCompactedConsumerOverGaps(t *testing.T) {
	b := openBroker(t, "", &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, DisableCleaner: true})
	_, offs := gappyTopic(t, b)
	tp := TopicPartition{Topic: "g", Partition: 0}
	c, err := b.Subscribe("cg", []string{"g"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 5})
	require.NoError(t, err)
	defer c.Close()
	var got []int64
	for {
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		for _, r := range recs {
			got = append(got, r.Offset)
		}
		pos, err := c.Position(tp)
		require.NoError(t, err)
		lag, err := c.Lag(tp)
		require.NoError(t, err)
		require.Equal(t, 300-pos, lag, "lag counts offsets, gaps included")
		if len(got) > 0 {
			last := got[len(got)-1]
			require.Greater(t, pos, last)
			if next := nextSurvivor(offs, last+1); next >= 0 {
				require.LessOrEqual(t, pos, next, "the position never passes a survivor")
			}
		}
		if pos == 300 {
			break
		}
	}
	require.Equal(t, offs, got)
	lag, err := c.Lag(tp)
	require.NoError(t, err)
	require.Zero(t, lag)

	// Seek into gaps: the next Poll starts at the next survivor.
	for _, off := range []int64{0, 1, 2, 50, 100, 150, 200} {
		want := nextSurvivor(offs, off)
		require.NoError(t, c.Seek(tp, off))
		lag, err := c.Lag(tp)
		require.NoError(t, err)
		require.Equal(t, 300-off, lag)
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		require.Equal(t, want, recs[0].Offset, "seek to %d", off)
	}
}

// A read-only broker and a follower read a cleaned topic as its owner
// does; the follower, open while the owner cleans, sees the cleaned log at
// its next refresh, and a Reader it had open reads on.
func TestCompactedReadOnlyAndFollower(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, DisableCleaner: true})
	require.NoError(t, b.CreateTopic("g", compactedTopic(1)))
	f := openFollower(t, dir, nil)

	// The owner writes; the follower reads it uncleaned, and keeps a
	// Reader open in the middle.
	for i := range 300 {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "g", Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "v%d", i)}))
	}
	require.NoError(t, f.Refresh())
	require.Len(t, gappyOffsets(t, f), 300)
	r, err := f.NewReader("g", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	var early []int64
	for range 10 {
		rec, err := r.Next(t.Context())
		require.NoError(t, err)
		early = append(early, rec.Offset)
	}

	require.NoError(t, b.Compact(t.Context(), "g"))
	offs := gappyOffsets(t, b)
	require.Less(t, len(offs), 200)

	// The Reader opened before the clean reads on, records whole and in
	// order, each one the owner published at its offset.
	for {
		rec, err := r.Next(t.Context())
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("v%d", rec.Offset), string(rec.Value))
		require.Greater(t, rec.Offset, early[len(early)-1])
		early = append(early, rec.Offset)
	}

	require.NoError(t, f.Refresh())
	require.Equal(t, offs, gappyOffsets(t, f), "the follower reads the cleaned log")
	for _, off := range []int64{0, 1, 100, 250} {
		fr, err := f.NewReader("g", 0, AtOffset(off), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		rec, err := fr.Next(context.Background())
		require.NoError(t, err)
		require.Equal(t, nextSurvivor(offs, off), rec.Offset, "follower reader from %d", off)
		require.NoError(t, fr.Close())
	}

	// More writes and another clean: the follower's loop finds them too.
	for i := 300; i < 600; i++ {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "g", Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "v%d", i)}))
	}
	require.NoError(t, b.Compact(t.Context(), "g"))
	offs = gappyOffsets(t, b)
	require.NoError(t, f.Refresh())
	require.Equal(t, offs, gappyOffsets(t, f))

	// Read-only, after the owner closed.
	require.NoError(t, f.Close())
	require.NoError(t, b.Close())
	ro, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	require.Equal(t, offs, gappyOffsets(t, ro))
	for _, off := range []int64{0, 3, 299, 450} {
		want := nextSurvivor(offs, off)
		rr, err := ro.NewReader("g", 0, AtOffset(off), &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		rec, err := rr.Next(t.Context())
		require.NoError(t, err)
		require.Equal(t, want, rec.Offset, "read-only reader from %d", off)
		require.NoError(t, rr.Close())
	}
	require.ErrorIs(t, ro.Compact(t.Context(), "g"), ErrReadOnly)
}
