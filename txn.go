package stream

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/groups"
	"github.com/embedstream/stream/internal/log"
)

// The transaction coordinator (Kafka's TransactionCoordinator, KIP-98),
// shared by the in-process TxProducer and the Kafka listener's
// transactional clients. Per transactional ID it keeps the producer ID and
// epoch it handed out (durably, in meta.db) and the open transaction: the
// partitions written and the offsets staged. Ending a transaction:
//
//  1. under SyncAlways, the partitions' records are made durable (they
//     were appended without waiting);
//  2. a commit's decision, with its partitions and the offsets it commits,
//     is stored in one bbolt transaction (skipped for a transaction of one
//     partition and no offsets, whose single marker is atomic itself);
//  3. a COMMIT or ABORT marker goes into each partition.
//
// After a crash Open completes what step 2 decided, writing the missing
// markers, and aborts every transaction still open in a partition: no
// in-process transaction survives a restart, and a remote producer's
// epoch is bumped so that it cannot go on with a transaction whose start
// was aborted.

// Errors of transactions.
var (
	// ErrTxnState is returned for a call the transaction's state does not
	// allow: Begin while one is open, a Tx used after its Commit or Abort,
	// a transactional batch for a partition its transaction did not add
	// (Kafka's INVALID_TXN_STATE, IllegalStateException).
	ErrTxnState = errors.New("stream: invalid transaction state")

	// ErrTxnTimedOut is returned by a transaction's calls once the broker
	// aborted it for running past its timeout (TxOptions.Timeout).
	ErrTxnTimedOut = errors.New("stream: transaction timed out and was aborted")

	// ErrTxnAborted is returned by Commit when the transaction could not
	// commit and was aborted instead; it wraps the cause (a failed
	// Publish, ErrStaleGeneration for a consumer that lost its
	// partitions).
	ErrTxnAborted = errors.New("stream: transaction aborted")

	// ErrTxnIncomplete is returned by a commit that is decided and durable
	// but whose markers could not all be written (a partition's fsync
	// failed, the broker closed): some of its records are not visible
	// yet, and the next Open makes them so. The commit stands; do not redo
	// its work.
	ErrTxnIncomplete = errors.New("stream: transaction committed, not yet visible everywhere")

	// ErrInvalidProducerID is returned for a producer ID that is not the
	// one the transactional ID was given, or a transactional ID never
	// initialized (Kafka's INVALID_PRODUCER_ID_MAPPING): initialize it.
	ErrInvalidProducerID = errors.New("stream: producer id does not belong to the transactional id")
)

// Limits of a transaction's timeout (Kafka's transaction.timeout.ms and
// the broker's transaction.max.timeout.ms).
const (
	DefaultTxnTimeout = time.Minute
	MaxTxnTimeout     = 15 * time.Minute
)

// TxnState is where a transactional ID's transaction is (Kafka's names).
type TxnState string

// The states a transactional ID is shown in.
const (
	TxnEmpty          TxnState = "Empty"
	TxnOngoing        TxnState = "Ongoing"
	TxnCompleteCommit TxnState = "CompleteCommit"
	TxnCompleteAbort  TxnState = "CompleteAbort"
)

// TxnInfo describes a transactional ID (Kafka's DescribeTransactions).
type TxnInfo struct {
	ID         string
	ProducerID int64
	Epoch      int16
	State      TxnState
	Timeout    time.Duration
	Started    time.Time // of the ongoing transaction
	Partitions []TopicPartition
}

// txnCoordinator is the broker's registry of transactional IDs.
type txnCoordinator struct {
	b      *Broker
	mu     sync.Mutex
	ids    map[string]*txnEntry
	byPID  map[int64]*txnEntry
	closed bool // Close began: every call fails with ErrClosed

	// pending lists the stored decisions whose markers may not be
	// durable yet (made visible without an fsync of their own); each
	// decision made drops those whose markers became durable since.
	pendMu  sync.Mutex
	pending []pendingDecision
}

// pendingDecision is a stored decision and where its markers end.
type pendingDecision struct {
	key     uint64
	markers []markerEnd
}

