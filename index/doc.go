// Package index implements the two sparse indexes that sit beside each log
// segment, so a reader finds a record without scanning the whole segment.
//
// # On-disk format
//
// Both files are flat arrays of fixed-size, big-endian entries (Kafka's own
// layout), sorted ascending, with no header:
//
//	.index      8 bytes per entry
//	  0  relativeOffset uint32   first offset of a batch, minus the segment's base offset
//	  4  position       uint32   byte position of that batch in the .log file
//
//	.timeindex 12 bytes per entry
//	  0  timestamp      int64    largest record timestamp (ms) at or before the offset
//	  8  relativeOffset uint32   last offset of the batch that carried it, minus the base
//
// An offset entry is added for a batch when at least IntervalBytes of log have
// been written since the previous entry, so the index stays small (about 2 MiB
// for a 1 GiB segment) and a lookup scans at most ~4 KiB of log. A time entry is
// added at the same moments when the segment's largest timestamp has grown.
// Entries are strictly increasing in both fields; the first offset entry's
// position is never 0 (the first batch needs no entry), so a zero-filled tail
// can never pass for entries.
//
// While its segment is active an index file is grown in steps with fallocate
// and written through a shared mapping; when the segment is sealed the file is
// cut to its entries. The indexes are caches: whenever one fails validation it
// is rebuilt from the log, and nothing is lost.
package index
