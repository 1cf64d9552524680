package stream

import (
	"expvar"
	"slices"
	"time"

	"github.com/embedstream/stream/index"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/segment"
)

// Stats are cumulative counters since Open, and current gauges.
type Stats struct {
	RecordsIn  int64 // records appended
	BytesIn    int64 // batch bytes appended
	BatchesIn  int64 // batches appended
	RecordsOut int64 // records returned by Readers and Consumers, and in the batches ReadBatches returned (control batches' markers included)
	BytesOut   int64 // bytes of the batches those reads covered, each time they read them (a batch a Poll's MaxPollRecords cut is covered again by the next)
	Fsyncs     int64 // fsyncs of segment files
	// FsyncLatency is how long those fsyncs took (the active segment's,
	// and a sealed segment's when it rolls): a slow disk shows here before
	// it shows in publish latency. Buckets from 100µs to 2.5s. Its Count
	// is Fsyncs, but for fsyncs under way when Stats read them.
	FsyncLatency    LatencyHistogram
	MetaSyncs       int64 // fdatasyncs of meta.db: of its creation, and of its commits (bbolt's two per commit, one after the other); none under SyncNever
	Truncations     int64 // damaged log tails cut by recovery
	TruncatedBytes  int64 // bytes those cuts removed
	IndexRebuilds   int64 // indexes rebuilt from their logs
	SegmentsRolled  int64 // segments sealed because full or old
	SegmentsDeleted int64 // segments deleted by retention
	CorruptBatches  int64 // damaged batches (or lost offset ranges) met by recovery or reads and passed over
	LogStartResets  int64 // damaged log-start files (DeleteRecords' mark) ignored: the log starts at its first segment
	MetaRollbacks   int64 // meta.db opened at its previous transaction, its newest meta page damaged: the last commit of offsets may be lost
	TxnCommits      int64 // transactions committed (in-process and remote)
	TxnAborts       int64 // transactions aborted: by their producer, at their timeout, by fencing or Close, and at Open one per partition a crash left one open in
	CleanerRuns     int64 // log cleaning rounds that rewrote segments (compacted topics)
	CleanerBytes    int64 // bytes of segments those rounds read and rewrote
	BytesReclaimed  int64 // bytes those rounds removed: superseded records, expired tombstones, aborted transactions' records
	Rebalances      int64 // consumer group rebalances completed (each a new generation), in every group
	Evictions       int64 // consumer group members removed because their MaxPollInterval (or, static ones departed, SessionTimeout) ran out
	MetaRebuilds    int64 // meta.db found missing (with topic directories) or damaged (set aside; read-only: ignored) and rebuilt from the topic directories: committed offsets and topic configs lost
	Topics          int   // topics now
	Partitions      int   // partitions now
	Segments        int   // segment files now
	OpenMappings    int64 // memory mappings of segment and index files now, in the process
	OpenSegments    int   // segments holding a file descriptor or mappings now (at most Options.MaxOpenSegments, but for those in use)
	SegmentReleases int64 // times an idle segment gave back its descriptor and mappings to another (see Options.MaxOpenSegments)
}

// LatencyHistogram is a distribution of durations in fixed buckets, as
// Prometheus histograms have them: cheap to record (an atomic add per
// observation, no lock), and summable across processes.
type LatencyHistogram struct {
	// Bounds are the buckets' upper bounds, inclusive, ascending; the same
	// for every histogram of one kind (see Stats' fields).
	Bounds []time.Duration
	// Counts are the observations per bucket, not cumulative:
	// len(Bounds)+1 of them, Counts[i] those above Bounds[i-1] and at most
	// Bounds[i], the last those above every bound.
	Counts []int64
	Sum    time.Duration // of every observation
}

// Count is the number of observations: the sum of Counts.
func (h LatencyHistogram) Count() int64 {
	var n int64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	st := &b.stats
	s := Stats{
		RecordsIn: st.RecordsIn.Load(), BytesIn: st.BytesIn.Load(), BatchesIn: st.BatchesIn.Load(),
		RecordsOut: st.RecordsOut.Load(), BytesOut: st.BytesOut.Load(),
		Fsyncs: st.Fsyncs.Load(), Truncations: st.Truncations.Load(), TruncatedBytes: st.TruncatedBytes.Load(),
		IndexRebuilds: st.IndexRebuilds.Load(), SegmentsRolled: st.SegmentsRolled.Load(),
		SegmentsDeleted: st.SegmentsDeleted.Load(), OpenMappings: segment.OpenMappings() + index.OpenMappings(),
		OpenSegments: b.resident.Len(), SegmentReleases: b.resident.Evictions(),
		CorruptBatches: st.CorruptBatches.Load(), LogStartResets: st.LogStartResets.Load(), MetaRebuilds: st.MetaRebuilds.Load(),
		MetaRollbacks: st.MetaRollbacks.Load(), TxnCommits: b.txnCommits.Load(), TxnAborts: b.txnAborts.Load(),
		CleanerRuns: st.CleanerRuns.Load(), CleanerBytes: st.CleanerBytesRead.Load(), BytesReclaimed: st.CleanerBytesReclaimed.Load(),
	}
	counts, sum := st.FsyncLatency.Snapshot()
	s.FsyncLatency = LatencyHistogram{Bounds: slices.Clone(log.FsyncBounds[:]), Counts: counts, Sum: sum}
	if b.meta != nil {
		s.MetaSyncs = b.meta.Syncs()
	}
	if b.groups != nil {
		s.Rebalances, s.Evictions = b.groups.Totals()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	s.Topics = len(b.topics)
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			s.Partitions++
			s.Segments += p.SegmentCount()
		}
	}
	return s
}

// Expvar returns the broker's Stats as an expvar.Var, to publish on
// /debug/vars with expvar.Publish("embedstream", b.Expvar()).
func (b *Broker) Expvar() expvar.Var {
	return expvar.Func(func() any { return b.Stats() })
}
