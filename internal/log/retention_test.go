package log

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/errs"
)

// multiSegmentLog writes 120 batches of 4 records in segments of 4 KiB and
// closes the log cleanly; it returns the end offset and the segment count.
func multiSegmentLog(t *testing.T, cfg Config) (end int64, segments int) {
	t.Helper()
	p, err := Open(cfg, true)
	require.NoError(t, err)
	for i := range 120 {
		_, err := p.Append(encode(i, 4, 1000))
		require.NoError(t, err)
	}
	_, end, _, segments = info(p)
	require.Greater(t, segments, 3)
	require.NoError(t, p.Close(true))
	return end, segments
}

// A damaged log-start file (a value past the end, garbage, nothing) is
// ignored: the log starts at its first segment and no segment goes. A
// read-write open counts the reset once and replaces the file; a read-only
// open counts it and changes no byte.
func TestLogDamagedStartIsIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"past end":   "1000000",
		"garbage":    "garbage",
		"empty":      "",
		"negative":   "-5",
		"trailing":   "00000000000000000005" + "7",
		"overflow":   "99999999999999999999",
		"whitespace": "5\n",
		// A flipped digit still reads as an offset: the checksum sees it.
		"flipped digit": strings.Replace(string(formatLogStart(15)), "15", "25", 1),
		"bad checksum":  "15 00000000",
		"short sum":     "15 abc",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testLog(t)
			cfg.SegmentBytes = 4096
			end, segments := multiSegmentLog(t, cfg)
			path := filepath.Join(cfg.Dir, logStartFile)
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))

			ro := cfg
			ro.ReadOnly = true
			ro.Stats = new(Stats)
			before := snapshotDir(t, cfg.Dir)
			p := openTestLog(t, ro, true)
			require.Equal(t, []int64{0, end}, []int64{p.StartOffset(), p.HighWatermark()})
			require.Len(t, readAll(t, p, 0), int(end))
			require.EqualValues(t, 1, ro.Stats.LogStartResets.Load())
			require.NoError(t, p.Close(true))
			require.Equal(t, before, snapshotDir(t, cfg.Dir), "read-only open changes no byte")

			cfg.Stats = new(Stats)
			p = openTestLog(t, cfg, true)
			start, end2, _, segments2 := info(p)
			require.Equal(t, []int64{0, end}, []int64{start, end2})
			require.Equal(t, segments, segments2, "no segment deleted")
			require.Len(t, readAll(t, p, 0), int(end))
			require.EqualValues(t, 1, cfg.Stats.LogStartResets.Load())
			require.Zero(t, cfg.Stats.SegmentsDeleted.Load())
			require.NoError(t, p.Close(true))

			// Replaced: the next open meets no damage.
			p = openTestLog(t, cfg, true)
			require.Zero(t, p.StartOffset())
			require.EqualValues(t, 1, cfg.Stats.LogStartResets.Load())
			require.Equal(t, segments, p.SegmentCount())
		})
	}
}

// A valid stored start finishes an interrupted DeleteRecords: segments
// wholly below it go, and nothing is counted as damage.
func TestLogStoredStartDropsSegmentsBelow(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4096
	end, segments := multiSegmentLog(t, cfg)
	cfg.Stats = new(Stats)
	p := openTestLog(t, cfg, true)
	segs := p.Segments()
	mid := segs[2].Base + 1
	require.NoError(t, p.Close(true))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, logStartFile), []byte(strconv.FormatInt(mid, 10)), 0o600))

	p = openTestLog(t, cfg, true)
	start, end2, _, segments2 := info(p)
	require.Equal(t, []int64{mid, end}, []int64{start, end2})
	require.Equal(t, segments-2, segments2)
	require.Len(t, readAll(t, p, mid), int(end-mid))
	require.Zero(t, cfg.Stats.LogStartResets.Load())
}

