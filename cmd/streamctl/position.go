package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/embedstream/stream"
)

// positionKind says how a position names an offset.
type positionKind int

// The kinds of position.
const (
	atStart     positionKind = iota // the log start: earliest, beginning, start
	atEnd                           // the log end: latest, end
	atOffset                        // an absolute offset: N
	beforeEnd                       // n before the end: -N, the last N records
	afterStart                      // n after the start: +N
	atTimestamp                     // the first offset at or after a time
)

// position is where reading starts in a partition (consume -from) or where
// a group's committed offset goes (groups reset-offsets -to), as kcat's -o
// names it: symbolic, absolute, relative to either end, or a time.
type position struct {
	kind positionKind
	n    int64     // the offset of atOffset; the count of beforeEnd and afterStart
	time time.Time // of atTimestamp
}

// positionHelp describes the positions parsePosition reads, for usages.
const positionHelp = `POSITION is one of: earliest (or beginning, start); latest (or end); an
OFFSET; -N, the last N records (N before the end); +N, N after the start; or
a TIME: RFC 3339 (2006-01-02T15:04:05Z), now, -DURATION back from now (-90m),
or s@MS, milliseconds since 1970 (kcat's form). Relative positions stop at the
log's ends: -5 of a partition holding 3 records is its start.`

// parsePosition reads a position (see positionHelp).
func parsePosition(s string, now time.Time) (position, error) {
	switch s {
	case "earliest", "beginning", "start":
		return position{kind: atStart}, nil
	case "latest", "end":
		return position{kind: atEnd}, nil
	}
	if ms, ok := strings.CutPrefix(s, "s@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return position{}, fmt.Errorf("bad timestamp %q: want s@ and milliseconds since 1970", s)
		}
		return position{kind: atTimestamp, time: time.UnixMilli(n)}, nil
	}
	if digits, sign := strings.TrimLeft(s, "+-"), s[:min(len(s), 1)]; isDigits(digits) {
		n, err := strconv.ParseInt(digits, 10, 64)
		switch {
		case err != nil:
			return position{}, fmt.Errorf("bad offset %q: %w", s, err)
		case len(s)-len(digits) > 1:
			return position{}, fmt.Errorf("bad offset %q", s)
		case sign == "-":
			return position{kind: beforeEnd, n: n}, nil
		case sign == "+":
			return position{kind: afterStart, n: n}, nil
		}
		return position{kind: atOffset, n: n}, nil
	}
	t, err := parseTime(s, now)
	if err != nil {
		return position{}, fmt.Errorf("bad position %q: want earliest, latest, OFFSET, -N, +N or a TIME (RFC 3339, now, -DURATION, s@MS)", s)
	}
	return position{kind: atTimestamp, time: t}, nil
}

// isDigits reports whether s is a non-empty string of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// resolve returns the offset p names in a partition of topic. An absolute
// offset is returned as given, even outside the log; relative ones stop at
// the log's ends; a time after every record is the end, as in Kafka.
func (p position) resolve(b *stream.Broker, topic string, part stream.PartitionInfo) (int64, error) {
	switch p.kind {
	case atStart:
		return part.StartOffset, nil
	case atEnd:
		return part.EndOffset, nil
	case atOffset:
		return p.n, nil
	case beforeEnd:
		return max(part.EndOffset-p.n, part.StartOffset), nil
	case afterStart:
		return part.StartOffset + min(p.n, part.EndOffset-part.StartOffset), nil
	}
	off, err := b.OffsetForTime(topic, part.Partition, p.time)
	if off < 0 {
		off = part.EndOffset // every record is older: the end, as Kafka does
	}
	return off, err
}

// readFrom is the position as a Reader's starting point in a partition:
// the symbolic ones and times as the Reader resolves them, the others as
// an offset. strict keeps an absolute offset outside the log as it is,
// for the Reader to refuse; otherwise it is clamped into the log.
func (p position) readFrom(b *stream.Broker, topic string, part stream.PartitionInfo, strict bool) (stream.Offset, error) {
	switch p.kind {
	case atStart:
		return stream.OffsetEarliest, nil
	case atEnd:
		return stream.OffsetLatest, nil
	case atTimestamp:
		return stream.AtTime(p.time), nil
	}
	off, err := p.resolve(b, topic, part)
	if !strict {
		off, _ = clamp(off, part)
	}
	return stream.AtOffset(off), err
}

// clamp moves off into the partition's log, [start, end], as
// kafka-consumer-groups.sh does with a reset outside it, and reports
// whether it had to.
func clamp(off int64, part stream.PartitionInfo) (int64, bool) {
	switch {
	case off < part.StartOffset:
		return part.StartOffset, true
	case off > part.EndOffset:
		return part.EndOffset, true
	}
	return off, false
}
