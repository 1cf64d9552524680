package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/catalog"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// metaDamageDir builds a directory with a topic of 300 records in several
// segments and a non-default retention, an empty topic, and a group's
// committed offset, closed cleanly.
func metaDamageDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 8 << 10, Retention: time.Hour}))
	require.NoError(t, b.CreateTopic("quiet", TopicConfig{Partitions: 2}))
	for i := range 300 {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte(fmt.Sprint(i))}))
	}
	require.NoError(t, b.SetCommittedOffsets("g", map[TopicPartition]int64{{Topic: "t", Partition: 0}: 100}))
	require.NoError(t, b.Close())
	return dir
}

// rootPage returns the page number of a bbolt file's root bucket, read
// from the newer of its meta pages (bbolt's layout: a 16-byte page header,
// then magic, version, page size and flags, 4 bytes each, the root's page
// number at byte 16 of the meta, and its transaction id at byte 48).
func rootPage(t *testing.T, path string, page int64) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var root, txid uint64
	for i := range int64(2) {
		meta := data[i*page+16:]
		if id := binary.NativeEndian.Uint64(meta[48:]); id >= txid {
			root, txid = binary.NativeEndian.Uint64(meta[16:]), id
		}
	}
	require.Greater(t, root, uint64(1))
	return int64(root)
}

func TestDamagedMetaIsSetAsideAndRebuilt(t *testing.T) {
	page := int64(os.Getpagesize())
	overwrite := func(t *testing.T, path string, from, to int64) {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		to = min(to, int64(len(data)))
		rng := rand.New(rand.NewPCG(1, uint64(from)))
		for i := from; i < to; i++ {
			data[i] = byte(rng.Uint32())
		}
		require.NoError(t, os.WriteFile(path, data, 0o600))
	}
	damages := map[string]func(t *testing.T, path string){
		"zero-length":         func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 0)) },
		"cut to 4 KiB":        func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 4<<10)) },
		"cut after its metas": func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 3*page)) },
		"garbage":             func(t *testing.T, path string) { overwrite(t, path, 0, 1<<40) },
		"meta pages garbled":  func(t *testing.T, path string) { overwrite(t, path, 0, 2*page) },
		"data pages garbled":  func(t *testing.T, path string) { overwrite(t, path, 2*page, 8*page) },
		"root page garbled": func(t *testing.T, path string) {
			root := rootPage(t, path, page)
			overwrite(t, path, root*page+16, root*page+page) // its header stays: only its elements are garbage
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := metaDamageDir(t)
			metaPath := filepath.Join(dir, catalog.File)
			damage(t, metaPath)
			damaged, err := os.ReadFile(metaPath)
			require.NoError(t, err)

			// Read-only: the topics are served, and not a byte changes.
			before := snapshotTree(t, dir)
			ro, err := Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err)
			require.Equal(t, []string{"quiet", "t"}, ro.Topics())
			require.Len(t, values(t, ro, "t", 0), 300)
			committed, err := ro.CommittedOffsets("g")
			require.NoError(t, err)
			require.Empty(t, committed)
			require.Equal(t, int64(1), ro.Stats().MetaRebuilds)
			require.NoError(t, ro.Close())
			require.Equal(t, before, snapshotTree(t, dir), "a read-only open changes no byte")

			// Read-write: the file is set aside and the catalog rebuilt.
			var logs syncBuffer
			b, err := Open(dir, &Options{Sync: SyncNever, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			require.NoError(t, err)
			require.Equal(t, []string{"quiet", "t"}, b.Topics())
			got := values(t, b, "t", 0)
			require.Len(t, got, 300)
			require.Equal(t, "299", got[299])
			info, err := b.DescribeTopic("quiet")
			require.NoError(t, err)
			require.Len(t, info.Partitions, 2)
			info, err = b.DescribeTopic("t")
			require.NoError(t, err)
			require.Zero(t, info.Config.Retention, "a lost config goes back to the default")
			require.ErrorIs(t, b.CreateTopic("t", TopicConfig{}), ErrTopicExists)
			committed, err = b.CommittedOffsets("g")
			require.NoError(t, err)
			require.Empty(t, committed, "committed offsets are what a damaged meta.db costs")
			require.Equal(t, int64(1), b.Stats().MetaRebuilds)
			r := &Record{Topic: "t", Value: []byte("after")}
			require.NoError(t, b.Publish(t.Context(), r))
			require.Equal(t, int64(300), r.Offset)

			kept, err := filepath.Glob(metaPath + ".damaged-*")
			require.NoError(t, err)
			require.Len(t, kept, 1)
			keptBytes, err := os.ReadFile(kept[0])
			require.NoError(t, err)
			require.Equal(t, damaged, keptBytes, "the damaged file is kept as it was")
			require.Contains(t, logs.String(), "level=ERROR")
			require.Contains(t, logs.String(), filepath.Base(kept[0]))
			require.NoError(t, b.Close())

			// The rebuilt catalog is a normal one from now on.
			b = openBroker(t, dir, nil)
			require.Equal(t, []string{"quiet", "t"}, b.Topics())
			require.Len(t, values(t, b, "t", 0), 301)
			require.Zero(t, b.Stats().MetaRebuilds)
			again, err := filepath.Glob(metaPath + ".damaged-*")
			require.NoError(t, err)
			require.Equal(t, kept, again)
		})
	}
}

