package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/segment"
)

// openFollower opens a follower of the log in cfg.Dir.
func openFollower(t *testing.T, cfg Config) *Log {
	t.Helper()
	cfg.Follow = true
	f, err := Open(cfg, false)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close(false) })
	return f
}

// refreshed refreshes f and checks it sees the owner's offsets.
func refreshed(t *testing.T, f, owner *Log) {
	t.Helper()
	_, err := f.Refresh()
	require.NoError(t, err)
	require.Equal(t, owner.HighWatermark(), f.HighWatermark(), "end")
	require.Equal(t, owner.StartOffset(), f.StartOffset(), "start")
	require.Equal(t, owner.SegmentCount(), f.SegmentCount(), "segments")
}

// values returns the records' values.
func values(recs []batch.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// TestFollowAppendsAndRolls: a follower sees the owner's appends and rolls
// at each Refresh, and a reader waiting at its end wakes when a refresh
// finds records.
func TestFollowAppendsAndRolls(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	owner := openTestLog(t, cfg, false)
	f := openFollower(t, cfg)
	refreshed(t, f, owner)
	require.Zero(t, f.HighWatermark())

	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			_, err := owner.Append(encode(i, 1+i%9, int64(1000+i)))
			require.NoError(t, err)
		}
	}
	appendN(0, 3)
	refreshed(t, f, owner)
	require.Equal(t, values(readAll(t, owner, 0)), values(readAll(t, f, 0)))

	appendN(3, 150) // many rolls between two refreshes
	refreshed(t, f, owner)
	require.Greater(t, f.SegmentCount(), 3)
	require.Equal(t, values(readAll(t, owner, 0)), values(readAll(t, f, 0)))
	from := f.HighWatermark() - 2
	ts, err := owner.OffsetForTime(1100)
	require.NoError(t, err)
	got, err := f.OffsetForTime(1100)
	require.NoError(t, err)
	require.Equal(t, ts, got)

	// A reader waiting at the end wakes when a refresh finds more.
	end := f.HighWatermark()
	woke := make(chan error, 1)
	go func() { woke <- f.WaitFor(t.Context(), end, nil) }()
	appendN(153, 1)
	select {
	case err := <-woke:
		t.Fatalf("woke before a refresh: %v", err)
	default:
	}
	_, err = f.Refresh()
	require.NoError(t, err)
	require.NoError(t, <-woke)
	require.Equal(t, values(readAll(t, owner, from)), values(readAll(t, f, from)))

	// Close ends waiters; Refresh after it is ErrClosed.
	go func() { woke <- f.WaitFor(context.Background(), f.HighWatermark(), nil) }()
	require.NoError(t, f.Close(false))
	require.ErrorIs(t, <-woke, errs.ErrClosed)
	_, err = f.Refresh()
	require.ErrorIs(t, err, errs.ErrClosed)
}

// TestFollowRetentionAndDeleteRecords: segments the owner deletes leave
// the follower's view, and the start moves with retention and with the
// log-start file of DeleteRecords.
func TestFollowRetentionAndDeleteRecords(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	cfg.RetentionBytes = 8 << 10
	owner := openTestLog(t, cfg, false)
	for i := range 100 {
		_, err := owner.Append(encode(i, 3, int64(1000+i)))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	refreshed(t, f, owner)
	require.Positive(t, f.StartOffset())

	for i := range 100 {
		_, err := owner.Append(encode(100+i, 3, int64(2000+i)))
		require.NoError(t, err)
	}
	refreshed(t, f, owner)
	_, err := f.Read(0, 1<<10)
	require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)

	before := owner.HighWatermark() - 5
	_, err = owner.DeleteRecords(before)
	require.NoError(t, err)
	refreshed(t, f, owner)
	require.Equal(t, before, f.StartOffset())
	require.Equal(t, values(readAll(t, owner, before)), values(readAll(t, f, before)))

	// Everything deleted: the owner rolls so the active segment can go.
	_, err = owner.DeleteRecords(owner.HighWatermark())
	require.NoError(t, err)
	refreshed(t, f, owner)
	require.Equal(t, f.HighWatermark(), f.StartOffset())
	_, err = owner.Append(encode(300, 2, 3000))
	require.NoError(t, err)
	refreshed(t, f, owner)
	require.Equal(t, values(readAll(t, owner, owner.StartOffset())), values(readAll(t, f, f.StartOffset())))
}

