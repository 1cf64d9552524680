package stream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/segment"
)

// The damage matrix (#13): every kind of file the broker owns (active and
// sealed segments, .index, .timeindex, log-start, meta.db, LOCK), every
// kind of damage (truncation, zero-filled ranges, bit flips, garbage
// appended, file missing, file emptied, permissions), after a clean and
// after an unclean shutdown, opened read-write and read-only. A cell copies
// a pristine data directory, damages one file, runs `streamctl verify` on
// it, opens a broker and checks:
//
//   - Open succeeds: it may fail only for a cause the caller can fix (here
//     os.ErrPermission, in the chmod cells, never seen as root), and a
//     read-only broker changes no byte;
//   - a Reader and a Consumer, passing damage as its CorruptError says,
//     return every record of every batch that passes its checks (from the
//     log start on), byte-exact at its offset, and nothing of a batch that
//     fails them; OffsetForTime never fails and skips damage; a second Open
//     (read-write cells) returns the same;
//   - the group's committed offsets survive, or Stats().MetaRebuilds (or
//     MetaRollbacks) counts
//     their loss;
//   - damage that costs records shows in Stats (CorruptBatches or
//     Truncations; LogStartResets for a log-start file holding no offset),
//     in the log, and in `streamctl verify` (exit status 1), unless the
//     files cannot tell it from records never written or deleted by
//     retention (dmLooksUnwritten).
//
// The oracle is the pristine files, parsed with package batch: after the
// damage a batch passes its checks iff its bytes are unchanged at the same
// place (its partitionLeaderEpoch aside, which no check covers).
//
// `make test` runs a fixed sample: one cell per (file kind, damage kind)
// pair, in turn clean or unclean, read-write or read-only. The full matrix
// (about 6000 cells; minutes, mostly spent in the cells that hang):
//
//	EMBEDSTREAM_DAMAGE_MATRIX=full go test -run TestDamageMatrix -parallel 4 -timeout 2h .
//
// A failure names its symptom in brackets ([good-records-missing], ...);
// the closing summary counts cells and failed cells by symptom.

const (
	dmEnv          = "EMBEDSTREAM_DAMAGE_MATRIX"
	dmTopic        = "dm"
	dmGroup        = "dm-group" // the group whose commits must survive
	dmCheckGroup   = "dm-check" // the group a cell consumes with
	dmSegmentBytes = 12 << 10
	dmLogStart     = "log-start" // internal/log's name for DeleteRecords' mark
)

// dmEpoch is the first record's timestamp: fixed, so the pristine segment
// files are the same bytes on every run and cells name the same damage.
var dmEpoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// dmRecord is one stored record, as written.
type dmRecord struct {
	offset  int64
	ts      int64 // ms
	key     []byte
	value   []byte
	headers []Header
}

// dmBatch is one batch of a pristine segment file.
type dmBatch struct {
	file      string // path relative to the data directory
	part      int32
	pos, size int64
	first     int64 // base offset
	last      int64 // last offset
	recs      []*dmRecord
}

// dmFile is one file of a pristine data directory.
type dmFile struct {
	rel   string // path relative to the data directory
	kind  string // active, sealed, index, timeindex, log-start, meta, lock
	label string // short name for cell names: p0-seg2.log, meta.db, ...
	part  int32  // -1 for broker-wide files
	seg   int    // segment number in its partition, -1 if not a segment file
	data  []byte
}

// dmFixture is a pristine data directory and what it holds.
type dmFixture struct {
	name      string // clean, unclean
	dir       string
	files     []*dmFile
	batches   map[int32][]*dmBatch // per partition, in offset order
	byFile    map[string][]*dmBatch
	start     map[int32]int64 // log start offsets
	end       map[int32]int64 // log end offsets
	committed map[TopicPartition]int64
}

// dmDamage is one kind of damage at one place.
type dmDamage struct {
	op   string      // truncate, zero, flip, append, missing, empty, chmod
	at   int64       // truncate: new size; zero, flip: position
	n    int64       // zero: length; flip: bit; append: length
	mode os.FileMode // chmod
}

func (d dmDamage) String() string {
	switch d.op {
	case "truncate":
		return fmt.Sprintf("truncate@%d", d.at)
	case "zero":
		return fmt.Sprintf("zero@%d-%d", d.at, d.at+d.n) // no '+': names go into -run patterns
	case "flip":
		return fmt.Sprintf("flip@%d.%d", d.at, d.n)
	case "append":
		return fmt.Sprintf("append%d", d.n)
	case "chmod":
		return fmt.Sprintf("chmod%04o", d.mode)
	}
	return d.op
}

// apply returns the file's content after the damage, and whether it exists.
func (d dmDamage) apply(old []byte) ([]byte, bool) {
	data := slices.Clone(old)
	switch d.op {
	case "truncate":
		return data[:min(d.at, int64(len(data)))], true
	case "zero":
		clear(data[min(d.at, int64(len(data))):min(d.at+d.n, int64(len(data)))])
	case "flip":
		if d.at < int64(len(data)) {
			data[d.at] ^= 1 << d.n
		}
	case "append":
		// Garbage, never all zeros nor starting with an ASCII digit (which
		// would extend a log-start file's number rather than damage it).
		rng := rand.New(rand.NewPCG(uint64(d.n), uint64(len(old))))
		g := make([]byte, d.n)
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		g[0] |= 0x80
		data = append(data, g...)
	case "missing":
		return nil, false
	case "empty":
		return nil, true
	}
	return data, true
}

// dmCell is one cell of the matrix.
type dmCell struct {
	fx     *dmFixture
	file   *dmFile
	damage dmDamage
	ro     bool
}

func (c dmCell) name() string {
	mode := "rw"
	if c.ro {
		mode = "ro"
	}
	return fmt.Sprintf("%s-%s/%s/%s", c.fx.name, mode, c.file.label, c.damage)
}

// dmSummary counts cells and their failures by symptom, for the closing line.
type dmSummary struct {
	mu       sync.Mutex
	cells    map[string]int // by variant (clean-rw, ...)
	failed   int
	symptoms map[string][]string // symptom -> cells
}

func (s *dmSummary) ran(variant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cells[variant]++
}