func TestTopicDirectoryWithoutMetadata(t *testing.T) {
	dir := t.TempDir()
	metaPath := filepath.Join(dir, catalog.File)
	b, err := Open(dir, &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	older, err := os.ReadFile(metaPath)
	require.NoError(t, err)

	b, err = Open(dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("kept", TopicConfig{Partitions: 2, Retention: time.Hour}))
	require.NoError(t, b.CreateTopic("empty", TopicConfig{}))
	for i := range 10 {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "kept", Partition: 1, Value: []byte(fmt.Sprint(i))}))
	}
	require.NoError(t, b.Close())
	// A catalog older than the data: "kept" holds records it does not list;
	// "empty" is what an interrupted CreateTopic leaves, directories without
	// records.
	require.NoError(t, os.WriteFile(metaPath, older, 0o600))

	before := snapshotTree(t, dir)
	ro, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, ro.Topics())
	require.Len(t, values(t, ro, "kept", 1), 10)
	require.NoError(t, ro.Close())
	require.Equal(t, before, snapshotTree(t, dir), "a read-only open changes no byte")

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"kept"}, b.Topics(), "a directory with records is adopted, one without is not")
	require.Zero(t, b.Stats().MetaRebuilds, "the catalog is sound")
	info, err := b.DescribeTopic("kept")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)
	require.Zero(t, info.Config.Retention)
	require.Len(t, values(t, b, "kept", 1), 10)
	require.ErrorIs(t, b.CreateTopic("kept", TopicConfig{}), ErrTopicExists)
	require.NoError(t, b.CreateTopic("empty", TopicConfig{}), "an interrupted create's directory is reused")
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"empty", "kept"}, b.Topics(), "the adopted topic is in the catalog now")
}

// TestInterruptedDeleteTopicIsFinished: a topic directory that DeleteTopic
// dropped from the catalog but could not remove is removed by the next
// Open, not adopted, and CreateTopic of the name may replace it.
func TestInterruptedDeleteTopicIsFinished(t *testing.T) {
	for _, reopen := range []bool{true, false} {
		dir := t.TempDir()
		b := openBroker(t, dir, nil)
		require.NoError(t, b.CreateTopic("gone", TopicConfig{}))
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "gone", Value: []byte("x")}))
		require.NoError(t, b.Close())
		saved := filepath.Join(t.TempDir(), "gone")
		require.NoError(t, os.CopyFS(saved, os.DirFS(filepath.Join(dir, topicsDir, "gone"))))
		b = openBroker(t, dir, nil)
		require.NoError(t, b.DeleteTopic("gone"))
		// As if DeleteTopic had stopped after its catalog transaction.
		require.NoError(t, os.CopyFS(filepath.Join(dir, topicsDir, "gone"), os.DirFS(saved)))
		if reopen {
			require.NoError(t, b.Close())
			before := snapshotTree(t, dir)
			ro, err := Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err)
			require.Empty(t, ro.Topics())
			require.NoError(t, ro.Close())
			require.Equal(t, before, snapshotTree(t, dir), "a read-only open changes no byte")
			b = openBroker(t, dir, nil)
			require.Empty(t, b.Topics(), "a deleted topic stays deleted")
			_, err = os.Stat(filepath.Join(dir, topicsDir, "gone"))
			require.ErrorIs(t, err, os.ErrNotExist)
		}
		require.NoError(t, b.CreateTopic("gone", TopicConfig{}))
		r := &Record{Topic: "gone", Value: []byte("again")}
		require.NoError(t, b.Publish(t.Context(), r))
		require.Zero(t, r.Offset, "a re-created topic starts at offset 0")
		require.NoError(t, b.Close())
	}
}

func TestCreateTopicNeverReusesADirectoryWithRecords(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	require.NoError(t, b.CreateTopic("src", TopicConfig{}))
	for i := range 5 {
		require.NoError(t, b.Publish(t.Context(), &Record{Topic: "src", Value: []byte(fmt.Sprint(i))}))
	}
	require.NoError(t, b.Close())
	// A directory with records appears behind the open broker's back.
	b = openBroker(t, dir, nil)
	require.NoError(t, os.CopyFS(filepath.Join(dir, topicsDir, "dst"), os.DirFS(filepath.Join(dir, topicsDir, "src"))))
	before := snapshotTree(t, filepath.Join(dir, topicsDir, "dst"))
	require.ErrorIs(t, b.CreateTopic("dst", TopicConfig{}), ErrTopicExists)
	require.Equal(t, before, snapshotTree(t, filepath.Join(dir, topicsDir, "dst")), "its records are left alone")
	require.NoError(t, b.Close())

	b = openBroker(t, dir, nil)
	require.Equal(t, []string{"dst", "src"}, b.Topics())
	require.Len(t, values(t, b, "dst", 0), 5)
}

// TestMetaLockedElsewhereIsNotDamage: a meta.db that another process (a
// bbolt tool, say) holds open is refused, not set aside.
func TestMetaLockedElsewhereIsNotDamage(t *testing.T) {
	dir := metaDamageDir(t)
	f, err := os.Open(filepath.Join(dir, catalog.File))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	before := snapshotTree(t, dir)
	_, err = Open(dir, &Options{Sync: SyncNever})
	require.Error(t, err)
	require.NotErrorIs(t, err, catalog.ErrDamaged)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	require.Equal(t, before, snapshotTree(t, dir), "nothing set aside")
	b := openBroker(t, dir, nil)
	require.Zero(t, b.Stats().MetaRebuilds)
	committed, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Len(t, committed, 1)
}
