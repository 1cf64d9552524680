// Command router runs Watermill's Router over the embedded broker: a
// billing handler consumes orders in a consumer group, with Watermill's
// Retry middleware for failures that pass and its PoisonQueue middleware
// for messages that keep failing, which end up on a poison topic that a
// second handler reads.
//
//	go run ./examples/router                   # in a temporary directory
//	go run ./examples/router -dir data/router  # in a directory of yours (a fresh one)
//
// Every order carries its customer in its metadata, which the publisher
// uses as the partition key: one customer's orders are on one partition,
// in order, so the output is the same on every run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/embedstream/stream"
	embedwatermill "github.com/embedstream/stream/watermill"
)

func main() {
	dir := flag.String("dir", "", "data directory (default: a temporary one, removed at the end)")
	flag.Parse()
	if err := runIn(*dir); err != nil {
		log.Fatal(err)
	}
}

// runIn runs the example in dir, or in a temporary directory if dir is
// empty.
func runIn(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "embedstream-router-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return run(ctx, dir, os.Stdout)
}

const (
	ordersTopic = "orders"
	poisonTopic = "orders_poison"
)

// orders to publish: the flaky one fails once, the broken one always.
var orders = []string{"order-1", "order-2 flaky", "order-3", "order-4 broken"}

// run opens a broker in dir and runs the router until every order is
// billed or poisoned, printing what happens to out.
func run(ctx context.Context, dir string, out io.Writer) error {
	b, err := stream.Open(dir, nil)
	if err != nil {
		return err
	}
	client := b.Client()
	defer client.Close()

	logger := watermill.NopLogger{} // watermill.NewStdLogger(false, false) to see the router at work
	topics := &stream.TopicConfig{Partitions: 3}
	pub, err := embedwatermill.NewPublisher(client, embedwatermill.PublisherConfig{
		PartitionKey: embedwatermill.KeyFromMetadata("customer"),
		TopicConfig:  topics,
	}, logger)
	if err != nil {
		return err
	}
	defer pub.Close()
	sub, err := embedwatermill.NewSubscriber(client, embedwatermill.SubscriberConfig{
		ConsumerGroup: "billing",
		TopicConfig:   topics,
	}, logger)
	if err != nil {
		return err
	}
	defer sub.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	// The first middleware is the outermost: a message whose handler still
	// fails after the retries goes to the poison topic, and is Acked.
	poison, err := middleware.PoisonQueue(pub, poisonTopic)
	if err != nil {
		return err
	}
	router.AddMiddleware(
		poison,
		middleware.Retry{MaxRetries: 2, InitialInterval: 10 * time.Millisecond, Logger: logger}.Middleware,
	)

	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		billed   int
		poisoned int
	)
	done := make(chan struct{})
	finished := func() { // with mu held
		if billed+poisoned == len(orders) {
			close(done)
		}
	}
	router.AddNoPublisherHandler("bill", ordersTopic, sub, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		order := string(msg.Payload)
		attempts[order]++
		switch {
		case order == "order-4 broken":
			fmt.Fprintf(out, "%s: attempt %d failed\n", order, attempts[order])
			return errors.New("card declined")
		case order == "order-2 flaky" && attempts[order] == 1:
			fmt.Fprintf(out, "%s: attempt 1 failed, retrying\n", order)
			return errors.New("payment service timed out")
		}
		o, _ := embedwatermill.OriginFromContext(msg.Context())
		fmt.Fprintf(out, "billed %s (customer %s, partition %d, offset %d)\n",
			order, msg.Metadata.Get("customer"), o.Partition, o.Offset)
		billed++
		finished()
		return nil
	})
	router.AddNoPublisherHandler("poison-report", poisonTopic, sub, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "poison queue: %s from handler %s: %s\n", msg.Payload,
			msg.Metadata.Get(middleware.PoisonedHandlerKey), msg.Metadata.Get(middleware.ReasonForPoisonedKey))
		poisoned++
		finished()
		return nil
	})

	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-runErr:
		return err
	}
	for _, o := range orders {
		msg := message.NewMessage(watermill.NewUUID(), []byte(o))
		msg.Metadata.Set("customer", "alice")
		if err := pub.Publish(ordersTopic, msg); err != nil {
			return err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := router.Close(); err != nil {
		return err
	}
	return <-runErr
}
