package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs"
)

const testPerm = 0o600

// offsetEntry and timeEntry are the models: plain slices scanned linearly.
type offsetEntry struct{ offset, pos int64 }
type timeEntry struct{ ts, offset int64 }

type offsetModel struct {
	base    int64
	entries []offsetEntry
}

func (m *offsetModel) lookup(offset int64) (int64, int64) {
	off, pos := m.base, int64(0)
	for _, e := range m.entries {
		if e.offset <= offset {
			off, pos = e.offset, e.pos
		}
	}
	return off, pos
}

func (m *offsetModel) truncateAfter(pos int64) {
	for i, e := range m.entries {
		if e.pos >= pos {
			m.entries = m.entries[:i]
			return
		}
	}
}

type timeModel struct {
	base    int64
	entries []timeEntry
}

func (m *timeModel) append(ts, offset int64) {
	if n := len(m.entries); n > 0 && (ts <= m.entries[n-1].ts || offset <= m.entries[n-1].offset) {
		return
	}
	m.entries = append(m.entries, timeEntry{ts, offset})
}

func (m *timeModel) lookup(ts int64) int64 {
	after := m.base - 1
	for _, e := range m.entries {
		if e.ts < ts {
			after = e.offset
		}
	}
	return after
}

func (m *timeModel) truncateAfter(offset int64) {
	for i, e := range m.entries {
		if e.offset >= offset {
			m.entries = m.entries[:i]
			return
		}
	}
}

func checkOffsets(t *testing.T, rng *rand.Rand, x *Offsets, m *offsetModel) {
	t.Helper()
	require.Equal(t, len(m.entries), x.Len())
	queries := []int64{m.base - 1, m.base, m.base + 1, math.MaxInt64, math.MinInt64, m.base + math.MaxUint32 + 5}
	for _, i := range sample(rng, len(m.entries)) {
		e := m.entries[i]
		queries = append(queries, e.offset-1, e.offset, e.offset+1)
	}
	for range 20 {
		queries = append(queries, m.base+rng.Int64N(1<<20))
	}
	for _, q := range queries {
		off, pos, err := x.Lookup(q)
		require.NoError(t, err)
		wantOff, wantPos := m.lookup(q)
		require.Equal(t, wantOff, off, "Lookup(%d) offset", q)
		require.Equal(t, wantPos, pos, "Lookup(%d) position", q)
	}
}

func checkTimes(t *testing.T, rng *rand.Rand, x *Times, m *timeModel) {
	t.Helper()
	require.Equal(t, len(m.entries), x.Len())
	ts, off, ok, err := x.Last()
	require.NoError(t, err)
	require.Equal(t, len(m.entries) > 0, ok)
	if ok {
		last := m.entries[len(m.entries)-1]
		require.Equal(t, last.ts, ts)
		require.Equal(t, last.offset, off)
	}
	queries := []int64{math.MinInt64, math.MaxInt64, 0, -1}
	for _, i := range sample(rng, len(m.entries)) {
		e := m.entries[i]
		queries = append(queries, e.ts-1, e.ts, e.ts+1)
	}
	for range 20 {
		queries = append(queries, rng.Int64N(1<<20)-1000)
	}
	for _, q := range queries {
		got, err := x.Lookup(q)
		require.NoError(t, err)
		require.Equal(t, m.lookup(q), got, "Lookup(%d)", q)
	}
}

// sample picks entries to probe: the first and last few and some at random
// (the models are linear scans, so probing every entry each time is slow).
func sample(rng *rand.Rand, n int) []int {
	var out []int
	for i := 0; i < n && i < 3; i++ {
		out = append(out, i, n-1-i)
	}
	for i := 0; i < 30 && n > 0; i++ {
		out = append(out, rng.IntN(n))
	}
	return out
}

type offsetsMaker func(t *testing.T, base int64, maxEntries int) *Offsets

