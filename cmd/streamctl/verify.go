package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/embedstream/stream/internal/catalog"
	"github.com/embedstream/stream/internal/log"
	"github.com/embedstream/stream/segment"
)

// verifyCommand is "verify".
func verifyCommand() *command {
	return &command{name: "verify", args: "[flags]", summary: "check every segment of every partition under -dir",
		run: verify, help: `Reads every .log file directly (no broker, nothing changed) and checks each
batch: its structure and CRC (batch.Parse), its records, and that offsets
run on without gaps within and across a partition's segments (except in a
compacted partition's cleaned part, where they only ascend). A zero-filled
tail of the last segment is preallocated space, not damage. It also checks
each partition's log-start file (DeleteRecords' mark): an offset whose
checksum matches, not past the log's end; the cleaner's files of compacted
topics: its checkpoint (below its bound, cleaned segments have offset gaps,
which are not damage) and, after a crash in a round's swap, its swap file
(the segments that swap replaces are skipped: the owner's next Open deletes
them); and meta.db, every value of it,
as Open does (a damaged or missing one costs committed offsets and topic
configs). Damage is printed one line per file, naming it; the exit status
is then 1.
The records of compressed batches are not decompressed: their CRC covers
the stored bytes, which is what recovery checks too, so verify stays as
fast as for uncompressed data. -deep decompresses them and decodes their
records as well, reporting a batch whose records do not decompress (which
readers report as corrupt, and pass) as damage.
It takes no lock: on a running application's directory meta.db is copied
between its commits, but a segment being written may end in a partial batch,
reported as damage; run it on a stopped application's directory, or a copy,
for a verdict.`}
}

// verifier checks segment files and counts what it saw.
type verifier struct {
	w          io.Writer
	verbose    bool
	deep       bool // decode the records of compressed batches too
	topics     int
	partitions int
	segments   int
	batches    int64
	records    int64
	bytes      int64
	damaged    int // segments
	badStarts  int // log-start files
	badCleaner int // cleaner checkpoint and swap files
	badMeta    bool
}

// verify runs "verify".
func verify(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	verbose := fs.Bool("v", false, "print every segment, not only damaged ones")
	deep := fs.Bool("deep", false, "decompress compressed batches and decode their records too")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if err := a.needDir(); err != nil {
		return err
	}
	w := bufio.NewWriter(a.stdout)
	v := &verifier{w: w, verbose: *verbose, deep: *deep}
	err := v.dataDir(a.dir)
	if err == nil {
		err = v.meta(a.dir)
	}
	if err == nil {
		v.summary()
	}
	if err = errors.Join(err, w.Flush()); err != nil {
		return err
	}
	if v.damaged > 0 || v.badStarts > 0 || v.badCleaner > 0 || v.badMeta {
		msg := fmt.Sprintf("damage found in %d of %d segments", v.damaged, v.segments)
		if v.badStarts > 0 {
			msg += " and " + plural(v.badStarts, "log-start file")
		}
		if v.badCleaner > 0 {
			msg += " and " + plural(v.badCleaner, "cleaner file")
		}
		if v.badMeta {
			msg += " and " + catalog.File
		}
		return errors.New(msg)
	}
	return nil
}

// meta checks dir's meta.db as Open does, on a copy: it writes nothing.
func (v *verifier) meta(dir string) error {
	path := filepath.Join(dir, catalog.File)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		v.badMeta = true
		fmt.Fprintf(v.w, "MISSING %s: topic configs and committed offsets are lost\n", path)
		return nil
	}
	rolledBack, err := catalog.Check(path)
	switch {
	case errors.Is(err, catalog.ErrDamaged):
		v.badMeta = true
		fmt.Fprintf(v.w, "DAMAGED %s: %v\n", path, err)
	case err != nil:
		return err
	case rolledBack:
		v.badMeta = true
		fmt.Fprintf(v.w, "DAMAGED %s: the newest transaction's meta page; it opens at the one before, and the last commit may be lost\n", path)
	}
	return nil
}

