package log

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/batchtest"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
	"github.com/embedstream/stream/segment"
)

// testLog returns a config for a partition in a fresh temp dir.
func testLog(t *testing.T) Config {
	t.Helper()
	return Config{
		Dir:      filepath.Join(t.TempDir(), "t", "0"),
		FilePerm: 0o600,
		DirPerm:  0o700,
		Settings: Settings{SegmentBytes: 1 << 20, MaxBatchBytes: 1 << 20, Sync: SyncNever},
	}
}

func openTestLog(t *testing.T, cfg Config, clean bool) *Log {
	t.Helper()
	p, err := Open(cfg, clean)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close(false) })
	return p
}

// encode builds a batch of n records whose values name their batch and slot.
func encode(seq, n int, ts int64) batch.Batch {
	var b batch.Builder
	b.Reset(0)
	for i := 0; i < n; i++ {
		b.Add(ts, []byte(fmt.Sprintf("k%d", i%7)), []byte(fmt.Sprintf("batch %d record %d", seq, i)),
			[]batch.Header{{Key: "i", Value: []byte{byte(i)}}})
	}
	return append(batch.Batch(nil), b.Finish()...)
}

// readAll reads every visible record from offset on.
func readAll(t *testing.T, p *Log, from int64) []batch.Record {
	t.Helper()
	out, err := readUntilErr(t, p, from)
	require.NoError(t, err)
	return out
}

// readUntilErr reads the visible records from offset on, up to the first
// read error, which it returns.
func readUntilErr(t *testing.T, p *Log, from int64) ([]batch.Record, error) {
	t.Helper()
	var out []batch.Record
	for off := from; ; {
		v, err := p.Read(off, 64<<10)
		if err != nil || len(v.Data) == 0 {
			return out, err
		}
		for data := v.Data; len(data) > 0; {
			b, err := batch.Parse(data)
			require.NoError(t, err)
			it := b.Records()
			var r batch.Record
			for it.Next(&r) {
				if r.Offset >= off {
					c := r
					c.Key = append([]byte(nil), r.Key...)
					c.Value = append([]byte(nil), r.Value...)
					out = append(out, c)
				}
			}
			require.NoError(t, it.Err())
			data = data[len(b):]
			off = b.LastOffset() + 1
		}
		v.Release()
	}
}

func TestLogAppendReopenReadBack(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 8 << 10 // many rolls
	var want []batch.Batch
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			cfg.Dir = filepath.Join(t.TempDir(), "p")
			want = want[:0]
			p, err := Open(cfg, false)
			require.NoError(t, err)
			next := int64(0)
			for i := 0; i < 200; i++ {
				b := encode(i, 1+i%9, int64(1000+i))
				base, err := p.Append(b)
				require.NoError(t, err)
				require.Equal(t, next, base)
				next += int64(b.NumRecords())
				want = append(want, b)
			}
			_, _, _, nsegs := info(p)
			require.Greater(t, nsegs, 3)
			if clean {
				require.NoError(t, p.Close(true))
			} else {
				// Simulate a crash: no trim, no marker.
				require.NoError(t, p.Close(false))
			}
			p = openTestLog(t, cfg, clean)
			start, end, _, _ := info(p)
			require.Equal(t, int64(0), start)
			require.Equal(t, next, end)
			// Byte-exact: the stored batches are the appended ones.
			off := int64(0)
			for _, w := range want {
				v, err := p.Read(off, 1)
				require.NoError(t, err)
				require.Equal(t, []byte(w), v.Data)
				v.Release()
				off += int64(w.NumRecords())
			}
			// Appends continue at the right offset.
			base, err := p.Append(encode(999, 3, 5000))
			require.NoError(t, err)
			require.Equal(t, next, base)
		})
	}
}

func TestLogReadBounds(t *testing.T) {
	p := openTestLog(t, testLog(t), false)
	v, err := p.Read(0, 100)
	require.NoError(t, err)
	require.Empty(t, v.Data)
	_, err = p.Append(encode(0, 5, 1))
	require.NoError(t, err)
	_, err = p.Read(6, 100)
	require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)
	_, err = p.Read(-1, 100)
	require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)
	// Reading from the middle of a batch returns the whole batch.
	recs := readAll(t, p, 3)
	require.Len(t, recs, 2)
	require.Equal(t, int64(3), recs[0].Offset)
}