// TestFollowReadsDeletedSegment: a read of a segment retention deleted
// since the follower's last refresh is out of range, not an error about a
// missing file.
func TestFollowReadsDeletedSegment(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	owner := openTestLog(t, cfg, false)
	for i := range 60 {
		_, err := owner.Append(encode(i, 8, int64(1000+i)))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	refreshed(t, f, owner)
	_, err := owner.DeleteRecords(owner.HighWatermark() - 1)
	require.NoError(t, err)
	// No refresh: the follower still lists the deleted segments, whose
	// mappings outlive their files, or finds them gone and refreshes.
	v, err := f.Read(0, 1<<10)
	if err == nil {
		v.Release()
	} else {
		require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)
	}
	_, err = f.Refresh()
	require.NoError(t, err)
	_, err = f.Read(0, 1<<10)
	require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)
	require.Equal(t, owner.StartOffset(), f.StartOffset())
}

// activeFile is the path of the log's last segment file.
func activeFile(l *Log) string {
	segs := l.segments()
	return filepath.Join(l.Dir(), segment.FileName(segs[len(segs)-1].Base(), segment.LogSuffix))
}

// writeAt writes b at pos of the file at path.
func writeAt(t *testing.T, path string, b []byte, pos int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = fh.WriteAt(b, pos)
	require.NoError(t, err)
	require.NoError(t, fh.Close())
}

// TestFollowTornTailIgnoredUntilComplete: zeros and a half-written batch
// past the end are "not written yet"; once the batch is whole it is read.
func TestFollowTornTailIgnoredUntilComplete(t *testing.T) {
	cfg := testLog(t)
	owner := openTestLog(t, cfg, false)
	_, err := owner.Append(encode(0, 2, 1000))
	require.NoError(t, err)
	require.NoError(t, owner.Close(true)) // trimmed: the file ends at the batch
	f := openFollower(t, cfg)
	require.EqualValues(t, 2, f.HighWatermark())
	path, size := activeFile(f), f.Info().Bytes

	require.NoError(t, os.Truncate(path, size+64<<10)) // a preallocated tail
	moved, err := f.Refresh()
	require.NoError(t, err)
	require.False(t, moved)

	b := encode(1, 3, 1001)
	b.SetBaseOffset(2)
	writeAt(t, path, b[:len(b)/2], size)
	moved, err = f.Refresh()
	require.NoError(t, err)
	require.False(t, moved, "half a batch is not written yet")
	require.EqualValues(t, 2, f.HighWatermark())

	writeAt(t, path, b[len(b)/2:], size+int64(len(b)/2))
	moved, err = f.Refresh()
	require.NoError(t, err)
	require.True(t, moved)
	require.EqualValues(t, 5, f.HighWatermark())
	require.Equal(t, []string{"batch 0 record 0", "batch 0 record 1", "batch 1 record 0", "batch 1 record 1", "batch 1 record 2"},
		values(readAll(t, f, 0)))

	// A damaged batch that a valid one follows directly is damage: passed
	// over, and reported by reads.
	pos := size + int64(len(b))
	bad := encode(2, 1, 1002)
	bad.SetBaseOffset(5)
	bad[len(bad)-1] ^= 0xff
	good := encode(3, 1, 1003)
	good.SetBaseOffset(6)
	writeAt(t, path, append(append([]byte(nil), bad...), good...), pos)
	_, err = f.Refresh()
	require.NoError(t, err)
	require.EqualValues(t, 7, f.HighWatermark())
	_, err = f.Read(5, 1<<10)
	var de *segment.DamageError
	require.ErrorAs(t, err, &de)
	require.EqualValues(t, 6, de.Next)
	require.Equal(t, []string{"batch 3 record 0"}, values(readAll(t, f, 6)))
}

