// Package catalog is the broker's metadata store: topic records, committed
// offsets, groups' last generations and the clean-shutdown flag, in a bbolt
// database (DIR/meta.db).
// Records themselves never go here: they live in the segment files.
//
// The database's layout:
//
//	bucket "broker"
//	    "format"  "1"                  layout version of the directory
//	    "clean"   "1" | "0"            "1" only while no broker has it open and the
//	                                   last one closed cleanly: logs need no scan
//	    "producerId" int64 BE          (added later) the next idempotent producer ID
//	bucket "topics"
//	    <topic>   JSON topicRecord     config and partition count, then the
//	                                   CRC-32C of the key and the JSON, uint32 BE
//	bucket "offsets"
//	    bucket <group>
//	        <topic> 0x00 <partition uint32 BE>   committed offset: int64 BE, the next
//	                                             offset to read, then the commit
//	                                             time, int64 BE ms, then the CRC-32C
//	                                             of group, 0x00, key and those 16
//	                                             bytes, uint32 BE
//	bucket "deleted"                   (added later: a store may lack it)
//	    <topic>   "1"                  DeleteTopic dropped the topic: a directory left
//	                                   under its name is the deleted topic's, to remove,
//	                                   not to adopt; PutTopic of the name clears it
//	bucket "generations"               (added later, made at its first write)
//	    <group>   JSON Generation      the group's last completed rebalance, then the
//	                                   CRC-32C of the key and the JSON, uint32 BE
//	bucket "transactions"              (added later, made at its first write)
//	    <transactional id>  JSON Txn   the producer ID and epoch the id was last given,
//	                                   then the CRC-32C of the key and the JSON, uint32 BE
//	bucket "txndecisions"              (added later, made at its first write)
//	    <uint64 BE sequence> JSON TxnDecision  a transaction's commit decision and the
//	                                   offsets it replaced, until its markers are durable,
//	                                   then the CRC-32C of the key and the JSON, uint32 BE
//
// bbolt checksums only its meta pages: the CRCs in the values make damage
// to a data page (a changed byte in a key, a value or a group's name) show
// as ErrDamaged when Open reads every value, instead of as a phantom topic
// or a wrong committed offset. Values without one, written before it was
// added, are read as they are.
//
// Writes go through bbolt transactions, fsynced unless the store was opened
// with noSync.
package catalog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/errs"
	"github.com/embedstream/stream/internal/vfs"
)

// File is the store's name in a broker's directory.
const File = "meta.db"

const (
	metaFormat      = "1"
	bucketBroker    = "broker"
	bucketTopics    = "topics"
	bucketOffset    = "offsets"
	bucketDelete    = "deleted"
	bucketGens      = "generations"
	bucketTxns      = "transactions"
	bucketDecisions = "txndecisions"
	keyFormat       = "format"
	keyClean        = "clean"
	keyProducer     = "producerId" // the next producer ID, 8 bytes big-endian
)

// Topic is a topic's stored record, JSON in the "topics" bucket. Its
// fields and their names are part of the format: add, never rename.
type Topic struct {
	Config     TopicConfig `json:"config"`
	Partitions int         `json:"partitions"`
	Created    time.Time   `json:"created"`
}

// TopicConfig is a topic's stored settings: zero fields take their
// defaults when loaded (a field added later is zero in older records).
// Durations are in nanoseconds; Sync is stream.SyncPolicy's number, Codec
// stream.Codec's (0 producer, 1 none, 2 gzip, 3 snappy, 4 lz4, 5 zstd) and
// CodecLevel its level (0: the codec's default), Cleanup
// stream.CleanupPolicy's (0 delete, 1 compact, 2 compact,delete).
type TopicConfig struct {
	Partitions         int           `json:"partitions,omitempty"`
	Retention          time.Duration `json:"retention,omitempty"`
	RetentionBytes     int64         `json:"retentionBytes,omitempty"`
	SegmentBytes       int64         `json:"segmentBytes,omitempty"`
	SegmentAge         time.Duration `json:"segmentAge,omitempty"`
	MaxRecordBytes     int           `json:"maxRecordBytes,omitempty"`
	Sync               int           `json:"sync,omitempty"`
	LogAppendTime      bool          `json:"logAppendTime,omitempty"`
	MaxTimestampAhead  time.Duration `json:"maxTimestampAhead,omitempty"`
	MaxTimestampBehind time.Duration `json:"maxTimestampBehind,omitempty"`
	// Compact is Cleanup's retired form, no longer written: it was never
	// stored true (CreateTopic refused compaction then), and reads as
	// compact if it is.
	Compact    bool `json:"compact,omitempty"`
	Codec      int  `json:"codec,omitempty"`
	CodecLevel int  `json:"codecLevel,omitempty"`

	Cleanup                int           `json:"cleanup,omitempty"`
	MinCleanableDirtyRatio float64       `json:"minCleanableDirtyRatio,omitempty"`
	MinCompactionLag       time.Duration `json:"minCompactionLag,omitempty"`
	MaxCompactionLag       time.Duration `json:"maxCompactionLag,omitempty"`
	DeleteRetention        time.Duration `json:"deleteRetention,omitempty"`
}

