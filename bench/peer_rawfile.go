package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/embedstream/stream/batch"
)

// rawPeer is the physical limit: one plain file per partition, holding
// frames of [payload length u32][CRC-32C of payload u32][payload], where a
// payload is records of [length u32][value]. Writes are pwrite(2) into
// preallocated space (plus fdatasync when durable, with a
// textbook group commit for concurrent writers); reads map the file and
// verify every frame's CRC; a tailer is woken through a channel. Recovery
// scans each file to its last good frame and truncates the rest. No index, no metadata, no timestamps: anything an
// engine does beyond this is its overhead.
type rawPeer struct{}

func (rawPeer) name() string { return "raw file" }
func (rawPeer) id() string   { return "raw" }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 8

type rawInstance struct {
	durable bool
	logs    []*rawLog
	chunker
}

// rawLog is one partition's file.
type rawLog struct {
	mu      sync.Mutex
	f       *os.File
	end     int64         // bytes of whole frames written
	alloc   int64         // bytes the file holds: end plus preallocated space
	notify  chan struct{} // closed at the next append; nil while no one waits
	buf     []byte        // frames not yet written (group commit) or scratch
	spare   []byte        // the other buffer, written by the syncing writer
	seq     int64         // frames appended to buf
	synced  int64         // frames written and fdatasynced
	syncing bool
	cond    sync.Cond
}

// mapWritten maps what has been written to the log, read-only; the caller
// unmaps it.
func (l *rawLog) mapWritten() ([]byte, error) {
	l.mu.Lock()
	end := l.end
	l.mu.Unlock()
	if end == 0 {
		return nil, errors.New("the file is empty")
	}
	return syscall.Mmap(int(l.f.Fd()), 0, int(end), syscall.PROT_READ, syscall.MAP_SHARED)
}

func (rawPeer) start(_ context.Context, dir string, o startOptions) (instance, error) {
	if o.codec != nil && o.codec.wire != batch.None {
		return nil, notSupported("uncompressed only: the none rows")
	}
	r := &rawInstance{durable: o.durable}
	for p := range max(o.partitions, 1) {
		l, err := openRawLog(filepath.Join(dir, fmt.Sprintf("p%d.log", p)))
		if err != nil {
			r.close()
			return nil, err
		}
		r.logs = append(r.logs, l)
	}
	return r, nil
}

// openRawLog opens or creates a partition file and recovers it: frames are
// checked in order and the file is cut after the last good one.
func openRawLog(path string) (*rawLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	l := &rawLog{f: f}
	l.cond.L = &l.mu
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() > 0 {
		data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			f.Close()
			return nil, err
		}
		for l.end < st.Size() {
			size, ok := checkFrame(data[l.end:])
			if !ok {
				break
			}
			l.end += int64(size)
		}
		syscall.Munmap(data)
		if l.end < st.Size() {
			if err := f.Truncate(l.end); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	l.alloc = l.end
	return l, nil
}

// A log preallocates space ahead of its writes, so that an fdatasync after a
// write has no file size to record, as embedstream preallocates its
// segments: as much as it holds, from 64 KiB to 16 MiB at a time.
const minAllocStep, maxAllocStep = 64 << 10, 16 << 20

// writeAt writes b at the end of the log, preallocating space as needed. It
// does not move end.
func (l *rawLog) writeAt(b []byte, at int64) error {
	if need := at + int64(len(b)); need > l.alloc {
		n := max(need-l.alloc, min(max(l.alloc, minAllocStep), maxAllocStep))
		if err := preallocate(l.f, l.alloc, n); err != nil {
			return err
		}
		l.alloc += n
	}
	_, err := l.f.WriteAt(b, at)
	return err
}

// checkFrame returns the size of the whole, CRC-valid frame at the start of
// data, or false.
func checkFrame(data []byte) (int, bool) {
	if len(data) < frameHeader {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(data))
	if n == 0 || len(data)-frameHeader < n {
		return 0, false
	}
	if crc32.Checksum(data[frameHeader:frameHeader+n], castagnoli) != binary.LittleEndian.Uint32(data[4:]) {
		return 0, false
	}
	return frameHeader + n, true
}

// appendFrame appends a frame of the records with value v, k of them, to buf.
func appendFrame(buf []byte, v []byte, k int) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeader)...)
	for range k {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(v)))
		buf = append(buf, v...)
	}
	payload := buf[start+frameHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, castagnoli))
	return buf
}

