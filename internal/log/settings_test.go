package log

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/internal/vfs/errorfs"
	"github.com/embedstream/stream/segment"
)

// syncRecorder is an injector that fails nothing and records the paths of
// fsyncs (files and directories), for tests of what a change of policy
// makes durable.
type syncRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (r *syncRecorder) MaybeError(op errorfs.Op, path string) error {
	if op == errorfs.OpSync || op == errorfs.OpSyncDir {
		r.mu.Lock()
		r.paths = append(r.paths, path)
		r.mu.Unlock()
	}
	return nil
}

// take returns the paths recorded since the last take.
func (r *syncRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.paths
	r.paths = nil
	return out
}

// reconfigure changes some of p's settings.
func reconfigure(t *testing.T, p *Log, change func(*Settings)) {
	t.Helper()
	s := p.Settings()
	change(&s)
	require.NoError(t, p.Reconfigure(s))
}

func TestReconfigureSegmentBytesAtNextRoll(t *testing.T) {
	p := openTestLog(t, testLog(t), false) // 1 MiB segments
	for range 20 {
		_, err := p.Append(encode(0, 5, 1)) // a few hundred bytes each
		require.NoError(t, err)
	}
	require.Equal(t, 1, p.segmentCount())
	first := p.segments()[0].Size()
	require.Greater(t, first, int64(4096))

	reconfigure(t, p, func(s *Settings) { s.SegmentBytes = 4096 })
	require.Equal(t, 1, p.segmentCount(), "nothing rolls before the next append")
	for range 40 {
		_, err := p.Append(encode(1, 5, 1))
		require.NoError(t, err)
	}
	segs := p.Segments()
	require.Greater(t, len(segs), 3)
	require.Equal(t, first, segs[0].Size, "the segment past the new size rolled at the next append, as it was")
	for _, s := range segs[1:] {
		require.LessOrEqual(t, s.Size, int64(4096), "new segments roll at the new size")
	}

	reconfigure(t, p, func(s *Settings) { s.SegmentBytes = 1 << 20 })
	n := p.segmentCount()
	for range 40 {
		_, err := p.Append(encode(2, 5, 1))
		require.NoError(t, err)
	}
	require.Equal(t, n+1, p.segmentCount(), "at most one roll (the active one's index was sized for 4 KiB), then the new size")
}

func TestReconfigureMaxBatchBytesAndLogAppendTime(t *testing.T) {
	cfg := testLog(t)
	now := time.UnixMilli(5_000_000)
	cfg.Now = func() time.Time { return now }
	p := openTestLog(t, cfg, false)
	big := encode(0, 20, 1)

	reconfigure(t, p, func(s *Settings) { s.MaxBatchBytes = len(big) - 1 })
	_, err := p.Append(big)
	require.ErrorIs(t, err, errs.ErrRecordTooLarge)
	reconfigure(t, p, func(s *Settings) { s.MaxBatchBytes = len(big) })
	_, err = p.Append(big)
	require.NoError(t, err)

	reconfigure(t, p, func(s *Settings) { s.LogAppendTime = true })
	base, err := p.Append(encode(1, 2, 1))
	require.NoError(t, err)
	reconfigure(t, p, func(s *Settings) { s.LogAppendTime = false })
	plain, err := p.Append(encode(2, 2, 1))
	require.NoError(t, err)

	stamped := batchAt(t, p, base)
	require.NotZero(t, stamped.Attributes()&batch.AttrLogAppendTime)
	require.Equal(t, now.UnixMilli(), stamped.MaxTimestamp())
	require.Zero(t, batchAt(t, p, plain).Attributes()&batch.AttrLogAppendTime)
}

// batchAt returns a copy of the batch holding offset off.
func batchAt(t *testing.T, p *Log, off int64) batch.Batch {
	t.Helper()
	v, err := p.Read(off, 1)
	require.NoError(t, err)
	defer v.Release()
	b, err := batch.Parse(v.Data)
	require.NoError(t, err)
	return slices.Clone(b)
}

func TestReconfigureRetention(t *testing.T) {
	cfg := testLog(t)
	now := time.UnixMilli(100_000_000)
	cfg.Now = func() time.Time { return now }
	cfg.SegmentBytes = 4096
	p := openTestLog(t, cfg, false)
	for i := range 200 {
		_, err := p.Append(encode(i, 3, now.Add(-2*time.Hour).UnixMilli()))
		require.NoError(t, err)
	}
	n, err := p.EnforceRetention()
	require.NoError(t, err)
	require.Zero(t, n, "no retention yet")
	segs := p.segmentCount()

	// Size: enforced by the next append, no check needed.
	reconfigure(t, p, func(s *Settings) { s.RetentionBytes = 8192 })
	require.Equal(t, segs, p.segmentCount(), "nothing deleted by the change itself")
	_, err = p.Append(encode(99, 3, now.UnixMilli()))
	require.NoError(t, err)
	info := p.Info()
	require.Less(t, p.segmentCount(), segs)
	require.Less(t, info.Bytes-p.Segments()[0].Size, int64(8192))
	require.Positive(t, info.Start)

	// Time: at the next check, every segment older than the new limit.
	reconfigure(t, p, func(s *Settings) { s.RetentionBytes, s.Retention = 0, time.Hour })
	n, err = p.EnforceRetention()
	require.NoError(t, err)
	require.Positive(t, n)
	require.Equal(t, 1, p.segmentCount(), "only the segment with the fresh record is left")
}