// A log-start file that cannot be read (here a directory in its place) is
// ignored and counted, but left as it is: the error may pass.
func TestLogUnreadableStartIsIgnored(t *testing.T) {
	cfg := testLog(t)
	cfg.SegmentBytes = 4096
	end, segments := multiSegmentLog(t, cfg)
	path := filepath.Join(cfg.Dir, logStartFile)
	require.NoError(t, os.Mkdir(path, 0o700))
	cfg.Stats = new(Stats)
	p := openTestLog(t, cfg, true)
	start, end2, _, segments2 := info(p)
	require.Equal(t, []int64{0, end}, []int64{start, end2})
	require.Equal(t, segments, segments2)
	require.EqualValues(t, 1, cfg.Stats.LogStartResets.Load())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, fi.IsDir(), "left as it is")
}

// Size retention runs as appends grow the log, not only when
// EnforceRetention is called: a burst never takes a partition more than one
// segment past RetentionBytes (whole segments go), and what stays is
// readable from the moved start.
func TestLogRetentionBytesAsAppended(t *testing.T) {
	for name, policy := range map[string]SyncPolicy{"never": SyncNever, "interval": SyncInterval, "always": SyncAlways} {
		t.Run(name, func(t *testing.T) {
			cfg := testLog(t)
			cfg.Sync = policy
			cfg.SegmentBytes = 4096
			cfg.RetentionBytes = 3 * 4096
			cfg.Stats = new(Stats)
			p := openTestLog(t, cfg, false)
			for i := range 600 {
				_, err := p.Append(encode(i, 3, 1000))
				require.NoError(t, err)
				segs := p.Segments()
				var total int64
				for _, s := range segs {
					total += s.Size
				}
				require.LessOrEqual(t, total, cfg.RetentionBytes+cfg.SegmentBytes, "append %d: %v", i, segs)
				if len(segs) > 1 {
					require.Less(t, total-segs[0].Size, cfg.RetentionBytes, "append %d: only what the rule allows stays: %v", i, segs)
				}
			}
			start, end, bytes, _ := info(p)
			require.Positive(t, start)
			require.Equal(t, p.Segments()[0].Base, start)
			require.Equal(t, int64(1800), end)
			require.GreaterOrEqual(t, bytes, cfg.RetentionBytes, "at least RetentionBytes stays")
			require.Positive(t, cfg.Stats.SegmentsDeleted.Load())
			recs := readAll(t, p, start)
			require.Len(t, recs, int(end-start))
			for i, r := range recs {
				require.Equal(t, start+int64(i), r.Offset)
			}
			_, err := p.Read(start-1, 100)
			require.ErrorIs(t, err, errs.ErrOffsetOutOfRange)
			n, err := p.EnforceRetention()
			require.NoError(t, err)
			require.Zero(t, n, "the periodic check finds nothing left to do")
		})
	}
}

// Size retention at a roll never deletes what readers cannot see yet:
// under SyncAlways, records appended but not yet covered by an fsync are
// past the high watermark.
func TestLogRetentionBytesAtRollKeepsUnsynced(t *testing.T) {
	cfg := testLog(t)
	cfg.Sync = SyncAlways
	cfg.SegmentBytes = 4096
	cfg.RetentionBytes = 4096
	p := openTestLog(t, cfg, false)
	// Append as Append does, but without waiting for the fsync that would
	// move the high watermark.
	p.mu.Lock()
	for i := range 300 {
		_, err := p.appendLocked(encode(i, 3, 1000))
		require.NoError(t, err)
	}
	p.mu.Unlock()
	require.Greater(t, p.SegmentCount(), 4)
	require.Zero(t, p.StartOffset(), "nothing below the high watermark to delete")
	require.Zero(t, p.HighWatermark())

	require.NoError(t, p.Sync())
	end := p.HighWatermark()
	require.Equal(t, int64(900), end)
	for i := 0; p.StartOffset() == 0; i++ {
		require.Less(t, i, 100, "no roll deleted anything")
		_, err := p.Append(encode(i, 3, 1000))
		require.NoError(t, err)
	}
	require.Len(t, readAll(t, p, p.StartOffset()), int(p.HighWatermark()-p.StartOffset()))
}

