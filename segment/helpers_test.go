package segment

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
	"github.com/embedstream/stream/internal/vfs"
)

// appendAll appends batches to s, checking each lands at the expected position.
func appendAll(t testing.TB, s *Segment, batches []batchtest.Batch) {
	t.Helper()
	for _, b := range batches {
		pos, err := s.Append(b.Data)
		require.NoError(t, err)
		require.Equal(t, s.Size()-int64(len(b.Data)), pos)
		require.Equal(t, b.Next(), s.Next())
	}
}

// readBatches reads every batch of s from offset from, copying them, and
// checks each passes Parse and that they are contiguous.
func readBatches(t testing.TB, s *Segment, from int64) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for {
		v, err := s.Read(from, math.MaxInt64, 64<<10)
		if de := (*DamageError)(nil); errors.As(err, &de) {
			require.ErrorIs(t, err, batch.ErrCorrupt)
			require.Equal(t, from, de.Offset)
			require.Greater(t, de.Next, from, "reading goes on past damage")
			from = de.Next
			continue
		}
		require.NoError(t, err)
		if len(v.Data) == 0 {
			v.Release()
			return out
		}
		for data := v.Data; len(data) > 0; {
			b, err := batch.Parse(data)
			require.NoError(t, err)
			require.LessOrEqual(t, from, b.BaseOffset(), "offsets must increase")
			out = append(out, append(batch.Batch(nil), b...))
			from = b.LastOffset() + 1
			data = data[len(b):]
		}
		v.Release()
	}
}

// noSyncFS is the OS file system with fsync turned into a no-op, for tests
// that reopen segments thousands of times and do not test durability.
type noSyncFS struct{ vfs.FS }

type noSyncFile struct{ vfs.File }

func (fs noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }
func (noSyncFile) Sync() error        { return nil }

// scratchDir is a temporary directory for tests that reopen segments
// thousands of times without testing durability. It is on tmpfs where there
// is one: on ext4, recreating a file with O_TRUNC (as index rebuilds and
// these tests do) forces its old blocks to disk first, 100x slower.
func scratchDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "segment-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func fastConfig(maxBytes int64) *Config {
	return &Config{FS: noSyncFS{vfs.Default}, Perm: 0o600, MaxBytes: maxBytes}
}

func logPath(dir string, base int64) string { return filepath.Join(dir, FileName(base, LogSuffix)) }

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sampleRecords (the batch package's layout records) is a small batch's worth of records with every encoding
// corner: null, empty and set keys and values, and repeated header keys.
func sampleRecords() []batchtest.Record {
	return []batchtest.Record{
		{Timestamp: 1_700_000_000_000, Key: []byte("key-0"), Value: []byte("value-0"), Headers: []batch.Header{
			{Key: "h", Value: []byte("a")}, {Key: "h", Value: nil}, {Key: "", Value: []byte{}},
		}},
		{Timestamp: 1_699_999_999_000, Key: nil, Value: []byte("v1")},
		{Timestamp: 1_700_000_005_000, Key: []byte{}, Value: nil},
		{Timestamp: 1_700_000_000_001, Key: []byte("k3"), Value: []byte{}},
	}
}
