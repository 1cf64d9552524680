// Command streamserve serves a stream data directory over Kafka's wire
// protocol, so that Kafka tools (kcat, kafka-python, any Kafka client) reach
// its topics, offsets and consumer groups:
//
//	streamserve -dir DATA [-addr 127.0.0.1:9092] [-auto-create] [-sync interval] [-log-level info]
//
// It opens a stream.Broker on DATA, serves it until SIGINT or SIGTERM, then
// shuts the listener down (letting requests in progress finish) and closes
// the Broker. It logs "streamserve: listening" with the bound address once
// clients may connect (with -addr 127.0.0.1:0, the port the system chose).
//
// It is a binary of the listener module rather than a "streamctl serve"
// command because streamctl belongs to the core module, which must not
// depend on the Kafka protocol library the listener is built on.
//
// Flags:
//
//	-dir DIR          the data directory (required); created if missing
//	-addr HOST:PORT   where to listen (default 127.0.0.1:9092: loopback only)
//	-advertise H:P    the address Metadata tells clients (default: the bound one)
//	-auto-create      create unknown topics on Metadata and Produce
//	                  (auto.create.topics.enable)
//	-partitions N     partitions of auto-created topics (default 1)
//	-sync POLICY      never, interval or always (see stream.SyncPolicy)
//	-log-level LEVEL  debug, info, warn or error (default info)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener"
)

// shutdownTimeout bounds the wait for connections to finish their requests
// before they are closed at once.
const shutdownTimeout = 10 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without the exit: 0 after a clean stop, 1 on failure, 2 on
// bad flags.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("streamserve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data directory (required)")
	addr := fs.String("addr", listener.DefaultAddr, "address to listen on")
	advertise := fs.String("advertise", "", "address advertised to clients (default: the bound one)")
	autoCreate := fs.Bool("auto-create", false, "create unknown topics on Metadata and Produce")
	partitions := fs.Int("partitions", 1, "partitions of auto-created topics")
	syncFlag := fs.String("sync", "interval", "fsync policy: never, interval or always")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "streamserve: -log-level: %v\n", err)
		return 2
	}
	policy, err := stream.ParseSyncPolicy(*syncFlag)
	if err != nil {
		fmt.Fprintf(stderr, "streamserve: -sync: %v\n", err)
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "streamserve: usage: streamserve -dir DATA [-addr 127.0.0.1:9092] [flags]")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	b, err := stream.Open(*dir, &stream.Options{
		Sync:             policy,
		AutoCreateTopics: *autoCreate,
		DefaultTopic:     stream.TopicConfig{Partitions: *partitions},
		Logger:           log,
	})
	if err != nil {
		log.Error("streamserve: open", "dir", *dir, "err", err)
		return 1
	}
	code := serve(b, *addr, *advertise, log)
	if err := b.Close(); err != nil {
		log.Error("streamserve: close", "err", err)
		code = 1
	}
	if code == 0 {
		log.Info("streamserve: stopped")
	}
	return code
}

// serve serves b on addr until a signal, then shuts the server down.
func serve(b *stream.Broker, addr, advertise string, log *slog.Logger) int {
	// Listen here rather than in ListenAndServe, to log the bound address
	// (a port of 0 gets one chosen by the system) before serving.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("streamserve: listen", "addr", addr, "err", err)
		return 1
	}
	srv := listener.New(b, &listener.Options{Logger: log, AdvertisedAddr: advertise})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("streamserve: listening", "addr", ln.Addr().String(), "dir", b.Dir())

	select {
	case sig := <-sigs:
		log.Info("streamserve: shutting down", "signal", sig.String())
	case err := <-served:
		log.Error("streamserve: serve", "err", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	code := 0
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("streamserve: shutdown", "err", err)
		code = 1
	}
	if err := <-served; !errors.Is(err, listener.ErrServerClosed) {
		log.Error("streamserve: serve", "err", err)
		code = 1
	}
	return code
}
