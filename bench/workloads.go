package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sizes are the workload sizes of one run: full, -quick, or the smoke test's.
type sizes struct {
	records       int           // records of the 100-byte publish, consume and group workloads
	latencyMax    int           // most samples of an unsynced latency workload
	durableMax    int           // most samples of a synced (fsync) latency workload
	groupCommit   int           // most records of the 64-publisher workload
	roundtrips    int           // most open-to-close roundtrips
	wakeups       int           // most wake-up samples
	budget        time.Duration // time after which a sampling workload stops early
	recoveryBytes int64         // log size written before the kill -9
	partitions    int           // partitions of the scale workload
	topics        int           // topics of partitionsPerTopic of the partitions workload
	events        int           // JSON events of the compression workloads
	timeout       time.Duration // one peer's limit for one workload
}

var (
	fullSizes = sizes{records: 1_000_000, latencyMax: 200_000, durableMax: 10_000, groupCommit: 300_000,
		roundtrips: 1_000, wakeups: 2_000, budget: time.Second, recoveryBytes: 1 << 30,
		partitions: 10_000, topics: 1_000, events: 200_000, timeout: 2 * time.Minute}
	quickSizes = sizes{records: 20_000, latencyMax: 20_000, durableMax: 200, groupCommit: 20_000,
		roundtrips: 100, wakeups: 200, budget: 250 * time.Millisecond, recoveryBytes: 64 << 20,
		partitions: 500, topics: 50, events: 20_000, timeout: time.Minute}
)

// env is what every workload run gets: the sizes, a place for directories,
// and the JSON events, made once.
type env struct {
	sizes
	root       string
	seq        atomic.Int64
	eventsOnce sync.Once
	eventData  [][]byte
	// kept are directories a workload keeps from run to run, by name,
	// removed once its runs are over (dropKept).
	kept map[string]*kept
}

// kept is a directory a workload keeps from run to run.
type kept struct {
	dir  string
	runs int // the runs that used it so far
}

// keptDir returns the directory the workload's earlier runs kept under
// name, or nil if none.
func (e *env) keptDir(name string) *kept { return e.kept[name] }

// keep keeps dir under name for the workload's later runs.
func (e *env) keep(name, dir string) *kept {
	if e.kept == nil {
		e.kept = map[string]*kept{}
	}
	k := &kept{dir: dir}
	e.kept[name] = k
	return k
}

// dropKept removes the directories kept by the workload whose runs are
// over.
func (e *env) dropKept() {
	for name, k := range e.kept {
		os.RemoveAll(k.dir)
		delete(e.kept, name)
	}
}

// jsonEvents returns the run's JSON events, e.events of them.
func (e *env) jsonEvents() [][]byte {
	e.eventsOnce.Do(func() { e.eventData = jsonEvents(e.events, eventsSeed) })
	return e.eventData
}

// newDir returns a fresh empty directory under the run's root.
func (e *env) newDir(p peer) (string, error) {
	name := strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(p.name())
	dir := filepath.Join(e.root, fmt.Sprintf("%s-%d", name, e.seq.Add(1)))
	return dir, os.MkdirAll(dir, 0o700)
}

// A workload is one row group of the table. run measures one peer and
// returns one value per metric, in the order of metrics: NaN for a figure
// the peer does not have (the metric's na says why).
type workload struct {
	id      string // for -only
	section string // the table it is printed in: "" for the first
	// optional workloads run only when -only names them, or with -smoke:
	// too slow for every run.
	optional bool
	title    string
	metrics  []metricSpec
	run      func(ctx context.Context, e *env, p peer) ([]float64, error)
}

