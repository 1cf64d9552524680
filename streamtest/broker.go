package streamtest

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// SegmentBytes is the segment size streamtest gives topics it creates (with
// WithTopic, CreateTopic, or auto-creation on a broker from NewBroker) when
// their TopicConfig leaves SegmentBytes zero. Segment files are preallocated
// in steps of at least 64 KiB, so a small segment keeps a test's directory
// small; it also makes tests of retention and segment rolls cheap.
const SegmentBytes = 1 << 20

// An Option configures NewBroker.
type Option func(*config)

type config struct {
	opts   stream.Options
	dir    string
	topics []namedTopic
}

type namedTopic struct {
	name string
	cfg  stream.TopicConfig
}

// WithOptions opens the broker with opts instead of the defaults. Fields
// left zero still take streamtest's defaults where it has one (Sync:
// SyncNever, DefaultTopic.SegmentBytes: SegmentBytes, Logger: the test's
// output at Warn level), and the package stream defaults otherwise. Set
// Sync to SyncInterval or SyncAlways explicitly to test those policies.
func WithOptions(opts *stream.Options) Option {
	return func(c *config) {
		if opts != nil {
			c.opts = *opts
		}
	}
}

// WithTopic creates a topic when the broker opens. Zero fields of cfg take
// their defaults, except SegmentBytes, which defaults to SegmentBytes.
// Repeat the option for more topics.
func WithTopic(name string, cfg stream.TopicConfig) Option {
	return func(c *config) { c.topics = append(c.topics, namedTopic{name, cfg}) }
}

// WithDir opens the broker in dir instead of a new t.TempDir(): to reopen a
// directory a previous broker of the test left, or to open a prepared
// fixture (with stream.Options.ReadOnly, through WithOptions, to leave it
// unchanged). streamtest never deletes dir.
func WithDir(dir string) Option {
	return func(c *config) { c.dir = dir }
}

// opened is what streamtest remembers about a broker it opened, so that
// Reopen, Crash and CheckLeaks can find its directory and its test.
type opened struct {
	t    testing.TB
	dir  string
	opts stream.Options
}

var (
	registryMu sync.Mutex
	registry   = map[*stream.Broker]opened{}
)

func register(b *stream.Broker, o opened) {
	registryMu.Lock()
	registry[b] = o
	registryMu.Unlock()
}

func unregister(b *stream.Broker) {
	registryMu.Lock()
	delete(registry, b)
	registryMu.Unlock()
}

func lookup(b *stream.Broker) (opened, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	o, ok := registry[b]
	return o, ok
}

// brokersOf returns the brokers streamtest opened for t that are still
// registered (not yet closed by their cleanup).
func brokersOf(t testing.TB) []*stream.Broker {
	registryMu.Lock()
	defer registryMu.Unlock()
	var out []*stream.Broker
	for b, o := range registry {
		if o.t == t {
			out = append(out, b)
		}
	}
	return out
}

// NewBroker opens a broker for a test: in a fresh t.TempDir() (see
// WithDir), with the test defaults below, and with the topics of any
// WithTopic options created. t.Cleanup closes it and fails the test if
// Close returns an error.
//
// The defaults favour speed over durability, as suits a test: Sync is
// SyncNever (no fsync of any file or directory, meta.db included), topics
// created through streamtest get SegmentBytes segments, and the broker logs
// recovery and failure messages (Warn and above) to the test's output. A
// broker's whole life (open, create a topic, publish, read, close) costs
// about half a millisecond on a small machine, most of it the kernel
// creating its files and directories rather than waiting for the disk.
//
// Code that opens brokers outside a test (a benchmark's main, a fixture
// generator), where importing streamtest would link package testing in,
// gets the same broker with
//
//	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncNever,
//		DefaultTopic: stream.TopicConfig{SegmentBytes: 1 << 20}})
//
// and topics created with SegmentBytes: 1 << 20 (DefaultTopic configures
// only auto-created topics).
//
// NewBroker works inside a testing/synctest bubble, and should be called
// there (not outside) when the test runs in one: the broker's goroutines and
// timers then belong to the bubble and run on its virtual clock, and the
// cleanup closes the broker before the bubble ends.
func NewBroker(t testing.TB, opts ...Option) *stream.Broker {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.dir == "" {
		c.dir = t.TempDir()
	}
	o := testOptions(t, c.opts)
	b, err := stream.Open(c.dir, &o)
	require.NoError(t, err, "streamtest.NewBroker: open %s", c.dir)
	track(t, b, c.dir, o)
	for _, tp := range c.topics {
		CreateTopic(t, b, tp.name, tp.cfg)
	}
	return b
}

// track registers b and closes it when t ends.
func track(t testing.TB, b *stream.Broker, dir string, o stream.Options) {
	register(b, opened{t: t, dir: dir, opts: o})
	t.Cleanup(func() {
		defer unregister(b)
		if err := b.Close(); err != nil {
			t.Errorf("streamtest: closing the broker in %s: %v", dir, err)
		}
	})
}

