package stream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/groups"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/internal/resident"
	"github.com/embedstream/stream/internal/signal"
	"github.com/embedstream/stream/internal/vfs"
)

// Options configure a Broker. The zero value (or nil) gives the defaults.
type Options struct {
	// Sync is the durability policy (Kafka leaves flushing to the OS; see
	// SyncPolicy). Default SyncInterval.
	Sync SyncPolicy
	// SyncInterval is how often SyncInterval fsyncs written partitions
	// (like Kafka's log.flush.interval.ms). Default 1s.
	SyncInterval time.Duration
	// AutoCreateTopics makes Publish to an unknown topic create it with
	// DefaultTopic (auto.create.topics.enable). Default off.
	AutoCreateTopics bool
	// DefaultTopic is the config of auto-created topics.
	DefaultTopic TopicConfig
	// ReadOnly opens a directory that no writer holds (a copy, or a stopped
	// application's) without changing a byte of it: damage is skipped in
	// memory, and every write returns ErrReadOnly. It takes a shared lock:
	// while it is open no writer can open the directory. For a running
	// application's directory, use Follow.
	ReadOnly bool
	// Follow opens a directory that another Broker, in this process or
	// another, may own and write while this one reads it: a live
	// application's. It implies ReadOnly (every write returns ErrReadOnly)
	// and goes further: Open takes no lock at all and creates or changes
	// nothing in the directory, so a follower never blocks, fails or slows
	// the owner's Open, and the owner may start, stop, crash and recover
	// while followers stay open.
	//
	// A follower sees the topics, partitions, offsets and records the
	// files hold: every FollowInterval (and at Refresh) it takes in the
	// owner's appends, rolls, retention, DeleteRecords, created, deleted
	// and grown topics, waking Readers and Consumers waiting at the end as
	// the owner's appends do. Topic configs and committed offsets come from
	// copies of meta.db (never opened: its lock would block the owner),
	// read again when it changed, at most every FollowInterval; when no
	// consistent copy can be read, calls that need them fail with
	// ErrMetadataUnavailable.
	//
	// What a follower cannot know: records still in a Producer's linger
	// buffer, or being written (it sees only whole batches on disk, up to
	// a FollowInterval late); consumer groups' live members, which live in
	// the owner's memory (GroupInfo.Last shows each group's last completed
	// generation as meta.db holds it; a follower's own Subscribe joins a
	// group of its own process, whose commits fail with ErrReadOnly);
	// commits, generations and topic configs (AlterTopic) newer than its
	// last copy of meta.db. Under
	// SyncAlways it sees records as soon as they are written, before they
	// are durable and before the owner's readers see them. See the package
	// doc's "Following a live directory".
	//
	// Cost: a follower keeps the indexes of the segments it has read on
	// the heap (about 0.5% of those segments' bytes), where the owner maps
	// them, so that an index the owner rewrites can never fault it; and it
	// copies meta.db whole each time the owner commits to it, at most every
	// FollowInterval.
	Follow bool
	// FollowInterval is how often a follower (Follow) looks at the files
	// for changes: the delay before an append reaches its readers. Each
	// look costs about two stat calls per partition (more when segments
	// rolled or were deleted) and a read of meta.db's two meta pages.
	// Default 100ms.
	FollowInterval time.Duration
	// Partitioner places every record Broker.Publish and Client publish
	// (partitioner.class). Default HashPartitioner{}: by key, keyless
	// records stickily. Record.Partition is honoured only with
	// ManualPartitioner{}. A Producer has its own, in ProducerOptions.
	Partitioner Partitioner
	// RetentionCheckInterval is how often retention runs
	// (log.retention.check.interval.ms; size retention also runs as
	// appends grow a partition), and offsets expire. Default 5 minutes.
	// A check runs only when something is due (see Broker's doc on
	// timers).
	RetentionCheckInterval time.Duration
	// OffsetsRetention is how long a group without members keeps its
	// committed offsets (offsets.retention.minutes): once it has had no
	// member and no commit for this long, its offsets are deleted, and a
	// member that comes back starts from its reset policy. A group with
	// members never loses its offsets. Default 7 days, Kafka's; negative
	// keeps offsets forever.
	OffsetsRetention time.Duration
	// FileMode is the mode of created files. Default 0600.
	FileMode os.FileMode
	// DirMode is the mode of created directories. Default 0700.
	DirMode os.FileMode
	// Logger receives recovery, retention and failure messages. Default: discard.
	Logger *slog.Logger
	// LockTimeout makes Open retry for this long while another broker holds
	// the directory, before failing with ErrLocked. Default 0: fail at once.
	// A child process started while a broker was open holds the lock until
	// it execs, so a program that reopens a directory right after closing it
	// and runs subprocesses may want a few milliseconds here.
	LockTimeout time.Duration
	// Now is the clock, for tests. Default time.Now. Deadlines by another
	// clock cannot be waited for in real time: while one is pending, the
	// checks run every RetentionCheckInterval.
	Now func() time.Time
	// CleanerBufferBytes caps the memory of the log cleaner's key map
	// (log.cleaner.dedupe.buffer.size): 16 bytes a key, grown as a round
	// meets keys, so a small topic takes little. A round that fills it
	// cleans up to where it filled, and the next round goes on from there.
	// Default 128 MiB, Kafka's: about 3.8 million keys a round (the table doubles as it grows,
	// old and new within the cap).
	CleanerBufferBytes int64
	// CleanerBackoff is how often the cleaner looks again at compacted
	// partitions whose time-based settings (MinCompactionLag,
	// MaxCompactionLag) may make them due (log.cleaner.backoff.ms).
	// Partitions are otherwise looked at when they roll a segment, when
	// their topic is altered, and at Open. Default 15 seconds.
	CleanerBackoff time.Duration
	// DisableCleaner stops the background cleaner (log.cleaner.enable=false):
	// compacted topics are cleaned only by Broker.Compact.
	DisableCleaner bool
	// MaxOpenSegments bounds how many segments, across all partitions,
	// hold operating-system resources at once: each holds at most one file
	// descriptor (the active segment's, for appends) and three memory
	// mappings (its log, for reads, and its two indexes). When another
	// segment needs them, the one unused longest (roughly: CLOCK) gives
	// its back, and takes them again on its next use, so that any number
	// of partitions can be opened and used in turn without reaching
	// RLIMIT_NOFILE or vm.max_map_count. A partition not used since Open
	// holds none; one in steady use pays nothing for this. Kafka has no
	// such setting (it keeps every segment's indexes mapped). Default:
	// half the descriptors RLIMIT_NOFILE allows, or half the mappings
	// vm.max_map_count allows over three, whichever is fewer (10,000 with
	// 20,000 and 65,530), and at least 64. Negative: ErrInvalidConfig.
	MaxOpenSegments int

	fs vfs.FS // file system seam for fault-injection tests; default vfs.Default
}

