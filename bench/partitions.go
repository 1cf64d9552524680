package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/embedstream/stream"
)

// The partitions row (#19): many topics of partitionsPerTopic partitions
// (1,000 × 100 = 100,000 in a full run), one record in each, reopened by
// a fresh process that reports what holding them idle costs (open time,
// RSS, memory mappings, open files), then publishes one record to every
// partition in turn and reads every partition in turn with a Reader, and
// reports the same after that activity, with the most mappings and open
// files seen at any point (sampled every partitionsSampleEvery
// partitions). Ours only: kfake (disk) and the raw file keep a file open
// per partition, past the open-file limit; JetStream's stream per
// partition took 10 s to open 10,000 in the scale row.

const (
	partitionsSection     = "Many partitions: topics of 100 partitions, one record in each, reopened by a fresh process (ours only)."
	partitionsPerTopic    = 100
	partitionsSampleEvery = 1000
	partitionsNotOurs     = "ours only: kfake (disk) and the raw file keep files open per partition, JetStream opens 10,000 streams in 10 s (the scale row)"
)

func partitionsWorkload(s sizes) workload {
	return workload{id: "partitions", section: partitionsSection,
		title: fmt.Sprintf("%s partitions: %s topics × %d, one record each, then a fresh process", count(s.topics*partitionsPerTopic), count(s.topics), partitionsPerTopic),
		metrics: []metricSpec{
			msMetric("partitions_create_ms", "create the topics + publish 1 to each partition (the first process)"),
			msMetric("partitions_open_ms", "open (fresh process)"),
			sizeMetric("partitions_idle_rss_MB", "RSS after open"),
			countMetric("partitions_idle_mappings", "mappings after open"),
			countMetric("partitions_idle_fds", "open files after open"),
			rateMetric("partitions_publish_msgs", "publish 1 record to each partition in turn, msg/s"),
			rateMetric("partitions_consume_msgs", "read each partition in turn (a Reader each), msg/s"),
			sizeMetric("partitions_active_rss_MB", "RSS after publishing and reading"),
			countMetric("partitions_max_mappings", "most mappings at any point"),
			countMetric("partitions_max_fds", "most open files at any point"),
			countMetric("partitions_map_limit", "vm.max_map_count"),
			countMetric("partitions_fd_limit", "open-file limit (RLIMIT_NOFILE)"),
		},
		run: partitionsRun}
}

// partitionsGoals are #19's goals at 100,000 partitions: Open ≤ 5 s, idle
// RSS ≤ 1 GB, and no limit reached: mappings and open files below theirs
// at every point (the broker's default bound, Options.MaxOpenSegments,
// takes half of each, and the rest of the process a few more).
func partitionsGoals() []goal {
	below := func(limitKey string) func(float64, *report) bool {
		return func(v float64, r *report) bool {
			limit, ok := r.value(limitKey, r.ours)
			return ok && v < limit
		}
	}
	return []goal{
		{"partitions_open_ms", "≤ 5 s", func(v float64, _ *report) bool { return v <= 5000 }},
		{"partitions_idle_rss_MB", "≤ 1 GB", func(v float64, _ *report) bool { return v <= 1000 }},
		{"partitions_max_mappings", "< vm.max_map_count", below("partitions_map_limit")},
		{"partitions_max_fds", "< RLIMIT_NOFILE", below("partitions_fd_limit")},
	}
}

// partitionsTopic is the name of topic i of the partitions row.
func partitionsTopic(i int) string { return fmt.Sprintf("t%04d", i) }

// partitionsRun creates the topics and publishes one record to each
// partition (timed), closes the broker, and has a child process do the
// rest.
func partitionsRun(ctx context.Context, e *env, p peer) ([]float64, error) {
	if p.id() != (embedPeer{}).id() {
		return nil, notSupported(partitionsNotOurs)
	}
	// The first run creates the directory and times that; the later runs
	// reopen it (each child adds a record to every partition).
	created, k := math.NaN(), e.keptDir("partitions")
	if k == nil {
		dir, err := e.newDir(p)
		if err != nil {
			return nil, err
		}
		d, err := timed(func() error { return fillPartitions(ctx, dir, e.topics) })
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		k, created = e.keep("partitions", dir), float64(d.Microseconds())/1e3
	}
	k.runs++
	dir := k.dir
	// One record from the first process, one from each child so far.
	records := int64(e.topics*partitionsPerTopic) * int64(1+k.runs)
	cmd := childCommand(ctx, "partitions", p.id(), dir, strconv.Itoa(e.topics))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("partitions child: %w", err)
	}
	var r partitionsReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("partitions child: %w", err)
	}
	if r.Consumed != records {
		return nil, fmt.Errorf("partitions child read %d records, want %d", r.Consumed, records)
	}
	n := float64(e.topics * partitionsPerTopic)
	return []float64{
		created, float64(r.OpenNs) / 1e6,
		float64(r.Idle.RSS) / 1e6, float64(r.Idle.Mappings), float64(r.Idle.FDs),
		n / (float64(r.PublishNs) / 1e9), float64(r.Consumed) / (float64(r.ConsumeNs) / 1e9),
		float64(r.Active.RSS) / 1e6, float64(r.MaxMappings), float64(r.MaxFDs),
		float64(r.MapLimit), float64(r.FDLimit),
	}, nil
}

