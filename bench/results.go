package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/embedstream/stream/batch"
)

// metricSpec describes one measured figure: a row of the table.
type metricSpec struct {
	key    string // stable name in the JSON
	label  string // metric column of the table
	higher bool   // higher is better
	format func(float64) string
	// floor: below it ours counts as zero, and ratios to it are not shown.
	floor float64
	// na is why a peer that returns NaN for this figure has none (see
	// workload.run).
	na string
}

func rateMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, higher: true, format: fmtRate}
}
func mbpsMetric(key string) metricSpec { return mbpsLabeled(key, "MB/s") }
func mbpsLabeled(key, label string) metricSpec {
	return metricSpec{key: key, label: label, higher: true, format: fmtFloat}
}
func bytesMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, format: func(v float64) string { return fmt.Sprintf("%.1f B", v) }}
}
func usMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, format: fmtMicros}
}
func msMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, format: fmtMillis}
}
func allocMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, floor: 0.01, format: func(v float64) string {
		if v > 0 && v < 0.01 {
			return fmt.Sprintf("%.4f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}}
}
func sizeMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, format: func(v float64) string { return fmt.Sprintf("%.0f MB", v) }}
}
func countMetric(key, label string) metricSpec {
	return metricSpec{key: key, label: label, format: func(v float64) string { return fmt.Sprintf("%.0f", v) }}
}

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtFloat(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// fmtMicros formats a duration given in µs.
func fmtMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	case us >= 100:
		return fmt.Sprintf("%.0f µs", us)
	}
	return fmt.Sprintf("%.2f µs", us)
}

// fmtMillis formats a duration given in ms.
func fmtMillis(ms float64) string { return fmtMicros(ms * 1e3) }

// cell is one peer's figure for one metric, or why there is none. Value is
// the median of the runs (the figure the ratios and goals use), Min and Max
// their range, Runs every run's figure in run order.
type cell struct {
	Value *float64  `json:"value,omitempty"`
	Min   *float64  `json:"min,omitempty"`
	Max   *float64  `json:"max,omitempty"`
	Runs  []float64 `json:"runs,omitempty"`
	NA    string    `json:"na,omitempty"`    // why the peer cannot run the workload
	Error string    `json:"error,omitempty"` // how the run failed
	// Advantage is how many times better ours is than this peer (above 1:
	// ours is better; below 1: the peer is), whichever way the metric goes.
	Advantage *float64 `json:"ours_advantage,omitempty"`
}

// row is one metric of one workload, over all peers.
type row struct {
	Section        string          `json:"section,omitempty"` // the table it is printed in ("": the first)
	Workload       string          `json:"workload"`
	Metric         string          `json:"metric"`
	Key            string          `json:"key"`
	HigherIsBetter bool            `json:"higher_is_better"`
	Cells          map[string]cell `json:"peers"`
	Goals          []goalResult    `json:"goals,omitempty"`
	spec           metricSpec
}

type goalResult struct {
	Text string `json:"text"`
	Met  bool   `json:"met"`
}

// report is the whole run: the JSON document and the table's source.
type report struct {
	Machine  map[string]string `json:"machine"`
	Sizes    map[string]any    `json:"sizes"`
	Peers    []string          `json:"peers"`
	Rows     []*row            `json:"results"`
	Notes    []string          `json:"notes"`
	Seconds  float64           `json:"seconds"`
	ours     string
	rowByKey map[string]*row
}

func newReport(peers []peer) *report {
	r := &report{rowByKey: map[string]*row{}}
	for _, p := range peers {
		r.Peers = append(r.Peers, p.name())
	}
	r.ours = embedPeer{}.name()
	return r
}

