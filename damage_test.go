package stream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/segment"
)

// storedBatch is where one batch sits in a segment file.
type storedBatch struct {
	file       string
	pos, end   int64
	base, last int64
}

// storedBatches parses a partition's segment files directly, oldest first.
func storedBatches(t *testing.T, dir, topic string, partition int) []storedBatch {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, topicsDir, topic, fmt.Sprint(partition), "*"+segment.LogSuffix))
	require.NoError(t, err)
	var out []storedBatch
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for pos := 0; pos < len(data); {
			b, err := batch.Parse(data[pos:])
			require.NoError(t, err)
			out = append(out, storedBatch{file: f, pos: int64(pos), end: int64(pos + len(b)), base: b.BaseOffset(), last: b.LastOffset()})
			pos += len(b)
		}
	}
	return out
}

// damageFixture publishes n records (value "v<offset>", timestamp base+offset
// seconds, a 40-byte key) to partition 0 of topic "t", ten per batch, in
// segments of about 4 KiB, and closes the broker cleanly.
func damageFixture(t *testing.T, n int) (dir string, ts0 time.Time) {
	t.Helper()
	dir = t.TempDir()
	ts0 = time.UnixMilli(1_700_000_000_000)
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 1, SegmentBytes: 4 << 10}))
	for i := 0; i < n; i += 10 {
		recs := make([]*Record, 0, 10)
		for j := i; j < min(i+10, n); j++ {
			recs = append(recs, &Record{Topic: "t", Key: bytes.Repeat([]byte("k"), 40), Value: []byte(fmt.Sprint("v", j)), Timestamp: ts0.Add(time.Duration(j) * time.Second)})
		}
		require.NoError(t, b.Publish(t.Context(), recs...))
	}
	require.NoError(t, b.Close())
	return dir, ts0
}

// readAllPast reads partition 0 of "t" from the start to its end with a
// Reader, passing damage: it returns the offsets read and the errors met.
func readAllPast(t *testing.T, b *Broker) (offsets []int64, corrupt []*CorruptError) {
	t.Helper()
	r, err := b.NewReader("t", 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	require.NoError(t, err)
	defer r.Close()
	for {
		rec, err := r.Next(t.Context())
		if err == io.EOF {
			return offsets, corrupt
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Equal(t, ce.Next, r.Offset(), "the Reader goes on past the damage")
			corrupt = append(corrupt, ce)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("v", rec.Offset), string(rec.Value))
		offsets = append(offsets, rec.Offset)
	}
}

func offsetsExcept(n int64, lo, hi int64) []int64 {
	var out []int64
	for i := range n {
		if i < lo || i > hi {
			out = append(out, i)
		}
	}
	return out
}

// TestDamageAfterCleanShutdownRecovers damages the newest segment after a
// clean Close, as the issue found from outside: Open must recover as after
// a crash (read-only: in memory, changing nothing), not fail.
func TestDamageAfterCleanShutdownRecovers(t *testing.T) {
	const n = 200
	cases := []struct {
		name   string
		damage func(data []byte, last storedBatch) []byte
		lostLo int64 // first offset lost; n if none
		cut    int64 // bytes recovery cuts
	}{
		{"last batch cut short", func(d []byte, last storedBatch) []byte { return d[:len(d)-5] }, n - 10, -1},
		{"partial header appended", func(d []byte, last storedBatch) []byte { return append(d, d[last.pos:last.pos+30]...) }, n, 30},
		{"zeros appended", func(d []byte, last storedBatch) []byte { return append(d, make([]byte, 4096)...) }, n, 4096},
		{"garbage appended", func(d []byte, last storedBatch) []byte { return append(d, bytes.Repeat([]byte{0xa5}, 100)...) }, n, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := damageFixture(t, n)
			stored := storedBatches(t, dir, "t", 0)
			last := stored[len(stored)-1]
			data, err := os.ReadFile(last.file)
			require.NoError(t, err)
			damaged := tc.damage(data, last)
			require.NoError(t, os.WriteFile(last.file, damaged, 0o600))
			want := offsetsExcept(n, tc.lostLo, n)
			cut := tc.cut
			if cut < 0 {
				cut = int64(len(damaged)) - last.pos
			}

			before := snapshotTree(t, dir)
			ro, err := Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err, "read-only")
			got, corrupt := readAllPast(t, ro)
			require.Equal(t, want, got)
			require.Empty(t, corrupt)
			require.NoError(t, ro.Close())
			require.Equal(t, before, snapshotTree(t, dir), "read-only changes no byte")

			b, err := Open(dir, &Options{Sync: SyncNever})
			require.NoError(t, err)
			st := b.Stats()
			require.Equal(t, int64(1), st.Truncations)
			require.Equal(t, cut, st.TruncatedBytes)
			got, corrupt = readAllPast(t, b)
			require.Equal(t, want, got)
			require.Empty(t, corrupt)
			r := &Record{Topic: "t", Value: []byte(fmt.Sprint("v", tc.lostLo))}
			require.NoError(t, b.Publish(t.Context(), r))
			require.Equal(t, tc.lostLo, r.Offset, "appends go on where the good records end")
			require.NoError(t, b.Close())

			b, err = Open(dir, &Options{Sync: SyncNever})
			require.NoError(t, err)
			defer b.Close()
			require.Zero(t, b.Stats().Truncations, "the recovered log closes cleanly")
			got, _ = readAllPast(t, b)
			require.Equal(t, append(want, tc.lostLo), got)
		})
	}
}

