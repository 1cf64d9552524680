package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/embedstream/stream/internal/errs"
)

// goldenTopic is a topic record as every version so far has stored it.
const goldenTopic = `{"config":{"partitions":3,"retention":3600000000000,"retentionBytes":5,"segmentBytes":4096,"segmentAge":60000000000,"maxRecordBytes":100,"sync":3,"logAppendTime":true,"maxTimestampAhead":-1,"maxTimestampBehind":1000000000,"compact":true},"partitions":3,"created":"2026-01-02T03:04:05Z"}`

func TestTopicRecordFormat(t *testing.T) {
	rec := Topic{Config: TopicConfig{Partitions: 3, Retention: time.Hour, RetentionBytes: 5, SegmentBytes: 4096,
		SegmentAge: time.Minute, MaxRecordBytes: 100, Sync: 3, LogAppendTime: true, MaxTimestampAhead: -1,
		MaxTimestampBehind: time.Second, Compact: true}, Partitions: 3, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	require.JSONEq(t, goldenTopic, string(b))
	var back Topic
	require.NoError(t, json.Unmarshal([]byte(goldenTopic), &back))
	require.Equal(t, rec, back)
	// Fields left zero are left out, as before.
	b, err = json.Marshal(Topic{Config: TopicConfig{Partitions: 1}, Partitions: 1, Created: rec.Created})
	require.NoError(t, err)
	require.Equal(t, `{"config":{"partitions":1},"partitions":1,"created":"2026-01-02T03:04:05Z"}`, string(b))

	// The compaction settings, added later.
	rec = Topic{Config: TopicConfig{Partitions: 2, Cleanup: 2, MinCleanableDirtyRatio: 0.25, MinCompactionLag: time.Minute,
		MaxCompactionLag: time.Hour, DeleteRetention: -1}, Partitions: 2, Created: rec.Created}
	const golden = `{"config":{"partitions":2,"cleanup":2,"minCleanableDirtyRatio":0.25,"minCompactionLag":60000000000,"maxCompactionLag":3600000000000,"deleteRetention":-1},"partitions":2,"created":"2026-01-02T03:04:05Z"}`
	b, err = json.Marshal(rec)
	require.NoError(t, err)
	require.JSONEq(t, golden, string(b))
	back = Topic{}
	require.NoError(t, json.Unmarshal([]byte(golden), &back))
	require.Equal(t, rec, back)
}

func open(t *testing.T, path string, readOnly bool) (*Catalog, bool) {
	t.Helper()
	c, clean, err := Open(path, 0o600, readOnly, true)
	require.NoError(t, err)
	return c, clean
}

// TestCleanFlag: "clean" holds only after a clean Close, and a writable
// open clears it at once, so a crash from then on is noticed.
func TestCleanFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, clean := open(t, path, false)
	require.False(t, clean, "a new store was never closed cleanly")
	require.NoError(t, c.Close(true))
	c, clean = open(t, path, false)
	require.True(t, clean)
	require.NoError(t, c.Close(false)) // a crash, as far as the flag knows
	c, clean = open(t, path, true)
	require.False(t, clean)
	require.NoError(t, c.Close(true), "read-only: changes nothing")
	c, clean = open(t, path, false)
	require.False(t, clean)
	require.NoError(t, c.Close(true))
}

func TestReadOnlyWithoutFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, clean := open(t, path, true)
	require.False(t, clean)
	topics, err := c.Topics()
	require.NoError(t, err)
	require.Empty(t, topics)
	offs, err := c.Committed("g", nil)
	require.NoError(t, err)
	require.Empty(t, offs)
	require.NoError(t, c.Close(true))
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "a read-only open creates nothing")
}

func TestFormatMismatchRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _ := open(t, path, false)
	require.NoError(t, c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketBroker)).Put([]byte(keyFormat), []byte("2"))
	}))
	require.NoError(t, c.Close(false))
	_, _, err := Open(path, 0o600, false, true)
	require.ErrorIs(t, err, errs.ErrInvalidConfig)
}