// writeLocked writes whole frames and wakes a waiting tailer.
func (l *rawLog) writeLocked(b []byte) error {
	if err := l.writeAt(b, l.end); err != nil {
		return err
	}
	l.end += int64(len(b))
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
	return nil
}

// publishBatched frames up to 1,000 records (at most 512 KiB) per write, as
// embedstream batches its Publish calls.
func (r *rawInstance) publishBatched(_ context.Context, n int, v []byte) error {
	per := max(1, min(1000, (512<<10)/max(len(v), 1)))
	var buf []byte
	for p, l := range r.logs {
		count := n / len(r.logs)
		if p < n%len(r.logs) {
			count++
		}
		l.mu.Lock()
		for count > 0 {
			k := min(per, count)
			buf = appendFrame(buf[:0], v, k)
			if err := l.writeLocked(buf); err != nil {
				l.mu.Unlock()
				return err
			}
			count -= k
		}
		if r.durable {
			if err := fdatasync(l.f); err != nil {
				l.mu.Unlock()
				return err
			}
		}
		l.mu.Unlock()
	}
	return nil
}

// publishEvents writes the events to partition 0's file, a frame per
// eventBatchBytes, as publishBatched writes its records: the none rows'
// limit.
func (r *rawInstance) publishEvents(_ context.Context, events [][]byte, viaPublish bool) error {
	if viaPublish {
		return notSupported("one batching path: the row above")
	}
	l := r.logs[0]
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, chunk := range r.of(events) {
		l.buf = appendEventFrame(l.buf[:0], chunk)
		if err := l.writeLocked(l.buf); err != nil {
			return err
		}
	}
	return nil
}

// appendEventFrame appends a frame of the records with values vs to buf.
func appendEventFrame(buf []byte, vs [][]byte) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeader)...)
	for _, v := range vs {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(v)))
		buf = append(buf, v...)
	}
	payload := buf[start+frameHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, castagnoli))
	return buf
}

// stored is partition 0's frames, without the preallocated space.
func (r *rawInstance) stored(ctx context.Context) (int64, int64, error) {
	n, err := r.records(ctx)
	l := r.logs[0]
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end, n, err
}

// publishOne writes one record's frame; when durable, concurrent callers
// share fdatasyncs: the first to find no sync running writes and syncs
// everything appended so far, the others wait for it (group commit).
func (r *rawInstance) publishOne(_ context.Context, v []byte) error {
	l := r.logs[0]
	l.mu.Lock()
	defer l.mu.Unlock()
	if !r.durable {
		l.buf = appendFrame(l.buf[:0], v, 1)
		return l.writeLocked(l.buf)
	}
	l.buf = appendFrame(l.buf, v, 1)
	l.seq++
	mine := l.seq
	for l.synced < mine {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.syncing = true
		b, upto, at := l.buf, l.seq, l.end
		l.buf, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		err := l.writeAt(b, at) // only the syncing writer writes: alloc is its own
		if err == nil {
			err = fdatasync(l.f)
		}
		l.mu.Lock()
		l.spare = b
		l.syncing = false
		l.cond.Broadcast()
		if err != nil {
			return err
		}
		l.synced = upto
		l.end += int64(len(b))
	}
	return nil
}

