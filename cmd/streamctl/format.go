package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/embedstream/stream"
)

// timeLayout prints record timestamps: RFC 3339 in UTC, to the millisecond
// (the precision records keep).
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// formatTime prints t with timeLayout.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// formatMillis prints a timestamp in ms since the epoch, and as a time.
func formatMillis(ms int64) string {
	return strconv.FormatInt(ms, 10) + " (" + formatTime(time.UnixMilli(ms)) + ")"
}

// plural prints n and word, in the plural unless n is 1: "1 record",
// "2 records", "3 batches".
func plural[N int | int64](n N, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "ch") {
		word += "e"
	}
	return strconv.FormatInt(int64(n), 10) + " " + word + "s"
}

// jsonRecord is a record as consume and replay print it, one JSON object a
// line. Bytes are strings when valid UTF-8, else base64 with the matching
// *_encoding field set to "base64"; null stays null.
type jsonRecord struct {
	Topic         string       `json:"topic"`
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     string       `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyEncoding   string       `json:"key_encoding,omitempty"`
	Value         *string      `json:"value"`
	ValueEncoding string       `json:"value_encoding,omitempty"`
	Headers       []jsonHeader `json:"headers"`
}

// jsonHeader is a record header in a jsonRecord.
type jsonHeader struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding,omitempty"`
}

// encodeBytes returns b as a string, base64 if it is not valid UTF-8 (with
// encoding "base64"), or nil for nil.
func encodeBytes(b []byte) (s *string, encoding string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		v := string(b)
		return &v, ""
	}
	v := base64.StdEncoding.EncodeToString(b)
	return &v, "base64"
}

// displayBytes returns b for a human: quoted if valid UTF-8, else base64:...,
// or null.
func displayBytes(b []byte) string {
	s, enc := encodeBytes(b)
	switch {
	case s == nil:
		return "null"
	case enc != "":
		return enc + ":" + *s
	}
	return strconv.Quote(*s)
}

// toJSON converts a record for printing.
func toJSON(r *stream.Record) jsonRecord {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: formatTime(r.Timestamp), Headers: make([]jsonHeader, len(r.Headers))}
	j.Key, j.KeyEncoding = encodeBytes(r.Key)
	j.Value, j.ValueEncoding = encodeBytes(r.Value)
	for i, h := range r.Headers {
		j.Headers[i].Key = h.Key
		j.Headers[i].Value, j.Headers[i].ValueEncoding = encodeBytes(h.Value)
	}
	return j
}

// recordWriter prints records as JSON lines, as raw values one a line, or
// by a template.
type recordWriter struct {
	w    *bufio.Writer
	enc  *json.Encoder
	raw  bool
	tmpl template // nil unless the format is a template
}

// newRecordWriter returns a recordWriter to w in format "json", "raw" or a
// template that checkFormat accepted.
func newRecordWriter(w io.Writer, format string) *recordWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	rw := &recordWriter{w: bw, enc: enc, raw: format == "raw"}
	if isTemplate(format) {
		rw.tmpl, _ = parseTemplate(format)
	}
	return rw
}

// formatHelp describes -format, for usages.
const formatHelp = `-format is json (one object a line: "topic", "partition", "offset",
"timestamp", "key", "value", "headers"; bytes that are not UTF-8 are base64
with "key_encoding"/"value_encoding":"base64"), raw (each value on a line), or
a template as kcat's -f takes: %t topic, %p partition, %o offset, %T timestamp
(ms since 1970), %k key, %s value, %K and %S their lengths (-1 for null), %R
the value's length as a 4-byte big-endian integer, %h headers (k=v,k2=v2; a
null value prints k alone), %% a percent sign; \n \r \t \\ and \xHH are
escapes. A template adds no newline of its own: end it with \n.`

// isTemplate reports whether a -format value is a template rather than a
// format's name.
func isTemplate(format string) bool { return strings.ContainsAny(format, "%\\") }

