package stream

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// openUnder counts the process's file descriptors and memory mappings on
// files under dir (readlink of /proc/self/fd, /proc/self/maps).
func openUnder(t *testing.T, dir string) (fds, maps int) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(target, dir) {
			fds++
		}
	}
	data, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, dir); i >= 0 {
			maps++
		}
	}
	return fds, maps
}

// residentLimits checks that files under dir/topics stay within what
// bound segments hold, plus those in use right now (inUse: goroutines
// reading or writing, each of which may hold one segment past the bound
// and a view of another).
//
// views counts the views readers hold besides: a consumer's records alias
// the segments of every partition its last Poll returned records from.
func residentLimits(t *testing.T, b *Broker, dir string, bound, inUse, views int) {
	t.Helper()
	fds, maps := openUnder(t, filepath.Join(dir, topicsDir))
	open := b.Stats().OpenSegments
	require.LessOrEqual(t, open, bound+inUse)
	require.LessOrEqual(t, fds, bound+inUse, "descriptors")
	if maps > 3*(bound+inUse)+views {
		data, _ := os.ReadFile("/proc/self/maps")
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, dir) {
				t.Log(line[strings.Index(line, dir)+len(dir):])
			}
		}
	}
	require.LessOrEqual(t, maps, 3*(bound+inUse)+views, "mappings (%d segments resident)", open)
}