func (o *Options) withDefaults() (Options, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Sync == SyncDefault {
		opts.Sync = SyncInterval
	}
	if !opts.Sync.valid() {
		return opts, fmt.Errorf("%w: sync policy %d", ErrInvalidConfig, opts.Sync)
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = time.Second
	}
	if opts.RetentionCheckInterval == 0 {
		opts.RetentionCheckInterval = 5 * time.Minute
	}
	if opts.OffsetsRetention == 0 {
		opts.OffsetsRetention = DefaultOffsetsRetention
	}
	if opts.Follow {
		opts.ReadOnly = true
	}
	if opts.FollowInterval == 0 {
		opts.FollowInterval = 100 * time.Millisecond
	}
	if opts.CleanerBufferBytes == 0 {
		opts.CleanerBufferBytes = DefaultCleanerBufferBytes
	}
	if opts.CleanerBackoff == 0 {
		opts.CleanerBackoff = 15 * time.Second
	}
	if opts.SyncInterval < 0 || opts.RetentionCheckInterval < 0 || opts.LockTimeout < 0 || opts.FollowInterval < 0 || opts.CleanerBackoff < 0 {
		return opts, fmt.Errorf("%w: negative interval", ErrInvalidConfig)
	}
	if opts.CleanerBufferBytes < 0 {
		return opts, fmt.Errorf("%w: negative cleaner buffer", ErrInvalidConfig)
	}
	if opts.MaxOpenSegments < 0 {
		return opts, fmt.Errorf("%w: negative MaxOpenSegments", ErrInvalidConfig)
	}
	if opts.Partitioner == nil {
		opts.Partitioner = HashPartitioner{}
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o600
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o700
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.fs == nil {
		opts.fs = vfs.Default
	}
	dt := opts.DefaultTopic.withDefaults()
	if err := dt.validate(); err != nil {
		return opts, fmt.Errorf("default topic: %w", err)
	}
	return opts, nil
}

// Broker owns a data directory: its topics, their partition logs and the
// metadata store. It is safe for concurrent use. Open one per directory;
// Close it to flush, sync and release the directory.
//
// A writable broker runs one background goroutine for SyncInterval fsyncs,
// time retention and offsets expiry. It arms a timer only while it has work:
// a SyncInterval partition with unsynced data, a partition whose oldest
// records will pass their Retention, a member that could be evicted, a
// group without members whose offsets are aging. An idle broker, and a
// consumer waiting in Poll, arm none, so that inside a testing/synctest
// bubble a test waiting for a record that never comes fails at once as
// deadlocked rather than running virtual time for ever. With a custom
// Options.Now the deadlines cannot be waited for in real time, so checks
// then run every RetentionCheckInterval while any deadline is pending.
type Broker struct {
	dir    string
	opts   Options
	lock   io.Closer // nil: a read-only broker on a directory without LOCK
	meta   *catalog.Catalog
	groups *groups.Service
	txns   *txnCoordinator
	stats  log.Stats

	txnCommits, txnAborts atomic.Int64 // Stats

	alterMu   sync.Mutex   // serializes AlterTopic calls: each stores and applies its config before the next reads one
	mu        sync.RWMutex // guards the fields below
	topics    map[string]*topic
	closed    bool
	producers map[*Producer]struct{}
	consumers map[*Consumer]struct{}
	tables    map[*Table]struct{}

	topicsView atomic.Pointer[map[string]*topic] // copy of topics for lock-free reads
	down       atomic.Bool                       // set with closed, for checks that take no lock (Reader.Next)

	stop chan struct{} // closed by Close to end the background goroutine
	done chan struct{} // closed when it has ended

	follow *follower // a follower's state (Options.Follow), nil otherwise

	// The background goroutine's work: due collects when a check
	// (retention, offsets expiry) is next needed, by opts.Now; unsynced is
	// signalled when a SyncInterval partition gets data to sync. Its timers
	// fire at opened + k * interval, as tickers started at Open would.
	due       *signal.Alarm
	unsynced  chan struct{} // capacity 1
	opened    time.Time     // by time.Now: the origin of the timers' schedule
	realClock bool          // opts.Now is time.Now: deadlines can be waited for

	cleaner cleaner // the log cleaner (cleaner.go)

	resident *resident.Set // segments holding descriptors and mappings (Options.MaxOpenSegments)

	builders sync.Pool // *batch.Builder for publishOne
	plans    sync.Pool // *publishPlan for Publish
}

// The directory layout: DIR/LOCK (flock), DIR/meta.db (bbolt, see internal/catalog),
// DIR/topics/<topic>/<partition>/<segment files> (see package segment) and,
// after DeleteRecords, the partition's log-start file (see internal/log).
const (
	lockFile      = "LOCK" // its flock marks the directory in use
	topicsDir     = "topics"
	deletedPrefix = ".deleted-"
)

// Open opens the broker in dir, creating the directory if needed (unless
// read-only). It fails fast with ErrLocked if another Broker, in this process
// or another, has the directory open (a follower, Options.Follow, takes no
// lock and never does). After a crash, Open recovers every partition (see
// the package doc); damage never stops it.
func Open(dir string, opts *Options) (*Broker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir, &o); err != nil {
		return nil, err
	}
	var lock io.Closer
	if !o.Follow {
		if lock, err = lockDir(dir, &o); err != nil {
			return nil, err
		}
	}
	b := &Broker{dir: dir, opts: o, lock: lock, topics: map[string]*topic{}, producers: map[*Producer]struct{}{},
		consumers: map[*Consumer]struct{}{}, tables: map[*Table]struct{}{}, due: signal.NewAlarm(), unsynced: make(chan struct{}, 1),
		opened: time.Now(), realClock: opts == nil || opts.Now == nil}
	b.resident = newResidentSet(&o)
	b.builders.New = func() any { return new(batch.Builder) }
	b.plans.New = func() any { return new(publishPlan) }
	b.txns = newTxnCoordinator(b)
	if o.Follow {
		b.follow = newFollower()
	}
	if err := b.load(); err != nil {
		b.closeTopics(false)
		if b.meta != nil {
			b.meta.Close(false)
		}
		unlock(lock)
		return nil, err
	}
	if o.Follow {
		b.stop, b.done = make(chan struct{}), make(chan struct{})
		go b.followLoop()
	} else if !o.ReadOnly {
		if b.startupWork() {
			b.due.Want(o.Now()) // the first check, where a ticker would tick first
		}
		b.stop, b.done = make(chan struct{}), make(chan struct{})
		b.startCleaner() // before background, whose retention may roll a segment and wake it
		go b.background()
	}
	return b, nil
}

