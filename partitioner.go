package stream

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// AnyPartition is a Partitioner's "no preference" answer: the record is
// then placed stickily, records without a key going to one partition for a
// whole batch, then the next (Kafka's KIP-794 uniform sticky placement), so
// batches stay large and the spread even. Under ManualPartitioner, a record
// whose Partition is AnyPartition is placed the same way. A record never
// needs it otherwise: its Partition is ignored on publish unless the
// partitioner is ManualPartitioner.
const AnyPartition int32 = -1

// A Partitioner places every record published through a Broker or Producer
// that uses it, as a partitioner does in franz-go and sarama: Record.Partition
// is an input only to the partitioners that read it (ManualPartitioner).
// Partition must return a number in [0, partitions) or AnyPartition (no
// preference: place it stickily); anything else fails the record with
// ErrInvalidPartition. It must be safe for concurrent use.
type Partitioner interface {
	Partition(r *Record, partitions int) int32
}

// HashPartitioner, the default, places a keyed record by the xxhash of its
// key, so one key always lands on one partition while the partition count
// stays the same. A nil key is keyless (placed stickily); an empty,
// non-nil key is a key like any other.
type HashPartitioner struct{}

// Partition implements Partitioner.
func (HashPartitioner) Partition(r *Record, partitions int) int32 {
	if r.Key == nil {
		return AnyPartition
	}
	return int32(xxhash.Sum64(r.Key) % uint64(partitions))
}

// KafkaPartitioner places keyed records exactly as the Java client's default
// partitioner does: (murmur2(key) & 0x7fffffff) % partitions. Use it when
// the same keys must land on the same partitions here and on a Kafka cluster.
type KafkaPartitioner struct{}

// Partition implements Partitioner.
func (KafkaPartitioner) Partition(r *Record, partitions int) int32 {
	if r.Key == nil {
		return AnyPartition
	}
	return int32((murmur2(r.Key) & 0x7fffffff) % int32(partitions))
}

// murmur2 is the 32-bit MurmurHash2 variant of Kafka's Utils.murmur2 (seed
// 0x9747b28c, little-endian words), returning Java's signed int.
func murmur2(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(data))
	n := len(data) &^ 3
	for i := 0; i < n; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(data) & 3 {
	case 3:
		h ^= uint32(data[n+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[n+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[n])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// RoundRobinPartitioner deals records to partitions in turn, ignoring keys
// (Kafka's RoundRobinPartitioner). Use a pointer: the counter is its state.
type RoundRobinPartitioner struct {
	next atomic.Uint32
}

// Partition implements Partitioner.
func (p *RoundRobinPartitioner) Partition(_ *Record, partitions int) int32 {
	return int32((p.next.Add(1) - 1) % uint32(partitions))
}

// ManualPartitioner places each record on the partition its Partition
// names (franz-go's kgo.ManualPartitioner, Kafka's explicit partition): the
// only partitioner that reads Record.Partition. A record left at
// AnyPartition is placed stickily; a partition the topic lacks fails the
// record with ErrInvalidPartition. Set it in Options.Partitioner for a
// Broker's Publish or in ProducerOptions.Partitioner for one Producer.
type ManualPartitioner struct{}

// Partition implements Partitioner.
func (ManualPartitioner) Partition(r *Record, _ int) int32 { return r.Partition }
