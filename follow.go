package stream

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/embedstream/stream/internal/catalog"
)

// A follower (Options.Follow) is a read-only broker on a directory another
// broker may own: it takes no lock and writes nothing, and a goroutine of
// its own (the owner's background goroutine never runs in it) refreshes its
// view every FollowInterval. A refresh:
//
//   - looks at meta.db (catalog.Follow): a new copy when it changed, for
//     topic configs (a topic the owner altered takes its new config),
//     committed offsets and groups' last generations;
//   - lists topics/: a topic directory gone, or replaced by another of the
//     same name (DeleteTopic, then CreateTopic), ends the topic (readers
//     get ErrTopicNotFound); a new one is opened once meta.db lists it (a
//     CreateTopic makes its directories first), or at once if meta.db is
//     missing or unreadable; partition directories added (AddPartitions)
//     are opened;
//   - refreshes every partition's log (log.Refresh), which wakes readers
//     waiting at its end when it moved.

// follower is a follower broker's refresh state.
type follower struct {
	mu      sync.Mutex             // serializes refreshes and Close
	closed  bool                   // Close has run: refreshes change nothing
	dirs    map[*topic]os.FileInfo // each followed topic's directory, to see it replaced
	version uint64                 // the meta.db copy whose topic list records holds
	records map[string]catalog.Topic
	deleted map[string]bool
	known   bool // records is meta.db's (false: it is missing or unreadable)
}

func newFollower() *follower { return &follower{dirs: map[*topic]os.FileInfo{}} }

// followMeta is openMeta for a follower: meta.db read through copies. One
// that cannot be read costs topic configs (defaults apply) and committed
// offsets until it can, and is reported as damaged.
func (b *Broker) followMeta(path string) (meta *catalog.Catalog, clean bool, records map[string]catalog.Topic, damaged bool, err error) {
	meta, clean = catalog.Follow(path, b.opts.FollowInterval)
	records, err = meta.Topics()
	if errors.Is(err, catalog.ErrUnavailable) {
		b.opts.Logger.Error("stream: cannot read meta.db; following the topic directories with default topic configs, without committed offsets, until it can be read",
			"file", path, "err", err)
		return meta, false, map[string]catalog.Topic{}, true, nil
	}
	if err != nil {
		meta.Close(false)
	}
	return meta, clean, records, false, err
}

// followLoop refreshes a follower every FollowInterval until Close.
func (b *Broker) followLoop() {
	defer close(b.done)
	tick := time.NewTicker(b.opts.FollowInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			_ = b.refresh() // failures are logged where they happen
		}
	}
}

// stopFollowing makes later refreshes do nothing, once a running one ends.
func (b *Broker) stopFollowing() {
	if b.follow == nil {
		return
	}
	b.follow.mu.Lock()
	b.follow.closed = true
	b.follow.mu.Unlock()
}

// Refresh brings a follower's view (Options.Follow) up to date with the
// directory now, rather than at its next FollowInterval: records appended,
// topics created and deleted, partitions added, segments deleted, and
// meta.db's topic configs and committed offsets. Readers and Consumers
// waiting for records wake if it found some. It returns an error wrapping
// ErrMetadataUnavailable if meta.db could not be read (the rest is
// refreshed regardless), ErrClosed after Close. A broker that owns its
// directory, or reads a stopped one, is always up to date: nil.
func (b *Broker) Refresh() error {
	b.mu.RLock()
	err := b.checkOpen()
	b.mu.RUnlock()
	if err != nil || b.follow == nil {
		return err
	}
	return b.refresh()
}