func TestLogRejectsOversizedBatch(t *testing.T) {
	cfg := testLog(t)
	cfg.MaxBatchBytes = 1000
	p := openTestLog(t, cfg, false)
	var b batch.Builder
	b.Reset(0)
	b.Add(1, nil, make([]byte, 2000), nil)
	_, err := p.Append(b.Finish())
	require.ErrorIs(t, err, errs.ErrRecordTooLarge)
	_, end, size, _ := info(p)
	require.Zero(t, end)
	require.Zero(t, size)
	_, err = p.Append(batch.Batch([]byte("not a batch")))
	require.ErrorIs(t, err, batch.ErrCorrupt)
}

func TestLogRollBySizeAndAge(t *testing.T) {
	cfg := testLog(t)
	now := time.UnixMilli(1_000_000)
	cfg.Now = func() time.Time { return now }
	cfg.SegmentBytes = 4096
	cfg.SegmentAge = time.Hour
	p := openTestLog(t, cfg, false)
	one := encode(0, 1, 1)
	for p.segmentCount() == 1 {
		_, err := p.Append(one)
		require.NoError(t, err)
	}
	_, end, _, _ := info(p)
	segs := p.segments()
	require.Equal(t, end-1, segs[1].Base(), "the batch that did not fit starts the new segment")
	require.LessOrEqual(t, segs[0].Size(), int64(4096))

	// Age: the active segment rolls once it is older than SegmentAge.
	now = now.Add(59 * time.Minute)
	_, err := p.Append(one)
	require.NoError(t, err)
	require.Equal(t, 2, p.segmentCount())
	now = now.Add(2 * time.Minute)
	_, err = p.Append(one)
	require.NoError(t, err)
	require.Equal(t, 3, p.segmentCount())
}

func (p *Log) segmentCount() int { return len(p.segments()) }

func TestLogRetention(t *testing.T) {
	cfg := testLog(t)
	now := time.UnixMilli(10_000_000)
	cfg.Now = func() time.Time { return now }
	cfg.SegmentBytes = 2048
	cfg.Retention = time.Hour
	p := openTestLog(t, cfg, false)
	// Old records, then fresh ones.
	for i := 0; i < 40; i++ {
		_, err := p.Append(encode(i, 2, now.Add(-2*time.Hour).UnixMilli()))
		require.NoError(t, err)
	}
	_, oldEnd, _, _ := info(p)
	for i := 0; i < 40; i++ {
		_, err := p.Append(encode(i, 2, now.UnixMilli()))
		require.NoError(t, err)
	}
	_, end, _, before := info(p)
	n, err := p.EnforceRetention()
	require.NoError(t, err)
	require.Positive(t, n)
	start, end2, _, after := info(p)
	require.Equal(t, before-n, after)
	require.Equal(t, end, end2, "retention never moves the end")
	require.LessOrEqual(t, start, oldEnd, "fresh records are kept")
	require.Equal(t, p.segments()[0].Base(), start)
	_, err = p.Read(0, 100)
	require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)
	recs := readAll(t, p, start)
	require.Equal(t, int(end-start), len(recs))

	// Bytes: keep at least retentionBytes, delete whole old segments.
	set := p.Settings()
	set.Retention, set.RetentionBytes = 0, 4096
	require.NoError(t, p.Reconfigure(set))
	_, err = p.EnforceRetention()
	require.NoError(t, err)
	_, _, bytes, segs := info(p)
	require.GreaterOrEqual(t, bytes, int64(4096))
	require.Less(t, bytes-p.segments()[0].Size(), int64(4096))
	require.GreaterOrEqual(t, segs, 2)

	// Delete everything but the active segment, which is empty after a roll:
	// the next append still gets the old end offset (offsets never reused).
	require.NoError(t, func() error { p.mu.Lock(); defer p.mu.Unlock(); return p.roll() }())
	set.Retention, set.RetentionBytes = time.Millisecond, 0
	require.NoError(t, p.Reconfigure(set))
	now = now.Add(time.Hour)
	_, err = p.EnforceRetention()
	require.NoError(t, err)
	start, end3, bytes, _ := info(p)
	require.Equal(t, end, start)
	require.Equal(t, end, end3)
	require.Zero(t, bytes)
	base, err := p.Append(encode(0, 1, now.UnixMilli()))
	require.NoError(t, err)
	require.Equal(t, end, base)

	// Reopen: the start offset survives.
	require.NoError(t, p.Close(true))
	p = openTestLog(t, cfg, true)
	start, end4, _, _ := info(p)
	require.Equal(t, end, start)
	require.Equal(t, end+1, end4)
}

