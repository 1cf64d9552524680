package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/embedstream/stream"
)

// cursor is one partition's Reader and the record it returned last, which
// stays valid until the cursor moves on (nil once the reader is done).
type cursor struct {
	rd         *stream.Reader
	cur        *stream.Record
	start, end int64 // the offsets the replay starts and ends at
}

// next moves the cursor to its reader's next record.
func (c *cursor) next(ctx context.Context) error {
	r, err := c.rd.Next(ctx)
	if errors.Is(err, io.EOF) {
		c.cur = nil
		return nil
	}
	if err != nil {
		return err
	}
	c.cur = r
	return nil
}

// merger merges partitions' records in timestamp order (ties: the
// partition added first, so topics by name, then partitions by number, as
// replay adds them). It holds one record per partition: no copies.
type merger struct {
	cursors  []*cursor
	last     int       // the cursor pop took the record from
	out      int64     // records printed
	steps    int64     // records read, to pace the progress display
	progress io.Writer // where to show progress; nil: nowhere
	shown    time.Time // when progress was last shown
}

// add adds a partition's reader, which ends at offset end.
func (m *merger) add(rd *stream.Reader, end int64) {
	m.cursors = append(m.cursors, &cursor{rd: rd, start: rd.Offset(), end: end})
}

// close closes the readers.
func (m *merger) close() {
	for _, c := range m.cursors {
		c.rd.Close()
	}
}

// fill reads the first record of every partition.
func (m *merger) fill(ctx context.Context) error {
	for _, c := range m.cursors {
		if err := c.next(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pop returns the earliest current record, or nil when all are done. The
// record stays valid until advance.
func (m *merger) pop() *stream.Record {
	m.last = -1
	for i, c := range m.cursors {
		if c.cur != nil && (m.last < 0 || c.cur.Timestamp.Before(m.cursors[m.last].cur.Timestamp)) {
			m.last = i
		}
	}
	if m.last < 0 {
		return nil
	}
	return m.cursors[m.last].cur
}

// advance moves on the cursor pop took the record from.
func (m *merger) advance(ctx context.Context) error {
	m.steps++
	return m.cursors[m.last].next(ctx)
}

// showProgress shows how far the replay got, at most every 100ms, and at
// the end (final) with a newline.
func (m *merger) showProgress(final bool) {
	if m.progress == nil || (!final && (m.steps%1024 != 0 || time.Since(m.shown) < 100*time.Millisecond)) {
		return
	}
	m.shown = time.Now()
	var read, total int64
	for _, c := range m.cursors {
		read += c.rd.Offset() - c.start
		total += c.end - c.start
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(read) / float64(total)
	}
	fmt.Fprintf(m.progress, "\rreplay: %d records printed, %d of %d read (%.0f%%)", m.out, read, total, pct)
	if final {
		fmt.Fprintln(m.progress)
	}
}