func (s *dmSummary) failedCell(name string, symptoms []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed++
	for _, sym := range symptoms {
		s.symptoms[sym] = append(s.symptoms[sym], name)
	}
}

func (s *dmSummary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(s.cells)) {
		total += s.cells[v]
		parts = append(parts, fmt.Sprintf("%s %d", v, s.cells[v]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "damage matrix: %d cells (%s), %d failed", total, strings.Join(parts, ", "), s.failed)
	for _, sym := range slices.Sorted(maps.Keys(s.symptoms)) {
		cells := s.symptoms[sym]
		fmt.Fprintf(&b, "\n  [%s] %d cells, e.g. %s", sym, len(cells), strings.Join(cells[:min(len(cells), 3)], ", "))
	}
	return b.String()
}

// TestDamageMatrix runs the matrix: a sample by default, every cell with
// EMBEDSTREAM_DAMAGE_MATRIX=full. It does not run in parallel with other
// tests: its streamctl children inherit, between fork and exec, the LOCK
// descriptors of brokers open in this process.
func TestDamageMatrix(t *testing.T) {
	if name := os.Getenv(dmCellEnv); name != "" {
		dmChild(t, name, os.Getenv(dmRootEnv))
		return
	}
	full := os.Getenv(dmEnv) == "full"
	if s := os.Getenv(dmEnv); s != "" && !full {
		t.Fatalf("%s=%q: want full or nothing", dmEnv, s)
	}
	if testing.Short() && !full {
		t.Skip("the damage matrix sample is skipped in -short mode")
	}
	began := time.Now()
	root := t.TempDir()
	streamctl := dmStreamctl(t, root)
	dmBuild(t, root)
	fxs := dmLoad(t, root)
	cells := dmCells(t, fxs, full)
	t.Logf("damage matrix: %d cells (full: %v)", len(cells), full)
	sum := &dmSummary{cells: map[string]int{}, symptoms: map[string][]string{}}
	t.Run("cells", func(t *testing.T) {
		for _, c := range cells {
			t.Run(c.name(), func(t *testing.T) {
				t.Parallel()
				if dmIsolated[c.file.kind] {
					dmRunChild(t, c, root, sum)
				} else {
					dmRun(t, c, streamctl, sum)
				}
			})
		}
	})
	t.Logf("%s\n  in %v", sum, time.Since(began).Round(time.Millisecond))
}

// Cells of these kinds of file run in a child process (this test binary,
// running TestDamageMatrix for one cell): bbolt maps meta.db without a
// guard against faults, so a damaged one can kill the process (SIGBUS).
var dmIsolated = map[string]bool{"meta": true}

const (
	dmCellEnv = "EMBEDSTREAM_DAMAGE_CELL" // in a child: the cell to run
	dmRootEnv = "EMBEDSTREAM_DAMAGE_ROOT" // in a child: the parent's pristine directories
)

// dmChild runs one cell, named by the parent, on the parent's pristine
// directories.
func dmChild(t *testing.T, name, root string) {
	for _, fx := range dmLoad(t, root) {
		for _, f := range fx.files {
			if !strings.HasPrefix(name, fx.name+"-") || !strings.Contains(name, "/"+f.label+"/") {
				continue
			}
			for _, d := range dmDamages(fx, f) {
				for _, ro := range []bool{false, true} {
					if c := (dmCell{fx: fx, file: f, damage: d, ro: ro}); c.name() == name {
						dmRun(t, c, filepath.Join(root, "streamctl"), &dmSummary{cells: map[string]int{}, symptoms: map[string][]string{}})
						return
					}
				}
			}
		}
	}
	t.Fatalf("no cell %q", name)
}

// dmSymptom finds the symptoms in a child's output.
var dmSymptom = regexp.MustCompile(`\[([a-z-]+)\] `)

// dmRunChild runs a cell in a child process and reports what it found.
func dmRunChild(t *testing.T, c dmCell, root string, sum *dmSummary) {
	sum.ran(strings.SplitN(c.name(), "/", 2)[0])
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestDamageMatrix$", "-test.v", fmt.Sprintf("-test.timeout=%v", 4*dmHang))
	cmd.Env = append(os.Environ(), dmCellEnv+"="+c.name(), dmRootEnv+"="+root)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	var symptoms []string
	for _, m := range dmSymptom.FindAllStringSubmatch(string(out), -1) {
		if !slices.Contains(symptoms, m[1]) {
			symptoms = append(symptoms, m[1])
		}
	}
	switch {
	case bytes.Contains(out, []byte("panic: test timed out")):
		symptoms = append(symptoms, "hangs")
	case len(symptoms) == 0 || bytes.Contains(out, []byte("fatal error")) || bytes.Contains(out, []byte("\npanic: ")):
		symptoms = append(symptoms, "crash")
	}
	sum.failedCell(c.name(), symptoms)
	t.Errorf("in a child process: %v, symptoms %v:\n%s", err, symptoms, dmTrim(out))
}

// dmTrim keeps the start of a child's output: a crash's goroutine dump is long.
func dmTrim(out []byte) []byte {
	const keep = 6 << 10
	if len(out) <= keep {
		return out
	}
	return append(out[:keep:keep], "\n[...]"...)
}

// dmStreamctl builds streamctl into root and returns its path.
func dmStreamctl(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(root, "streamctl")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/streamctl").CombinedOutput()
	require.NoError(t, err, "go build streamctl: %s", out)
	return bin
}

// dmBuild makes the pristine data directories: one topic of two partitions
// with several sealed segments and an active one, batches of one to eight
// records from Publish and from a Producer, DeleteRecords on partition 1
// (so it has a log-start file), and a group's commits. The unclean copy is
// taken while the broker is open (what a crash leaves: no clean mark,
// preallocated tails); the clean one after Close.
func dmBuild(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "clean")
	b, err := Open(dir, &Options{Sync: SyncNever, Partitioner: ManualPartitioner{}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(dmTopic, TopicConfig{Partitions: 2, SegmentBytes: dmSegmentBytes,
		MaxTimestampAhead: -1}))
	ctx := context.Background()
	prod, err := b.NewProducer(&ProducerOptions{Linger: time.Hour, Partitioner: ManualPartitioner{}}) // batches end at Flush only
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(13, 13))
	seq := 0
	newRecord := func(p int32) *Record {
		seq++
		r := &Record{Topic: dmTopic, Partition: p, Timestamp: dmEpoch.Add(time.Duration(seq) * time.Millisecond)}
		if rng.IntN(8) != 0 {
			r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(50))
		}
		switch rng.IntN(12) {
		case 0: // a tombstone
		case 1:
			r.Value = []byte{}
		default:
			r.Value = make([]byte, rng.IntN(600))
			for i := range r.Value {
				r.Value[i] = byte('a' + (seq+i)%26)
			}
		}
		for h := rng.IntN(3); h > 0; h-- {
			hv := fmt.Appendf(nil, "hv-%d", seq)
			if rng.IntN(4) == 0 {
				hv = nil
			}
			r.Headers = append(r.Headers, Header{Key: fmt.Sprintf("h%d", h), Value: hv})
		}
		return r
	}
	for round := 0; round < 90; round++ {
		var recs []*Record
		for n := 1 + rng.IntN(8); n > 0; n-- {
			p := int32(round % 2)
			if round%5 == 4 {
				p = int32(rng.IntN(2)) // both partitions in one call: a batch each
			}
			recs = append(recs, newRecord(p))
		}
		if round%3 == 2 {
			var failed atomic.Int32
			for _, r := range recs {
				prod.Publish(ctx, r, func(_ *Record, err error) {
					if err != nil {
						failed.Add(1)
					}
				})
			}
			require.NoError(t, prod.Flush(ctx))
			require.Zero(t, failed.Load())
		} else {
			require.NoError(t, b.Publish(ctx, recs...))
		}
	}
	require.NoError(t, prod.Close())
	// Fill each active segment past two index intervals, so that its
	// indexes have entries to damage.
	for p := int32(0); p < 2; p++ {
		for {
			segs := b.topics[dmTopic].partitions()[p].Segments()
			if segs[len(segs)-1].Size > 2*4096+512 {
				break
			}
			require.NoError(t, b.Publish(ctx, newRecord(p), newRecord(p), newRecord(p)))
		}
	}

	// DeleteRecords into partition 1's second segment: its first goes.
	p1 := filepath.Join(dir, topicsDir, dmTopic, "1")
	logs, err := filepath.Glob(filepath.Join(p1, "*"+segment.LogSuffix))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(logs), 5, "partition 1 needs segments to spare")
	second, _ := segment.ParseFileName(logs[1], segment.LogSuffix)
	before := second + 3
	_, err = b.DeleteRecords(dmTopic, 1, before)
	require.NoError(t, err)

	c, err := b.Subscribe(dmGroup, []string{dmTopic}, &ConsumerOptions{Reset: ResetEarliest})
	require.NoError(t, err)
	_, err = c.Poll(ctx)
	require.NoError(t, err)
	require.NoError(t, c.CommitOffsets(ctx, map[TopicPartition]int64{
		{Topic: dmTopic, Partition: 0}: 40, {Topic: dmTopic, Partition: 1}: before + 17}))
	require.NoError(t, c.Close())
	committed, err := b.CommittedOffsets(dmGroup)
	require.NoError(t, err)
	require.Len(t, committed, 2)

	uncleanDir := filepath.Join(root, "unclean")
	fsweepCopyDir(t, dir, uncleanDir)
	require.NoError(t, b.Close())

	data, err := json.Marshal(dmStored{LogStart: before, Committed: map[int32]int64{
		0: committed[TopicPartition{Topic: dmTopic, Partition: 0}], 1: committed[TopicPartition{Topic: dmTopic, Partition: 1}]}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "fixture.json"), data, 0o600))
}