// read maps the file and walks the first n records, checking every frame's
// CRC.
func (r *rawInstance) read(_ context.Context, n int, mode readMode) error {
	if mode == readClone {
		return notSupported("one way to keep a record: the copying row")
	}
	data, err := r.logs[0].mapWritten()
	if err != nil {
		return fmt.Errorf("read %d records: %w", n, err)
	}
	defer syscall.Munmap(data)
	var sum checksum
	defer sum.flush()
	got := walkFrames(data, n, func(v []byte) {
		if mode == readCopy {
			v = append([]byte(nil), v...)
		}
		sum.add(v)
	})
	if got < n {
		return fmt.Errorf("read %d of %d records", got, n)
	}
	return nil
}

// walkFrames calls fn with each value in data's frames, up to n of them, and
// returns how many it visited (fewer at a bad frame or the end of data).
func walkFrames(data []byte, n int, fn func(v []byte)) int {
	got := 0
	for got < n {
		size, ok := checkFrame(data)
		if !ok {
			break
		}
		payload := data[frameHeader:size]
		for len(payload) >= 4 && got < n {
			vlen := int(binary.LittleEndian.Uint32(payload))
			fn(payload[4 : 4+vlen])
			payload = payload[4+vlen:]
			got++
		}
		data = data[size:]
	}
	return got
}