// payload returns n pseudo-random bytes, the same for every peer.
func payload(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

// checksum touches each value read, so no read is optimized away and a
// zero-copy read still faults its pages in.
type checksum int64

func (c *checksum) add(v []byte) {
	if len(v) > 0 {
		*c += checksum(len(v)) + checksum(v[0]) + checksum(v[len(v)-1])
	}
}

var sinkTotal atomic.Int64

func (c checksum) flush() { sinkTotal.Add(int64(c)) }

// withInstance starts p on a fresh directory, runs fn and cleans up.
func withInstance(ctx context.Context, e *env, p peer, o startOptions, fn func(instance) ([]float64, error)) ([]float64, error) {
	dir, err := e.newDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	inst, err := p.start(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	vals, err := fn(inst)
	return vals, errors.Join(err, inst.close())
}

// expectRecords checks, untimed, that partition 0 holds want records.
func expectRecords(ctx context.Context, inst instance, want int64) error {
	got, err := inst.records(ctx)
	if err == nil && got != want {
		err = fmt.Errorf("partition 0 holds %d records, want %d", got, want)
	}
	return err
}

// timed runs fn after a GC, so garbage from setup is not charged to it.
func timed(fn func() error) (time.Duration, error) {
	runtime.GC()
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

// mallocs returns the process's heap allocations so far. It stops the
// world, so it is only called outside timed regions.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// percentile returns the p-quantile (0..1) of sorted samples in µs.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(float64(len(sorted))*p))
	return float64(sorted[i].Nanoseconds()) / 1e3
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// copyNA is why a peer has no Record.Clone figures.
const copyNA = "one way to keep a record: the copying row"

// oursOnly is m with na as the reason the peers have no figure.
func oursOnly(m metricSpec, na string) metricSpec {
	m.na = na
	return m
}

// fanOut runs fn(0) to fn(g-1) on g goroutines, released together, and
// returns their errors joined.
func fanOut(g int, fn func(i int) error) error {
	errs := make([]error, g)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errors.Join(errs...)
}

// keyPartition is the partition of n that key k hashes to, for the peers
// that have no partitioner of their own.
func keyPartition(k []byte, n int) int {
	return int(crc32.Checksum(k, castagnoli) % uint32(n))
}

// workloads returns the workloads in run order, titled with s's sizes.
func workloads(s sizes) []workload {
	ws := []workload{
		{id: "publish", title: fmt.Sprintf("publish batched, %s × 100 B", count(s.records)),
			metrics: []metricSpec{rateMetric("publish_100B_msgs", "msg/s"), mbpsMetric("publish_100B_MBps")},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) {
				return publishBatched(ctx, e, p, e.records, 100)
			}},
		{id: "publish1k", title: fmt.Sprintf("publish batched, %s × 1 KiB", count(max(s.records/8, 100))),
			metrics: []metricSpec{mbpsMetric("publish_1KiB_MBps")},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) {
				v, err := publishBatched(ctx, e, p, max(e.records/8, 100), 1<<10)
				if err != nil {
					return nil, err
				}
				return v[1:], nil // MB/s only
			}},
		{id: "publish64k", title: fmt.Sprintf("publish batched, %s × 64 KiB", count(max(s.records/256, 20))),
			metrics: []metricSpec{mbpsMetric("publish_64KiB_MBps")},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) {
				v, err := publishBatched(ctx, e, p, max(e.records/256, 20), 64<<10)
				if err != nil {
					return nil, err
				}
				return v[1:], nil // MB/s only
			}},
		producerWorkload(s),
		{id: "consume", title: fmt.Sprintf("consume from the start, %s × 100 B", count(s.records)),
			metrics: []metricSpec{rateMetric("consume_msgs", "msg/s zero-copy"), allocMetric("consume_allocs_per_record", "allocs/record zero-copy"),
				rateMetric("consume_copying_msgs", "msg/s copying ("+keeperName+")"), allocMetric("consume_copying_allocs_per_record", "allocs/record copying ("+keeperName+")"),
				oursOnly(rateMetric("consume_clone_msgs", "msg/s copying (Record.Clone)"), copyNA), oursOnly(allocMetric("consume_clone_allocs_per_record", "allocs/record copying (Record.Clone)"), copyNA)},
			run: consume},
		{id: "latency", title: "publish latency, 1 record per call, no fsync (SyncNever)",
			metrics: []metricSpec{usMetric("latency_p50_us", "p50"), usMetric("latency_p99_us", "p99"), usMetric("latency_p999_us", "p999")},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) {
				return latency(ctx, e, p, false, e.latencyMax)
			}},
		{id: "syncalways", title: "publish latency, fsync per call (SyncAlways), 1 publisher",
			metrics: []metricSpec{usMetric("syncalways_p50_us", "p50"), usMetric("syncalways_p99_us", "p99")},
			run: func(ctx context.Context, e *env, p peer) ([]float64, error) {
				v, err := latency(ctx, e, p, true, e.durableMax)
				if err != nil {
					return nil, err
				}
				return v[:2], nil
			}},
		{id: "groupcommit", title: "64 concurrent publishers, fsync (SyncAlways, group commit)",
			metrics: []metricSpec{rateMetric("groupcommit_msgs", "msg/s")},
			run:     groupCommit},
		{id: "roundtrip", title: "unit-test lifecycle: open + create topic + publish 1 + consume it + close",
			metrics: []metricSpec{usMetric("roundtrip_p50_us", "p50, ours with streamtest's options"), usMetric("roundtrip_mean_us", "mean, ours with streamtest's options"),
				oursOnly(usMetric("roundtrip_default_p50_us", "p50, ours with Open(dir, nil)"), "its defaults: the rows above")},
			run: roundtrip},
		{id: "wakeup", title: "publish → blocked consumer wake-up",
			metrics: []metricSpec{usMetric("wakeup_p50_us", "p50"), usMetric("wakeup_p99_us", "p99")},
			run:     wakeup},
		{id: "group", title: fmt.Sprintf("consumer group: 4 members over 16 partitions, %s × 100 B", count(s.records)),
			metrics: []metricSpec{rateMetric("group_msgs", "msg/s total")},
			run:     consumerGroup},
		{id: "recovery", title: fmt.Sprintf("recovery: open after kill -9 with %d MiB of 1 KiB records", s.recoveryBytes>>20),
			metrics: []metricSpec{msMetric("recovery_open_ms", "open, page cache as the kill left it"),
				msMetric("recovery_open_synced_ms", "open, after sync(2)")},
			run: recovery},
		// Left out of the default run since the partitions row came: 10,000
		// partitions of one topic took JetStream minutes to create and open.
		{id: "scale", optional: true, title: fmt.Sprintf("scale: open a topic of %s partitions", count(s.partitions)),
			metrics: []metricSpec{msMetric("scale_open_ms", "open"), sizeMetric("scale_rss_MB", "RSS after open"), countMetric("scale_mappings", "mappings")},
			run:     scale},
		partitionsWorkload(s),
		coresWorkload(s),
	}
	for _, c := range jsonCodecs {
		ws = append(ws, jsonWorkload(s, c))
	}
	ws = append(ws, txnWorkloads(s)...)
	return append(ws, compactWorkloads(s)...)
}

