package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The soak: 8 producers publish keyed records carrying per-key sequence
// numbers while 4 members of one group keep joining and leaving (close and
// subscribe again), committing after most polls, on small segments that
// roll all the time. At the end a fresh member drains the group and the
// test checks that no acknowledged record was lost, that each key's
// records are in order within their partition, that a partition never had
// two owners, that a new owner resumed exactly at the commit its previous
// owner left, and that every record delivered twice comes at or after the
// commit in force when its first consumer gave the partition up.
//
// The CI run lasts about 10 s with members churning every few hundred
// milliseconds; EMBEDSTREAM_SOAK=5m runs longer, with members living
// about a second.

const (
	soakTopic      = "soak"
	soakGroup      = "soak-group"
	soakPartitions = 6
	soakProducers  = 8
	soakKeys       = 4 // per producer
	soakConsumers  = 4
)

func soakValue(key string, seq int) []byte {
	return []byte(fmt.Sprintf("%s#%d|%s", key, seq, strings.Repeat("v", seq%61)))
}

// soakParse splits a value back into its key and sequence number.
func soakParse(v []byte) (string, int, bool) {
	s := string(v)
	hash := strings.IndexByte(s, '#')
	bar := strings.IndexByte(s, '|')
	if hash < 0 || bar < hash {
		return "", 0, false
	}
	seq, err := strconv.Atoi(s[hash+1 : bar])
	return s[:hash], seq, err == nil
}

type soakEventKind int

const (
	soakAssign  soakEventKind = iota // off: committed offset the owner starts from (-1: none)
	soakDeliver                      // off: the record's offset
	soakRelease                      // off: committed offset when the owner gave the partition up (-1: none)
)

type soakEvent struct {
	kind soakEventKind
	inc  int // consumer incarnation
	part int32
	off  int64
	key  string
	seq  int
}

// soakLog records the consumers' events in one global order.
type soakLog struct {
	mu     sync.Mutex
	events []soakEvent
}

func (l *soakLog) add(evs ...soakEvent) {
	l.mu.Lock()
	l.events = append(l.events, evs...)
	l.mu.Unlock()
}

type soakAck struct {
	key       string
	seq       int
	partition int32
	offset    int64
}

type soakCounts struct {
	incarnations, polls, commits, commitsFailed, revokeCommits atomic.Int64
}