func TestTopicsAndOffsets(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _ := open(t, path, false)
	now := time.UnixMilli(1_700_000_000_000)
	require.NoError(t, c.PutTopic("a", Topic{Partitions: 2}))
	require.NoError(t, c.PutTopic("a.b", Topic{Partitions: 1}))
	a0, a1, ab0 := TopicPartition{Topic: "a", Partition: 0}, TopicPartition{Topic: "a", Partition: 1}, TopicPartition{Topic: "a.b", Partition: 0}
	require.NoError(t, c.CommitOffsets("g1", map[TopicPartition]int64{a0: 5, a1: 7, ab0: 1}, now))
	require.NoError(t, c.CommitOffsets("g2", map[TopicPartition]int64{a0: 2, ab0: 3}, now.Add(time.Second)))

	got, err := c.Committed("g1", nil)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{a0: 5, a1: 7, ab0: 1}, got)
	got, err = c.Committed("g1", []TopicPartition{a1, {Topic: "nope", Partition: 0}})
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{a1: 7}, got)
	groups, err := c.Groups()
	require.NoError(t, err)
	require.Equal(t, []string{"g1", "g2"}, groups)
	last, err := c.LastCommits()
	require.NoError(t, err)
	require.Equal(t, map[string]time.Time{"g1": now, "g2": now.Add(time.Second)}, last)

	// Deleting topic "a" drops its record and every group's offsets for
	// it, not those of "a.b", whose key shares the prefix "a".
	require.NoError(t, c.DeleteTopic("a"))
	topics, err := c.Topics()
	require.NoError(t, err)
	require.Equal(t, []string{"a.b"}, keys(topics))
	got, err = c.Committed("g1", nil)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{ab0: 1}, got)

	require.NoError(t, c.DeleteGroup("g1"))
	require.NoError(t, c.DeleteGroup("never"), "deleting an unknown group is no error")
	groups, err = c.Groups()
	require.NoError(t, err)
	require.Equal(t, []string{"g2"}, groups)
	require.NoError(t, c.Close(true))

	c, _ = open(t, path, false)
	defer c.Close(true)
	got, err = c.Committed("g2", nil)
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{ab0: 3}, got, "offsets of a deleted topic stay deleted, others survive")
}

func TestCorruptTopicRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _ := open(t, path, false)
	defer c.Close(false)
	require.NoError(t, c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketTopics)).Put([]byte("t"), []byte("{not json"))
	}))
	_, err := c.Topics()
	require.ErrorIs(t, err, ErrDamaged)
	require.NoError(t, c.Close(false))
	for _, readOnly := range []bool{true, false} {
		_, _, err = Open(path, 0o600, readOnly, true)
		require.ErrorIs(t, err, ErrDamaged, "Open reads every topic record")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDeletedMarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _ := open(t, path, false)
	for _, name := range []string{"a", "b", "c"} {
		require.NoError(t, c.PutTopic(name, Topic{Partitions: 1}))
		require.NoError(t, c.DeleteTopic(name))
	}
	require.NoError(t, c.PutTopic("b", Topic{Partitions: 1}))
	require.NoError(t, c.Close(true))

	c, _ = open(t, path, true)
	deleted, err := c.Deleted()
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"a": true, "c": true}, deleted, "re-creating a name clears its mark")
	require.NoError(t, c.Close(true))

	c, _ = open(t, path, false)
	require.NoError(t, c.ForgetDeleted([]string{"a"}))
	deleted, err = c.Deleted()
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"c": true}, deleted)
	require.NoError(t, c.Close(true))

	deleted, err = Empty().Deleted()
	require.NoError(t, err)
	require.Empty(t, deleted)
}

