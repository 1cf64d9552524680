package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// autoCommitEvery is how often Poll auto-commits with GroupOptions.AutoCommit
// (Kafka's auto.commit.interval.ms default).
const autoCommitEvery = 5 * time.Second

type tp = stream.TopicPartition

// GroupConsumer is a member of a Kafka consumer group; Subscribe returns
// one, and it implements stream.GroupConsumer. Each member is a franz-go
// group client of its own.
//
// It behaves like the embedded *stream.Consumer: partitions are assigned,
// revoked and lost inside Poll (or Close), and the rebalance callbacks run
// on the goroutine that calls Poll (or Close), never while the application
// holds records from the previous Poll (franz-go's BlockRebalanceOnPoll).
// Positions are the offset after the last record Poll returned, or what
// Seek set; Commit commits them. Poll, Commit and the other calls are meant
// for one goroutine; Close may come from any.
type GroupConsumer struct {
	c      *Client
	group  string
	topics []string
	opts   stream.GroupOptions
	cl     *kgo.Client
	adm    *kadm.Client

	calls chan call     // callbacks waiting for the polling (or closing) goroutine
	wake  chan struct{} // a partition became blocked: Poll should look
	stop  chan struct{} // closed by Close

	pollMu sync.Mutex // held by Poll, and by Close while it closes

	mu         sync.Mutex
	closing    bool // Close has begun: Poll fails
	closed     bool // Close is done: everything fails
	assigned   map[tp]struct{}
	pos        map[tp]int64   // next offset to read, per assigned partition, where known
	adding     map[tp]bool    // assigned, not yet started by adjust
	pending    map[tp]int64   // seeks of adding partitions, for adjust to start them at
	reseek     map[tp]seekReq // seeks franz-go could not take yet, for Poll to retry
	blocked    map[tp]error   // ResetNone without a commit, or out of range: Poll fails until Seek
	lastCommit time.Time
}

// seekReq is a Seek waiting for franz-go to have started the partition.
type seekReq struct {
	offset int64
	resume bool // the partition was paused while blocked
}

var _ stream.GroupConsumer = (*GroupConsumer)(nil)

// call is a rebalance callback franz-go's group goroutine hands to the
// goroutine in Poll or Close, and waits for.
type call struct {
	fn   func(ctx context.Context)
	ctx  context.Context
	done chan struct{}
}

// balancer maps an embedstream balancer to franz-go's of the same Kafka
// name.
func balancer(b stream.Balancer) (kgo.GroupBalancer, error) {
	name := "range"
	if b != nil {
		name = b.Name()
	}
	switch name {
	case "range":
		return kgo.RangeBalancer(), nil
	case "roundrobin":
		return kgo.RoundRobinBalancer(), nil
	case "sticky":
		return kgo.StickyBalancer(), nil
	case "cooperative-sticky":
		return kgo.CooperativeStickyBalancer(), nil
	}
	return nil, errorf(stream.ErrInvalidConfig, "balancer %q has no Kafka counterpart", name)
}

// Subscribe joins a consumer group as a new member consuming topics. The
// member joins in the background; partitions are assigned (and OnAssigned
// runs) inside Poll. GroupOptions map as follows: Reset to
// kgo.ConsumeResetOffset (start, end, or no reset), Balancer by its Kafka
// name to franz-go's balancer (default range, as on the embedded side;
// every member of a group must use the same), InstanceID to
// kgo.InstanceID, MaxPollRecords to PollRecords' limit (default 500),
// AutoCommit to commits made by Poll every 5 s, before revocation and on
// Close (franz-go's own auto-commit is off), Isolation to
// kgo.FetchIsolationLevel (under ReadCommitted, ResetLatest starts at the
// last stable offset), and the callbacks to
// kgo.OnPartitionsAssigned/Revoked/Lost. It fails with
// stream.ErrInvalidGroup for an empty group, stream.ErrInvalidConfig for no
// topics or bad options, and stream.ErrTopicNotFound for a topic the
// cluster does not have.
func (c *Client) Subscribe(group string, topics []string, opts *stream.GroupOptions) (stream.GroupConsumer, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	o, reset, bal, err := groupConfig(group, topics, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), metadataTimeout)
	defer cancel()
	if _, err := c.topicPartitions(ctx, topics...); err != nil {
		return nil, err
	}

	g := &GroupConsumer{
		c: c, group: group, topics: slices.Clone(topics), opts: o,
		calls: make(chan call), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		assigned: map[tp]struct{}{}, pos: map[tp]int64{}, adding: map[tp]bool{},
		pending: map[tp]int64{}, reseek: map[tp]seekReq{}, blocked: map[tp]error{}, lastCommit: time.Now(),
	}
	kopts := append(c.opts.base(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(bal),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(g.onAssigned),
		kgo.OnPartitionsRevoked(g.onRevoked),
		kgo.OnPartitionsLost(g.onLost),
		kgo.AdjustFetchOffsetsFn(g.adjust),
		kgo.FetchIsolationLevel(isolation(o.Isolation)),
	)
	if o.InstanceID != "" {
		kopts = append(kopts, kgo.InstanceID(o.InstanceID))
	}
	g.cl, err = kgo.NewClient(kopts...)
	if err != nil {
		return nil, errorf(stream.ErrInvalidConfig, "kafka: %v", err)
	}
	g.adm = kadm.NewClient(g.cl)

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		g.cl.Close()
		return nil, stream.ErrClosed
	}
	c.consumers[g] = struct{}{}
	c.mu.Unlock()
	return g, nil
}

