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
	// One run of each workload: TestRepeat covers the repetitions.
	mode := "-quick"
	if raceEnabled || testing.Short() {
		mode = "-smoke"
	}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	began := time.Now()
	err := run([]string{mode, "-repeat", "1", "-json", jsonPath, "-dir", t.TempDir()}, &stdout, &stderr)
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
		if mode == "-smoke" || !w.optional {
			metrics += len(w.metrics)
		}
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

// TestRepeat runs a workload twice on two peers and checks that every
// cell has both runs, their median as its value and their range.
func TestRepeat(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-smoke", "-repeat", "2", "-only", "publish", "-peers", "embedstream,raw", "-json", jsonPath, "-dir", t.TempDir()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rep := readReport(t, jsonPath)
	if len(rep.Rows) != 2 {
		t.Fatalf("JSON has %d rows, want 2", len(rep.Rows))
	}
	for _, row := range rep.Rows {
		for name, c := range row.Cells {
			if c.Value == nil || c.Min == nil || c.Max == nil || len(c.Runs) != 2 {
				t.Fatalf("%s / %s: cell %+v, want a value, a range and 2 runs", row.Metric, name, c)
			}
			if lo, hi := min(c.Runs[0], c.Runs[1]), max(c.Runs[0], c.Runs[1]); *c.Value != (lo+hi)/2 || *c.Min != lo || *c.Max != hi {
				t.Errorf("%s / %s: value %v, range %v–%v, runs %v", row.Metric, name, *c.Value, *c.Min, *c.Max, c.Runs)
			}
		}
	}
	if !strings.Contains(stderr.String(), "run 2 of 2") || !strings.Contains(stderr.String(), "median (min–max) of 2 runs") {
		t.Errorf("progress lacks the runs:\n%s", stderr.String())
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

// TestMedianAndRange checks how runs become a cell: the median is the
// value (ratios and goals use it), the range is shown beside it, and the
// JSON keeps every run.
func TestMedianAndRange(t *testing.T) {
	w := workload{id: "publish", title: "publish", metrics: []metricSpec{rateMetric("publish_100B_msgs", "msg/s")}}
	rep := newReport([]peer{embedPeer{}, kfakePeer{}})
	// Ours' best run alone would meet the goal (≥ 6M and ≥ 5× kfake); its
	// median does not.
	rep.add(w, w.title, embedPeer{}, [][]float64{{5.0e6}, {7.0e6}, {4.0e6}}, nil)
	rep.add(w, w.title, kfakePeer{}, [][]float64{{1.0e6}, {1.2e6}, {0.9e6}}, nil)
	rep.finish()

	c := rep.rowByKey["publish_100B_msgs"].Cells[embedPeer{}.name()]
	if *c.Value != 5.0e6 || *c.Min != 4.0e6 || *c.Max != 7.0e6 || len(c.Runs) != 3 || c.Runs[1] != 7.0e6 {
		t.Errorf("ours' cell: value %v, min %v, max %v, runs %v; want 5M, 4M, 7M and the runs in order", *c.Value, *c.Min, *c.Max, c.Runs)
	}
	kf := rep.rowByKey["publish_100B_msgs"].Cells[kfakePeer{}.name()]
	if *kf.Advantage != 5 {
		t.Errorf("ratio to kfake %v, want 5 (median against median)", *kf.Advantage)
	}
	goals := rep.rowByKey["publish_100B_msgs"].Goals
	if len(goals) == 0 || goals[0].Text != "≥ 6M msg/s and ≥ 5× kfake" || goals[0].Met {
		t.Errorf("goals %+v: want ≥ 6M not met on a 5M median", goals)
	}
	var out bytes.Buffer
	rep.writeTable(&out)
	for _, want := range []string{"**5.00M** (4.00–7.00)", "1.00M (900k–1.20M), 5.00×", "❌ not met"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		vals []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.vals); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.vals, got, tc.want)
		}
	}
}
