package embedwatermill

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/embedstream/stream"
)

// PublisherConfig configures a Publisher. The zero value publishes
// records without keys to existing topics.
type PublisherConfig struct {
	// PartitionKey gives each message its record key, which picks the
	// partition (KeyFromMetadata: from a metadata field). Nil: no key, and
	// the client's partitioner spreads the messages (no order between
	// partitions).
	PartitionKey PartitionKeyFunc
	// TopicConfig, if set, is the config of topics Publish creates when
	// they do not exist (Watermill programs rarely create topics
	// themselves). Nil: publishing to a missing topic fails with
	// stream.ErrTopicNotFound (unless the broker auto-creates topics).
	TopicConfig *stream.TopicConfig
}

// Publisher is Watermill's message.Publisher over a stream.Client. It is
// safe for concurrent use. It does not own the client: close the client
// after the Publisher.
type Publisher struct {
	client stream.Client
	cfg    PublisherConfig
	logger watermill.LoggerAdapter

	ctx    context.Context // ends at Close: Publish calls still running give up
	cancel context.CancelFunc
	mu     sync.RWMutex // Publish holds it shared, Close exclusively
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher that publishes through client. logger
// may be nil (no logging).
func NewPublisher(client stream.Client, cfg PublisherConfig, logger watermill.LoggerAdapter) (*Publisher, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", stream.ErrInvalidConfig)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Publisher{client: client, cfg: cfg, logger: logger, ctx: ctx, cancel: cancel}, nil
}

// Publish appends msgs to topic in one call of the client's Publish and
// returns once they are acknowledged (on the embedded broker: appended,
// and synced as its SyncPolicy says). Messages of one partition are one
// atomic batch, in the order given. The messages' contexts are not used:
// a Publish runs until done or until Close. After Close it fails with
// stream.ErrClosed.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed || p.ctx.Err() != nil {
		return stream.ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*stream.Record, len(msgs))
	for i, msg := range msgs {
		r, err := marshal(topic, msg, p.cfg.PartitionKey)
		if err != nil {
			return err
		}
		recs[i] = r
	}
	err := p.client.Publish(p.ctx, recs...)
	if errors.Is(err, stream.ErrTopicNotFound) && p.cfg.TopicConfig != nil {
		if err := createTopic(p.ctx, p.client, topic, *p.cfg.TopicConfig); err != nil {
			return err
		}
		p.logger.Info("Created topic", watermill.LogFields{"topic": topic})
		err = p.client.Publish(p.ctx, recs...)
	}
	if err != nil {
		if p.ctx.Err() != nil {
			err = stream.ErrClosed // Close cancelled the wait
		}
		return fmt.Errorf("embedwatermill: publish %d messages to %q: %w", len(msgs), topic, err)
	}
	for _, r := range recs {
		p.logger.Trace("Message published", watermill.LogFields{
			"topic": topic, "partition": r.Partition, "offset": r.Offset})
	}
	return nil
}

// Close makes later Publish calls fail with stream.ErrClosed and returns
// once the running ones are over (it cancels their waits). It does not
// close the client. Calling it again does nothing.
func (p *Publisher) Close() error {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// createTopic creates topic with cfg; a topic created meanwhile by someone
// else is fine.
func createTopic(ctx context.Context, client stream.Client, topic string, cfg stream.TopicConfig) error {
	err := client.CreateTopic(ctx, topic, cfg)
	if err != nil && !errors.Is(err, stream.ErrTopicExists) {
		return fmt.Errorf("embedwatermill: create topic %q: %w", topic, err)
	}
	return nil
}