type markerEnd struct {
	log *log.Log
	end int64
}

// durableDecisions takes from pending the decisions whose markers are all
// durable now (or, under SyncNever, left to the OS as everything is).
func (c *txnCoordinator) durableDecisions() []uint64 {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	var done []uint64
	keep := c.pending[:0]
	for _, p := range c.pending {
		durable := true
		for _, m := range p.markers {
			durable = durable && m.log.Durable(m.end)
		}
		if durable {
			done = append(done, p.key)
		} else {
			keep = append(keep, p)
		}
	}
	clear(c.pending[len(keep):])
	c.pending = keep
	return done
}

// txnEntry is one transactional ID. Its mu serializes the ID's calls.
type txnEntry struct {
	mu      sync.Mutex
	id      string
	rec     catalog.Txn
	state   TxnState
	started time.Time
	parts   map[*log.Log]*txnPart
	offsets map[string]groups.TxnOffsets // per group, every offset staged
	// checked holds, per group, the offsets a member staged (with its ID
	// and generation): checked again at the commit, they alone.
	checked map[string]groups.TxnOffsets
	failed  error       // a write of the transaction failed: it cannot commit
	timer   *time.Timer // aborts the open transaction at its timeout
	run     int         // counts transactions, so a late timer spares the next
	expired bool        // the last transaction was aborted by its timer
	// seqs is the next sequence per partition of in-process batches
	// (TxProducer), for the current producer ID and epoch.
	seqs     map[*log.Log]int32
	decision uint64 // the key of the open transaction's stored decision
}

// txnPart is a partition an open transaction writes to.
type txnPart struct {
	tp      TopicPartition
	log     *log.Log
	last    int64     // the log end after the transaction's last batch here
	created time.Time // the topic's creation time
}

func newTxnCoordinator(b *Broker) *txnCoordinator {
	return &txnCoordinator{b: b, ids: map[string]*txnEntry{}, byPID: map[int64]*txnEntry{}}
}

// load reads the stored transactional IDs, once meta.db is open.
func (c *txnCoordinator) load() error {
	recs, err := c.b.meta.Txns()
	if err != nil {
		return err
	}
	for id, rec := range recs {
		e := &txnEntry{id: id, rec: rec, state: TxnEmpty}
		c.ids[id] = e
		c.byPID[rec.ProducerID] = e
	}
	return nil
}

// validTxnID: Kafka takes any non-empty string; ours also name bbolt keys.
func validTxnID(id string) error {
	if id == "" || len(id) > math.MaxInt16 {
		return fmt.Errorf("%w: transactional id of %d bytes", ErrInvalidArgument, len(id))
	}
	return nil
}

// InitTransactions is Kafka's InitProducerId with a transactional.id: it
// returns the producer ID and the epoch for a new instance of the
// transactional producer id, fencing every earlier instance (their
// calls then fail with ErrFenced) and aborting the transaction one of
// them left open. The ID keeps its producer ID across calls and restarts;
// the epoch goes up by one each time (a new producer ID once it is
// exhausted). timeout is how long a transaction may stay open before the
// broker aborts it: 0 for DefaultTxnTimeout, at most MaxTxnTimeout
// (ErrInvalidConfig). It is durable when it returns.
func (b *Broker) InitTransactions(id string, timeout time.Duration) (producerID int64, epoch int16, err error) {
	if err := validTxnID(id); err != nil {
		return 0, 0, err
	}
	if timeout == 0 {
		timeout = DefaultTxnTimeout
	}
	if timeout < 0 || timeout > MaxTxnTimeout {
		return 0, 0, fmt.Errorf("%w: transaction timeout %v outside (0, %v]", ErrInvalidConfig, timeout, MaxTxnTimeout)
	}
	if err := b.writable(); err != nil {
		return 0, 0, err
	}
	c := b.txns
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, 0, ErrClosed
	}
	e := c.ids[id]
	if e == nil {
		e = &txnEntry{id: id, state: TxnEmpty, rec: catalog.Txn{ProducerID: -1}}
		c.ids[id] = e
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == TxnOngoing {
		// Aborted with the epoch it is fenced by, as Kafka marks it.
		if err := c.endLocked(e, false, bumped(e.rec.Epoch)); err != nil {
			return 0, 0, err
		}
	}
	rec := e.rec
	if rec.ProducerID < 0 || rec.Epoch >= math.MaxInt16-1 {
		pid, _, err := b.InitProducerID()
		if err != nil {
			return 0, 0, err
		}
		rec = catalog.Txn{ProducerID: pid}
	} else {
		rec.Epoch++
	}
	rec.TimeoutMS = timeout.Milliseconds()
	if err := b.meta.PutTxn(id, rec); err != nil {
		return 0, 0, fmt.Errorf("transactional id %q: %w", id, err)
	}
	c.mu.Lock()
	if e.rec.ProducerID != rec.ProducerID {
		delete(c.byPID, e.rec.ProducerID)
	}
	c.byPID[rec.ProducerID] = e
	c.mu.Unlock()
	e.rec, e.state, e.expired, e.failed = rec, TxnEmpty, false, nil
	e.seqs = map[*log.Log]int32{}
	return rec.ProducerID, rec.Epoch, nil
}

