package prometheus

import (
	"strconv"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/embedstream/stream"
)

// Namespace is the prefix of every metric name: embedstream_….
const Namespace = "embedstream"

// Options select what a Collector exports. The zero value (or nil) exports
// per-topic series and every group's.
type Options struct {
	// PerPartition exports the log and group series per partition (labels
	// topic and partition, group, topic and partition) rather than summed
	// over each topic's partitions (labels topic; group and topic). Per
	// partition is what a dashboard of a few topics wants; per topic keeps
	// the series count independent of the partition count.
	PerPartition bool
	// Groups, if set, selects the consumer groups exported: only those it
	// returns true for. nil exports every group the broker knows (with
	// members or committed offsets). Return false for all to export none:
	// a broker with many short-lived groups (one per test run, say) should
	// not have a series per group.
	Groups func(group string) bool
}

// Collector exports a Broker's statistics as Prometheus metrics, computed
// at each scrape from Broker.Stats, Broker.DescribeTopic and
// Broker.DescribeGroup: it keeps no state of its own and adds nothing to
// the broker's hot paths. Register it with a prometheus.Registerer (it is
// a checked collector: Describe lists every metric it may export).
//
// Series per scrape (doc/prometheus.md has the table):
//   - broker-wide: 46 (24 counters, 5 gauges, and the fsync latency
//     histogram's 17: 15 buckets, _sum and _count), whatever the broker
//     holds;
//   - per topic: 8 (end and start offset, size, segments, published and
//     fetched records and bytes), or with PerPartition 8 per partition;
//   - per group: 4 (members, generation, rebalances, evictions), plus 2
//     (committed offset, lag) per topic it has committed offsets of, or
//     with PerPartition per committed partition.
//
// So a broker of T topics of P partitions each and G groups, each having
// committed every partition, exports 46 + 8·T + G·(4 + 2·T) series per
// topic, and 46 + 8·T·P + G·(4 + 2·T·P) with PerPartition: the switch is
// what bounds it when topics have many partitions, and Options.Groups when
// groups are many.
//
// Collect after the broker is closed exports the broker-wide counters as
// they were at Close, and nothing per topic or group.
type Collector struct {
	b    *stream.Broker
	opts Options

	counters []counter // broker-wide, from Stats
	gauges   []gauge   // broker-wide, from Stats
	fsync    *prom.Desc

	logEnd, logStart, logSize, logSegments               *prom.Desc
	logInRecords, logInBytes, logOutRecords, logOutBytes *prom.Desc

	groupMembers, groupGeneration, groupRebalances, groupEvictions *prom.Desc
	groupCommitted, groupLag                                       *prom.Desc
}

// counter is a broker-wide counter: its description and its Stats field.
type counter struct {
	desc  *prom.Desc
	value func(*stream.Stats) int64
}

// gauge is a broker-wide gauge.
type gauge struct {
	desc  *prom.Desc
	value func(*stream.Stats) float64
}