// TopicPartition names one partition of a topic.
type TopicPartition = group.TopicPartition

// Generation is a group's last completed rebalance, JSON in the
// "generations" bucket: what a group's description shows once its members
// (and the process) are gone. Its fields and their names are part of the
// format: add, never rename.
type Generation struct {
	Generation int       `json:"generation"`
	Balancer   string    `json:"balancer"`
	Completed  time.Time `json:"completed"`
	Members    []Member  `json:"members"`
}

// Member is one member of a stored Generation, with what it was assigned.
type Member struct {
	ID         string      `json:"id"`
	InstanceID string      `json:"instanceId,omitempty"`
	Topics     []string    `json:"topics"`
	Assignment []Partition `json:"assignment"`
}

// Partition is a topic partition as a Generation stores it.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Catalog is an open store. Its methods are safe for concurrent use.
type Catalog struct {
	db         *bolt.DB // nil when a read-only broker found no meta.db, or a follower's
	rolledBack bool
	follow     *follower    // non-nil: a follower's store, read through copies (see Follow)
	syncs      atomic.Int64 // fdatasyncs of the file by update (see Syncs)
}

// update runs fn in a read-write bbolt transaction, counting its syncs.
func (c *Catalog) update(fn func(*bolt.Tx) error) error {
	err := c.db.Update(fn)
	if err == nil && !c.db.NoSync {
		// bbolt's commit fdatasyncs twice, one after the other: the new
		// pages, then the meta page that makes them current.
		c.syncs.Add(2)
	}
	return err
}

// Syncs counts the fdatasyncs of the file since Open: bbolt's of the file
// it creates, and two per commit (Open's own included); none when opened
// with noSync. The rarer fsync of a commit that grows the file is not
// counted.
func (c *Catalog) Syncs() int64 { return c.syncs.Load() }

// RolledBack reports that the newest transaction's meta page was damaged,
// so the store opened at the one before (bbolt keeps two): the last write
// (a commit of offsets, say) may be lost. It cannot be told from a crash in
// the middle of a commit, which bbolt's two meta pages exist for, so it is
// not damage that sets the store aside. The next write heals the page.
func (c *Catalog) RolledBack() bool {
	if c.follow != nil {
		c.follow.mu.RLock()
		defer c.follow.mu.RUnlock()
		return c.follow.rolledBack
	}
	return c.rolledBack
}

// ErrDamaged marks a store file that exists but is no usable store:
// zero-length, cut short, garbage, or inconsistent in a page its meta pages
// reach.
var ErrDamaged = errors.New("damaged metadata store")

// Open opens (or, unless readOnly, creates) the store at path and reports
// whether the previous broker closed cleanly. A writable open records
// "not clean" before returning, so a crash from here on is detected. A
// read-only open of a missing file gives an empty store.
//
// Every page an existing file's meta pages reach is read and checked before
// anything trusts or writes it: a damaged file gives an error wrapping
// ErrDamaged, and is left as it was.
func Open(path string, perm os.FileMode, readOnly, noSync bool) (*Catalog, bool, error) {
	fi, err := os.Stat(path)
	missing := errors.Is(err, os.ErrNotExist)
	switch {
	case missing:
		if readOnly {
			return Empty(), false, nil
		}
	case err != nil:
		return nil, false, err
	case fi.Size() == 0:
		// What a crash while bbolt creates the file leaves; bbolt would
		// initialize it in place, even when opened read-only.
		return nil, false, damaged(path, errors.New("zero-length file"))
	}
	var rolledBack bool
	if !missing {
		// Read-only, bbolt.Open reads only the meta pages; verify then
		// checks every page they reach before bbolt reads it.
		f, err := os.Open(path)
		if err != nil {
			return nil, false, err
		}
		defer f.Close()
		db, err := openBolt(path, perm, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			return nil, false, err
		}
		if err := protect(path, func() error { return verify(f, db, fi.Size(), &rolledBack) }); err != nil {
			db.Close()
			return nil, false, damaged(path, err)
		}
		if readOnly {
			return opened(path, db, rolledBack)
		}
		if err := db.Close(); err != nil {
			return nil, false, err
		}
	}
	if missing && noSync {
		// bbolt fdatasyncs the file it creates; without durability the
		// first pages are written here instead, unsynced.
		if _, err := createEmpty(path, perm); err != nil {
			return nil, false, err
		}
	}
	// Without durability the freelist is not written at each commit either:
	// bbolt rebuilds it from the pages in use at the next open.
	db, err := openBolt(path, perm, &bolt.Options{NoSync: noSync, NoGrowSync: noSync, NoFreelistSync: noSync, Timeout: time.Second})
	if err != nil {
		return nil, false, err
	}
	if !missing {
		// Opened writable, bbolt has loaded the freelist: bbolt's own check
		// makes sure it frees no page in use, which a write would destroy.
		// It reads only pages the walk has read.
		if err := protect(path, func() error { return check(db) }); err != nil {
			db.Close()
			return nil, false, damaged(path, err)
		}
	}
	c, clean, err := opened(path, db, rolledBack)
	if err == nil && !noSync {
		c.syncs.Add(2) // opened's commit
		if missing {
			c.syncs.Add(1) // bbolt's init
		}
	}
	return c, clean, err
}

