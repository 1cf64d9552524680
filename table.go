package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/internal/signal"
	"github.com/embedstream/stream/mmap"
)

// TableOptions configure a Table. The zero value (or nil) reads every
// partition of the topic, ReadUncommitted.
type TableOptions struct {
	// Isolation is which records of transactions the table applies
	// (isolation.level). A table cannot take back a value once applied, so
	// a changelog written in transactions wants ReadCommitted: records of
	// aborted transactions are then never applied, and those of an open
	// one only once it commits. ReadUncommitted, the default, applies
	// every record as soon as it is appended.
	Isolation IsolationLevel
	// Partitions, if set, are the only partitions the table reads: a table
	// of one instance's share of a keyed topic. Nil: every partition the
	// topic has at OpenTable.
	Partitions []int32
}

// TableEntry is the latest record of a key in a Table.
//
// Its slices are the table's own copy, shared by every caller and valid
// for ever (a compaction or retention that later removes the record does
// not touch them), but read-only: modifying Key, Value or a header value
// corrupts the table.
type TableEntry struct {
	// Key is the record's key.
	Key []byte
	// Value is the record's value: never nil (a nil value, a tombstone,
	// deletes the key), possibly empty.
	Value []byte
	// Headers are the record's headers.
	Headers []Header
	// Partition and Offset say where the record is. Offsets never change,
	// so Offset identifies this value for good: pass it to WaitChange.
	Partition int32
	Offset    int64
	// Timestamp is the record's time.
	Timestamp time.Time
}

// TablePosition is how far a Table has read one partition.
type TablePosition struct {
	Partition int32
	// Position is the offset of the next record to apply: everything
	// below it is applied.
	Position int64
	// End is the partition's end for the table's isolation level: the
	// high watermark, or under ReadCommitted the last stable offset.
	End int64
}

// Lag is how many offsets the table has yet to apply: End - Position,
// never negative. It counts offsets, not records, so transaction markers
// and offsets a compaction removed count too (as in Kafka's consumer lag).
func (p TablePosition) Lag() int64 { return max(p.End-p.Position, 0) }

// Table is a key→latest-value view of a topic kept in memory: Kafka
// Streams' KTable (a GlobalKTable with every partition), or a NATS
// key-value bucket, over an embedded log. It suits compacted topics,
// whose log keeps the latest record of every key, but reads any topic: on
// a topic with a delete policy it is "the latest record of every key
// still in the log when the table read it".
//
// OpenTable reads every partition from its start up to the end it has
// then (WaitReady waits for that), then follows new records as they are
// appended, from one goroutine of its own. A record with a value sets its
// key; a tombstone (nil value) deletes it; a record with a nil key is
// ignored. Keys are compared as bytes. A key is expected to stay in one
// partition (keyed placement does that): if records of one key are in
// several, the table holds whichever it applied last.
//
// There is no local checkpoint: a table is built from the log every time
// it is opened, after a restart too, so it never disagrees with the log.
// Records the log drops after the table applied them (compaction,
// retention) stay in the table; a table that falls behind retention skips
// to the new log start and keeps what it had. Partitions added to the
// topic after OpenTable are not read: open the table again.
//
// All its methods are safe for concurrent use. Get takes a read lock and
// a map lookup; the goroutine that applies records takes the write lock a
// few hundred records at a time. The table keeps one copy of every live
// record (key, value and header values in one allocation).
type Table struct {
	b         *Broker
	topic     *topic
	parts     []*tablePart
	committed bool // ReadCommitted
	guard     bool // a follower's: record walks run under mmap.Guard
	// mu guards the fields below. Get holds it for reading; the applier,
	// WaitChange, snapshot and Close for writing.
	mu       sync.RWMutex
	m        map[string]TableEntry // live keys; a map key aliases its entry's Key (see own)
	waits    map[string]*keyWait   // WaitChange waiters by key
	snap     []TableEntry          // sorted by key, never modified: current when !stale && len(changed) == 0 && !building
	changed  []string              // keys set or deleted since snap was built
	stale    bool                  // snap must be rebuilt from m whole
	building bool                  // a snapshot is being built from changed: snap is not current
	closed   bool                  // Close ran: m, snap are dropped

	snapMu sync.Mutex            // one snapshot build at a time
	moved  signal.Signal         // broadcast when a position moves and when the table stops
	err    atomic.Pointer[error] // why the table stopped following; nil while it follows
	stop   chan struct{}         // closed by Close
	done   chan struct{}         // closed when the applier has returned
	close  sync.Once
}

