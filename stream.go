package stream

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"maps"
	"math"
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
	"github.com/embedstream/stream/internal/vfs"
	"github.com/embedstream/stream/segment"
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
	// memory, and every write returns ErrReadOnly.
	ReadOnly bool
	// Partitioner places Broker.Publish records that have no explicit
	// partition. Default HashPartitioner{}.
	Partitioner Partitioner
	// RetentionCheckInterval is how often retention runs
	// (log.retention.check.interval.ms), and offsets expire. Default 5
	// minutes.
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
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time

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
	if opts.SyncInterval < 0 || opts.RetentionCheckInterval < 0 || opts.LockTimeout < 0 {
		return opts, fmt.Errorf("%w: negative interval", ErrInvalidConfig)
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
type Broker struct {
	dir    string
	opts   Options
	lock   *os.File
	meta   *catalog.Catalog
	groups *groups.Service
	stats  log.Stats

	mu        sync.RWMutex // guards the fields below
	topics    map[string]*topic
	closed    bool
	producers map[*Producer]struct{}
	consumers map[*Consumer]struct{}

	topicsView atomic.Pointer[map[string]*topic] // copy of topics for lock-free reads

	stop chan struct{} // closed by Close to end the background goroutine
	done chan struct{} // closed when it has ended

	builders sync.Pool // *batch.Builder for publishOne
	plans    sync.Pool // *publishPlan for Publish
}

// The directory layout: DIR/LOCK (flock), DIR/meta.db (bbolt, see meta.go),
// DIR/topics/<topic>/<partition>/<segment files> (see package segment) and,
// after DeleteRecords, the partition's log-start file (see partition.go).
const (
	topicsDir     = "topics"
	deletedPrefix = ".deleted-"
)

// Open opens the broker in dir, creating the directory if needed (unless
// read-only). It fails fast with ErrLocked if another Broker, in this process
// or another, has the directory open. After a crash, Open recovers every
// partition (see the package doc); damage never stops it.
func Open(dir string, opts *Options) (*Broker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Join(dir, topicsDir), o.DirMode); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir, o.ReadOnly, o.FileMode)
	if errors.Is(err, ErrLocked) && o.LockTimeout > 0 {
		deadline := time.Now().Add(o.LockTimeout)
		tick := time.NewTicker(time.Millisecond)
		for errors.Is(err, ErrLocked) && time.Now().Before(deadline) {
			<-tick.C
			lock, err = lockDir(dir, o.ReadOnly, o.FileMode)
		}
		tick.Stop()
	}
	if err != nil {
		return nil, err
	}
	b := &Broker{dir: dir, opts: o, lock: lock, topics: map[string]*topic{}, producers: map[*Producer]struct{}{},
		consumers: map[*Consumer]struct{}{}}
	b.builders.New = func() any { return new(batch.Builder) }
	b.plans.New = func() any { return new(publishPlan) }
	if err := b.load(); err != nil {
		b.closeTopics(false)
		if b.meta != nil {
			b.meta.Close(false)
		}
		unlockDir(lock)
		return nil, err
	}
	if !o.ReadOnly {
		b.stop, b.done = make(chan struct{}), make(chan struct{})
		go b.background()
	}
	return b, nil
}

