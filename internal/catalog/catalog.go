// Package catalog is the broker's metadata store: topic records, committed
// offsets and the clean-shutdown flag, in a bbolt database (DIR/meta.db).
// Records themselves never go here: they live in the segment files.
//
// The database's layout:
//
//	bucket "broker"
//	    "format"  "1"                  layout version of the directory
//	    "clean"   "1" | "0"            "1" only while no broker has it open and the
//	                                   last one closed cleanly: logs need no scan
//	bucket "topics"
//	    <topic>   JSON topicRecord     config and partition count
//	bucket "offsets"
//	    bucket <group>
//	        <topic> 0x00 <partition uint32 BE>   committed offset: int64 BE, the next
//	                                             offset to read, then the commit
//	                                             time, int64 BE ms
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
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/embedstream/stream/group"
	"github.com/embedstream/stream/internal/errs"
)

// File is the store's name in a broker's directory.
const File = "meta.db"

const (
	metaFormat   = "1"
	bucketBroker = "broker"
	bucketTopics = "topics"
	bucketOffset = "offsets"
	keyFormat    = "format"
	keyClean     = "clean"
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
// Durations are in nanoseconds; Sync is stream.SyncPolicy's number.
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
	Compact            bool          `json:"compact,omitempty"`
}

// TopicPartition names one partition of a topic.
type TopicPartition = group.TopicPartition

// Catalog is an open store. Its methods are safe for concurrent use.
type Catalog struct {
	db *bolt.DB // nil when a read-only broker found no meta.db
}

// Open opens (or, unless readOnly, creates) the store at path and reports
// whether the previous broker closed cleanly. A writable open records
// "not clean" before returning, so a crash from here on is detected. A
// read-only open of a missing file gives an empty store.
func Open(path string, perm os.FileMode, readOnly, noSync bool) (*Catalog, bool, error) {
	if readOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return &Catalog{}, false, nil
		}
	}
	db, err := bolt.Open(path, perm, &bolt.Options{ReadOnly: readOnly, NoSync: noSync, NoGrowSync: noSync, Timeout: time.Second})
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	c := &Catalog{db: db}
	clean := false
	if readOnly {
		err = db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket([]byte(bucketBroker)); b != nil {
				clean = string(b.Get([]byte(keyClean))) == "1"
			}
			return nil
		})
	} else {
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(bucketBroker))
			if err != nil {
				return err
			}
			if f := b.Get([]byte(keyFormat)); f != nil && string(f) != metaFormat {
				return fmt.Errorf("%w: %s has format %q, this version reads %q", errs.ErrInvalidConfig, path, f, metaFormat)
			}
			clean = string(b.Get([]byte(keyClean))) == "1"
			if _, err := tx.CreateBucketIfNotExists([]byte(bucketTopics)); err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists([]byte(bucketOffset)); err != nil {
				return err
			}
			if err := b.Put([]byte(keyFormat), []byte(metaFormat)); err != nil {
				return err
			}
			return b.Put([]byte(keyClean), []byte("0"))
		})
	}
	if err != nil {
		db.Close()
		return nil, false, err
	}
	return c, clean, nil
}

// view runs fn on a top-level bucket in a read transaction. Without a
// store file (a read-only broker that found none) or the bucket, there is
// nothing to read and fn does not run.
func (c *Catalog) view(bucket string, fn func(b *bolt.Bucket) error) error {
	if c.db == nil {
		return nil
	}
	return c.db.View(func(tx *bolt.Tx) error {
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
			var rec Topic
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: topic %q metadata: %v", errs.ErrCorrupt, k, err)
			}
			out[string(k)] = rec
			return nil
		})
	})
	return out, err
}

// PutTopic stores a topic's record, replacing any.
func (c *Catalog) PutTopic(name string, rec Topic) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketTopics)).Put([]byte(name), v)
	})
}

// DeleteTopic drops a topic's record and every group's offsets for it.
func (c *Catalog) DeleteTopic(name string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketTopics)).Delete([]byte(name)); err != nil {
			return err
		}
		return deleteTopicOffsets(tx, name)
	})
}

// Close records a clean shutdown (if clean, and the store is writable) and
// closes the database.
func (c *Catalog) Close(clean bool) error {
	if c.db == nil {
		return nil
	}
	var err error
	if clean && !c.db.IsReadOnly() {
		err = c.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketBroker)).Put([]byte(keyClean), []byte("1"))
		})
		if err == nil && c.db.NoSync {
			err = c.db.Sync()
		}
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
	return c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket([]byte(bucketOffset)).CreateBucketIfNotExists([]byte(group))
		if err != nil {
			return err
		}
		for tp, off := range offsets {
			// bbolt keeps the slice until the commit: one per entry.
			v := make([]byte, 16)
			binary.BigEndian.PutUint64(v, uint64(off))
			binary.BigEndian.PutUint64(v[8:], uint64(now.UnixMilli()))
			if err := b.Put(offsetKey(tp), v); err != nil {
				return err
			}
		}
		return nil
	})
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

// DeleteGroup drops a group's offsets.
func (c *Catalog) DeleteGroup(group string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
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
