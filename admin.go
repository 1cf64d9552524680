package stream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/log"
)

// closeLogs closes logs without trimming: their topic is going away.
func closeLogs(logs []*log.Log) {
	for _, l := range logs {
		l.Close(false)
	}
}

// openTopic opens (creating as needed) the first n partitions of a topic.
func (b *Broker) openTopic(name string, cfg TopicConfig, n int, clean bool) (*topic, error) {
	cfg.Partitions = n
	t := newTopic(name, cfg, filepath.Join(b.dir, topicsDir, name))
	if fi, err := b.opts.fs.Lstat(t.dir); err == nil && !fi.IsDir() {
		// A symbolic link (or anything else) where a topic directory
		// belongs would take its data outside the data directory.
		return nil, fmt.Errorf("%w: %s is not a directory", ErrCorrupt, t.dir)
	}
	if err := b.growTopic(t, n, clean); err != nil {
		closeLogs(t.partitions())
		return nil, err
	}
	return t, nil
}

// growTopic opens partitions len(t.parts) .. n-1.
func (b *Broker) growTopic(t *topic, n int, clean bool) error {
	old := t.partitions()
	if n <= len(old) {
		return nil
	}
	added := make([]*log.Log, n-len(old))
	err := parallel(len(added), func(i int) error {
		p, err := log.Open(b.logConfig(t, len(old)+i), clean)
		if err != nil {
			return fmt.Errorf("partition %d: %w", len(old)+i, err)
		}
		added[i] = p
		return nil
	})
	if err != nil {
		closeLogs(slices.DeleteFunc(added, func(l *log.Log) bool { return l == nil }))
		return err
	}
	parts := append(slices.Clone(old), added...)
	t.parts.Store(&parts)
	return nil
}

// parallel runs fn(0), ..., fn(n-1) on up to GOMAXPROCS goroutines and
// returns the error of the lowest i that failed; once one fails, no new i
// starts. Every goroutine has ended when it returns.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n || failed.Load() {
				return
			}
			if errs[i] = fn(i); errs[i] != nil {
				failed.Store(true)
			}
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) logConfig(t *topic, partition int) log.Config {
	return log.Config{
		Dir:      filepath.Join(t.dir, strconv.Itoa(partition)),
		FS:       b.opts.fs,
		FilePerm: b.opts.FileMode,
		DirPerm:  b.opts.DirMode,
		Settings: b.logSettings(t.config().TopicConfig),
		ReadOnly: b.opts.ReadOnly,
		Follow:   b.opts.Follow,
		Now:      b.opts.Now,
		Logger:   b.opts.Logger,
		Stats:    &b.stats,
		Resident: b.resident,

		OnUnsynced:  b.signalUnsynced,
		OnRetention: b.due.Want,
		OnRoll:      b.cleaner.wake,
	}
}