// dmStored is what dmBuild knows and the files do not say.
type dmStored struct {
	LogStart  int64           // partition 1's
	Committed map[int32]int64 // dmGroup's commits
}

// dmLoad parses the pristine directories dmBuild made in root.
func dmLoad(t *testing.T, root string) []*dmFixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "fixture.json"))
	require.NoError(t, err)
	var st dmStored
	require.NoError(t, json.Unmarshal(data, &st))
	committed := map[TopicPartition]int64{}
	for p, o := range st.Committed {
		committed[TopicPartition{Topic: dmTopic, Partition: p}] = o
	}
	clean := dmParse(t, "clean", filepath.Join(root, "clean"), committed)
	unclean := dmParse(t, "unclean", filepath.Join(root, "unclean"), committed)
	require.Equal(t, clean.start, unclean.start)
	require.Equal(t, clean.end, unclean.end)
	require.Equal(t, st.LogStart, clean.start[1])
	return []*dmFixture{clean, unclean}
}

// dmParse reads a pristine directory: every file, and every batch of every
// segment, checked with package batch.
func dmParse(t *testing.T, name, dir string, committed map[TopicPartition]int64) *dmFixture {
	t.Helper()
	fx := &dmFixture{name: name, dir: dir, batches: map[int32][]*dmBatch{}, byFile: map[string][]*dmBatch{},
		start: map[int32]int64{}, end: map[int32]int64{}, committed: committed}
	add := func(rel, kind, label string, part int32, seg int) {
		path := filepath.Join(dir, rel)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		fx.files = append(fx.files, &dmFile{rel: rel, kind: kind, label: label, part: part, seg: seg, data: data})
	}
	add(catalog.File, "meta", "meta.db", -1, -1)
	add(lockFile, "lock", "LOCK", -1, -1)
	for p := int32(0); p < 2; p++ {
		pdir := filepath.Join(topicsDir, dmTopic, strconv.Itoa(int(p)))
		entries, err := os.ReadDir(filepath.Join(dir, pdir))
		require.NoError(t, err)
		var bases []int64
		for _, e := range entries {
			if base, ok := segment.ParseFileName(e.Name(), segment.LogSuffix); ok {
				bases = append(bases, base)
			}
		}
		require.GreaterOrEqual(t, len(bases), 4, "partition %d: three sealed segments and an active one", p)
		for i, base := range bases {
			kind := "sealed"
			if i == len(bases)-1 {
				kind = "active"
			}
			for _, suffix := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix} {
				k := kind
				if suffix != segment.LogSuffix {
					k = strings.TrimPrefix(suffix, ".")
				}
				label := fmt.Sprintf("p%d-seg%d%s", p, i, suffix)
				if i == len(bases)-1 {
					label = fmt.Sprintf("p%d-active%s", p, suffix)
				}
				add(filepath.Join(pdir, segment.FileName(base, suffix)), k, label, p, i)
			}
		}
		fx.start[p] = bases[0]
		if data, err := os.ReadFile(filepath.Join(dir, pdir, dmLogStart)); err == nil {
			add(filepath.Join(pdir, dmLogStart), "log-start", fmt.Sprintf("p%d-log-start", p), p, -1)
			digits, _, _ := strings.Cut(string(data), " ") // the offset, then its checksum
			v, err := strconv.ParseInt(digits, 10, 64)
			require.NoError(t, err)
			fx.start[p] = max(fx.start[p], v)
		}
		// The batches, back to back from each file's start; the rest of a
		// file must be preallocated zeros.
		next := bases[0]
		for _, base := range bases {
			rel := filepath.Join(pdir, segment.FileName(base, segment.LogSuffix))
			data, err := os.ReadFile(filepath.Join(dir, rel))
			require.NoError(t, err)
			require.Equal(t, next, base, "%s: segments are contiguous", rel)
			pos := int64(0)
			for pos < int64(len(data)) {
				bt, err := batch.Parse(data[pos:])
				if err != nil {
					require.True(t, dmAllZero(data[pos:]), "%s: %v at %d, and not a preallocated tail", rel, err, pos)
					break
				}
				require.Equal(t, next, bt.BaseOffset(), "%s at %d", rel, pos)
				db := &dmBatch{file: rel, part: p, pos: pos, size: int64(len(bt)), first: bt.BaseOffset(), last: bt.LastOffset()}
				it := bt.Records()
				var r batch.Record
				for it.Next(&r) {
					db.recs = append(db.recs, &dmRecord{offset: r.Offset, ts: r.Timestamp, key: slices.Clone(r.Key),
						value: slices.Clone(r.Value), headers: dmCloneHeaders(r.Headers)})
				}
				require.NoError(t, it.Err())
				require.Len(t, db.recs, int(bt.LastOffsetDelta())+1)
				fx.batches[p] = append(fx.batches[p], db)
				fx.byFile[rel] = append(fx.byFile[rel], db)
				pos += db.size
				next = db.last + 1
			}
		}
		fx.end[p] = next
		require.NotEmpty(t, fx.byFile[filepath.Join(pdir, segment.FileName(bases[len(bases)-1], segment.LogSuffix))],
			"partition %d: the active segment holds batches", p)
	}
	// Nothing else is in the directory: a new kind of file needs its cells.
	var all []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			all = append(all, rel)
		}
		return err
	}))
	var known []string
	for _, f := range fx.files {
		known = append(known, f.rel)
	}
	require.ElementsMatch(t, known, all, "%s: files the matrix does not know", dir)
	return fx
}

func dmAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func dmCloneHeaders(hs []batch.Header) []Header {
	var out []Header
	for _, h := range hs {
		out = append(out, Header{Key: h.Key, Value: slices.Clone(h.Value)})
	}
	return out
}

// dmDamages lists the damage done to a file in the full matrix.
func dmDamages(fx *dmFixture, f *dmFile) []dmDamage {
	size := int64(len(f.data))
	var out []dmDamage
	truncate := func(at int64) {
		if at > 0 && at < size {
			out = append(out, dmDamage{op: "truncate", at: at})
		}
	}
	zero := func(at, n int64) {
		if at >= 0 && at < size && n > 0 {
			out = append(out, dmDamage{op: "zero", at: at, n: min(n, size-at)})
		}
	}
	flip := func(at int64, bit int64) {
		if at >= 0 && at < size {
			out = append(out, dmDamage{op: "flip", at: at, n: bit % 8})
		}
	}
	switch f.kind {
	case "active", "sealed":
		var last int64
		for _, b := range fx.byFile[f.rel] {
			// Cuts at the batch's start, in its header, at its first
			// record and in the middle; flips in each header field that
			// a check covers (base offset, length, magic, CRC, last
			// offset delta, record count), in the leader epoch, which none
			// does, and in the records.
			for _, d := range []int64{0, 8, 17, batch.HeaderSize, b.size / 2} {
				truncate(b.pos + d)
			}
			for _, d := range []int64{1, 9, 13, 16, 18, 24, 58, b.size / 2, b.size - 1} {
				flip(b.pos+d, d)
			}
			zero(b.pos, batch.HeaderSize)
			zero(b.pos, b.size)
			zero(b.pos+b.size/2, b.size) // into the next batch
			last = b.pos + b.size
		}
		zero(last/2&^4095, 4096) // a lost page
		if last < size {         // the preallocated tail (unclean)
			flip(last+100, 3)
			truncate(last + 100)
		}
		out = append(out, dmDamage{op: "append", n: 1}, dmDamage{op: "append", n: batch.HeaderSize},
			dmDamage{op: "append", n: 700})
	case "index", "timeindex", "log-start", "meta", "lock":
		step := int64(8) // an .index entry
		switch f.kind {
		case "timeindex":
			step = 12
		case "log-start":
			step = 1
		case "meta":
			step = 4096 // a bbolt page
		}
		used := size
		if f.kind == "index" || f.kind == "timeindex" {
			used = dmUsedEntries(f.data, step)
		}
		for at := int64(0); at < used; at += step {
			truncate(at)
			truncate(at + step/2)
			zero(at, step)
			for _, d := range []int64{0, step / 3, step / 2, step - 1} {
				flip(at+d, at+d)
			}
			if f.kind == "meta" {
				zero(at, 64) // the page header
				for _, d := range []int64{16, 32, 64, 100, 1000, 3000} {
					flip(at+d, d)
				}
			}
		}
		if used < size {
			flip(used, 1)
			truncate(used)
		}
		out = append(out, dmDamage{op: "append", n: 1}, dmDamage{op: "append", n: step}, dmDamage{op: "append", n: 100})
	}
	out = append(out, dmDamage{op: "missing"})
	if size > 0 {
		out = append(out, dmDamage{op: "empty"})
	}
	out = append(out, dmDamage{op: "chmod", mode: 0}, dmDamage{op: "chmod", mode: 0o444})
	// Duplicates (small files) and no-ops (zeroing zeros) are dropped.
	var kept []dmDamage
	seen := map[string]bool{}
	for _, d := range out {
		if seen[d.String()] {
			continue
		}
		seen[d.String()] = true
		if after, ok := d.apply(f.data); d.op != "chmod" && ok && bytes.Equal(after, f.data) {
			continue
		}
		kept = append(kept, d)
	}
	return kept
}

