package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/internal/vfs/errorfs"
)

// Pebble-style fault sweeps: one scenario (open a broker, create a topic
// with tiny segments so that they roll, publish records one by one, read
// them back, close, reopen without faults, read back) runs again and again
// with one fault injected on the i-th matching file-system call, for
// i = 0, 1, 2, ... until a run makes fewer than i+1 matching calls: every
// call site of that operation is failed once.
//
// For every i: nothing panics; a call that fails returns the injected
// errno (wrapped in ErrSyncFailed for a failed fsync of a log); after a
// failed log fsync the partition refuses writes; the faulty broker shows
// exactly the acknowledged records; and after the fault clears, reopening
// succeeds, every acknowledged record is present byte-exact at its offset,
// offsets are contiguous, and anything unacknowledged is only at the tail.

const (
	fsweepRecords = 24
	fsweepSegment = 4096
)

// fsweepValue is the value of the k-th record of the scenario: 150 to
// 850 bytes, so a few fill a segment.
func fsweepValue(k int) []byte {
	return []byte(fmt.Sprintf("rec-%03d|%s", k, strings.Repeat(string(rune('a'+k%26)), 150+(k*277)%700)))
}

type fsweepKind struct {
	name  string
	errno error // what errors.Is must find in a failure
	inj   errorfs.Injector
	sync  SyncPolicy
}

// fsweepSuffix restricts inj to files whose names end in one of suffixes
// (errorfs.OnPath matches anywhere in the path, the temp dir included).
func fsweepSuffix(inj errorfs.Injector, suffixes ...string) errorfs.Injector {
	return errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		for _, s := range suffixes {
			if strings.HasSuffix(path, s) {
				return inj.MaybeError(op, path)
			}
		}
		return nil
	})
}

