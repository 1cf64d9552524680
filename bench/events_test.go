package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedstream/stream/batch"
)

// TestJSONEvents checks the generator: the same events for the same seed,
// valid JSON of about 300 bytes, the same field names in every event, and
// values that vary.
func TestJSONEvents(t *testing.T) {
	a, b := jsonEvents(1000, eventsSeed), jsonEvents(1000, eventsSeed)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs between two runs:\n%s\n%s", i, a[i], b[i])
		}
	}
	if avg := eventBytes(a) / int64(len(a)); avg < 280 || avg > 330 {
		t.Errorf("events average %d bytes, want about 300", avg)
	}
	ids := map[string]bool{}
	var keys string
	for i, e := range a {
		var m map[string]any
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, e)
		}
		names := slices.Sorted(maps.Keys(m))
		if i == 0 {
			keys = strings.Join(names, ",")
		} else if got := strings.Join(names, ","); got != keys {
			t.Fatalf("event %d has fields %s, the first %s", i, got, keys)
		}
		ids[m["event_id"].(string)] = true
	}
	if len(ids) != len(a) {
		t.Errorf("%d distinct event ids in %d events", len(ids), len(a))
	}
}

// TestEventChunks checks that the events split into batches that each fit
// eventBatchBytes, as the Producer makes them, and cover every event once.
func TestEventChunks(t *testing.T) {
	events := jsonEvents(5000, eventsSeed)
	chunks := eventChunks(events, eventBatchBytes)
	n := 0
	var bld batch.Builder
	for i, c := range chunks {
		bld.Reset(0)
		for _, v := range c {
			bld.Add(0, nil, v, nil)
		}
		if bld.Len() > eventBatchBytes {
			t.Errorf("chunk %d makes a %d-byte batch, over %d", i, bld.Len(), eventBatchBytes)
		}
		if i < len(chunks)-1 && bld.Len() < eventBatchBytes-1024 {
			t.Errorf("chunk %d makes a %d-byte batch: it could hold more", i, bld.Len())
		}
		if &c[0] != &events[n] {
			t.Fatalf("chunk %d starts at another event than %d", i, n)
		}
		n += len(c)
	}
	if n != len(events) {
		t.Errorf("chunks hold %d events, want %d", n, len(events))
	}
}

// TestJSONRows runs the JSON-event workloads at the smoke size and checks
// their shape: ours has every figure; the codec alone has them in the
// codec rows and says why not in the none rows; kfake has a figure or a
// reason in each; and ours stores as few bytes as the codec alone on the
// same batches (sizes do not depend on timing).
func TestJSONRows(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-smoke", "-only", "json", "-json", jsonPath, "-dir", t.TempDir()}, &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	table := stdout.String()
	t.Log("\n" + table)
	rep := readReport(t, jsonPath)
	if want := 4 * len(jsonCodecs); len(rep.Rows) != want {
		t.Fatalf("JSON has %d rows, want %d", len(rep.Rows), want)
	}
	if !strings.Contains(table, jsonSection) {
		t.Errorf("the table has no %q heading", jsonSection)
	}
	ours, codec := embedPeer{}.name(), codecPeer{}.name()
	for _, row := range rep.Rows {
		if row.Section != jsonSection {
			t.Errorf("%s / %s: section %q", row.Workload, row.Metric, row.Section)
		}
		for _, p := range allPeers() {
			c := row.Cells[p.name()]
			switch {
			case c.Error != "":
				t.Errorf("%s / %s: %s failed: %s", row.Workload, row.Metric, p.name(), c.Error)
			case c.Value == nil && c.NA == "":
				t.Errorf("%s / %s: %s has neither a figure nor a reason", row.Workload, row.Metric, p.name())
			case p.name() == ours && c.Value == nil:
				t.Errorf("%s / %s: ours has no figure: %s", row.Workload, row.Metric, c.NA)
			case p.name() == codec && c.Value == nil && !strings.HasPrefix(row.Workload, "none:"):
				t.Errorf("%s / %s: the codec alone has no figure: %s", row.Workload, row.Metric, c.NA)
			}
		}
		if strings.HasSuffix(row.Key, "_stored_bytes") && !strings.HasPrefix(row.Workload, "none:") {
			o, _ := row.value(ours)
			c, _ := row.value(codec)
			if o > 1.1*c || o < 0.9*c {
				t.Errorf("%s: ours stores %.1f bytes/event, the codec alone %.1f", row.Workload, o, c)
			}
		}
		if len(row.Goals) == 0 && !strings.HasPrefix(row.Workload, "none:") {
			t.Errorf("%s / %s: no goal", row.Workload, row.Metric)
		}
	}
}
