package catalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// bbolt's file format (version 2), as far as checkPages reads it. Every
// page starts with a 16-byte header: id uint64, flags uint16, count uint16,
// overflow uint32 (pages after this one that belong to it). Integers are in
// the machine's byte native.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	elementSize    = 16 // a branch element: pos, ksize uint32, child uint64; a leaf's: flags, pos, ksize, vsize uint32
	bucketHeader   = 16 // a bucket's value: root page uint64 (0: inline, a page follows), sequence uint64
	metaSumLen     = 56 // the meta's fields before its checksum

	branchPage   = 0x01
	leafPage     = 0x02
	metaPageFlag = 0x04
	freelistPage = 0x10
	bucketLeaf   = 0x01 // leaf element flag: the value is a bucket

	noFreelist = ^uint64(0)
	maxTree    = 64 // deeper than any real tree: a chain of damaged branch pages
)

var native = binary.NativeEndian

// emptyStore returns the four pages of a new bbolt file with page size ps,
// as bbolt's DB.init writes them: meta pages 0 and 1 (transactions 0 and
// 1), each naming freelist page 2 and root leaf page 3, with 4 pages in
// use; an empty freelist page; an empty leaf page. A meta page holds, after
// its header: magic, version, page size, flags uint32; the root bucket
// (root page, sequence uint64); freelist, pgid, txid uint64; then the
// FNV-1a 64 checksum of those 56 bytes.
func emptyStore(ps int) []byte {
	buf := make([]byte, 4*ps)
	for i := range 2 {
		p := buf[i*ps:]
		native.PutUint64(p, uint64(i))
		native.PutUint16(p[8:], metaPageFlag)
		m := p[pageHeaderSize:]
		native.PutUint32(m, boltMagic)
		native.PutUint32(m[4:], boltVersion)
		native.PutUint32(m[8:], uint32(ps))
		native.PutUint64(m[16:], 3) // root bucket's page; its sequence stays 0
		native.PutUint64(m[32:], 2) // freelist
		native.PutUint64(m[40:], 4) // pgid: pages in use
		native.PutUint64(m[48:], uint64(i))
		h := fnv.New64a()
		h.Write(m[:metaSumLen])
		native.PutUint64(m[metaSumLen:], h.Sum64())
	}
	native.PutUint64(buf[2*ps:], 2)
	native.PutUint16(buf[2*ps+8:], freelistPage)
	native.PutUint64(buf[3*ps:], 3)
	native.PutUint16(buf[3*ps+8:], leafPage)
	return buf
}

// checkPages checks, from the file's bytes, every page the meta page in
// use reaches: the freelist, and every bucket's tree, following branch
// pages and bucket values. Each must lie before the high-water mark, name
// itself in its header, have the type its parent expects, keep its
// elements inside it, and be reached once: bbolt trusts all of this, and
// on a page that breaks it panics, faults, or (a cycle of branch pages)
// descends forever. tx is a read transaction of db, opened on f's file.
// rolledBack says one meta page failed its checksum, so bbolt opened the
// store at the transaction before the newest: its writes may be lost.
func checkPages(f *os.File, db *bolt.DB, tx *bolt.Tx) (rolledBack bool, err error) {
	ps := uint64(db.Info().PageSize)
	c := &pageChecker{f: f, ps: ps, hwm: uint64(tx.Size()) / ps, seen: map[uint64]bool{}}
	m, err := c.meta(uint64(tx.ID()))
	if err != nil {
		return false, err
	}
	if m.root != uint64(tx.Cursor().Bucket().Root()) {
		return false, errors.New("meta pages disagree with bbolt's")
	}
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return false, err
		}
	}
	return c.rolledBack, c.tree(m.root, 0, 0)
}

type pageChecker struct {
	f    *os.File
	ps   uint64 // page size
	hwm  uint64 // pages [0, hwm) are in use or free
	seen map[uint64]bool

	rolledBack bool // one meta page fails its checksum: bbolt uses the other
}

type metaPage struct{ root, freelist, pgid, txid uint64 }

// meta finds the meta page bbolt uses, as bbolt picks it (the valid one
// with the higher transaction id), and checks it is the one of txid.
func (c *pageChecker) meta(txid uint64) (metaPage, error) {
	var metas []metaPage
	for i := range uint64(2) {
		buf := make([]byte, pageHeaderSize+metaSumLen+8)
		if _, err := c.f.ReadAt(buf, int64(i*c.ps)); err != nil {
			continue
		}
		m := buf[pageHeaderSize:]
		h := fnv.New64a()
		h.Write(m[:metaSumLen])
		if native.Uint32(m) != boltMagic || native.Uint32(m[4:]) != boltVersion || native.Uint64(m[metaSumLen:]) != h.Sum64() {
			continue
		}
		metas = append(metas, metaPage{root: native.Uint64(m[16:]), freelist: native.Uint64(m[32:]), pgid: native.Uint64(m[40:]), txid: native.Uint64(m[48:])})
	}
	c.rolledBack = len(metas) == 1
	if len(metas) == 2 && metas[1].txid > metas[0].txid {
		metas = metas[1:]
	}
	if len(metas) == 0 || metas[0].txid != txid || metas[0].pgid != c.hwm {
		return metaPage{}, errors.New("meta pages disagree with bbolt's")
	}
	return metas[0], nil
}

