package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The demo runs twice on one directory: the second time it continues the
// order numbers, and each group still processes every order exactly once.
func TestEventBus(t *testing.T) {
	var buf strings.Builder
	out = &buf
	dir := t.TempDir()
	require.NoError(t, start(dir))
	require.Contains(t, buf.String(), "billing  processed orders 1-12, each exactly once")
	require.Contains(t, buf.String(), "shipping processed orders 1-12, each exactly once")
	require.Contains(t, buf.String(), "shipping resumes from its committed offsets")

	buf.Reset()
	require.NoError(t, start(dir))
	require.Contains(t, buf.String(), "published orders 13-20")
	require.Contains(t, buf.String(), "shipping processed orders 13-24, each exactly once")
}

// Without -dir the demo runs in a new temporary directory, which it prints
// and keeps (a second run there continues), saying how to remove it.
func TestEventBusTempDirIsKept(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var buf strings.Builder
	out = &buf
	require.NoError(t, start(""))
	first, _, _ := strings.Cut(buf.String(), "\n")
	dir, ok := strings.CutPrefix(first, "data directory ")
	require.True(t, ok, buf.String())
	require.True(t, strings.HasSuffix(buf.String(),
		"the data stays in "+dir+": run again with -dir "+dir+" to continue, or remove it with: rm -r "+dir+"\n"), buf.String())
	buf.Reset()
	require.NoError(t, start(dir))
	require.Contains(t, buf.String(), "published orders 13-20", "the kept directory continues")
}
