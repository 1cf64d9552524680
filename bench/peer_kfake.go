package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfakePeer is franz-go's fake Kafka cluster (one broker, in the process,
// served over loopback TCP: kfake has no in-process transport) driven by a
// franz-go kgo client, the way Go programs test against Kafka. With disk,
// the cluster persists to a directory (kfake.DataDir, and kfake.SyncWrites
// when durable); without, it holds everything in memory.
type kfakePeer struct{ disk bool }

func (k kfakePeer) name() string {
	if k.disk {
		return "kfake (disk)"
	}
	return "kfake (memory)"
}

func (k kfakePeer) id() string {
	if k.disk {
		return "kfake-disk"
	}
	return "kfake"
}

// kgoInstance drives a Kafka-protocol server through kgo clients with one
// set of settings, whichever server it is (kfake, or our listener), so that
// the two are measured alike.
type kgoInstance struct {
	addrs      []string
	cl         *kgo.Client // producer
	partitions int
	// storedSize reports partition 0's bytes as stored.
	storedSize func(ctx context.Context) (int64, error)
	// stop shuts the server down.
	stop func() error
}

func (k kfakePeer) start(ctx context.Context, dir string, o startOptions) (instance, error) {
	parts := max(o.partitions, 1)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(parts), "bench")}
	switch {
	case k.disk:
		opts = append(opts, kfake.DataDir(dir))
		if o.durable {
			opts = append(opts, kfake.SyncWrites())
		}
	case o.durable:
		return nil, notSupported("memory only, no fsync")
	case o.persistent:
		return nil, notSupported("memory only, nothing to reopen")
	}
	if k.disk {
		// kfake keeps a segment and an index file open per partition.
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(2*parts+256) > lim.Cur {
			return nil, notSupported(fmt.Sprintf("2 open files per partition exceed the %d open-file limit", lim.Cur))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	f := &kgoInstance{addrs: c.ListenAddrs(), partitions: parts, stop: func() error { c.Close(); return nil }}
	f.storedSize = f.describeLogDirs
	if err := f.connect(ctx, o); err != nil {
		c.Close()
		return nil, err
	}
	return f, nil
}

// connect makes the producing client, with the settings every kgo peer
// shares.
func (f *kgoInstance) connect(ctx context.Context, o startOptions) error {
	// Linger 0 (the default is 10 ms): batches still form from what piles up
	// while a produce request is in flight, and single records go at once.
	// No compression (the default is snappy): every record carries the same
	// value, which would compress to nothing and measure the codec, not the
	// log. Nobody else compresses.
	produce := []kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression())}
	if o.codec != nil {
		// The JSON-event workloads: the codec, and batches as ours makes them.
		produce = append(produce, kgo.ProducerBatchCompression(kgoCodec(o.codec.wire)),
			kgo.ProducerLinger(eventLinger), kgo.ProducerBatchMaxBytes(eventBatchBytes))
	}
	var err error
	if f.cl, err = f.client(produce...); err != nil {
		return err
	}
	if err := f.cl.Ping(ctx); err != nil {
		f.cl.Close()
		return err
	}
	return nil
}

// client returns a new kgo client of the cluster.
func (f *kgoInstance) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(f.addrs...),
		kgo.FetchMaxPartitionBytes(8 << 20)}, opts...)...)
}

func (f *kgoInstance) publishBatched(ctx context.Context, n int, v []byte) error {
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	for i := range n {
		f.cl.Produce(ctx, &kgo.Record{Value: v, Partition: int32(i % f.partitions)}, promise)
	}
	if err := f.cl.Flush(ctx); err != nil {
		return err
	}
	if err := firstErr.Load(); err != nil {
		return *err
	}
	return nil
}

func (f *kgoInstance) publishOne(ctx context.Context, v []byte) error {
	return f.cl.ProduceSync(ctx, &kgo.Record{Value: v, Partition: 0}).FirstErr()
}

func (f *kgoInstance) read(ctx context.Context, n int, mode readMode) error {
	if mode == readClone {
		return notSupported("one way to keep a record: the copying row")
	}
	cl, err := f.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bench": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	var sum checksum
	defer sum.flush()
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("after %d records: %w", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := r.Value
			if mode == readCopy {
				v = append([]byte(nil), v...)
			}
			sum.add(v)
			got++
		})
	}
	return nil
}

func (f *kgoInstance) tail(ctx context.Context) (func() error, error) {
	cl, err := f.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bench": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, cl.Close)
	return func() error {
		for {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				return err
			}
			if fs.NumRecords() > 0 {
				return nil
			}
		}
	}, nil
}