// page reads page id, with its overflow pages, once.
func (c *pageChecker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d is outside the pages in use [2, %d)", id, c.hwm)
	}
	head := make([]byte, pageHeaderSize)
	if err := c.read(head, id); err != nil {
		return nil, err
	}
	over := uint64(native.Uint32(head[12:]))
	switch {
	case native.Uint64(head) != id:
		return nil, fmt.Errorf("page %d names itself %d", id, native.Uint64(head))
	case over >= c.hwm-id:
		return nil, fmt.Errorf("page %d overflows past the pages in use", id)
	}
	for p := id; p <= id+over; p++ {
		if c.seen[p] {
			return nil, fmt.Errorf("page %d is reached twice", p)
		}
		c.seen[p] = true
	}
	buf := make([]byte, (over+1)*c.ps)
	if err := c.read(buf, id); err != nil {
		return nil, err
	}
	return buf, nil
}

func (c *pageChecker) read(buf []byte, id uint64) error {
	_, err := c.f.ReadAt(buf, int64(id*c.ps))
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("page %d is past the end of the file", id)
	}
	return err
}

// freelist checks the freelist page: its count (0xFFFF: the count is the
// first element) fits the page, and it frees only pages in use.
func (c *pageChecker) freelist(id uint64) error {
	buf, err := c.page(id)
	if err != nil {
		return err
	}
	if native.Uint16(buf[8:]) != freelistPage {
		return fmt.Errorf("freelist page %d has type %#x", id, native.Uint16(buf[8:]))
	}
	ids := buf[pageHeaderSize:]
	n := uint64(native.Uint16(buf[10:]))
	if n == 0xFFFF {
		if len(ids) < 8 {
			return fmt.Errorf("freelist page %d is cut short", id)
		}
		n, ids = native.Uint64(ids), ids[8:]
	}
	if n > uint64(len(ids))/8 {
		return fmt.Errorf("freelist page %d lists %d pages, more than it holds", id, n)
	}
	for i := range n {
		if free := native.Uint64(ids[i*8:]); free < 2 || free >= c.hwm {
			return fmt.Errorf("freelist page %d frees page %d, outside the pages in use", id, free)
		}
	}
	return nil
}

// tree checks the branch or leaf page id and everything under it, depth
// levels below its bucket's root, in a bucket nested nest deep.
func (c *pageChecker) tree(id uint64, depth, nest int) error {
	if depth > maxTree {
		return fmt.Errorf("page %d is %d levels deep", id, depth)
	}
	buf, err := c.page(id)
	if err != nil {
		return err
	}
	switch native.Uint16(buf[8:]) {
	case leafPage:
		return c.leaf(buf, nest)
	case branchPage:
		elems, err := elements(buf)
		if err != nil {
			return fmt.Errorf("page %d: %w", id, err)
		}
		for _, e := range elems {
			if _, err := value(buf, e, 0, 0); err != nil {
				return fmt.Errorf("page %d: %w", id, err)
			}
			if err := c.tree(native.Uint64(buf[e+8:]), depth+1, nest); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("page %d has type %#x where a branch or leaf page belongs", id, native.Uint16(buf[8:]))
	}
}

// leaf checks a leaf page (buf, a page or an inline bucket's) and the
// buckets its values hold.
func (c *pageChecker) leaf(buf []byte, nest int) error {
	elems, err := elements(buf)
	if err != nil {
		return err
	}
	for _, e := range elems {
		v, err := value(buf, e, 4, native.Uint32(buf[e+12:]))
		if err != nil {
			return err
		}
		if native.Uint32(buf[e:])&bucketLeaf == 0 {
			continue
		}
		if nest >= maxDepth {
			return fmt.Errorf("buckets nested deeper than %d", maxDepth)
		}
		if len(v) < bucketHeader {
			return errors.New("a bucket's value is cut short")
		}
		if root := native.Uint64(v); root != 0 {
			err = c.tree(root, 0, nest+1)
		} else if inline := v[bucketHeader:]; len(inline) < pageHeaderSize || native.Uint16(inline[8:]) != leafPage {
			err = errors.New("an inline bucket is no leaf page")
		} else {
			err = c.leaf(inline, nest+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// elements returns the offsets of a page's elements, checking they fit.
func elements(buf []byte) ([]int, error) {
	n := int(native.Uint16(buf[10:]))
	if pageHeaderSize+n*elementSize > len(buf) {
		return nil, fmt.Errorf("%d elements do not fit the page", n)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = pageHeaderSize + i*elementSize
	}
	return out, nil
}

// value returns the bytes after the key of element e (vsize of them),
// checking key and value lie inside buf. The element's pos (relative to
// the element) is at posAt, its ksize right after.
func value(buf []byte, e, posAt int, vsize uint32) ([]byte, error) {
	start := uint64(e) + uint64(native.Uint32(buf[e+posAt:])) + uint64(native.Uint32(buf[e+posAt+4:]))
	if end := start + uint64(vsize); end > uint64(len(buf)) {
		return nil, errors.New("an element runs past its page")
	}
	return buf[start : start+uint64(vsize)], nil
}