// lockDir takes the directory's lock (shared if read-only), retrying for
// LockTimeout while another broker holds it.
func lockDir(dir string, o *Options) (io.Closer, error) {
	lockPath := filepath.Join(dir, lockFile)
	lock, err := o.fs.Lock(lockPath, o.FileMode, o.ReadOnly)
	if errors.Is(err, ErrLocked) && o.LockTimeout > 0 {
		deadline := time.Now().Add(o.LockTimeout)
		tick := time.NewTicker(time.Millisecond)
		for errors.Is(err, ErrLocked) && time.Now().Before(deadline) {
			<-tick.C
			lock, err = o.fs.Lock(lockPath, o.FileMode, o.ReadOnly)
		}
		tick.Stop()
	}
	return lock, err
}

// prepareDir checks a read-only broker's directory, or creates a writable
// one's topics directory, durably: its entry in dir is synced (unless
// SyncNever) before any topic directory goes in it.
func prepareDir(dir string, o *Options) error {
	if o.ReadOnly {
		fi, err := o.fs.Stat(dir) // the data directory may be reached through a link
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%w: %s is not a directory", ErrInvalidConfig, dir)
		}
		return err
	}
	root := filepath.Join(dir, topicsDir)
	if _, err := o.fs.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := o.fs.MkdirAll(root, o.DirMode); err != nil {
		return err
	}
	if o.Sync == SyncNever {
		return nil
	}
	return o.fs.SyncDir(dir)
}

