// Command bench runs the same workloads, in one process run, on embedstream
// and its peers: NATS JetStream embedded in the process, franz-go's kfake
// (in memory and on disk) driven by a kgo client, and a raw-file baseline,
// the physical limit. It prints a markdown table of each peer's figures, with
// the ratio to ours and the goals met or not, and can write the results as
// JSON.
//
//	cd bench && go run . [-quick] [-json FILE] [-cpuprofile FILE] [-only IDS] [-peers IDS]
//
// The compression rows (-only json) have a table of their own: JSON events
// per codec, ours beside the codec alone on the same batches, kfake with
// the same codec and, uncompressed, the raw file.
//
// The full run takes about four minutes on a 2-core machine; -quick, with
// ~20k records per workload, under a minute.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// smokeSizes are the -smoke sizes: the smallest that still run every code
// path, for the test under the race detector.
var smokeSizes = sizes{records: 2_000, latencyMax: 1_000, durableMax: 20, groupCommit: 500,
	roundtrips: 5, wakeups: 20, budget: 50 * time.Millisecond, recoveryBytes: 4 << 20,
	partitions: 50, topics: 2, events: 2_000, timeout: time.Minute}

// run is the whole program: flags, workloads on every peer, output.
func run(args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "small sizes (~20k records per workload): under a minute")
	smoke := fs.Bool("smoke", false, "tiny sizes, for the smoke test")
	jsonPath := fs.String("json", "", "also write the results as JSON to `FILE`")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (child processes excluded) to `FILE`")
	mutexprofile := fs.String("mutexprofile", "", "write a profile of contended mutexes (every contention event: runtime.SetMutexProfileFraction(1)) over the run (child processes excluded) to `FILE`; -only cores -peers embedstream shows whether partitions wait on a shared lock")
	only := fs.String("only", "", "run only these comma-separated workload `IDS` (default all but scale, which runs only when named; json: every json-*; transactions: every txn-*; compaction: every compact-*): "+workloadIDs())
	peersFlag := fs.String("peers", "", "run only these comma-separated peer `IDS` (default all): "+peerIDs())
	repeat := fs.Int("repeat", 0, "run each workload on each peer `N` times, the peers taking turns, and report the median and range of each figure (default 3, 1 with -smoke)")
	topics := fs.Int("topics", 0, "topics of 100 partitions in the partitions row: `N` (default 1,000, -quick 50, -smoke 2)")
	dirFlag := fs.String("dir", "", "put data under `DIR` (default a new temporary directory, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	mode, sz := "full", fullSizes
	switch {
	case *smoke:
		mode, sz = "smoke", smokeSizes
	case *quick:
		mode, sz = "quick", quickSizes
	}
	if *topics > 0 {
		sz.topics = *topics
	}
	peers, err := selectPeers(*peersFlag)
	if err != nil {
		return err
	}
	wls, err := selectWorkloads(workloads(sz), *only, *smoke)
	if err != nil {
		return err
	}

	root := *dirFlag
	if root == "" {
		if root, err = os.MkdirTemp("", "embedstream-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	} else if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	e := &env{sizes: sz, root: root}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if *mutexprofile != "" {
		f, ferr := os.Create(*mutexprofile)
		if ferr != nil {
			return ferr
		}
		defer f.Close()
		runtime.SetMutexProfileFraction(1)
		defer func() {
			runtime.SetMutexProfileFraction(0)
			if werr := pprof.Lookup("mutex").WriteTo(f, 0); err == nil {
				err = werr
			}
		}()
	}

	rep := newReport(peers)
	rep.Machine = machine()
	rep.Machine["cores"] = fmt.Sprint(runtime.NumCPU())
	rep.Machine["go"] = runtime.Version()
	rep.Machine["os"] = runtime.GOOS + "/" + runtime.GOARCH
	rep.Machine["date"] = time.Now().Format(time.RFC3339)
	rep.Machine["mode"] = mode
	rep.Machine["summary"] = fmt.Sprintf("%s, %s cores, %s, kernel %s, %s; %s run, %s",
		rep.Machine["cpu"], rep.Machine["cores"], rep.Machine["os"], rep.Machine["kernel"],
		rep.Machine["go"], mode, rep.Machine["date"])
	rep.Sizes = map[string]any{"records": sz.records, "latency_samples_max": sz.latencyMax,
		"fsync_samples_max": sz.durableMax, "group_commit_records_max": sz.groupCommit,
		"roundtrips_max": sz.roundtrips, "wakeups_max": sz.wakeups, "budget_s": sz.budget.Seconds(),
		"recovery_bytes": sz.recoveryBytes, "scale_partitions": sz.partitions,
		"partitions_topics": sz.topics, "partitions_per_topic": partitionsPerTopic, "json_events": sz.events}

	began := time.Now()
	ctx := context.Background()
	n := *repeat
	if n <= 0 {
		n = 3
		if *smoke {
			n = 1
		}
	}
	rep.Machine["runs"] = fmt.Sprint(n)
	for i, w := range wls {
		// The peers take turns, run after run, so that a neighbour's load
		// on the machine falls on all of them alike and the ratios between
		// them hold.
		runs := make([][][]float64, len(peers))
		errs := make([]error, len(peers))
		took := make([]time.Duration, len(peers))
		for r := range n {
			for j, p := range peers {
				if errs[j] != nil {
					continue
				}
				fmt.Fprintf(stderr, "[%d/%d] %s: %s, run %d of %d ... ", i+1, len(wls), w.title, p.name(), r+1, n)
				start := time.Now()
				wctx, cancel := context.WithTimeout(ctx, sz.timeout)
				var vals []float64
				var err error
				// Labelled for -cpuprofile: pprof -tagfocus workload=json-lz4 -tagignore peer=codec.
				pprof.Do(wctx, pprof.Labels("workload", w.id, "peer", p.id()), func(wctx context.Context) {
					vals, err = w.run(wctx, e, p)
				})
				if err != nil && wctx.Err() != nil {
					err = fmt.Errorf("timed out after %v: %w", sz.timeout, err)
				}
				cancel()
				// Untimed: flush what this run left dirty, so that the next
				// run does not pay for its writeback.
				syscall.Sync()
				runtime.GC()
				d := time.Since(start)
				took[j] += d
				if err != nil {
					errs[j] = err
				} else {
					runs[j] = append(runs[j], vals)
				}
				progress(stderr, w, err, vals, d)
			}
		}
		e.dropKept()
		for j, p := range peers {
			rep.add(w, w.title, p, runs[j], errs[j])
			if n > 1 && errs[j] == nil {
				fmt.Fprintf(stderr, "[%d/%d] %s: %s, median (min–max) of %d runs, %v in all: %s\n", i+1, len(wls), w.title, p.name(),
					len(runs[j]), took[j].Round(time.Millisecond), summary(w, runs[j]))
			}
		}
	}
	if slices.ContainsFunc(wls, func(w workload) bool { return w.id == "scale" || w.id == "partitions" }) {
		if idle, err := runScaleChild(ctx, "idle", root, 0); err == nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("scale and many partitions: a child process of this binary that opens nothing has %.0f MB RSS, %d mappings and %d open files; each figure above includes that.",
				float64(idle.RSS)/1e6, idle.Mappings, idle.FDs))
		}
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.Notes = append(rep.Notes, notes(sz, n)...)
	rep.Notes = append(rep.Notes, fmt.Sprintf("the run took %.0f s.", rep.Seconds))
	rep.finish()

	rep.writeTable(stdout)
	if *jsonPath != "" {
		return rep.writeJSON(*jsonPath)
	}
	return nil
}