// dmUsedEntries is the length of an index file's entries, before its
// preallocated (zero) tail.
func dmUsedEntries(data []byte, step int64) int64 {
	n := int64(len(data)) / step * step
	for n > 0 && dmAllZero(data[n-step:n]) {
		n -= step
	}
	return n
}

// dmCells lists the cells: every one with full, else a sample of one per
// (file kind, damage kind) pair, on one representative file of each kind,
// the variants taken in turn.
func dmCells(t *testing.T, fxs []*dmFixture, full bool) []dmCell {
	t.Helper()
	var cells []dmCell
	if full {
		for _, fx := range fxs {
			segs := map[int32]int{}
			for _, f := range fx.files {
				segs[f.part] = max(segs[f.part], f.seg+1)
			}
			for _, f := range fx.files {
				if f.seg >= 2 && f.seg < segs[f.part]-2 {
					continue // the middle sealed segments are like the second and the last
				}
				for _, d := range dmDamages(fx, f) {
					cells = append(cells, dmCell{fx: fx, file: f, damage: d}, dmCell{fx: fx, file: f, damage: d, ro: true})
				}
			}
		}
		return cells
	}
	// The representatives: a middle sealed segment, and mostly partition
	// 1's files (it has a log start).
	pick := map[string]string{
		"active": "p1-active.log", "sealed": "p1-seg2.log", "index": "p0-seg1.index", "timeindex": "p1-active.timeindex",
		"log-start": "p1-log-start", "meta": "meta.db", "lock": "LOCK",
	}
	rng := rand.New(rand.NewPCG(13, 42))
	variant := 0
	for _, kind := range []string{"active", "sealed", "index", "timeindex", "log-start", "meta", "lock"} {
		for _, op := range []string{"truncate", "zero", "flip", "append", "missing", "empty", "chmod"} {
			fx := fxs[variant%2]
			var f *dmFile
			for _, g := range fx.files {
				if g.label == pick[kind] {
					f = g
				}
			}
			require.NotNil(t, f, "no file %s", pick[kind])
			var ds []dmDamage
			for _, d := range dmDamages(fx, f) {
				if d.op == op && (op != "chmod" || d.mode == 0) {
					ds = append(ds, d)
				}
			}
			if len(ds) == 0 {
				continue // nothing to truncate, zero or flip in an empty LOCK
			}
			cells = append(cells, dmCell{fx: fx, file: f, damage: ds[rng.IntN(len(ds))], ro: variant/2%2 == 1})
			variant++
		}
	}
	return cells
}

// dmExpect is what a cell's broker must return, from the oracle.
type dmExpect struct {
	good       map[int32]map[int64]*dmRecord // records of batches that pass their checks
	damaged    map[int32]map[int64]bool      // offsets of batches that fail them
	must       map[int32][]int64             // offsets of good records from the log start on
	costly     bool                          // a failing batch holds records from the log start on
	logDamage  bool                          // some segment batch fails its checks
	detectable bool                          // the files alone show the loss
	// lostStart: the damage left a log-start file holding another valid
	// offset, above the true start: nothing in the file tells it from a
	// DeleteRecords (it has no checksum), so the records below it are
	// missing under a symptom of their own.
	lostStart bool
	badStart  bool // the damage left a log-start file holding no offset
}

// dmOracle works out what the damage cost.
func dmOracle(c dmCell, after []byte, exists bool) *dmExpect {
	e := &dmExpect{good: map[int32]map[int64]*dmRecord{}, damaged: map[int32]map[int64]bool{}, must: map[int32][]int64{}, detectable: true}
	for p, bs := range c.fx.batches {
		e.good[p], e.damaged[p] = map[int64]*dmRecord{}, map[int64]bool{}
		for _, b := range bs {
			ok := b.file != c.file.rel || c.damage.op == "chmod" || (exists && dmSameBatch(after, c.file.data, b))
			for _, r := range b.recs {
				if ok {
					e.good[p][r.offset] = r
					if r.offset >= c.fx.start[p] {
						e.must[p] = append(e.must[p], r.offset)
					}
				} else {
					e.damaged[p][r.offset] = true
				}
			}
			if !ok {
				e.logDamage = true
				if b.last >= c.fx.start[p] {
					e.costly = true
				}
			}
		}
	}
	if e.logDamage {
		e.detectable = !dmLooksUnwritten(c, after, exists)
	}
	if c.file.kind == "log-start" && exists && c.damage.op != "chmod" {
		v, err := strconv.ParseInt(string(after), 10, 64)
		valid := err == nil && v >= 0 && strconv.FormatInt(v, 10) == string(after)
		e.lostStart = valid && v > c.fx.start[c.file.part]
		e.badStart = !valid
	}
	return e
}

// dmSameBatch reports whether batch b is unchanged in the damaged file,
// its leader epoch aside: no check covers those four bytes (Kafka's CRC
// starts at the attributes), so changing them changes no record.
func dmSameBatch(after, before []byte, b *dmBatch) bool {
	if int64(len(after)) < b.pos+b.size {
		return false
	}
	x, y := after[b.pos:b.pos+b.size], before[b.pos:b.pos+b.size]
	return bytes.Equal(x[:12], y[:12]) && bytes.Equal(x[16:], y[16:])
}