func TestLogRetentionKeepsViewsValid(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 2048
	p := openTestLog(t, cfg, false)
	for i := 0; i < 20; i++ {
		_, err := p.Append(encode(i, 3, 1))
		require.NoError(t, err)
	}
	v, err := p.Read(0, 1<<20)
	require.NoError(t, err)
	want := append([]byte(nil), v.Data...)
	set := p.Settings()
	set.RetentionBytes = 1 // now, or the rolls would have deleted segment 0 already
	require.NoError(t, p.Reconfigure(set))
	_, err = p.EnforceRetention()
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(cfg.Dir, segment.FileName(0, segment.LogSuffix)))
	require.ErrorIs(t, err, os.ErrNotExist)
	// The view still reads the deleted segment's bytes: the mapping is
	// released only with the last view.
	require.Equal(t, want, v.Data)
	v.Release()
}

func TestLogConcurrentReadersDuringRetention(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4096
	cfg.RetentionBytes = 16 << 10
	p := openTestLog(t, cfg, false)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Go(func() {
			off := int64(0)
			for ctx.Err() == nil {
				v, err := p.Read(off, 8192)
				if errors.Is(err, errs.ErrOffsetOutOfRange) {
					off = p.start.Load()
					continue
				}
				if !assert.NoError(t, err) {
					return
				}
				for data := v.Data; len(data) > 0; {
					b, err := batch.Parse(data)
					if !assert.NoError(t, err) {
						return
					}
					data = data[len(b):]
					off = b.LastOffset() + 1
				}
				v.Release()
				if len(v.Data) == 0 {
					if err := p.WaitFor(ctx, off, nil); err != nil {
						return
					}
				}
			}
		})
	}
	for i := 0; i < 2000; i++ {
		_, err := p.Append(encode(i, 4, 1))
		require.NoError(t, err)
		if i%50 == 0 {
			_, err := p.EnforceRetention()
			require.NoError(t, err)
		}
	}
	cancel()
	wg.Wait()
}

func TestLogWaitFor(t *testing.T) {
	p := openTestLog(t, testLog(t), false)
	done := make(chan error)
	go func() { done <- p.WaitFor(t.Context(), 0, nil) }()
	_, err := p.Append(encode(0, 1, 1))
	require.NoError(t, err)
	require.NoError(t, <-done)

	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- p.WaitFor(ctx, 1, nil) }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	go func() { done <- p.WaitFor(t.Context(), 1, nil) }()
	require.NoError(t, p.Close(true))
	require.ErrorIs(t, <-done, errs.ErrClosed)
	_, err = p.Append(encode(0, 1, 1))
	require.ErrorIs(t, err, errs.ErrClosed)
}

func TestLogOffsetForTime(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4096
	p := openTestLog(t, cfg, false)
	// Timestamps 0, 10, 20, ... with one record per batch, across segments,
	// and one out-of-order record.
	for i := 0; i < 300; i++ {
		ts := int64(i * 10)
		if i == 150 {
			ts = 5
		}
		_, err := p.Append(encode(i, 1, ts))
		require.NoError(t, err)
	}
	require.Greater(t, p.segmentCount(), 3)
	for _, c := range []struct{ ts, want int64 }{
		{-5, 0}, {0, 0}, {1, 1}, {10, 1}, {11, 2}, {1495, 150 + 1}, {1500, 151}, {2990, 299}, {2991, -1},
	} {
		got, err := p.OffsetForTime(c.ts)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "ts %d", c.ts)
	}
}

func TestLogSyncAlwaysGroupCommit(t *testing.T) {
	cfg := testLog(t)
	cfg.Sync = SyncAlways
	cfg.Stats = new(Stats)
	p := openTestLog(t, cfg, false)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				base, err := p.Append(encode(w, 1, 1))
				if !assert.NoError(t, err) {
					return
				}
				// Acknowledged means durable and visible.
				if p.hw.Load() <= base {
					t.Errorf("offset %d acknowledged before it became visible", base)
				}
			}
		})
	}
	wg.Wait()
	_, end, _, _ := info(p)
	require.Equal(t, int64(writers*each), end)
	fsyncs := cfg.Stats.Fsyncs.Load()
	require.Positive(t, fsyncs)
	require.Less(t, fsyncs, int64(writers*each), "concurrent publishers share fsyncs")
	t.Logf("%d appends, %d fsyncs", writers*each, fsyncs)
}