// progress ends a progress line on stderr with a peer's figures for w in
// one run, or why it has none.
func progress(stderr io.Writer, w workload, err error, vals []float64, took time.Duration) {
	switch {
	case errors.Is(err, errNotSupported):
		fmt.Fprintf(stderr, "n/a: %s\n", reason(err))
	case err != nil:
		fmt.Fprintf(stderr, "FAILED (%v): %v\n", took.Round(time.Millisecond), err)
	default:
		var parts []string
		for j, m := range w.metrics {
			if j < len(vals) && !math.IsNaN(vals[j]) {
				parts = append(parts, m.label+" "+m.format(vals[j]))
			}
		}
		fmt.Fprintf(stderr, "%s (%v)\n", strings.Join(parts, ", "), took.Round(time.Millisecond))
	}
}

// summary is each figure of w's runs as median (min–max).
func summary(w workload, runs [][]float64) string {
	var parts []string
	for j, m := range w.metrics {
		col := column(runs, j)
		if len(col) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", m.label, m.format(median(col)), fmtRange(m.format, slices.Min(col), slices.Max(col))))
	}
	return strings.Join(parts, ", ")
}

// notes explain how the figures were taken, under the table.
func notes(sz sizes, runs int) []string {
	return []string{
		fmt.Sprintf("each figure is the median of %d runs of the workload, each on a fresh instance, the peers taking turns run after run (so that a neighbour's load falls on all of them alike), with the range of the runs (min–max); the N× ratios are median against median, and a goal is met only if ours' median meets it. The JSON has the median (value), min, max and every run.", runs),
		"every workload starts its own instance on a fresh directory under the temp dir; ours uses SyncNever except where fsync is named (SyncAlways), and so do the peers (JetStream: no sync_always, fsync every 2 min; kfake: no SyncWrites).",
		"throughput: a warm-up of a tenth of the records first, untimed; then time.Now around the whole call. Latency: a warm-up of up to 1,000 calls, then one time.Now pair per call; sampling stops at its sample limit or, past 1,000 samples, after " + sz.budget.String() + ".",
		"allocations: runtime.MemStats.Mallocs before and after the timed pass over all records, divided by the records: the whole process's allocations, the peers' server goroutines included.",
		"consume: the records are published and sync(2) writes them back (untimed, so that the kernel's flusher does not compete with the reads); ours reads with a Reader, zero-copy, then keeping every record: with " + keeperName + " for the copying pass and with Record.Clone for its own; the peers copy each value for the copying pass; JetStream with an ordered pull consumer (10,000-message window); kfake with a kgo consumer (8 MiB partition fetches); raw maps the file and checks each frame's CRC-32C.",
		fmt.Sprintf("producer: one Producer (ours: Linger %v, default BatchBytes 512 KiB and HashPartitioner; kgo: a client of its own with ProducerLinger %v, its default 1 MB batches and sticky murmur2 partitioner, no compression; JetStream: PublishAsync, which has no callback, to the stream the key hashes to; the raw file: a frame per 512 KiB per partition under a lock, written on filling or at the flush, values only) gets %s × 100 B records one Publish (Produce) call each, with a callback each that counts it, keyless to a topic of 1 partition, keyed (%s distinct keys) to a topic of %d; a round runs from the first call to the return of Flush (every callback run), from 1 goroutine and from %d (each a share of the records), after a warm-up of a tenth. The caller keeps a Record per record, reused round after round.",
			eventLinger, eventLinger, count(sz.records), count(producerKeys), producerPartitions, producerGoroutines),
		"unit-test lifecycle: start on a new directory, create the topic, publish one record, read it back, close; ours with streamtest's options (SyncNever, 1 MiB segments, as streamtest.NewBroker and streamtest.CreateTopic give them), then with Open(dir, nil) (SyncInterval: its cost is the disk's fsyncs); the peers as in every row (no fsync). Removing the directory is not timed; the p50 and mean over the lives of one run.",
		fmt.Sprintf("many partitions: one process creates %s topics of %d partitions (SyncNever) and publishes a record to each partition (one call per topic), timed, and closes; a fresh child process opens the directory (timed), reads its VmRSS, counts /proc/self/maps lines and /proc/self/fd entries, then publishes one record to each partition in turn (a call each) and reads each partition from its start to its end with a Reader of its own, sampling mappings and open files every %s partitions (the sampling left out of the times), and reports the same again; the limits are the child's vm.max_map_count and RLIMIT_NOFILE (Go raises the soft limit to the hard one).",
			count(sz.topics), partitionsPerTopic, count(partitionsSampleEvery)),
		fmt.Sprintf("many cores: a topic of %d partitions; N goroutines, goroutine i publishing to partition i only (Broker.Publish with %s records per call, then with 1), then reading it with a Reader of its own; totals are all goroutines' records over the round's time, the median of rounds. Run with -mutexprofile FILE (and -only cores -peers embedstream) to see which locks the goroutines waited on.",
			coreCounts()[len(coreCounts())-1], count(coresPerCall)),
		"wake-up: the publisher sleeps " + wakeupGap.String() + " before each publish so the consumer is parked (ours: Consumer.Poll); the span runs from the start of the publish call to the consumer's return.",
		"consumer group: timed from creating the members (joining included) to the last record; ours RangeBalancer with MaxPollRecords 5,000, kfake kgo's RangeBalancer; JetStream has no partitions, so a partition is a stream and each member reads its range of streams.",
		"recovery: a child process of this binary writes the log (ours with 2 GiB segments, so the whole log is the active segment) and is SIGKILLed while publishing; the time is the peer's start on the directory, with the page cache as the kill left it (the dead writer's data mostly not yet on disk), then again on a new log after sync(2). Ours runs SyncNever here, as the peers run without fsync, so it serves what it recovered without an fdatasync (under SyncInterval or SyncAlways it syncs it first, a few hundred ms more for 1 GiB). Each peer's start is checked to hold every record acknowledged before the kill.",
		"kfake speaks the Kafka protocol over loopback TCP (it has no in-process transport), to a kgo client with linger 0 (the default 10 ms measured the same for batches) and no compression (the default snappy would squeeze the identical values to nothing); NATS uses nats.InProcessServer (a net.Pipe).",
		"scale: the topic is created and one record published to each partition, then a fresh child process of this binary times the peer's start on the directory and reads its own VmRSS and /proc/self/maps; JetStream has a stream per partition.",
		fmt.Sprintf("compression: %s JSON events of ~300 B (the same, from a fixed seed, for every peer) to one partition, each codec at its default level, in batches of up to %d KiB: ours' Producer (ProducerOptions.Compression, BatchBytes %d KiB, Linger %v) and Broker.Publish calls of one batch's worth of records to a topic with TopicConfig.Compression; kgo with ProducerBatchCompression, ProducerBatchMaxBytes %d KiB and ProducerLinger %v; the raw file's frames hold as much, uncompressed (the none rows only). Publish: a warm-up of a tenth of the events, then rounds of all of them (the median), each ending when every event is acknowledged (Producer.Flush, kgo's Flush). Consume: after sync(2), the first %s events read back from the start, as in consume (ours: a Reader, zero-copy; kfake: a kgo consumer, which decompresses in the client).",
			count(sz.events), eventBatchBytes>>10, eventBatchBytes>>10, eventLinger, eventBatchBytes>>10, eventLinger, count(sz.events)),
		"transactions (ours only: " + txnNotOurs + "): two brokers, one stepping in transactions, one without (the baseline), taking turns round after round after 10 untimed steps each. fsync calls count Stats.Fsyncs (segment files) and Stats.MetaSyncs (meta.db: bbolt fdatasyncs its new pages, then its meta page, one after the other); a transaction fsyncs its 4 partitions at once (one round), then commits meta.db (two rounds), so 3 rounds; counting meta.db's commit as one step, as the goal does, makes 2. The baseline's Broker.Publish fsyncs the 4 partitions one after the other, then Consumer.Commit commits meta.db. Reads: the log's records passed over per second, the medians of passes taking turns; read_committed returns 90% of them.",
		"compaction (ours only: " + compactNotOurs + "): the cleaning rows publish the records (untimed) to a compacted topic with segments of an eighth of the log, then time Broker.Compact (one round; the active segment is never cleaned), up to 3 rounds on fresh topics, the median; MB/s are Stats.CleanerBytes (the bytes of the segments the round read and rewrote) over the round's time; after each round every key's latest value is read back and checked. The key map row is a log.KeyMap (the cleaner's type: 16 B a slot, grown by doubling up to Options.CleanerBufferBytes, 128 MiB by default) holding the same keys (the broker does not expose its own map's size). The table rows: a Table over a compacted topic of 10,000 keys; Get over existing keys with a prime stride, rounds of at least 100,000 lookups, the median; catch-up from Publish's return until Table.WaitChange sees the record.",
		"compression, codec alone: the same events encoded once (untimed) into the same batches, then on one goroutine only batch.AppendCompressed of each batch's records (the call ours makes: klauspost/compress and pierrec/lz4, pooled encoders, Kafka's framings) for publish, batch.AppendDecompressed for consume; its (N×) is ours ÷ the codec alone. Stored bytes/event: ours PartitionInfo.Bytes (the batches, not the segment's preallocated space) of the Producer's batches, kfake its DescribeLogDirs size, the raw file its frames, the codec alone its batches' headers plus compressed records.",
	}
}