// logSettings is what of a topic's config (with defaults) its partition
// logs apply.
func (b *Broker) logSettings(c TopicConfig) log.Settings {
	s := log.Settings{
		SegmentBytes:   c.SegmentBytes,
		SegmentAge:     c.SegmentAge,
		Retention:      c.Retention,
		RetentionBytes: c.RetentionBytes,
		MaxBatchBytes:  c.maxBatchBytes(),
		LogAppendTime:  c.LogAppendTime,
		Sync:           c.Sync.or(b.opts.Sync).log(),
	}
	if !c.Cleanup.deletes() {
		// Kafka ignores retention for compact alone; the topic keeps the
		// values (DescribeTopic shows them) for a later compact,delete.
		s.Retention, s.RetentionBytes = 0, 0
	}
	if c.Cleanup.compacts() {
		s.Compact = true
		s.MinCleanableRatio = max(c.MinCleanableDirtyRatio, 0)
		s.MinCompactionLag = c.MinCompactionLag
		s.MaxCompactionLag = c.MaxCompactionLag
		s.DeleteRetention = max(c.DeleteRetention, 0)
		// The log rolls its active segment within MaxCompactionLag
		// itself (KIP-354).
	}
	return s
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

// CheckCreateTopic returns the error CreateTopic(name, cfg) would return
// now, without creating anything: nil if it would succeed. It is Kafka's
// CreateTopics with validateOnly (kafka-topics.sh --dry-run). A topic
// created by another call meanwhile may still make the CreateTopic fail.
func (b *Broker) CheckCreateTopic(name string, cfg TopicConfig) error {
	if err := validateTopicName(name); err != nil {
		return err
	}
	if err := cfg.withDefaults().validate(); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.checkWritable(); err != nil {
		return err
	}
	return b.checkNewTopicLocked(name)
}

// checkNewTopicLocked refuses a name CreateTopic may not take now: reserved,
// in use, or colliding with a topic's. Callers hold b.mu.
func (b *Broker) checkNewTopicLocked(name string) error {
	if reservedTopic(name) {
		return fmt.Errorf("%w: %q is reserved for Kafka's internal use", ErrInvalidTopic, name)
	}
	if _, ok := b.topics[name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	key := collisionKey(name)
	for other := range b.topics {
		if collisionKey(other) == key {
			return fmt.Errorf("%w: %q collides with existing topic %q", ErrInvalidTopic, name, other)
		}
	}
	return nil
}

func (b *Broker) createTopicLocked(name string, cfg TopicConfig) (*topic, error) {
	if err := b.checkNewTopicLocked(name); err != nil {
		return nil, err
	}
	fs, root := b.opts.fs, filepath.Join(b.dir, topicsDir)
	dir := filepath.Join(root, name)
	// A directory left by an interrupted create holds no record, and one
	// left by a DeleteTopic that failed to remove it holds deleted ones:
	// both are replaced. One that holds records the catalog does not list
	// (it appeared after Open, which adopts such directories) is never
	// reused.
	deleted, err := b.meta.Deleted()
	if err != nil {
		return nil, err
	}
	fi, err := fs.Lstat(dir)
	if err == nil && fi.IsDir() && !deleted[name] {
		parts, err := partitionDirs(fs, dir)
		if err != nil {
			return nil, err
		}
		has, err := b.holdsRecords(name, parts)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: its directory %s is unreadable: %w", ErrTopicExists, name, dir, err)
		}
		if has {
			return nil, fmt.Errorf("%w: %q: its directory %s holds records but no metadata (reopening the broker adopts it)", ErrTopicExists, name, dir)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil { // something is there to replace
		if err := fs.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	t, err := b.openTopic(name, cfg, cfg.Partitions, false)
	if err == nil && b.opts.Sync != SyncNever {
		// The partition directories' entries are synced as they are made;
		// the topic directory's goes before the catalog records the topic,
		// and as durably (the catalog follows the broker's policy).
		if err = fs.SyncDir(root); err != nil {
			closeLogs(t.partitions())
		}
	}
	if err == nil {
		t.created = b.opts.Now()
		if err = b.meta.PutTopic(name, catalog.Topic{Config: cfg.stored(), Partitions: cfg.Partitions, Created: t.created}); err != nil {
			closeLogs(t.partitions())
		}
	}
	if err != nil {
		fs.RemoveAll(dir)
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
	fs, root := b.opts.fs, filepath.Join(b.dir, topicsDir)
	gone := filepath.Join(root, fmt.Sprintf("%s%s-%d", deletedPrefix, name, time.Now().UnixNano()))
	if err := fs.Rename(t.dir, gone); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if b.opts.Sync != SyncNever { // as durable as the catalog's delete
		errs = append(errs, fs.SyncDir(root))
	}
	errs = append(errs, fs.RemoveAll(gone))
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
	cfg := t.config().TopicConfig
	cfg.Partitions = total
	if err := b.meta.PutTopic(name, catalog.Topic{Config: cfg.stored(), Partitions: total, Created: t.created}); err != nil {
		return err
	}
	t.conf.Store(newTopicConf(cfg))
	b.groups.TopicChanged(name)
	return nil
}

// AlterTopic changes the config of an existing topic while it is in use,
// as Kafka's kafka-configs.sh --alter (IncrementalAlterConfigs) does.
// change is given the current config, as DescribeTopic reports it
// (defaults filled in), and edits it; the result is validated as
// CreateTopic validates a config (zero fields take their defaults),
// stored durably with the topic, and applied to the open partitions: no
// restart, and it survives one.
//
// Every setting may change but Partitions, which only grows, with
// AddPartitions: a change of it is refused with ErrInvalidConfig, as is an
// invalid value, and then nothing changes.
//
// When each change takes effect:
//   - MaxRecordBytes, LogAppendTime and the timestamp bounds: for records
//     published from then on (a Producer checked the records it holds
//     already);
//   - Compression: for batches written from then on, a Producer's held
//     ones included; batches already stored keep their codec, and reads
//     decompress each batch by its own;
//   - SegmentBytes and SegmentAge: at the next append's roll check, so an
//     active segment larger than a new SegmentBytes rolls at the next
//     append; segments already sealed keep their size;
//   - RetentionBytes: at the next append or retention check, Retention at
//     the next retention check (Options.RetentionCheckInterval), as in
//     Kafka;
//   - Cleanup: a policy that compacts refuses records without a key from
//     then on (a Producer checked the records it holds already); records
//     without a key already stored are removed by the cleaner. Retention
//     stops (compact alone) or starts at the next retention check; the
//     cleaner takes up or leaves the partitions at its next look;
//   - MinCleanableDirtyRatio, MinCompactionLag, MaxCompactionLag and
//     DeleteRetention: at the cleaner's next look at the partition (a
//     shorter MaxCompactionLag also rolls the active segment at the next
//     append's roll check);
//   - Sync: at once. A stricter policy makes what was written durable
//     before AlterTopic returns (from SyncNever, everything that policy
//     left to the OS); a laxer one makes records that waited for an fsync
//     visible.
//
// Concurrent AlterTopic calls run one after the other, each given the
// config the one before left. change may be called more than once, if
// AddPartitions changed the topic meanwhile (each call gets the newer
// config), so it should only edit the config it is given.
//
// AlterTopic returns ErrTopicNotFound for an unknown topic, ErrReadOnly
// on a read-only broker, ErrClosed after Close, and ErrInvalidArgument for
// a nil change. An fsync that a
// stricter Sync runs may fail after the change is stored: its error (with
// ErrSyncFailed) is returned, and the partition refuses writes until the
// broker is reopened, as after any failed fsync.
func (b *Broker) AlterTopic(name string, change func(*TopicConfig)) error {
	if change == nil {
		return fmt.Errorf("%w: AlterTopic of %q without a change", ErrInvalidArgument, name)
	}
	b.alterMu.Lock()
	defer b.alterMu.Unlock()
	for {
		b.mu.RLock()
		t, err := b.writableTopicLocked(name)
		b.mu.RUnlock()
		if err != nil {
			if errors.Is(err, ErrTopicNotFound) {
				if nerr := validateTopicName(name); nerr != nil {
					return nerr
				}
			}
			return err
		}
		cur := t.config()
		next := cur.TopicConfig
		change(&next)
		cfg, err := checkAlter(name, cur.TopicConfig, next)
		if err != nil {
			return err
		}
		b.mu.Lock()
		stored, err := b.storeAlterLocked(name, t, cur, cfg)
		b.mu.Unlock()
		switch {
		case err != nil:
			return err
		case !stored:
			continue // grown, deleted or re-created meanwhile: read it again
		case cfg == cur.TopicConfig:
			return nil
		}
		// Outside b.mu: a stricter Sync fsyncs, which must not stall
		// every other topic's lookups. alterMu keeps a later AlterTopic
		// from applying its config before this one is done.
		settings := b.logSettings(cfg)
		var errs []error
		for i, p := range t.partitions() {
			if err := p.Reconfigure(settings); err != nil {
				errs = append(errs, fmt.Errorf("topic %q partition %d: %w", name, i, t.writeErr(err)))
			}
		}
		b.cleaner.wake() // the topic may be compacted, or due, now
		return errors.Join(errs...)
	}
}

// checkAlter validates next, an edit of cur (a topic's config), for
// AlterTopic, and returns it with its defaults.
func checkAlter(name string, cur, next TopicConfig) (TopicConfig, error) {
	if next.Partitions != cur.Partitions {
		return next, fmt.Errorf("%w: topic %q: partitions cannot be altered (it has %d; AddPartitions grows it)", ErrInvalidConfig, name, cur.Partitions)
	}
	next = next.withDefaults()
	if err := next.validate(); err != nil {
		return next, fmt.Errorf("topic %q: %w", name, err)
	}
	return next, nil
}

// storeAlterLocked stores cfg, a checked edit of cur, in the catalog and as
// the topic's config, unless the topic changed since cur was read (stored
// is false then). A cfg equal to cur is not written. Partitions opened from
// now on (AddPartitions) get cfg's settings. Callers hold b.mu.
func (b *Broker) storeAlterLocked(name string, t *topic, cur *topicConf, cfg TopicConfig) (stored bool, err error) {
	if err := b.checkWritable(); err != nil {
		return false, err
	}
	if b.topics[name] != t || t.config() != cur {
		return false, nil
	}
	if cfg == cur.TopicConfig {
		return true, nil
	}
	rec := catalog.Topic{Config: cfg.stored(), Partitions: cfg.Partitions, Created: t.created}
	if err := b.meta.PutTopic(name, rec); err != nil {
		return false, err
	}
	t.conf.Store(newTopicConf(cfg))
	return true, nil
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
	// Created is when CreateTopic made the topic, as stored; zero for a
	// topic adopted from a directory without metadata. With Name it tells
	// a topic from one deleted and re-created under the same name (the
	// Kafka listener derives topic IDs from the two).
	Created time.Time
}

// PartitionInfo describes one partition's log.
type PartitionInfo struct {
	Partition   int32
	StartOffset int64 // first offset still stored (moves up with retention)
	EndOffset   int64 // next offset to be written: the high watermark
	LastStable  int64 // the end for ReadCommitted readers: EndOffset, or the first offset of the oldest open transaction
	Bytes       int64 // bytes of record batches stored
	Segments    int   // segment files
	// Compacted topics (cleanup policy compact): the share of the
	// cleanable bytes (sealed segments below the last stable offset) not
	// cleaned yet, which the cleaner compares with
	// MinCleanableDirtyRatio, and the time of the last cleaning round
	// (zero: none yet). Zero for other topics.
	DirtyRatio  float64
	LastCleaned time.Time
	// What went in and out of the partition since the broker opened it
	// (the partition's share of Stats' RecordsIn, BytesIn, RecordsOut and
	// BytesOut, as Stats counts them): records and batch bytes published,
	// and records and batch
	// bytes Readers, Consumers and ReadBatches returned. Counted per batch
	// with atomics of the partition's own, so keeping them costs nothing
	// another partition feels.
	RecordsIn, BytesIn   int64
	RecordsOut, BytesOut int64
}

// DescribeTopic returns a topic's config and per-partition offsets and sizes.
func (b *Broker) DescribeTopic(name string) (TopicInfo, error) {
	t, err := b.topic(name)
	if err != nil {
		return TopicInfo{}, err
	}
	parts := t.partitions()
	info := TopicInfo{Name: name, Config: t.config().TopicConfig, Partitions: make([]PartitionInfo, len(parts)), Created: t.created}
	info.Config.Partitions = len(parts)
	for i, p := range parts {
		li := p.Info()
		info.Partitions[i] = PartitionInfo{Partition: int32(i), StartOffset: li.Start, EndOffset: li.End, LastStable: min(p.LastStable(), li.End),
			Bytes: li.Bytes, Segments: li.Segments,
			RecordsIn: li.RecordsIn, BytesIn: li.BytesIn, RecordsOut: li.RecordsOut, BytesOut: li.BytesOut}
		if st, err := p.CleanState(b.opts.Now()); err == nil && (p.Settings().Compact || !st.LastRun.IsZero()) {
			info.Partitions[i].DirtyRatio, info.Partitions[i].LastCleaned = st.Ratio, st.LastRun
		}
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

// AutoCreateTopic makes sure a topic exists as Publish would: an existing
// topic is left as it is (nil), an unknown one is created with
// Options.DefaultTopic if Options.AutoCreateTopics is set, and is
// ErrTopicNotFound otherwise. A bad name is ErrInvalidTopic; an unknown
// topic on a read-only broker ErrReadOnly. It is for front ends that create topics on a
// client's behalf, as Kafka's Metadata request does.
func (b *Broker) AutoCreateTopic(name string) error {
	if _, err := b.topic(name); !errors.Is(err, ErrTopicNotFound) {
		return err // there (nil), a bad name, or a closed broker
	}
	_, err := b.topicForWrite(name)
	return err
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
	if errors.Is(err, ErrOffsetOutOfRange) {
		err = fmt.Errorf("%s: %w", TopicPartition{Topic: topic, Partition: partition}, err) // the log does not know its name
	}
	if err != nil {
		return start, t.writeErr(err)
	}
	return start, nil
}