// unlock releases the directory's lock, if one was taken.
func unlock(l io.Closer) error {
	if l == nil {
		return nil
	}
	return l.Close()
}

// load opens the metadata store and every topic's partitions.
func (b *Broker) load() error {
	metaPath := filepath.Join(b.dir, catalog.File)
	_, statErr := b.opts.fs.Lstat(metaPath)
	metaMissing := errors.Is(statErr, os.ErrNotExist)
	meta, clean, records, damaged, err := b.openMeta(metaPath)
	if err != nil {
		return err
	}
	b.meta = meta
	b.groups = groups.New(groups.Config{
		Catalog: meta, Partitions: b.partitionCount, Now: b.opts.Now, Logger: b.opts.Logger,
		ReadOnly: b.opts.ReadOnly, OffsetsRetention: b.opts.OffsetsRetention, Wake: b.due.Want,
	})
	onDisk, err := b.topicDirs()
	if err != nil {
		return err
	}
	if metaMissing && len(onDisk) > 0 && !b.opts.Follow {
		// Topics without a catalog: whatever offsets groups had committed
		// are gone with it. Counted as a rebuild, like a damaged one.
		b.stats.MetaRebuilds.Add(1)
		b.opts.Logger.Error("stream: meta.db missing; rebuilding the topic list from the data directories: committed offsets and topic configs are lost",
			"dir", b.dir, "topics", len(onDisk))
	}
	deleted, err := meta.Deleted()
	if err != nil && b.opts.Follow && damaged {
		deleted, err = map[string]bool{}, nil // unreadable: followMeta said so
	}
	if err != nil {
		return err
	}
	// Topics found only as directories are opened with a full recovery:
	// whatever clean flag the catalog holds does not speak for them.
	adopted := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(onDisk)) {
		if _, ok := records[name]; ok {
			continue
		}
		parts := onDisk[name]
		dir := filepath.Join(b.dir, topicsDir, name)
		if deleted[name] {
			// DeleteTopic committed, then failed or crashed before the
			// directory was gone: finish it.
			b.opts.Logger.Warn("stream: removing what an interrupted DeleteTopic left", "dir", dir)
			if !b.opts.ReadOnly {
				if err := b.opts.fs.RemoveAll(dir); err != nil {
					return err
				}
			}
			continue
		}
		if !metaMissing && !damaged {
			// The catalog is sound but lacks the topic: an interrupted
			// CreateTopic (its directory holds no record; CreateTopic of
			// the name replaces it), or a catalog older than the data.
			has, err := b.holdsRecords(name, parts)
			if err != nil {
				b.opts.Logger.Error("stream: ignoring an unreadable topic directory with no metadata", "dir", dir, "err", err)
				continue
			}
			if !has {
				b.opts.Logger.Warn("stream: ignoring a topic directory with no metadata and no records (an interrupted CreateTopic)", "dir", dir)
				continue
			}
			b.opts.Logger.Warn("stream: adopting a topic directory with records but no metadata, with the default topic config", "dir", dir, "partitions", parts)
		}
		// The data is there, its config is not: the broker's defaults.
		cfg := b.opts.DefaultTopic.withDefaults()
		cfg.Partitions = parts
		rec := catalog.Topic{Config: cfg.stored(), Partitions: parts, Created: b.opts.Now()}
		if !b.opts.ReadOnly {
			if err := meta.PutTopic(name, rec); err != nil {
				return err
			}
		}
		records[name] = rec
		adopted[name] = true
	}
	if !b.opts.ReadOnly {
		// Their directories are gone now (the deleted marks are kept until
		// then, so a crash mid-removal is finished by the next Open).
		if err := meta.ForgetDeleted(slices.Collect(maps.Keys(deleted))); err != nil {
			return err
		}
	}
	names := slices.Sorted(maps.Keys(records))
	if b.opts.Follow {
		for _, name := range names {
			rec := records[name]
			// What the directories hold now; the refreshes follow it.
			if t := b.followTopic(name, onDisk[name], &rec, clean && !adopted[name]); t != nil {
				b.topics[name] = t
			}
		}
	} else {
		// Topics open side by side: opening is mostly system calls, which
		// overlap (100,000 partitions open in seconds, not tens of them).
		opened := make([]*topic, len(names))
		err := parallel(len(names), func(i int) error {
			rec := records[names[i]]
			// Defaults fill fields added since the topic was stored.
			t, err := b.openTopic(names[i], storedTopicConfig(rec.Config).withDefaults(), rec.Partitions, clean && !adopted[names[i]])
			if err != nil {
				return fmt.Errorf("open topic %q: %w", names[i], err)
			}
			t.created = rec.Created
			opened[i] = t
			return nil
		})
		for i, t := range opened {
			if t != nil {
				b.topics[names[i]] = t // closed by Open if err is set
			}
		}
		if err != nil {
			return err
		}
	}
	b.publishTopics()
	if b.opts.Follow {
		return nil
	}
	if err := b.txns.load(); err != nil {
		return err
	}
	if b.opts.ReadOnly {
		return nil
	}
	return b.txns.recover()
}