func workloadIDs() string {
	var ids []string
	for _, w := range workloads(quickSizes) {
		ids = append(ids, w.id)
	}
	return strings.Join(ids, ",")
}

func peerIDs() string {
	var ids []string
	for _, p := range allPeers() {
		ids = append(ids, p.id())
	}
	return strings.Join(ids, ",")
}

// groupPrefixes name groups of workloads for -only: every codec's
// JSON-event workload, every transactions workload, every compaction
// workload.
var groupPrefixes = map[string]string{"json": "json-", "transactions": "txn-", "compaction": "compact-"}

// selectWorkloads returns the workloads only names, or by default all but
// the optional ones (all of them with -smoke, which tests every path).
func selectWorkloads(all []workload, only string, smoke bool) ([]workload, error) {
	if only == "" {
		if smoke {
			return all, nil
		}
		return slices.DeleteFunc(all, func(w workload) bool { return w.optional }), nil
	}
	var out []workload
	for id := range strings.SplitSeq(only, ",") {
		if prefix, ok := groupPrefixes[id]; ok { // a group of workloads
			for _, w := range all {
				if strings.HasPrefix(w.id, prefix) {
					out = append(out, w)
				}
			}
			continue
		}
		i := slices.IndexFunc(all, func(w workload) bool { return w.id == id })
		if i < 0 {
			return nil, fmt.Errorf("unknown workload %q (have %s)", id, workloadIDs())
		}
		out = append(out, all[i])
	}
	return out, nil
}

func selectPeers(ids string) ([]peer, error) {
	if ids == "" {
		return allPeers(), nil
	}
	var out []peer
	for id := range strings.SplitSeq(ids, ",") {
		p, err := peerByID(id)
		if err != nil {
			return nil, fmt.Errorf("%w (have %s)", err, peerIDs())
		}
		out = append(out, p)
	}
	return out, nil
}