func fileOffsets(t *testing.T, base int64, maxEntries int) *Offsets {
	x, err := CreateOffsets(vfs.Default, filepath.Join(t.TempDir(), "x.index"), base, maxEntries, testPerm)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close(false) })
	return x
}

func heapOffsets(t *testing.T, base int64, _ int) *Offsets { return NewMemoryOffsets(base) }

type timesMaker func(t *testing.T, base int64, maxEntries int) *Times

func fileTimes(t *testing.T, base int64, maxEntries int) *Times {
	x, err := CreateTimes(vfs.Default, filepath.Join(t.TempDir(), "x.timeindex"), base, maxEntries, testPerm)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close(false) })
	return x
}

func heapTimes(t *testing.T, base int64, _ int) *Times { return NewMemoryTimes(base) }

func TestOffsetsAgainstModel(t *testing.T) {
	for name, mk := range map[string]offsetsMaker{"file": fileOffsets, "heap": heapOffsets} {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(4) {
				rng := rand.New(rand.NewPCG(seed, 1))
				base := []int64{0, 1000, 1 << 40, math.MaxInt64 - math.MaxUint32 - 10}[seed]
				x := mk(t, base, 3000) // enough to cross several growth steps
				m := &offsetModel{base: base}
				checkOffsets(t, rng, x, m)
				off, pos := base, int64(0)
				for i := range 2000 {
					off += 1 + rng.Int64N(100)
					pos += 1 + rng.Int64N(8000)
					require.NoError(t, x.Append(off, pos))
					m.entries = append(m.entries, offsetEntry{off, pos})
					if i%97 == 0 {
						checkOffsets(t, rng, x, m)
					}
					if i%499 == 0 { // TruncateAfter drops the tail; appends go on
						cut := m.entries[rng.IntN(len(m.entries))].pos + rng.Int64N(2)
						require.NoError(t, x.TruncateAfter(cut))
						m.truncateAfter(cut)
						checkOffsets(t, rng, x, m)
						if n := len(m.entries); n > 0 {
							off, pos = m.entries[n-1].offset, m.entries[n-1].pos
						} else {
							off, pos = base, 0
						}
					}
				}
				checkOffsets(t, rng, x, m)
				x.Reset()
				require.Zero(t, x.Len())
				checkOffsets(t, rng, x, &offsetModel{base: base})
			}
		})
	}
}

func TestTimesAgainstModel(t *testing.T) {
	for name, mk := range map[string]timesMaker{"file": fileTimes, "heap": heapTimes} {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(4) {
				rng := rand.New(rand.NewPCG(seed, 2))
				base := []int64{0, 1000, 1 << 40, 5}[seed]
				x := mk(t, base, 5000)
				m := &timeModel{base: base}
				checkTimes(t, rng, x, m)
				off, ts := base, int64(-500) // timestamps may be negative (before 1970)
				for i := range 3000 {
					off += rng.Int64N(50)                 // sometimes the same offset: a no-op
					ts += rng.Int64N(1000) - 200          // sometimes going back: a no-op
					require.NoError(t, x.Append(ts, off)) // no-ops succeed too
					m.append(ts, off)
					if i%101 == 0 {
						checkTimes(t, rng, x, m)
					}
					if i%701 == 0 && len(m.entries) > 0 {
						cut := m.entries[rng.IntN(len(m.entries))].offset + rng.Int64N(2)
						require.NoError(t, x.TruncateAfter(cut))
						m.truncateAfter(cut)
						checkTimes(t, rng, x, m)
					}
				}
				checkTimes(t, rng, x, m)
				x.Reset()
				checkTimes(t, rng, x, &timeModel{base: base})
			}
		})
	}
}