// groupConfig checks a member's group, topics and options (nil: the
// defaults), which it returns with MaxPollRecords defaulted and with
// franz-go's reset offset and balancer.
func groupConfig(group string, topics []string, opts *stream.GroupOptions) (stream.GroupOptions, kgo.Offset, kgo.GroupBalancer, error) {
	var o stream.GroupOptions
	if opts != nil {
		o = *opts
	}
	var reset kgo.Offset
	if group == "" {
		return o, reset, nil, errorf(stream.ErrInvalidGroup, "empty group name")
	}
	if len(topics) == 0 {
		return o, reset, nil, errorf(stream.ErrInvalidConfig, "no topics to subscribe to")
	}
	for _, t := range topics {
		if err := validTopic(t); err != nil {
			return o, reset, nil, err
		}
	}
	if o.MaxPollRecords < 0 {
		return o, reset, nil, errorf(stream.ErrInvalidConfig, "MaxPollRecords %d", o.MaxPollRecords)
	}
	if o.MaxPollRecords == 0 {
		o.MaxPollRecords = 500
	}
	if o.Isolation != stream.ReadUncommitted && o.Isolation != stream.ReadCommitted {
		return o, reset, nil, errorf(stream.ErrInvalidConfig, "isolation level %d", o.Isolation)
	}
	switch o.Reset {
	case stream.ResetLatest:
		reset = kgo.NewOffset().AtEnd()
	case stream.ResetEarliest:
		reset = kgo.NewOffset().AtStart()
	case stream.ResetNone:
		reset = kgo.NoResetOffset()
	default:
		return o, reset, nil, errorf(stream.ErrInvalidConfig, "reset policy %d", o.Reset)
	}
	bal, err := balancer(o.Balancer)
	return o, reset, bal, err
}

// isolation is franz-go's fetch isolation level for l.
func isolation(l stream.IsolationLevel) kgo.IsolationLevel {
	if l == stream.ReadCommitted {
		return kgo.ReadCommitted()
	}
	return kgo.ReadUncommitted()
}

// Kgo returns the member's franz-go client, for what stream.GroupConsumer
// does not cover (pausing, lag, metrics). Do not Close it or poll with it.
func (g *GroupConsumer) Kgo() *kgo.Client { return g.cl }

// sortedTPs turns franz-go's topic → partitions map into a sorted slice.
func sortedTPs(m map[string][]int32) []tp {
	var out []tp
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, tp{Topic: t, Partition: p})
		}
	}
	slices.SortFunc(out, func(a, b tp) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	return out
}

// dispatch runs fn on the goroutine inside Poll or Close and waits for it.
// It is called on franz-go's group goroutine, from a rebalance callback.
func (g *GroupConsumer) dispatch(ctx context.Context, fn func(ctx context.Context)) {
	c := call{fn: fn, ctx: ctx, done: make(chan struct{})}
	g.calls <- c
	<-c.done
}

// serve runs one dispatched callback.
func (c call) serve() {
	defer close(c.done)
	c.fn(c.ctx)
}

func (g *GroupConsumer) onAssigned(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := sortedTPs(m)
	g.dispatch(ctx, func(context.Context) {
		g.mu.Lock()
		for _, p := range parts {
			g.assigned[p] = struct{}{}
			g.adding[p] = true
		}
		g.mu.Unlock()
		if f := g.opts.OnAssigned; f != nil {
			f(slices.Clone(parts))
		}
	})
}

