package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/embedstream/stream/internal/errs"
)

// A follower's store (Follow) reads a meta.db that another process, its
// owner, has open and writes. It never opens that file with bbolt: bbolt
// takes a flock on it (shared, read-only), which would make the owner's
// next Open wait and then fail, and a reader's Open would wait for the
// owner's exclusive lock. Instead it copies the file's bytes, taking no
// lock, to a temporary file, and opens the copy read-only.
//
// A copy taken while the owner commits may be torn. bbolt writes a
// transaction's pages to free space (never over pages the current meta
// page reaches) and then one of its two meta pages, so a copy is
// consistent if at most one transaction committed while it was taken:
// copyFile reads the meta pages again after the copy to see. A copy that still fails
// Open's checks (every page and value read, the values' CRC-32C checked)
// is tried again; the store reports ErrUnavailable only after
// copyAttempts.

// ErrUnavailable marks a store a follower could not read: no consistent
// copy of it passed its checks (it is damaged, or the owner rewrote it
// during every attempt). It is errs.ErrMetadataUnavailable.
var ErrUnavailable = errs.ErrMetadataUnavailable

// copyAttempts is how many copies a read of a changed file tries.
const copyAttempts = 10

// follower is a Catalog's state when it reads copies of its file.
type follower struct {
	path     string
	interval time.Duration // how long a read trusts the last look at the file

	refreshMu sync.Mutex // one look at the file at a time
	checked   time.Time  // when the file was last looked at; under refreshMu

	mu         sync.RWMutex // held shared by reads of db, exclusively to replace it
	db         *bolt.DB     // the newest good copy (its file already unlinked), nil if none
	metas      []byte       // db's meta pages as copied: the file is unchanged while they are
	err        error        // why the newest look found no good copy (wraps ErrUnavailable)
	clean      bool         // db's clean-shutdown flag
	rolledBack bool         // db was opened at its older meta page
	version    uint64       // counts replacements of db (or err)
	closed     bool
}

// Follow returns a store that reads the file at path through copies (see
// above), and the clean-shutdown flag of the first. Reads use the newest
// copy, looking at the file again (and copying it if it changed) when the
// last look is older than interval, or on Refresh. A missing file reads as
// empty; one that cannot be read makes reads fail with ErrUnavailable until
// it can. Only its readers, Refresh, Version and Close may be called.
func Follow(path string, interval time.Duration) (*Catalog, bool) {
	f := &follower{path: path, interval: interval}
	c := &Catalog{follow: f}
	f.refresh(true)
	f.mu.RLock()
	defer f.mu.RUnlock()
	return c, f.clean
}

// Refresh makes a follower's store look at its file now, copying it if it
// changed, and returns why it cannot be read (wrapping ErrUnavailable), if
// it cannot. Other stores are always current: nil.
func (c *Catalog) Refresh() error {
	if c.follow == nil {
		return nil
	}
	c.follow.refresh(true)
	c.follow.mu.RLock()
	defer c.follow.mu.RUnlock()
	return c.follow.err
}

// Version counts the times a follower's store replaced its copy (or found
// it gone, or unreadable): the store's contents are unchanged while it is.
// It is 0 for other stores.
func (c *Catalog) Version() uint64 {
	if c.follow == nil {
		return 0
	}
	c.follow.mu.RLock()
	defer c.follow.mu.RUnlock()
	return c.follow.version
}

// view runs fn on the newest copy, after a look at the file if the last
// is older than the interval. It does not run fn without a copy.
func (f *follower) view(fn func(db *bolt.DB) error) error {
	f.refresh(false)
	f.mu.RLock()
	defer f.mu.RUnlock()
	switch {
	case f.closed:
		return errs.ErrClosed
	case f.err != nil:
		return f.err
	case f.db == nil:
		return nil
	}
	return fn(f.db)
}

// refresh looks at the file, unless the last look is recent and not
// forced, and replaces the copy if the file changed.
func (f *follower) refresh(force bool) {
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()
	now := time.Now()
	if !force && now.Sub(f.checked) < f.interval {
		return
	}
	f.checked = now
	f.mu.RLock()
	metas, hadErr, closed := f.metas, f.err != nil, f.closed
	f.mu.RUnlock()
	if closed {
		return
	}
	if metas != nil && !hadErr && unchanged(f.path, metas) {
		return
	}
	db, metas, clean, rolledBack, err := openCopy(f.path)
	if errors.Is(err, os.ErrNotExist) {
		db, metas, err = nil, nil, nil
	}
	if err != nil {
		err = fmt.Errorf("%w: %s: %w", ErrUnavailable, f.path, err)
	}
	f.mu.Lock()
	old := f.db
	if f.closed {
		old = db
	} else {
		f.db, f.metas, f.err, f.clean, f.rolledBack = db, metas, err, clean, rolledBack
		f.version++
	}
	f.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// close releases the copy.
func (f *follower) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}

// unchanged reports whether the file's meta pages are still metas: no
// transaction committed since they were copied.
func unchanged(path string, metas []byte) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	buf := make([]byte, len(metas))
	n, err := fh.ReadAt(buf, 0)
	return n == len(buf) && (err == nil || errors.Is(err, io.EOF)) && bytes.Equal(buf, metas)
}

