package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's first command must work: run it twice on one directory and
// check that the second run finds the first run's records.
func TestQuickstartRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	out := capture(t, func() { require.NoError(t, run(context.Background(), dir)) })
	require.Contains(t, out, `published "1 x apples"`)
	require.Contains(t, out, `value="4 x figs"`)
	out = capture(t, func() { require.NoError(t, run(context.Background(), dir)) })
	require.Equal(t, 2, strings.Count(out, `value="1 x apples"`), "the second run replays both runs' records:\n%s", out)
}

// With -temp the demo runs in a new temporary directory, which it prints
// and keeps, saying how to remove it.
func TestQuickstartTempDirIsKept(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var tail strings.Builder
	out := capture(t, func() { require.NoError(t, start(context.Background(), true, &tail)) })
	dir := strings.Fields(out)[1] // "opened DIR in ..."
	require.True(t, strings.HasPrefix(out, "opened "+dir+" in "), out)
	require.Equal(t, "the data stays in "+dir+"; remove it with: rm -r "+dir+"\n", tail.String())
	require.FileExists(t, filepath.Join(dir, "meta.db"), "kept")
	out = capture(t, func() { require.NoError(t, run(context.Background(), dir)) })
	require.Equal(t, 2, strings.Count(out, `value="1 x apples"`), "the kept data is whole:\n%s", out)
}

// capture returns what fn prints to stdout.
func capture(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, r)
		done <- buf.String()
	}()
	defer func() { os.Stdout = stdout }()
	fn()
	w.Close()
	return <-done
}