func TestAppendRejectsOutOfRange(t *testing.T) {
	for name, x := range map[string]*Offsets{"file": fileOffsets(t, 100, 10), "heap": NewMemoryOffsets(100)} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, x.Append(99, 10), "offset below base")
			require.Error(t, x.Append(100+math.MaxUint32+1, 10), "relative offset past uint32")
			require.Error(t, x.Append(101, 0), "position 0 is the segment start, never an entry")
			require.Error(t, x.Append(101, -1))
			require.Error(t, x.Append(101, math.MaxUint32+1), "position past uint32")
			require.Zero(t, x.Len())
			require.NoError(t, x.Append(100+math.MaxUint32, math.MaxUint32))
			off, pos, err := x.Lookup(math.MaxInt64)
			require.NoError(t, err)
			require.Equal(t, int64(100+math.MaxUint32), off)
			require.Equal(t, int64(math.MaxUint32), pos)
		})
	}
	for name, x := range map[string]*Times{"file": fileTimes(t, 100, 10), "heap": NewMemoryTimes(100)} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, x.Append(5, 99))
			require.Error(t, x.Append(5, 100+math.MaxUint32+1))
			require.Zero(t, x.Len())
		})
	}
}

func TestFull(t *testing.T) {
	x := fileOffsets(t, 0, 3)
	for i := range int64(3) {
		require.NoError(t, x.Append(i+1, 10*(i+1)))
	}
	require.ErrorIs(t, x.Append(4, 40), ErrFull)
	require.Equal(t, 3, x.Len())
	require.Equal(t, 3, x.Cap())
	require.Equal(t, math.MaxInt32, NewMemoryOffsets(0).Cap(), "heap indexes do not fill up")

	tx := fileTimes(t, 0, 2)
	require.NoError(t, tx.Append(1, 1))
	require.NoError(t, tx.Append(2, 2))
	require.ErrorIs(t, tx.Append(3, 3), ErrFull)
	require.NoError(t, tx.Append(2, 3), "a no-op append cannot be full")

	require.Equal(t, 2, MaxEntries(0))
	require.Equal(t, 2+(1<<30)/IntervalBytes, MaxEntries(1<<30))
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, data, testPerm))
	return path
}

func offsetBytes(entries ...offsetEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.offset))
		b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
	}
	return b
}

func timeBytes(entries ...timeEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, uint32(e.offset))
	}
	return b
}

