package main

import (
	"context"
	"errors"
	"math"
	"net"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener"
)

// listenerPeer is ours reached the way kfake is: over loopback TCP through
// our Kafka listener, driven by the same kgo clients with the same settings
// as the kfake peers, so the two columns compare the servers alone.
type listenerPeer struct{}

func (listenerPeer) name() string { return "embedstream (Kafka listener)" }
func (listenerPeer) id() string   { return "listener" }

func (listenerPeer) start(ctx context.Context, dir string, o startOptions) (instance, error) {
	if o.bigLog {
		// Only the recovery workload asks for it.
		return nil, notSupported("its recovery is ours: the same stream.Open before the listener starts")
	}
	opts := &stream.Options{Sync: stream.SyncNever}
	if o.durable {
		opts.Sync = stream.SyncAlways
	}
	b, err := stream.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	// The topic keeps the producer's codec (CodecDefault), as kfake does.
	cfg := stream.TopicConfig{Partitions: max(o.partitions, 1)}
	if o.bigLog {
		cfg.SegmentBytes = math.MaxInt32
	}
	if err := b.CreateTopic("bench", cfg); err != nil && !errors.Is(err, stream.ErrTopicExists) {
		b.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		return nil, err
	}
	srv := listener.New(b, &listener.Options{AdvertisedAddr: ln.Addr().String()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop := func() error {
		err := srv.Shutdown(context.Background())
		if serr := <-served; !errors.Is(serr, listener.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return errors.Join(err, b.Close())
	}
	f := &kgoInstance{addrs: []string{ln.Addr().String()}, partitions: cfg.Partitions, stop: stop}
	f.storedSize = func(context.Context) (int64, error) {
		info, err := b.DescribeTopic("bench")
		if err != nil {
			return 0, err
		}
		return info.Partitions[0].Bytes, nil
	}
	if err := f.connect(ctx, o); err != nil {
		stop()
		return nil, err
	}
	return f, nil
}