func TestLogSyncFailureStopsWrites(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			cfg := testLog(t)
			cfg.Sync = policy
			toggle := errorfs.NewToggle(errorfs.OnPath(".log", errorfs.Ops(syscall.EIO, errorfs.OpSync)))
			cfg.FS = errorfs.Wrap(vfs.Default, toggle)
			p := openTestLog(t, cfg, false)
			_, err := p.Append(encode(0, 2, 1))
			require.NoError(t, err)
			toggle.Enable()
			_, err = p.Append(encode(1, 2, 1))
			if policy == SyncInterval {
				require.NoError(t, err)
				err = p.Sync()
			}
			require.ErrorIs(t, err, errs.ErrSyncFailed)
			require.ErrorIs(t, err, syscall.EIO)
			toggle.Disable() // a retry could "succeed" without the lost pages
			_, err = p.Append(encode(2, 1, 1))
			require.ErrorIs(t, err, errs.ErrSyncFailed)
			require.ErrorIs(t, p.Sync(), errs.ErrSyncFailed)
			if policy == SyncAlways {
				_, end, _, _ := info(p)
				require.Equal(t, int64(2), end, "the unsynced batch never became visible")
			}
			require.ErrorIs(t, p.Close(true), errs.ErrSyncFailed, "Close reports the failure")
			// Reopening recovers and takes writes again.
			cfg.FS = vfs.Default
			p = openTestLog(t, cfg, false)
			_, err = p.Append(encode(3, 1, 1))
			require.NoError(t, err)
		})
	}
}

func TestLogWriteFaultsAreNotFatal(t *testing.T) {
	for _, op := range []errorfs.Op{errorfs.OpWrite, errorfs.OpAllocate} {
		t.Run(string(op), func(t *testing.T) {
			cfg := testLog(t)
			var inj errorfs.Injector = errorfs.Ops(syscall.ENOSPC, op)
			if op == errorfs.OpWrite {
				inj = errorfs.Ops(errorfs.ShortWrite{Err: syscall.ENOSPC}, op)
			}
			toggle := errorfs.NewToggle(errorfs.OnPath(".log", inj))
			cfg.FS = errorfs.Wrap(vfs.Default, toggle)
			p := openTestLog(t, cfg, false)
			_, err := p.Append(encode(0, 2, 1))
			require.NoError(t, err)
			toggle.Enable()
			// A large batch forces preallocation.
			var b batch.Builder
			b.Reset(0)
			b.Add(1, nil, make([]byte, 200<<10), nil)
			_, err = p.Append(b.Finish())
			require.ErrorIs(t, err, syscall.ENOSPC)
			_, end, _, _ := info(p)
			require.Equal(t, int64(2), end)
			toggle.Disable()
			base, err := p.Append(encode(2, 1, 1))
			require.NoError(t, err)
			require.Equal(t, int64(2), base)
			require.NoError(t, p.Close(false))
			p = openTestLog(t, cfg, false)
			recs := readAll(t, p, 0)
			require.Len(t, recs, 3)
			require.Equal(t, "batch 2 record 0", string(recs[2].Value))
		})
	}
}

