package stream

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Topic data never leaves the data directory: symbolic links where a
// topic, partition or segment belongs are refused, not followed.
func TestSymlinksAreRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		link func(t *testing.T, dir string)
	}{
		{"topic directory", func(t *testing.T, dir string) {
			topic := filepath.Join(dir, topicsDir, "t")
			moved := filepath.Join(t.TempDir(), "elsewhere")
			require.NoError(t, os.Rename(topic, moved))
			require.NoError(t, os.Symlink(moved, topic))
		}},
		{"partition directory", func(t *testing.T, dir string) {
			part := filepath.Join(dir, topicsDir, "t", "0")
			moved := filepath.Join(t.TempDir(), "elsewhere")
			require.NoError(t, os.Rename(part, moved))
			require.NoError(t, os.Symlink(moved, part))
		}},
		{"segment file", func(t *testing.T, dir string) {
			log := filepath.Join(dir, topicsDir, "t", "0", "00000000000000000000.log")
			moved := filepath.Join(t.TempDir(), "elsewhere.log")
			require.NoError(t, os.Rename(log, moved))
			require.NoError(t, os.Symlink(moved, log))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Open(dir, &Options{Sync: SyncNever})
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic("t", TopicConfig{}))
			require.NoError(t, b.Publish(t.Context(), &Record{Topic: "t", Value: []byte("x")}))
			require.NoError(t, b.Close())
			c.link(t, dir)
			_, err = Open(dir, &Options{Sync: SyncNever})
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

// The lock is held across processes: see TestKillNineLosesNothingAcknowledged,
// whose parent checks that a running child's directory refuses a second Open.