// bumped is the epoch after epoch, as far as epochs go.
func bumped(epoch int16) int16 {
	if epoch < math.MaxInt16 {
		return epoch + 1
	}
	return epoch
}

// entry returns id's entry, locked, once the caller's producer ID and
// epoch are current: ErrFenced for an older epoch (a newer instance took
// over), ErrInvalidProducerEpoch for a newer one, ErrInvalidProducerID for
// an ID never initialized or a producer ID that is not id's, ErrClosed
// once the broker is closing.
func (c *txnCoordinator) entry(id string, pid int64, epoch int16) (*txnEntry, error) {
	if err := c.b.writable(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, closed := c.ids[id], c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case e == nil:
		return nil, fmt.Errorf("%w: transactional id %q was never initialized", ErrInvalidProducerID, id)
	}
	e.mu.Lock()
	c.mu.Lock()
	closed = c.closed // close may have passed e before this caller got it
	c.mu.Unlock()
	switch {
	case closed:
		e.mu.Unlock()
		return nil, ErrClosed
	case pid != e.rec.ProducerID:
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: transactional id %q has producer id %d, not %d", ErrInvalidProducerID, id, e.rec.ProducerID, pid)
	case epoch < e.rec.Epoch:
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: transactional id %q is at epoch %d; this producer's %d was fenced", ErrFenced, id, e.rec.Epoch, epoch)
	case epoch > e.rec.Epoch:
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: transactional id %q: epoch %d ahead of %d", ErrInvalidProducerEpoch, id, epoch, e.rec.Epoch)
	}
	return e, nil
}

// beginLocked starts e's transaction if none is open.
func (c *txnCoordinator) beginLocked(e *txnEntry) error {
	if e.state == TxnOngoing {
		return nil
	}
	if e.expired {
		return ErrTxnTimedOut // until the producer ends it (EndTxn) or re-inits
	}
	e.state, e.started, e.failed = TxnOngoing, c.b.opts.Now(), nil
	e.parts, e.offsets, e.checked = map[*log.Log]*txnPart{}, map[string]groups.TxnOffsets{}, map[string]groups.TxnOffsets{}
	e.run++
	run := e.run
	e.timer = time.AfterFunc(time.Duration(e.rec.TimeoutMS)*time.Millisecond, func() { c.expire(e, run) })
	return nil
}

// expire aborts e's transaction run at its timeout, if still open.
func (c *txnCoordinator) expire(e *txnEntry, run int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != TxnOngoing || e.run != run {
		return
	}
	if err := c.endLocked(e, false, e.rec.Epoch); err != nil {
		c.b.opts.Logger.Error("stream: aborting a timed-out transaction failed", "transactional_id", e.id, "err", err)
		return
	}
	e.expired = true
	c.b.opts.Logger.Warn("stream: transaction aborted at its timeout", "transactional_id", e.id,
		"timeout", time.Duration(e.rec.TimeoutMS)*time.Millisecond)
}