// refresh is one refresh of a follower (see the top of this file).
func (b *Broker) refresh() error {
	f := b.follow
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	metaErr := b.meta.Refresh()
	f.readCatalog(b)
	onDisk, err := b.topicDirs()
	if err != nil {
		b.opts.Logger.Warn("stream: following: cannot list the topics", "dir", b.dir, "err", err)
		return errors.Join(metaErr, err)
	}
	b.mu.RLock()
	current := maps.Clone(b.topics)
	b.mu.RUnlock()

	var gone []*topic
	changed := map[string]bool{}
	for name, t := range current {
		fi, err := b.opts.fs.Lstat(t.dir)
		if err != nil || !os.SameFile(fi, f.dirs[t]) || onDisk[name] == 0 {
			gone = append(gone, t)
			delete(current, name)
			changed[name] = true
		}
	}
	if f.known {
		for name, t := range current {
			if rec, ok := f.records[name]; ok {
				takeConfig(t, rec)
			}
		}
	}
	added := map[string]*topic{}
	for _, name := range slices.Sorted(maps.Keys(onDisk)) {
		parts := onDisk[name]
		if t := current[name]; t != nil {
			if parts > len(t.partitions()) {
				if err := b.growTopic(t, parts, false); err != nil {
					b.opts.Logger.Warn("stream: following: cannot open added partitions", "topic", name, "err", err)
				} else {
					changed[name] = true
				}
			}
			continue
		}
		if t := b.followTopic(name, parts, nil, false); t != nil {
			added[name] = t
			changed[name] = true
		}
	}
	if len(gone) > 0 || len(added) > 0 {
		b.mu.Lock()
		for _, t := range gone {
			if b.topics[t.name] == t {
				delete(b.topics, t.name)
			}
			t.deleted.Store(true)
			delete(f.dirs, t)
		}
		maps.Copy(b.topics, added)
		b.publishTopics()
		b.mu.Unlock()
		for _, t := range gone {
			b.opts.Logger.Info("stream: following: topic deleted", "topic", t.name)
			closeLogs(t.partitions()) // readers waiting in them get ErrTopicNotFound
		}
	}
	for name := range changed {
		b.groups.TopicChanged(name)
	}
	b.mu.RLock()
	topics := slices.Collect(maps.Values(b.topics))
	b.mu.RUnlock()
	for _, t := range topics {
		for _, p := range t.partitions() {
			_, _ = p.Refresh() // logged by the log; a deleted topic is seen next time
		}
	}
	return metaErr
}

// takeConfig gives a followed topic the config its owner stored (which
// AlterTopic changes), for DescribeTopic: a follower's logs are read-only,
// so nothing else of it applies.
func takeConfig(t *topic, rec catalog.Topic) {
	cfg := storedTopicConfig(rec.Config).withDefaults()
	cfg.Partitions = len(t.partitions())
	if t.config().TopicConfig != cfg {
		t.conf.Store(newTopicConf(cfg))
	}
}

// readCatalog reloads the topic records when meta.db's copy changed.
// Callers hold f.mu.
func (f *follower) readCatalog(b *Broker) {
	v := b.meta.Version()
	if f.records != nil && v == f.version {
		return
	}
	f.version = v
	records, err := b.meta.Topics()
	deleted, derr := b.meta.Deleted()
	_, statErr := b.opts.fs.Lstat(filepath.Join(b.dir, catalog.File))
	f.known = err == nil && derr == nil && statErr == nil
	if err != nil || derr != nil {
		records, deleted = map[string]catalog.Topic{}, map[string]bool{}
	}
	f.records, f.deleted = records, deleted
}

// followTopic opens a topic directory found by a refresh, with parts
// partitions, if it is one to follow: meta.db lists it (a directory alone
// may be a CreateTopic under way, or the leftover of one that failed), or
// meta.db cannot tell. At Open, rec is the topic's record (stored, or
// adopted as Open does), and clean says meta.db's copy says the owner
// closed cleanly: the logs' tails need no scan. It returns nil for a directory to pass over for
// now, or that could not be opened (logged; a later refresh tries again).
func (b *Broker) followTopic(name string, parts int, rec *catalog.Topic, clean bool) *topic {
	f := b.follow
	if rec == nil {
		r, listed := f.records[name]
		if f.deleted[name] || (f.known && !listed) {
			return nil
		}
		if listed {
			rec = &r
		}
	}
	if parts == 0 {
		return nil // listed, but its directory is gone (or not made yet)
	}
	cfg := b.opts.DefaultTopic.withDefaults()
	if rec != nil {
		cfg = storedTopicConfig(rec.Config).withDefaults()
	}
	cfg.Partitions = parts
	// The directory as it is before its files are read: if it is replaced
	// from now on, the next refresh sees it.
	fi, err := b.opts.fs.Lstat(filepath.Join(b.dir, topicsDir, name))
	if err != nil {
		return nil
	}
	t, err := b.openTopic(name, cfg, parts, clean)
	if err != nil {
		b.opts.Logger.Warn("stream: following: cannot open a topic; trying again at the next refresh", "topic", name, "err", err)
		return nil
	}
	if rec != nil {
		t.created = rec.Created
	}
	f.dirs[t] = fi
	return t
}