func fsweepKinds() []fsweepKind {
	var kinds []fsweepKind
	for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
		kinds = append(kinds,
			fsweepKind{"write-ENOSPC", syscall.ENOSPC, errorfs.Ops(syscall.ENOSPC, errorfs.OpWrite), sync},
			fsweepKind{"shortwrite-ENOSPC", syscall.ENOSPC, errorfs.Ops(errorfs.ShortWrite{Err: syscall.ENOSPC}, errorfs.OpWrite), sync},
			fsweepKind{"allocate-ENOSPC", syscall.ENOSPC, errorfs.Ops(syscall.ENOSPC, errorfs.OpAllocate), sync},
			fsweepKind{"truncate-ENOSPC", syscall.ENOSPC, errorfs.Ops(syscall.ENOSPC, errorfs.OpTruncate), sync},
			fsweepKind{"map-ENOMEM", syscall.ENOMEM, errorfs.Ops(syscall.ENOMEM, errorfs.OpMap), sync},
			fsweepKind{"open-indexes-EIO", syscall.EIO, fsweepSuffix(errorfs.Ops(syscall.EIO, errorfs.OpOpen), ".index", ".timeindex"), sync},
		)
	}
	// Only SyncAlways fsyncs logs on the publish path, and directories.
	kinds = append(kinds,
		fsweepKind{"sync-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpSync), SyncAlways},
		fsweepKind{"syncdir-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpSyncDir), SyncAlways},
		fsweepKind{"mkdir-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpMkdir), SyncAlways},
		fsweepKind{"rename-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpRename), SyncAlways},
		fsweepKind{"remove-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpRemove), SyncAlways},
		fsweepKind{"lock-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpLock), SyncAlways},
		fsweepKind{"read-EIO", syscall.EIO, errorfs.Ops(syscall.EIO, errorfs.OpRead), SyncAlways},
	)
	return kinds
}

func TestFaultSweep(t *testing.T) {
	for _, kind := range fsweepKinds() {
		t.Run(kind.name+"/"+kind.sync.String(), func(t *testing.T) {
			t.Parallel()
			var injected, surfaced int
			start := time.Now()
			for i := 0; ; i++ {
				require.Less(t, i, 5000, "the sweep does not end")
				res := fsweepRun(t, kind, i)
				if t.Failed() {
					t.Logf("failed with the fault on matching call %d (%s)", i, res.where)
					return
				}
				if res.calls <= i {
					break // the i-th call never came: every call site was failed once
				}
				injected++
				if res.surfaced {
					surfaced++
				}
			}
			t.Logf("%s under %v: %d faults injected (%d surfaced as errors, %d absorbed) in %v",
				kind.name, kind.sync, injected, surfaced, injected-surfaced, time.Since(start).Round(time.Millisecond))
		})
	}
}

type fsweepResult struct {
	calls    int    // matching calls the faulty broker made
	surfaced bool   // an API call returned the fault
	where    string // the injected call: op, file, and what the test was doing
}

// fsweepInjector wraps the sweep's counter and notes when it fires.
type fsweepInjector struct {
	counter *errorfs.Counter
	mu      sync.Mutex
	fired   string // "op path" of the injected fault
	step    string // what the test is doing
}

func (f *fsweepInjector) MaybeError(op errorfs.Op, path string) error {
	err := f.counter.MaybeError(op, path)
	if err != nil {
		f.mu.Lock()
		f.fired = fmt.Sprintf("%s %s during %s", op, filepath.Base(path), f.step)
		f.mu.Unlock()
	}
	return err
}

func (f *fsweepInjector) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

func (f *fsweepInjector) setStep(s string) {
	f.mu.Lock()
	f.step = s
	f.mu.Unlock()
}

// fsweepRun runs the scenario with the fault on the i-th matching call.
func fsweepRun(t *testing.T, kind fsweepKind, i int) (res fsweepResult) {
	dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
	inj := &fsweepInjector{counter: errorfs.OnIndex(i, kind.inj)}
	var b *Broker
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("fault %d: panic: %v (fault: %s)\n%s", i, p, inj.state(), debug.Stack())
		}
		if b != nil {
			b.Close()
		}
		res.calls = inj.counter.Calls()
		res.where = inj.state()
	}()
	ctx := context.Background()
	logSyncFailed := false
	// call runs one API call and judges its error: only the injected fault
	// may fail it, or later the sticky ErrSyncFailed a failed log fsync
	// leaves behind. Every other fault is spent once it has been returned.
	call := func(what string, fn func() error) bool {
		inj.setStep(what)
		before := inj.state()
		err := fn()
		if err == nil {
			return true
		}
		fired := inj.state()
		switch {
		case fired == "":
			t.Errorf("fault %d: %s failed with no fault injected: %v", i, what, err)
		case !errors.Is(err, kind.errno):
			t.Errorf("fault %d: %s: %v, want %v (fault: %s)", i, what, err, kind.errno, fired)
		case before != "" && !errors.Is(err, ErrSyncFailed):
			t.Errorf("fault %d: %s: %v: the one-shot fault (%s) was spent, yet the call failed", i, what, err, fired)
		case strings.Contains(fired, ".log during Publish") && kind.errno == syscall.EIO && !errors.Is(err, ErrSyncFailed):
			// The contract: a failed fsync stops writes to the partition
			// for good, with ErrSyncFailed.
			t.Errorf("fault %d: %s: %v, want ErrSyncFailed after a failed fsync of a log (fault: %s)", i, what, err, fired)
		}
		if errors.Is(err, ErrSyncFailed) {
			logSyncFailed = true
		}
		res.surfaced = true
		return false
	}
	opts := &Options{Sync: kind.sync, fs: errorfs.Wrap(nil, inj)}

	// Open and CreateTopic: a failure is retried once (the fault is spent).
	if !call("Open", func() (err error) { b, err = Open(dir, opts); return err }) {
		var err error
		if b, err = Open(dir, opts); !assert.NoError(t, err) {
			return res
		}
	}
	cfg := TopicConfig{SegmentBytes: fsweepSegment}
	if !call("CreateTopic", func() error { return b.CreateTopic("t", cfg) }) {
		if !assert.NoError(t, b.CreateTopic("t", cfg)) {
			return res
		}
	}
	// A topic made and deleted: whatever fails, once DeleteTopic has run
	// the topic is gone, now and after a reopen. A failed fsync of its log
	// stops writes to it alone.
	failedBefore := logSyncFailed
	if !call("CreateTopic gone", func() error { return b.CreateTopic("gone", TopicConfig{Partitions: 2}) }) {
		if !assert.NoError(t, b.CreateTopic("gone", TopicConfig{Partitions: 2})) {
			return res
		}
	}
	call("Publish gone", func() error { return b.Publish(ctx, &Record{Topic: "gone", Value: []byte("x")}) })
	call("DeleteTopic gone", func() error { return b.DeleteTopic("gone") })
	logSyncFailed = failedBefore
	if !assert.Equal(t, []string{"t"}, b.Topics(), "fault %d: after DeleteTopic (fault: %s)", i, inj.state()) {
		return res
	}

	var acked [][]byte // acked[o] is the value at offset o
	var failed [][]byte
	for k := 0; k < fsweepRecords; k++ {
		rec := &Record{Topic: "t", Value: fsweepValue(k)}
		wasFailed := logSyncFailed
		var err error
		if !call(fmt.Sprintf("Publish %d", k), func() error { err = b.Publish(ctx, rec); return err }) {
			if wasFailed && !errors.Is(err, ErrSyncFailed) {
				t.Errorf("fault %d: publish %d after a failed log fsync: %v, want ErrSyncFailed", i, k, err)
			}
			if t.Failed() {
				return res
			}
			failed = append(failed, rec.Value)
			continue
		}
		if wasFailed {
			t.Errorf("fault %d: publish %d succeeded after a failed log fsync", i, k)
		}
		if rec.Offset != int64(len(acked)) {
			t.Errorf("fault %d: publish %d acknowledged at offset %d, want %d (fault: %s)", i, k, rec.Offset, len(acked), inj.state())
			return res
		}
		acked = append(acked, rec.Value)
	}

	// The faulty broker shows exactly what it acknowledged.
	var got [][]byte
	if call("read", func() (err error) { got, err = fsweepRead(b, "t"); return err }) {
		fsweepSame(t, i, "read before close", got, acked, nil, inj.state())
	}
	call("Close", b.Close)
	b = nil
	if t.Failed() {
		return res
	}

	// The fault has cleared: reopen, read back, write on.
	b, err := Open(dir, &Options{Sync: kind.sync})
	if !assert.NoError(t, err) {
		t.Logf("fault %d: reopen failed (fault: %s)", i, inj.state())
		return res
	}
	got, err = fsweepRead(b, "t")
	if !assert.NoError(t, err) {
		t.Logf("fault %d: read after reopen failed (fault: %s)", i, inj.state())
		return res
	}
	fsweepSame(t, i, "read after reopen", got, acked, failed, inj.state())
	assert.Equal(t, []string{"t"}, b.Topics(), "fault %d: after reopen (fault: %s)", i, inj.state())
	rec := &Record{Topic: "t", Value: []byte("after")}
	if err := b.Publish(ctx, rec); err != nil || rec.Offset != int64(len(got)) {
		t.Errorf("fault %d: publish after reopen: offset %d, %v; want offset %d (fault: %s)", i, rec.Offset, err, len(got), inj.state())
	}
	return res
}

// fsweepRead reads a partition from its start and checks that offsets are
// contiguous from 0.
func fsweepRead(b *Broker, topic string) ([][]byte, error) {
	r, err := b.NewReader(topic, 0, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out [][]byte
	for rec, err := range r.All(context.Background()) {
		if err != nil {
			return out, err
		}
		if rec.Offset != int64(len(out)) {
			return out, fmt.Errorf("offset %d where %d was due: offsets not contiguous", rec.Offset, len(out))
		}
		out = append(out, append([]byte(nil), rec.Value...))
	}
	return out, nil
}

// fsweepSame checks got against the acknowledged values: all of them,
// byte-exact, at their offsets, then (only if tail is given) values of
// failed publishes, in the order they were tried.
func fsweepSame(t *testing.T, i int, what string, got, acked, tail [][]byte, fault string) {
	t.Helper()
	if len(got) < len(acked) {
		t.Errorf("fault %d: %s: %d records, %d were acknowledged (fault: %s)", i, what, len(got), len(acked), fault)
		return
	}
	for o, v := range acked {
		if string(got[o]) != string(v) {
			t.Errorf("fault %d: %s: offset %d is %.20q, acknowledged %.20q (fault: %s)", i, what, o, got[o], v, fault)
			return
		}
	}
	extra := got[len(acked):]
	if len(extra) > 0 && tail == nil {
		t.Errorf("fault %d: %s: %d unacknowledged records visible (fault: %s)", i, what, len(extra), fault)
		return
	}
	j := 0
	for _, v := range extra {
		for j < len(tail) && string(tail[j]) != string(v) {
			j++
		}
		if j == len(tail) {
			t.Errorf("fault %d: %s: unexpected record %.20q after the acknowledged ones (fault: %s)", i, what, v, fault)
			return
		}
		j++
	}
}

// TestFaultSweepRecovery sweeps faults through recovery: a broker that
// published records and then crashed (files left untrimmed, no clean
// shutdown mark) is reopened with the i-th matching call failing. Open
// may fail, with the injected errno only; whatever happens, once the fault
// clears every record is there, in order, byte-exact. Recovery must never
// cut good records because of an I/O error.
func TestFaultSweepRecovery(t *testing.T) {
	templates := map[SyncPolicy]string{}
	for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
		dir := filepath.Join(t.TempDir(), "template")
		b, err := Open(dir, &Options{Sync: sync})
		require.NoError(t, err)
		require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: fsweepSegment}))
		for k := 0; k < fsweepRecords; k++ {
			require.NoError(t, b.Publish(context.Background(), &Record{Topic: "t", Value: fsweepValue(k)}))
		}
		crash(t, b)
		templates[sync] = dir
	}
	var want [][]byte
	for k := 0; k < fsweepRecords; k++ {
		want = append(want, fsweepValue(k))
	}
	for _, kind := range fsweepKinds() {
		t.Run(kind.name+"/"+kind.sync.String(), func(t *testing.T) {
			t.Parallel()
			injected, surfaced := 0, 0
			for i := 0; ; i++ {
				require.Less(t, i, 5000, "the sweep does not end")
				dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
				fsweepCopyDir(t, templates[kind.sync], dir)
				inj := &fsweepInjector{counter: errorfs.OnIndex(i, kind.inj), step: "recovery"}
				opts := &Options{Sync: kind.sync, fs: errorfs.Wrap(nil, inj)}
				acked := slices.Clone(want)
				var failed [][]byte
				// judge accepts an error only if it is the injected fault,
				// returned once (or the sticky ErrSyncFailed after it).
				spent := false
				judge := func(what string, err error) bool {
					if err == nil {
						return true
					}
					surfaced++
					switch {
					case inj.state() == "":
						t.Errorf("fault %d: %s failed with no fault injected: %v", i, what, err)
					case !errors.Is(err, kind.errno):
						t.Errorf("fault %d: %s: %v, want %v (fault: %s)", i, what, err, kind.errno, inj.state())
					case spent && !errors.Is(err, ErrSyncFailed):
						t.Errorf("fault %d: %s: %v: the one-shot fault (%s) was spent, yet the call failed", i, what, err, inj.state())
					}
					spent = true
					return false
				}
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Errorf("fault %d: panic: %v (fault: %s)\n%s", i, p, inj.state(), debug.Stack())
						}
					}()
					b, err := Open(dir, opts)
					if !judge("Open", err) {
						return
					}
					defer b.Close()
					inj.setStep("read")
					got, err := fsweepRead(b, "t")
					if judge("read", err) {
						fsweepSame(t, i, "read during the faulty run", got, want, nil, inj.state())
					}
					for n := 0; n < 2; n++ {
						inj.setStep(fmt.Sprintf("Publish after recovery %d", n))
						v := []byte(fmt.Sprintf("after-%d", n))
						r := &Record{Topic: "t", Value: v}
						if judge(string(v), b.Publish(context.Background(), r)) {
							if r.Offset != int64(len(acked)) {
								t.Errorf("fault %d: %s at offset %d, want %d", i, v, r.Offset, len(acked))
							}
							acked = append(acked, v)
						} else {
							failed = append(failed, v)
						}
					}
					inj.setStep("Close")
					judge("Close", b.Close())
				}()
				if t.Failed() {
					t.Logf("failed with the fault on matching call %d (%s)", i, inj.state())
					return
				}
				b, err := Open(dir, &Options{Sync: kind.sync})
				require.NoError(t, err, "fault %d: reopen (fault: %s)", i, inj.state())
				got, err := fsweepRead(b, "t")
				require.NoError(t, err, "fault %d (fault: %s)", i, inj.state())
				fsweepSame(t, i, "read after reopen", got, acked, failed, inj.state())
				assert.Equal(t, []string{"t"}, b.Topics(), "fault %d: after reopen (fault: %s)", i, inj.state())
				require.NoError(t, b.Close())
				if t.Failed() {
					t.Logf("failed with the fault on matching call %d (%s)", i, inj.state())
					return
				}
				if inj.counter.Calls() <= i {
					break
				}
				injected++
			}
			t.Logf("recovery, %s under %v: %d faults injected (%d calls returned them)", kind.name, kind.sync, injected, surfaced)
		})
	}
}