// load opens the metadata store and every topic's partitions.
func (b *Broker) load() error {
	metaPath := filepath.Join(b.dir, catalog.File)
	_, statErr := b.opts.fs.Lstat(metaPath)
	metaMissing := errors.Is(statErr, os.ErrNotExist)
	meta, clean, err := catalog.Open(metaPath, b.opts.FileMode, b.opts.ReadOnly, b.opts.Sync == SyncNever)
	if err != nil {
		return err
	}
	b.meta = meta
	b.groups = groups.New(groups.Config{
		Catalog: meta, Partitions: b.partitionCount, Now: b.opts.Now, Logger: b.opts.Logger,
		ReadOnly: b.opts.ReadOnly, OffsetsRetention: b.opts.OffsetsRetention,
	})
	records, err := meta.Topics()
	if err != nil {
		return err
	}
	onDisk, err := b.topicDirs()
	if err != nil {
		return err
	}
	if metaMissing && len(onDisk) > 0 {
		// The topic list is lost but the data is not: rebuild the list from
		// the directories, with default configs.
		b.opts.Logger.Warn("stream: meta.db missing; rebuilding the topic list from the data directories",
			"dir", b.dir, "topics", len(onDisk))
		for name, parts := range onDisk {
			cfg := b.opts.DefaultTopic.withDefaults()
			cfg.Partitions = parts
			rec := catalog.Topic{Config: cfg.stored(), Partitions: parts, Created: b.opts.Now()}
			records[name] = rec
			if !b.opts.ReadOnly {
				if err := meta.PutTopic(name, rec); err != nil {
					return err
				}
			}
		}
	}
	for name := range onDisk {
		if _, ok := records[name]; !ok {
			b.opts.Logger.Warn("stream: ignoring a topic directory with no metadata (an interrupted CreateTopic?)",
				"dir", filepath.Join(b.dir, topicsDir, name))
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range records {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		rec := records[name]
		// Defaults fill fields added since the topic was stored.
		t, err := b.openTopic(name, storedTopicConfig(rec.Config).withDefaults(), rec.Partitions, clean)
		if err != nil {
			return fmt.Errorf("open topic %q: %w", name, err)
		}
		t.created = rec.Created
		b.topics[name] = t
	}
	b.publishTopics()
	return nil
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
	entries, err := os.ReadDir(root)
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
				if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !e.IsDir() || validateTopicName(name) != nil {
			continue
		}
		parts, err := os.ReadDir(filepath.Join(root, name))
		if err != nil {
			return nil, err
		}
		n := 0
		for _, p := range parts {
			if i, err := strconv.Atoi(p.Name()); err == nil && i >= 0 && p.IsDir() {
				n = max(n, i+1)
			}
		}
		if n > 0 {
			out[name] = n
		}
	}
	return out, nil
}

// openTopic opens (creating as needed) the first n partitions of a topic.
func (b *Broker) openTopic(name string, cfg TopicConfig, n int, clean bool) (*topic, error) {
	t := &topic{name: name, cfg: cfg, dir: filepath.Join(b.dir, topicsDir, name)}
	if fi, err := os.Lstat(t.dir); err == nil && !fi.IsDir() {
		// A symbolic link (or anything else) where a topic directory
		// belongs would take its data outside the data directory.
		return nil, fmt.Errorf("%w: %s is not a directory", ErrCorrupt, t.dir)
	}
	if err := b.growTopic(t, n, clean); err != nil {
		for _, p := range t.partitions() {
			p.Close(false)
		}
		return nil, err
	}
	return t, nil
}

// growTopic opens partitions len(t.parts) .. n-1.
func (b *Broker) growTopic(t *topic, n int, clean bool) error {
	old := t.partitions()
	parts := slices.Clone(old)
	for i := len(parts); i < n; i++ {
		p, err := log.Open(b.logConfig(t, i), clean)
		if err != nil {
			for _, p := range parts[len(old):] {
				p.Close(false)
			}
			return fmt.Errorf("partition %d: %w", i, err)
		}
		parts = append(parts, p)
	}
	t.parts.Store(&parts)
	return nil
}

func (b *Broker) logConfig(t *topic, partition int) log.Config {
	c := t.cfg
	return log.Config{
		Dir:            filepath.Join(t.dir, strconv.Itoa(partition)),
		FS:             b.opts.fs,
		FilePerm:       b.opts.FileMode,
		DirPerm:        b.opts.DirMode,
		SegmentBytes:   c.SegmentBytes,
		SegmentAge:     c.SegmentAge,
		Retention:      c.Retention,
		RetentionBytes: c.RetentionBytes,
		MaxBatchBytes:  c.maxBatchBytes(),
		LogAppendTime:  c.LogAppendTime,
		Sync:           c.Sync.or(b.opts.Sync).log(),
		ReadOnly:       b.opts.ReadOnly,
		Now:            b.opts.Now,
		Logger:         b.opts.Logger,
		Stats:          &b.stats,
	}
}

// background runs the SyncInterval flushes and the retention checks.
func (b *Broker) background() {
	defer close(b.done)
	syncTick := time.NewTicker(b.opts.SyncInterval)
	defer syncTick.Stop()
	retentionTick := time.NewTicker(b.opts.RetentionCheckInterval)
	defer retentionTick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-syncTick.C:
			for _, p := range b.allPartitions() {
				if p.Policy() == log.SyncInterval {
					_ = p.Sync() // a failure is sticky in the partition and logged there
				}
			}
		case <-retentionTick.C:
			b.enforceRetention()
			b.groups.ExpireOffsets()
		}
	}
}