// TestCorruptBatchCostsOnlyItsRecords flips a byte inside one batch of a
// sealed or the active segment: every record before and after it is
// returned, by a Reader, a Consumer and OffsetForTime; the damaged batch is
// reported where it is reached, with the way past it.
func TestCorruptBatchCostsOnlyItsRecords(t *testing.T) {
	const n = 300
	for _, where := range []string{"sealed", "active"} {
		for _, shutdown := range []string{"clean", "unclean"} {
			t.Run(where+"/"+shutdown, func(t *testing.T) {
				dir, ts0 := damageFixture(t, n)
				stored := storedBatches(t, dir, "t", 0)
				var hit storedBatch
				if where == "sealed" {
					hit = stored[len(stored)/3]
					require.NotEqual(t, stored[len(stored)-1].file, hit.file)
				} else {
					hit = stored[len(stored)-2]
					require.Equal(t, stored[len(stored)-1].file, hit.file)
				}
				data, err := os.ReadFile(hit.file)
				require.NoError(t, err)
				data[hit.end-3] ^= 0x40 // inside the last record's value: only the CRC sees it
				require.NoError(t, os.WriteFile(hit.file, data, 0o600))
				if shutdown == "unclean" {
					b, err := Open(dir, &Options{Sync: SyncNever})
					require.NoError(t, err)
					crash(t, b)
				}
				want := offsetsExcept(n, hit.base, hit.last)

				b, err := Open(dir, &Options{Sync: SyncNever})
				require.NoError(t, err)
				defer b.Close()
				require.Zero(t, b.Stats().Truncations, "nothing is cut: valid batches follow the damage")
				got, corrupt := readAllPast(t, b)
				require.Equal(t, want, got)
				require.Len(t, corrupt, 1)
				require.Equal(t, CorruptError{Topic: "t", Partition: 0, Offset: hit.base, Next: hit.last + 1, Err: corrupt[0].Err}, *corrupt[0])
				require.Positive(t, b.Stats().CorruptBatches)

				// A Reader starting inside the damage reports it first.
				r, err := b.NewReader("t", 0, AtOffset(hit.base+3), &ReaderOptions{StopAtEnd: true})
				require.NoError(t, err)
				_, err = r.Next(t.Context())
				var ce *CorruptError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, hit.base+3, ce.Offset)
				rec, err := r.Next(t.Context())
				require.NoError(t, err)
				require.Equal(t, hit.last+1, rec.Offset)
				require.NoError(t, r.Close())

				// OffsetForTime finds records on both sides, and passes the damage.
				at := func(off int64) time.Time { return ts0.Add(time.Duration(off) * time.Second) }
				for _, c := range [][2]int64{{0, 0}, {hit.base - 1, hit.base - 1}, {hit.base, hit.last + 1}, {hit.last, hit.last + 1}, {n - 1, n - 1}} {
					off, err := b.OffsetForTime("t", 0, at(c[0]))
					require.NoError(t, err)
					require.Equal(t, c[1], off, "time of offset %d", c[0])
				}

				// A Consumer gets the records before the damage, then the
				// error, and stays there until it seeks past.
				c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 1000})
				require.NoError(t, err)
				defer c.Close()
				var polled []int64
				var errs []*CorruptError
				for len(polled) < len(want) {
					recs, err := c.Poll(t.Context())
					if errors.As(err, &ce) {
						errs = append(errs, ce)
						if len(errs) == 1 {
							continue // reported again: the consumer stays
						}
						require.Equal(t, *errs[0], *ce)
						require.NoError(t, c.Seek(TopicPartition{Topic: ce.Topic, Partition: ce.Partition}, ce.Next))
						continue
					}
					require.NoError(t, err)
					for _, r := range recs {
						polled = append(polled, r.Offset)
					}
				}
				require.Equal(t, want, polled)
				require.Len(t, errs, 2)
				require.Equal(t, hit.base, errs[0].Offset)
				require.Equal(t, hit.last+1, errs[0].Next)
			})
		}
	}
}