// fsweepCopyDir copies a data directory tree.
func fsweepCopyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o600)
	})
	require.NoError(t, err)
}

// fsEvents records the directory operations a broker makes.
type fsEvents struct {
	mu     sync.Mutex
	events []string
}

func (e *fsEvents) MaybeError(op errorfs.Op, path string) error {
	switch op {
	case errorfs.OpMkdir, errorfs.OpSyncDir, errorfs.OpRename, errorfs.OpRemove:
		e.mu.Lock()
		e.events = append(e.events, string(op)+" "+path)
		e.mu.Unlock()
	}
	return nil
}

func (e *fsEvents) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.events
	e.events = nil
	return out
}

// A topic directory's entry is durable before the topic is: creating one
// syncs its parent (and a new data directory syncs DIR for topics/), and
// deleting one syncs the parent after the rename that takes it away. Under
// SyncNever nothing is synced.
func TestTopicDirectoriesAreSynced(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncInterval, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			ev := &fsEvents{}
			b, err := Open(dir, &Options{Sync: policy, fs: errorfs.Wrap(nil, ev)})
			require.NoError(t, err)
			defer b.Close()
			topics := filepath.Join(dir, topicsDir)
			synced := func(events []string, after, dir string) bool {
				i := slices.Index(events, after)
				return i >= 0 && slices.Contains(events[i+1:], "syncdir "+dir)
			}
			open := ev.take()
			require.NoError(t, b.CreateTopic("t", TopicConfig{Partitions: 2}))
			create := ev.take()
			require.NoError(t, b.DeleteTopic("t"))
			del := ev.take()
			var renamed string
			for _, e := range del {
				if strings.HasPrefix(e, "rename ") {
					renamed = e
				}
			}
			require.Equal(t, "rename "+filepath.Join(topics, "t"), renamed, "%v", del)
			if policy == SyncNever {
				for _, e := range slices.Concat(open, create, del) {
					require.False(t, strings.HasPrefix(e, "syncdir"), "%v", e)
				}
				return
			}
			require.True(t, synced(open, "mkdir "+topics, dir), "%v", open)
			require.True(t, synced(create, "mkdir "+filepath.Join(topics, "t", "0"), filepath.Join(topics, "t")), "%v", create)
			require.True(t, synced(create, "mkdir "+filepath.Join(topics, "t", "1"), topics), "%v", create)
			require.True(t, synced(del, renamed, topics), "%v", del)
		})
	}
}

// The topic directory's entry is as durable as the catalog's record of the
// topic, whatever the topic's own SyncPolicy.
func TestTopicDirectorySyncFollowsTheCatalog(t *testing.T) {
	ev := &fsEvents{}
	dir := t.TempDir()
	b := openBroker(t, dir, &Options{Sync: SyncInterval, fs: errorfs.Wrap(nil, ev)})
	require.NoError(t, b.CreateTopic("t", TopicConfig{Sync: SyncNever}))
	require.Contains(t, ev.take(), "syncdir "+filepath.Join(dir, topicsDir))
	require.NoError(t, b.DeleteTopic("t"))
	require.Contains(t, ev.take(), "syncdir "+filepath.Join(dir, topicsDir))
}
