package main

import (
	"bytes"
	"context"
	"io"
	"os"
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
