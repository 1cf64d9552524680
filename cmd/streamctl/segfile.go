package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/segment"
)

// segmentScan is what reading one segment's .log file found. Reading stops
// at the first damage, as recovery would cut there.
type segmentScan struct {
	path     string
	base     int64 // from the file name; -1 if the name holds none
	size     int64 // bytes in the file
	valid    int64 // bytes of good batches from the start
	batches  int64
	records  int64
	next     int64 // the offset after the last good batch
	zeroTail int64 // zero bytes after the good batches: preallocated, never written
	damage   error // the first problem found, nil if none
	deep     bool  // decompress compressed batches to check their records too
	// gapsBelow: batches may start past the previous one's end while
	// that end is below it (a cleaned, sparse part of the log).
	gapsBelow int64
}

// batchVisitor sees each good batch and its position in the file; the batch
// is valid only during the call. A *damageError it returns is damage found
// in the batch, as if the scan had found it.
type batchVisitor func(pos int64, b batch.Batch) error

// segmentBase returns the base offset a segment file's name holds.
func segmentBase(path string) (int64, bool) {
	base, ok := segment.ParseFileName(path, segment.LogSuffix)
	if !ok {
		return -1, false
	}
	return base, true
}

// scanSegmentFile reads every batch of a .log file, checking each one's
// structure, CRC (batch.Parse), records and offset, and calls visit (if
// not nil) for the good ones. The records of compressed batches are
// checked only if deep: the CRC covers their stored bytes, and
// decompressing every batch would make a scan many times slower (as
// recovery, which never decompresses, would not be). Offsets run on without
// gaps, except below gapsBelow (see cleanedBound), where they only ascend.
// Damage goes into the result; the error is for failures to read the file,
// or visit's.
func scanSegmentFile(path string, deep bool, gapsBelow int64, visit batchVisitor) (*segmentScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s := &segmentScan{path: path, size: fi.Size(), deep: deep, gapsBelow: gapsBelow}
	s.base, _ = segmentBase(path)
	s.next = s.base
	return s, s.scan(f, visit)
}

// scan walks the batches of f from the start.
func (s *segmentScan) scan(f *os.File, visit batchVisitor) error {
	var buf []byte
	for s.valid < s.size {
		b, err := readBatch(f, s.valid, s.size, &buf)
		var records int64
		if err == nil {
			records, err = s.check(b)
		}
		if err == nil && visit != nil {
			err = visit(s.valid, b)
		}
		var damage *damageError
		if errors.As(err, &damage) {
			return s.damaged(f, damage)
		}
		if err != nil {
			return err
		}
		s.valid += int64(len(b))
		s.batches++
		s.records += records
		s.next = b.LastOffset() + 1
	}
	return nil
}

// damageError is damage found in a segment file, as opposed to a failure to
// read it.
type damageError struct{ err error }

// Error implements error.
func (e *damageError) Error() string { return e.err.Error() }

// Unwrap returns the damage.
func (e *damageError) Unwrap() error { return e.err }

// readBatch reads and parses the batch at pos into *buf.
func readBatch(f *os.File, pos, size int64, buf *[]byte) (batch.Batch, error) {
	n := min(batch.HeaderSize, size-pos)
	if err := readAt(f, pos, n, buf); err != nil {
		return nil, err
	}
	if n >= batch.LogOverhead {
		length := batch.LogOverhead + int64(int32(binary.BigEndian.Uint32((*buf)[8:12])))
		if length > n && length <= size-pos {
			if err := readAt(f, pos, length, buf); err != nil {
				return nil, err
			}
		}
	}
	b, err := batch.Parse(*buf)
	if err != nil {
		return nil, &damageError{err}
	}
	return b, nil
}

// readAt reads n bytes at pos into *buf, growing it as needed.
func readAt(f *os.File, pos, n int64, buf *[]byte) error {
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	*buf = (*buf)[:n]
	_, err := f.ReadAt(*buf, pos)
	return err
}

// check verifies a parsed batch's offset and records, and returns how many
// records it holds; they count once the batch is found whole (a visitor
// may still find it damaged).
func (s *segmentScan) check(b batch.Batch) (int64, error) {
	if s.next >= 0 && b.BaseOffset() != s.next && !gapOK(s.next, b.BaseOffset(), s.gapsBelow) {
		return 0, &damageError{fmt.Errorf("%w: offset %d, expected %d", batch.ErrCorrupt, b.BaseOffset(), s.next)}
	}
	if b.Codec() != batch.None && !s.deep {
		return int64(b.NumRecords()), nil
	}
	it := b.Records()
	var r batch.Record
	n := int64(0)
	for it.Next(&r) {
		n++
	}
	switch err := it.Err(); {
	case errors.Is(err, batch.ErrUnsupported):
		n = int64(b.NumRecords()) // a codec that is not Kafka's: valid, not decoded
	case err != nil:
		return 0, &damageError{err}
	}
	return n, nil
}

// damaged records the damage at s.valid, unless all that follows is zeros:
// a preallocated tail that was never written.
func (s *segmentScan) damaged(f *os.File, d *damageError) error {
	zero, err := allZeroFrom(f, s.valid, s.size)
	if err != nil {
		return err
	}
	if zero {
		s.zeroTail = s.size - s.valid
		return nil
	}
	s.damage = fmt.Errorf("at position %d: %w", s.valid, d.err)
	return nil
}

// allZeroFrom reports whether f holds only zero bytes in [pos, end).
func allZeroFrom(f *os.File, pos, end int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for pos < end {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-pos)], pos)
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		pos += int64(n)
		if err != nil && (err != io.EOF || pos < end) {
			return false, err
		}
	}
	return true, nil
}

// partitionLogs returns the .log files of a partition directory, in offset
// order.
func partitionLogs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var logs []string
	for _, e := range entries {
		if _, ok := segmentBase(e.Name()); ok && e.Type().IsRegular() {
			logs = append(logs, filepath.Join(dir, e.Name())) // ReadDir sorts: 20-digit names sort by offset
		}
	}
	return logs, nil
}

// partitionDirs returns a topic directory's partition directories, in
// partition order.
func partitionDirs(topicDir string) ([]string, error) {
	entries, err := os.ReadDir(topicDir)
	if err != nil {
		return nil, err
	}
	var nums []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= 0 && e.IsDir() {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	dirs := make([]string, len(nums))
	for i, n := range nums {
		dirs[i] = filepath.Join(topicDir, strconv.Itoa(n))
	}
	return dirs, nil
}

// gapOK reports whether offsets may jump from next to base: forward, in the
// part of the log the cleaner has made sparse (below bound).
func gapOK(next, base, bound int64) bool { return base > next && next < bound }

// cleanedBound returns the offset below which the segments of a partition
// directory may have offset gaps, from the cleaner's checkpoint
// (log.CheckpointFile): 0 if the partition was never cleaned. A damaged
// checkpoint gives every offset (Open reads the log so) and ok false.
func cleanedBound(dir string) (bound int64, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, log.CheckpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	sparse, _, _, ok := log.ParseCheckpoint(data)
	if !ok {
		return math.MaxInt64, false, nil
	}
	return sparse, true, nil
}
