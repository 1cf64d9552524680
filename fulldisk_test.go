package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// mountTiny mounts a small tmpfs for the test, or skips when it cannot
// (not root, no mount permission).
func mountTiny(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small filesystem")
	}
	dir := filepath.Join(t.TempDir(), "tiny")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A full disk is an error on Publish, never a SIGBUS on a read of mapped
// data: files are preallocated before they are written or mapped.
func TestFullDiskIsAnErrorNotSIGBUS(t *testing.T) {
	dir := mountTiny(t, "3m")
	b, err := Open(filepath.Join(dir, "data"), &Options{Sync: SyncNever})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic("t", TopicConfig{SegmentBytes: 512 << 10}))
	ctx := context.Background()
	var acked int64
	for i := 0; ; i++ {
		err = b.Publish(ctx, &Record{Topic: "t", Value: []byte(fmt.Sprintf("%05d-%s", i, make([]byte, 8<<10)))})
		if err != nil {
			break
		}
		acked++
		require.Less(t, i, 10_000, "the disk never filled")
	}
	require.True(t, errors.Is(err, syscall.ENOSPC), "want ENOSPC, got %v", err)
	require.Positive(t, acked)
	// Every acknowledged record reads back through the mapping.
	require.Len(t, values(t, b, "t", 0), int(acked))
	// Still full: still a clean error, and nothing stored is harmed.
	require.ErrorIs(t, b.Publish(ctx, &Record{Topic: "t", Value: make([]byte, 64<<10)}), syscall.ENOSPC)
	require.Len(t, values(t, b, "t", 0), int(acked))
	b.Close() // may report the full disk while trimming; what is stored stays

	b, err = Open(filepath.Join(dir, "data"), &Options{Sync: SyncNever})
	require.NoError(t, err)
	defer b.Close()
	got := values(t, b, "t", 0)
	require.Len(t, got, int(acked))
	for i, v := range got {
		require.Equal(t, fmt.Sprintf("%05d", i), v[:5])
	}
}