// checkFormat validates a -format flag.
func (a *app) checkFormat(format string) error {
	if isTemplate(format) {
		if _, err := parseTemplate(format); err != nil {
			return a.usagef("-format %q: %v", format, err)
		}
		return nil
	}
	if format != "json" && format != "raw" {
		return a.usagef("-format %q: want json, raw or a template with %%-tokens", format)
	}
	return nil
}

// write prints one record.
func (rw *recordWriter) write(r *stream.Record) error {
	switch {
	case rw.tmpl != nil:
		return rw.tmpl.write(rw.w, r)
	case !rw.raw:
		return rw.enc.Encode(toJSON(r))
	}
	rw.w.Write(r.Value)
	return rw.w.WriteByte('\n')
}

// template is a parsed -format template: literal text and record fields,
// in order.
type template []piece

// piece is literal text, or, when field is set, one field of the record.
type piece struct {
	text  string
	field byte // the token's letter: t p o T k s K S R h
}

// parseTemplate parses a kcat-style format (see formatHelp).
func parseTemplate(format string) (template, error) {
	var tmpl template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			tmpl = append(tmpl, piece{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' && c != '\\' {
			lit.WriteByte(c)
			continue
		}
		if i+1 == len(format) {
			return nil, fmt.Errorf("%q at the end", c)
		}
		i++
		next := format[i]
		if c == '\\' {
			switch next {
			case 'n':
				lit.WriteByte('\n')
			case 'r':
				lit.WriteByte('\r')
			case 't':
				lit.WriteByte('\t')
			case '\\':
				lit.WriteByte('\\')
			case 'x':
				if i+2 >= len(format) {
					return nil, errors.New(`\x wants two hex digits`)
				}
				v, err := strconv.ParseUint(format[i+1:i+3], 16, 8)
				if err != nil {
					return nil, fmt.Errorf(`\x%s: want two hex digits`, format[i+1:i+3])
				}
				lit.WriteByte(byte(v))
				i += 2
			default:
				return nil, fmt.Errorf(`unknown escape \%c (want \n, \r, \t, \\ or \xHH)`, next)
			}
			continue
		}
		switch next {
		case '%':
			lit.WriteByte('%')
		case 't', 'p', 'o', 'T', 'k', 's', 'K', 'S', 'R', 'h':
			flush()
			tmpl = append(tmpl, piece{field: next})
		default:
			return nil, fmt.Errorf("unknown token %%%c (want %%t %%p %%o %%T %%k %%s %%K %%S %%R %%h or %%%%)", next)
		}
	}
	flush()
	return tmpl, nil
}

// write prints r by the template.
func (tmpl template) write(w *bufio.Writer, r *stream.Record) error {
	var num [20]byte
	for _, p := range tmpl {
		switch p.field {
		case 0:
			w.WriteString(p.text)
		case 't':
			w.WriteString(r.Topic)
		case 'p':
			w.Write(strconv.AppendInt(num[:0], int64(r.Partition), 10))
		case 'o':
			w.Write(strconv.AppendInt(num[:0], r.Offset, 10))
		case 'T':
			w.Write(strconv.AppendInt(num[:0], r.Timestamp.UnixMilli(), 10))
		case 'k':
			w.Write(r.Key)
		case 's':
			w.Write(r.Value)
		case 'K':
			w.Write(strconv.AppendInt(num[:0], nullableLen(r.Key), 10))
		case 'S':
			w.Write(strconv.AppendInt(num[:0], nullableLen(r.Value), 10))
		case 'R':
			w.Write(binary.BigEndian.AppendUint32(num[:0], uint32(int32(nullableLen(r.Value)))))
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(h.Key)
				if h.Value != nil {
					w.WriteByte('=')
					w.Write(h.Value)
				}
			}
		}
	}
	return nil // a failed write sticks in w and shows at the flush
}

// nullableLen is len(b), or -1 for nil (a null key or value).
func nullableLen(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}

// flush writes out what is buffered.
func (rw *recordWriter) flush() error { return rw.w.Flush() }