// The log-start file round-trips through its format, and a file of digits
// alone, as written before the checksum, still counts.
func TestLogStartFormat(t *testing.T) {
	for _, v := range []int64{0, 7, 123456789, math.MaxInt64} {
		got, ok := parseLogStart(formatLogStart(v))
		require.True(t, ok)
		require.Equal(t, v, got)
		require.LessOrEqual(t, len(formatLogStart(v)), maxLogStartLen)
	}
	got, ok := parseLogStart([]byte("42"))
	require.True(t, ok)
	require.Equal(t, int64(42), got)
}

// RetentionDue is the instant EnforceRetention first deletes something, by
// the log's clock, and OnRetention and OnUnsynced tell the owner when work
// appears: the owner needs no timer for a log with nothing to do.
func TestLogRetentionDueAndHooks(t *testing.T) {
	cfg := testLog(t)
	start := time.UnixMilli(10_000_000)
	now := start
	cfg.Now = func() time.Time { return now }
	cfg.SegmentBytes = 2048
	cfg.Retention = time.Hour
	cfg.Sync = SyncInterval
	var dues []time.Time
	unsynced := 0
	cfg.OnRetention = func(due time.Time) { dues = append(dues, due) }
	cfg.OnUnsynced = func() { unsynced++ }
	p := openTestLog(t, cfg, false)
	require.True(t, p.RetentionDue().IsZero(), "no records: nothing to age")

	ts := now.Add(-30 * time.Minute).UnixMilli()
	_, err := p.Append(encode(0, 2, ts))
	require.NoError(t, err)
	due := time.UnixMilli(ts + time.Hour.Milliseconds() + 1)
	require.Equal(t, []time.Time{due}, dues, "the first records start the clock")
	require.Equal(t, due, p.RetentionDue())
	require.Equal(t, 1, unsynced)
	_, err = p.Append(encode(1, 2, now.UnixMilli()))
	require.NoError(t, err)
	require.Len(t, dues, 1, "later records change nothing sooner")
	require.Equal(t, 1, unsynced, "still unsynced: no news")
	require.NoError(t, p.Sync())
	_, err = p.Append(encode(2, 2, now.UnixMilli()))
	require.NoError(t, err)
	require.Equal(t, 2, unsynced, "synced, then written again")

	// Just before the deadline nothing goes; at it, the segment does.
	now = due.Add(-time.Millisecond)
	n, err := p.EnforceRetention()
	require.NoError(t, err)
	require.Zero(t, n)
	now = due
	n, err = p.EnforceRetention()
	require.NoError(t, err)
	require.Equal(t, 1, n, "the oldest segment")
	require.Equal(t, start.Add(time.Hour+time.Millisecond), p.RetentionDue(), "the next oldest")
	now = p.RetentionDue()
	_, err = p.EnforceRetention()
	require.NoError(t, err)
	require.Zero(t, p.Info().Bytes, "every segment went, the active one rolled")
	require.True(t, p.RetentionDue().IsZero(), "empty again")

	// DeleteRecords can bring older records to the front.
	for i := range 40 {
		_, err := p.Append(encode(i, 2, now.UnixMilli()-int64(i)*1000))
		require.NoError(t, err)
	}
	require.Greater(t, p.SegmentCount(), 2)
	dues = nil
	_, err = p.DeleteRecords(p.Segments()[1].Base)
	require.NoError(t, err)
	require.Len(t, dues, 1)
	require.Equal(t, p.RetentionDue(), dues[0])
	require.True(t, dues[0].Before(time.UnixMilli(now.UnixMilli()+time.Hour.Milliseconds())), "the second segment's records are older")

	// Size retention left to do is due now, and a change of the limits
	// tells the owner; none configured, never.
	dues = nil
	reconfigure(t, p, func(s *Settings) { s.RetentionBytes = 1 })
	require.Equal(t, now, p.RetentionDue())
	require.Equal(t, []time.Time{now}, dues)
	reconfigure(t, p, func(s *Settings) { s.RetentionBytes, s.Retention = 0, 0 })
	require.True(t, p.RetentionDue().IsZero())
	require.Len(t, dues, 1, "nothing to tell of no deadline")
}