// createEmpty writes at path the empty store bbolt would create there (its
// init: two meta pages, an empty freelist, an empty root leaf), without
// syncing it. It reports false, writing nothing, if the file exists by now.
func createEmpty(path string, perm os.FileMode) (bool, error) {
	f, err := vfs.OpenOSFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.Write(emptyStore(os.Getpagesize()))
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path) // a partial file would be damage to the next Open
		return false, err
	}
	return true, nil
}

// Empty returns a store with nothing in it and no file behind it, for a
// read-only broker whose meta.db is missing or damaged. Only its readers
// may be called.
func Empty() *Catalog { return &Catalog{} }

// damaged wraps what makes the file at path unusable as a store.
func damaged(path string, cause error) error {
	if errors.Is(cause, ErrDamaged) {
		return cause
	}
	return fmt.Errorf("%w %s: %w", ErrDamaged, path, cause)
}

// protect runs fn, turning a panic into damage: bbolt trusts its pages, and
// on a damaged file panics on a failed assertion, or faults reading a page
// past the end of the file (SetPanicOnFault makes that a panic too).
func protect(path string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, fmt.Errorf("%v", r))
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return fn()
}

// openBolt opens the bbolt file at path. Its errors wrap ErrDamaged unless
// they come from outside the file's bytes (permissions, a lock held
// elsewhere, memory), which must not cost the file. Should bolt.Open
// panic (a writable open loads the freelist, which checkPages has checked
// first), the mapping it made leaks; the lock it took is released.
func openBolt(path string, perm os.FileMode, opts *bolt.Options) (db *bolt.DB, err error) {
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := vfs.OpenOSFile(name, flag, perm)
		file = f
		return f, err
	}
	err = protect(path, func() error {
		db, err = bolt.Open(path, perm, opts)
		return err
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, ErrDamaged):
		if file != nil && db == nil {
			// The mapping holds the file open, and with it the lock.
			syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
			file.Close()
		}
		return nil, err
	case environmental(err):
		return nil, fmt.Errorf("open %s: %w", path, err)
	default:
		return nil, damaged(path, err)
	}
}

// environmental reports whether bolt.Open failed for a reason outside the
// file's bytes.
func environmental(err error) bool {
	var pathErr *os.PathError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &errno) || errors.Is(err, berrors.ErrTimeout)
}

// opened reads the clean flag and, if writable, records "not clean",
// creating the buckets of a new store.
func opened(path string, db *bolt.DB, rolledBack bool) (*Catalog, bool, error) {
	clean := false
	var err error
	if db.IsReadOnly() {
		err = db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketBroker))
			if b == nil {
				return nil
			}
			if err := checkFormat(path, b); err != nil {
				return err
			}
			clean = string(b.Get([]byte(keyClean))) == "1"
			return nil
		})
	} else {
		err = protect(path, func() error {
			return db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte(bucketBroker))
				if err != nil {
					return err
				}
				if err := checkFormat(path, b); err != nil {
					return err
				}
				clean = string(b.Get([]byte(keyClean))) == "1"
				if _, err := tx.CreateBucketIfNotExists([]byte(bucketTopics)); err != nil {
					return err
				}
				if _, err := tx.CreateBucketIfNotExists([]byte(bucketOffset)); err != nil {
					return err
				}
				if _, err := tx.CreateBucketIfNotExists([]byte(bucketDelete)); err != nil {
					return err
				}
				if err := b.Put([]byte(keyFormat), []byte(metaFormat)); err != nil {
					return err
				}
				return b.Put([]byte(keyClean), []byte("0"))
			})
		})
		if errors.Is(err, berrors.ErrIncompatibleValue) {
			// One of the store's buckets is a plain value: not our layout.
			err = damaged(path, err)
		}
	}
	if err != nil {
		db.Close()
		return nil, false, err
	}
	return &Catalog{db: db, rolledBack: rolledBack}, clean, nil
}