func TestLogRecoversDamagedSealedSegment(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4096
	p, err := Open(cfg, false)
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		_, err := p.Append(encode(i, 2, 1))
		require.NoError(t, err)
	}
	segs := p.segments()
	require.Greater(t, len(segs), 2)
	damaged, after := segs[1], segs[2]
	count, end := p.SegmentCount(), p.HighWatermark()
	require.NoError(t, p.Close(false))
	// Flip a byte in the last batch of the second segment: a torn tail.
	path := filepath.Join(cfg.Dir, segment.FileName(damaged.Base(), segment.LogSuffix))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)-3] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o600))

	cfg.Stats = new(Stats)
	p = openTestLog(t, cfg, false)
	require.Equal(t, count, p.SegmentCount(), "later segments are kept")
	require.Equal(t, end, p.HighWatermark())
	require.Positive(t, cfg.Stats.TruncatedBytes.Load())
	lost := after.Base() - 2 // the last batch, two records
	recs, err := readUntilErr(t, p, 0)
	require.Len(t, recs, int(lost), "the records before the damage are returned")
	require.ErrorIs(t, err, errs.ErrCorrupt)
	for i, r := range recs {
		require.Equal(t, int64(i), r.Offset)
	}
	_, err = p.Read(lost, 1<<20)
	var de *segment.DamageError
	require.ErrorAs(t, err, &de)
	require.ErrorIs(t, err, errs.ErrCorrupt)
	require.Equal(t, lost, de.Offset)
	require.Equal(t, after.Base(), de.Next)
	rest := readAll(t, p, de.Next)
	require.Len(t, rest, int(end-after.Base()))
	require.Equal(t, after.Base(), rest[0].Offset)
	require.Positive(t, cfg.Stats.CorruptBatches.Load())
	base, err := p.Append(encode(0, 1, 1))
	require.NoError(t, err)
	require.Equal(t, end, base)
}

func TestLogReadOnly(t *testing.T) {
	cfg := testLog(t)
	p, err := Open(cfg, false)
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		_, err := p.Append(encode(i, 2, 1))
		require.NoError(t, err)
	}
	require.NoError(t, p.Close(false)) // unclean: the reader must recover in memory
	before := snapshotDir(t, cfg.Dir)
	cfg.ReadOnly = true
	p = openTestLog(t, cfg, false)
	require.Len(t, readAll(t, p, 0), 20)
	_, err = p.Append(encode(0, 1, 1))
	require.ErrorIs(t, err, errs.ErrReadOnly)
	require.NoError(t, p.Close(true))
	require.Equal(t, before, snapshotDir(t, cfg.Dir), "read-only open changes no byte")
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// A quiet topic never rolls by size, and SegmentAge 0 never rolls by age:
// time retention still deletes its records once the whole active segment
// is past retention, by rolling it first (as Kafka does), and new records
// continue at the old end.
func TestLogRetentionRollsAnExpiredActiveSegment(t *testing.T) {
	cfg := testLog(t)
	now := time.UnixMilli(10_000_000)
	cfg.Now = func() time.Time { return now }
	cfg.Retention = time.Hour
	p := openTestLog(t, cfg, false)
	for i := 0; i < 5; i++ {
		_, err := p.Append(encode(i, 2, now.UnixMilli()))
		require.NoError(t, err)
	}
	n, err := p.EnforceRetention()
	require.NoError(t, err)
	require.Zero(t, n, "not past retention yet")

	now = now.Add(time.Hour + time.Millisecond)
	n, err = p.EnforceRetention()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	start, end, bytes, segs := info(p)
	require.Equal(t, int64(10), start)
	require.Equal(t, int64(10), end)
	require.Zero(t, bytes)
	require.Equal(t, 1, segs, "a fresh, empty active segment")
	n, err = p.EnforceRetention()
	require.NoError(t, err)
	require.Zero(t, n, "an empty active segment is never rolled")
	base, err := p.Append(encode(0, 1, now.UnixMilli()))
	require.NoError(t, err)
	require.Equal(t, int64(10), base)
}

// deleteRecords writes the new start durably before anything else: when
// that fails nothing changes, and a damaged start file is ignored (the log
// starts at its first segment) rather than failing the open.
func TestLogDeleteRecordsFaults(t *testing.T) {
	for _, op := range []errorfs.Op{errorfs.OpWrite, errorfs.OpSync, errorfs.OpRename} {
		t.Run(string(op), func(t *testing.T) {
			cfg := testLog(t)
			cfg.Sync = SyncAlways
			toggle := errorfs.NewToggle(errorfs.OnPath(logStartFile, errorfs.Ops(syscall.EIO, op)))
			cfg.FS = errorfs.Wrap(vfs.Default, toggle)
			p := openTestLog(t, cfg, false)
			for i := range 10 {
				_, err := p.Append(encode(i, 1, 1))
				require.NoError(t, err)
			}
			toggle.Enable()
			_, err := p.DeleteRecords(4)
			require.ErrorIs(t, err, syscall.EIO)
			start, _, _, _ := info(p)
			require.Zero(t, start, "nothing changed")
			toggle.Disable()
			start, err = p.DeleteRecords(4)
			require.NoError(t, err)
			require.Equal(t, int64(4), start)
			require.NoError(t, p.Close(true))
			p = openTestLog(t, cfg, true)
			start, _, _, _ = info(p)
			require.Equal(t, int64(4), start, "durable")
			require.NoError(t, p.Close(true))

			require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, logStartFile), []byte("garbage"), 0o600))
			p = openTestLog(t, cfg, true)
			start, _, _, _ = info(p)
			require.Zero(t, start, "a damaged start file is ignored")
		})
	}
}