func (g *GroupConsumer) onRevoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := sortedTPs(m)
	if len(parts) == 0 {
		return // franz-go ends every cooperative session with a revoke, often empty
	}
	g.dispatch(ctx, func(ctx context.Context) {
		if g.opts.AutoCommit {
			g.autoCommit(ctx, parts)
		}
		if f := g.opts.OnRevoked; f != nil {
			f(slices.Clone(parts))
		}
		g.forget(parts)
	})
}

func (g *GroupConsumer) onLost(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := sortedTPs(m)
	if len(parts) == 0 {
		g.forget(nil)
		return
	}
	g.dispatch(ctx, func(context.Context) {
		if f := g.opts.OnLost; f != nil {
			f(slices.Clone(parts))
		}
		g.forget(nil)
	})
}

// forget drops the state of parts (all if nil) as they leave the member.
func (g *GroupConsumer) forget(parts []tp) {
	g.mu.Lock()
	if parts == nil {
		for p := range g.assigned {
			parts = append(parts, p)
		}
	}
	paused := map[tp]struct{}{}
	for _, p := range parts {
		if _, ok := g.blocked[p]; ok {
			paused[p] = struct{}{}
		}
		delete(g.assigned, p)
		delete(g.pos, p)
		delete(g.adding, p)
		delete(g.pending, p)
		delete(g.reseek, p)
		delete(g.blocked, p)
	}
	g.mu.Unlock()
	g.resume(paused)
}

func (g *GroupConsumer) resume(parts map[tp]struct{}) {
	if len(parts) == 0 {
		return
	}
	m := map[string][]int32{}
	for p := range parts {
		m[p.Topic] = append(m[p.Topic], p.Partition)
	}
	g.cl.ResumeFetchPartitions(m)
}

// adjust runs on franz-go's group goroutine once partitions are assigned
// and their committed offsets fetched, before they are consumed. It turns
// every start position into an exact offset: a Seek made in OnAssigned,
// else the commit, else the reset policy's offset, listed now (or, under
// ResetNone, the partition is paused and blocks Poll with
// ErrNoCommittedOffset until a Seek). Exact offsets make the partitions
// seekable at once (franz-go's SetOffsets only moves partitions it
// consumes) and give Commit a position to commit.
func (g *GroupConsumer) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	need := map[tp]struct{}{}
	g.mu.Lock()
	for t, ps := range offsets {
		for p, o := range ps {
			k := tp{Topic: t, Partition: p}
			delete(g.adding, k)
			if off, ok := g.pending[k]; ok {
				delete(g.pending, k)
				ps[p] = kgo.NewOffset().At(off)
				g.pos[k] = off
				continue
			}
			if off := o.EpochOffset().Offset; off >= 0 {
				g.pos[k] = off // the commit
				continue
			}
			need[k] = struct{}{}
		}
	}
	g.mu.Unlock()
	if len(need) == 0 {
		return offsets, nil
	}

	if g.opts.Reset == stream.ResetNone {
		pause := map[string][]int32{}
		g.mu.Lock()
		for k := range need {
			offsets[k.Topic][k.Partition] = kgo.NewOffset().At(0)
			g.blocked[k] = errorf(stream.ErrNoCommittedOffset, "group %q, %s", g.group, k)
			pause[k.Topic] = append(pause[k.Topic], k.Partition)
		}
		g.mu.Unlock()
		g.cl.PauseFetchPartitions(pause)
		select {
		case g.wake <- struct{}{}:
		default:
		}
		return offsets, nil
	}

	topics := map[string]struct{}{}
	for k := range need {
		topics[k.Topic] = struct{}{}
	}
	list := g.adm.ListStartOffsets
	switch {
	case g.opts.Reset == stream.ResetLatest && g.opts.Isolation == stream.ReadCommitted:
		list = g.adm.ListCommittedOffsets // the last stable offset
	case g.opts.Reset == stream.ResetLatest:
		list = g.adm.ListEndOffsets
	}
	listed, err := list(ctx, slices.Collect(maps.Keys(topics))...)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range need {
		lo, ok := listed.Lookup(k.Topic, k.Partition)
		if !ok || lo.Err != nil || lo.Offset < 0 {
			continue // left to franz-go's reset offset
		}
		offsets[k.Topic][k.Partition] = kgo.NewOffset().At(lo.Offset)
		g.pos[k] = lo.Offset
	}
	return offsets, nil
}

