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
