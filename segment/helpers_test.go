package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs"
)

// testRecord is the model of one record: what was written, to compare with
// what is read back.
type testRecord struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// testBatch is an encoded batch (a private copy) with the records it holds.
type testBatch struct {
	Data    Batch
	Records []testRecord
}

func (b testBatch) base() int64 { return b.Data.BaseOffset() }
func (b testBatch) next() int64 { return b.Data.LastOffset() + 1 }

// encode builds one batch at base from recs (whose Offset fields are set).
func encode(t testing.TB, base int64, recs []testRecord) testBatch {
	t.Helper()
	var bld Builder
	bld.Reset(0)
	for i := range recs {
		recs[i].Offset = base + int64(i)
		bld.Add(recs[i].Timestamp, recs[i].Key, recs[i].Value, recs[i].Headers)
	}
	b := bld.Finish()
	b.SetBaseOffset(base)
	return testBatch{Data: append(Batch(nil), b...), Records: recs}
}

// randomRecords makes n records with values of about valueSize bytes and
// timestamps that mostly grow but jitter back and forth.
func randomRecords(rng *rand.Rand, n, valueSize int, ts *int64) []testRecord {
	recs := make([]testRecord, n)
	for i := range recs {
		*ts += int64(rng.IntN(20))
		r := testRecord{Timestamp: *ts - int64(rng.IntN(50))}
		switch rng.IntN(8) {
		case 0: // null key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(1000))
		}
		switch rng.IntN(10) {
		case 0: // null value: a tombstone
		case 1:
			r.Value = []byte{}
		default:
			r.Value = make([]byte, 1+rng.IntN(max(2*valueSize, 1)))
			for j := range r.Value {
				r.Value[j] = byte(rng.Uint32())
			}
		}
		if rng.IntN(3) == 0 {
			r.Headers = []Header{{Key: "h", Value: []byte("v")}, {Key: "h", Value: nil}}
		}
		recs[i] = r
	}
	return recs
}

// randomBatches makes count batches starting at base with 1..maxRecords
// records each.
func randomBatches(t testing.TB, rng *rand.Rand, base int64, count, maxRecords, valueSize int) []testBatch {
	t.Helper()
	ts := int64(1_700_000_000_000)
	out := make([]testBatch, 0, count)
	for range count {
		b := encode(t, base, randomRecords(rng, 1+rng.IntN(maxRecords), valueSize, &ts))
		out = append(out, b)
		base = b.next()
	}
	return out
}

// appendAll appends batches to s, checking each lands at the expected position.
func appendAll(t testing.TB, s *Segment, batches []testBatch) {
	t.Helper()
	for _, b := range batches {
		pos, err := s.Append(b.Data)
		require.NoError(t, err)
		require.Equal(t, s.Size()-int64(len(b.Data)), pos)
		require.Equal(t, b.next(), s.Next())
	}
}

// concat is the bytes of a log holding batches.
func concat(batches []testBatch) []byte {
	var buf []byte
	for _, b := range batches {
		buf = append(buf, b.Data...)
	}
	return buf
}

// positions returns each batch's start in the log, plus the log's end.
func positions(batches []testBatch) []int64 {
	pos := make([]int64, 0, len(batches)+1)
	var p int64
	for _, b := range batches {
		pos = append(pos, p)
		p += int64(len(b.Data))
	}
	return append(pos, p)
}

// readBatches reads every batch of s from offset from, copying them, and
// checks each passes Parse and that they are contiguous.
func readBatches(t testing.TB, s *Segment, from int64) []Batch {
	t.Helper()
	var out []Batch
	for {
		v, err := s.Read(from, math.MaxInt64, 64<<10)
		require.NoError(t, err)
		if len(v.Data) == 0 {
			v.Release()
			return out
		}
		for data := v.Data; len(data) > 0; {
			b, err := Parse(data)
			require.NoError(t, err)
			require.Equal(t, from, b.BaseOffset(), "batches must be contiguous")
			out = append(out, append(Batch(nil), b...))
			from = b.LastOffset() + 1
			data = data[len(b):]
		}
		v.Release()
	}
}

// decodeAll decodes every record of batches.
func decodeAll(t testing.TB, batches []Batch) []testRecord {
	t.Helper()
	var out []testRecord
	for _, b := range batches {
		it := b.Records()
		var r Record
		for it.Next(&r) {
			out = append(out, testRecord{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
		require.NoError(t, it.Err())
	}
	return out
}

func modelRecords(batches []testBatch) []testRecord {
	var out []testRecord
	for _, b := range batches {
		out = append(out, b.Records...)
	}
	return out
}

// requireRecords compares records field by field, telling a null from an
// empty key, value or header value.
func requireRecords(t testing.TB, want, got []testRecord) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.Offset, g.Offset, "record %d", i)
		require.Equal(t, w.Timestamp, g.Timestamp, "record %d", i)
		requireBytes(t, w.Key, g.Key, "key of record %d", i)
		requireBytes(t, w.Value, g.Value, "value of record %d", i)
		require.Len(t, g.Headers, len(w.Headers), "headers of record %d", i)
		for j := range w.Headers {
			require.Equal(t, w.Headers[j].Key, g.Headers[j].Key)
			requireBytes(t, w.Headers[j].Value, g.Headers[j].Value, "header %d of record %d", j, i)
		}
	}
}

// requireBytes compares byte slices, nil (Kafka's null) being distinct from empty.
func requireBytes(t testing.TB, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want == nil, got == nil, msgAndArgs...)
	require.True(t, bytes.Equal(want, got), msgAndArgs...)
}

// fixCRC recomputes a batch's checksum after a test edited it.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], Batch(b).ComputeCRC())
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