// openMeta opens the catalog and reads its topic list. A damaged catalog
// (catalog.ErrDamaged from either) is replaced by an empty one, with damaged set:
// a writable broker renames the file aside (never deleting it) and starts a
// new one, a read-only broker keeps an empty catalog in memory and writes
// nothing. Either way committed offsets and topic configs are lost, and
// nothing says the last shutdown was clean.
func (b *Broker) openMeta(path string) (meta *catalog.Catalog, clean bool, records map[string]catalog.Topic, damaged bool, err error) {
	if b.opts.Follow {
		return b.followMeta(path)
	}
	meta, clean, err = catalog.Open(path, b.opts.FileMode, b.opts.ReadOnly, b.opts.Sync == SyncNever)
	if err == nil {
		if records, err = meta.Topics(); err != nil {
			meta.Close(false)
		}
	}
	if err == nil && meta.RolledBack() {
		b.stats.MetaRollbacks.Add(1)
		b.opts.Logger.Error("stream: meta.db's newest meta page is damaged; opened at the transaction before: the last commit of offsets may be lost",
			"file", path)
	}
	if !errors.Is(err, catalog.ErrDamaged) {
		return meta, clean, records, false, err
	}
	b.stats.MetaRebuilds.Add(1)
	if b.opts.ReadOnly {
		b.opts.Logger.Error("stream: meta.db is damaged; serving the topic directories without committed offsets, group state or topic configs (defaults apply)",
			"file", path, "err", err)
		return catalog.Empty(), false, map[string]catalog.Topic{}, true, nil
	}
	kept, rerr := b.setAside(path)
	if rerr != nil {
		return nil, false, nil, true, fmt.Errorf("set aside damaged %s: %w (damage: %w)", path, rerr, err)
	}
	b.opts.Logger.Error("stream: meta.db was damaged: set aside and rebuilt from the topic directories; committed offsets, group state and topic configs are lost (defaults apply)",
		"kept", kept, "err", err)
	meta, _, err = catalog.Open(path, b.opts.FileMode, false, b.opts.Sync == SyncNever)
	if err != nil {
		return nil, false, nil, true, err
	}
	return meta, false, map[string]catalog.Topic{}, true, nil
}

