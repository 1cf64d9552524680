// Package stream is an embedded, durable streaming engine with Kafka's model:
// topics split into partitions, each partition an append-only log of records
// addressed by offset, kept in a directory on local disk.
//
// # Status
//
// The storage layer is complete: each partition is a log of segment files in
// Kafka's own RecordBatch v2 format (package segment), with sparse offset and
// time indexes (package index), zero-copy reads through reference-counted
// memory mappings, crash recovery, size- and age-based segment rolling,
// retention by time and bytes, and three durability policies (SyncPolicy). The
// public Broker, Producer, Consumer and Reader API described in the project's
// API contract is built on top of it next.
//
// # Durability
//
// A SyncPolicy decides when appended data is fsynced: SyncInterval (the
// default) every Options.SyncInterval, SyncNever when the OS decides, and
// SyncAlways before an append returns, with concurrent appenders sharing one
// fsync. A process crash loses nothing that was appended under any policy; a
// machine crash loses at most what the policy left unsynced. An fsync failure
// is final for its partition: writes then fail with ErrSyncFailed, because the
// kernel may already have dropped the unsynced pages and a retried fsync would
// report success for data that is gone.
//
// # Recovery
//
// On open, a partition that was not closed cleanly has its active segment
// scanned batch by batch (length, CRC-32C, offsets in sequence); the first
// bad, partial or zero-filled batch and everything after it is cut away, and
// the indexes are rebuilt. Sealed segments have their tails verified. Damage
// never stops an open; it is logged and counted.
//
// # Caveats
//
// Records read from a log alias the memory-mapped segment file: their keys,
// values and header values are valid only until the view they came from is
// released (for the public API: until the consumer's next Poll, or the
// Reader's next Next). Copy what you keep (Record.Clone).
package stream