// jsonSection heads the table of the JSON-event workloads.
const jsonSection = "Compression: JSON events (~300 B, repeating field names), one partition, per codec. MB/s are of the events' bytes."

// jsonWorkload is the JSON-event workload with codec c (see jsonRun).
func jsonWorkload(s sizes, c codecSpec) workload {
	viaPublish := mbpsLabeled(jsonKey(c, "publish_MBps"), "publish MB/s, Broker.Publish")
	viaPublish.na = "one batching path: the row above"
	return workload{id: "json-" + c.name, section: jsonSection,
		title: fmt.Sprintf("%s: %s events", c.name, count(s.events)),
		metrics: []metricSpec{
			mbpsLabeled(jsonKey(c, "batched_MBps"), "publish MB/s, batched"),
			viaPublish,
			mbpsLabeled(jsonKey(c, "consume_MBps"), "consume MB/s"),
			bytesMetric(jsonKey(c, "stored_bytes"), "stored bytes/event"),
		},
		run: func(ctx context.Context, e *env, p peer) ([]float64, error) {
			return jsonRun(ctx, e, p, c)
		}}
}

// jsonRun publishes the run's JSON events with codec c to partition 0,
// after a warm-up of a tenth of them, in rounds (the median): through the
// batching path (ours: a Producer compressing with c), then through ours'
// Broker.Publish of a batch's worth of events per call to the topic
// compressed with c. In between, untimed, the bytes stored per event: the
// Producer's batches. Then it syncs and times readers of the first events
// from the start (ours: a Reader, zero-copy; kfake: a kgo consumer; the
// codec alone: decompressing the batches), after a warm-up.
func jsonRun(ctx context.Context, e *env, p peer, c codecSpec) ([]float64, error) {
	events := e.jsonEvents()
	warm := events[:max(len(events)/10, 1)]
	mb := float64(eventBytes(events)) / 1e6
	return withInstance(ctx, e, p, startOptions{codec: &c}, func(inst instance) ([]float64, error) {
		ei, ok := inst.(eventInstance)
		if !ok {
			return nil, notSupported("no JSON-event workloads")
		}
		var published int64
		// Each phase is labelled for -cpuprofile (pprof -tagfocus
		// phase=batched), with the goroutines it starts: ours' Producer's
		// writer, made by the first batched publish, is in "batched".
		publish := func(phase string, viaPublish bool) (rate float64, err error) {
			pprof.Do(ctx, pprof.Labels("phase", phase), func(ctx context.Context) {
				rate, err = publishPhase(ctx, e, ei, warm, events, viaPublish, &published)
			})
			return mb * rate, err
		}
		batched, err := publish("batched", false)
		if err != nil {
			return nil, err
		}
		bytes, recs, err := ei.stored(ctx)
		if err != nil {
			return nil, err
		}
		perEvent := float64(bytes) / float64(max(recs, 1))
		viaPublish, err := publish("publish", true)
		if errors.Is(err, errNotSupported) {
			viaPublish, err = math.NaN(), nil
		}
		if err != nil {
			return nil, err
		}
		if err := expectRecords(ctx, inst, published); err != nil {
			return nil, err
		}
		syscall.Sync() // as in consume: no writeback competing with the reads
		var d time.Duration
		pprof.Do(ctx, pprof.Labels("phase", "consume"), func(ctx context.Context) {
			if err = inst.read(ctx, len(warm), readInPlace); err == nil {
				d, _, err = rounds(e.budget, func() error { return inst.read(ctx, len(events), readInPlace) })
			}
		})
		if err != nil {
			return nil, err
		}
		return []float64{batched, viaPublish, mb / seconds(d), perEvent}, nil
	})
}

