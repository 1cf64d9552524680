package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExactlyOnce(t *testing.T) {
	var buf strings.Builder
	out = &buf
	require.NoError(t, run(context.Background(), t.TempDir()))
	require.Contains(t, buf.String(), "worker 1 committed 12 payments, then died in a transaction")
	require.Contains(t, buf.String(), "worker 2 committed the other 18 payments")
	require.Contains(t, buf.String(), "read_committed: 60 ledger entries, one debit and one credit per payment, none twice")
	require.Contains(t, buf.String(), "read_uncommitted: 68 entries")
}