func TestOpenOffsetsValidation(t *testing.T) {
	const logSize = 100000
	good := []offsetEntry{{1, 4100}, {5, 8300}, {9, 12500}}
	cases := map[string][]byte{
		"offset repeats":      offsetBytes(offsetEntry{1, 4100}, offsetEntry{1, 8300}),
		"offset goes back":    offsetBytes(offsetEntry{5, 4100}, offsetEntry{4, 8300}),
		"position repeats":    offsetBytes(offsetEntry{1, 4100}, offsetEntry{2, 4100}),
		"position goes back":  offsetBytes(offsetEntry{1, 8300}, offsetEntry{2, 4100}),
		"position zero":       offsetBytes(offsetEntry{1, 0}),
		"zero-filled tail":    append(offsetBytes(good...), make([]byte, 64)...),
		"position at the end": offsetBytes(offsetEntry{1, logSize}),
		"position past end":   offsetBytes(offsetEntry{1, logSize + 5000}),
		"partial entry":       offsetBytes(good...)[:20],
		"one stray byte":      append(offsetBytes(good...), 1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, data)
			for _, writable := range []bool{false, true} {
				_, err := OpenOffsets(vfs.Default, path, 0, 100, logSize, writable, testPerm)
				require.ErrorIs(t, err, ErrInvalid, "writable=%v", writable)
			}
		})
	}
	t.Run("too many entries for a writable index", func(t *testing.T) {
		path := writeFile(t, offsetBytes(good...))
		_, err := OpenOffsets(vfs.Default, path, 0, 2, logSize, true, testPerm)
		require.ErrorIs(t, err, ErrInvalid)
		x, err := OpenOffsets(vfs.Default, path, 0, 2, logSize, false, testPerm)
		require.NoError(t, err, "a sealed index is not appended to: its reservation does not matter")
		require.NoError(t, x.Close(false))
	})
	t.Run("missing", func(t *testing.T) {
		_, err := OpenOffsets(vfs.Default, filepath.Join(t.TempDir(), "nope"), 0, 100, logSize, false, testPerm)
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	for _, data := range [][]byte{nil, offsetBytes(good...)} {
		path := writeFile(t, data)
		x, err := OpenOffsets(vfs.Default, path, 0, 100, logSize, false, testPerm)
		require.NoError(t, err)
		m := &offsetModel{}
		if data != nil {
			m.entries = good
		}
		checkOffsets(t, rand.New(rand.NewPCG(1, 1)), x, m)
		require.Error(t, x.Append(20, 20000), "a read-only index takes no entries")
		require.NoError(t, x.Close(false))
	}
}

func TestOpenTimesValidation(t *testing.T) {
	good := []timeEntry{{100, 3}, {200, 7}, {300, 9}}
	cases := map[string][]byte{
		"time repeats":        timeBytes(timeEntry{100, 3}, timeEntry{100, 7}),
		"time goes back":      timeBytes(timeEntry{100, 3}, timeEntry{99, 7}),
		"offset repeats":      timeBytes(timeEntry{100, 3}, timeEntry{200, 3}),
		"offset goes back":    timeBytes(timeEntry{100, 7}, timeEntry{200, 3}),
		"offset past the end": timeBytes(timeEntry{100, 3}, timeEntry{200, 11}),
		"zero-filled tail":    append(timeBytes(good...), make([]byte, 24)...),
		"partial entry":       timeBytes(good...)[:30],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, data)
			for _, writable := range []bool{false, true} {
				_, err := OpenTimes(vfs.Default, path, 0, 10, 100, writable, testPerm)
				require.ErrorIs(t, err, ErrInvalid, "writable=%v", writable)
			}
		})
	}
	path := writeFile(t, timeBytes(good...))
	x, err := OpenTimes(vfs.Default, path, 0, 9, 100, false, testPerm)
	require.NoError(t, err, "the last entry may sit at the last offset")
	checkTimes(t, rand.New(rand.NewPCG(1, 1)), x, &timeModel{entries: good})
	require.NoError(t, x.Close(false))
	_, err = OpenTimes(vfs.Default, path, 0, 8, 100, false, testPerm)
	require.ErrorIs(t, err, ErrInvalid)
	// Relative offsets: with base 1000 the same file ends at offset 1009.
	_, err = OpenTimes(vfs.Default, path, 1000, 1008, 100, false, testPerm)
	require.ErrorIs(t, err, ErrInvalid)
	x, err = OpenTimes(vfs.Default, path, 1000, 1009, 100, false, testPerm)
	require.NoError(t, err)
	got, err := x.Lookup(250)
	require.NoError(t, err)
	require.Equal(t, int64(1007), got)
	require.NoError(t, x.Close(false))
}