// dataDir checks every topic under dir.
func (v *verifier) dataDir(dir string) error {
	root := filepath.Join(dir, "topics")
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("no topics under %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") { // .deleted-*: a deletion in progress
			continue
		}
		v.topics++
		parts, err := partitionDirs(filepath.Join(root, e.Name()))
		if err != nil {
			return err
		}
		for _, p := range parts {
			if err := v.partition(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// partition checks a partition's segments, and that each starts where the
// previous one ended.
func (v *verifier) partition(dir string) error {
	v.partitions++
	logs, err := partitionLogs(dir)
	if err != nil {
		return err
	}
	gaps, ok, err := cleanedBound(dir)
	if err != nil {
		return err
	}
	if !ok {
		v.badCleaner++
		fmt.Fprintf(v.w, "DAMAGED %s: not a cleaner checkpoint with its checksum (Open reads the log as never cleaned, with gaps allowed anywhere)\n",
			filepath.Join(dir, log.CheckpointFile))
	}
	if logs, err = v.pendingSwap(dir, logs); err != nil {
		return err
	}
	next := int64(-1)
	for i, path := range logs {
		s, err := scanSegmentFile(path, v.deep, gaps, nil)
		if err != nil {
			return err
		}
		v.count(s)
		v.report(s, problem(s, next, i == len(logs)-1))
		next = s.next
		if s.damage != nil {
			next = -1
		}
	}
	return v.logStart(dir, next)
}

// pendingSwap reads a partition's cleaner swap file, if it has one: a
// cleaning round committed but whose swap a crash interrupted, which the
// owner's next Open finishes. It returns logs without the segments that
// swap replaces (a new segment already moved in holds what they held).
func (v *verifier) pendingSwap(dir string, logs []string) ([]string, error) {
	path := filepath.Join(dir, log.SwapFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return logs, nil
	}
	if err != nil {
		return nil, err
	}
	ranges, ok := log.ParseSwap(data)
	if !ok {
		v.badCleaner++
		fmt.Fprintf(v.w, "DAMAGED %s: not a cleaner swap file with its checksum (Open fails on it)\n", path)
		return logs, nil
	}
	var keep []string
	replaced := 0
	for _, l := range logs {
		base, _ := segmentBase(l)
		if slices.ContainsFunc(ranges, func(r [2]int64) bool { return base > r[0] && base < r[1] && v.movedIn(dir, r[0]) }) {
			replaced++
			continue
		}
		keep = append(keep, l)
	}
	fmt.Fprintf(v.w, "UNFINISHED %s: a cleaning round's swap, which the owner's next Open finishes; %s it replaces not checked\n",
		path, plural(replaced, "segment"))
	return keep, nil
}

// movedIn reports whether a swap has moved the new segment at base out of
// the cleaning directory.
func (v *verifier) movedIn(dir string, base int64) bool {
	_, err := os.Lstat(filepath.Join(dir, log.CleanDir, segment.FileName(base, segment.LogSuffix)))
	return errors.Is(err, os.ErrNotExist)
}

// logStart checks a partition's log-start file, if it has one, against the
// end of its log (next, -1 if unknown). A start below the first segment is
// fine: retention deletes segments without rewriting the file.
func (v *verifier) logStart(dir string, next int64) error {
	path := filepath.Join(dir, log.StartFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	start, ok := log.ParseStart(data)
	var problem string
	switch {
	case !ok:
		problem = fmt.Sprintf("not a log start offset with its checksum: %q", data)
	case next >= 0 && start > next:
		problem = fmt.Sprintf("log start offset %d is past the log's end, %d", start, next)
	}
	if problem != "" {
		v.badStarts++
		fmt.Fprintf(v.w, "DAMAGED %s: %s\n", path, problem)
	}
	return nil
}

// problem returns what is wrong with a scanned segment, "" if nothing:
// damage, a gap after the previous segment (ending at next, -1 if unknown),
// or a zero tail in a sealed segment (which recovery would cut, losing the
// offsets up to the next segment).
func problem(s *segmentScan, next int64, last bool) string {
	switch {
	case s.damage != nil:
		return s.damage.Error()
	case next >= 0 && s.base != next && !gapOK(next, s.base, s.gapsBelow):
		return fmt.Sprintf("starts at offset %d, but the previous segment ends at %d", s.base, next)
	case s.zeroTail > 0 && !last:
		return fmt.Sprintf("zero-filled tail of %d bytes at position %d in a sealed segment", s.zeroTail, s.valid)
	}
	return ""
}

// count adds a scanned segment to the totals.
func (v *verifier) count(s *segmentScan) {
	v.segments++
	v.batches += s.batches
	v.records += s.records
	v.bytes += s.valid
}

// report prints a segment's problem, or with -v that it is fine.
func (v *verifier) report(s *segmentScan, problem string) {
	switch {
	case problem != "":
		v.damaged++
		fmt.Fprintf(v.w, "DAMAGED %s: %s\n", s.path, problem)
	case v.verbose:
		fmt.Fprintf(v.w, "ok %s: %s, %s, %s\n", s.path, plural(s.batches, "batch"), plural(s.records, "record"), plural(s.valid, "byte"))
	}
}

// summary prints the totals.
func (v *verifier) summary() {
	fmt.Fprintf(v.w, "verified %s, %s, %s: %s, %s, %s; %d damaged\n", plural(v.topics, "topic"), plural(v.partitions, "partition"),
		plural(v.segments, "segment"), plural(v.batches, "batch"), plural(v.records, "record"), plural(v.bytes, "byte"), v.damaged+v.badStarts+v.badCleaner)
}