// dmLooksUnwritten reports damage that the files cannot tell from records
// never written, or deleted: the active segment cut (or zeroed to its end)
// at a batch boundary, or gone; the first segment gone, as retention
// deletes it (leaving any log-start file below the new first segment).
func dmLooksUnwritten(c dmCell, after []byte, exists bool) bool {
	switch c.file.kind {
	case "active":
		if !exists {
			return true
		}
		for _, b := range append([]*dmBatch{{}}, c.fx.byFile[c.file.rel]...) {
			k := b.pos + b.size
			if k <= int64(len(after)) && bytes.Equal(after[:k], c.file.data[:k]) && dmAllZero(after[k:]) {
				return true
			}
		}
	case "sealed":
		return !exists && c.file.seg == 0
	}
	return false
}

// dmProblems collects a cell's failures by symptom.
type dmProblems struct {
	t     *testing.T
	stage atomic.Pointer[string] // what the broker is doing, for a hang's report
	stop  atomic.Pointer[func()] // ends it: closes the Reader or Consumer in use

	mu       sync.Mutex
	prefix   string // of symptoms: "reopen-" for the second Open
	hung     bool   // after a hang only the hang counts: the rest is its echo
	symptoms []string
}

func (p *dmProblems) fail(symptom, format string, args ...any) {
	p.t.Helper()
	p.mu.Lock()
	if p.hung {
		p.mu.Unlock()
		return
	}
	p.hung = symptom == "hangs"
	symptom = p.prefix + symptom
	if !slices.Contains(p.symptoms, symptom) {
		p.symptoms = append(p.symptoms, symptom)
	}
	p.mu.Unlock()
	p.t.Errorf("[%s] "+format, append([]any{symptom}, args...)...)
}

func (p *dmProblems) setPrefix(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prefix = prefix
}

func (p *dmProblems) failed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.symptoms)
}

func (p *dmProblems) at(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.stage.Store(&s)
}

// dmHang is how long a cell's reads may take before they count as hung:
// far more than they need, even under the race detector.
const dmHang = 10 * time.Second

// dmGuard runs fn, which uses b. If it has not returned within dmHang, it
// reports a hang and closes the Reader or Consumer fn uses, and b: that
// ends (with ErrClosed) whatever blocks or spins on them. It reports
// whether fn returned in time.
func dmGuard(pr *dmProblems, b *Broker, fn func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				pr.fail("panic", "%v", r)
			}
		}()
		fn()
	}()
	select {
	case <-done:
		return true
	case <-time.After(dmHang):
	}
	stage := "?"
	if s := pr.stage.Load(); s != nil {
		stage = *s
	}
	pr.fail("hangs", "no return within %v, at: %s", dmHang, stage)
	if stop := pr.stop.Load(); stop != nil {
		(*stop)()
	}
	b.Close()
	select {
	case <-done:
	case <-time.After(dmHang):
		pr.t.Errorf("[hangs] still no return %v after the broker's Close", dmHang)
	}
	return false
}

// dmWarnings counts the Warn and Error records a broker logs.
type dmWarnings struct{ n atomic.Int64 }

func (w *dmWarnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *dmWarnings) Handle(context.Context, slog.Record) error    { w.n.Add(1); return nil }
func (w *dmWarnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *dmWarnings) WithGroup(string) slog.Handler                { return w }

// dmRun runs one cell.
func dmRun(t *testing.T, c dmCell, streamctl string, sum *dmSummary) {
	variant := strings.SplitN(c.name(), "/", 2)[0]
	sum.ran(variant)
	pr := &dmProblems{t: t}
	defer func() {
		if r := recover(); r != nil {
			pr.fail("panic", "%v", r)
		}
		if failed := pr.failed(); len(failed) > 0 {
			sum.failedCell(c.name(), failed)
		}
	}()
	dir := filepath.Join(t.TempDir(), "data")
	fsweepCopyDir(t, c.fx.dir, dir)
	path := filepath.Join(dir, c.file.rel)
	after, exists := c.damage.apply(c.file.data)
	switch c.damage.op {
	case "missing":
		require.NoError(t, os.Remove(path))
	case "chmod":
		require.NoError(t, os.Chmod(path, c.damage.mode))
		t.Cleanup(func() { os.Chmod(path, 0o600) })
	default:
		require.NoError(t, os.WriteFile(path, after, 0o600))
	}
	e := dmOracle(c, after, exists)

	// streamctl verify reads the damaged files before any broker
	// recovers them.
	cmd := exec.Command(streamctl, "-dir", dir, "verify")
	out, err := cmd.CombinedOutput()
	verifyCode := -1
	if cmd.ProcessState != nil {
		verifyCode = cmd.ProcessState.ExitCode()
	}
	if verifyCode != 0 && verifyCode != 1 {
		pr.fail("verify-error", "streamctl verify: %v (exit %d)\n%s", err, verifyCode, out)
	}

	var before map[string]string
	if c.ro {
		before = dmSnapshot(t, dir)
	}
	warnings := &dmWarnings{}
	opts := &Options{ReadOnly: c.ro, LockTimeout: 5 * time.Second, Logger: slog.New(warnings)}
	b, err := Open(dir, opts)
	if err != nil {
		if c.damage.op == "chmod" && errors.Is(err, os.ErrPermission) {
			return // a cause the caller can fix (never seen as root)
		}
		pr.fail("open-fails", "Open: %v", err)
		return
	}
	var got map[int32][]int64
	if !dmGuard(pr, b, func() { got = dmCheckBroker(pr, b, c, e) }) {
		return // the rest would only fail on the closed broker
	}
	st := b.Stats()
	dmCheckCommitted(pr, b, c, st)
	dmCheckStats(pr, e, st, warnings.n.Load(), after)
	require.NoError(t, b.Close())
	if c.ro {
		if now := dmSnapshot(t, dir); !maps.Equal(before, now) {
			pr.fail("ro-changes-bytes", "read-only Open changed the directory: %s", dmSnapshotDiff(before, now))
		}
	}
	if verifyCode == 0 {
		switch {
		case e.logDamage && e.detectable:
			pr.fail("verify-silent", "streamctl verify exits 0, but segment batches fail their checks")
		case st.MetaRebuilds > 0 || st.MetaRollbacks > 0:
			pr.fail("verify-silent", "streamctl verify exits 0, but the broker rebuilt meta.db or rolled it back")
		case st.LogStartResets > 0 || e.badStart:
			pr.fail("verify-silent", "streamctl verify exits 0, but the log-start file holds %q", after)
		}
	}

	if !c.ro && got != nil {
		// Recovery settled the damage: a second open returns the same.
		b, err := Open(dir, &Options{LockTimeout: 5 * time.Second})
		if err != nil {
			pr.fail("reopen-fails", "second Open: %v", err)
			return
		}
		defer b.Close()
		pr.setPrefix("reopen-")
		var again map[int32][]int64
		if dmGuard(pr, b, func() { again = dmReadOffsets(pr, b, e) }) && again != nil && !dmOffsetsEqual(got, again) {
			pr.fail("differs", "a second Open returns other records: %s", dmOffsetsDiff(got, again))
		}
	}
}