// AddTxnPartitions adds partitions to producer pid's open transaction of
// transactional ID id, opening one if none is (Kafka's
// AddPartitionsToTxn): only added partitions take its transactional
// batches (AppendBatches).
func (b *Broker) AddTxnPartitions(id string, pid int64, epoch int16, parts []TopicPartition) error {
	e, err := b.txns.entry(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	_, err = b.txns.addLocked(e, parts)
	return err
}

func (c *txnCoordinator) addLocked(e *txnEntry, parts []TopicPartition) ([]*txnPart, error) {
	logs := make([]*log.Log, len(parts))
	created := make([]time.Time, len(parts))
	for i, tp := range parts {
		t, l, err := c.b.partitionLog(tp.Topic, tp.Partition)
		if err != nil {
			return nil, err
		}
		logs[i], created[i] = l, t.created
	}
	if err := c.beginLocked(e); err != nil {
		return nil, err
	}
	out := make([]*txnPart, len(parts))
	for i, l := range logs {
		p := e.parts[l]
		if p == nil {
			p = &txnPart{tp: parts[i], log: l, last: -1, created: created[i]}
			e.parts[l] = p
		}
		out[i] = p
	}
	return out, nil
}

// TxnCommitOffsets stages offsets to commit for a group with producer
// pid's open transaction (Kafka's AddOffsetsToTxn and TxnOffsetCommit):
// they are committed if the transaction commits, in the same durable step,
// and dropped if it aborts. A member ID (with its generation) is checked
// now and again at the commit, as its own commits are: a member that lost
// its partitions cannot commit through a transaction (ErrStaleGeneration,
// ErrNotAssigned, ErrFenced).
func (b *Broker) TxnCommitOffsets(id string, pid int64, epoch int16, group, memberID string, generation int, offsets map[TopicPartition]int64) error {
	if err := validateGroupName(group); err != nil {
		return err
	}
	for tp, off := range offsets {
		if off < 0 {
			return fmt.Errorf("%w: offset %d for %s", ErrInvalidArgument, off, tp)
		}
	}
	e, err := b.txns.entry(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if memberID != "" {
		if err := b.groups.CommitTxn([]groups.TxnOffsets{{Group: group, MemberID: memberID, Generation: generation, Offsets: offsets}},
			func(time.Time) error { return nil }); err != nil {
			return err
		}
	}
	if err := b.txns.beginLocked(e); err != nil {
		return err
	}
	set := e.offsets[group]
	if set.Offsets == nil {
		set = groups.TxnOffsets{Group: group, Offsets: map[TopicPartition]int64{}}
	}
	maps.Copy(set.Offsets, offsets)
	e.offsets[group] = set
	if memberID != "" {
		// Only the member's own partitions are checked at the commit:
		// offsets staged without a member neither drop its check nor
		// take part in it.
		chk := e.checked[group]
		if chk.Offsets == nil {
			chk = groups.TxnOffsets{Group: group, Offsets: map[TopicPartition]int64{}}
		}
		chk.MemberID, chk.Generation = memberID, generation
		maps.Copy(chk.Offsets, offsets)
		e.checked[group] = chk
	}
	return nil
}

// EndTxn commits or aborts producer pid's open transaction of
// transactional ID id (Kafka's EndTxn), as the package doc's
// transactions section describes. A commit that cannot be made (a write
// of the transaction failed, a staged member lost its partitions) aborts
// instead and returns ErrTxnAborted wrapping why. Ending a transaction
// that is not open is ErrTxnState, unless it just ended the same way
// (a retry), ErrTxnTimedOut if the broker aborted it at its timeout.
func (b *Broker) EndTxn(id string, pid int64, epoch int16, commit bool) error {
	e, err := b.txns.entry(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.state != TxnOngoing {
		switch {
		case e.expired:
			e.expired = false
			if commit {
				return ErrTxnTimedOut
			}
			return nil
		case commit && e.state == TxnCompleteCommit, !commit && e.state == TxnCompleteAbort:
			return nil
		}
		return fmt.Errorf("%w: transactional id %q has no open transaction", ErrTxnState, id)
	}
	return b.txns.endLocked(e, commit, e.rec.Epoch)
}

// endLocked ends e's open transaction, with epoch the producer's epoch
// the markers carry (a fencing abort passes the new one). Callers hold
// e.mu.
func (c *txnCoordinator) endLocked(e *txnEntry, commit bool, epoch int16) error {
	if e.timer != nil {
		e.timer.Stop()
	}
	parts := slices.SortedFunc(maps.Values(e.parts), func(a, b *txnPart) int { return compareTopicPartitions(a.tp, b.tp) })
	var cause error
	decided := false
	if commit {
		decided, cause = c.decideLocked(e, parts)
		commit = cause == nil
	}
	var err error
	var markers []markerEnd
	for _, p := range parts {
		if p.last < 0 {
			continue // added, never written
		}
		// An undecided commit (one partition, no offsets) is durable only
		// once its marker is.
		off, merr := p.log.EndTxn(e.rec.ProducerID, epoch, commit, 0, commit && !decided)
		if merr != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", p.tp, merr))
		} else if off >= 0 {
			markers = append(markers, markerEnd{p.log, off + 1})
		}
	}
	if decided && err == nil {
		c.pendMu.Lock()
		c.pending = append(c.pending, pendingDecision{key: e.decision, markers: markers})
		c.pendMu.Unlock()
	}
	e.parts, e.offsets, e.checked, e.failed = nil, nil, nil, nil
	e.state = TxnCompleteAbort
	if commit {
		e.state = TxnCompleteCommit
		c.b.txnCommits.Add(1)
	} else {
		c.b.txnAborts.Add(1)
	}
	switch {
	case cause != nil:
		return fmt.Errorf("%w: %w", ErrTxnAborted, errors.Join(cause, err))
	case err != nil && decided:
		// The commit is durable, its markers are not all written (a
		// failed fsync, a closed broker): its decision stays for the next
		// Open, which writes them.
		return fmt.Errorf("%w: transactional id %q: the commit is decided and durable, but not yet visible in every partition; the next Open completes it: %w",
			ErrTxnIncomplete, e.id, err)
	case err != nil && commit:
		// One partition, undecided: its marker decides, and failed.
		return fmt.Errorf("%w: transactional id %q: %w", ErrTxnAborted, e.id, err)
	case err != nil:
		return fmt.Errorf("transactional id %q: abort: %w", e.id, err) // Open aborts what is left open
	}
	return nil
}

// decideLocked makes a commit durable: the records (under SyncAlways)
// and the decision with the staged offsets, at once: the partitions'
// fsyncs run while meta.db commits, so a commit waits for the longer of
// the two, not their sum. A decision whose records then fail to become
// durable is undone: the offsets it committed go back. A crash between
// the two is settled by Open the same way (recover): a decided commit
// whose records a partition lacks is undone, not completed. The group
// locks held meanwhile keep any new owner of the partitions from reading
// offsets that may yet be undone. An error means the transaction must
// abort instead.
func (c *txnCoordinator) decideLocked(e *txnEntry, parts []*txnPart) (decided bool, err error) {
	if e.failed != nil {
		return false, e.failed
	}
	var written []*txnPart
	for _, p := range parts {
		if p.last >= 0 {
			written = append(written, p)
		}
	}
	if len(written) <= 1 && len(e.offsets) == 0 {
		return false, nil // one marker is atomic by itself: nothing to decide
	}
	d := catalog.TxnDecision{ID: e.id, ProducerID: e.rec.ProducerID, Epoch: e.rec.Epoch, Decided: "commit",
		Partitions: make([]catalog.TxnPartition, len(written))}
	for i, p := range written {
		d.Partitions[i] = catalog.TxnPartition{Topic: p.tp.Topic, Partition: p.tp.Partition, Last: p.last, Created: p.created}
	}
	// The groups are locked (CommitTxn) while the decision is written;
	// members' partitions are checked.
	sets := make([]groups.TxnOffsets, 0, len(e.offsets))
	offsets := make(map[string]map[TopicPartition]int64, len(e.offsets))
	for group, s := range e.offsets {
		offsets[group] = s.Offsets
		if chk, ok := e.checked[group]; ok {
			s = chk
		}
		sets = append(sets, s)
	}
	err = c.b.groups.CommitTxn(sets, func(now time.Time) error {
		synced := make(chan error, 1)
		go func() { synced <- syncParts(written) }()
		stored, err := c.b.meta.DecideTxn(d, offsets, c.durableDecisions(), now)
		serr := <-synced
		switch {
		case err != nil:
			return err // nothing decided
		case serr != nil:
			if uerr := c.b.meta.UndoTxn(stored, now); uerr != nil {
				// Decided, and not undone: Open settles it by what the
				// partitions hold. The partitions refuse writes until then.
				return fmt.Errorf("%w (and undoing its decision: %w; the next Open settles it)", serr, uerr)
			}
			return serr
		}
		e.decision = stored.Key
		return nil
	})
	return err == nil, err
}

// syncParts waits for the records of parts to be durable, the partitions'
// fsyncs running at once.
func syncParts(parts []*txnPart) error {
	if len(parts) == 0 {
		return nil
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		if p.log.Policy() != log.SyncAlways {
			continue
		}
		wg.Go(func() { errs[i] = p.log.WaitDurable(p.last) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Transactions describes every transactional ID the broker knows (Kafka's
// ListTransactions and DescribeTransactions).
func (b *Broker) Transactions() []TxnInfo {
	c := b.txns
	c.mu.Lock()
	entries := slices.Collect(maps.Values(c.ids))
	c.mu.Unlock()
	out := make([]TxnInfo, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		info := TxnInfo{ID: e.id, ProducerID: e.rec.ProducerID, Epoch: e.rec.Epoch, State: e.state,
			Timeout: time.Duration(e.rec.TimeoutMS) * time.Millisecond}
		if e.state == TxnOngoing {
			info.Started = e.started
			for _, p := range e.parts {
				info.Partitions = append(info.Partitions, p.tp)
			}
			slices.SortFunc(info.Partitions, compareTopicPartitions)
		}
		e.mu.Unlock()
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b TxnInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// txnAppendCheck is AppendBatches' check of a transactional batch: its
// producer's transaction must be open and have added the partition.
func (c *txnCoordinator) txnAppendCheck(pid int64, epoch int16, l *log.Log) (*txnEntry, *txnPart, error) {
	c.mu.Lock()
	e := c.byPID[pid]
	c.mu.Unlock()
	if e == nil {
		return nil, nil, fmt.Errorf("%w: producer id %d has no transactional id", ErrTxnState, pid)
	}
	e.mu.Lock()
	switch {
	case epoch < e.rec.Epoch:
		e.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: producer %d epoch %d was fenced by epoch %d", ErrFenced, pid, epoch, e.rec.Epoch)
	case epoch > e.rec.Epoch:
		e.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: producer %d epoch %d ahead of %d", ErrInvalidProducerEpoch, pid, epoch, e.rec.Epoch)
	case e.state != TxnOngoing || e.parts[l] == nil:
		e.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: producer %d has not added this partition to an open transaction", ErrTxnState, pid)
	}
	return e, e.parts[l], nil
}

// recover runs at Open, once the partitions are open: it completes the
// decided transactions whose markers a crash left unwritten and aborts
// every other transaction open in a partition, bumping the epoch of the
// transactional IDs it aborted for.
func (c *txnCoordinator) recover() error {
	pidOf := map[int64]*txnEntry{}
	for _, e := range c.ids {
		pidOf[e.rec.ProducerID] = e
	}
	decisions, err := c.b.meta.TxnDecisions()
	if err != nil {
		return err
	}
	var settled []uint64
	for _, d := range decisions {
		if err := c.settle(d); err != nil {
			return err
		}
		settled = append(settled, d.Key)
	}
	// Settled decisions go, once their markers are durable, so that a
	// later Open never judges one against partitions that changed since.
	if len(settled) > 0 {
		if err := c.syncAll(); err != nil {
			return err
		}
		if err := c.b.meta.DropTxnDecisions(settled); err != nil {
			return err
		}
	}
	fence := map[*txnEntry]bool{}
	for _, l := range c.b.allPartitions() {
		open, err := l.OpenTxns()
		if err != nil {
			return err
		}
		for _, t := range open {
			epoch := t.Epoch
			if e := pidOf[t.ProducerID]; e != nil {
				fence[e] = true
				epoch = max(epoch, e.rec.Epoch)
			}
			epoch = bumped(epoch) // the epoch fenceLocked stores next
			c.b.opts.Logger.Warn("stream: aborting a transaction left open", "dir", l.Dir(), "producer_id", t.ProducerID, "first_offset", t.FirstOffset)
			if _, err := l.EndTxn(t.ProducerID, epoch, false, 0, false); err != nil {
				return err
			}
			c.b.txnAborts.Add(1)
		}
	}
	for e := range fence {
		if err := c.fenceLocked(e); err != nil {
			return err
		}
	}
	return nil
}

// settle completes a decided transaction after a crash: its markers
// where they are missing, or, for a commit whose records a partition lost
// (a machine crash before their fsync; the decision was made while they
// were being synced), its undoing: offsets back, then aborts.
func (c *txnCoordinator) settle(d catalog.TxnDecision) error {
	type target struct {
		l    *log.Log
		last int64
	}
	var targets []target
	commit := d.Decided == "commit"
	for _, p := range d.Partitions {
		t, l, err := c.b.partitionLog(p.Topic, p.Partition)
		if err != nil || !t.created.Equal(p.Created) {
			continue // deleted since
		}
		targets = append(targets, target{l, p.Last})
		if commit && l.HighWatermark() < p.Last {
			c.b.opts.Logger.Warn("stream: undoing a transaction commit whose records a crash lost", "transactional_id", d.ID,
				"topic", p.Topic, "partition", p.Partition, "end", l.HighWatermark(), "needed", p.Last)
			commit = false
		}
	}
	if d.Decided == "commit" && !commit {
		if err := c.b.meta.UndoTxn(d, c.b.opts.Now()); err != nil {
			return err
		}
	}
	for _, t := range targets {
		open, err := t.l.OpenTxns()
		if err != nil {
			return err
		}
		for _, o := range open {
			if o.ProducerID == d.ProducerID && o.FirstOffset < t.last {
				if _, err := t.l.EndTxn(o.ProducerID, d.Epoch, commit, 0, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// syncAll makes every partition's data durable, whatever its policy: at
// Open, before the decisions that would redo its markers go.
func (c *txnCoordinator) syncAll() error {
	var err error
	for _, l := range c.b.allPartitions() {
		if l.Policy() != log.SyncNever {
			err = errors.Join(err, l.Sync())
		}
	}
	return err
}

// fenceLocked bumps e's epoch, so that the producer instance whose
// transaction was aborted cannot go on with it.
func (c *txnCoordinator) fenceLocked(e *txnEntry) error {
	rec := e.rec
	rec.Epoch = bumped(rec.Epoch)
	if err := c.b.meta.PutTxn(e.id, rec); err != nil {
		return err
	}
	e.rec, e.state = rec, TxnCompleteAbort
	return nil
}

// close aborts every open transaction, as Close begins; from then on the
// coordinator takes no calls (ErrClosed).
func (c *txnCoordinator) close() error {
	c.mu.Lock()
	c.closed = true
	entries := slices.Collect(maps.Values(c.ids))
	c.mu.Unlock()
	var err error
	for _, e := range entries {
		e.mu.Lock()
		if e.state == TxnOngoing {
			err = errors.Join(err, c.endLocked(e, false, bumped(e.rec.Epoch)), c.fenceLocked(e))
		}
		e.mu.Unlock()
	}
	return err
}
