package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The metadata store, DIR/meta.db, is a bbolt database:
//
//	bucket "broker"
//	    "format"  "1"                  layout version of the directory
//	    "clean"   "1" | "0"            "1" only while no broker has it open and the
//	                                   last one closed cleanly: logs need no scan
//	bucket "topics"
//	    <topic>   JSON topicRecord     config and partition count
//
// Writes go through bbolt transactions, fsynced unless the broker runs under
// SyncNever. Records themselves never go here: they live in the segment files.
const (
	metaFile     = "meta.db"
	metaFormat   = "1"
	bucketBroker = "broker"
	bucketTopics = "topics"
	keyFormat    = "format"
	keyClean     = "clean"
)

// topicRecord is a topic's stored metadata.
type topicRecord struct {
	Config     TopicConfig `json:"config"`
	Partitions int         `json:"partitions"`
	Created    time.Time   `json:"created"`
}

type metaStore struct {
	db *bolt.DB // nil when a read-only broker found no meta.db
}

// openMeta opens (or, unless readOnly, creates) the store and reports
// whether the previous broker closed cleanly. A writable open records
// "not clean" before returning, so a crash from here on is detected.
func openMeta(path string, perm os.FileMode, readOnly, noSync bool) (*metaStore, bool, error) {
	if readOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return &metaStore{}, false, nil
		}
	}
	db, err := bolt.Open(path, perm, &bolt.Options{ReadOnly: readOnly, NoSync: noSync, Timeout: time.Second})
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	m := &metaStore{db: db}
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
				return fmt.Errorf("%w: %s has format %q, this version reads %q", ErrInvalidConfig, path, f, metaFormat)
			}
			clean = string(b.Get([]byte(keyClean))) == "1"
			if _, err := tx.CreateBucketIfNotExists([]byte(bucketTopics)); err != nil {
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
	return m, clean, nil
}

// exists reports whether the store is backed by a file.
func (m *metaStore) exists() bool { return m.db != nil }

func (m *metaStore) loadTopics() (map[string]topicRecord, error) {
	out := map[string]topicRecord{}
	if m.db == nil {
		return out, nil
	}
	err := m.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketTopics))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec topicRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: topic %q metadata: %v", ErrCorrupt, k, err)
			}
			out[string(k)] = rec
			return nil
		})
	})
	return out, err
}

func (m *metaStore) putTopic(name string, rec topicRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketTopics)).Put([]byte(name), v)
	})
}

func (m *metaStore) deleteTopic(name string) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketTopics)).Delete([]byte(name))
	})
}

// close records a clean shutdown (if clean) and closes the database.
func (m *metaStore) close(clean bool, readOnly bool) error {
	if m.db == nil {
		return nil
	}
	var err error
	if clean && !readOnly {
		err = m.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketBroker)).Put([]byte(keyClean), []byte("1"))
		})
		if err == nil && m.db.NoSync {
			err = m.db.Sync()
		}
	}
	return errors.Join(err, m.db.Close())
}
