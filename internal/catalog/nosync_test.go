package catalog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// TestEmptyStoreIsBboltsInit: the pages a noSync Open writes for a new
// store are, byte for byte, those bbolt's own init writes.
func TestEmptyStoreIsBboltsInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bolt.db")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, emptyStore(os.Getpagesize()))
}

// TestNoSyncSyncsNothing: a store opened with noSync is created, written
// and closed without an fdatasync (Syncs counts bbolt's init and commits,
// and Close's), and what it wrote opens again with or without noSync, with
// or without a freelist page.
func TestNoSyncSyncsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, clean, err := Open(path, 0o600, false, true)
	require.NoError(t, err)
	require.False(t, clean)
	require.NoError(t, c.PutTopic("a", Topic{Config: TopicConfig{Partitions: 1}, Partitions: 1}))
	require.NoError(t, c.Close(true))
	require.Zero(t, c.Syncs())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// bbolt's check of the file written without a freelist.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}))
	require.NoError(t, db.Close())

	// Durable again: the freelist is written, and every commit synced.
	c, clean, err = Open(path, 0o600, false, false)
	require.NoError(t, err)
	require.True(t, clean)
	require.Equal(t, int64(2), c.Syncs(), "the commit marking the store open")
	topics, err := c.Topics()
	require.NoError(t, err)
	require.Contains(t, topics, "a")
	require.NoError(t, c.PutTopic("b", Topic{Config: TopicConfig{Partitions: 1}, Partitions: 1}))
	require.NoError(t, c.Close(true))
	require.Equal(t, int64(6), c.Syncs(), "two commits more")

	// And back to noSync.
	c, clean, err = Open(path, 0o600, false, true)
	require.NoError(t, err)
	require.True(t, clean)
	topics, err = c.Topics()
	require.NoError(t, err)
	require.Len(t, topics, 2)
	require.NoError(t, c.Close(true))
	require.Zero(t, c.Syncs())
}

// TestSyncedStoreCountsInit: without noSync, bbolt creates the file and
// syncs it, then each commit syncs twice.
func TestSyncedStoreCountsInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _, err := Open(path, 0o600, false, false)
	require.NoError(t, err)
	require.Equal(t, int64(3), c.Syncs(), "bbolt's init, then the first commit")
	require.NoError(t, c.Close(true))
	require.Equal(t, int64(5), c.Syncs())
}

// TestNoSyncCreateOverExisting: a file that appears between the check for
// it and its creation is opened as it is, not overwritten.
func TestNoSyncCreateOverExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	c, _, err := Open(path, 0o600, false, true)
	require.NoError(t, err)
	require.NoError(t, c.PutTopic("a", Topic{Config: TopicConfig{Partitions: 1}, Partitions: 1}))
	require.NoError(t, c.Close(true))
	created, err := createEmpty(path, 0o600)
	require.NoError(t, err)
	require.False(t, created)
	c, _, err = Open(path, 0o600, false, true)
	require.NoError(t, err)
	topics, err := c.Topics()
	require.NoError(t, err)
	require.Contains(t, topics, "a")
	require.NoError(t, c.Close(true))
}