// dmCheckBroker reads everything back through a Reader and a Consumer and
// looks up times; it returns the offsets the Reader returned per partition
// (nil if reading could not finish).
func dmCheckBroker(pr *dmProblems, b *Broker, c dmCell, e *dmExpect) map[int32][]int64 {
	got := dmReadOffsets(pr, b, e)
	if got == nil {
		return nil
	}
	missing := false
	for p := int32(0); p < 2; p++ {
		lost := dmLost(got[p], e.must[p])
		if len(lost) > 0 {
			missing = true
			symptom := "good-records-missing"
			if e.lostStart {
				symptom = "log-start-plausible-hides-records"
			}
			pr.fail(symptom, "partition %d: %d of %d good records not returned by the Reader: %s",
				p, len(lost), len(e.must[p]), dmRanges(lost))
		}
	}
	dmCheckConsumer(pr, b, e)
	dmCheckTimes(pr, b, e, missing)
	return got
}

// dmReadOffsets reads each partition with a Reader from the start to the
// end, passing damage as a CorruptError says, and checks every record.
func dmReadOffsets(pr *dmProblems, b *Broker, e *dmExpect) map[int32][]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), dmHang/2)
	defer cancel()
	got := map[int32][]int64{}
	for p := int32(0); p < 2; p++ {
		r, err := b.NewReader(dmTopic, p, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		if err != nil {
			pr.fail("reader-fails", "NewReader(%d): %v", p, err)
			return nil
		}
		stop := func() { r.Close() }
		pr.stop.Store(&stop)
		lastCorrupt, reports := int64(-1), 0
		for {
			pr.at("Reader.Next, partition %d at offset %d", p, r.Offset())
			rec, err := r.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					pr.fail("read-error", "partition %d at offset %d: %v", p, r.Offset(), err)
					break
				}
				var ce *CorruptError
				if !errors.As(err, &ce) {
					pr.fail("read-stops-at-damage", "partition %d: ErrCorrupt without a CorruptError, cannot go on: %v", p, err)
					break
				}
				if ce.Next <= ce.Offset || r.Offset() == lastCorrupt || reports > 10000 {
					pr.fail("read-stuck", "partition %d: no progress past damage: %v (offset %d, next %d)", p, err, ce.Offset, ce.Next)
					break
				}
				reports++
				lastCorrupt = r.Offset()
				continue
			}
			dmCheckRecord(pr, "Reader", rec, p, got[p], e)
			got[p] = append(got[p], rec.Offset)
		}
		if err := r.Close(); err != nil {
			pr.fail("read-error", "Reader.Close: %v", err)
		}
	}
	return got
}

// dmCheckRecord checks a returned record against the oracle and the
// offsets returned before it.
func dmCheckRecord(pr *dmProblems, who string, rec *Record, p int32, before []int64, e *dmExpect) {
	pr.t.Helper()
	if rec.Partition != p || rec.Topic != dmTopic {
		pr.fail("bad-record", "%s: record of %s/%d read from partition %d", who, rec.Topic, rec.Partition, p)
	}
	if n := len(before); n > 0 && rec.Offset <= before[n-1] {
		pr.fail("bad-record", "%s: partition %d: offset %d after %d", who, p, rec.Offset, before[n-1])
	}
	want := e.good[p][rec.Offset]
	switch {
	case e.damaged[p][rec.Offset]:
		pr.fail("record-from-damaged-batch", "%s: partition %d offset %d is in a batch that fails its checks", who, p, rec.Offset)
	case want == nil:
		pr.fail("bad-record", "%s: partition %d offset %d was never written", who, p, rec.Offset)
	case !dmSameRecord(rec, want):
		pr.fail("bad-record", "%s: partition %d offset %d differs from what was written", who, p, rec.Offset)
	}
}

func dmSameRecord(r *Record, w *dmRecord) bool {
	same := func(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }
	if r.Timestamp.UnixMilli() != w.ts || !same(r.Key, w.key) || !same(r.Value, w.value) || len(r.Headers) != len(w.headers) {
		return false
	}
	for i, h := range r.Headers {
		if h.Key != w.headers[i].Key || !same(h.Value, w.headers[i].Value) {
			return false
		}
	}
	return true
}

