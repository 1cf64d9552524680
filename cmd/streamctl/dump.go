package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/embedstream/stream/batch"
	"github.com/embedstream/stream/segment"
)

// dumpCommand is "dump": kafka-dump-log.sh.
func dumpCommand() *command {
	return &command{name: "dump", args: "-topic T [-partition N] [flags] | FILE.log...", summary: "print a segment file's batches and records",
		run: dump, help: `Reads the .log files directly (package segment), without a broker, and never
changes them: FILE.log arguments, or every segment of a topic's partitions under
-dir. Each batch shows its base and last offset, record count, position, size,
CRC (checked), attributes and timestamps, its codec and, if compressed, the
bytes its records take stored and decompressed and their ratio (stored over
decompressed), followed by its records (or not, with -records=false).
Compressed records are decompressed to be shown; records that do not
decompress are damage.
Damage (a bad CRC, structure or offset) ends a file's dump and the exit status
is 1; a zero-filled tail (preallocated, never written) is not damage.`}
}

// dump runs "dump".
func dump(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	topic := fs.String("topic", "", "dump the segments of this `topic` under -dir")
	var partition int
	partitionVar(fs, &partition, "only this `partition` of -topic (default: all)")
	records := fs.Bool("records", true, "print each batch's records; -records=false prints batch headers only")
	files, err := a.parse(fs, args, -1, false)
	if err != nil {
		return err
	}
	if (*topic == "") == (len(files) == 0) {
		return a.usagef("give either -topic or FILE.log arguments")
	}
	for _, f := range files {
		if !strings.HasSuffix(f, segment.LogSuffix) {
			return a.usagef("%s is not a segment log (want a %s file)", f, segment.LogSuffix)
		}
	}
	if *topic != "" {
		if files, err = a.topicLogs(*topic, partition); err != nil {
			return err
		}
	}
	w := bufio.NewWriter(a.stdout)
	err = dumpFiles(w, files, *records)
	return errors.Join(err, w.Flush())
}

// topicLogs returns the .log files of a topic's partitions (all for -1).
func (a *app) topicLogs(topic string, partition int) ([]string, error) {
	if err := a.needDir(); err != nil {
		return nil, err
	}
	dirs := []string{filepath.Join(a.dir, "topics", topic, strconv.Itoa(partition))}
	if partition < 0 {
		var err error
		if dirs, err = partitionDirs(filepath.Join(a.dir, "topics", topic)); err != nil {
			return nil, fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	var files []string
	for _, d := range dirs {
		logs, err := partitionLogs(d)
		if err != nil {
			return nil, fmt.Errorf("topic %q: %w", topic, err)
		}
		files = append(files, logs...)
	}
	return files, nil
}

// dumpFiles dumps each file; damage is reported after all were dumped.
func dumpFiles(w io.Writer, files []string, records bool) error {
	var damaged []string
	for i, f := range files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		s, err := dumpFile(w, f, records)
		if err != nil {
			return err
		}
		if s.damage != nil {
			damaged = append(damaged, f)
		}
	}
	if len(damaged) > 0 {
		return fmt.Errorf("damage in %s", strings.Join(damaged, ", "))
	}
	return nil
}

// dumpFile prints one segment file.
func dumpFile(w io.Writer, path string, records bool) (*segmentScan, error) {
	fmt.Fprintf(w, "Dumping %s\n", path)
	if base, ok := segmentBase(path); ok {
		fmt.Fprintf(w, "Starting offset: %d\n", base)
	}
	// A cleaned segment has offset gaps; a damaged checkpoint allows them
	// everywhere, as Open does.
	gaps, _, err := cleanedBound(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var buf []byte
	s, err := scanSegmentFile(path, false, gaps, func(pos int64, b batch.Batch) error {
		// Decompressed once, for the ratio and the records both.
		plain := b
		var derr error
		if b.Codec() != batch.None && b.Codec().Valid() {
			plain, derr = batch.Decompress(buf[:0], b)
			if derr == nil {
				buf = plain[:0]
			}
		}
		printBatch(w, pos, b, plain)
		if derr != nil {
			return &damageError{derr} // the scan reports it, as for any damage
		}
		if records {
			return printRecords(w, plain)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	printScanSummary(w, s)
	return s, nil
}

// printBatch prints a batch header; plain is b decompressed (b itself if
// it is not compressed, nil if it did not decompress).
func printBatch(w io.Writer, pos int64, b, plain batch.Batch) {
	fmt.Fprintf(w, "baseOffset: %d lastOffset: %d count: %d position: %d size: %d crc: %#08x crcValid: %t attributes: %#x baseTimestamp: %s maxTimestamp: %s codec: %v",
		b.BaseOffset(), b.LastOffset(), b.NumRecords(), pos, b.Size(), b.CRC(), b.CRC() == b.ComputeCRC(),
		b.Attributes(), formatMillis(b.BaseTimestamp()), formatMillis(b.MaxTimestamp()), b.Codec())
	if h, ok := b.DeleteHorizon(); ok {
		fmt.Fprintf(w, " deleteHorizon: %s", formatMillis(h)) // kafka-dump-log's deleteHorizonMs
	}
	if c := b.Codec(); c != batch.None && c.Valid() && plain != nil {
		stored, raw := len(b)-batch.HeaderSize, len(plain)-batch.HeaderSize
		fmt.Fprintf(w, " recordBytes: %d stored: %d ratio: %.3f", raw, stored, float64(stored)/float64(max(raw, 1)))
	}
	fmt.Fprintln(w)
}

// printRecords prints a batch's records; b is uncompressed (see dumpFile).
func printRecords(w io.Writer, b batch.Batch) error {
	it := b.Records()
	var r batch.Record
	for it.Next(&r) {
		fmt.Fprintf(w, "| offset: %d timestamp: %s key: %s value: %s headers: [%s]\n",
			r.Offset, formatMillis(r.Timestamp), displayBytes(r.Key), displayBytes(r.Value), displayHeaders(r.Headers))
	}
	switch err := it.Err(); {
	case errors.Is(err, batch.ErrUnsupported):
		fmt.Fprintf(w, "| records not shown: %v\n", err)
	case err != nil:
		// Decompressed records the scan did not decode; an uncompressed
		// batch's it did, and reported.
		return &damageError{err}
	}
	return nil
}

// displayHeaders prints headers as k="v", ...
func displayHeaders(hs []batch.Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = strconv.Quote(h.Key) + "=" + displayBytes(h.Value)
	}
	return strings.Join(parts, ", ")
}

// printScanSummary prints what scanning a file found.
func printScanSummary(w io.Writer, s *segmentScan) {
	fmt.Fprintf(w, "Summary: %s, %s, %s of batches in a %d-byte file",
		plural(s.batches, "batch"), plural(s.records, "record"), plural(s.valid, "byte"), s.size)
	if s.zeroTail > 0 {
		fmt.Fprintf(w, ", zero-filled tail of %d bytes (preallocated, not damage)", s.zeroTail)
	}
	fmt.Fprintln(w)
	if s.damage != nil {
		fmt.Fprintf(w, "DAMAGE %s: %v\n", s.path, s.damage)
	}
}