// tablePart is the table's state of one partition.
type tablePart struct {
	id      int32
	log     *log.Log
	openEnd int64             // the end at OpenTable: WaitReady's target
	pos     atomic.Int64      // next offset to apply; written by the applier only
	filter  batch.AbortFilter // ReadCommitted: aborted transactions of the view; the applier's
}

// keyWait is the bell of the WaitChange calls waiting on one key: ch is
// closed at the key's next change.
type keyWait struct {
	ch chan struct{}
	n  int // waiters; the last to give up removes it
}

// tableOp is one change the applier has decoded and will apply.
type tableOp struct {
	key []byte     // a delete's key (aliasing the view); a set's is e.Key
	e   TableEntry // a set: the table's own copy
	del bool
}

// tableChunk bounds how many records the applier applies under one hold of
// the write lock: Get waits at most that long (a few µs) while a big log
// is read at open.
const tableChunk = 256

// OpenTable opens a key→latest-value view of topic (see Table), reading
// from the start of each partition. It returns at once; WaitReady waits
// until the table holds what the log held at OpenTable. It fails with
// ErrTopicNotFound, ErrInvalidPartition for a partition the topic lacks,
// ErrInvalidConfig for a bad Isolation or a partition named twice, and
// ErrClosed once the broker is closed. Broker.Close closes the broker's
// tables.
func (b *Broker) OpenTable(topic string, opts *TableOptions) (*Table, error) {
	var o TableOptions
	if opts != nil {
		o = *opts
	}
	if !o.Isolation.valid() {
		return nil, fmt.Errorf("%w: isolation level %d", ErrInvalidConfig, o.Isolation)
	}
	tp, err := b.topic(topic)
	if err != nil {
		return nil, err
	}
	logs := tp.partitions()
	ids := o.Partitions
	if ids == nil {
		for i := range logs {
			ids = append(ids, int32(i))
		}
	}
	t := &Table{b: b, topic: tp, committed: o.Isolation == ReadCommitted, guard: b.follow != nil,
		m: map[string]TableEntry{}, waits: map[string]*keyWait{}, stale: true,
		stop: make(chan struct{}), done: make(chan struct{})}
	for i, id := range ids {
		p, err := tp.partition(id)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ids[:i], id) {
			return nil, fmt.Errorf("%w: partition %d named twice", ErrInvalidConfig, id)
		}
		tp := &tablePart{id: id, log: p}
		tp.pos.Store(p.StartOffset())
		tp.openEnd = t.end(p)
		t.parts = append(t.parts, tp)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	b.tables[t] = struct{}{}
	go t.run()
	return t, nil
}

// end is where the table's isolation level ends partition p.
func (t *Table) end(p *log.Log) int64 {
	if t.committed {
		return p.LastStable()
	}
	return p.HighWatermark()
}

// Topic returns the table's topic.
func (t *Table) Topic() string { return t.topic.name }

// Get returns the latest record of key, and false if the key has none or
// its latest is a tombstone. It does not allocate. After Close it reports
// nothing.
func (t *Table) Get(key []byte) (TableEntry, bool) {
	t.mu.RLock()
	e, ok := t.m[string(key)]
	t.mu.RUnlock()
	return e, ok
}

// Len returns the number of live keys.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// All iterates over the live keys in byte order, with their entries (the
// key yielded is the entry's Key). It iterates over a snapshot taken when
// the iteration starts: records applied meanwhile are not seen, and the
// loop body may call any method of the table. A snapshot costs a sorted
// copy of the entries, built incrementally from the previous one and
// shared by every iteration until the next change.
func (t *Table) All() iter.Seq2[[]byte, TableEntry] { return t.Range(nil, nil) }