// setAside renames a damaged file to <name>.damaged-<UTC time>, durably
// unless SyncNever, and returns the new path.
func (b *Broker) setAside(path string) (string, error) {
	base := path + ".damaged-" + b.opts.Now().UTC().Format("20060102T150405.000000000Z")
	kept := base
	for i := 1; ; i++ {
		if _, err := b.opts.fs.Lstat(kept); errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return "", err
		}
		kept = fmt.Sprintf("%s-%d", base, i)
	}
	if err := b.opts.fs.Rename(path, kept); err != nil {
		return "", err
	}
	if b.opts.Sync == SyncNever {
		return kept, nil
	}
	return kept, b.opts.fs.SyncDir(filepath.Dir(path))
}

// holdsRecords reports whether a topic directory's first parts partitions
// hold, or once held, any record: a log whose offsets have moved past 0.
// It opens them read-only, changing nothing.
func (b *Broker) holdsRecords(name string, parts int) (bool, error) {
	t := newTopic(name, b.opts.DefaultTopic.withDefaults(), filepath.Join(b.dir, topicsDir, name))
	for i := range parts {
		cfg := b.logConfig(t, i)
		cfg.ReadOnly, cfg.Stats, cfg.Logger = true, nil, nil // a probe: the real open counts and logs
		l, err := log.Open(cfg, false)
		if err != nil {
			return false, fmt.Errorf("partition %d: %w", i, err)
		}
		end := l.HighWatermark()
		if err := l.Close(false); err != nil {
			return false, err
		}
		if end > 0 {
			return true, nil
		}
	}
	return false, nil
}

// publishTopics refreshes the lock-free copy of the topic map that group
// coordinators read (they run under a group's lock, which must never wait
// for b.mu). Callers hold b.mu or own the broker.
func (b *Broker) publishTopics() {
	m := maps.Clone(b.topics)
	b.topicsView.Store(&m)
}

