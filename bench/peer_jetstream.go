package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetstreamPeer is NATS JetStream embedded in the process: a nats-server
// with JetStream and file storage, no listener, reached through an
// in-process connection (a net.Pipe). JetStream has no partitions: a
// partition here is a stream of its own ("bench-P" on subject "bench.P"),
// the unit of ordering and storage that a Kafka partition is. Batches are
// PublishAsync with the client's default window (a larger one made no
// difference); reads are ordered (AckNone) pull consumers with a 10,000
// message window; a group member reads its range of the streams.
type jetstreamPeer struct{}

func (jetstreamPeer) name() string { return "NATS JetStream" }
func (jetstreamPeer) id() string   { return "jetstream" }

type jsInstance struct {
	s        *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects []string
	asyncErr atomic.Pointer[error]
}

func (jetstreamPeer) start(ctx context.Context, dir string, o startOptions) (instance, error) {
	if o.codec != nil {
		// Its file store can compress blocks (S2), but not with Kafka's
		// codecs, batch by batch: the JSON rows compare those.
		return nil, notSupported("no Kafka batch codecs")
	}
	s, err := server.NewServer(&server.Options{
		JetStream:  true,
		StoreDir:   dir,
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
		SyncAlways: o.durable, // otherwise the default: fsync every 2 minutes
		ServerName: "bench",
	})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(time.Minute) {
		s.Shutdown()
		return nil, errors.New("nats-server not ready")
	}
	j := &jsInstance{s: s}
	j.nc, err = nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		j.close()
		return nil, err
	}
	j.js, err = jetstream.New(j.nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
		j.asyncErr.CompareAndSwap(nil, &err)
	}))
	if err != nil {
		j.close()
		return nil, err
	}
	parts := max(o.partitions, 1)
	for p := range parts {
		j.subjects = append(j.subjects, fmt.Sprintf("bench.%d", p))
	}
	// A reopened directory has its streams back already: one request says so.
	ai, err := j.js.AccountInfo(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		j.close()
		return nil, err
	}
	if ai == nil || ai.Streams < parts {
		for p := range parts {
			_, err := j.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
				Name: fmt.Sprintf("bench-%d", p), Subjects: []string{j.subjects[p]}, Storage: jetstream.FileStorage})
			if err != nil {
				j.close()
				return nil, err
			}
		}
	}
	return j, nil
}

func (j *jsInstance) publishBatched(ctx context.Context, n int, v []byte) error {
	for i := range n {
		if _, err := j.js.PublishAsync(j.subjects[i%len(j.subjects)], v); err != nil {
			return err
		}
	}
	select {
	case <-j.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := j.asyncErr.Load(); err != nil {
		return *err
	}
	return nil
}

func (j *jsInstance) publishOne(ctx context.Context, v []byte) error {
	_, err := j.js.Publish(ctx, j.subjects[0], v)
	return err
}

// readStream reads n messages of stream p from the start with an ordered
// consumer, calling fn with each payload.
func (j *jsInstance) readStream(ctx context.Context, p, n int, fn func([]byte)) error {
	c, err := j.js.OrderedConsumer(ctx, fmt.Sprintf("bench-%d", p), jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	// A 10,000-message pull window (the default is 500): ~25% faster here.
	it, err := c.Messages(jetstream.PullMaxMessages(10000))
	if err != nil {
		return err
	}
	defer it.Stop()
	for got := 0; got < n; got++ {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("after %d messages: %w", got, err)
		}
		fn(m.Data())
	}
	return nil
}

func (j *jsInstance) read(ctx context.Context, n int, mode readMode) error {
	if mode == readClone {
		return notSupported("one way to keep a record: the copying row")
	}
	var sum checksum
	defer sum.flush()
	return j.readStream(ctx, 0, n, func(v []byte) {
		if mode == readCopy {
			v = append([]byte(nil), v...)
		}
		sum.add(v)
	})
}

func (j *jsInstance) tail(ctx context.Context) (func() error, error) {
	c, err := j.js.OrderedConsumer(ctx, "bench-0", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, it.Stop)
	return func() error {
		_, err := it.Next()
		return err
	}, nil
}

func (j *jsInstance) group(ctx context.Context, members, n int, done func()) error {
	// How many messages each stream holds, so a member knows when it is done
	// with one (untimed requests would do as well; these are few).
	counts := make([]int, len(j.subjects))
	for p := range counts {
		st, err := j.js.Stream(ctx, fmt.Sprintf("bench-%d", p))
		if err != nil {
			return err
		}
		counts[p] = int(st.CachedInfo().State.Msgs)
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, members)
	per := (len(counts) + members - 1) / members
	for m := range members {
		wg.Go(func() {
			var sum checksum
			defer sum.flush()
			for p := m * per; p < min((m+1)*per, len(counts)); p++ {
				if err := j.readStream(ctx, p, counts[p], sum.add); err != nil {
					errs[m] = err
					return
				}
				if t := total.Add(int64(counts[p])); t >= int64(n) && t-int64(counts[p]) < int64(n) {
					done()
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if got := total.Load(); got < int64(n) {
		return fmt.Errorf("group read %d of %d messages", got, n)
	}
	return nil
}

// newProducer: PublishAsync is JetStream's batching path, and the publish
// row measures it (~90k msg/s on the 2-core VM): the producer row's 4M
// messages a run would take it minutes, and 8 publishers stall on its
// 4,000 outstanding messages ("stalled with too many outstanding async
// published messages" after the default 200 ms stall wait).
func (j *jsInstance) newProducer(context.Context, bool) (asyncProducer, error) {
	return nil, notSupported("PublishAsync, its batching path, is the publish row: minutes for this row's 4M messages")
}

func (j *jsInstance) publishParallel(context.Context, int, int, int, []byte) error {
	return notSupported(parallelNotSupported)
}

func (j *jsInstance) readParallel(context.Context, int, int) error {
	return notSupported(parallelNotSupported)
}

func (j *jsInstance) records(ctx context.Context) (int64, error) {
	st, err := j.js.Stream(ctx, "bench-0")
	if err != nil {
		return 0, err
	}
	return int64(st.CachedInfo().State.Msgs), nil
}

func (j *jsInstance) close() error {
	if j.nc != nil {
		j.nc.Close()
	}
	j.s.Shutdown()
	j.s.WaitForShutdown()
	return nil
}