// Range is All over the keys in [from, to): from nil starts at the first
// key, to nil ends after the last.
func (t *Table) Range(from, to []byte) iter.Seq2[[]byte, TableEntry] {
	return func(yield func([]byte, TableEntry) bool) {
		s := t.snapshot()
		i := 0
		if from != nil {
			i, _ = slices.BinarySearchFunc(s, from, func(e TableEntry, k []byte) int { return bytes.Compare(e.Key, k) })
		}
		for ; i < len(s); i++ {
			if to != nil && bytes.Compare(s[i].Key, to) >= 0 {
				return
			}
			if !yield(s[i].Key, s[i]) {
				return
			}
		}
	}
}

// Prefix is All over the keys that begin with prefix.
func (t *Table) Prefix(prefix []byte) iter.Seq2[[]byte, TableEntry] {
	return t.Range(prefix, prefixEnd(prefix))
}

// prefixEnd is the first key after every key beginning with p, nil if none
// is (p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// snapshot returns the entries sorted by key as they are now. Only the keys
// changed since the last snapshot are looked up again (under the write
// lock, O(changed)); merging them into the last one happens outside it.
func (t *Table) snapshot() []TableEntry {
	t.mu.RLock()
	if !t.stale && len(t.changed) == 0 && !t.building || t.closed {
		s := t.snap
		t.mu.RUnlock()
		return s
	}
	t.mu.RUnlock()

	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	t.mu.Lock()
	if !t.stale && len(t.changed) == 0 || t.closed {
		s := t.snap
		t.mu.Unlock()
		return s
	}
	var fresh []TableEntry // the entries of changed keys (all if stale), as they are now
	old, keys := t.snap, t.changed
	if t.stale {
		old, keys = nil, nil
		fresh = make([]TableEntry, 0, len(t.m))
		for _, e := range t.m {
			fresh = append(fresh, e)
		}
	} else {
		for _, k := range keys {
			if e, ok := t.m[k]; ok {
				fresh = append(fresh, e)
			}
		}
	}
	// Until the new snapshot is stored, the old one lacks changes Get
	// shows: callers wait for this build (snapMu) rather than take it.
	t.changed, t.stale, t.building = nil, false, true
	t.mu.Unlock()

	byKey := func(a, b TableEntry) int { return bytes.Compare(a.Key, b.Key) }
	slices.SortFunc(fresh, byKey)
	fresh = slices.CompactFunc(fresh, func(a, b TableEntry) bool { return bytes.Equal(a.Key, b.Key) })
	slices.Sort(keys)
	// Merge: the old entries whose keys did not change, and the fresh ones.
	s := make([]TableEntry, 0, len(old)+len(fresh))
	i, j := 0, 0
	for _, e := range old {
		for j < len(keys) && keys[j] < string(e.Key) {
			j++
		}
		if j < len(keys) && keys[j] == string(e.Key) {
			continue // changed: its entry, if any, is in fresh
		}
		for i < len(fresh) && bytes.Compare(fresh[i].Key, e.Key) < 0 {
			s = append(s, fresh[i])
			i++
		}
		s = append(s, e)
	}
	s = append(s, fresh[i:]...)

	t.mu.Lock()
	if !t.closed {
		t.snap = s
	}
	t.building = false
	t.mu.Unlock()
	return s
}