// dmCheckConsumer consumes both partitions in a fresh group, seeking past
// damage as the CorruptError says, and checks what Poll returns.
func dmCheckConsumer(pr *dmProblems, b *Broker, e *dmExpect) {
	info, err := b.DescribeTopic(dmTopic)
	if err != nil {
		pr.fail("topic-lost", "DescribeTopic: %v", err)
		return
	}
	cons, err := b.Subscribe(dmCheckGroup, []string{dmTopic}, &ConsumerOptions{Reset: ResetEarliest})
	if err != nil {
		pr.fail("consume-error", "Subscribe: %v", err)
		return
	}
	defer cons.Close()
	stop := func() { cons.Close() }
	pr.stop.Store(&stop)
	got := map[int32][]int64{}
	for polls := 0; ; polls++ {
		done := polls > 0
		for p := int32(0); p < 2 && done; p++ {
			pos, err := cons.Position(TopicPartition{Topic: dmTopic, Partition: p})
			done = err == nil && pos >= info.Partitions[p].EndOffset
		}
		if done {
			break
		}
		if polls > 10000 {
			pr.fail("consume-stuck", "no end after %d polls", polls)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), dmHang/2)
		pr.at("Consumer.Poll")
		recs, err := cons.Poll(ctx)
		cancel()
		if err != nil {
			var ce *CorruptError
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				pr.fail("consume-hangs", "Poll waits before the end of the log")
				return
			case !errors.Is(err, ErrCorrupt):
				pr.fail("consume-error", "Poll: %v", err)
				return
			case !errors.As(err, &ce):
				pr.fail("consume-stops-at-damage", "Poll: ErrCorrupt without a CorruptError, cannot go on: %v", err)
				return
			case ce.Next <= ce.Offset:
				pr.fail("consume-stuck", "Poll: empty damaged range: %v", err)
				return
			}
			tp := TopicPartition{Topic: ce.Topic, Partition: ce.Partition}
			if pos, perr := cons.Position(tp); perr != nil || pos != ce.Offset {
				pr.fail("consume-position", "after %v the position is %d (%v), want %d", err, pos, perr, ce.Offset)
			}
			if err := cons.Seek(tp, ce.Next); err != nil {
				pr.fail("consume-error", "Seek past damage: %v", err)
				return
			}
			continue
		}
		for _, r := range recs {
			dmCheckRecord(pr, "Consumer", r, r.Partition, got[r.Partition], e)
			got[r.Partition] = append(got[r.Partition], r.Offset)
		}
	}
	for p := int32(0); p < 2; p++ {
		lost := dmLost(got[p], e.must[p])
		if len(lost) > 0 && !e.lostStart {
			pr.fail("consume-misses-records", "partition %d: %d of %d good records not returned by Poll: %s",
				p, len(lost), len(e.must[p]), dmRanges(lost))
		}
	}
}

// dmCheckTimes checks OffsetForTime at every tenth good record's timestamp
// and around the ends: never an error, and (when every good record is
// there) the first good record at or after the time, from the log start.
func dmCheckTimes(pr *dmProblems, b *Broker, e *dmExpect, missing bool) {
	info, err := b.DescribeTopic(dmTopic)
	if err != nil {
		return
	}
	for p := int32(0); p < 2; p++ {
		start := info.Partitions[p].StartOffset
		var offs []int64
		for o := range e.good[p] {
			if o >= start {
				offs = append(offs, o)
			}
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		var times []int64
		for i, o := range offs {
			if i%10 == 0 {
				times = append(times, e.good[p][o].ts)
			}
		}
		times = append(times, dmEpoch.UnixMilli(), dmEpoch.UnixMilli()+1<<30)
		for _, ts := range times {
			pr.at("OffsetForTime, partition %d at %d", p, ts)
			got, err := b.OffsetForTime(dmTopic, p, time.UnixMilli(ts))
			if err != nil {
				pr.fail("offsetfortime-error", "partition %d at %d: %v", p, ts, err)
				return
			}
			want := int64(-1)
			for _, o := range offs { // timestamps grow with offsets
				if e.good[p][o].ts >= ts {
					want = o
					break
				}
			}
			if !missing && got != want {
				pr.fail("offsetfortime-wrong", "partition %d at %d: %d, want %d", p, ts, got, want)
				return
			}
		}
	}
}

// dmCheckCommitted checks that the group's commits survived, or that the
// broker counted their loss.
func dmCheckCommitted(pr *dmProblems, b *Broker, c dmCell, st Stats) {
	got, err := b.CommittedOffsets(dmGroup)
	if err != nil {
		pr.fail("committed-error", "CommittedOffsets: %v", err)
		return
	}
	if !maps.Equal(got, c.fx.committed) && st.MetaRebuilds == 0 && st.MetaRollbacks == 0 {
		pr.fail("commits-lost-uncounted", "committed offsets %v, want %v, and Stats().MetaRebuilds and MetaRollbacks are 0", got, c.fx.committed)
	}
}

// dmCheckStats checks that what the damage cost shows in Stats (and the log).
func dmCheckStats(pr *dmProblems, e *dmExpect, st Stats, warnings int64, after []byte) {
	if e.costly && e.detectable && st.CorruptBatches+st.Truncations == 0 {
		pr.fail("stats-silent", "batches fail their checks, but Stats().CorruptBatches and Truncations are 0")
	}
	if e.badStart && st.LogStartResets == 0 {
		pr.fail("stats-silent", "log-start holds %q, but Stats().LogStartResets is 0", after)
	}
	if cost := st.CorruptBatches + st.Truncations + st.MetaRebuilds + st.MetaRollbacks + st.LogStartResets; cost > 0 && warnings == 0 {
		pr.fail("unlogged", "Stats count damage (%+v), but nothing was logged", st)
	}
}

// dmSnapshot returns every file's mode and content hash.
func dmSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = fmt.Sprintf("dir %v", fi.Mode())
			return nil
		}
		if err := os.Chmod(path, fi.Mode()|0o400); err != nil { // root reads anyway; others need the bit
			return err
		}
		data, err := os.ReadFile(path)
		if cerr := os.Chmod(path, fi.Mode()); err == nil {
			err = cerr
		}
		out[rel] = fmt.Sprintf("%v %d %x", fi.Mode(), len(data), sha256.Sum256(data))
		return err
	}))
	return out
}

func dmSnapshotDiff(a, b map[string]string) string {
	var diffs []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			diffs = append(diffs, k+" removed")
		} else if v != w {
			diffs = append(diffs, k+" changed")
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, k+" created")
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

func dmOffsetsEqual(a, b map[int32][]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func dmOffsetsDiff(a, b map[int32][]int64) string {
	var out []string
	for p := int32(0); p < 2; p++ {
		out = append(out, fmt.Sprintf("partition %d: %d then %d records", p, len(a[p]), len(b[p])))
	}
	return strings.Join(out, "; ")
}

// dmRanges prints sorted offsets as ranges: 3-7, 12, 20-21.
func dmRanges(offs []int64) string {
	var parts []string
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.FormatInt(offs[i], 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", offs[i], offs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// CorruptError reports stored records that cannot be returned: a damaged
// batch, or an offset range lost to damage.
//

// dmLost returns the offsets of must that got lacks.
func dmLost(got, must []int64) []int64 {
	returned := map[int64]bool{}
	for _, o := range got {
		returned[o] = true
	}
	var lost []int64
	for _, o := range must {
		if !returned[o] {
			lost = append(lost, o)
		}
	}
	return lost
}