// partitionCount is the group coordinators' view of a topic: its partition
// count, 0 if it does not exist.
func (b *Broker) partitionCount(topic string) int32 {
	view := b.topicsView.Load()
	if view == nil {
		return 0
	}
	t := (*view)[topic]
	if t == nil {
		return 0
	}
	return int32(len(t.partitions()))
}

// topicDirs lists topic directories and how many partition directories
// each has, removing the remains of interrupted topic deletions.
func (b *Broker) topicDirs() (map[string]int, error) {
	root := filepath.Join(b.dir, topicsDir)
	entries, err := b.opts.fs.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, deletedPrefix) {
			if !b.opts.ReadOnly {
				if err := b.opts.fs.RemoveAll(filepath.Join(root, name)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !e.IsDir() || validateTopicName(name) != nil {
			continue
		}
		n, err := partitionDirs(b.opts.fs, filepath.Join(root, name))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out[name] = n
		}
	}
	return out, nil
}

// partitionDirs counts a topic directory's partitions: one past the
// highest numbered partition directory in it.
func partitionDirs(fs vfs.FS, dir string) (int, error) {
	parts, err := fs.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range parts {
		if i, err := strconv.Atoi(p.Name()); err == nil && i >= 0 && p.IsDir() {
			n = max(n, i+1)
		}
	}
	return n, nil
}

// background runs the SyncInterval fsyncs and the checks (retention,
// offsets expiry) at the instants tickers of SyncInterval and
// RetentionCheckInterval started at Open would tick, but only those at
// which there is work: see Broker.
func (b *Broker) background() {
	defer close(b.done)
	var syncT, checkT wakeTimer
	defer syncT.stop()
	defer checkT.stop()
	checkT.at(b.checkAt())
	for {
		select {
		case <-b.stop:
			return
		case <-b.unsynced:
			if syncT.c == nil {
				syncT.at(tickAfter(b.opened, b.opts.SyncInterval, time.Now(), time.Time{}))
			}
		case <-syncT.c:
			syncT.c = nil // later appends signal unsynced again
			for _, p := range b.allPartitions() {
				if p.Policy() == log.SyncInterval {
					_ = p.Sync() // a failure is sticky in the partition and logged there
				}
			}
		case <-b.due.C():
			checkT.at(b.checkAt())
		case <-checkT.c:
			b.due.Take()
			if next := earliest(b.enforceRetention(), b.groups.Expire()); !next.IsZero() {
				b.due.Want(next)
			}
			select {
			case <-b.due.C(): // our own Want; a later one is in Next too
			default:
			}
			checkT.at(b.checkAt())
		}
	}
}

// checkAt is when the next check runs: the first tick after now at or
// after the earliest time due, or, with a custom clock, the first tick
// after now while anything is due; zero if nothing is.
func (b *Broker) checkAt() time.Time {
	due := b.due.Next()
	if due.IsZero() {
		return due
	}
	if !b.realClock {
		due = time.Time{}
	}
	return tickAfter(b.opened, b.opts.RetentionCheckInterval, time.Now(), due)
}

// tickAfter returns the first instant of opened + k*every (k >= 1) that is
// after now and not before t.
func tickAfter(opened time.Time, every time.Duration, now, t time.Time) time.Time {
	if !t.After(now) {
		t = now.Add(1)
	}
	d := t.Sub(opened)
	if d > 1<<62 {
		return t // too far off to matter
	}
	k := max(d/every, 1)
	for opened.Add(k * every).Before(t) {
		k++
	}
	return opened.Add(k * every)
}

// wakeTimer is a timer of the background goroutine, armed only while it
// has work; c is nil while it is not.
type wakeTimer struct {
	t *time.Timer
	c <-chan time.Time
}

// at arms the timer for when, or disarms it if when is zero.
func (w *wakeTimer) at(when time.Time) {
	if when.IsZero() {
		w.stop()
		return
	}
	if w.t == nil {
		w.t = time.NewTimer(time.Until(when))
	} else {
		w.t.Reset(time.Until(when))
	}
	w.c = w.t.C
}

