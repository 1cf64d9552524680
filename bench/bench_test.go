package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the benchmark's child processes
// (the kill -9 and scale workloads start this binary again).
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole program, every workload on every peer, and
// checks the shape of its output, not its figures: each peer has a figure
// or a reason for every row, none failed, and ours has every figure. It
// uses -quick, or the smaller -smoke sizes under the race detector (which
// slows the peers' servers several times) and with -short.
func TestSmoke(t *testing.T) {
	mode := "-quick"
	if raceEnabled || testing.Short() {
		mode = "-smoke"
	}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	began := time.Now()
	err := run([]string{mode, "-json", jsonPath, "-dir", t.TempDir()}, &stdout, &stderr)
	t.Logf("%s run took %v; progress:\n%s", mode, time.Since(began).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	table := stdout.String()
	t.Log("\n" + table)

	rep := readReport(t, jsonPath)
	peers := allPeers()
	if len(rep.Peers) != len(peers) {
		t.Fatalf("JSON has peers %q, want %d", rep.Peers, len(peers))
	}
	metrics := 0
	for _, w := range workloads(smokeSizes) {
		metrics += len(w.metrics)
	}
	if len(rep.Rows) != metrics {
		t.Errorf("JSON has %d rows, want %d", len(rep.Rows), metrics)
	}
	ours := embedPeer{}.name()
	for _, row := range rep.Rows {
		for _, p := range peers {
			c, ok := row.Cells[p.name()]
			switch {
			case !ok:
				t.Errorf("%s / %s: no cell for %s", row.Workload, row.Metric, p.name())
			case c.Error != "":
				t.Errorf("%s / %s: %s failed: %s", row.Workload, row.Metric, p.name(), c.Error)
			case c.Value == nil && c.NA == "":
				t.Errorf("%s / %s: %s has neither a figure nor a reason", row.Workload, row.Metric, p.name())
			case p.name() == ours && c.Value == nil:
				t.Errorf("%s / %s: ours has no figure: %s", row.Workload, row.Metric, c.NA)
			}
		}
		if !strings.Contains(table, "| "+row.Metric+" |") {
			t.Errorf("the table has no %q row", row.Metric)
		}
	}
	for _, g := range goals() {
		if !strings.Contains(table, g.text+": ") {
			t.Errorf("the table does not mark the goal %q", g.text)
		}
	}
	for _, g := range peerGoals() {
		if text := g.peer.name() + ": " + g.text + ": "; !strings.Contains(table, text) {
			t.Errorf("the table does not mark the goal %q", text)
		}
	}
}

// readReport reads the JSON a run wrote.
func readReport(t *testing.T, path string) report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}