func TestSealTrimsAndReopens(t *testing.T) {
	dir := t.TempDir()
	opath, tpath := filepath.Join(dir, "0.index"), filepath.Join(dir, "0.timeindex")
	const base, maxEntries = 500, 10000
	x, err := CreateOffsets(vfs.Default, opath, base, maxEntries, testPerm)
	require.NoError(t, err)
	tx, err := CreateTimes(vfs.Default, tpath, base, maxEntries, testPerm)
	require.NoError(t, err)
	om, tm := &offsetModel{base: base}, &timeModel{base: base}
	for i := int64(1); i <= 700; i++ {
		require.NoError(t, x.Append(base+i*3, i*4100))
		require.NoError(t, tx.Append(1000+i, base+i*3+2))
		om.entries = append(om.entries, offsetEntry{base + i*3, i * 4100})
		tm.append(1000+i, base+i*3+2)
	}
	require.NoError(t, x.Sync())
	require.NoError(t, tx.Sync())
	st, err := os.Stat(opath)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(700*OffsetEntrySize), "an active index is preallocated in steps")

	require.NoError(t, x.Seal())
	require.NoError(t, tx.Seal())
	st, err = os.Stat(opath)
	require.NoError(t, err)
	require.Equal(t, int64(700*OffsetEntrySize), st.Size(), "Seal trims to the entries")
	st, err = os.Stat(tpath)
	require.NoError(t, err)
	require.Equal(t, int64(700*TimeEntrySize), st.Size())
	require.Error(t, x.Append(base+5000, 5_000_000), "sealed")
	require.Error(t, tx.Append(5000, base+5000), "sealed")
	rng := rand.New(rand.NewPCG(3, 3))
	checkOffsets(t, rng, x, om)
	checkTimes(t, rng, tx, tm)
	require.NoError(t, x.Close(false))
	require.NoError(t, tx.Close(false))

	ox, err := OpenOffsets(vfs.Default, opath, base, maxEntries, 700*4100+1, false, testPerm)
	require.NoError(t, err)
	checkOffsets(t, rng, ox, om)
	require.NoError(t, ox.Close(false))
	ot, err := OpenTimes(vfs.Default, tpath, base, base+700*3+2, maxEntries, false, testPerm)
	require.NoError(t, err)
	checkTimes(t, rng, ot, tm)
	require.NoError(t, ot.Close(false))
}

func TestCloseTrimReopenWritable(t *testing.T) {
	dir := t.TempDir()
	opath, tpath := filepath.Join(dir, "0.index"), filepath.Join(dir, "0.timeindex")
	x, err := CreateOffsets(vfs.Default, opath, 0, 1000, testPerm)
	require.NoError(t, err)
	tx, err := CreateTimes(vfs.Default, tpath, 0, 1000, testPerm)
	require.NoError(t, err)
	om, tm := &offsetModel{}, &timeModel{}
	add := func(x *Offsets, tx *Times, i int64) {
		require.NoError(t, x.Append(i*2, i*5000))
		require.NoError(t, tx.Append(i*10, i*2+1))
		om.entries = append(om.entries, offsetEntry{i * 2, i * 5000})
		tm.append(i*10, i*2+1)
	}
	for i := int64(1); i <= 50; i++ {
		add(x, tx, i)
	}
	require.NoError(t, x.Close(true))
	require.NoError(t, tx.Close(true))
	require.Equal(t, int64(50*OffsetEntrySize), fileSizeOf(t, opath))
	require.Equal(t, int64(50*TimeEntrySize), fileSizeOf(t, tpath))

	// Reopen writable (an active segment after a clean shutdown) and go on.
	x, err = OpenOffsets(vfs.Default, opath, 0, 1000, 51*5000, true, testPerm)
	require.NoError(t, err)
	tx, err = OpenTimes(vfs.Default, tpath, 0, math.MaxInt64, 1000, true, testPerm)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(4, 4))
	checkOffsets(t, rng, x, om)
	checkTimes(t, rng, tx, tm)
	for i := int64(51); i <= 900; i++ {
		add(x, tx, i)
	}
	checkOffsets(t, rng, x, om)
	checkTimes(t, rng, tx, tm)
	require.NoError(t, x.Close(true))
	require.NoError(t, tx.Close(true))
	x, err = OpenOffsets(vfs.Default, opath, 0, 1000, 901*5000, false, testPerm)
	require.NoError(t, err)
	checkOffsets(t, rng, x, om)
	require.NoError(t, x.Close(false))

	// Closing without trim (a crash, as far as the files know) leaves the
	// preallocated zero tail, which validation refuses: callers rebuild.
	x, err = CreateOffsets(vfs.Default, opath, 0, 1000, testPerm)
	require.NoError(t, err)
	require.NoError(t, x.Append(1, 5000))
	require.NoError(t, x.Close(false))
	require.Greater(t, fileSizeOf(t, opath), int64(OffsetEntrySize))
	_, err = OpenOffsets(vfs.Default, opath, 0, 1000, 10000, true, testPerm)
	require.ErrorIs(t, err, ErrInvalid)
}