func (w *wakeTimer) stop() {
	if w.t != nil {
		w.t.Stop()
	}
	w.c = nil
}

// signalUnsynced tells the background goroutine that a SyncInterval
// partition has data to sync (log.Config.OnUnsynced).
func (b *Broker) signalUnsynced() {
	select {
	case b.unsynced <- struct{}{}:
	default: // signalled already
	}
}

// startupWork reports whether an opened broker may have retention or
// offsets expiry to do before anything changes: a partition with retention
// and records, or a group with committed offsets.
func (b *Broker) startupWork() bool {
	for _, t := range b.topics {
		if c := t.config(); !c.Cleanup.deletes() || c.Retention <= 0 && c.RetentionBytes <= 0 {
			continue
		}
		for _, p := range t.partitions() {
			if p.HighWatermark() > p.StartOffset() {
				return true
			}
		}
	}
	stored, err := b.meta.Groups()
	return err != nil || len(stored) > 0
}

// earliest returns the earlier of two times, the zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// enforceRetention runs retention on every partition, and returns when it
// next has work (zero: none until a partition changes).
func (b *Broker) enforceRetention() (next time.Time) {
	for _, p := range b.allPartitions() {
		if _, err := p.EnforceRetention(); err != nil {
			b.opts.Logger.Error("stream: retention failed", "dir", p.Dir(), "err", err)
		}
		next = earliest(next, p.RetentionDue())
	}
	return next
}

func (b *Broker) allPartitions() []*log.Log {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*log.Log
	for _, t := range b.topics {
		out = append(out, t.partitions()...)
	}
	return out
}

// Close flushes and closes every Producer, syncs and closes every partition
// (trimming preallocated space, so the next Open needs no recovery scan) and
// releases the directory. Calls blocked on the broker return ErrClosed.
// Close is safe to call more than once; later calls return nil.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.down.Store(true)
	producers := slices.Collect(maps.Keys(b.producers))
	consumers := slices.Collect(maps.Keys(b.consumers))
	tables := slices.Collect(maps.Keys(b.tables))
	b.mu.Unlock()

	var errs []error
	for _, c := range consumers {
		errs = append(errs, c.Close())
	}
	for _, t := range tables {
		errs = append(errs, t.Close())
	}
	for _, p := range producers {
		errs = append(errs, p.Close())
	}
	if !b.opts.ReadOnly && !b.opts.Follow {
		errs = append(errs, b.txns.close())
	}
	if b.stop != nil {
		close(b.stop)
		<-b.done
		b.stopCleaner()
	}
	b.stopFollowing() // a Refresh running now ends first
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.closeTopics(true)
	errs = append(errs, err, b.meta.Close(err == nil), unlock(b.lock))
	return errors.Join(errs...)
}

// closeTopics closes every partition; with clean, they are trimmed and
// synced for a scan-free reopen.
func (b *Broker) closeTopics(clean bool) error {
	var errs []error
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			errs = append(errs, p.Close(clean))
		}
	}
	return errors.Join(errs...)
}

// checkOpen returns ErrClosed after Close. Callers hold b.mu.
func (b *Broker) checkOpen() error {
	if b.closed {
		return ErrClosed
	}
	return nil
}

// writable is checkWritable for callers that do not hold b.mu.
func (b *Broker) writable() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.checkWritable()
}

// checkWritable returns ErrClosed after Close and ErrReadOnly on a
// read-only broker. Callers hold b.mu.
func (b *Broker) checkWritable() error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	if b.opts.ReadOnly {
		return ErrReadOnly
	}
	return nil
}

// Options returns the options the broker was opened with, defaults filled
// in (Sync is never SyncDefault): what a front end such as the Kafka
// listener reports as the broker's settings. Changing the copy changes
// nothing.
func (b *Broker) Options() Options { return b.opts }

// Dir returns the data directory the broker was opened on.
func (b *Broker) Dir() string { return b.dir }