// enforceRetention runs retention on every partition.
func (b *Broker) enforceRetention() {
	for _, p := range b.allPartitions() {
		if _, err := p.EnforceRetention(); err != nil {
			b.opts.Logger.Error("stream: retention failed", "dir", p.Dir(), "err", err)
		}
	}
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
	producers := slices.Collect(maps.Keys(b.producers))
	consumers := slices.Collect(maps.Keys(b.consumers))
	b.mu.Unlock()

	var errs []error
	for _, c := range consumers {
		errs = append(errs, c.Close())
	}
	for _, p := range producers {
		errs = append(errs, p.Close())
	}
	if b.stop != nil {
		close(b.stop)
		<-b.done
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.closeTopics(true)
	errs = append(errs, err, b.meta.Close(err == nil), unlockDir(b.lock))
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

func (b *Broker) checkWritable() error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	if b.opts.ReadOnly {
		return ErrReadOnly
	}
	return nil
}

// CreateTopic creates a topic with cfg (zero fields take their defaults).
// It returns ErrInvalidTopic for a bad name, one of Kafka's internal topics
// (__consumer_offsets, __transaction_state), or one that collides with an
// existing topic once '.' and '_' are treated alike (Kafka's rule),
// ErrTopicExists for a name in use, and ErrInvalidConfig for a bad config.
func (b *Broker) CreateTopic(name string, cfg TopicConfig) error {
	if err := validateTopicName(name); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkWritable(); err != nil {
		return err
	}
	_, err := b.createTopicLocked(name, cfg)
	return err
}

func (b *Broker) createTopicLocked(name string, cfg TopicConfig) (*topic, error) {
	if reservedTopic(name) {
		return nil, fmt.Errorf("%w: %q is reserved for Kafka's internal use", ErrInvalidTopic, name)
	}
	if _, ok := b.topics[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	key := collisionKey(name)
	for other := range b.topics {
		if collisionKey(other) == key {
			return nil, fmt.Errorf("%w: %q collides with existing topic %q", ErrInvalidTopic, name, other)
		}
	}
	dir := filepath.Join(b.dir, topicsDir, name)
	// A directory left by an interrupted create holds nothing acknowledged.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	t, err := b.openTopic(name, cfg, cfg.Partitions, false)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t.created = b.opts.Now()
	if err := b.meta.PutTopic(name, catalog.Topic{Config: cfg.stored(), Partitions: cfg.Partitions, Created: t.created}); err != nil {
		for _, p := range t.partitions() {
			p.Close(false)
		}
		os.RemoveAll(dir)
		return nil, err
	}
	b.topics[name] = t
	b.publishTopics()
	return t, nil
}

// DeleteTopic deletes a topic and all its records. Readers of it get
// ErrTopicNotFound (records they already hold stay valid until released).
// Re-creating the topic starts again at offset 0.
func (b *Broker) DeleteTopic(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.writableTopicLocked(name)
	if err != nil {
		return err
	}
	if err := b.meta.DeleteTopic(name); err != nil {
		return err
	}
	delete(b.topics, name)
	b.publishTopics()
	t.deleted.Store(true)
	var errs []error
	for _, p := range t.partitions() {
		errs = append(errs, p.Close(false))
	}
	// Rename first so a crash mid-removal leaves no half topic; Open
	// removes what is left.
	root := filepath.Join(b.dir, topicsDir)
	gone := filepath.Join(root, fmt.Sprintf("%s%s-%d", deletedPrefix, name, time.Now().UnixNano()))
	if err := os.Rename(t.dir, gone); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if b.opts.Sync != SyncNever {
		errs = append(errs, b.opts.fs.SyncDir(root))
	}
	errs = append(errs, os.RemoveAll(gone))
	b.groups.TopicChanged(name)
	return errors.Join(errs...)
}

// AddPartitions grows a topic to total partitions. New partitions start
// empty at offset 0; existing records never move, but keys may map to
// different partitions from now on. total must exceed the current count
// (ErrInvalidConfig otherwise).
func (b *Broker) AddPartitions(name string, total int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.writableTopicLocked(name)
	if err != nil {
		return err
	}
	current := len(t.partitions())
	switch {
	case total == current:
		return fmt.Errorf("%w: topic %q already has %d partitions", ErrInvalidConfig, name, current)
	case total < current:
		return fmt.Errorf("%w: topic %q has %d partitions; %d would not be an increase", ErrInvalidConfig, name, current, total)
	case total > maxPartitions:
		return fmt.Errorf("%w: %d partitions (at most %d)", ErrInvalidConfig, total, maxPartitions)
	}
	if err := b.growTopic(t, total, false); err != nil {
		return err
	}
	cfg := t.cfg
	cfg.Partitions = total
	if err := b.meta.PutTopic(name, catalog.Topic{Config: cfg.stored(), Partitions: total, Created: t.created}); err != nil {
		return err
	}
	b.groups.TopicChanged(name)
	return nil
}

// writableTopicLocked looks up a topic for an admin change. Callers hold b.mu.
func (b *Broker) writableTopicLocked(name string) (*topic, error) {
	if err := b.checkWritable(); err != nil {
		return nil, err
	}
	t, ok := b.topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	return t, nil
}

// Topics returns the names of all topics, sorted.
func (b *Broker) Topics() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil
	}
	names := make([]string, 0, len(b.topics))
	for n := range b.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       string
	Config     TopicConfig     // with defaults filled in
	Partitions []PartitionInfo // index = partition number
}