// A machine crash under SyncNever can take back the unsynced tail the
// stored log start had passed (here the tail is cut by hand, as after a
// power loss). The stored start is then past the recovered end, which open
// cannot tell from damage: it ignores the start rather than delete every
// segment, and records appended from the end stay visible at later opens.
func TestLogStoredStartPastRecoveredEnd(t *testing.T) {
	cfg := testLog(t)
	cfg.Sync = SyncNever // nothing forces the tail to disk before the start is stored
	cfg.Stats = new(Stats)
	p, err := Open(cfg, true)
	require.NoError(t, err)
	var sizeAt5 int64
	for i := range 10 {
		_, err := p.Append(encode(i, 1, 1000))
		require.NoError(t, err)
		if i == 4 {
			_, _, sizeAt5, _ = info(p)
		}
	}
	start, err := p.DeleteRecords(8)
	require.NoError(t, err)
	require.EqualValues(t, 8, start)
	p.mu.Lock()
	p.closed = true // crash: no trim, no sync
	p.mu.Unlock()
	require.NoError(t, os.Truncate(filepath.Join(cfg.Dir, "00000000000000000000.log"), sizeAt5))

	p, err = Open(cfg, false)
	require.NoError(t, err)
	start, end, _, _ := info(p)
	require.Equal(t, []int64{0, 5}, []int64{start, end}, "the stored start is ignored")
	require.EqualValues(t, 1, cfg.Stats.LogStartResets.Load())
	for i := range 5 {
		off, err := p.Append(encode(100+i, 1, 2000))
		require.NoError(t, err)
		require.Equal(t, int64(5+i), off)
	}
	require.NoError(t, p.Close(true))
	p, err = Open(cfg, true)
	require.NoError(t, err)
	defer p.Close(false)
	start, end, _, _ = info(p)
	require.Equal(t, []int64{0, 10}, []int64{start, end}, "the records appended after recovery stay visible")
	require.Len(t, readAll(t, p, 0), 10)
	require.EqualValues(t, 1, cfg.Stats.LogStartResets.Load(), "the file was replaced")
}

// info is Info as a tuple, for assertions on several fields at once.
func info(l *Log) (start, end, bytes int64, segments int) {
	i := l.Info()
	return i.Start, i.End, i.Bytes, i.Segments
}

// OffsetForTime is exact whatever the order of timestamps, across
// segments, and from the log start on after DeleteRecords moves it into
// the middle of a segment.
func TestLogOffsetForTimeAgainstModel(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4 << 10
	l := openTestLog(t, cfg, false)
	rng := rand.New(rand.NewPCG(11, 12))
	var model []batchtest.Record
	for _, b := range batchtest.RandomBatches(t, rng, 0, 60, 6, 60) {
		base, err := l.Append(b.Data)
		require.NoError(t, err)
		for i, r := range b.Records {
			r.Offset = base + int64(i)
			model = append(model, r)
		}
	}
	require.Greater(t, l.SegmentCount(), 3)
	check := func() {
		start := l.StartOffset()
		for range 300 {
			ts := model[rng.IntN(len(model))].Timestamp + int64(rng.IntN(3)) - 1
			want := int64(-1)
			for _, r := range model {
				if r.Offset >= start && r.Timestamp >= ts {
					want = r.Offset
					break
				}
			}
			got, err := l.OffsetForTime(ts)
			require.NoError(t, err)
			require.Equal(t, want, got, "ts %d from start %d", ts, start)
		}
	}
	check()
	for _, before := range []int64{7, int64(len(model)) / 3, int64(len(model)) / 2} {
		_, err := l.DeleteRecords(before)
		require.NoError(t, err)
		check()
	}
}