// Check reads the store at path as a writable Open does, without writing
// it: on a copy, in a directory of its own under os.TempDir. It returns
// ErrDamaged for what Open would set aside, and reports a roll back (see
// RolledBack). Any other error is the copy's.
//
// The file may be in use: it is copied as a follower copies it (see
// copyFile), so a transaction committing meanwhile makes it copy again
// rather than find a torn copy damaged.
func Check(path string) (rolledBack bool, err error) {
	var data []byte
	for attempt := range copyAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Millisecond)
		}
		if data, _, err = copyFile(path); err == nil || errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err != nil {
		// No consistent copy: check the bytes as they are, which a
		// damaged file (no meta page, say) is.
		if data, err = os.ReadFile(path); err != nil {
			return false, err
		}
	}
	tmp, err := os.MkdirTemp("", "embedstream-check-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	cp := filepath.Join(tmp, File)
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		return false, err
	}
	c, _, err := Open(cp, 0o600, false, true)
	if err != nil {
		return false, err
	}
	return c.RolledBack(), c.Close(false)
}

// checkFormat refuses a store laid out by a newer version.
func checkFormat(path string, b *bolt.Bucket) error {
	if f := b.Get([]byte(keyFormat)); f != nil && string(f) != metaFormat {
		return fmt.Errorf("%w: %s has format %q, this version reads %q", errs.ErrInvalidConfig, path, f, metaFormat)
	}
	return nil
}

// maxDepth bounds bucket nesting: the layout has two levels, so a store
// with more is damaged.
const maxDepth = 4

// verify checks every page reachable from the meta page in use, first
// from the file's bytes (checkPages, f is the file db has open), then
// through bbolt, reading every bucket, key and topic record. Run under
// protect, in case checkPages misses what bbolt trips on.
func verify(f *os.File, db *bolt.DB, fileSize int64, rolledBack *bool) error {
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fileSize {
			return fmt.Errorf("its pages end at byte %d, past the end of the file at %d", tx.Size(), fileSize)
		}
		var err error
		if *rolledBack, err = checkPages(f, db, tx); err != nil {
			return err
		}
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walk(b, name, 1)
		}); err != nil {
			return err
		}
		// The first writable open makes all three buckets in one
		// transaction: a store with some (or without its format) has lost
		// a key, and with it what was under it.
		found := 0
		for _, name := range []string{bucketBroker, bucketTopics, bucketOffset} {
			if tx.Bucket([]byte(name)) != nil {
				found++
			}
		}
		if found == 0 {
			return nil
		}
		if b := tx.Bucket([]byte(bucketBroker)); found < 3 || b.Get([]byte(keyFormat)) == nil {
			return errors.New("its top-level buckets are incomplete")
		}
		if err := tx.Bucket([]byte(bucketTopics)).ForEach(func(k, v []byte) error {
			_, err := decodeTopic(k, v)
			return err
		}); err != nil {
			return err
		}
		if gens := tx.Bucket([]byte(bucketGens)); gens != nil {
			if err := gens.ForEach(func(k, v []byte) error {
				_, err := decodeGeneration(k, v)
				return err
			}); err != nil {
				return err
			}
		}
		offsets := tx.Bucket([]byte(bucketOffset))
		return offsets.ForEach(func(group, v []byte) error {
			g := offsets.Bucket(group)
			if v != nil || g == nil {
				return fmt.Errorf("%w: offsets: %q is not a group", ErrDamaged, group)
			}
			return g.ForEach(func(k, v []byte) error { return checkOffset(group, k, v) })
		})
	})
}

// walk reads every key and value of a bucket and of the buckets in it.
func walk(b *bolt.Bucket, name []byte, depth int) error {
	if b == nil {
		return fmt.Errorf("key %q is not a bucket", name)
	}
	if depth > maxDepth {
		return fmt.Errorf("buckets nested deeper than %d", maxDepth)
	}
	return b.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return walk(b.Bucket(k), k, depth+1)
	})
}