// NewCollector returns a Collector of b's statistics; opts may be nil.
func NewCollector(b *stream.Broker, opts *Options) *Collector {
	c := &Collector{b: b}
	if opts != nil {
		c.opts = *opts
	}
	ctr := func(name, help string, value func(*stream.Stats) int64) {
		c.counters = append(c.counters, counter{prom.NewDesc(Namespace+"_"+name, help, nil, nil), value})
	}
	ctr("published_records_total", "Records appended to any partition since the broker opened.", func(s *stream.Stats) int64 { return s.RecordsIn })
	ctr("published_bytes_total", "Bytes of record batches appended.", func(s *stream.Stats) int64 { return s.BytesIn })
	ctr("published_batches_total", "Record batches appended.", func(s *stream.Stats) int64 { return s.BatchesIn })
	ctr("fetched_records_total", "Records returned by Readers and Consumers, and in the batches batch reads (the Kafka listener's fetches) returned.", func(s *stream.Stats) int64 { return s.RecordsOut })
	ctr("fetched_bytes_total", "Bytes of record batches those reads covered, each time they covered them.", func(s *stream.Stats) int64 { return s.BytesOut })
	ctr("fsyncs_total", "fsyncs of segment files.", func(s *stream.Stats) int64 { return s.Fsyncs })
	ctr("meta_syncs_total", "fdatasyncs of meta.db (offsets and topic metadata).", func(s *stream.Stats) int64 { return s.MetaSyncs })
	ctr("recovery_truncations_total", "Damaged log tails cut by recovery.", func(s *stream.Stats) int64 { return s.Truncations })
	ctr("recovery_truncated_bytes_total", "Bytes those cuts removed.", func(s *stream.Stats) int64 { return s.TruncatedBytes })
	ctr("index_rebuilds_total", "Offset and time indexes rebuilt from their logs.", func(s *stream.Stats) int64 { return s.IndexRebuilds })
	ctr("segments_rolled_total", "Segments sealed because full or old.", func(s *stream.Stats) int64 { return s.SegmentsRolled })
	ctr("segments_deleted_total", "Segments deleted by retention.", func(s *stream.Stats) int64 { return s.SegmentsDeleted })
	ctr("corrupt_batches_total", "Damaged batches (or lost offset ranges) met by recovery or reads and passed over.", func(s *stream.Stats) int64 { return s.CorruptBatches })
	ctr("log_start_resets_total", "Damaged log-start files ignored.", func(s *stream.Stats) int64 { return s.LogStartResets })
	ctr("meta_rollbacks_total", "meta.db opened at its previous transaction, its newest meta page damaged.", func(s *stream.Stats) int64 { return s.MetaRollbacks })
	ctr("meta_rebuilds_total", "meta.db found missing or damaged and rebuilt from the topic directories.", func(s *stream.Stats) int64 { return s.MetaRebuilds })
	ctr("transactions_committed_total", "Transactions committed.", func(s *stream.Stats) int64 { return s.TxnCommits })
	ctr("transactions_aborted_total", "Transactions aborted: by their producer, at their timeout, by fencing, Close or recovery.", func(s *stream.Stats) int64 { return s.TxnAborts })
	ctr("cleaner_runs_total", "Log cleaning rounds that rewrote segments (compacted topics).", func(s *stream.Stats) int64 { return s.CleanerRuns })
	ctr("cleaner_read_bytes_total", "Bytes of segments cleaning rounds read and rewrote.", func(s *stream.Stats) int64 { return s.CleanerBytes })
	ctr("cleaner_reclaimed_bytes_total", "Bytes cleaning rounds removed.", func(s *stream.Stats) int64 { return s.BytesReclaimed })
	ctr("segment_releases_total", "Times an idle segment gave back its descriptor and mappings (Options.MaxOpenSegments).", func(s *stream.Stats) int64 { return s.SegmentReleases })
	ctr("rebalances_total", "Consumer group rebalances completed, in every group.", func(s *stream.Stats) int64 { return s.Rebalances })
	ctr("evictions_total", "Consumer group members removed because their poll interval or session ran out, in every group.", func(s *stream.Stats) int64 { return s.Evictions })
	gge := func(name, help string, value func(*stream.Stats) float64) {
		c.gauges = append(c.gauges, gauge{prom.NewDesc(Namespace+"_"+name, help, nil, nil), value})
	}
	gge("topics", "Topics now.", func(s *stream.Stats) float64 { return float64(s.Topics) })
	gge("partitions", "Partitions now.", func(s *stream.Stats) float64 { return float64(s.Partitions) })
	gge("segments", "Segment files now.", func(s *stream.Stats) float64 { return float64(s.Segments) })
	gge("open_segments", "Segments holding a file descriptor or mappings now.", func(s *stream.Stats) float64 { return float64(s.OpenSegments) })
	gge("open_mappings", "Memory mappings of segment and index files now, in the process.", func(s *stream.Stats) float64 { return float64(s.OpenMappings) })
	c.fsync = prom.NewDesc(Namespace+"_fsync_duration_seconds", "Latency of the fsyncs fsyncs_total counts.", nil, nil)

	logLabels, groupLabels := []string{"topic"}, []string{"group", "topic"}
	per := "summed over the topic's partitions"
	if c.opts.PerPartition {
		logLabels, groupLabels = append(logLabels, "partition"), append(groupLabels, "partition")
		per = "per partition"
	}
	desc := func(name, help string, labels []string) *prom.Desc {
		return prom.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	c.logEnd = desc("log_end_offset", "Next offset to be written (the high watermark), "+per+".", logLabels)
	c.logStart = desc("log_start_offset", "First offset still stored, "+per+".", logLabels)
	c.logSize = desc("log_size_bytes", "Bytes of record batches stored, "+per+".", logLabels)
	c.logSegments = desc("log_segments", "Segment files, "+per+".", logLabels)
	c.logInRecords = desc("log_published_records_total", "Records published since the broker opened, "+per+".", logLabels)
	c.logInBytes = desc("log_published_bytes_total", "Bytes of record batches published since the broker opened, "+per+".", logLabels)
	c.logOutRecords = desc("log_fetched_records_total", "Records read since the broker opened, "+per+".", logLabels)
	c.logOutBytes = desc("log_fetched_bytes_total", "Bytes of record batches read since the broker opened, "+per+".", logLabels)

	c.groupMembers = desc("group_members", "Members of the consumer group now.", []string{"group"})
	c.groupGeneration = desc("group_generation", "The consumer group's generation.", []string{"group"})
	c.groupRebalances = desc("group_rebalances_total", "Rebalances the group completed while the broker kept its state.", []string{"group"})
	c.groupEvictions = desc("group_evictions_total", "Members the group evicted (poll interval or session ran out) while the broker kept its state.", []string{"group"})
	c.groupCommitted = desc("group_committed_offset", "The group's committed offset, "+per+" (partitions without a commit left out).", groupLabels)
	c.groupLag = desc("group_lag", "Records between the group's committed offset and the log end, "+per+" (partitions without a commit left out).", groupLabels)
	return c
}

// Describe sends the description of every metric Collect may send.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, m := range c.counters {
		ch <- m.desc
	}
	for _, m := range c.gauges {
		ch <- m.desc
	}
	for _, d := range []*prom.Desc{c.fsync,
		c.logEnd, c.logStart, c.logSize, c.logSegments,
		c.logInRecords, c.logInBytes, c.logOutRecords, c.logOutBytes,
		c.groupMembers, c.groupGeneration, c.groupRebalances, c.groupEvictions,
		c.groupCommitted, c.groupLag} {
		ch <- d
	}
}