// WaitChange waits until key's latest record is other than the one at
// offset seen, and returns it: a record at another offset (ok true), or
// none (ok false) if the key was deleted. Pass the Offset of the entry you
// have, or -1 if you have none (the key was absent): WaitChange then
// waits for the key to be set. It returns at once if the table already
// differs from what you have. Changes between two calls are coalesced:
// you see the latest, not each one. Changes are told apart by offset: a
// key written in two partitions at the same offset is not seen to change
// (keep a key in one partition). It does not poll: the applier rings
// the key's waiters when it changes the key.
//
// It returns ctx's error; ErrClosed after Close; and the error that
// stopped the table (see Err) if the key is as you have it then.
func (t *Table) WaitChange(ctx context.Context, key []byte, seen int64) (TableEntry, bool, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return TableEntry{}, false, ErrClosed
		}
		e, ok := t.m[string(key)]
		if ok && e.Offset != seen || !ok && seen >= 0 {
			t.mu.Unlock()
			return e, ok, nil
		}
		if err := t.Err(); err != nil {
			t.mu.Unlock()
			return TableEntry{}, false, err
		}
		w := t.waits[string(key)]
		if w == nil {
			w = &keyWait{ch: make(chan struct{})}
			t.waits[string(key)] = w
		}
		w.n++
		t.mu.Unlock()
		select {
		case <-w.ch:
		case <-ctx.Done():
			t.mu.Lock()
			if w.n--; w.n == 0 && t.waits[string(key)] == w {
				delete(t.waits, string(key))
			}
			t.mu.Unlock()
			return TableEntry{}, false, ctx.Err()
		}
	}
}

// WaitReady waits until the table has read every partition up to the end
// it had at OpenTable (Kafka Streams' rule for a restored store: its
// position at or past that end offset, so trailing transaction markers
// and offsets a compaction removed do not hold it). It returns ctx's
// error; ErrClosed after Close; and the error that stopped the table (see
// Err) if it stopped before getting there.
func (t *Table) WaitReady(ctx context.Context) error {
	return t.waitFor(ctx, func() bool {
		for _, p := range t.parts {
			if p.pos.Load() < p.openEnd {
				return false
			}
		}
		return true
	})
}

// WaitCaughtUp waits until the table has read every partition up to its
// end as it is when called: after it returns, Get sees everything
// published before the call (under ReadCommitted, what was committed).
// Errors as WaitReady.
func (t *Table) WaitCaughtUp(ctx context.Context) error {
	ends := make([]int64, len(t.parts))
	for i, p := range t.parts {
		ends[i] = t.end(p.log)
	}
	return t.waitFor(ctx, func() bool {
		for i, p := range t.parts {
			if p.pos.Load() < ends[i] {
				return false
			}
		}
		return true
	})
}

// WaitApplied waits until the table has applied partition's records up to
// offset (inclusive): read-your-writes after Publish, with the record's
// Partition and Offset. It fails with ErrInvalidPartition for a partition
// the table does not read; errors otherwise as WaitReady.
func (t *Table) WaitApplied(ctx context.Context, partition int32, offset int64) error {
	i := slices.IndexFunc(t.parts, func(p *tablePart) bool { return p.id == partition })
	if i < 0 {
		return fmt.Errorf("%w: table of %q does not read partition %d", ErrInvalidPartition, t.topic.name, partition)
	}
	p := t.parts[i]
	return t.waitFor(ctx, func() bool { return p.pos.Load() > offset })
}