// TestLazyIndexRebuildIsCounted removes a sealed segment's index after a
// clean close: the first read rebuilds it, and Stats says so.
func TestLazyIndexRebuildIsCounted(t *testing.T) {
	dir, _ := damageFixture(t, 100)
	stored := storedBatches(t, dir, "t", 0)
	require.NotEqual(t, stored[0].file, stored[len(stored)-1].file)
	for _, suffix := range []string{segment.IndexSuffix, segment.TimeIndexSuffix} {
		require.NoError(t, os.Remove(strings.TrimSuffix(stored[0].file, segment.LogSuffix)+suffix))
	}
	b := openBroker(t, dir, nil)
	require.Zero(t, b.Stats().IndexRebuilds, "sealed segments' indexes open lazily")
	got, corrupt := readAllPast(t, b)
	require.Len(t, got, 100)
	require.Empty(t, corrupt)
	require.Equal(t, int64(1), b.Stats().IndexRebuilds)
}

// TestConsumerReportsDamageWhileOtherPartitionsFlow damages partition 1 of
// two while partition 0 gets records before every Poll: the damage must
// still be reported (once, then passed by Seek), and neither partition
// starves the other.
func TestConsumerReportsDamageWhileOtherPartitionsFlow(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2, SegmentBytes: 4 << 10}))
	publish := func(b *Broker, p int32, from int) {
		recs := make([]*Record, 0, 10)
		for j := from; j < from+10; j++ {
			recs = append(recs, &Record{Topic: "t", Partition: p, Value: []byte(fmt.Sprint("v", j))})
		}
		require.NoError(t, b.Publish(t.Context(), recs...))
	}
	for i := 0; i < 100; i += 10 {
		publish(b, 0, i)
		publish(b, 1, i)
	}
	require.NoError(t, b.Close())
	hit := storedBatches(t, dir, "t", 1)[0]
	data, err := os.ReadFile(hit.file)
	require.NoError(t, err)
	data[hit.end-3] ^= 0x40
	require.NoError(t, os.WriteFile(hit.file, data, 0o600))

	b = openBroker(t, dir, nil)
	c, err := b.Subscribe("g", []string{"t"}, &ConsumerOptions{Reset: ResetEarliest, MaxPollRecords: 1000})
	require.NoError(t, err)
	defer c.Close()
	got := map[int32]int{}
	var reported []*CorruptError
	for k := 0; k < 20; k++ {
		publish(b, 0, 100+10*k) // partition 0 always has something new
		recs, err := c.Poll(t.Context())
		var ce *CorruptError
		if errors.As(err, &ce) {
			reported = append(reported, ce)
			require.NoError(t, c.Seek(TopicPartition{Topic: ce.Topic, Partition: ce.Partition}, ce.Next))
			continue
		}
		require.NoError(t, err)
		for _, r := range recs {
			got[r.Partition]++
		}
	}
	require.Len(t, reported, 1)
	require.Equal(t, CorruptError{Topic: "t", Partition: 1, Offset: 0, Next: 10, Err: reported[0].Err}, *reported[0])
	require.Equal(t, 90, got[1], "partition 1 is read past its damage")
	require.Greater(t, got[0], 100, "partition 0 was not held up")
}

// TestReaderStopsAtItsEndInsideDamage: damage reaching past a bounded
// Reader's end leaves it at its end.
func TestReaderStopsAtItsEndInsideDamage(t *testing.T) {
	dir, _ := damageFixture(t, 100)
	hit := storedBatches(t, dir, "t", 0)[3] // offsets 30..39
	data, err := os.ReadFile(hit.file)
	require.NoError(t, err)
	data[hit.end-3] ^= 0x40
	require.NoError(t, os.WriteFile(hit.file, data, 0o600))
	b := openBroker(t, dir, nil)
	r, err := b.NewReader("t", 0, AtOffset(30), &ReaderOptions{EndOffset: new(int64(33))})
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Next(t.Context())
	require.ErrorIs(t, err, ErrCorrupt)
	require.Equal(t, int64(33), r.Offset())
	_, err = r.Next(t.Context())
	require.ErrorIs(t, err, io.EOF)
}