// add records one peer's runs (each one value per metric) or error for a
// workload's metrics: the median of each figure, its range and its runs.
func (r *report) add(w workload, title string, p peer, runs [][]float64, err error) {
	for i, m := range w.metrics {
		rw := r.rowByKey[m.key]
		if rw == nil {
			rw = &row{Section: w.section, Workload: title, Metric: m.label, Key: m.key, HigherIsBetter: m.higher,
				Cells: map[string]cell{}, spec: m}
			r.rowByKey[m.key] = rw
			r.Rows = append(r.Rows, rw)
		}
		switch {
		case errors.Is(err, errNotSupported):
			rw.Cells[p.name()] = cell{NA: reason(err)}
		case err != nil:
			rw.Cells[p.name()] = cell{Error: err.Error()}
		default:
			col := column(runs, i)
			if len(col) == 0 {
				rw.Cells[p.name()] = cell{NA: m.na}
				continue
			}
			med, lo, hi := median(col), slices.Min(col), slices.Max(col)
			rw.Cells[p.name()] = cell{Value: &med, Min: &lo, Max: &hi, Runs: col}
		}
	}
}

// column returns figure i of each run that has it (not NaN), in run
// order.
func column(runs [][]float64, i int) []float64 {
	var col []float64
	for _, r := range runs {
		if i < len(r) && !math.IsNaN(r[i]) {
			col = append(col, r[i])
		}
	}
	return col
}