func (f *kgoInstance) group(ctx context.Context, members, n int, done func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*kgo.Client, members)
	for m := range clients {
		cl, err := f.client(kgo.ConsumerGroup("group"), kgo.ConsumeTopics("bench"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.Balancers(kgo.RangeBalancer()),
			// Members learn of a rebalance from heartbeats: at the default 3 s
			// interval, joining alone would take longer than consuming.
			kgo.HeartbeatInterval(100*time.Millisecond))
		if err != nil {
			return err
		}
		clients[m] = cl
		defer cl.Close()
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, members)
	for m, cl := range clients {
		wg.Go(func() {
			var sum checksum
			defer sum.flush()
			for total.Load() < int64(n) {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					return
				}
				if err := fs.Err0(); err != nil {
					errs[m] = err
					cancel()
					return
				}
				fs.EachRecord(func(r *kgo.Record) { sum.add(r.Value) })
				got := int64(fs.NumRecords())
				if t := total.Add(got); t >= int64(n) && t-got < int64(n) {
					done()
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if got := total.Load(); got < int64(n) {
		return fmt.Errorf("group read %d of %d records", got, n)
	}
	return nil
}

// newProducer is a kgo client of its own producing asynchronously with a
// promise per record, lingering eventLinger (ProducerLinger), with kgo's
// default batch size (ProducerBatchMaxBytes, 1 MB) and partitioner (by
// the key's murmur2 hash, as Kafka's; keyless records stickily), without
// compression as in the other rows.
func (f *kgoInstance) newProducer(ctx context.Context, _ bool) (asyncProducer, error) {
	cl, err := f.client(kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(eventLinger),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	kp := &kgoProducer{cl: cl}
	kp.promise = func(_ *kgo.Record, err error) {
		if err != nil {
			kp.firstErr.CompareAndSwap(nil, &err)
		}
		kp.acked.Add(1)
	}
	return kp, nil
}

// kgoProducer keeps a kgo.Record per record of the round, reused round
// after round (kgo allows it once the promise has run), as ours does.
type kgoProducer struct {
	cl       *kgo.Client
	recs     []kgo.Record
	promise  func(*kgo.Record, error)
	acked    atomic.Int64
	firstErr atomic.Pointer[error]
}

func (kp *kgoProducer) prepare(n int) {
	if len(kp.recs) < n {
		kp.recs = make([]kgo.Record, n)
	}
}

func (kp *kgoProducer) publish(ctx context.Context, i int, k, v []byte) {
	r := &kp.recs[i]
	*r = kgo.Record{Key: k, Value: v}
	kp.cl.Produce(ctx, r, kp.promise)
}

func (kp *kgoProducer) flush(ctx context.Context) (int64, error) {
	err := kp.cl.Flush(ctx)
	if first := kp.firstErr.Swap(nil); first != nil && err == nil {
		err = *first
	}
	return kp.acked.Swap(0), err
}

func (kp *kgoProducer) close() error { kp.cl.Close(); return nil }

func (f *kgoInstance) publishParallel(context.Context, int, int, int, []byte) error {
	return notSupported(parallelNotSupported)
}

func (f *kgoInstance) readParallel(context.Context, int, int) error {
	return notSupported(parallelNotSupported)
}

func (f *kgoInstance) records(ctx context.Context) (int64, error) {
	adm := kadm.NewClient(f.cl)
	starts, err := adm.ListStartOffsets(ctx, "bench")
	if err != nil {
		return 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, "bench")
	if err != nil {
		return 0, err
	}
	s, _ := starts.Lookup("bench", 0)
	e, _ := ends.Lookup("bench", 0)
	if err := errors.Join(s.Err, e.Err); err != nil {
		return 0, err
	}
	return e.Offset - s.Offset, nil
}

// kgoCodec is kgo's codec of c, at its default level.
func kgoCodec(c batch.Codec) kgo.CompressionCodec {
	switch c {
	case batch.Gzip:
		return kgo.GzipCompression()
	case batch.Snappy:
		return kgo.SnappyCompression()
	case batch.LZ4:
		return kgo.Lz4Compression()
	case batch.Zstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func (f *kgoInstance) prepare([][]byte) {}

// publishEvents produces the events to partition 0 and flushes: kgo has
// one batching path.
func (f *kgoInstance) publishEvents(ctx context.Context, events [][]byte, viaPublish bool) error {
	if viaPublish {
		return notSupported("one batching path: the row above")
	}
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	for _, v := range events {
		f.cl.Produce(ctx, &kgo.Record{Value: v, Partition: 0}, promise)
	}
	if err := f.cl.Flush(ctx); err != nil {
		return err
	}
	if err := firstErr.Load(); err != nil {
		return *err
	}
	return nil
}

// stored is partition 0's size as the server stores it, and its records.
func (f *kgoInstance) stored(ctx context.Context) (int64, int64, error) {
	size, err := f.storedSize(ctx)
	if err != nil {
		return 0, 0, err
	}
	n, err := f.records(ctx)
	return size, n, err
}

// describeLogDirs is the size kfake gives partition 0 in DescribeLogDirs:
// the bytes of its batches as produced, in memory or on disk alike.
func (f *kgoInstance) describeLogDirs(ctx context.Context) (int64, error) {
	dirs, err := kadm.NewClient(f.cl).DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return 0, err
	}
	var size int64
	found := false
	for _, ds := range dirs {
		if p, ok := ds.LookupPartition("bench", 0); ok {
			size, found = size+p.Size, true
		}
	}
	if !found {
		return 0, errors.New("kfake: DescribeLogDirs has no bench-0")
	}
	return size, nil
}

func (f *kgoInstance) close() error {
	f.cl.Close()
	return f.stop()
}