// tail waits on the log's notification channel, then reads the new frame
// with pread.
func (r *rawInstance) tail(ctx context.Context) (func() error, error) {
	l := r.logs[0]
	l.mu.Lock()
	pos := l.end
	l.mu.Unlock()
	buf := make([]byte, 64<<10)
	return func() error {
		for {
			l.mu.Lock()
			end := l.end
			var ch chan struct{}
			if end == pos {
				if l.notify == nil {
					l.notify = make(chan struct{})
				}
				ch = l.notify
			}
			l.mu.Unlock()
			if ch != nil {
				select {
				case <-ch:
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if int64(len(buf)) < end-pos {
				buf = make([]byte, end-pos)
			}
			if _, err := l.f.ReadAt(buf[:end-pos], pos); err != nil {
				return err
			}
			size, ok := checkFrame(buf[:end-pos])
			if !ok {
				return errors.New("raw tail: bad frame")
			}
			pos += int64(size)
			return nil
		}
	}, nil
}

// group has members goroutines, each mapping and reading its contiguous range
// of the partition files, as a range assignor would split them.
func (r *rawInstance) group(_ context.Context, members, n int, done func()) error {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, members)
	per := (len(r.logs) + members - 1) / members
	for m := range members {
		logs := r.logs[min(m*per, len(r.logs)):min((m+1)*per, len(r.logs))]
		wg.Go(func() {
			var sum checksum
			defer sum.flush()
			for _, l := range logs {
				l.mu.Lock()
				end := l.end
				l.mu.Unlock()
				if end == 0 {
					continue
				}
				data, err := syscall.Mmap(int(l.f.Fd()), 0, int(end), syscall.PROT_READ, syscall.MAP_SHARED)
				if err != nil {
					errs[m] = err
					return
				}
				got := walkFrames(data, n, sum.add)
				syscall.Munmap(data)
				if t := total.Add(int64(got)); t >= int64(n) && t-int64(got) < int64(n) {
					done()
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if got := total.Load(); got < int64(n) {
		return fmt.Errorf("group read %d of %d records", got, n)
	}
	return nil
}

// newProducer appends each record to its partition's pending frame under
// the partition's lock, and writes the frame once it holds 512 KiB (ours'
// default BatchBytes) or at the flush: no linger timer, no callbacks (a
// count of acknowledged records instead). Keyed records go to the file
// their key hashes to; the frames hold values only.
func (r *rawInstance) newProducer(context.Context, bool) (asyncProducer, error) {
	rp := &rawProducer{r: r, pending: make([]rawPending, len(r.logs))}
	return rp, nil
}

// rawProducerBatch is the raw producer's frame size: ours' default
// ProducerOptions.BatchBytes.
const rawProducerBatch = 512 << 10

type rawProducer struct {
	r        *rawInstance
	pending  []rawPending // by partition
	acked    atomic.Int64
	firstErr atomic.Pointer[error]
}

// rawPending is one partition's frame being filled.
type rawPending struct {
	mu  sync.Mutex
	buf []byte // a frame header's room, then the records; empty if none
	n   int    // records in buf
}

func (rp *rawProducer) prepare(int) {}

func (rp *rawProducer) publish(_ context.Context, _ int, k, v []byte) {
	p := 0
	if k != nil {
		p = keyPartition(k, len(rp.pending))
	}
	pd := &rp.pending[p]
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if len(pd.buf) == 0 {
		pd.buf = append(pd.buf, make([]byte, frameHeader)...)
	}
	pd.buf = binary.LittleEndian.AppendUint32(pd.buf, uint32(len(v)))
	pd.buf = append(pd.buf, v...)
	pd.n++
	if len(pd.buf) >= rawProducerBatch {
		rp.writeLocked(p, pd)
	}
}

// writeLocked writes pd's frame to partition p's file.
func (rp *rawProducer) writeLocked(p int, pd *rawPending) {
	payload := pd.buf[frameHeader:]
	binary.LittleEndian.PutUint32(pd.buf, uint32(len(payload)))
	binary.LittleEndian.PutUint32(pd.buf[4:], crc32.Checksum(payload, castagnoli))
	l := rp.r.logs[p]
	l.mu.Lock()
	err := l.writeLocked(pd.buf)
	l.mu.Unlock()
	if err != nil {
		rp.firstErr.CompareAndSwap(nil, &err)
	}
	rp.acked.Add(int64(pd.n))
	pd.buf, pd.n = pd.buf[:0], 0
}

func (rp *rawProducer) flush(context.Context) (int64, error) {
	for p := range rp.pending {
		pd := &rp.pending[p]
		pd.mu.Lock()
		if pd.n > 0 {
			rp.writeLocked(p, pd)
		}
		pd.mu.Unlock()
	}
	var err error
	if first := rp.firstErr.Swap(nil); first != nil {
		err = *first
	}
	return rp.acked.Swap(0), err
}

func (rp *rawProducer) close() error { return nil }

// publishParallel has each goroutine write frames of perCall records to
// its own file.
func (r *rawInstance) publishParallel(_ context.Context, n, g, perCall int, v []byte) error {
	if g > len(r.logs) {
		return fmt.Errorf("%d goroutines, %d partitions", g, len(r.logs))
	}
	return fanOut(g, func(i int) error {
		l := r.logs[i]
		var buf []byte
		for sent := 0; sent < n/g; {
			k := min(perCall, n/g-sent)
			buf = appendFrame(buf[:0], v, k)
			l.mu.Lock()
			err := l.writeLocked(buf)
			l.mu.Unlock()
			if err != nil {
				return err
			}
			sent += k
		}
		return nil
	})
}

// readParallel has each goroutine map its own file and walk its frames.
func (r *rawInstance) readParallel(_ context.Context, n, g int) error {
	return fanOut(g, func(i int) error {
		data, err := r.logs[i].mapWritten()
		if err != nil {
			return fmt.Errorf("partition %d: %w", i, err)
		}
		defer syscall.Munmap(data)
		var sum checksum
		defer sum.flush()
		if got := walkFrames(data, n/g, sum.add); got < n/g {
			return fmt.Errorf("partition %d: read %d of %d records", i, got, n/g)
		}
		return nil
	})
}

func (r *rawInstance) records(context.Context) (int64, error) {
	l := r.logs[0]
	l.mu.Lock()
	end := l.end
	l.mu.Unlock()
	if end == 0 {
		return 0, nil
	}
	data, err := syscall.Mmap(int(l.f.Fd()), 0, int(end), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer syscall.Munmap(data)
	return int64(walkFrames(data, math.MaxInt, func([]byte) {})), nil
}

// close trims the preallocated space.
func (r *rawInstance) close() error {
	var errs []error
	for _, l := range r.logs {
		if l.alloc > l.end {
			errs = append(errs, l.f.Truncate(l.end))
		}
		errs = append(errs, l.f.Close())
	}
	return errors.Join(errs...)
}
