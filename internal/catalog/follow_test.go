package catalog

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFollowReadsCopies: a follower's store reads a file another store has
// open and writes, never blocking it: the writer opens, commits, closes
// and reopens while the follower is open, and the follower reads each
// change after a refresh.
func TestFollowReadsCopies(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	f, clean := Follow(path, time.Hour)
	defer f.Close(false)
	require.False(t, clean)
	got, err := f.Topics()
	require.NoError(t, err, "a missing file reads as empty")
	require.Empty(t, got)

	w, _ := open(t, path, false) // not blocked by the follower
	tp := TopicPartition{Topic: "orders", Partition: 1}
	require.NoError(t, w.PutTopic("orders", Topic{Config: TopicConfig{Partitions: 2}, Partitions: 2}))
	require.NoError(t, w.CommitOffsets("billing", map[TopicPartition]int64{tp: 7}, time.UnixMilli(5)))
	off, err := f.Committed("billing", nil)
	require.NoError(t, err)
	require.Empty(t, off, "an hour's interval: the old copy still serves")

	v := f.Version()
	require.NoError(t, f.Refresh())
	require.Greater(t, f.Version(), v)
	off, err = f.Committed("billing", nil)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{tp: 7}, off)
	topics, err := f.Topics()
	require.NoError(t, err)
	require.Equal(t, 2, topics["orders"].Partitions)
	groups, err := f.Groups()
	require.NoError(t, err)
	require.Equal(t, []string{"billing"}, groups)

	v = f.Version()
	require.NoError(t, f.Refresh())
	require.Equal(t, v, f.Version(), "unchanged: no new copy")

	require.NoError(t, w.Close(true))
	w, _ = open(t, path, false)
	require.NoError(t, w.CommitOffsets("billing", map[TopicPartition]int64{tp: 9}, time.UnixMilli(6)))
	require.NoError(t, f.Refresh())
	off, err = f.Committed("billing", []TopicPartition{tp})
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{tp: 9}, off)
	require.NoError(t, w.Close(true))

	// A follower opened on a cleanly closed store sees the flag.
	g, clean := Follow(path, time.Hour)
	require.True(t, clean)
	require.NoError(t, g.Close(false))
}

// TestFollowUnderCommits: copies taken while the owner commits every
// millisecond are never torn: every read succeeds and sees offsets that
// only grow. Check, which copies the same way, never finds the file
// damaged.
func TestFollowUnderCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w, _ := open(t, path, false)
	defer w.Close(true)
	tp := TopicPartition{Topic: "orders"}
	require.NoError(t, w.CommitOffsets("g", map[TopicPartition]int64{tp: 0}, time.Now()))
	f, _ := Follow(path, 0)
	defer f.Close(false)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		// Many groups make transactions of several pages.
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			offs := map[TopicPartition]int64{tp: i}
			for p := range int32(50) {
				offs[TopicPartition{Topic: "other", Partition: p}] = i
			}
			if err := w.CommitOffsets("g", offs, time.Now()); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond) // an owner's pace, not a wait

		}
	})
	last := int64(-1)
	for range 200 {
		off, err := f.Committed("g", []TopicPartition{tp})
		require.NoError(t, err)
		require.GreaterOrEqual(t, off[tp], last)
		last = off[tp]
	}
	for range 20 {
		_, err := Check(path)
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
	require.Positive(t, last)
}

// TestFollowDamagedFile: a file no copy of which passes the checks reads
// as ErrUnavailable, and reads again once repaired.
func TestFollowDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	require.NoError(t, os.WriteFile(path, []byte("not a bbolt file, not at all, no"), 0o600))
	f, _ := Follow(path, time.Hour)
	defer f.Close(false)
	_, err := f.Topics()
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, f.Refresh(), ErrUnavailable)

	require.NoError(t, os.Remove(path))
	w, _ := open(t, path, false)
	require.NoError(t, w.Close(true))
	require.NoError(t, f.Refresh())
	_, err = f.Topics()
	require.NoError(t, err)

	require.NoError(t, f.Close(false))
	_, err = f.Topics()
	require.Error(t, err, "closed")
}

// TestCopyWithCommitsDuring: a copy during which one transaction commits
// is consistent, at the transaction before it; one during which two
// commit (the second may reuse pages the copy's meta page reaches) is
// refused, and the follower copies again.
func TestCopyWithCommitsDuring(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w, _ := open(t, path, false)
	defer w.Close(true)
	tp := TopicPartition{Topic: "orders"}
	// Past metaRegion, so that the hook runs.
	big := map[TopicPartition]int64{}
	for p := range int32(5000) {
		big[TopicPartition{Topic: "big", Partition: p}] = 1
	}
	require.NoError(t, w.CommitOffsets("big", big, time.Now()))
	require.NoError(t, w.CommitOffsets("g", map[TopicPartition]int64{tp: 1}, time.Now()))
	// Each commit rewrites every leaf of group "big": the one after next
	// may reuse the pages of the one before.
	commits := func(n int) func() {
		return func() {
			for range n {
				v := big[TopicPartition{Topic: "big"}] + 1
				for k := range big {
					big[k] = v
				}
				require.NoError(t, w.CommitOffsets("big", big, time.Now()))
			}
		}
	}
	defer func() { copyHook = nil }()

	copyHook = commits(1)
	before := big[TopicPartition{Topic: "big"}]
	data, _, moved, err := copyFile(path)
	require.NoError(t, err)
	require.True(t, moved)
	c, _, err := openBytes(data)
	require.NoError(t, err)
	off, err := c.Committed("big", nil)
	require.NoError(t, err)
	require.Len(t, off, len(big))
	for _, v := range off {
		require.Equal(t, before, v, "the copy is the transaction before")
	}
	require.NoError(t, c.Close(false))

	copyHook = commits(2)
	_, _, _, err = copyFile(path)
	require.ErrorContains(t, err, "transactions committed")

	// The follower tries again, and the next copy is quiet.
	hook := commits(2)
	copyHook = func() { copyHook = nil; hook() }
	f, _ := Follow(path, time.Hour)
	defer f.Close(false)
	off, err = f.Committed("big", nil)
	require.NoError(t, err)
	require.Len(t, off, len(big))
	for k, v := range off {
		require.Equal(t, big[k], v, "the copy after the commits")
	}
	require.EqualValues(t, 6, big[TopicPartition{Topic: "big"}])
}