// TestFollowTrimmedAndTruncatedTail: the owner's clean close trims the
// preallocated tail under a follower, which goes on; a file cut below what
// the follower read (by something else) makes reads fail or find the
// records gone, never fault the process, and the next refresh reopens the
// log at what is left.
func TestFollowTrimmedAndTruncatedTail(t *testing.T) {
	cfg := testLog(t)
	owner, err := Open(cfg, false)
	require.NoError(t, err)
	for i := range 80 { // past the first 64 KiB, which are not preallocated
		_, err := owner.Append(encode(i, 30, int64(1000+i)))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	refreshed(t, f, owner)
	path := activeFile(f)
	require.Greater(t, fileSize(t, path), f.Info().Bytes, "preallocated")
	v, err := f.Read(0, 1<<20)
	require.NoError(t, err)

	require.NoError(t, owner.Close(true))
	require.Equal(t, f.Info().Bytes, fileSize(t, path), "trimmed")
	refreshed(t, f, owner)
	require.Len(t, readAll(t, f, 0), 2400)

	// Reopened and appended to: the follower goes on.
	owner = openTestLog(t, cfg, true)
	_, err = owner.Append(encode(80, 2, 1080))
	require.NoError(t, err)
	refreshed(t, f, owner)
	want := values(readAll(t, f, 0))
	require.Len(t, want, 2402)
	require.NoError(t, owner.Close(true))

	// Cut to a page: the held view's later pages and reads past the cut
	// fault inside the guard.
	page := int64(os.Getpagesize())
	require.Greater(t, f.Info().Bytes, 2*page)
	require.NoError(t, os.Truncate(path, page))
	_, err = batch.Parse(v.Data) // the first batch lies in the first page
	require.NoError(t, err)
	v.Release()
	last := f.HighWatermark() - 1
	_, err = f.Read(last, 1<<10)
	require.ErrorIs(t, err, errs.ErrOffsetOutOfRange, "the read refreshed: the records are gone")
	require.Less(t, f.HighWatermark(), int64(len(want)))
	recs := readAll(t, f, 0)
	require.NotEmpty(t, recs)
	require.Equal(t, want[:len(recs)], values(recs))
}

// TestFollowOwnerCrashAndRecovery: a torn batch the owner's crash left is
// ignored by the follower; the owner's recovery cuts it and appends in its
// place, and the follower reads on.
func TestFollowOwnerCrashAndRecovery(t *testing.T) {
	cfg := testLog(t)
	owner, err := Open(cfg, false)
	require.NoError(t, err)
	for i := range 5 {
		_, err := owner.Append(encode(i, 2, int64(1000+i)))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	path, size := activeFile(f), f.Info().Bytes
	owner.Abandon()
	torn := encode(5, 4, 1005)
	torn.SetBaseOffset(10)
	writeAt(t, path, torn[:len(torn)-7], size)
	refreshed(t, f, owner)

	owner = openTestLog(t, cfg, false) // recovery cuts the torn batch
	require.EqualValues(t, 10, owner.HighWatermark())
	for i := 6; i < 9; i++ {
		_, err := owner.Append(encode(i, 3, int64(1000+i)))
		require.NoError(t, err)
	}
	refreshed(t, f, owner)
	require.Equal(t, values(readAll(t, owner, 0)), values(readAll(t, f, 0)))
}

// TestFollowReplacedLog: a log whose files are replaced (its topic deleted
// and created again) is reopened by the follower from the new files.
func TestFollowReplacedLog(t *testing.T) {
	cfg := testLog(t)
	owner, err := Open(cfg, false)
	require.NoError(t, err)
	for i := range 5 {
		_, err := owner.Append(encode(i, 2, int64(1000+i)))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	require.NoError(t, owner.Close(false))
	require.NoError(t, os.RemoveAll(cfg.Dir))
	owner = openTestLog(t, cfg, false)
	_, err = owner.Append(encode(9, 1, 1009))
	require.NoError(t, err)
	refreshed(t, f, owner)
	require.Equal(t, []string{"batch 9 record 0"}, values(readAll(t, f, 0)))
}

// TestFollowChangesNothing: a follower writes nothing, and its writes fail
// with ErrReadOnly.
func TestFollowChangesNothing(t *testing.T) {
	cfg := testLog(t)
	owner := openTestLog(t, cfg, false)
	_, err := owner.Append(encode(0, 2, 1000))
	require.NoError(t, err)
	owner.Abandon() // preallocated, unclean: a follower recovers in memory
	before := snapshotDir(t, cfg.Dir)
	f := openFollower(t, cfg)
	_, err = f.Append(encode(1, 1, 1001))
	require.ErrorIs(t, err, errs.ErrReadOnly)
	_, err = f.DeleteRecords(1)
	require.ErrorIs(t, err, errs.ErrReadOnly)
	_, err = f.Refresh()
	require.NoError(t, err)
	require.NoError(t, f.Close(true))
	require.Equal(t, before, snapshotDir(t, cfg.Dir))
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// TestFollowConcurrent: a reader tails a follower that refreshes on its
// own goroutine while the owner appends, rolls and deletes by retention;
// the reader sees every record still kept, in order.
func TestFollowConcurrent(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	cfg.RetentionBytes = 64 << 10
	owner := openTestLog(t, cfg, false)
	f := openFollower(t, cfg)
	const batches = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range batches {
			_, err := owner.Append(encode(i, 1+i%4, int64(1000+i)))
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	stop := make(chan struct{})
	refresher := make(chan struct{})
	go func() {
		defer close(refresher)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.Refresh(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-refresher }()
	var end int64
	for i := range batches {
		end += int64(1 + i%4)
	}
	next := int64(0)
	for next < end {
		require.NoError(t, f.WaitFor(t.Context(), next, nil))
		v, err := f.Read(next, 4<<10)
		if errors.Is(err, errs.ErrOffsetOutOfRange) {
			next = f.StartOffset() // retention passed the reader
			continue
		}
		require.NoError(t, err)
		for data := v.Data; len(data) > 0; {
			b, err := batch.Parse(data)
			require.NoError(t, err)
			require.LessOrEqual(t, b.BaseOffset(), next)
			next = b.LastOffset() + 1
			data = data[len(b):]
		}
		v.Release()
	}
	<-done
}

// TestFollowSealedSegmentCut: a sealed segment cut under a follower (by
// something other than the owner) makes a read reopen the log: the lost
// offsets read as damage, the rest as before.
func TestFollowSealedSegmentCut(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	owner := openTestLog(t, cfg, false)
	for i := range 40 {
		_, err := owner.Append(encode(i, 10, int64(1000+i)))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	refreshed(t, f, owner)
	want := values(readAll(t, f, 0))
	segs := f.Segments()
	require.Greater(t, len(segs), 2)
	first := filepath.Join(f.Dir(), segment.FileName(segs[0].Base, segment.LogSuffix))
	require.NoError(t, os.Truncate(first, 0))

	_, err := f.Read(0, 1<<10)
	var de *segment.DamageError
	require.ErrorAs(t, err, &de, "reopened: the cut segment's offsets are damaged")
	require.Equal(t, segs[0].Next, de.Next)
	require.Equal(t, want[segs[0].Next:], values(readAll(t, f, segs[0].Next)))
}

// TestFollowCleanedSegments: the owner's cleaner swaps cleaned segments in
// under the old files' names (a full segment is a group of its own); the
// follower's next refresh drops its mappings of the old files (else it
// would read superseded records forever, and hold the deleted files' space)
// and reads what the owner reads.
func TestFollowCleanedSegments(t *testing.T) {
	cfg := compactLog(t)
	owner := openTestLog(t, cfg, false)
	now := time.Now()
	for i := range 600 {
		_, err := owner.Append(keyed(now.UnixMilli(), kv{key: fmt.Sprintf("k%d", i%7), value: fmt.Sprintf("v%d", i)}))
		require.NoError(t, err)
	}
	f := openFollower(t, cfg)
	require.Len(t, readAll(t, f, 0), 600)
	before := owner.Segments()

	res, err := owner.Clean(t.Context(), now, NewKeyMap(1<<20), true)
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	after := owner.Segments()
	require.Equal(t, before[0].Base, after[0].Base)
	require.Equal(t, before[1].Base, after[1].Base, "full segments were cleaned one by one, under their names")
	refreshed(t, f, owner)
	require.Equal(t, after, f.Segments())
	want, wantOffs, wantAll := latest(t, owner)
	got, gotOffs, gotAll := latest(t, f)
	require.Equal(t, want, got)
	require.Equal(t, wantOffs, gotOffs)
	require.Equal(t, wantAll, gotAll)
	require.Less(t, len(gotAll), 100)
}