// check runs bbolt's consistency check: page references, key order, and a
// freelist that matches the pages in use. It runs in a goroutine of its
// own, where a fault would not be recovered: only on pages verify has read.
func check(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		var problems []error
		for err := range tx.Check() {
			if len(problems) < 5 { // the rest tell the same story
				problems = append(problems, err)
			}
		}
		return errors.Join(problems...)
	})
}

// view runs fn on a top-level bucket in a read transaction. Without a
// store file (a read-only broker that found none) or the bucket, there is
// nothing to read and fn does not run.
func (c *Catalog) view(bucket string, fn func(b *bolt.Bucket) error) error {
	if c.follow != nil {
		return c.follow.view(func(db *bolt.DB) error { return viewBucket(db, bucket, fn) })
	}
	if c.db == nil {
		return nil
	}
	return viewBucket(c.db, bucket, fn)
}

// viewBucket runs fn on a top-level bucket of db in a read transaction, if
// it exists.
func viewBucket(db *bolt.DB, bucket string, fn func(b *bolt.Bucket) error) error {
	return db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			return fn(b)
		}
		return nil
	})
}

// Topics returns every stored topic record by name.
func (c *Catalog) Topics() (map[string]Topic, error) {
	out := map[string]Topic{}
	err := c.view(bucketTopics, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			rec, err := decodeTopic(k, v)
			out[string(k)] = rec
			return err
		})
	})
	return out, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC-32C of parts, one after another.
func checksum(parts ...[]byte) uint32 {
	var sum uint32
	for _, p := range parts {
		sum = crc32.Update(sum, castagnoli, p)
	}
	return sum
}

// encodeTopic is a topic record's stored value: JSON, then its checksum.
func encodeTopic(name string, rec Topic) ([]byte, error) { return encodeJSON(name, rec) }

func decodeTopic(name, v []byte) (Topic, error) {
	var rec Topic
	return rec, decodeJSON(name, v, &rec, "topic %q metadata")
}

// encodeJSON is a record's stored value under key name: JSON, then the
// checksum of the key and the JSON.
func encodeJSON(name string, rec any) ([]byte, error) {
	v, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint32(v, checksum([]byte(name), v)), nil
}

// decodeJSON reads into rec a value encodeJSON stored under key name; what
// says which record it is, with a %q for the key, in the error.
func decodeJSON(name, v []byte, rec any, what string) error {
	if n := len(v) - 4; n > 0 && binary.BigEndian.Uint32(v[n:]) == checksum(name, v[:n]) {
		v = v[:n]
	} // else written before checksums, or damaged: then not JSON either
	if err := json.Unmarshal(v, rec); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, fmt.Sprintf(what, name), err)
	}
	return nil
}

func decodeGeneration(group, v []byte) (Generation, error) {
	var g Generation
	return g, decodeJSON(group, v, &g, "group %q generation")
}

// PutGeneration stores a group's last completed rebalance, replacing the
// one before.
func (c *Catalog) PutGeneration(group string, g Generation) error {
	v, err := encodeJSON(group, g)
	if err != nil {
		return err
	}
	return c.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketGens))
		if err != nil {
			return err
		}
		return b.Put([]byte(group), v)
	})
}

// GenerationGroups lists the groups with a stored generation.
func (c *Catalog) GenerationGroups() ([]string, error) {
	var out []string
	err := c.view(bucketGens, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// DeleteGeneration drops a group's stored generation.
func (c *Catalog) DeleteGeneration(group string) error {
	return c.update(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketGens)); b != nil {
			return b.Delete([]byte(group))
		}
		return nil
	})
}

// LastGeneration returns a group's stored last completed rebalance, if
// there is one.
func (c *Catalog) LastGeneration(group string) (g Generation, ok bool, err error) {
	err = c.view(bucketGens, func(b *bolt.Bucket) error {
		v := b.Get([]byte(group))
		if v == nil {
			return nil
		}
		ok = true
		g, err = decodeGeneration([]byte(group), v)
		return err
	})
	return g, ok, err
}

// PutTopic stores a topic's record, replacing any.
func (c *Catalog) PutTopic(name string, rec Topic) error {
	v, err := encodeTopic(name, rec)
	if err != nil {
		return err
	}
	return c.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketDelete)).Delete([]byte(name)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketTopics)).Put([]byte(name), v)
	})
}