// With a bound of 8 segments, 200 partitions (several segments each, two
// compacted topics) are written, read by concurrent readers, consumed by a
// group, trimmed and compacted in turn: every record is read back, the
// descriptors and mappings under the directory stay within the bound, and
// a restart and a crash after many evictions lose nothing.
func TestResidentBound(t *testing.T) {
	const (
		bound   = 8
		topics  = 10
		parts   = 20
		readers = 3
	)
	perPart := 60 // about three 4 KiB segments a partition
	if os.Getenv("EMBEDSTREAM_SCALE") != "" {
		perPart = 400
	}
	dir := t.TempDir()
	opts := &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}, MaxOpenSegments: bound, DisableCleaner: true}
	b := openBroker(t, dir, opts)
	name := func(i int) string { return fmt.Sprintf("t%02d", i) }
	compacted := func(i int) bool { return i >= topics-2 }
	for i := range topics {
		cfg := TopicConfig{Partitions: parts, SegmentBytes: 4 << 10}
		if compacted(i) {
			cfg.Cleanup = CleanupCompact
		}
		require.NoError(t, b.CreateTopic(name(i), cfg))
	}
	fds, maps := openUnder(t, filepath.Join(dir, topicsDir))
	require.Zero(t, fds, "new partitions hold no descriptor")
	require.Zero(t, maps)

	value := func(topic string, p, i int) string {
		return fmt.Sprintf("%s/%d/%d/%s", topic, p, i, strings.Repeat("v", 40+i%50))
	}
	key := func(topic string, i int) []byte {
		if topic >= name(topics-2) {
			return []byte(fmt.Sprint(i % 7))
		}
		return nil
	}
	publish := func(from, to, inUse int) {
		for i := from; i < to; i++ {
			for ti := range topics {
				for p := range parts {
					require.NoError(t, b.Publish(t.Context(), &Record{Topic: name(ti), Partition: int32(p), Key: key(name(ti), i), Value: []byte(value(name(ti), p, i))}))
				}
			}
			if i%10 == 0 {
				residentLimits(t, b, dir, bound, inUse, inUse)
			}
		}
	}
	// want is what a partition holds: every record, or for a compacted
	// topic after Compact, the last of each key (checked apart).
	check := func(b *Broker, ti, p, n, start int) {
		got := values(t, b, name(ti), int32(p))
		want := make([]string, 0, n)
		for i := start; i < n; i++ {
			want = append(want, value(name(ti), p, i))
		}
		require.Equal(t, want, got, "%s/%d", name(ti), p)
	}

	// Half the records, then the rest while readers go round every
	// partition from the start.
	publish(0, perPart/2, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, readers)
	for g := range readers {
		wg.Go(func() {
			for round := 0; ; round++ {
				for k := range topics * parts {
					select {
					case <-stop:
						return
					default:
					}
					ti, p := (k+g*37)%topics, (k/topics+g)%parts
					r, err := b.NewReader(name(ti), int32(p), OffsetEarliest, &ReaderOptions{StopAtEnd: true})
					if err != nil {
						errs <- err
						return
					}
					i := 0
					for rec, err := range r.All(ctx) {
						if err == nil && string(rec.Value) != value(name(ti), p, i) {
							err = fmt.Errorf("%s/%d offset %d: %q", name(ti), p, i, rec.Value)
						}
						if err != nil {
							r.Close()
							errs <- err
							return
						}
						i++
					}
					r.Close()
				}
			}
		})
	}
	publish(perPart/2, perPart, 1+readers)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	residentLimits(t, b, dir, bound, 1, 1)
	for ti := range topics - 2 {
		for p := range parts {
			check(b, ti, p, perPart, 0)
		}
	}

	// A group consumes every partition.
	c, err := b.Subscribe("g", []string{name(0), name(1), name(2)}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	seen := map[string]bool{}
	for len(seen) < 3*parts*perPart {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		for _, r := range recs {
			require.Equal(t, value(r.Topic, int(r.Partition), int(r.Offset)), string(r.Value))
			seen[string(r.Value)] = true
		}
		residentLimits(t, b, dir, bound, 1, len(c.Assignment()))
	}
	require.NoError(t, c.Commit(ctx))
	require.NoError(t, c.Close())

	// Trim every partition of one topic, compact the compacted ones.
	trimmed := perPart / 3
	for p := range parts {
		_, err := b.DeleteRecords(name(3), int32(p), int64(trimmed))
		require.NoError(t, err)
	}
	for ti := topics - 2; ti < topics; ti++ {
		require.NoError(t, b.Compact(ctx, name(ti)))
	}
	residentLimits(t, b, dir, bound, 1, 1)
	latest := func(b *Broker, ti, p int) {
		got := values(t, b, name(ti), int32(p))
		last := map[string]string{}
		for i := range perPart {
			last[string(key(name(ti), i))] = value(name(ti), p, i)
		}
		for _, v := range got {
			delete(last, string(key(name(ti), indexOf(t, v))))
		}
		require.Empty(t, last, "%s/%d: a key lost its latest value", name(ti), p)
	}
	verify := func(b *Broker) {
		for ti := range topics {
			for p := range parts {
				switch {
				case ti == 3:
					check(b, ti, p, perPart, trimmed)
				case compacted(ti):
					latest(b, ti, p)
				default:
					check(b, ti, p, perPart, 0)
				}
			}
		}
		residentLimits(t, b, dir, bound, 1, 1)
	}
	verify(b)
	st := b.Stats()
	require.Positive(t, st.SegmentReleases)
	require.LessOrEqual(t, st.OpenSegments, bound+1)

	// Restart after many evictions, then crash: nothing lost.
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Publish(t.Context(), &Record{Topic: name(0), Value: []byte("x")}), ErrClosed)
	fds, maps = openUnder(t, filepath.Join(dir, topicsDir))
	require.Zero(t, fds+maps, "Close gives everything back")
	b = openBroker(t, dir, opts)
	fds, maps = openUnder(t, filepath.Join(dir, topicsDir))
	require.Zero(t, fds+maps, "Open holds nothing")
	verify(b)
	publish(perPart, perPart+5, 1)
	crash(t, b)
	b = openBroker(t, dir, opts)
	require.Zero(t, b.Stats().Truncations, "SyncNever, but the process crashed, not the machine")
	perPart += 5
	verify(b)
}

// indexOf is the record index in a value made by TestResidentBound.
func indexOf(t *testing.T, v string) int {
	var topic string
	var p, i int
	_, err := fmt.Sscanf(strings.ReplaceAll(v, "/", " "), "%s %d %d", &topic, &p, &i)
	require.NoError(t, err)
	return i
}

func TestMaxOpenSegmentsOption(t *testing.T) {
	_, err := Open(t.TempDir(), &Options{MaxOpenSegments: -1})
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.GreaterOrEqual(t, defaultMaxOpenSegments(), minOpenSegments)
}