// median returns the median of vals (the mean of the middle two for an even
// count), leaving vals as they are.
func median(vals []float64) float64 {
	s := slices.Sorted(slices.Values(vals))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// finish computes the ratios to ours and evaluates the goals.
func (r *report) finish() {
	for _, rw := range r.Rows {
		ours, ok := rw.value(r.ours)
		if !ok || ours < rw.spec.floor {
			continue
		}
		for name, c := range rw.Cells {
			if name == r.ours || c.Value == nil {
				continue
			}
			adv := *c.Value / ours
			if rw.HigherIsBetter {
				adv = ours / *c.Value
			}
			if !math.IsNaN(adv) && !math.IsInf(adv, 0) {
				c.Advantage = &adv
				rw.Cells[name] = c
			}
		}
	}
	all := make([]peerGoal, 0)
	for _, g := range goals() {
		all = append(all, peerGoal{goal: g})
	}
	for _, g := range append(all, peerGoals()...) {
		rw := r.rowByKey[g.key]
		if rw == nil {
			continue
		}
		peer, res := r.ours, goalResult{Text: g.text}
		if g.peer != nil {
			peer, res.Text = g.peer.name(), g.peer.name()+": "+g.text
		}
		if v, ok := rw.value(peer); ok {
			res.Met = g.met(v, r)
		}
		rw.Goals = append(rw.Goals, res)
	}
}

func (rw *row) value(peer string) (float64, bool) {
	c, ok := rw.Cells[peer]
	if !ok || c.Value == nil {
		return 0, false
	}
	return *c.Value, true
}

// value returns a peer's figure for a metric key.
func (r *report) value(key, peer string) (float64, bool) {
	rw := r.rowByKey[key]
	if rw == nil {
		return 0, false
	}
	return rw.value(peer)
}

// goal is one of the issues' targets for ours.
type goal struct {
	key  string
	text string
	met  func(ours float64, r *report) bool
}

// peerGoal is a target for another of our columns: the Kafka listener's.
type peerGoal struct {
	peer peer
	goal
}

// peerGoals are the listener's targets, against kfake with the same kgo
// clients.
func peerGoals() []peerGoal {
	return []peerGoal{
		{listenerPeer{}, goal{"publish_100B_msgs", "≥ 1M msg/s and ≥ 3× kfake", func(v float64, r *report) bool {
			best := bestKfake(r, "publish_100B_msgs")
			return v >= 1e6 && best > 0 && v >= 3*best
		}}},
		{listenerPeer{}, goal{"consume_msgs", "≥ 3× kfake", func(v float64, r *report) bool {
			best := bestKfake(r, "consume_msgs")
			return best > 0 && v >= 3*best
		}}},
	}
}

func goals() []goal {
	atLeast := func(x float64) func(float64, *report) bool {
		return func(v float64, _ *report) bool { return v >= x }
	}
	atMost := func(x float64) func(float64, *report) bool {
		return func(v float64, _ *report) bool { return v <= x }
	}
	return append([]goal{
		{"publish_100B_msgs", "≥ 6M msg/s and ≥ 5× kfake", func(v float64, r *report) bool {
			best := bestKfake(r, "publish_100B_msgs")
			return v >= 6e6 && best > 0 && v >= 5*best
		}},
		{"consume_msgs", "≥ 18M msg/s", atLeast(18e6)},
		{"consume_allocs_per_record", "0 allocs/record", atMost(0.001)},
		{"consume_copying_msgs", "≥ 3× kfake", func(v float64, r *report) bool {
			best := bestKfake(r, "consume_copying_msgs")
			return best > 0 && v >= 3*best
		}},
		{"consume_copying_allocs_per_record", "≤ 1 alloc/record", atMost(1)},
		{"latency_p50_us", "p50 ≤ 2 µs", atMost(2)},
		{"syncalways_p50_us", "≤ 1.2× raw fsync", func(v float64, r *report) bool {
			raw, ok := r.value("syncalways_p50_us", rawPeer{}.name())
			return ok && v <= 1.2*raw
		}},
		{"groupcommit_msgs", "≥ 150k msg/s", atLeast(150e3)},
		{"roundtrip_p50_us", "≤ 300 µs", atMost(300)},
		{"roundtrip_mean_us", "≤ 1 ms", atMost(1000)},
		{"wakeup_p99_us", "p99 ≤ 50 µs", atMost(50)},
		{"recovery_open_ms", "≤ 200 ms", atMost(200)},
		{"scale_open_ms", "≤ 2 s", atMost(2000)},
		{"scale_rss_MB", "≤ 200 MB", atMost(200)},
	}, slices.Concat(producerGoals(), partitionsGoals(), jsonGoals(), txnGoals(), compactGoals())...)
}

// jsonGoals are the targets of the JSON-event rows, for each codec (none
// has no codec to measure against): publish and consume at least 0.8× the
// codec alone's throughput on the same batches and 3× kfake's with the same
// codec (the best of its two columns; against Broker.Publish, kgo's one
// batching path); stored bytes within 10% of the codec's own.
func jsonGoals() []goal {
	var gs []goal
	for _, c := range jsonCodecs {
		if c.wire == batch.None {
			continue
		}
		for _, m := range []string{"batched_MBps", "publish_MBps", "consume_MBps"} {
			key, kfakeKey := jsonKey(c, m), jsonKey(c, m)
			if m == "publish_MBps" {
				kfakeKey = jsonKey(c, "batched_MBps")
			}
			gs = append(gs, goal{key, "≥ 0.8× codec alone and ≥ 3× kfake", func(v float64, r *report) bool {
				codec, ok := r.value(key, codecPeer{}.name())
				kf := bestKfake(r, kfakeKey)
				return ok && v >= 0.8*codec && kf > 0 && v >= 3*kf
			}})
		}
		key := jsonKey(c, "stored_bytes")
		gs = append(gs, goal{key, "≤ 1.1× codec alone", func(v float64, r *report) bool {
			codec, ok := r.value(key, codecPeer{}.name())
			return ok && v <= 1.1*codec
		}})
	}
	return gs
}

// bestKfake is the better of kfake's two figures for a metric where higher
// is better, 0 if neither ran.
func bestKfake(r *report, key string) float64 {
	best := 0.0
	for _, k := range []kfakePeer{{false}, {true}} {
		if kv, ok := r.value(key, k.name()); ok {
			best = max(best, kv)
		}
	}
	return best
}

// writeTable prints the markdown tables: one per section, each with the
// peers that have a figure (or failed) in one of its rows, then the notes.
func (r *report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "Machine: %s\n\n", r.Machine["summary"])
	fmt.Fprintf(w, "Each figure is the median of the runs, (min–max) their range; in a peer's column, N× is how many times better ours is on that row, median against median: above 1 ours is better, below 1 the peer is. Goals are judged on ours' median.\n")
	var sections []string
	for _, rw := range r.Rows {
		if !slices.Contains(sections, rw.Section) {
			sections = append(sections, rw.Section)
		}
	}
	for _, sec := range sections {
		fmt.Fprintln(w)
		if sec != "" {
			fmt.Fprintf(w, "%s\n\n", sec)
		}
		var rows []*row
		for _, rw := range r.Rows {
			if rw.Section == sec {
				rows = append(rows, rw)
			}
		}
		r.writeSection(w, rows)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

// writeSection prints one table of rows, leaving out the peers that have
// no figure in any of them (the codec alone outside the JSON-event rows).
func (r *report) writeSection(w io.Writer, rows []*row) {
	var peers []string
	for _, name := range r.Peers {
		if slices.ContainsFunc(rows, func(rw *row) bool {
			c := rw.Cells[name]
			return c.Value != nil || c.Error != ""
		}) {
			peers = append(peers, name)
		}
	}
	fmt.Fprintf(w, "| workload | metric | %s | goal (ours) |\n", strings.Join(peers, " | "))
	fmt.Fprintf(w, "|---|---|%s---|\n", strings.Repeat("--:|", len(peers)))
	last := ""
	for _, rw := range rows {
		title := rw.Workload
		if title == last {
			title = ""
		}
		last = rw.Workload
		cells := make([]string, len(peers))
		for i, name := range peers {
			c, ok := rw.Cells[name]
			switch {
			case !ok:
				cells[i] = "–"
			case c.Error != "":
				cells[i] = "failed: " + c.Error
			case c.Value == nil:
				cells[i] = "n/a: " + c.NA
			default:
				cells[i] = rw.spec.format(*c.Value)
				if name == r.ours {
					cells[i] = "**" + cells[i] + "**"
				}
				if len(c.Runs) > 1 {
					cells[i] += " (" + fmtRange(rw.spec.format, *c.Min, *c.Max) + ")"
				}
				if c.Advantage != nil {
					cells[i] += fmt.Sprintf(", %s×", fmtAdvantage(*c.Advantage))
				}
			}
		}
		var gs []string
		for _, goal := range rw.Goals {
			mark := "✅ met"
			if !goal.Met {
				mark = "❌ not met"
			}
			gs = append(gs, goal.Text+": "+mark)
		}
		g := strings.Join(gs, "; ")
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", title, rw.Metric, strings.Join(cells, " | "), g)
	}
}

// fmtRange formats min–max compactly: a unit both share is left out
// ("19.80–21.40" for 19.80M and 21.40M), the median beside it has it.
func fmtRange(format func(float64) string, lo, hi float64) string {
	a, b := format(lo), format(hi)
	if unit := sharedUnit(a, b); unit != "" {
		a, b = strings.TrimSuffix(a, unit), strings.TrimSuffix(b, unit)
	}
	return a + "–" + b
}

// sharedUnit returns the non-numeric suffix a and b both end with ("M",
// " µs"), or "" if they differ.
func sharedUnit(a, b string) string {
	unit := func(s string) string {
		return s[len(strings.TrimRightFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })):]
	}
	if u := unit(a); u == unit(b) && u != a {
		return u
	}
	return ""
}

func fmtAdvantage(a float64) string {
	switch {
	case a < 0.1:
		return fmt.Sprintf("%.2g", a)
	case a >= 100:
		return fmt.Sprintf("%.0f", a)
	case a >= 10:
		return fmt.Sprintf("%.1f", a)
	}
	return fmt.Sprintf("%.2f", a)
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