// DeleteTopic drops a topic's record and every group's offsets for it, and
// marks the name deleted (see Deleted).
func (c *Catalog) DeleteTopic(name string) error {
	return c.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketTopics)).Delete([]byte(name)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketDelete)).Put([]byte(name), []byte("1")); err != nil {
			return err
		}
		return deleteTopicOffsets(tx, name)
	})
}

// Deleted returns the names DeleteTopic dropped since they were last
// forgotten or re-created: a directory still under one of them is what is
// left of a deletion that did not finish.
func (c *Catalog) Deleted() (map[string]bool, error) {
	out := map[string]bool{}
	err := c.view(bucketDelete, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, _ []byte) error {
			out[string(k)] = true
			return nil
		})
	})
	return out, err
}

// ForgetDeleted clears the deleted marks of names whose directories are
// gone.
func (c *Catalog) ForgetDeleted(names []string) error {
	if len(names) == 0 {
		return nil
	}
	return c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDelete))
		for _, n := range names {
			if err := b.Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close records a clean shutdown (if clean, and the store is writable) and
// closes the database. Opened with noSync, it syncs nothing: the OS writes
// the file when it will, as it does the logs' files.
func (c *Catalog) Close(clean bool) error {
	if c.follow != nil {
		return c.follow.close()
	}
	if c.db == nil {
		return nil
	}
	var err error
	if clean && !c.db.IsReadOnly() {
		err = c.update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketBroker)).Put([]byte(keyClean), []byte("1"))
		})
	}
	return errors.Join(err, c.db.Close())
}

// offsetKey is a committed offset's key within its group's bucket.
func offsetKey(tp TopicPartition) []byte {
	k := make([]byte, 0, len(tp.Topic)+5)
	k = append(k, tp.Topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(tp.Partition))
}

func parseOffsetKey(k []byte) (TopicPartition, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k) != i+5 {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: string(k[:i]), Partition: int32(binary.BigEndian.Uint32(k[i+1:]))}, true
}

// CommitOffsets stores offsets for a group in one transaction, with now as
// their commit time. It is the one writer of committed offsets: the group
// service calls it for members' commits and for admin resets alike. No
// offsets: nothing is written.
func (c *Catalog) CommitOffsets(group string, offsets map[TopicPartition]int64, now time.Time) error {
	if len(offsets) == 0 {
		return nil // no group without offsets in the store
	}
	return c.update(func(tx *bolt.Tx) error { return putOffsets(tx, group, offsets, now) })
}