// TestReconfigureLeavingSyncNever checks that a change from SyncNever
// fsyncs what SyncNever left to the OS, and that a segment made under it
// is fsynced when it rolls under the new policy.
func TestReconfigureLeavingSyncNever(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval} {
		t.Run(policyName(policy), func(t *testing.T) {
			cfg := testLog(t)
			cfg.SegmentBytes = 4096
			rec := &syncRecorder{}
			cfg.FS = errorfs.Wrap(vfs.Default, rec)
			p := openTestLog(t, cfg, false)
			for i := range 100 {
				_, err := p.Append(encode(i, 3, 1))
				require.NoError(t, err)
			}
			require.Empty(t, rec.take(), "SyncNever fsyncs nothing")
			segs := p.segments()
			require.Greater(t, len(segs), 2)

			reconfigure(t, p, func(s *Settings) { s.Sync = policy })
			synced := rec.take()
			for _, s := range segs {
				require.Contains(t, synced, filepath.Join(cfg.Dir, segment.FileName(s.Base(), segment.LogSuffix)),
					"every segment, sealed or active, is made durable")
			}
			require.Contains(t, synced, cfg.Dir, "and the directory's entries")
			require.Equal(t, policy, p.Policy())

			// The active segment, made under SyncNever, is fsynced when
			// it rolls: its own Seal would not.
			active := segs[len(segs)-1]
			for p.segments()[len(p.segments())-1] == active {
				_, err := p.Append(encode(0, 3, 1))
				require.NoError(t, err)
			}
			require.Contains(t, rec.take(), filepath.Join(cfg.Dir, segment.FileName(active.Base(), segment.LogSuffix)))
		})
	}
}

func policyName(p SyncPolicy) string {
	return map[SyncPolicy]string{SyncInterval: "interval", SyncNever: "never", SyncAlways: "always"}[p]
}

// TestReconfigureLeavingSyncAlways checks that records waiting for their
// fsync under SyncAlways become visible when the policy changes, and that
// the fsync finishing later does not move the high watermark back.
func TestReconfigureLeavingSyncAlways(t *testing.T) {
	cfg := testLog(t)
	cfg.Sync = SyncAlways
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	block := errorfs.NewToggle(errorfs.OnPath(".log", errorfs.InjectorFunc(func(op errorfs.Op, _ string) error {
		if op == errorfs.OpSync {
			once.Do(func() { close(entered); <-release })
		}
		return nil
	})))
	cfg.FS = errorfs.Wrap(vfs.Default, block)
	p := openTestLog(t, cfg, false)
	_, err := p.Append(encode(0, 2, 1))
	require.NoError(t, err)
	block.Enable()

	done := make(chan error)
	go func() {
		_, err := p.Append(encode(1, 3, 1))
		done <- err
	}()
	<-entered // its fsync is under way
	require.Equal(t, int64(2), p.HighWatermark(), "not visible before its fsync")
	reconfigure(t, p, func(s *Settings) { s.Sync = SyncInterval })
	require.Equal(t, int64(5), p.HighWatermark(), "visible once the policy no longer waits for the fsync")
	_, err = p.Append(encode(2, 1, 1))
	require.NoError(t, err, "appends go on under the new policy")
	require.Equal(t, int64(6), p.HighWatermark())
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, int64(6), p.HighWatermark(), "the late fsync does not move it back")
}

func TestReconfigureClosedOrReadOnly(t *testing.T) {
	cfg := testLog(t)
	p := openTestLog(t, cfg, false)
	_, err := p.Append(encode(0, 1, 1))
	require.NoError(t, err)
	require.NoError(t, p.Close(true))
	s := p.Settings()
	s.RetentionBytes = 1
	require.ErrorIs(t, p.Reconfigure(s), errs.ErrClosed)

	cfg.ReadOnly = true
	ro := openTestLog(t, cfg, true)
	require.ErrorIs(t, ro.Reconfigure(s), errs.ErrReadOnly)
	require.Zero(t, ro.Settings().RetentionBytes, "unchanged")
}

// TestReconfigureUnderLoad changes every setting over and over while
// writers append and readers read (run it with -race): offsets stay dense
// and every acknowledged record reads back.
func TestReconfigureUnderLoad(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4096
	p := openTestLog(t, cfg, false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const writers, each = 4, 150
	var wg, readers sync.WaitGroup
	bases := make(chan int64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				base, err := p.Append(encode(w*each+i, 2, 1))
				if err != nil {
					t.Error(err)
					return
				}
				bases <- base
			}
		})
	}
	for range 2 {
		readers.Go(func() {
			for off := int64(0); ctx.Err() == nil; {
				if err := p.WaitFor(ctx, off, nil); err != nil {
					return
				}
				v, err := p.Read(off, 1<<20)
				if err != nil {
					t.Error(err)
					return
				}
				for data := v.Data; len(data) > 0; {
					b, err := batch.Parse(data)
					if err != nil {
						t.Error(err)
						break
					}
					off = b.LastOffset() + 1
					data = data[len(b):]
				}
				v.Release()
			}
		})
	}
	policies := []SyncPolicy{SyncNever, SyncAlways, SyncInterval}
	for i := 0; ; i++ {
		s := p.Settings()
		s.SegmentBytes = int64(4096 * (1 + i%3))
		s.Sync = policies[i%3]
		s.LogAppendTime = i%2 == 0
		s.MaxBatchBytes = 1<<20 + i
		s.SegmentAge = time.Duration(i%2) * time.Hour
		require.NoError(t, p.Reconfigure(s))
		if len(bases) == cap(bases) {
			break
		}
		if i > 100_000 {
			t.Fatal("writers never finished")
		}
	}
	wg.Wait()
	close(bases)
	var got []int64
	for b := range bases {
		got = append(got, b)
	}
	slices.Sort(got)
	for i, b := range got {
		require.Equal(t, int64(2*i), b, "dense offsets")
	}
	require.Equal(t, int64(2*writers*each), p.HighWatermark())
	require.Len(t, readAll(t, p, 0), 2*writers*each)
	cancel()
	readers.Wait()
}
