package segment

import (
	"errors"
	"fmt"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/mmap"
)

// A follower reads segments that another process (the owner) writes. The
// owner appends each batch with one write at the end of the active segment,
// after the batches before it, and never rewrites a batch once written: a
// whole batch that passes its checks at the known end is there to stay, and
// bytes that do not (zeros of the preallocated tail, a batch whose write is
// still under way or was torn by a crash) are simply not written yet. The
// owner cuts a file only past its batches: a clean close trims the
// preallocated tail, recovery after a crash cuts a torn tail, so a
// follower's file never shrinks below the batches it has read unless
// something else cut it.

// ErrShrunk reports a followed segment whose file is now shorter than the
// batches already read from it: something other than the owner cut it (or
// replaced it). The follower must reopen the log from its files.
var ErrShrunk = errors.New("segment: file shrank under a follower")

// Follow reads the batches appended to a followed active segment (see
// Config.Follow) since it was opened or last followed: each whole batch
// past the known end that passes its checks (CRC included) and continues
// the offsets is indexed and becomes readable. It stops at the first that
// does not, which is not written yet, unless a valid batch follows it
// directly: then it is damage, passed over as recovery would (reads report
// it), and damaged counts such batches. A fault while reading (the file
// cut under the mapping) stops it quietly; the next call sees the size.
//
// It returns ErrShrunk if the file is shorter than what was read, ErrSealed
// for a segment no longer active, ErrClosed after Close. Calls must not
// overlap; reads may run alongside.
func (s *Segment) Follow() (damaged int, err error) {
	if !s.cfg.Follow {
		return 0, fmt.Errorf("segment %d: Follow without Config.Follow", s.base)
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return 0, ErrClosed
	case !s.active.Load():
		return 0, ErrSealed
	}
	defer s.touch()
	f, err := s.file()
	if err != nil {
		return 0, fmt.Errorf("segment %d: %w", s.base, err)
	}
	fileSize, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("segment %d: %w", s.base, err)
	}
	size := s.size.Load()
	if fileSize < size {
		return 0, fmt.Errorf("%w: segment %d holds %d bytes, %d were read", ErrShrunk, s.base, fileSize, size)
	}
	s.capacity.Store(fileSize)
	if fileSize-size < batch.HeaderSize {
		return 0, nil
	}
	m, err := s.mapping(fileSize)
	if err != nil {
		return 0, err
	}
	defer m.release()
	pos, expect, firstBad := size, s.next.Load(), int64(-1)
	var indexErr error
	_ = mmap.Guard(func() error { // a fault only stops the scan early
		data := m.data[:fileSize]
		for pos < fileSize {
			b, err := batchAt(data, pos, expect, true, false)
			if err != nil {
				next, ok := damageEnd(data, pos, expect)
				if !ok {
					return nil // not written yet
				}
				if b, err = batchAt(data, pos, expect, true, false); err != nil {
					// A valid batch follows it: the write of this one had
					// ended before, so it is damage, not a write under way.
					if firstBad < 0 {
						firstBad = pos
					}
					damaged++
					pos, expect = next, batch.Batch(data[next:]).BaseOffset()
					continue
				}
			}
			if indexErr = s.indexBatch(b, pos); indexErr != nil {
				return nil
			}
			pos += int64(len(b))
			expect = b.LastOffset() + 1
		}
		return nil
	})
	if pos > size {
		verifiedUpTo := pos
		if firstBad >= 0 {
			verifiedUpTo = firstBad // reads check from the damage on
		}
		if s.verified.Load() == size {
			s.advanceVerified(verifiedUpTo)
		}
		s.size.Store(pos)
	}
	return damaged, indexErr
}

// damageEnd says whether the bytes at pos, which fail their checks, are a
// damaged batch rather than one still being written: its header frames it
// and a batch that passes its checks and plausibly follows (see resync)
// starts right where it ends. It returns that batch's position. Only the
// framing is trusted, never a search: a batch being written is the last
// thing in the file, but its unwritten part could hold anything.
func damageEnd(data []byte, pos, expect int64) (int64, bool) {
	if batch.CheckHeader(data[pos:]) != nil {
		return 0, false
	}
	next := pos + int64(batch.Batch(data[pos:]).Size())
	if next >= int64(len(data)) || batch.CheckHeader(data[next:]) != nil {
		return 0, false
	}
	base := batch.Batch(data[next:]).BaseOffset()
	if base <= expect || base-expect > maxOffsets(next-pos) {
		return 0, false
	}
	_, err := batch.Parse(data[next:])
	return next, err == nil
}