// testOptions fills in streamtest's defaults.
func testOptions(t testing.TB, o stream.Options) stream.Options {
	if o.Sync == stream.SyncDefault {
		o.Sync = stream.SyncNever
	}
	if o.DefaultTopic.SegmentBytes == 0 {
		o.DefaultTopic.SegmentBytes = SegmentBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return o
}

// TopicConfig returns cfg with streamtest's topic defaults applied: a zero
// SegmentBytes becomes SegmentBytes. Other zero fields keep their package
// stream defaults.
func TopicConfig(cfg stream.TopicConfig) stream.TopicConfig {
	if cfg.SegmentBytes == 0 {
		cfg.SegmentBytes = SegmentBytes
	}
	return cfg
}

// CreateTopic creates a topic with TopicConfig(cfg), failing the test on
// error.
func CreateTopic(t testing.TB, b *stream.Broker, name string, cfg stream.TopicConfig) {
	t.Helper()
	require.NoError(t, b.CreateTopic(name, TopicConfig(cfg)), "streamtest.CreateTopic(%q)", name)
}

// Dir returns the data directory of a broker that NewBroker, Reopen or
// Crash opened. It fails the test for any other broker.
func Dir(t testing.TB, b *stream.Broker) string {
	t.Helper()
	o, ok := lookup(b)
	if !ok {
		t.Fatalf("streamtest.Dir: the broker was not opened by streamtest (or is closed)")
	}
	return o.dir
}

// Reopen simulates a clean restart of the application: it closes b (as
// the application would on shutdown, flushing producers and leaving
// consumer groups) and opens its directory again with the same options.
// The new broker is closed by t.Cleanup. b must come from NewBroker, Reopen
// or Crash.
func Reopen(t testing.TB, b *stream.Broker) *stream.Broker {
	t.Helper()
	o, ok := lookup(b)
	if !ok {
		t.Fatalf("streamtest.Reopen: the broker was not opened by streamtest (or is closed)")
	}
	require.NoError(t, b.Close(), "streamtest.Reopen: close")
	unregister(b)
	nb, err := stream.Open(o.dir, &o.opts)
	require.NoError(t, err, "streamtest.Reopen: open %s", o.dir)
	track(t, nb, o.dir, o.opts)
	return nb
}

// Crash simulates the application process dying (kill -9, a panic, an OOM
// kill) while b is in use, and its restart. It returns a broker opened on
// what the crash left, and closes b.
//
// What it does: it copies b's directory, file by file, while b is still
// open, into a new t.TempDir(); then it closes b (so code still holding b
// gets stream.ErrClosed, as it would not outlive its process) and opens the
// copy with b's options. The copy is what a process crash leaves on disk:
// every record appended before the copy (appended records sit in the
// kernel's page cache, which survives the process), the committed offsets
// and topics in meta.db as of their last transaction, preallocated
// zero-filled segment tails, and no clean-shutdown mark. Opening it
// therefore runs the broker's crash recovery (segment scans, index checks,
// zero-tail trimming), which is what a test of restart behaviour wants to
// exercise. meta.db is copied before the segments, so the copy never has a
// commit beyond the records it holds, as in a real crash. Writes that run
// concurrently with Crash may be caught half-way (a torn batch at a log's
// tail, which recovery cuts), also as in a real crash.
//
// What it does not simulate: a crash of the machine or the kernel, which
// would also lose what the kernel had not yet written to the device (all
// unsynced data under SyncNever, the last interval under SyncInterval). No
// public API can drop the page cache; for that, see the package stream
// durability tests. b's original directory is left as a clean shutdown
// leaves it and is not looked at again.
//
// b must come from NewBroker, Reopen or Crash. The new broker is closed by
// t.Cleanup.
func Crash(t testing.TB, b *stream.Broker) *stream.Broker {
	t.Helper()
	o, ok := lookup(b)
	if !ok {
		t.Fatalf("streamtest.Crash: the broker was not opened by streamtest (or is closed)")
	}
	dst := t.TempDir()
	require.NoError(t, copyDataDir(o.dir, dst), "streamtest.Crash: copy %s", o.dir)
	require.NoError(t, b.Close(), "streamtest.Crash: close the crashed broker")
	unregister(b)
	nb, err := stream.Open(dst, &o.opts)
	require.NoError(t, err, "streamtest.Crash: open the copy %s", dst)
	track(t, nb, dst, o.opts)
	return nb
}

// copyDataDir copies a broker directory that may be in use: meta.db first,
// then everything else. Files and directories that vanish meanwhile (a topic
// deleted, a segment removed by retention) are skipped.
func copyDataDir(src, dst string) error {
	const meta = "meta.db"
	if err := copyFile(filepath.Join(src, meta), filepath.Join(dst, meta)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case rel == meta:
			return nil
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			if err := copyFile(path, target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