// Collect sends the metrics as they are now. Topics and groups deleted
// while it runs are left out, as are those of a closed broker.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	st := c.b.Stats()
	for _, m := range c.counters {
		ch <- prom.MustNewConstMetric(m.desc, prom.CounterValue, float64(m.value(&st)))
	}
	for _, m := range c.gauges {
		ch <- prom.MustNewConstMetric(m.desc, prom.GaugeValue, m.value(&st))
	}
	ch <- fsyncHistogram(c.fsync, st.FsyncLatency)
	for _, name := range c.b.Topics() {
		info, err := c.b.DescribeTopic(name)
		if err != nil {
			continue // deleted meanwhile, or the broker closed
		}
		c.collectTopic(ch, info)
	}
	for _, name := range c.b.Groups() {
		if c.opts.Groups != nil && !c.opts.Groups(name) {
			continue
		}
		info, err := c.b.DescribeGroup(name)
		if err != nil {
			continue // the broker closed meanwhile
		}
		c.collectGroup(ch, info)
	}
}

// fsyncHistogram is h as a Prometheus histogram in seconds: cumulative
// buckets, the last (above every bound) being +Inf, implied by the count.
func fsyncHistogram(d *prom.Desc, h stream.LatencyHistogram) prom.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += uint64(h.Counts[i])
		buckets[b.Seconds()] = cum
	}
	return prom.MustNewConstHistogram(d, uint64(h.Count()), h.Sum.Seconds(), buckets)
}

