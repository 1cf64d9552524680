package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
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

// recordWriter prints records as JSON lines or as raw values, one a line.
type recordWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	raw bool
}

// newRecordWriter returns a recordWriter to w in format "json" or "raw".
func newRecordWriter(w io.Writer, format string) *recordWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &recordWriter{w: bw, enc: enc, raw: format == "raw"}
}

// checkFormat validates a -format flag.
func (a *app) checkFormat(format string) error {
	if format != "json" && format != "raw" {
		return a.usagef("-format %q: want json or raw", format)
	}
	return nil
}

// write prints one record.
func (rw *recordWriter) write(r *stream.Record) error {
	if !rw.raw {
		return rw.enc.Encode(toJSON(r))
	}
	rw.w.Write(r.Value)
	return rw.w.WriteByte('\n')
}

// flush writes out what is buffered.
func (rw *recordWriter) flush() error { return rw.w.Flush() }
