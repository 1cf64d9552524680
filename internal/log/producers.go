package log

import (
	"fmt"
	"math"
	"time"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/errs"
)

// Idempotent producers (Kafka's ProducerStateManager, KIP-98). A batch
// whose header carries a producer ID (not -1) is checked against what the
// log remembers of that producer before it is written: its epoch and its
// last five batches. The rules are Kafka's:
//
//   - same epoch, same first and last sequence as one of the five: a
//     retry of a stored batch, acknowledged with its original offset and
//     not written again;
//   - an epoch below the known one: fenced (ErrInvalidProducerEpoch);
//   - a higher epoch: must start at sequence 0, and starts a new window;
//   - same epoch: must start at the last sequence + 1 (math.MaxInt32 wraps
//     to 0), else ErrOutOfOrderSequence;
//   - a producer the log does not know (new, expired, or its batches
//     deleted by retention) is accepted at any sequence, as Kafka 2.5+
//     does for non-transactional producers (KIP-360).
//
// The state is not stored: the batch headers on disk carry producer ID,
// epoch, base sequence and record count, so the first idempotent append
// after Open rebuilds it from the segments that may hold unexpired
// producers. A log that never sees an idempotent batch never scans.
// A producer expires ProducerExpiration after the max timestamp of its
// last batch, by the log's clock (Kafka's producer.id.expiration.ms).

// DefaultProducerExpiration is Kafka's producer.id.expiration.ms default.
const DefaultProducerExpiration = 24 * time.Hour

// producerWindow is how many batches per producer are remembered (Kafka's
// ProducerStateEntry.NUM_BATCHES_TO_RETAIN, and the reason producers keep
// at most five requests in flight).
const producerWindow = 5

// sweepEvery is how often (ms, by the log's clock) expired producers are
// dropped from memory; Kafka checks every 10 minutes.
const sweepEvery = int64(10 * time.Minute / time.Millisecond)

// producerBatch is one remembered batch of a producer.
type producerBatch struct {
	firstSeq, lastSeq int32
	base              int64 // its base offset
	maxTS             int64 // its max timestamp as stored (ms)
	appendTime        bool  // maxTS is a LogAppendTime stamp
}

// producerEntry is what the log knows of one producer ID.
type producerEntry struct {
	epoch   int16
	ts      int64                         // the max timestamp of its last batch or marker (ms), for expiry
	batches [producerWindow]producerBatch // a ring: the newest at (first+n-1)%producerWindow
	first   int
	n       int
}

func (e *producerEntry) last() *producerBatch {
	return &e.batches[(e.first+e.n-1)%producerWindow]
}

func (e *producerEntry) add(pb producerBatch) {
	if e.n == producerWindow {
		e.first = (e.first + 1) % producerWindow
		e.n--
	}
	e.n++
	*e.last() = pb
	e.ts = pb.maxTS
}

// producers is a log's producer state, guarded by its mu.
type producers struct {
	loaded    bool
	m         map[int64]*producerEntry
	lastSweep int64 // ms
}

// inSequence reports whether next follows last.
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// check judges b, a batch of producer pid, against e (nil: unknown). It
// returns the remembered batch b repeats, if it is a retry.
func (e *producerEntry) check(pid int64, b batch.Batch) (*producerBatch, error) {
	if e == nil {
		return nil, nil
	}
	epoch, first := b.ProducerEpoch(), b.BaseSequence()
	switch {
	case epoch < e.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, the partition knows epoch %d", errs.ErrInvalidProducerEpoch, pid, epoch, e.epoch)
	case epoch > e.epoch:
		if first != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0", errs.ErrOutOfOrderSequence, pid, epoch, first)
		}
		return nil, nil
	}
	last := b.LastSequence()
	for i := range e.n {
		if pb := &e.batches[(e.first+i)%producerWindow]; pb.firstSeq == first && pb.lastSeq == last {
			return pb, nil
		}
	}
	if e.n > 0 && !inSequence(e.last().lastSeq, first) {
		return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d", errs.ErrOutOfOrderSequence, pid, epoch, first, e.last().lastSeq+1)
	}
	return nil, nil
}

// record notes b, a batch of producer pid just written (or found on disk).
func (p *producers) record(pid int64, b batch.Batch) {
	e := p.m[pid]
	if e == nil || b.ProducerEpoch() != e.epoch {
		// Past check, a new epoch; on disk, whatever came last wins.
		e = &producerEntry{epoch: b.ProducerEpoch()}
		p.m[pid] = e
	}
	e.add(producerBatch{
		firstSeq: b.BaseSequence(), lastSeq: b.LastSequence(), base: b.BaseOffset(),
		maxTS: b.MaxTimestamp(), appendTime: b.Attributes()&batch.AttrLogAppendTime != 0,
	})
}