// A changed byte in a well-formed data page (a key, a value, a group's
// name) passes bbolt's checks; the values' checksums make Open see it.
func TestChecksumsCatchChangedValues(t *testing.T) {
	tp := TopicPartition{Topic: "t", Partition: 1}
	setup := func(t *testing.T) (*Catalog, string) {
		path := filepath.Join(t.TempDir(), File)
		c, _ := open(t, path, false)
		require.NoError(t, c.PutTopic("t", Topic{Partitions: 2}))
		require.NoError(t, c.CommitOffsets("g", map[TopicPartition]int64{tp: 61}, time.UnixMilli(5)))
		require.NoError(t, c.PutGeneration("g", Generation{Generation: 7, Balancer: "range"}))
		return c, path
	}
	damages := map[string]func(tx *bolt.Tx) error{
		"offset value": func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketOffset)).Bucket([]byte("g"))
			v := bytes.Clone(b.Get(offsetKey(tp)))
			v[7] ^= 4 // 61 becomes 57
			return b.Put(offsetKey(tp), v)
		},
		"group name": func(tx *bolt.Tx) error {
			root := tx.Bucket([]byte(bucketOffset))
			v := root.Bucket([]byte("g")).Get(offsetKey(tp))
			b, err := root.CreateBucket([]byte("h"))
			if err == nil {
				err = b.Put(offsetKey(tp), bytes.Clone(v))
			}
			return errors.Join(err, root.DeleteBucket([]byte("g")))
		},
		"topic name": func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketTopics))
			v := bytes.Clone(b.Get([]byte("t")))
			return errors.Join(b.Put([]byte("u"), v), b.Delete([]byte("t")))
		},
		"generation value": func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketGens))
			v := bytes.Clone(b.Get([]byte("g")))
			v[bytes.Index(v, []byte(`"generation":7`))+13] = '8'
			return b.Put([]byte("g"), v)
		},
		"topic value": func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketTopics))
			v := bytes.Clone(b.Get([]byte("t")))
			v[bytes.Index(v, []byte(`"partitions":2`))+13] = '3'
			return b.Put([]byte("t"), v)
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			c, path := setup(t)
			require.NoError(t, c.db.Update(damage))
			require.NoError(t, c.Close(false))
			for _, readOnly := range []bool{true, false} {
				_, _, err := Open(path, 0o600, readOnly, true)
				require.ErrorIs(t, err, ErrDamaged)
			}
		})
	}
	t.Run("written before checksums", func(t *testing.T) {
		c, path := setup(t)
		require.NoError(t, c.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketOffset)).Bucket([]byte("g"))
			v := b.Get(offsetKey(tp))
			require.Len(t, v, 20)
			err := b.Put(offsetKey(tp), bytes.Clone(v[:16]))
			topics := tx.Bucket([]byte(bucketTopics))
			old := bytes.Clone(topics.Get([]byte("t")))
			return errors.Join(err, topics.Put([]byte("t"), old[:len(old)-4]))
		}))
		require.NoError(t, c.Close(false))
		c, _ = open(t, path, true)
		defer c.Close(false)
		got, err := c.Committed("g", nil)
		require.NoError(t, err)
		require.Equal(t, map[TopicPartition]int64{tp: 61}, got)
		topics, err := c.Topics()
		require.NoError(t, err)
		require.Equal(t, 2, topics["t"].Partitions)
	})
}

// One damaged meta page: bbolt opens at the other one's transaction, which
// may be the one before the newest; Open says so, and Check sees it too.
func TestDamagedMetaPageRollsBack(t *testing.T) {
	tp := TopicPartition{Topic: "t", Partition: 0}
	for page := range int64(2) {
		path := filepath.Join(t.TempDir(), File)
		c, _ := open(t, path, false)
		require.NoError(t, c.CommitOffsets("g", map[TopicPartition]int64{tp: 1}, time.UnixMilli(1)))
		require.NoError(t, c.CommitOffsets("g", map[TopicPartition]int64{tp: 2}, time.UnixMilli(2)))
		require.NoError(t, c.Close(true))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte{0xff}, page*int64(os.Getpagesize())+40) // inside the meta, under its checksum
		require.NoError(t, errors.Join(err, f.Close()))

		rolledBack, err := Check(path)
		require.NoError(t, err)
		require.True(t, rolledBack, "page %d", page)
		for _, readOnly := range []bool{true, false} {
			c, _ := open(t, path, readOnly)
			require.True(t, c.RolledBack(), "page %d", page)
			got, err := c.Committed("g", nil)
			require.NoError(t, err)
			require.Contains(t, []int64{1, 2}, got[tp])
			require.NoError(t, c.Close(false))
		}
		c, _ = open(t, path, false)
		require.False(t, c.RolledBack(), "the writable open's first write healed the page")
		require.NoError(t, c.Close(false))
	}
}

// A group's stored generation reads back as written, goes with the group,
// and can be dropped alone.
func TestGenerations(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _ := open(t, path, false)
	_, ok, err := c.LastGeneration("g")
	require.NoError(t, err)
	require.False(t, ok, "none before the first write, not even a bucket")
	want := Generation{Generation: 3, Balancer: "cooperative-sticky", Completed: time.UnixMilli(1_700_000_000_000).UTC(),
		Members: []Member{{ID: "member-1", InstanceID: "a", Topics: []string{"t"}, Assignment: []Partition{{Topic: "t", Partition: 1}}}}}
	require.NoError(t, c.PutGeneration("g", want))
	require.NoError(t, c.PutGeneration("h", Generation{Generation: 1}))
	require.NoError(t, c.CommitOffsets("g", map[TopicPartition]int64{{Topic: "t", Partition: 1}: 4}, time.UnixMilli(5)))
	require.NoError(t, c.Close(true))

	c, _ = open(t, path, true)
	got, ok, err := c.LastGeneration("g")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, want, got)
	names, err := c.GenerationGroups()
	require.NoError(t, err)
	require.Equal(t, []string{"g", "h"}, names)
	require.NoError(t, c.Close(false))

	c, _ = open(t, path, false)
	defer c.Close(false)
	require.NoError(t, c.DeleteGroup("g"))
	require.NoError(t, c.DeleteGeneration("h"))
	names, err = c.GenerationGroups()
	require.NoError(t, err)
	require.Empty(t, names)
}
