package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// TestConsumeJSON checks the JSON line format: fields, base64 for bytes that are not UTF-8, nulls, no HTML escaping.
func TestConsumeJSON(t *testing.T) {
	t.Parallel()
	r := &stream.Record{Key: []byte{0xff, 0x00}, Value: []byte("héllo <&>"), Timestamp: at(0),
		Headers: []stream.Header{{Key: "h", Value: []byte("v")}, {Key: "n"}, {Key: "bin", Value: []byte{0xfe}}}}
	dir := seed(t, "orders", 1, r, &stream.Record{Timestamp: at(1)})
	out := cli(t, "", "-dir", dir, "consume", "-topic", "orders").ok(t).stdout
	require.Equal(t, `{"topic":"orders","partition":0,"offset":0,"timestamp":"2024-05-01T12:00:00.000Z",`+
		`"key":"/wA=","key_encoding":"base64","value":"héllo <&>","headers":[{"key":"h","value":"v"},`+
		`{"key":"n","value":null},{"key":"bin","value":"/g==","value_encoding":"base64"}]}`+"\n"+
		`{"topic":"orders","partition":0,"offset":1,"timestamp":"2024-05-01T12:01:00.000Z","key":null,"value":null,"headers":[]}`+"\n", out)
}

// TestConsumeRawPartitionsAndLimit checks raw output, -partition and -limit.
func TestConsumeRawPartitionsAndLimit(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	require.Equal(t, "a\nc\nb\n", cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-format", "raw").ok(t).stdout,
		"partitions one after another")
	require.Equal(t, "b\n", cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-partition", "1", "-format", "raw").ok(t).stdout)
	require.Equal(t, "a\nc\n", cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-limit", "2", "-format", "raw").ok(t).stdout)
}

// TestConsumeFrom checks -from earliest, latest, an offset, a time and a relative time, and their errors.
func TestConsumeFrom(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	consume := func(args ...string) []string {
		return values(t, cli(t, "", append([]string{"-dir", dir, "consume", "-topic", "orders"}, args...)...).ok(t).stdout)
	}
	require.Equal(t, []string{"c"}, consume("-partition", "0", "-from", "1"))
	require.Empty(t, consume("-from", "latest"))
	require.Equal(t, []string{"c", "b"}, consume("-from", at(1).Format("2006-01-02T15:04:05Z")))
	require.Equal(t, []string{"a", "c", "b"}, consume("-from", "-100000h"), "a relative time")
	cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-partition", "0", "-from", "9").fails(t, 1, "offset out of range")
	cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-from", "yesterday").fails(t, 2, "-from")
	cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-partition", "5").fails(t, 1, "invalid partition")
}

// TestConsumeGroupCommits checks that -group commits exactly what it printed and resumes from there.
func TestConsumeGroupCommits(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	group := func(args ...string) []string {
		args = append([]string{"-dir", dir, "consume", "-topic", "orders", "-group", "billing"}, args...)
		return values(t, cli(t, "", args...).ok(t).stdout)
	}
	require.Len(t, group("-limit", "2"), 2)
	require.Equal(t, int64(2), committed(t, dir, "billing")[0]+committed(t, dir, "billing")[1],
		"commits cover exactly the records printed")
	require.Len(t, group(), 1, "the rest")
	require.Equal(t, map[int32]int64{0: 2, 1: 1}, committed(t, dir, "billing"))
	require.Empty(t, group(), "caught up: returns at once")
	require.Empty(t, values(t, cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-group", "late", "-from", "latest").ok(t).stdout))

	cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-group", "g", "-partition", "0").fails(t, 2, "exclude each other")
	cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-group", "g", "-from", "now").fails(t, 2, "earliest or latest")
	cli(t, "", "-dir", dir, "-readonly", "consume", "-topic", "orders", "-group", "g").fails(t, 2, "-readonly")
}

// TestConsumeFollow checks -follow with and without a group, ended by -limit or by an interrupt.
func TestConsumeFollow(t *testing.T) {
	t.Parallel()
	dir := threeOrders(t)
	r := cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-follow", "-limit", "3", "-format", "raw").ok(t)
	require.ElementsMatch(t, []string{"a", "b", "c"}, splitLines(r.stdout))

	r = cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-group", "g", "-follow", "-limit", "3", "-format", "raw").ok(t)
	require.ElementsMatch(t, []string{"a", "b", "c"}, splitLines(r.stdout))

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an interrupt: -follow ends normally
	r = cliApp(t, ctx, func(*app) {}, "-dir", dir, "consume", "-topic", "orders", "-follow", "-from", "latest")
	r.ok(t)
	require.Empty(t, r.stdout)
}

// splitLines splits output into lines.
func splitLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// TestConsumeRelativeAndSymbolicPositions checks -from -N, +N, end,
// beginning, s@MS and an OFFSET for every partition, per partition and
// for all.
func TestConsumeRelativeAndSymbolicPositions(t *testing.T) {
	t.Parallel()
	// Partition 0 holds p0-0..p0-4, partition 1 holds p1-0 and p1-1.
	var recs []*stream.Record
	for i := range 5 {
		recs = append(recs, rec(0, "", fmt.Sprintf("p0-%d", i), at(i)))
	}
	recs = append(recs, rec(1, "", "p1-0", at(10)), rec(1, "", "p1-1", at(11)))
	dir := seed(t, "orders", 2, recs...)
	withBroker(t, dir, func(b *stream.Broker) {
		_, err := b.DeleteRecords("orders", 0, 1) // the log of partition 0 starts at 1
		require.NoError(t, err)
	})
	consume := func(args ...string) []string {
		r := cli(t, "", append([]string{"-dir", dir, "consume", "-topic", "orders", "-format", "raw"}, args...)...).ok(t)
		return splitNonEmpty(r.stdout)
	}
	require.Equal(t, []string{"p0-3", "p0-4", "p1-0", "p1-1"}, consume("-from", "-2"), "the last two of each partition")
	require.Equal(t, []string{"p0-4"}, consume("-from", "-1", "-partition", "0"))
	require.Equal(t, []string{"p0-1", "p0-2", "p0-3", "p0-4", "p1-0", "p1-1"}, consume("-from", "-100"), "stops at the start")
	require.Equal(t, []string{"p0-2", "p0-3", "p0-4", "p1-1"}, consume("-from", "+1"), "+N counts from the log start, which moved")
	require.Empty(t, consume("-from", "+9"), "stops at the end")
	require.Empty(t, consume("-from", "end"))
	require.Empty(t, consume("-from", "-0"))
	require.Equal(t, consume("-from", "earliest"), consume("-from", "beginning"))
	require.Equal(t, consume("-from", "earliest"), consume("-from", "start"))
	require.Equal(t, []string{"p0-3", "p0-4", "p1-0", "p1-1"}, consume("-from", "s@"+strconv.FormatInt(at(3).UnixMilli(), 10)))
	require.Equal(t, []string{"p0-1", "p0-2", "p0-3", "p0-4", "p1-1"}, consume("-from", "1"), "an OFFSET for every partition")
	require.Equal(t, []string{"p0-3", "p0-4"}, consume("-from", "3"), "past partition 1's end: its end")
	require.Equal(t, []string{"p0-1", "p0-2", "p0-3", "p0-4", "p1-0", "p1-1"}, consume("-from", "0"), "below partition 0's start: its start")

	base := []string{"-dir", dir, "consume", "-topic", "orders"}
	cli(t, "", append(base, "-partition", "0", "-from", "0")...).fails(t, 1, "offset out of range")
	cli(t, "", append(base, "-from", "+-1")...).fails(t, 2, "-from")
	cli(t, "", append(base, "-from", "s@x")...).fails(t, 2, "-from")
	cli(t, "", append(base, "-group", "g", "-from", "-1")...).fails(t, 2, "earliest or latest")
	require.Empty(t, values(t, cli(t, "", append(base, "-group", "g", "-from", "end")...).ok(t).stdout), "end is latest for a group too")
}

// splitNonEmpty splits output into lines, none for no output.
func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return splitLines(s)
}

// TestConsumeFormatTemplate checks kcat-style -format templates.
func TestConsumeFormatTemplate(t *testing.T) {
	t.Parallel()
	r := &stream.Record{Key: []byte("k1"), Value: []byte("héllo"), Timestamp: at(0),
		Headers: []stream.Header{{Key: "a", Value: []byte("1")}, {Key: "n"}}}
	dir := seed(t, "orders", 1, r, &stream.Record{Timestamp: at(1)})
	out := cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-format", `%t/%p@%o %T [%k=%s] %K %S {%h} 100%%\n`).ok(t).stdout
	ms := strconv.FormatInt(at(0).UnixMilli(), 10)
	require.Equal(t, "orders/0@0 "+ms+" [k1=héllo] 2 6 {a=1,n} 100%\n"+
		"orders/0@1 "+strconv.FormatInt(at(1).UnixMilli(), 10)+" [=] -1 -1 {} 100%\n", out, "null key and value: empty, length -1")

	out = cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-limit", "1", "-format", `%R%s\t\x41\\`).ok(t).stdout
	require.Equal(t, "\x00\x00\x00\x06héllo\tA\\", out, "%R is a 4-byte length; escapes; no newline added")

	out = cli(t, "", "-dir", dir, "replay", "-topic", "orders", "-from", rfc(at(0)), "-format", `%o:%s\n`).ok(t).stdout
	require.Equal(t, "0:héllo\n1:\n", out, "replay takes templates too")

	for _, bad := range []string{`%x`, `trailing %`, `\q`, `\x4`, `\xzz`} {
		cli(t, "", "-dir", dir, "consume", "-topic", "orders", "-format", bad).fails(t, 2, "-format")
	}
}