// partitionsOptions are the broker options of both processes: as in every
// row, SyncNever, and records name their partition.
func partitionsOptions() *stream.Options {
	return &stream.Options{Sync: stream.SyncNever, Partitioner: stream.ManualPartitioner{}}
}

// fillPartitions creates the topics in dir and publishes one record to
// each of their partitions, a Publish call per topic.
func fillPartitions(ctx context.Context, dir string, topics int) error {
	b, err := stream.Open(dir, partitionsOptions())
	if err != nil {
		return err
	}
	v := payload(100)
	recs := make([]stream.Record, partitionsPerTopic)
	ptrs := make([]*stream.Record, partitionsPerTopic)
	for t := range topics {
		name := partitionsTopic(t)
		if err := b.CreateTopic(name, stream.TopicConfig{Partitions: partitionsPerTopic}); err != nil {
			return errors.Join(fmt.Errorf("creating topic %d of %d: %w", t+1, topics, err), b.Close())
		}
		for i := range recs {
			recs[i] = stream.Record{Topic: name, Partition: int32(i), Value: v}
			ptrs[i] = &recs[i]
		}
		if err := b.Publish(ctx, ptrs...); err != nil {
			return errors.Join(fmt.Errorf("publishing to topic %d of %d: %w", t+1, topics, err), b.Close())
		}
	}
	return b.Close()
}

// partitionsReport is what the partitions child prints.
type partitionsReport struct {
	OpenNs      int64          `json:"open_ns"`
	Idle        resourceSample `json:"idle"`
	PublishNs   int64          `json:"publish_ns"` // sampling excluded
	ConsumeNs   int64          `json:"consume_ns"` // sampling excluded
	Consumed    int64          `json:"consumed"`
	Active      resourceSample `json:"active"`
	MaxMappings int            `json:"max_mappings"`
	MaxFDs      int            `json:"max_fds"`
	MapLimit    int            `json:"map_limit"`
	FDLimit     int            `json:"fd_limit"`
	sampling    time.Duration  // spent sampling, left out of the passes
}

// resourceSample is what the process holds at one point.
type resourceSample struct {
	RSS      int64 `json:"rss_bytes"`
	Mappings int   `json:"mappings"`
	FDs      int   `json:"fds"`
}

// sample takes a resourceSample, keeping the maxima and the time it took.
func (r *partitionsReport) sample() (resourceSample, error) {
	start := time.Now()
	defer func() { r.sampling += time.Since(start) }()
	var s resourceSample
	var err error
	if s.RSS, err = rssBytes(); err != nil {
		return s, err
	}
	if s.Mappings, err = mappings(); err != nil {
		return s, err
	}
	if s.FDs, err = openFiles(); err != nil {
		return s, err
	}
	r.MaxMappings, r.MaxFDs = max(r.MaxMappings, s.Mappings), max(r.MaxFDs, s.FDs)
	return s, nil
}

// partitionsChild opens dir, holding topics topics of partitionsPerTopic
// partitions, and prints a partitionsReport.
func partitionsChild(ctx context.Context, dir string, topics int) error {
	var r partitionsReport
	var err error
	if r.MapLimit, err = mapLimit(); err != nil {
		return err
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	r.FDLimit = int(lim.Cur)

	start := time.Now()
	b, err := stream.Open(dir, partitionsOptions())
	if err != nil {
		return err
	}
	r.OpenNs = time.Since(start).Nanoseconds()
	if r.Idle, err = r.sample(); err != nil {
		return errors.Join(err, b.Close())
	}
	if err := partitionsActivity(ctx, b, topics, &r); err != nil {
		return errors.Join(err, b.Close())
	}
	if r.Active, err = r.sample(); err != nil {
		return errors.Join(err, b.Close())
	}
	if err := b.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// partitionsActivity publishes one record to every partition in turn,
// then reads every partition from its start to its end with a Reader of
// its own, sampling every partitionsSampleEvery partitions.
func partitionsActivity(ctx context.Context, b *stream.Broker, topics int, r *partitionsReport) error {
	v := payload(100)
	var rec stream.Record
	pass := func(each func(name string, p int32) error) (time.Duration, error) {
		start, sampled, visited := time.Now(), r.sampling, 0
		for t := range topics {
			name := partitionsTopic(t)
			for p := range int32(partitionsPerTopic) {
				if err := each(name, p); err != nil {
					return 0, fmt.Errorf("%s/%d: %w", name, p, err)
				}
				if visited++; visited%partitionsSampleEvery == 0 {
					if _, err := r.sample(); err != nil {
						return 0, err
					}
				}
			}
		}
		return time.Since(start) - (r.sampling - sampled), nil
	}
	d, err := pass(func(name string, p int32) error {
		rec = stream.Record{Topic: name, Partition: p, Value: v}
		return b.Publish(ctx, &rec)
	})
	if err != nil {
		return err
	}
	r.PublishNs = d.Nanoseconds()
	var sum checksum
	defer sum.flush()
	d, err = pass(func(name string, p int32) error {
		rd, err := b.NewReader(name, p, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		if err != nil {
			return err
		}
		for {
			rec, err := rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return errors.Join(err, rd.Close())
			}
			sum.add(rec.Value)
			r.Consumed++
		}
		return rd.Close()
	})
	r.ConsumeNs = d.Nanoseconds()
	return err
}

// openFiles counts the entries of /proc/self/fd (Linux only), less the
// one reading it.
func openFiles() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names) - 1, err
}

// mapLimit reads vm.max_map_count (Linux only).
func mapLimit() (int, error) {
	data, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}