// putOffsets is CommitOffsets inside a bbolt transaction.
func putOffsets(tx *bolt.Tx, group string, offsets map[TopicPartition]int64, now time.Time) error {
	{
		b, err := tx.Bucket([]byte(bucketOffset)).CreateBucketIfNotExists([]byte(group))
		if err != nil {
			return err
		}
		for tp, off := range offsets {
			// bbolt keeps the slice until the commit: one per entry.
			k, v := offsetKey(tp), make([]byte, 16, 20)
			binary.BigEndian.PutUint64(v, uint64(off))
			binary.BigEndian.PutUint64(v[8:], uint64(now.UnixMilli()))
			v = binary.BigEndian.AppendUint32(v, offsetChecksum(group, k, v))
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	}
}

// offsetChecksum is the CRC-32C that follows a committed offset's 16 bytes.
func offsetChecksum(group string, key, v []byte) uint32 {
	return checksum([]byte(group), []byte{0}, key, v[:16])
}

// checkOffset checks a committed offset's stored value.
func checkOffset(group, key, v []byte) error {
	_, ok := parseOffsetKey(key)
	switch {
	case !ok:
		return fmt.Errorf("%w: group %q: offset key %q", ErrDamaged, group, key)
	case len(v) == 16: // written before checksums
		return nil
	case len(v) != 20 || binary.BigEndian.Uint32(v[16:]) != offsetChecksum(string(group), key, v):
		return fmt.Errorf("%w: group %q: offset %q fails its checksum", ErrDamaged, group, key)
	}
	return nil
}

// Committed returns a group's committed offsets: for parts, or all if none
// are named. Partitions never committed are absent.
func (c *Catalog) Committed(group string, parts []TopicPartition) (map[TopicPartition]int64, error) {
	out := map[TopicPartition]int64{}
	err := c.view(bucketOffset, func(root *bolt.Bucket) error {
		b := root.Bucket([]byte(group))
		if b == nil {
			return nil
		}
		if len(parts) > 0 {
			for _, tp := range parts {
				if v := b.Get(offsetKey(tp)); len(v) >= 8 {
					out[tp] = int64(binary.BigEndian.Uint64(v))
				}
			}
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if tp, ok := parseOffsetKey(k); ok && len(v) >= 8 {
				out[tp] = int64(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	return out, err
}

// LastCommits returns, per group with committed offsets, the time of its
// newest commit.
func (c *Catalog) LastCommits() (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := c.view(bucketOffset, func(root *bolt.Bucket) error {
		return root.ForEach(func(name, v []byte) error {
			g := root.Bucket(name)
			if v != nil || g == nil {
				return nil
			}
			var newest int64
			if err := g.ForEach(func(_, v []byte) error {
				if len(v) >= 16 {
					newest = max(newest, int64(binary.BigEndian.Uint64(v[8:])))
				}
				return nil
			}); err != nil {
				return err
			}
			out[string(name)] = time.UnixMilli(newest)
			return nil
		})
	})
	return out, err
}

// Groups lists the groups with committed offsets.
func (c *Catalog) Groups() ([]string, error) {
	var out []string
	err := c.view(bucketOffset, func(root *bolt.Bucket) error {
		return root.ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out, err
}

// DeleteGroup drops a group's offsets and its last generation.
func (c *Catalog) DeleteGroup(group string) error {
	return c.update(func(tx *bolt.Tx) error {
		if gens := tx.Bucket([]byte(bucketGens)); gens != nil {
			if err := gens.Delete([]byte(group)); err != nil {
				return err
			}
		}
		err := tx.Bucket([]byte(bucketOffset)).DeleteBucket([]byte(group))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// deleteTopicOffsets drops every group's offsets for a topic, in the same
// transaction as the topic's record.
func deleteTopicOffsets(tx *bolt.Tx, topic string) error {
	root := tx.Bucket([]byte(bucketOffset))
	if root == nil {
		return nil
	}
	prefix := append([]byte(topic), 0)
	return root.ForEach(func(g, v []byte) error {
		if v != nil {
			return nil
		}
		b := root.Bucket(g)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// NextProducerID allocates an idempotent producer's ID, durably: the
// broker bucket keeps the next one. An ID is also never below now in
// microseconds: a store that lost the counter (rebuilt after damage, or
// opened at its previous transaction) still never hands out an ID again
// (allocations, each an fsynced transaction, are far slower than one per
// microsecond), so a partition never meets a reused ID against producer
// state still in its log; the counter covers a clock that went back.
func (c *Catalog) NextProducerID(now time.Time) (int64, error) {
	if c.db == nil {
		return 0, errs.ErrReadOnly
	}
	var id int64
	err := c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketBroker))
		if b == nil {
			return fmt.Errorf("%w: no broker bucket", ErrDamaged)
		}
		id = max(now.UnixMicro(), 0)
		if v := b.Get([]byte(keyProducer)); len(v) == 8 {
			id = max(id, int64(binary.BigEndian.Uint64(v)))
		}
		return b.Put([]byte(keyProducer), binary.BigEndian.AppendUint64(nil, uint64(id+1)))
	})
	return id, err
}

// Txn is a transactional ID's record: the producer ID and epoch it was
// last given and its transactions' timeout.
type Txn struct {
	ProducerID int64 `json:"producerId"`
	Epoch      int16 `json:"epoch"`
	TimeoutMS  int64 `json:"timeoutMs"`
}

// TxnDecision is a transaction's commit decision, kept until its markers
// are durable in every partition: Open completes the ones a crash left
// (see the stream package's transactions). Key is its place in the
// "txndecisions" bucket, set by DecideTxn.
type TxnDecision struct {
	Key        uint64         `json:"-"`
	ID         string         `json:"id"` // the transactional ID
	ProducerID int64          `json:"producerId"`
	Epoch      int16          `json:"epoch"`
	Decided    string         `json:"decided"` // "commit", or "abort" once undone
	Partitions []TxnPartition `json:"partitions"`
	// Undo is the offsets the commit replaced (Offset -1: none was
	// committed): a commit is decided while its records are still being
	// made durable, and one whose records a machine crash lost is undone
	// (UndoTxn) rather than completed.
	Undo []TxnUndo `json:"undo,omitempty"`
}

// TxnPartition is a partition a decided transaction wrote to. Last is the
// log end after its last batch there: the transaction's records lie
// below it, so an open transaction of the same producer that starts at
// or after it is a later one.
type TxnPartition struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Last      int64     `json:"last"`
	Created   time.Time `json:"created"` // the topic's creation: one created again since is another
}

// TxnUndo is a committed offset as it was before a transaction's commit.
type TxnUndo struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"` // -1: none
}

func txnBucket(tx *bolt.Tx) (*bolt.Bucket, error) {
	return tx.CreateBucketIfNotExists([]byte(bucketTxns))
}

func decisionKey(k uint64) []byte { return binary.BigEndian.AppendUint64(nil, k) }

// PutTxn stores a transactional ID's record.
func (c *Catalog) PutTxn(id string, rec Txn) error {
	if c.db == nil {
		return errs.ErrReadOnly
	}
	v, err := encodeJSON(id, rec)
	if err != nil {
		return err
	}
	return c.update(func(tx *bolt.Tx) error {
		b, err := txnBucket(tx)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
}

// DecideTxn stores a commit decision and the offsets it commits (per
// group) in one bbolt transaction: both are durable, or neither; and drops
// the decisions whose keys drop lists (their markers are durable now). It
// returns d with its Key and Undo, the offsets the commit replaces.
func (c *Catalog) DecideTxn(d TxnDecision, offsets map[string]map[TopicPartition]int64, drop []uint64, now time.Time) (TxnDecision, error) {
	if c.db == nil {
		return d, errs.ErrReadOnly
	}
	d.Undo = nil
	err := c.update(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte(bucketOffset))
		for group, offs := range offsets {
			g := root.Bucket([]byte(group))
			for tp := range offs {
				prev := int64(-1)
				if g != nil {
					if v := g.Get(offsetKey(tp)); len(v) >= 8 {
						prev = int64(binary.BigEndian.Uint64(v))
					}
				}
				d.Undo = append(d.Undo, TxnUndo{Group: group, Topic: tp.Topic, Partition: tp.Partition, Offset: prev})
			}
		}
		b, err := tx.CreateBucketIfNotExists([]byte(bucketDecisions))
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(decisionKey(k)); err != nil {
				return err
			}
		}
		if d.Key, err = b.NextSequence(); err != nil {
			return err
		}
		key := decisionKey(d.Key)
		v, err := encodeJSON(string(key), d)
		if err != nil {
			return err
		}
		if err := b.Put(key, v); err != nil {
			return err
		}
		for group, offs := range offsets {
			if len(offs) == 0 {
				continue
			}
			if err := putOffsets(tx, group, offs, now); err != nil {
				return err
			}
		}
		return nil
	})
	return d, err
}

// UndoTxn reverses a decided commit whose records were lost: the offsets
// it committed go back to d.Undo's, and the decision says "abort", in one
// bbolt transaction.
func (c *Catalog) UndoTxn(d TxnDecision, now time.Time) error {
	if c.db == nil {
		return errs.ErrReadOnly
	}
	undo := d.Undo
	d.Decided, d.Undo = "abort", nil
	key := decisionKey(d.Key)
	v, err := encodeJSON(string(key), d)
	if err != nil {
		return err
	}
	return c.update(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte(bucketOffset))
		for _, u := range undo {
			tp := TopicPartition{Topic: u.Topic, Partition: u.Partition}
			if u.Offset >= 0 {
				if err := putOffsets(tx, u.Group, map[TopicPartition]int64{tp: u.Offset}, now); err != nil {
					return err
				}
			} else if g := root.Bucket([]byte(u.Group)); g != nil {
				if err := g.Delete(offsetKey(tp)); err != nil {
					return err
				}
			}
		}
		b, err := tx.CreateBucketIfNotExists([]byte(bucketDecisions))
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
}

// TxnDecisions returns the stored decisions, oldest first.
func (c *Catalog) TxnDecisions() ([]TxnDecision, error) {
	var out []TxnDecision
	if c.db == nil {
		return out, nil
	}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDecisions))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var d TxnDecision
			if len(k) != 8 {
				return fmt.Errorf("%w: transaction decision key %q", ErrDamaged, k)
			}
			if err := decodeJSON(k, v, &d, "transaction decision %q"); err != nil {
				return err
			}
			d.Key = binary.BigEndian.Uint64(k)
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// DropTxnDecisions deletes decisions whose markers are durable.
func (c *Catalog) DropTxnDecisions(keys []uint64) error {
	if c.db == nil {
		return errs.ErrReadOnly
	}
	return c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDecisions))
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete(decisionKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Txns returns every transactional ID's record.
func (c *Catalog) Txns() (map[string]Txn, error) {
	out := map[string]Txn{}
	if c.db == nil {
		return out, nil
	}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketTxns))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec Txn
			if err := decodeJSON(k, v, &rec, "transactional id %q"); err != nil {
				return err
			}
			out[string(k)] = rec
			return nil
		})
	})
	return out, err
}