// publishPhase publishes warm (untimed), then events in rounds, and
// returns the median rounds per second (1 / its duration); published
// counts the events acknowledged.
func publishPhase(ctx context.Context, e *env, ei eventInstance, warm, events [][]byte, viaPublish bool, published *int64) (float64, error) {
	ei.prepare(warm)
	if err := ei.publishEvents(ctx, warm, viaPublish); err != nil {
		return 0, err
	}
	*published += int64(len(warm))
	ei.prepare(events)
	d, _, err := rounds(e.budget, func() error {
		err := ei.publishEvents(ctx, events, viaPublish)
		if err == nil {
			*published += int64(len(events))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return 1 / seconds(d), nil
}

// count formats n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// maxRounds bounds the timed rounds of a throughput workload.
const maxRounds = 5

// rounds times fn at least once and again while the time budget lasts, up to
// maxRounds times, and returns the median, and the process's allocations
// during the first round: one round of a fast peer takes a fraction of a
// second, where a 2-core VM's noise (the kernel writing back dirty pages, a
// neighbour) moves single figures by 2×.
func rounds(budget time.Duration, fn func() error) (time.Duration, uint64, error) {
	var ds []time.Duration
	var allocs uint64
	began := time.Now()
	for len(ds) < maxRounds && (len(ds) == 0 || time.Since(began) < budget) {
		runtime.GC()
		before := mallocs()
		start := time.Now()
		err := fn()
		d := time.Since(start)
		if err != nil {
			return 0, 0, err
		}
		if len(ds) == 0 {
			allocs = mallocs() - before
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], allocs, nil
}

// publishBatched returns msg/s and MB/s for n records of size bytes, after a
// warm-up of a tenth as many: the median of rounds of n on one instance.
func publishBatched(ctx context.Context, e *env, p peer, n, size int) ([]float64, error) {
	v := payload(size)
	return withInstance(ctx, e, p, startOptions{}, func(inst instance) ([]float64, error) {
		if err := inst.publishBatched(ctx, max(n/10, 1), v); err != nil {
			return nil, err
		}
		total := int64(max(n/10, 1))
		d, _, err := rounds(e.budget, func() error {
			total += int64(n)
			return inst.publishBatched(ctx, n, v)
		})
		if err != nil {
			return nil, err
		}
		if err := expectRecords(ctx, inst, total); err != nil {
			return nil, err
		}
		return []float64{float64(n) / seconds(d), float64(n*size) / seconds(d) / 1e6}, nil
	})
}

// consume publishes n records (untimed), syncs, reads a tenth of them as a
// warm-up, then times passes over all of them (the median of rounds) in
// place, copying (ours: a stream.Arena), and with Record.Clone (ours
// only), counting the process's allocations during the first pass of each
// kind.
func consume(ctx context.Context, e *env, p peer) ([]float64, error) {
	n := e.records
	return withInstance(ctx, e, p, startOptions{}, func(inst instance) ([]float64, error) {
		if err := inst.publishBatched(ctx, n, payload(100)); err != nil {
			return nil, err
		}
		// Write back what was just published before timing reads: on two
		// cores the kernel's flusher would otherwise compete with them.
		syscall.Sync()
		if err := inst.read(ctx, max(n/10, 1), readInPlace); err != nil {
			return nil, err
		}
		var out []float64
		for _, mode := range []readMode{readInPlace, readCopy, readClone} {
			d, allocs, err := rounds(e.budget, func() error { return inst.read(ctx, n, mode) })
			if errors.Is(err, errNotSupported) {
				out = append(out, math.NaN(), math.NaN())
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, float64(n)/seconds(d), float64(allocs)/float64(n))
		}
		return out, nil
	})
}

// latency times publishOne calls one by one: p50, p99 and p999 in µs. It
// stops at most samples or, past a thousand samples, at the time budget.
func latency(ctx context.Context, e *env, p peer, durable bool, most int) ([]float64, error) {
	v := payload(100)
	return withInstance(ctx, e, p, startOptions{durable: durable}, func(inst instance) ([]float64, error) {
		for range min(max(most/10, 10), 1000) { // warm-up
			if err := inst.publishOne(ctx, v); err != nil {
				return nil, err
			}
		}
		lat := make([]time.Duration, 0, most)
		runtime.GC()
		deadline := time.Now().Add(e.budget)
		for len(lat) < most {
			start := time.Now()
			if err := inst.publishOne(ctx, v); err != nil {
				return nil, err
			}
			end := time.Now()
			lat = append(lat, end.Sub(start))
			if len(lat) >= min(most, 1000) && end.After(deadline) {
				break
			}
		}
		slices.Sort(lat)
		return []float64{percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)}, nil
	})
}

// groupCommit has 64 goroutines publish one record per call under an fsync
// per acknowledgement, for at most groupCommit records or the time budget.
func groupCommit(ctx context.Context, e *env, p peer) ([]float64, error) {
	const writers = 64
	v := payload(100)
	return withInstance(ctx, e, p, startOptions{durable: true}, func(inst instance) ([]float64, error) {
		var left atomic.Int64
		burst := func(n int64, until time.Time) (int64, error) {
			left.Store(n)
			var done atomic.Int64
			var wg sync.WaitGroup
			errs := make([]error, writers)
			for w := range writers {
				wg.Go(func() {
					for left.Add(-1) >= 0 && time.Now().Before(until) {
						if err := inst.publishOne(ctx, v); err != nil {
							errs[w] = err
							return
						}
						done.Add(1)
					}
				})
			}
			wg.Wait()
			return done.Load(), errors.Join(errs...)
		}
		if _, err := burst(writers*4, time.Now().Add(e.budget)); err != nil { // warm-up
			return nil, err
		}
		runtime.GC()
		start := time.Now()
		n, err := burst(int64(e.groupCommit), start.Add(e.budget))
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		return []float64{float64(n) / seconds(d)}, nil
	})
}

// roundtrip times a whole short life on a fresh directory, as a unit test
// has it, with the options streamtest gives a test (ours; the peers run as
// in every row), then ours with Open(dir, nil): p50 and mean, and p50.
func roundtrip(ctx context.Context, e *env, p peer) ([]float64, error) {
	p50, mean, err := lifecycles(ctx, e, p, startOptions{unitTest: true})
	if err != nil {
		return nil, err
	}
	dflt := math.NaN()
	if p.id() == (embedPeer{}).id() {
		if dflt, _, err = lifecycles(ctx, e, p, startOptions{engineDefaults: true}); err != nil {
			return nil, err
		}
	}
	return []float64{p50, mean, dflt}, nil
}

// lifecycles times short lives, start to close: start, publish one record,
// read it back, close. Removing the directory afterwards is not timed. The
// first two are a warm-up. It returns their p50 and mean in µs.
func lifecycles(ctx context.Context, e *env, p peer, o startOptions) (p50, mean float64, err error) {
	v := payload(100)
	var lat []time.Duration
	deadline := time.Now().Add(e.budget)
	for i := 0; i < e.roundtrips+2; i++ {
		dir, err := e.newDir(p)
		if err != nil {
			return 0, 0, err
		}
		start := time.Now()
		inst, err := p.start(ctx, dir, o)
		if err == nil {
			err = inst.publishOne(ctx, v)
			if err == nil {
				err = inst.read(ctx, 1, readInPlace)
			}
			err = errors.Join(err, inst.close())
		}
		d := time.Since(start)
		os.RemoveAll(dir)
		if err != nil {
			return 0, 0, err
		}
		if i >= 2 {
			lat = append(lat, d)
		}
		if len(lat) >= 5 && time.Now().After(deadline) {
			break
		}
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	return percentile(lat, 0.5), float64(sum.Nanoseconds()) / float64(len(lat)) / 1e3, nil
}

// wakeupGap is how long the publisher waits before each publish, so that the
// consumer is parked in its blocking call, not still returning from the last.
const wakeupGap = 200 * time.Microsecond

// wakeup times, for a consumer blocked waiting for data, the span from the
// start of a one-record publish to the consumer's return with it.
func wakeup(ctx context.Context, e *env, p peer) ([]float64, error) {
	v := payload(100)
	return withInstance(ctx, e, p, startOptions{}, func(inst instance) ([]float64, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		next, err := inst.tail(ctx)
		if err != nil {
			return nil, err
		}
		got := make(chan time.Time)
		failed := make(chan error, 1)
		go func() {
			for {
				if err := next(); err != nil {
					failed <- err
					return
				}
				got <- time.Now()
			}
		}()
		const warm = 20
		var lat []time.Duration
		deadline := time.Now().Add(e.budget)
		// One timer for the whole run: a new one per wake-up would be
		// garbage, and the collector's work noise in every peer's figures.
		stuck := time.NewTimer(time.Hour)
		defer stuck.Stop()
		for i := 0; i < e.wakeups+warm; i++ {
			time.Sleep(wakeupGap)
			stuck.Reset(30 * time.Second)
			start := time.Now()
			if err := inst.publishOne(ctx, v); err != nil {
				return nil, err
			}
			select {
			case end := <-got:
				if i >= warm {
					lat = append(lat, end.Sub(start))
				}
			case err := <-failed:
				return nil, err
			case <-stuck.C:
				return nil, errors.New("consumer not woken within 30 s")
			}
			if len(lat) >= 100 && time.Now().After(deadline) {
				break
			}
		}
		slices.Sort(lat)
		return []float64{percentile(lat, 0.5), percentile(lat, 0.99)}, nil
	})
}

// consumerGroup publishes records over 16 partitions (untimed), then times
// 4 members of a new group, joining included, until all are consumed.
func consumerGroup(ctx context.Context, e *env, p peer) ([]float64, error) {
	n := e.records
	return withInstance(ctx, e, p, startOptions{partitions: 16}, func(inst instance) ([]float64, error) {
		if err := inst.publishBatched(ctx, n, payload(100)); err != nil {
			return nil, err
		}
		var end time.Time
		runtime.GC()
		start := time.Now()
		if err := inst.group(ctx, 4, n, func() { end = time.Now() }); err != nil {
			return nil, err
		}
		return []float64{float64(n) / end.Sub(start).Seconds()}, nil
	})
}

// recovery measures a peer's start on a log left by kill -9 twice: once with
// the page cache as the kill left it (a restart right after a crash: the
// dead writer's pages may not have reached the disk yet), and once after
// sync(2) has written them (the recovery scan alone).
func recovery(ctx context.Context, e *env, p peer) ([]float64, error) {
	// A peer that cannot do it says so here, not in a child.
	if _, err := withInstance(ctx, e, p, startOptions{persistent: true, bigLog: true}, func(instance) ([]float64, error) { return nil, nil }); err != nil {
		return nil, err
	}
	var out []float64
	for _, syncFirst := range []bool{false, true} {
		ms, err := recoverOnce(ctx, e, p, syncFirst)
		if err != nil {
			return nil, err
		}
		out = append(out, ms)
	}
	return out, nil
}

// recoverOnce has a child process (this binary) fill a one-partition log
// with recoveryBytes of 1 KiB records and go on publishing until SIGKILLed,
// then times the peer's start on the directory the child left, recovery
// included, in ms.
func recoverOnce(ctx context.Context, e *env, p peer, syncFirst bool) (float64, error) {
	o := startOptions{persistent: true, bigLog: true}
	dir, err := e.newDir(p)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cmd := childCommand(ctx, "fill", p.id(), dir, strconv.FormatInt(e.recoveryBytes, 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	ackedText, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	acked, convErr := strconv.ParseInt(ackedText, 10, 64)
	if err != nil || !ok || convErr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("fill child: %q %v (stderr above)", line, err)
	}
	time.Sleep(20 * time.Millisecond) // it is publishing again: kill it mid-write
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if syncFirst {
		syscall.Sync()
	}

	var inst instance
	d, err := timed(func() error {
		var err error
		inst, err = p.start(ctx, dir, o)
		return err
	})
	if err != nil {
		return 0, err
	}
	// Untimed: every record acknowledged before "ready" is there, and reads.
	if got, err := inst.records(ctx); err != nil || got < acked {
		inst.close()
		return 0, fmt.Errorf("recovered %d records, %d were acknowledged: %v", got, acked, err)
	}
	err = inst.read(ctx, 1, readInPlace)
	return float64(d.Microseconds()) / 1e3, errors.Join(err, inst.close())
}

// scale creates a topic of e.partitions partitions with one record in each,
// closes it, then has a fresh child process time the peer's start on the
// directory and report its RSS and memory mappings afterwards.
func scale(ctx context.Context, e *env, p peer) ([]float64, error) {
	o := startOptions{partitions: e.partitions, persistent: true}
	dir, err := e.newDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	inst, err := p.start(ctx, dir, o)
	if err != nil {
		return nil, fmt.Errorf("creating the topic: %w", err)
	}
	err = inst.publishBatched(ctx, e.partitions, payload(100))
	if err = errors.Join(err, inst.close()); err != nil {
		return nil, fmt.Errorf("publishing one record per partition: %w", err)
	}
	r, err := runScaleChild(ctx, p.id(), dir, e.partitions)
	if err != nil {
		return nil, err
	}
	return []float64{float64(r.OpenNs) / 1e6, float64(r.RSS) / 1e6, float64(r.Mappings)}, nil
}