// Poll returns the next records from the member's partitions, at most
// MaxPollRecords, in offset order per partition, blocking until there are
// some, ctx ends (its error), or the member or its Client closes
// (stream.ErrClosed). Rebalance callbacks run inside it, on the calling
// goroutine; the partitions do not move while the application holds the
// records it returned, until the next Poll (or Close). Under ResetNone it
// fails with stream.ErrNoCommittedOffset while an assigned partition has no
// commit, and with stream.ErrOffsetOutOfRange when a position fell outside
// the log, until Seek sets a position. It returns
// stream.ErrConcurrentUse if another goroutine is in Poll.
func (g *GroupConsumer) Poll(ctx context.Context) ([]*stream.Record, error) {
	if g.isClosing() {
		return nil, stream.ErrClosed
	}
	if !g.pollMu.TryLock() {
		if g.isClosing() {
			return nil, stream.ErrClosed
		}
		return nil, errorf(stream.ErrConcurrentUse, "GroupConsumer polled from two goroutines at once")
	}
	defer g.pollMu.Unlock()
	if g.isClosing() {
		return nil, stream.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g.opts.AutoCommit {
		g.mu.Lock()
		due := time.Since(g.lastCommit) >= autoCommitEvery
		g.mu.Unlock()
		if due {
			// Before allowing the rebalance: these partitions are still ours.
			g.autoCommit(ctx, nil)
		}
	}
	for {
		// The records of the previous Poll are handled: partitions may move.
		g.cl.AllowRebalance()
		if err := g.blockedErr(); err != nil {
			return nil, err
		}
		fs, err := g.fetch(ctx, g.retrySeeks())
		if err != nil {
			return nil, err
		}
		recs, err := g.take(ctx, fs)
		if len(recs) > 0 {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// EnforceRebalance makes the member rejoin its group, which rebalances it
// (kgo's ForceRebalance); the rebalance runs in the members' next Polls.
func (g *GroupConsumer) EnforceRebalance() error {
	if g.isClosing() {
		return stream.ErrClosed
	}
	g.cl.ForceRebalance()
	return nil
}

func (g *GroupConsumer) isClosing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

func (g *GroupConsumer) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func (g *GroupConsumer) blockedErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var first tp
	var err error
	for k, e := range g.blocked {
		if err == nil || k.Topic < first.Topic || k.Topic == first.Topic && k.Partition < first.Partition {
			first, err = k, e
		}
	}
	return err
}

// reseekEvery is how soon Poll retries a Seek that franz-go could not take
// yet (the partition was assigned but not yet started: a window of
// microseconds).
const reseekEvery = 2 * time.Millisecond

// fetch polls franz-go on a helper goroutine while running the rebalance
// callbacks franz-go hands over on this one. It returns what the poll
// returned, or nothing when Close, a newly blocked partition, or a Seek to
// retry (retry) cut it short.
func (g *GroupConsumer) fetch(ctx context.Context, retry bool) (kgo.Fetches, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make(chan kgo.Fetches, 1)
	go func() { res <- g.cl.PollRecords(pctx, g.opts.MaxPollRecords) }()
	stop, wake := g.stop, g.wake
	var again <-chan time.Time
	if retry {
		t := time.NewTimer(reseekEvery)
		defer t.Stop()
		again = t.C
	}
	stopped := false
	for {
		select {
		case <-again:
			again = nil
			cancel()
		case c := <-g.calls:
			c.serve()
		case fs := <-res:
			if stopped {
				return nil, stream.ErrClosed // records not handed out are not consumed
			}
			return fs, nil
		case <-stop:
			stopped, stop = true, nil
			cancel()
		case <-wake:
			wake = nil
			cancel()
		}
	}
}

// take converts polled records, advancing positions, and picks the error
// to report if there are none.
func (g *GroupConsumer) take(ctx context.Context, fs kgo.Fetches) ([]*stream.Record, error) {
	var out []*stream.Record
	var firstErr error
	g.mu.Lock()
	defer g.mu.Unlock()
	fs.EachRecord(func(kr *kgo.Record) {
		k := tp{Topic: kr.Topic, Partition: kr.Partition}
		if _, ok := g.assigned[k]; !ok {
			return // never hand out records of a partition the member gave up
		}
		out = append(out, FromKgo(kr))
		g.pos[k] = kr.Offset + 1
	})
	for _, fe := range fs.Errors() {
		k := tp{Topic: fe.Topic, Partition: fe.Partition}
		var dl *kgo.ErrDataLoss
		var gs *kgo.ErrGroupSession
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			if err := ctx.Err(); err != nil && firstErr == nil {
				firstErr = err
			}
		case errors.Is(fe.Err, kgo.ErrClientClosed):
			firstErr = stream.ErrClosed
		case errors.As(fe.Err, &dl), errors.As(fe.Err, &gs):
			// Reported through the reset policy and OnLost.
		case errors.Is(fe.Err, kerr.UnknownTopicOrPartition), errors.Is(fe.Err, kerr.UnknownTopicID):
			// A subscribed topic was deleted: as on the embedded side, its
			// partitions go with the next rebalance, and Poll goes on.
		case errors.Is(fe.Err, kerr.OffsetOutOfRange) && g.opts.Reset == stream.ResetNone:
			if _, ok := g.assigned[k]; ok {
				g.blocked[k] = fmt.Errorf("kafka: %s: %w", k, mapErr(fe.Err))
			}
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("kafka: poll %s: %w", k, mapErr(fe.Err))
			}
		}
	}
	return out, firstErr
}

// positions returns the known positions of parts (all assigned if nil).
func (g *GroupConsumer) positions(parts []tp) map[tp]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[tp]int64{}
	if parts == nil {
		for k := range g.assigned {
			parts = append(parts, k)
		}
	}
	for _, k := range parts {
		if off, ok := g.pos[k]; ok {
			out[k] = off
		}
	}
	return out
}

