package main

import (
	"context"
	"errors"
	"fmt"
)

// A peer is one engine under test. Every workload starts its own instance in
// a fresh directory, drives it through the instance interface and closes it,
// so the timing code lives in workloads.go, once, for all peers.
type peer interface {
	// name is the column heading in the table and the key in the JSON.
	name() string
	// id is the short name for the -peers flag and child processes.
	id() string
	// start opens an instance on dir (an empty directory, or one a previous
	// instance or a killed child process left) with a topic "bench" of
	// o.partitions partitions, created if missing. An error wrapping
	// errNotSupported means the peer cannot do what o asks.
	start(ctx context.Context, dir string, o startOptions) (instance, error)
}

// startOptions say what a workload needs from an instance.
type startOptions struct {
	// partitions of the topic (0 means 1).
	partitions int
	// durable asks for an fsync before every acknowledgement (SyncAlways,
	// JetStream's sync_always, kfake's SyncWrites). Otherwise nothing is
	// fsynced while the workload runs (SyncNever and the like).
	durable bool
	// persistent asks that the data outlive the process: the recovery and
	// scale workloads reopen the directory.
	persistent bool
	// bigLog asks the instance to keep a whole recovery log (1 GiB) in one
	// file where the engine has a segment size, so that recovery has the
	// worst case: everything in the active segment.
	bigLog bool
	// unitTest asks for the options a unit test gets: ours streamtest's
	// (see unitTestOptions). The peers run as in every row.
	unitTest bool
	// engineDefaults asks for the engine's defaults: ours Open(dir, nil).
	// The peers run as in every row.
	engineDefaults bool
	// codec, when set, asks for the JSON-event workloads with this codec:
	// ours stores the topic with it (TopicConfig.Compression) and its
	// Producer compresses with it, kgo's producer compresses with it. A peer
	// that cannot compress with it says errNotSupported; without a codec,
	// the codec alone has nothing to do.
	codec *codecSpec
}

// instance is a started engine. Methods other than publishOne are called from
// one goroutine at a time.
type instance interface {
	// publishBatched publishes n records with value v through the peer's
	// batching path, spread round-robin over the topic's partitions, and
	// returns once all of them are acknowledged.
	publishBatched(ctx context.Context, n int, v []byte) error
	// publishOne publishes one record with value v to partition 0 and waits
	// for its acknowledgement. It must be safe for concurrent use.
	publishOne(ctx context.Context, v []byte) error
	// read reads the first n records of partition 0 from the start, each
	// as mode says. A peer returns errNotSupported for readClone.
	read(ctx context.Context, n int, mode readMode) error
	// tail returns a function that blocks until the next record of partition
	// 0 arrives, as a consumer waits for new data; partition 0 is empty when
	// tail is called. The function ends with ctx.
	tail(ctx context.Context) (next func() error, err error)
	// group consumes n records from all partitions with members consumers of
	// one consumer group, from the start, each in its own goroutine, and
	// calls done as soon as the n-th record has been consumed (leaving the
	// group afterwards is not timed).
	group(ctx context.Context, members, n int, done func()) error
	// newProducer returns the peer's batching producer with a callback (or
	// an acknowledgement) per record, the way applications publish, for the
	// producer workload: lingering eventLinger, with the peer's default
	// batch size, to partition 0, or with keyed to partitions chosen by
	// the key's hash (the instance was started with producerPartitions).
	newProducer(ctx context.Context, keyed bool) (asyncProducer, error)
	// publishParallel publishes n records of value v from g goroutines,
	// goroutine i to partition i (n/g each), perCall records per call, and
	// returns once all are acknowledged (the cores workload).
	publishParallel(ctx context.Context, n, g, perCall int, v []byte) error
	// readParallel reads n records from g goroutines, goroutine i the
	// first n/g records of partition i, in place.
	readParallel(ctx context.Context, n, g int) error
	// records returns how many records partition 0 holds: the workloads
	// check with it that what was acknowledged is there.
	records(ctx context.Context) (int64, error)
	// close shuts the instance down cleanly.
	close() error
}

// readMode is what read does with each record.
type readMode int

const (
	// readInPlace reads the value where the peer hands it over: in place
	// in the mapped segment for ours and the raw file.
	readInPlace readMode = iota
	// readCopy keeps each value in memory of its own, as a consumer that
	// keeps its records must: ours copies the record with a stream.Arena
	// (see keepCopy), the others copy the value they got.
	readCopy
	// readClone keeps each record with Record.Clone (ours only).
	readClone
)

// asyncProducer is a peer's batching producer. publish and flush are safe
// for concurrent use.
type asyncProducer interface {
	// prepare makes room for rounds of n records, untimed.
	prepare(n int)
	// publish hands record i of the round (key k, nil when keyless, and
	// value v) to the producer without waiting; i is below the round's
	// record count and each i is published once per round, so a peer may
	// keep a record of its own per i, reused round after round.
	publish(ctx context.Context, i int, k, v []byte)
	// flush returns once every record published so far is acknowledged
	// and its callback has run, with the first error any of them had,
	// and how many callbacks ran since the last flush.
	flush(ctx context.Context) (acked int64, err error)
	// close releases the producer.
	close() error
}

// producerPartitions are the partitions of the keyed producer rows' topic.
const producerPartitions = 8

// eventInstance is an instance that runs the JSON-event workloads, started
// with startOptions.codec: distinct values, all to partition 0. Its read
// (of the instance interface) reads them back.
type eventInstance interface {
	instance
	// prepare is set-up before events are published, untimed: the codec
	// alone encodes its batches here, so that only the codec is timed. The
	// others have nothing to do.
	prepare(events [][]byte)
	// publishEvents publishes events in order to partition 0 and returns
	// once all are acknowledged: through the peer's batching path, or with
	// viaPublish through ours' other one, Broker.Publish of a batch of
	// records per call to a topic with the codec. A peer with one batching
	// path returns errNotSupported for viaPublish.
	publishEvents(ctx context.Context, events [][]byte, viaPublish bool) error
	// stored returns the bytes partition 0 takes to store its records (the
	// batches or frames, not preallocated space) and how many records that
	// is.
	stored(ctx context.Context) (bytes, records int64, err error)
}

// errNotSupported marks a workload a peer cannot run; the table prints n/a
// with the reason.
var errNotSupported = errors.New("not supported")

// notSupported returns an error that is errNotSupported, with a short reason.
func notSupported(reason string) error { return notSupportedError{reason} }

type notSupportedError struct{ reason string }

func (e notSupportedError) Error() string        { return "not supported: " + e.reason }
func (e notSupportedError) Is(target error) bool { return target == errNotSupported }

// reason returns the reason of a notSupported error (however wrapped), or
// the error's text.
func reason(err error) string {
	if ns, ok := errors.AsType[notSupportedError](err); ok {
		return ns.reason
	}
	return err.Error()
}

// allPeers returns the peers in table order: ours first, the codec alone
// beside it (in the JSON-event rows only), the physical limit last.
func allPeers() []peer {
	return []peer{
		embedPeer{},
		codecPeer{},
		jetstreamPeer{},
		kfakePeer{disk: false},
		kfakePeer{disk: true},
		listenerPeer{},
		rawPeer{},
	}
}

// peerByID finds a peer by its id.
func peerByID(id string) (peer, error) {
	for _, p := range allPeers() {
		if p.id() == id {
			return p, nil
		}
	}
	return nil, fmt.Errorf("unknown peer %q", id)
}