func TestSoakProducersAndChurningGroup(t *testing.T) {
	duration := 10 * time.Second
	lifeMin, lifeMax := 100*time.Millisecond, 400*time.Millisecond
	if s := os.Getenv("EMBEDSTREAM_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, "EMBEDSTREAM_SOAK=%q", s)
		duration = d
		lifeMin, lifeMax = 500*time.Millisecond, 1500*time.Millisecond
	} else if testing.Short() {
		duration = 2 * time.Second
	}

	b, err := Open(t.TempDir(), &Options{Sync: SyncInterval, SyncInterval: 10 * time.Millisecond, RetentionCheckInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer b.Close()
	// Small segments roll all the time; retention runs every 20 ms with a
	// limit large enough to keep everything.
	require.NoError(t, b.CreateTopic(soakTopic, TopicConfig{Partitions: soakPartitions, SegmentBytes: 16 << 10, RetentionBytes: 1 << 40}))

	stop := make(chan struct{})
	var producersWG, consumersWG sync.WaitGroup

	// Producers: each owns its keys and numbers each key's records.
	var ackMu sync.Mutex
	var acks []soakAck
	var published atomic.Int64
	for p := 0; p < soakProducers; p++ {
		producersWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 42))
			prod := mustProducer(b, &ProducerOptions{Linger: time.Duration(p%3) * time.Millisecond, BatchBytes: 4 << 10})
			defer prod.Close()
			seqs := make([]int, soakKeys)
			tick := time.NewTicker(5 * time.Millisecond) // pacing, so the consumers keep up
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					if err := prod.Flush(context.Background()); err != nil {
						t.Errorf("producer %d: flush: %v", p, err)
					}
					return
				case <-tick.C:
				}
				for i := rng.IntN(4); i >= 0; i-- {
					k := rng.IntN(soakKeys)
					key := fmt.Sprintf("p%d.k%d", p, k)
					seq := seqs[k]
					seqs[k]++
					published.Add(1)
					rec := &Record{Topic: soakTopic, Key: []byte(key), Value: soakValue(key, seq)}
					prod.Publish(context.Background(), rec, func(r *Record, err error) {
						if err != nil {
							t.Errorf("publish %s#%d: %v", key, seq, err)
							return
						}
						ackMu.Lock()
						acks = append(acks, soakAck{key: key, seq: seq, partition: r.Partition, offset: r.Offset})
						ackMu.Unlock()
					})
				}
				if n%50 == 49 {
					if err := prod.Flush(context.Background()); err != nil {
						t.Errorf("producer %d: flush: %v", p, err)
						return
					}
				}
			}
		})
	}

	// Consumers: join, poll for a while, leave, join again.
	var log soakLog
	var counts soakCounts
	var nextInc atomic.Int64
	member := func(rng *rand.Rand, life time.Duration, drainTo []int64) error {
		inc := int(nextInc.Add(1))
		counts.incarnations.Add(1)
		commitOnRevoke := rng.IntN(2) == 0
		commitAfterPoll := rng.IntN(5) // out of 5: how often to commit after a poll
		var errMu sync.Mutex
		var cbErr error
		setErr := func(err error) {
			errMu.Lock()
			cbErr = errors.Join(cbErr, err)
			errMu.Unlock()
		}
		opts := &ConsumerOptions{
			Reset:          ResetEarliest,
			MaxPollRecords: 20 + rng.IntN(300),
			OnAssigned: func(c *Consumer, parts []TopicPartition) {
				committed, err := c.Committed(context.Background(), parts...)
				if err != nil {
					setErr(fmt.Errorf("committed in OnAssigned: %w", err))
				}
				var evs []soakEvent
				for _, tp := range parts {
					off, ok := committed[tp]
					if !ok {
						off = -1
					}
					evs = append(evs, soakEvent{kind: soakAssign, inc: inc, part: tp.Partition, off: off})
				}
				log.add(evs...)
			},
			OnRevoked: func(c *Consumer, parts []TopicPartition) {
				if commitOnRevoke {
					if err := c.Commit(context.Background()); err != nil {
						setErr(fmt.Errorf("commit in OnRevoked: %w", err))
					} else {
						counts.revokeCommits.Add(1)
					}
				}
				committed, err := c.Committed(context.Background(), parts...)
				if err != nil {
					setErr(fmt.Errorf("committed in OnRevoked: %w", err))
				}
				var evs []soakEvent
				for _, tp := range parts {
					off, ok := committed[tp]
					if !ok {
						off = -1
					}
					evs = append(evs, soakEvent{kind: soakRelease, inc: inc, part: tp.Partition, off: off})
				}
				log.add(evs...)
			},
			OnLost: func(c *Consumer, parts []TopicPartition) {
				setErr(fmt.Errorf("member %d lost %v: nobody should be evicted", inc, parts))
			},
		}
		c, err := b.Subscribe(soakGroup, []string{soakTopic}, opts)
		if err != nil {
			return err
		}
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		deadline := time.Now().Add(life)
		for {
			if drainTo != nil {
				done := len(c.Assignment()) == soakPartitions
				for p := int32(0); done && p < soakPartitions; p++ {
					pos, err := c.Position(TopicPartition{Topic: soakTopic, Partition: p})
					if err != nil {
						return err
					}
					done = pos == drainTo[p]
				}
				if done {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("drain did not reach the end offsets %v by its deadline", drainTo)
				}
			}
			pollDeadline := deadline
			if drainTo != nil {
				if soon := time.Now().Add(200 * time.Millisecond); soon.Before(deadline) {
					pollDeadline = soon
				}
			}
			ctx, cancel := context.WithDeadline(context.Background(), pollDeadline)
			recs, err := c.Poll(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				if drainTo != nil {
					continue // the loop checks the positions and the deadline
				}
				break
			}
			if err != nil {
				return fmt.Errorf("poll: %w", err)
			}
			counts.polls.Add(1)
			evs := make([]soakEvent, 0, len(recs))
			for _, r := range recs {
				key, seq, ok := soakParse(r.Value)
				if !ok || string(r.Key) != key {
					return fmt.Errorf("%s/%d offset %d: bad record key %q value %.30q", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
				}
				evs = append(evs, soakEvent{kind: soakDeliver, inc: inc, part: r.Partition, off: r.Offset, key: key, seq: seq})
			}
			log.add(evs...)
			if rng.IntN(5) < commitAfterPoll || drainTo != nil {
				counts.commits.Add(1)
				if err := c.Commit(context.Background()); err != nil {
					// A commit after a Poll may only fail if the group moved on.
					if !errors.Is(err, ErrRebalanceInProgress) && !errors.Is(err, ErrStaleGeneration) {
						return fmt.Errorf("commit: %w", err)
					}
					counts.commitsFailed.Add(1)
				}
			}
		}
		err = c.Close()
		c = nil
		errMu.Lock()
		defer errMu.Unlock()
		return errors.Join(err, cbErr)
	}
	for i := 0; i < soakConsumers; i++ {
		consumersWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				life := lifeMin + time.Duration(rng.Int64N(int64(lifeMax-lifeMin)))
				if err := member(rng, life, nil); err != nil {
					t.Errorf("consumer %d: %v", i, err)
					return
				}
			}
		})
	}

	timer := time.NewTimer(duration)
	<-timer.C
	close(stop)
	producersWG.Wait()
	consumersWG.Wait()
	require.False(t, t.Failed())

	// Every acknowledged record is in the log, byte-exact; the log holds
	// nothing else; each key's records are in sequence order in one
	// partition.
	info, err := b.DescribeTopic(soakTopic)
	require.NoError(t, err)
	ends := make([]int64, soakPartitions)
	var total int64
	type pos struct {
		part int32
		off  int64
	}
	where := map[string][]pos{} // key -> position of each seq
	for p := int32(0); p < soakPartitions; p++ {
		require.Zero(t, info.Partitions[p].StartOffset, "retention deleted records")
		ends[p] = info.Partitions[p].EndOffset
		total += ends[p]
		r, err := b.NewReader(soakTopic, p, OffsetEarliest, &ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		next := int64(0)
		for rec, err := range r.All(context.Background()) {
			require.NoError(t, err)
			require.Equal(t, next, rec.Offset)
			next++
			key, seq, ok := soakParse(rec.Value)
			require.True(t, ok, "p%d offset %d: %q", p, rec.Offset, rec.Value)
			require.Equal(t, string(soakValue(key, seq)), string(rec.Value))
			require.Equal(t, key, string(rec.Key))
			require.Equal(t, len(where[key]), seq, "key %s: seq %d at p%d offset %d (order lost, a gap or a duplicate)", key, seq, p, rec.Offset)
			where[key] = append(where[key], pos{p, rec.Offset})
		}
		require.NoError(t, r.Close())
		require.Equal(t, ends[p], next)
	}
	require.Equal(t, published.Load(), int64(len(acks)), "every published record was acknowledged")
	require.Equal(t, int64(len(acks)), total, "the log holds exactly the acknowledged records")
	for _, a := range acks {
		w := where[a.key]
		require.Less(t, a.seq, len(w), "acknowledged %s#%d lost", a.key, a.seq)
		require.Equal(t, pos{a.partition, a.offset}, w[a.seq], "acknowledged %s#%d is elsewhere", a.key, a.seq)
	}
	for key, w := range where {
		for i := 1; i < len(w); i++ {
			require.Equal(t, w[0].part, w[i].part, "key %s moved partitions", key)
			require.Greater(t, w[i].off, w[i-1].off, "key %s out of order", key)
		}
	}

	// Drain with a fresh member: it must reach every partition's end.
	committed, err := b.CommittedOffsets(soakGroup)
	require.NoError(t, err)
	var lag int64
	for p := int32(0); p < soakPartitions; p++ {
		off, ok := committed[TopicPartition{Topic: soakTopic, Partition: p}]
		if !ok {
			off = 0
		}
		lag += ends[p] - off
	}
	drainStart := len(log.events)
	require.NoError(t, member(rand.New(rand.NewPCG(99, 99)), time.Minute, ends))
	drained := 0
	for _, e := range log.events[drainStart:] {
		if e.kind == soakDeliver {
			drained++
		}
	}

	// Replay the consumers' events.
	type ownKey struct {
		inc  int
		part int32
	}
	owner := map[int32]int{}         // partition -> incarnation holding it
	next := map[ownKey]int64{}       // next offset the owner must get
	lastRelease := map[int32]int64{} // partition -> commit left by its last owner
	type first struct {
		inc int
		at  int // event index
	}
	firsts := make([]map[int64]first, soakPartitions)
	for p := range firsts {
		firsts[p] = map[int64]first{}
	}
	type rel struct {
		at        int
		committed int64
	}
	rels := map[ownKey][]rel{}
	deliveries, duplicates := 0, 0
	assignments := 0
	for i, e := range log.events {
		k := ownKey{e.inc, e.part}
		switch e.kind {
		case soakAssign:
			assignments++
			if o, ok := owner[e.part]; ok {
				require.Failf(t, "two owners", "event %d: member %d assigned p%d while member %d holds it", i, e.inc, e.part, o)
			}
			owner[e.part] = e.inc
			if c, ok := lastRelease[e.part]; ok {
				require.Equal(t, c, e.off, "event %d: member %d starts p%d from commit %d, its last owner left %d", i, e.inc, e.part, e.off, c)
			}
			next[k] = max(e.off, 0) // ResetEarliest: the log start, 0
		case soakDeliver:
			deliveries++
			require.Equal(t, e.inc, owner[e.part], "event %d: member %d got p%d offset %d without holding it", i, e.inc, e.part, e.off)
			require.Equal(t, next[k], e.off, "event %d: member %d got p%d offset %d, want %d (a gap or a rewind)", i, e.inc, e.part, e.off, next[k])
			next[k]++
			if f, ok := firsts[e.part][e.off]; !ok {
				firsts[e.part][e.off] = first{e.inc, i}
			} else {
				duplicates++
				// Its first consumer gave the partition up after that
				// delivery, with some commit in force: only records at or
				// after that commit may come again.
				var c int64 = -2
				for _, r := range rels[ownKey{f.inc, e.part}] {
					if r.at > f.at {
						c = r.committed
						break
					}
				}
				require.NotEqual(t, int64(-2), c, "p%d offset %d delivered again (event %d) though member %d never gave it up", e.part, e.off, i, f.inc)
				require.GreaterOrEqual(t, e.off, c, "p%d offset %d delivered again (event %d) below the commit %d left by member %d", e.part, e.off, i, c, f.inc)
			}
		case soakRelease:
			require.Equal(t, e.inc, owner[e.part], "event %d: member %d released p%d it does not hold", i, e.inc, e.part)
			delete(owner, e.part)
			require.LessOrEqual(t, e.off, next[k], "event %d: p%d committed %d past what member %d was given", i, e.part, e.off, e.inc)
			if c, ok := lastRelease[e.part]; ok {
				require.GreaterOrEqual(t, e.off, c, "event %d: p%d commit went back from %d to %d", i, e.part, c, e.off)
			}
			lastRelease[e.part] = e.off
			rels[k] = append(rels[k], rel{i, e.off})
		}
	}
	require.Empty(t, owner, "partitions still held after every member closed")
	for p := int32(0); p < soakPartitions; p++ {
		for off := int64(0); off < ends[p]; off++ {
			if _, ok := firsts[p][off]; !ok {
				require.Failf(t, "record never consumed", "p%d offset %d (of %d) was never delivered", p, off, ends[p])
			}
		}
	}

	gi, err := b.DescribeGroup(soakGroup)
	require.NoError(t, err)
	for _, gp := range gi.Partitions {
		require.Equal(t, gp.End, gp.Committed, "p%d: the drain committed everything", gp.Partition)
	}
	st := b.Stats()
	require.Positive(t, st.SegmentsRolled, "segments rolled")
	require.Zero(t, st.SegmentsDeleted, "retention kept everything")
	t.Logf("%v: %d records acknowledged (%d keys), %d segments rolled; %d member incarnations, %d rebalances (generation), %d assignments; %d polls, %d deliveries (%d by the drain, lag %d before it), %d duplicates; %d commits (%d failed), %d commits in OnRevoked",
		duration, len(acks), len(where), st.SegmentsRolled, counts.incarnations.Load(), gi.Generation, assignments,
		counts.polls.Load(), deliveries, drained, lag, duplicates, counts.commits.Load(), counts.commitsFailed.Load(), counts.revokeCommits.Load())
}