func fileSizeOf(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

func TestClosed(t *testing.T) {
	x := fileOffsets(t, 0, 10)
	require.NoError(t, x.Append(1, 10))
	require.NoError(t, x.Close(false))
	require.NoError(t, x.Close(false), "Close is idempotent")
	_, _, err := x.Lookup(1)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, x.Append(2, 20), ErrClosed)
	require.ErrorIs(t, x.Seal(), ErrClosed)

	tx := heapTimes(t, 0, 0)
	require.NoError(t, tx.Close(true))
	_, err = tx.Lookup(1)
	require.ErrorIs(t, err, ErrClosed)
	_, _, _, err = tx.Last()
	require.ErrorIs(t, err, ErrClosed)
}

// TestConcurrentLookups runs lookups while one goroutine appends; every
// answer must be an entry the writer appended (or the segment start), and
// never past the offset asked for. Run with -race.
func TestConcurrentLookups(t *testing.T) {
	const n = 20000
	for name, mk := range map[string]struct {
		o offsetsMaker
		t timesMaker
	}{"file": {fileOffsets, fileTimes}, "heap": {heapOffsets, heapTimes}} {
		t.Run(name, func(t *testing.T) {
			x, tx := mk.o(t, 0, n+10), mk.t(t, 0, n+10)
			var done atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 1)
			fail := func(err error) {
				select {
				case errs <- err:
				default:
				}
			}
			for r := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(r), 9))
					for lookups := 0; !done.Load() || lookups < 1000; lookups++ {
						q := rng.Int64N(3*n + 10)
						off, pos, err := x.Lookup(q)
						if err != nil {
							fail(err)
							return
						}
						// Entry i (1-based) is (3i, 7i): check the answer is one.
						if off > q || off%3 != 0 || pos != off/3*7 {
							fail(&lookupError{q, off, pos})
							return
						}
						after, err := tx.Lookup(q)
						if err != nil {
							fail(err)
							return
						}
						// Time entry i is (ts 2i, offset 3i): the last below q.
						if after != -1 && (after%3 != 0 || 2*(after/3) >= q) {
							fail(&lookupError{q, after, 0})
							return
						}
						_ = x.Len()
					}
				}()
			}
			for i := int64(1); i <= n; i++ {
				require.NoError(t, x.Append(3*i, 7*i))
				require.NoError(t, tx.Append(2*i, 3*i))
			}
			done.Store(true)
			wg.Wait()
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			// Truncation while reading, too.
			require.NoError(t, x.TruncateAfter(7*(n/2)))
			require.Equal(t, n/2-1, x.Len())
			require.NoError(t, tx.TruncateAfter(3*(n/2)))
			require.Equal(t, n/2-1, tx.Len())
		})
	}
}

type lookupError struct{ q, off, pos int64 }

func (e *lookupError) Error() string {
	return fmt.Sprintf("Lookup(%d) = (%d, %d): not an entry at or before the query", e.q, e.off, e.pos)
}

// TestLookupMatchesSortSearch cross-checks Lookup on large random indexes
// against sort.Search over the model, at every entry boundary.
func TestLookupMatchesSortSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := NewMemoryOffsets(10)
	var offs []int64
	off, pos := int64(10), int64(0)
	for range 5000 {
		off += 1 + rng.Int64N(5)
		pos += 1 + rng.Int64N(5)
		require.NoError(t, x.Append(off, pos))
		offs = append(offs, off)
	}
	for q := int64(0); q <= off+2; q++ {
		i := sort.Search(len(offs), func(i int) bool { return offs[i] > q })
		want := int64(10)
		if i > 0 {
			want = offs[i-1]
		}
		got, _, err := x.Lookup(q)
		require.NoError(t, err)
		if got != want {
			require.Equal(t, want, got, "Lookup(%d)", q)
		}
	}
}