// commit commits exactly offs with the member's generation.
func (g *GroupConsumer) commit(ctx context.Context, offs map[tp]int64) error {
	if len(offs) == 0 {
		return nil
	}
	m := map[string]map[int32]kgo.EpochOffset{}
	for k, off := range offs {
		if m[k.Topic] == nil {
			m[k.Topic] = map[int32]kgo.EpochOffset{}
		}
		m[k.Topic][k.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	var rerr error
	g.cl.CommitOffsetsSync(ctx, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = err
				}
			}
		}
	})
	if rerr != nil {
		if g.isClosing() && errors.Is(rerr, kgo.ErrClientClosed) {
			return stream.ErrClosed
		}
		return fmt.Errorf("kafka: commit group %q: %w", g.group, mapErr(rerr))
	}
	g.mu.Lock()
	g.lastCommit = time.Now()
	g.mu.Unlock()
	return nil
}

// autoCommit commits the positions of parts (all assigned if nil);
// failures are not returned (Kafka's rule for auto-commit).
func (g *GroupConsumer) autoCommit(ctx context.Context, parts []tp) {
	_ = g.commit(ctx, g.positions(parts))
	g.mu.Lock()
	g.lastCommit = time.Now()
	g.mu.Unlock()
}

// Commit commits the position of every assigned partition: the offset
// after the last record Poll returned from it, or what Seek set (Kafka's
// commitSync). It fails with stream.ErrStaleGeneration if the group moved
// on without the member, stream.ErrRebalanceInProgress during a rebalance.
func (g *GroupConsumer) Commit(ctx context.Context) error {
	if g.isClosed() {
		return stream.ErrClosed
	}
	return g.commit(ctx, g.positions(nil))
}

// CommitOffsets commits exactly the given offsets (the next offset to read,
// per partition), which must be assigned to the member
// (stream.ErrNotAssigned).
func (g *GroupConsumer) CommitOffsets(ctx context.Context, offsets map[stream.TopicPartition]int64) error {
	if g.isClosed() {
		return stream.ErrClosed
	}
	if len(offsets) == 0 {
		return nil
	}
	g.mu.Lock()
	var unblock []tp
	for k, off := range offsets {
		if off < 0 {
			g.mu.Unlock()
			return errorf(stream.ErrInvalidArgument, "negative offset %d for %s", off, k)
		}
		if _, ok := g.assigned[k]; !ok {
			g.mu.Unlock()
			return errorf(stream.ErrNotAssigned, "%s", k)
		}
		if _, ok := g.blocked[k]; ok {
			unblock = append(unblock, k)
		}
	}
	g.mu.Unlock()
	if err := g.commit(ctx, offsets); err != nil {
		return err
	}
	// A partition waiting for a commit (ResetNone) starts from it.
	for _, k := range unblock {
		if err := g.Seek(k, offsets[k]); err != nil {
			return err
		}
	}
	return nil
}