// logValues are one series' values of the log metrics, a partition's or a
// topic's sum.
type logValues struct {
	end, start, size, segments    float64
	inRecs, inBytes, outRecs, out float64
}

func (v *logValues) add(p stream.PartitionInfo) {
	v.end += float64(p.EndOffset)
	v.start += float64(p.StartOffset)
	v.size += float64(p.Bytes)
	v.segments += float64(p.Segments)
	v.inRecs += float64(p.RecordsIn)
	v.inBytes += float64(p.BytesIn)
	v.outRecs += float64(p.RecordsOut)
	v.out += float64(p.BytesOut)
}

func (c *Collector) sendLog(ch chan<- prom.Metric, v logValues, labels ...string) {
	ch <- prom.MustNewConstMetric(c.logEnd, prom.GaugeValue, v.end, labels...)
	ch <- prom.MustNewConstMetric(c.logStart, prom.GaugeValue, v.start, labels...)
	ch <- prom.MustNewConstMetric(c.logSize, prom.GaugeValue, v.size, labels...)
	ch <- prom.MustNewConstMetric(c.logSegments, prom.GaugeValue, v.segments, labels...)
	ch <- prom.MustNewConstMetric(c.logInRecords, prom.CounterValue, v.inRecs, labels...)
	ch <- prom.MustNewConstMetric(c.logInBytes, prom.CounterValue, v.inBytes, labels...)
	ch <- prom.MustNewConstMetric(c.logOutRecords, prom.CounterValue, v.outRecs, labels...)
	ch <- prom.MustNewConstMetric(c.logOutBytes, prom.CounterValue, v.out, labels...)
}

func (c *Collector) collectTopic(ch chan<- prom.Metric, info stream.TopicInfo) {
	if !c.opts.PerPartition {
		var sum logValues
		for _, p := range info.Partitions {
			sum.add(p)
		}
		c.sendLog(ch, sum, info.Name)
		return
	}
	for _, p := range info.Partitions {
		var v logValues
		v.add(p)
		c.sendLog(ch, v, info.Name, strconv.Itoa(int(p.Partition)))
	}
}

func (c *Collector) collectGroup(ch chan<- prom.Metric, info stream.GroupInfo) {
	g := info.Group
	ch <- prom.MustNewConstMetric(c.groupMembers, prom.GaugeValue, float64(len(info.Members)), g)
	ch <- prom.MustNewConstMetric(c.groupGeneration, prom.GaugeValue, float64(info.Generation), g)
	ch <- prom.MustNewConstMetric(c.groupRebalances, prom.CounterValue, float64(info.Rebalances), g)
	ch <- prom.MustNewConstMetric(c.groupEvictions, prom.CounterValue, float64(info.Evictions), g)
	if c.opts.PerPartition {
		for _, p := range info.Partitions {
			if p.Committed < 0 {
				continue
			}
			part := strconv.Itoa(int(p.Partition))
			ch <- prom.MustNewConstMetric(c.groupCommitted, prom.GaugeValue, float64(p.Committed), g, p.Topic, part)
			ch <- prom.MustNewConstMetric(c.groupLag, prom.GaugeValue, float64(p.Lag), g, p.Topic, part)
		}
		return
	}
	// Partitions come sorted by topic: one sum per run of a topic.
	for i := 0; i < len(info.Partitions); {
		topic := info.Partitions[i].Topic
		var committed, lag float64
		seen := false
		for ; i < len(info.Partitions) && info.Partitions[i].Topic == topic; i++ {
			if p := info.Partitions[i]; p.Committed >= 0 {
				committed, lag, seen = committed+float64(p.Committed), lag+float64(p.Lag), true
			}
		}
		if seen {
			ch <- prom.MustNewConstMetric(c.groupCommitted, prom.GaugeValue, committed, g, topic)
			ch <- prom.MustNewConstMetric(c.groupLag, prom.GaugeValue, lag, g, topic)
		}
	}
}