// PartitionInfo describes one partition's log.
type PartitionInfo struct {
	Partition   int32
	StartOffset int64 // first offset still stored (moves up with retention)
	EndOffset   int64 // next offset to be written: the high watermark
	Bytes       int64 // bytes of record batches stored
	Segments    int   // segment files
}

// DescribeTopic returns a topic's config and per-partition offsets and sizes.
func (b *Broker) DescribeTopic(name string) (TopicInfo, error) {
	t, err := b.topic(name)
	if err != nil {
		return TopicInfo{}, err
	}
	parts := t.partitions()
	info := TopicInfo{Name: name, Config: t.cfg, Partitions: make([]PartitionInfo, len(parts))}
	info.Config.Partitions = len(parts)
	for i, p := range parts {
		li := p.Info()
		info.Partitions[i] = PartitionInfo{Partition: int32(i), StartOffset: li.Start, EndOffset: li.End, Bytes: li.Bytes, Segments: li.Segments}
	}
	return info, nil
}

// topic looks up an open topic.
func (b *Broker) topic(name string) (*topic, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	t, ok := b.topics[name]
	if !ok {
		if err := validateTopicName(name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	return t, nil
}

// topicForWrite looks up a topic for publishing, creating it if
// AutoCreateTopics is set.
func (b *Broker) topicForWrite(name string) (*topic, error) {
	b.mu.RLock()
	err := b.checkWritable()
	t, ok := b.topics[name]
	b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if ok {
		return t, nil
	}
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	if !b.opts.AutoCreateTopics {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkWritable(); err != nil {
		return nil, err
	}
	if t, ok := b.topics[name]; ok {
		return t, nil
	}
	return b.createTopicLocked(name, b.opts.DefaultTopic.withDefaults())
}

// partitionLog returns the log of one partition of a topic.
func (b *Broker) partitionLog(name string, partition int32) (*topic, *log.Log, error) {
	t, err := b.topic(name)
	if err != nil {
		return nil, nil, err
	}
	p, err := t.partition(partition)
	return t, p, err
}

// Stats are cumulative counters since Open, and current gauges.
type Stats struct {
	RecordsIn       int64 // records appended
	BytesIn         int64 // batch bytes appended
	BatchesIn       int64 // batches appended
	RecordsOut      int64 // records returned by Readers (and Consumers)
	BytesOut        int64 // batch bytes those reads covered
	Fsyncs          int64 // fsyncs of segment files
	Truncations     int64 // damaged log tails cut by recovery
	TruncatedBytes  int64 // bytes those cuts removed
	IndexRebuilds   int64 // indexes rebuilt from their logs
	SegmentsRolled  int64 // segments sealed because full or old
	SegmentsDeleted int64 // segments deleted by retention
	Topics          int   // topics now
	Partitions      int   // partitions now
	Segments        int   // segment files now
	OpenMappings    int64 // memory mappings of segment files now
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	st := &b.stats
	s := Stats{
		RecordsIn: st.RecordsIn.Load(), BytesIn: st.BytesIn.Load(), BatchesIn: st.BatchesIn.Load(),
		RecordsOut: st.RecordsOut.Load(), BytesOut: st.BytesOut.Load(),
		Fsyncs: st.Fsyncs.Load(), Truncations: st.Truncations.Load(), TruncatedBytes: st.TruncatedBytes.Load(),
		IndexRebuilds: st.IndexRebuilds.Load(), SegmentsRolled: st.SegmentsRolled.Load(),
		SegmentsDeleted: st.SegmentsDeleted.Load(), OpenMappings: segment.OpenMappings(),
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	s.Topics = len(b.topics)
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			s.Partitions++
			s.Segments += p.Info().Segments
		}
	}
	return s
}

// Publish appends records synchronously and fills in each one's Partition,
// Offset and Timestamp. Every record is validated before any is written: a
// nil record or negative timestamp (ErrInvalidRecord), a bad or unknown
// topic (ErrInvalidTopic, ErrTopicNotFound unless AutoCreateTopics), a
// partition the topic lacks (ErrInvalidPartition) or a record over the
// topic's MaxRecordBytes (ErrRecordTooLarge) fails the whole call with
// nothing written.
//
// Records for the same partition are written as one batch: all or none of
// them become visible, at consecutive offsets, in argument order. Across
// partitions there is no atomicity: if a later partition's write fails,
// earlier ones stand. Publish returns once the records are appended, and
// under SyncAlways once they are durable.
//
// Records without an explicit partition are placed by Options.Partitioner;
// those it leaves to AnyPartition (no key) go together to one partition per
// call, rotating between calls.
func (b *Broker) Publish(ctx context.Context, recs ...*Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch len(recs) {
	case 0:
		return nil
	case 1:
		return b.publishOne(recs[0])
	}
	plan := b.plans.Get().(*publishPlan)
	defer b.plans.Put(plan)
	defer plan.release()
	if err := b.plan(plan, recs); err != nil {
		return err
	}
	for gi := range plan.groups {
		g := &plan.groups[gi]
		encoded := g.builder.Finish()
		base, err := g.part.Append(encoded)
		if err != nil {
			return b.writeErr(g.topic, err)
		}
		// Records of a call mostly share one timestamp: convert it once.
		appendTime := encoded.Attributes()&batch.AttrLogAppendTime != 0
		lastMS, lastTime := int64(math.MinInt64), time.Time{}
		for n := range g.builder.Count() {
			i := g.record(n)
			ms := plan.timestamps[i]
			if appendTime {
				ms = encoded.MaxTimestamp()
			}
			if ms != lastMS {
				lastMS, lastTime = ms, time.UnixMilli(ms)
			}
			r := recs[i]
			r.Partition, r.Offset, r.Timestamp = g.partition, base+int64(n), lastTime
		}
	}
	return nil
}

// publishOne is Publish's allocation-free path for a single record.
func (b *Broker) publishOne(r *Record) error {
	if r == nil {
		return fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	t, err := b.topicForWrite(r.Topic)
	if err != nil {
		return err
	}
	parts := t.partitions()
	partition, err := b.place(t, r, len(parts), nil)
	if err != nil {
		return err
	}
	ts, err := checkRecord(r, t, b.opts.Now)
	if err != nil {
		return err
	}
	if size := r.encodedSize(); size > t.cfg.MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, topic %q allows %d", ErrRecordTooLarge, size, t.name, t.cfg.MaxRecordBytes)
	}
	bld := b.builders.Get().(*batch.Builder)
	bld.Reset(0)
	bld.Add(ts, r.Key, r.Value, r.Headers)
	encoded := bld.Finish()
	base, err := parts[partition].Append(encoded)
	ts = recordTime(encoded, ts)
	b.builders.Put(bld)
	if err != nil {
		return b.writeErr(t, err)
	}
	r.Partition, r.Offset, r.Timestamp = partition, base, time.UnixMilli(ts)
	return nil
}

// recordTime is a written record's timestamp: its own, or the batch's
// append time under LogAppendTime.
func recordTime(b batch.Batch, ts int64) int64 {
	if b.Attributes()&batch.AttrLogAppendTime != 0 {
		return b.MaxTimestamp()
	}
	return ts
}

// place chooses r's partition. sticky carries the partition chosen for
// keyless records earlier in the same call, per topic.
func (b *Broker) place(t *topic, r *Record, n int, sticky map[*topic]int32) (int32, error) {
	p := r.Partition
	if p == AnyPartition {
		p = b.opts.Partitioner.Partition(r, n)
		if p == AnyPartition {
			if s, ok := sticky[t]; ok {
				return s, nil
			}
			p = int32((t.sticky.Add(1) - 1) % uint32(n))
			if sticky != nil {
				sticky[t] = p
			}
			return p, nil
		}
	}
	if p < 0 || int(p) >= n {
		return 0, fmt.Errorf("%w: topic %q has no partition %d (it has %d)", ErrInvalidPartition, t.name, p, n)
	}
	return p, nil
}

// writeErr maps an append error: a log closed under us because the topic
// was deleted reads as ErrTopicNotFound.
func (b *Broker) writeErr(t *topic, err error) error {
	if errors.Is(err, ErrClosed) && t.deleted.Load() {
		return fmt.Errorf("%w: %q (deleted)", ErrTopicNotFound, t.name)
	}
	return err
}

// publishPlan validates a Publish call's records and encodes them into one
// batch per partition before anything is written, so a bad record fails the
// call whole. Plans are pooled with their buffers: a steady stream of
// Publish calls allocates nothing.
type publishPlan struct {
	groups     []publishGroup
	timestamps []int64 // per record, ms
	sticky     map[*topic]int32
	index      map[*log.Log]int // into groups
}

// A publishGroup is the records of one call bound for one partition.
type publishGroup struct {
	topic     *topic
	part      *log.Log
	partition int32
	builder   batch.Builder
	// The group's records (as many as builder.Count()), in call order:
	// first, first+1, ... while they come in one run (the common case),
	// else listed in records.
	first   int
	listed  bool
	records []int
}

// record returns the index in the call of the group's nth record.
func (g *publishGroup) record(n int) int {
	if !g.listed {
		return g.first + n
	}
	return g.records[n]
}

// add notes the call's record i as the group's next, before it goes into
// the builder.
func (g *publishGroup) add(i int) {
	switch count := g.builder.Count(); {
	case count == 0:
		g.first = i
	case !g.listed && i != g.first+count:
		g.listed, g.records = true, g.records[:0]
		for n := range count {
			g.records = append(g.records, g.first+n)
		}
		fallthrough
	case g.listed:
		g.records = append(g.records, i)
	}
}

// What a pooled plan keeps between calls is bounded, so that one huge call
// does not pin its buffers: records, partitions, and batch bytes per
// partition.
const (
	maxPooledRecords    = 1 << 16
	maxPooledGroups     = 1 << 10
	maxPooledBatchBytes = 4 << 20
)

// reset empties the plan for a call of n records, keeping its buffers.
func (p *publishPlan) reset(n int) {
	if p.sticky == nil {
		p.sticky, p.index = map[*topic]int32{}, map[*log.Log]int{}
	}
	clear(p.sticky)
	clear(p.index)
	if cap(p.timestamps) < n {
		p.timestamps = make([]int64, n)
	}
	p.timestamps = p.timestamps[:n]
	p.groups = p.groups[:0]
}

// release drops the plan's references to topics and partitions, and
// buffers past the pooling bounds, before it goes back to the pool.
func (p *publishPlan) release() {
	if cap(p.timestamps) > maxPooledRecords {
		p.timestamps = nil
	}
	if len(p.groups) > maxPooledGroups {
		p.groups = nil
	}
	for i := range p.groups {
		g := &p.groups[i]
		g.topic, g.part = nil, nil
		if cap(g.records) > maxPooledRecords {
			g.records = nil
		}
		if g.builder.Len() > maxPooledBatchBytes {
			g.builder = batch.Builder{}
		}
	}
}

// group returns the index of a new group for partition of t, reusing the
// buffers a group of an earlier call left in the slice.
func (p *publishPlan) group(t *topic, part *log.Log, partition int32) int {
	if len(p.groups) == cap(p.groups) {
		p.groups = append(p.groups, publishGroup{})
	} else {
		p.groups = p.groups[:len(p.groups)+1]
	}
	g := &p.groups[len(p.groups)-1]
	g.topic, g.part, g.partition = t, part, partition
	g.first, g.listed = 0, false
	g.builder.Reset(0)
	return len(p.groups) - 1
}

// plan validates recs, places each on its partition and encodes it into
// its partition's batch; it writes nothing.
func (b *Broker) plan(plan *publishPlan, recs []*Record) error {
	plan.reset(len(recs))
	nowMS := int64(-1) // one clock reading per call, when a record needs it
	// Records usually come in runs for one topic and partition: look the
	// topic and the group up once per run, not per record.
	var (
		lastName    string
		lastTopic   *topic
		lastPart    *log.Log
		lastRequest = AnyPartition // the previous record's explicit Partition
		g           *publishGroup
	)
	for i, r := range recs {
		if r == nil {
			return fmt.Errorf("%w: record %d is nil", ErrInvalidRecord, i)
		}
		t := lastTopic
		if t == nil || r.Topic != lastName || r.Partition != lastRequest || r.Partition == AnyPartition {
			if t == nil || r.Topic != lastName {
				var err error
				if t, err = b.topicForWrite(r.Topic); err != nil {
					return err
				}
				lastName, lastTopic = r.Topic, t
			}
			parts := t.partitions()
			partition, err := b.place(t, r, len(parts), plan.sticky)
			if err != nil {
				return err
			}
			if p := parts[partition]; p != lastPart {
				n, ok := plan.index[p]
				if !ok {
					n = plan.group(t, p, partition)
					plan.index[p] = n
				}
				lastPart, g = p, &plan.groups[n]
			}
			lastRequest = r.Partition
		}
		if nowMS < 0 && (r.Timestamp.IsZero() || t.cfg.LogAppendTime || t.cfg.checksTimestamps()) {
			nowMS = b.opts.Now().UnixMilli()
		}
		ts := nowMS
		if !r.Timestamp.IsZero() {
			own, err := recordTimestamp(r) // refused even under LogAppendTime, as Kafka's producer does
			if err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			if !t.cfg.LogAppendTime {
				if err := t.cfg.checkTimestamp(own, nowMS); err != nil {
					return fmt.Errorf("record %d: %w", i, err)
				}
				ts = own
			}
		}
		if size := r.encodedSize(); size > t.cfg.MaxRecordBytes {
			return fmt.Errorf("%w: record %d is %d bytes, topic %q allows %d", ErrRecordTooLarge, i, size, t.name, t.cfg.MaxRecordBytes)
		}
		plan.timestamps[i] = ts
		g.add(i)
		g.builder.Add(ts, r.Key, r.Value, r.Headers)
	}
	// Each partition's records go in one atomic batch, which must fit the
	// batch limit: check them all before anything is written.
	for i := range plan.groups {
		g := &plan.groups[i]
		if size, limit := g.builder.Len(), g.topic.cfg.maxBatchBytes(); size > limit {
			return fmt.Errorf("%w: the call's records for %q partition %d make a %d-byte batch, over the %d a batch may hold; publish them in smaller calls",
				ErrRecordTooLarge, g.topic.name, g.partition, size, limit)
		}
	}
	return nil
}

// OffsetForTime returns the earliest offset of the partition whose record
// timestamp is at or after t (Kafka's offsetsForTimes), or -1 if every
// record is older (Kafka returns null). Timestamps need not be ordered; the
// answer is exact either way.
func (b *Broker) OffsetForTime(topic string, partition int32, t time.Time) (int64, error) {
	_, p, err := b.partitionLog(topic, partition)
	if err != nil {
		return 0, err
	}
	if t.UnixMilli() < 0 {
		return 0, fmt.Errorf("%w: negative timestamp %v", ErrInvalidArgument, t)
	}
	return p.OffsetForTime(t.UnixMilli())
}

// DeleteRecords deletes a partition's records before offset before
// (Kafka's deleteRecords) and returns the partition's new log start offset.
// Readers and consumers positioned below it get ErrOffsetOutOfRange (and
// their reset policy); segments wholly below it are removed, and the start
// survives restarts. before may be at most the end offset (high
// watermark), else ErrOffsetOutOfRange; at or below the current start it
// changes nothing. Offsets are never reused.
func (b *Broker) DeleteRecords(topic string, partition int32, before int64) (int64, error) {
	if before < 0 {
		return 0, fmt.Errorf("%w: delete before negative offset %d", ErrInvalidArgument, before)
	}
	b.mu.RLock()
	err := b.checkWritable()
	b.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	t, p, err := b.partitionLog(topic, partition)
	if err != nil {
		return 0, err
	}
	start, err := p.DeleteRecords(before)
	if err != nil {
		return start, b.writeErr(t, err)
	}
	return start, nil
}

// Dir returns the data directory the broker was opened on.
func (b *Broker) Dir() string { return b.dir }

// Expvar returns the broker's Stats as an expvar.Var, to publish on
// /debug/vars with expvar.Publish("embedstream", b.Expvar()).
func (b *Broker) Expvar() expvar.Var {
	return expvar.Func(func() any { return b.Stats() })
}