// Committed returns the group's committed offsets for parts (all the
// group's if none are named). Partitions never committed are absent.
func (g *GroupConsumer) Committed(ctx context.Context, parts ...stream.TopicPartition) (map[stream.TopicPartition]int64, error) {
	if g.isClosed() {
		return nil, stream.ErrClosed
	}
	resps, err := g.adm.FetchOffsets(ctx, g.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[tp]int64{}, nil // a group nobody joined yet has no commits
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of group %q: %w", g.group, mapErr(err))
	}
	out := map[tp]int64{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			out[tp{Topic: o.Topic, Partition: o.Partition}] = o.At
		}
	})
	if len(parts) > 0 {
		want := map[tp]bool{}
		for _, p := range parts {
			want[p] = true
		}
		for k := range out {
			if !want[k] {
				delete(out, k)
			}
		}
	}
	return out, nil
}

// Seek makes the next Poll read tp from offset (the last Seek wins), also
// from OnAssigned. An offset outside the log is handled by the reset policy
// when the member fetches it. tp must be assigned (stream.ErrNotAssigned).
func (g *GroupConsumer) Seek(k stream.TopicPartition, offset int64) error {
	if offset < 0 {
		return errorf(stream.ErrInvalidArgument, "negative offset %d", offset)
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return stream.ErrClosed
	}
	if _, ok := g.assigned[k]; !ok {
		g.mu.Unlock()
		return errorf(stream.ErrNotAssigned, "%s", k)
	}
	g.pos[k] = offset
	_, wasBlocked := g.blocked[k]
	delete(g.blocked, k)
	if g.adding[k] {
		g.pending[k] = offset // adjust starts the partition here
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	g.seekNow(k, seekReq{offset: offset, resume: wasBlocked})
	return nil
}

// started reports whether franz-go consumes the partition, which is when
// SetOffsets can move it: from the moment it holds an offset for it, which
// it records together with starting the partition.
func (g *GroupConsumer) started(k tp) bool {
	_, ok := g.cl.CommittedOffsets()[k.Topic][k.Partition]
	return ok
}

// seekNow moves a started partition, or leaves the seek for Poll to retry.
func (g *GroupConsumer) seekNow(k tp, req seekReq) {
	if !g.started(k) {
		g.mu.Lock()
		if _, ok := g.assigned[k]; ok {
			g.reseek[k] = req
		}
		g.mu.Unlock()
		return
	}
	g.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{k.Topic: {k.Partition: {Epoch: -1, Offset: req.offset}}})
	if req.resume {
		g.resume(map[tp]struct{}{k: {}})
	}
}

// retrySeeks retries the seeks franz-go could not take, and reports
// whether some still wait.
func (g *GroupConsumer) retrySeeks() bool {
	g.mu.Lock()
	reqs := maps.Clone(g.reseek)
	clear(g.reseek)
	g.mu.Unlock()
	for k, req := range reqs {
		g.seekNow(k, req)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.reseek) > 0
}

// Assignment returns the partitions the member holds, sorted (nil once
// closed).
func (g *GroupConsumer) Assignment() []stream.TopicPartition {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	m := map[string][]int32{}
	for k := range g.assigned {
		m[k.Topic] = append(m[k.Topic], k.Partition)
	}
	return sortedTPs(m)
}

// Close leaves the group: with AutoCommit it commits the positions, then
// runs OnRevoked for the assigned partitions (on the calling goroutine),
// then leaves, so the other members rebalance at once (a static member,
// with InstanceID, does not leave: its partitions wait for it for the
// session timeout). A Poll blocked in another goroutine returns
// stream.ErrClosed first. Close is safe to call more than once.
func (g *GroupConsumer) Close() error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return nil
	}
	g.closing = true
	g.mu.Unlock()
	close(g.stop)
	g.pollMu.Lock() // wait out a running Poll
	defer g.pollMu.Unlock()

	g.cl.AllowRebalance()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.cl.Close() // leaves the group: a last revoke, served below
	}()
	for {
		select {
		case c := <-g.calls:
			c.serve()
		case <-done:
			g.mu.Lock()
			g.closed = true
			g.mu.Unlock()
			g.c.forgetConsumer(g)
			return nil
		}
	}
}