// openCopy copies the store at path (see copyFile) and opens the copy
// read-only, checking it as Open does; the copy is unlinked once open.
// Copies that fail are tried again, copyAttempts in all.
func openCopy(path string) (db *bolt.DB, metas []byte, clean, rolledBack bool, err error) {
	for attempt := range copyAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Millisecond) // let a commit finish
		}
		var data []byte
		var moved bool
		if data, metas, moved, err = copyFile(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, false, false, err
			}
			continue
		}
		var c *Catalog
		if c, clean, err = openBytes(data); err == nil {
			// After a commit during the copy, a torn older meta page is
			// that commit's, not damage.
			return c.db, metas, clean, c.rolledBack && !moved, nil
		}
		if !errors.Is(err, ErrDamaged) {
			return nil, nil, false, false, err // the copy's own trouble: a full temp dir, say
		}
	}
	return nil, nil, false, false, err
}

// openBytes writes a store's bytes to a file of its own under os.TempDir,
// opens it read-only, and unlinks it: the open store keeps it.
func openBytes(data []byte) (*Catalog, bool, error) {
	tmp, err := os.MkdirTemp("", "embedstream-meta-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(tmp)
	cp := filepath.Join(tmp, File)
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		return nil, false, err
	}
	return Open(cp, 0o600, true, true)
}

// copyFile reads the file at path, taking no lock, and returns its bytes
// and its meta pages, after reading the meta pages again to check that the
// copy is consistent. It is if at most one transaction committed while it
// was taken: bbolt writes a transaction's pages to pages free before it,
// never to those the newest meta page reaches, and only the transaction
// after next may reuse those (once the next has freed them). The meta
// pages come first in the file, so the copy holds them as they were when
// it began, and the newest of them reaches only pages left as they were.
// moved says a transaction did commit meanwhile: the copy's older meta
// page may then be torn, which is no damage. Without a meta page, or after
// two commits, it fails (try again).
func copyFile(path string) (data, metas []byte, moved bool, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, false, err
	}
	defer fh.Close()
	// One read, sized ahead: the faster the copy, the fewer commits land
	// during it. A file grown since holds nothing the copy's meta pages
	// reach.
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, false, err
	}
	data = make([]byte, fi.Size())
	n, err := fh.ReadAt(data[:min(len(data), metaRegion)], 0)
	if err == nil && n == metaRegion {
		if copyHook != nil {
			copyHook()
		}
		var more int
		more, err = fh.ReadAt(data[n:], int64(n))
		n += more
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, false, err
	}
	data = data[:n]
	ps := metaPageSize(data)
	if ps == 0 || len(data) < 2*ps {
		return nil, nil, false, errors.New("no meta page: the file is being created, or damaged")
	}
	metas = data[: 2*ps : 2*ps]
	after := make([]byte, len(metas))
	if n, err := fh.ReadAt(after, 0); n < len(after) {
		return nil, nil, false, fmt.Errorf("reading the meta pages again: %w", err)
	}
	if bytes.Equal(after, metas) {
		return data, metas, false, nil
	}
	before, ok := newestTxid(metas, ps)
	now, okNow := newestTxid(after, ps)
	if !ok || !okNow || now > before+1 {
		return nil, nil, false, errors.New("transactions committed while the file was copied")
	}
	return data, metas, true, nil
}

// metaRegion is how much copyFile reads first: room for both meta pages
// at bbolt's largest page size.
const metaRegion = 128 << 10

// copyHook, if set (by tests), runs while copyFile copies, between the
// first metaRegion bytes and the rest.
var copyHook func()

// newestTxid returns the highest transaction id of the two meta pages in
// metas (pages of ps bytes), and false if either fails its checksum (one
// being written, say).
func newestTxid(metas []byte, ps int) (uint64, bool) {
	var txid uint64
	for i := range 2 {
		m := metas[i*ps+pageHeaderSize:]
		h := fnv.New64a()
		h.Write(m[:metaSumLen])
		if native.Uint32(m) != boltMagic || native.Uint64(m[metaSumLen:]) != h.Sum64() {
			return 0, false
		}
		txid = max(txid, native.Uint64(m[48:]))
	}
	return txid, true
}

// metaPageSize returns the page size the first meta page that names bbolt's
// magic and version records (the first at 0, the second one page later),
// or 0 if neither does.
func metaPageSize(data []byte) int {
	candidates := []int{0, os.Getpagesize(), 4096, 8192, 16384, 65536}
	for i, off := range candidates {
		if len(data) < off+pageHeaderSize+12 {
			continue
		}
		m := data[off+pageHeaderSize:]
		ps := int(native.Uint32(m[8:]))
		if native.Uint32(m) != boltMagic || native.Uint32(m[4:]) != boltVersion || ps < 1024 || ps > 1<<20 || ps&(ps-1) != 0 {
			continue
		}
		if i > 0 && ps != off {
			continue // the second meta page lies one page in
		}
		return ps
	}
	return 0
}