// waitFor waits until done holds, looking again each time a position
// moves.
func (t *Table) waitFor(ctx context.Context, done func() bool) error {
	for {
		ch := t.moved.Wait()
		if t.isClosed() {
			return ErrClosed
		}
		if done() {
			return nil
		}
		if err := t.Err(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *Table) isClosed() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.closed
}

// Positions returns how far the table has read each of its partitions, in
// the order of TableOptions.Partitions (by partition if unset).
func (t *Table) Positions() []TablePosition {
	out := make([]TablePosition, len(t.parts))
	for i, p := range t.parts {
		out[i] = TablePosition{Partition: p.id, Position: p.pos.Load(), End: t.end(p.log)}
	}
	return out
}

// Lag returns how many offsets the table has yet to apply, summed over its
// partitions (see TablePosition.Lag): 0 when it has applied everything
// appended (under ReadCommitted, everything stable).
func (t *Table) Lag() int64 {
	var n int64
	for _, p := range t.parts {
		n += max(t.end(p.log)-p.pos.Load(), 0)
	}
	return n
}

// Err returns why the table stopped following its topic: ErrClosed after
// Close or once the broker closes, ErrTopicNotFound if the topic was
// deleted, or an error reading the log. Nil while it follows. A stopped
// table still answers Get and iteration with what it holds, until Close.
func (t *Table) Err() error {
	if p := t.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops the table and drops what it holds: later Gets report
// nothing, waits return ErrClosed. A WaitChange, WaitReady (and the like)
// blocked in another goroutine returns ErrClosed. Close is idempotent; it
// returns when the table's goroutine has ended.
func (t *Table) Close() error {
	t.close.Do(func() {
		close(t.stop)
		<-t.done
		err := ErrClosed
		t.err.Store(&err)
		t.fail(err)
		t.mu.Lock()
		t.closed = true
		t.m, t.snap, t.changed = nil, nil, nil
		t.mu.Unlock()
		t.moved.Broadcast()
		t.b.mu.Lock()
		delete(t.b.tables, t)
		t.b.mu.Unlock()
	})
	return nil
}

// fail records why the table stopped (the first reason wins) and wakes
// every waiter to see it.
func (t *Table) fail(err error) {
	t.err.CompareAndSwap(nil, &err)
	t.mu.Lock()
	for k, w := range t.waits {
		close(w.ch)
		delete(t.waits, k)
	}
	t.mu.Unlock()
	t.moved.Broadcast()
}

// run is the applier: it reads what each partition has past its position,
// round after round while any has more, and waits on one bell rung at
// every move of any partition's end.
func (t *Table) run() {
	defer close(t.done)
	bell := make(chan struct{}, 1)
	for _, p := range t.parts {
		p.log.Watch(bell)
		defer p.log.Unwatch(bell)
	}
	a := &applier{t: t}
	for {
		if t.topic.deleted.Load() {
			t.fail(fmt.Errorf("%w: %q (deleted)", ErrTopicNotFound, t.topic.name))
			return
		}
		more := false
		for _, p := range t.parts {
			moved, err := a.pull(p)
			if err != nil {
				t.fail(err)
				return
			}
			more = more || moved
		}
		if more {
			select {
			case <-t.stop:
				return
			default:
				continue
			}
		}
		select {
		case <-bell:
		case <-t.stop:
			return
		}
	}
}

// applier is the state of the goroutine that applies records.
type applier struct {
	t    *Table
	walk batch.Iter
	lr   batch.Record
	ops  []tableOp
}

// pull reads and applies what partition p has past its position, at most
// one read's worth, and reports whether the position moved. Damage is
// passed over (and logged), as a Reader passes it; a log start that moved
// past the position (retention, DeleteRecords) is skipped to. Errors are
// final: the topic was deleted, the broker is closing, or the log fails.
func (a *applier) pull(p *tablePart) (bool, error) {
	t := a.t
	pos := p.pos.Load()
	if pos >= t.end(p.log) {
		return false, nil
	}
	v, err := readIsolated(p.log, pos, readBytes, t.committed, &p.filter)
	if err != nil {
		err = corruptError(t.topic.name, p.id, err)
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			return a.skip(p, pos, ce.Next, ce), nil
		case errors.Is(err, ErrOffsetOutOfRange):
			if start := p.log.StartOffset(); pos < start {
				return a.skip(p, pos, start, err), nil
			}
			if hw := p.log.HighWatermark(); pos > hw {
				return a.skip(p, pos, hw, err), nil // a follower's owner lost its tail
			}
			return false, nil
		case errors.Is(err, ErrClosed) && t.topic.deleted.Load():
			return false, fmt.Errorf("%w: %q (deleted)", ErrTopicNotFound, t.topic.name)
		}
		return false, fmt.Errorf("table of %s: %w", TopicPartition{Topic: t.topic.name, Partition: p.id}, err)
	}
	defer v.Release()
	if len(v.Data) == 0 {
		return false, nil
	}
	a.walk.Reset(v.Data, pos)
	if t.committed {
		a.walk.SkipAborted(&p.filter)
	}
	walk := func() error {
		for a.walk.Next(&a.lr) {
			if a.lr.Key == nil {
				continue // no key, no row: Kafka Streams skips these too
			}
			if a.lr.Value == nil {
				key := a.lr.Key
				if t.guard {
					// A follower's view may fault, and the pending ops
					// are applied outside the guard then: no alias.
					key = bytes.Clone(key)
				}
				a.ops = append(a.ops, tableOp{key: key, del: true})
			} else {
				a.ops = append(a.ops, tableOp{e: own(p.id, &a.lr)})
			}
			if len(a.ops) == tableChunk {
				a.apply(p, a.walk.Offset())
			}
		}
		return nil
	}
	if t.guard {
		if err := mmap.Guard(walk); err != nil {
			// A follower's file was cut under the view: what was read
			// before the fault is sound; read again from there.
			a.apply(p, a.walk.Offset())
			return true, nil
		}
	} else {
		walk()
	}
	next := a.walk.Offset()
	if a.walk.Err() != nil {
		werr := walkError(t.topic.name, p.id, &a.walk)
		next = max(next, a.walk.Resume())
		t.b.opts.Logger.Warn("stream: table passed over records it could not decode", "topic", t.topic.name,
			"partition", p.id, "from", a.walk.Offset(), "to", next, "err", werr)
	}
	a.apply(p, next)
	return next > pos, nil
}

// skip moves p's position from pos to next over what cannot be read, and
// logs why.
func (a *applier) skip(p *tablePart, pos, next int64, why error) bool {
	if next == pos {
		return false
	}
	a.t.b.opts.Logger.Warn("stream: table skipped offsets", "topic", a.t.topic.name, "partition", p.id,
		"from", pos, "to", next, "err", why)
	a.apply(p, next)
	return true
}

// own copies a record into one allocation of the table's: key, value and
// header values (header keys are the decoder's own strings already).
func own(partition int32, lr *batch.Record) TableEntry {
	n := len(lr.Key) + len(lr.Value)
	for _, h := range lr.Headers {
		n += len(h.Value)
	}
	buf := make([]byte, 0, n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		at := len(buf)
		buf = append(buf, b...)
		return buf[at:len(buf):len(buf)]
	}
	e := TableEntry{Key: take(lr.Key), Value: take(lr.Value), Partition: partition, Offset: lr.Offset,
		Timestamp: time.UnixMilli(lr.Timestamp)}
	if len(lr.Headers) > 0 {
		e.Headers = make([]Header, len(lr.Headers))
		for i, h := range lr.Headers {
			e.Headers[i] = Header{Key: h.Key, Value: take(h.Value)}
		}
	}
	return e
}

// keyString is k as a string sharing its bytes: the map key of an entry
// whose Key is k, never modified.
func keyString(k []byte) string { return unsafe.String(unsafe.SliceData(k), len(k)) }

// apply applies the pending ops under the write lock, rings the waiters of
// the keys they change, and moves p's position to next.
func (a *applier) apply(p *tablePart, next int64) {
	t := a.t
	if len(a.ops) > 0 {
		t.mu.Lock()
		for i := range a.ops {
			op := &a.ops[i]
			var k string
			if op.del {
				old, ok := t.m[string(op.key)]
				if !ok {
					continue
				}
				k = keyString(old.Key) // op.key aliases the log: keep the table's copy
				delete(t.m, k)
			} else {
				k = keyString(op.e.Key)
				t.m[k] = op.e // replaces the map's key too, so the old copy can go
			}
			if !t.stale {
				if t.changed = append(t.changed, k); len(t.changed) > max(1024, len(t.m)) {
					t.changed, t.stale = nil, true // cheaper to rebuild whole
				}
			}
			if len(t.waits) > 0 {
				if w := t.waits[k]; w != nil {
					close(w.ch)
					delete(t.waits, k)
				}
			}
		}
		t.mu.Unlock()
		clear(a.ops)
		a.ops = a.ops[:0]
	}
	if next > p.pos.Load() {
		p.pos.Store(next)
		t.moved.Broadcast()
	}
}