// fence notes a transaction marker of producer pid at epoch: a newer
// epoch than the producer's batches (the coordinator fenced it) starts
// over, so the older epoch's batches are refused from now on.
func (p *producers) fence(pid int64, epoch int16, ts int64) {
	if e := p.m[pid]; e != nil && epoch > e.epoch {
		*e = producerEntry{epoch: epoch, ts: ts}
	}
}

// expiration is the log's producer expiration in ms.
func (l *Log) expiration() int64 {
	if l.cfg.ProducerExpiration > 0 {
		return l.cfg.ProducerExpiration.Milliseconds()
	}
	return DefaultProducerExpiration.Milliseconds()
}

// producerLocked returns what the log knows of producer pid at now (ms),
// loading the state first if this is the first idempotent append since
// Open and forgetting the producer if it expired. Callers hold mu.
func (l *Log) producerLocked(pid, now int64) (*producerEntry, error) {
	if !l.prod.loaded {
		if err := l.loadProducersLocked(now); err != nil {
			return nil, err
		}
	}
	exp := l.expiration()
	if now-l.prod.lastSweep >= sweepEvery {
		l.prod.lastSweep = now
		for id, e := range l.prod.m {
			if now-e.ts >= exp {
				delete(l.prod.m, id)
			}
		}
	}
	e := l.prod.m[pid]
	if e != nil && now-e.ts >= exp {
		delete(l.prod.m, pid)
		return nil, nil
	}
	return e, nil
}

// loadProducersLocked rebuilds the producer state from the batch headers
// of the segments that may hold a producer not yet expired at now (ms).
// Damaged ranges are passed over: what they held is forgotten, as if
// retention had deleted it. Callers hold mu.
func (l *Log) loadProducersLocked(now int64) error {
	l.prod = producers{m: map[int64]*producerEntry{}, lastSweep: now}
	oldest := now - l.expiration()
	end := l.written
	// Segments whose every batch expired are skipped: a cheap skip over
	// old data.
	from := l.start.Load()
	for _, s := range l.segments() {
		if maxTS, err := s.MaxTimestamp(); err == nil && maxTS < oldest {
			from = max(from, s.Next())
			continue
		}
		break
	}
	err := l.scanHeaders(from, end, func(b batch.Batch) {
		if b.ProducerID() >= 0 && !b.IsControl() {
			l.prod.record(b.ProducerID(), b)
		}
	})
	if err != nil {
		return fmt.Errorf("load producer state of %s: %w", l.cfg.Dir, err)
	}
	for id, e := range l.prod.m {
		if now-e.ts >= l.expiration() {
			delete(l.prod.m, id)
		}
	}
	l.prod.loaded = true
	return nil
}

// Appended is what AppendProduced did.
type Appended struct {
	Base       int64 // the batch's base offset; a duplicate's is its original's
	AppendTime int64 // the LogAppendTime stamp (ms), or -1
	Start      int64 // the log start offset
	Duplicate  bool  // a retry of a stored batch: nothing was written
	End        int64 // the log end after the append: WaitDurable(End) makes it durable
}

// AppendProduced is Append for a batch as a Kafka producer sent it: one
// with a producer ID is first checked against the producer's state (see
// above), and a retry of one of its last five batches is acknowledged with
// the original's offset instead of being written again. The log rewrites
// the batch's base offset (and, if it stamps LogAppendTime, its max
// timestamp and CRC) in place.
func (l *Log) AppendProduced(b batch.Batch) (Appended, error) {
	return l.appendProduced(b, true)
}

// AppendTxn is AppendProduced for a batch of a transaction whose commit
// waits for durability itself: under SyncAlways it returns before the
// batch is durable (and visible); WaitDurable(End) waits for that.
func (l *Log) AppendTxn(b batch.Batch) (Appended, error) {
	return l.appendProduced(b, false)
}

func (l *Log) appendProduced(b batch.Batch, wait bool) (Appended, error) {
	var out Appended
	base, end, dup, err := l.append(b, true, wait)
	if err != nil {
		return out, err
	}
	out.Base, out.AppendTime, out.Start, out.End = base, -1, l.start.Load(), end
	if dup != nil {
		out.Duplicate = true
		if dup.appendTime {
			out.AppendTime = dup.maxTS
		}
	} else if b.Attributes()&batch.AttrLogAppendTime != 0 {
		out.AppendTime = b.MaxTimestamp()
	}
	return out, nil
}
