package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/embedstream/stream"
)

// Topics the processor reads and writes.
const (
	OrdersTopic   = "orders"
	InvoicesTopic = "invoices"
	RejectedTopic = "rejected"
)

// SourceHeader names the header that says which order an invoice or a
// rejection came from ("orders/2@17": topic, partition, offset), so that
// downstream consumers can drop the duplicates at-least-once delivery may
// bring.
const SourceHeader = "source"

// ErrPublish wraps the error of a failed publish: nothing was committed.
var ErrPublish = errors.New("publish failed")

// Source is the processor's view of a consumer group member. In production
// it is a *stream.Consumer; in tests, maybe a streamtest.FaultyConsumer
// wrapping one.
type Source interface {
	Poll(ctx context.Context) ([]*stream.Record, error)
	Commit(ctx context.Context) error
}

// Sink is where the processor publishes. In production it is the
// *stream.Broker; in tests, maybe a streamtest.FaultyPublisher wrapping it.
type Sink interface {
	Publish(ctx context.Context, recs ...*stream.Record) error
}

// Processor turns orders ("customer:amount in cents", keyed by customer)
// into invoices with 20% VAT added, and orders it cannot read into
// rejections. It is at-least-once: it commits an order only after its
// invoice is published, so a failure or a crash in between brings the
// order again (with a duplicate invoice, which SourceHeader identifies).
//
// Use a Processor from one goroutine.
type Processor struct {
	In  Source
	Out Sink

	// pending holds the output of a batch whose publish failed. Its
	// orders were polled, so the consumer will not return them again
	// (not before a restart or a rebalance): the next Step retries the
	// publish instead of polling.
	pending []*stream.Record
}

// Step handles one batch: it polls (or takes the batch whose publish
// failed last time), publishes an invoice or a rejection for each order in
// one Publish call, and commits. It returns how many records it published.
// If publishing fails it returns an error wrapping ErrPublish, commits
// nothing, and keeps the batch for the next Step.
func (p *Processor) Step(ctx context.Context) (int, error) {
	if p.pending == nil {
		orders, err := p.In.Poll(ctx)
		if err != nil {
			return 0, err
		}
		out := make([]*stream.Record, 0, len(orders))
		for _, o := range orders {
			out = append(out, handle(o))
		}
		p.pending = out
	}
	out := p.pending
	if err := p.Out.Publish(ctx, out...); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrPublish, err)
	}
	p.pending = nil
	// Commit covers everything polled so far: a commit that fails here is
	// made good by the next one.
	if err := p.In.Commit(ctx); err != nil {
		return len(out), fmt.Errorf("commit: %w", err)
	}
	return len(out), nil
}

// Run calls Step until ctx ends or the consumer closes. A failed publish is
// retried by the next Step; a failed commit is made good by the next
// commit, or, if the group moved the partitions meanwhile, their new owner
// handles the orders again. Other errors end Run.
func (p *Processor) Run(ctx context.Context) error {
	for {
		_, err := p.Step(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil, errors.Is(err, stream.ErrClosed):
			return nil
		case retryable(err):
			// The uncommitted orders come again.
		default:
			return err
		}
	}
}

func retryable(err error) bool {
	return errors.Is(err, ErrPublish) || errors.Is(err, stream.ErrRebalanceInProgress) || errors.Is(err, stream.ErrStaleGeneration)
}

// handle makes the invoice, or the rejection, for one order. It copies
// what it keeps: the order aliases the log only until the next Poll.
func handle(o *stream.Record) *stream.Record {
	source := []stream.Header{{Key: SourceHeader, Value: fmt.Appendf(nil, "%s/%d@%d", o.Topic, o.Partition, o.Offset)}}
	customer, cents, err := parseOrder(string(o.Value))
	if err != nil {
		return &stream.Record{Topic: RejectedTopic, Key: append([]byte(nil), o.Key...),
			Value: []byte(err.Error()), Headers: source}
	}
	total := cents * 120 / 100
	return &stream.Record{Topic: InvoicesTopic, Key: []byte(customer),
		Value: fmt.Appendf(nil, "%s owes %d.%02d", customer, total/100, total%100), Headers: source}
}

func parseOrder(v string) (customer string, cents int64, err error) {
	customer, amount, ok := strings.Cut(v, ":")
	if !ok || customer == "" {
		return "", 0, fmt.Errorf("bad order %q: want customer:cents", v)
	}
	cents, err = strconv.ParseInt(amount, 10, 64)
	if err != nil || cents <= 0 {
		return "", 0, fmt.Errorf("bad order %q: amount must be a positive number of cents", v)
	}
	return customer, cents, nil
}

// SourceOf returns the header SourceHeader of r, or "".
func SourceOf(r *stream.Record) string {
	for _, h := range r.Headers {
		if h.Key == SourceHeader {
			return string(h.Value)
		}
	}
	return ""
}
