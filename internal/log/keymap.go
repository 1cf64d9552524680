package log

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// KeyMap is a cleaning round's map from key to the offset of the key's
// latest record (Kafka's SkimpyOffsetMap): keys are kept as 64-bit xxhash
// digests, 16 bytes an entry, in an open-addressed table that grows by
// doubling up to a memory cap and then refuses new keys, which ends the
// round's map early (the rest of the log is cleaned by later rounds).
//
// Two keys with the same digest count as one: the older one's live record
// would be removed. Among n keys of a round the chance of any such pair is
// about n²/2⁶⁵: 3·10⁻¹² for 10,000 keys, 7·10⁻⁷ for 5 million (Kafka takes
// the same risk with a 128-bit digest).
//
// A KeyMap is reused across rounds (Reset keeps its table) and is not safe
// for concurrent use.
type KeyMap struct {
	slots    []keySlot
	used     int
	maxSlots int
}

type keySlot struct {
	hash   uint64 // 0: empty (a zero digest is stored as 1)
	offset int64
}

// keySlotBytes is the memory an entry takes, for the cap.
const keySlotBytes = 16

// keyMapLoad is the share of slots that may be used before the table
// grows, or, at its cap, stops taking keys (Kafka's
// log.cleaner.io.buffer.load.factor).
const keyMapLoad = 0.9

// minKeySlots is the table's first size.
const minKeySlots = 1 << 12

// NewKeyMap returns a map that uses at most maxBytes (at least one
// table of its first size).
func NewKeyMap(maxBytes int64) *KeyMap {
	// Growing holds the old table beside the new, twice its size: the
	// largest table is at most 2/3 of the cap.
	n := max(maxBytes/keySlotBytes*2/3, minKeySlots)
	// A power of two at or below the cap, so growth by doubling lands on it.
	return &KeyMap{maxSlots: 1 << (bits.Len64(uint64(n)) - 1)}
}

// Reset empties the map, keeping its table.
func (m *KeyMap) Reset() {
	clear(m.slots)
	m.used = 0
}

// Len is how many keys the map holds.
func (m *KeyMap) Len() int { return m.used }

// Bytes is the memory the map's table takes.
func (m *KeyMap) Bytes() int64 { return int64(len(m.slots)) * keySlotBytes }

func keyHash(key []byte) uint64 {
	h := xxhash.Sum64(key)
	if h == 0 {
		h = 1
	}
	return h
}

// Put records offset as key's latest, and reports false, changing nothing,
// if the map is full (at its cap, a new key would pass its load).
func (m *KeyMap) Put(key []byte, offset int64) bool {
	h := keyHash(key)
	if len(m.slots) == 0 {
		m.slots = make([]keySlot, min(minKeySlots, m.maxSlots))
	}
	if i, found := m.find(h); found {
		m.slots[i].offset = offset
		return true
	}
	if float64(m.used+1) > keyMapLoad*float64(len(m.slots)) {
		if len(m.slots) >= m.maxSlots {
			return false
		}
		m.grow()
	}
	i, _ := m.find(h)
	m.slots[i] = keySlot{hash: h, offset: offset}
	m.used++
	return true
}

// Get returns the offset of key's latest record, or -1 if the map does not
// have the key.
func (m *KeyMap) Get(key []byte) int64 {
	if m.used == 0 {
		return -1
	}
	if i, found := m.find(keyHash(key)); found {
		return m.slots[i].offset
	}
	return -1
}

// find returns h's slot, or the empty slot where it would go.
func (m *KeyMap) find(h uint64) (int, bool) {
	mask := uint64(len(m.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch m.slots[i].hash {
		case h:
			return int(i), true
		case 0:
			return int(i), false
		}
	}
}

func (m *KeyMap) grow() {
	old := m.slots
	m.slots = make([]keySlot, 2*len(old))
	for _, s := range old {
		if s.hash != 0 {
			i, _ := m.find(s.hash)
			m.slots[i] = s
		}
	}
}
