package stream

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cloneCases are records whose copies must equal them field by field, nil
// and empty slices kept apart.
func cloneCases() []*Record {
	ts := time.UnixMilli(1_700_000_000_123)
	return []*Record{
		{Topic: "t", Partition: 2, Offset: 7, Key: []byte("k"), Value: []byte("value"), Timestamp: ts},
		{Topic: "t", Value: []byte("no key")},
		{Topic: "t", Key: []byte{}, Value: nil},
		{Topic: "t", Key: []byte("k"), Value: []byte{}, Headers: []Header{}},
		{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "b"}, {Key: "c", Value: []byte{}}}},
		{Topic: "t", Value: bytes.Repeat([]byte("x"), 20_000)}, // over the arena's share: a buffer of its own
		{Topic: "t", Value: bytes.Repeat([]byte("y"), arenaBytes/8)},
	}
}

func requireSameRecord(t *testing.T, want, got *Record) {
	t.Helper()
	require.Equal(t, want.Topic, got.Topic)
	require.Equal(t, want.Partition, got.Partition)
	require.Equal(t, want.Offset, got.Offset)
	require.True(t, want.Timestamp.Equal(got.Timestamp))
	for _, pair := range [][2][]byte{{want.Key, got.Key}, {want.Value, got.Value}} {
		require.Equal(t, pair[0] == nil, pair[1] == nil, "nil and empty kept apart: %q %q", pair[0], pair[1])
		require.Equal(t, string(pair[0]), string(pair[1]))
	}
	require.Equal(t, want.Headers == nil, got.Headers == nil)
	require.Len(t, got.Headers, len(want.Headers))
	for i := range want.Headers {
		require.Equal(t, want.Headers[i].Key, got.Headers[i].Key)
		require.Equal(t, want.Headers[i].Value == nil, got.Headers[i].Value == nil)
		require.Equal(t, string(want.Headers[i].Value), string(got.Headers[i].Value))
	}
}

// Clone and Arena.Clone copy every field, share nothing with the source,
// and cap each copied slice: appending to one never overwrites another.
func TestCloneAndArenaCopyDeeply(t *testing.T) {
	var arena Arena
	for _, clone := range []struct {
		name string
		fn   func(*Record) *Record
	}{{"Record.Clone", (*Record).Clone}, {"Arena.Clone", arena.Clone}} {
		t.Run(clone.name, func(t *testing.T) {
			var copies []*Record
			var originals []*Record
			for round := range 3 { // the arena fills blocks and starts new ones
				for i, r := range cloneCases() {
					if len(r.Value) > 0 && len(r.Value) < 100 {
						r.Value = fmt.Appendf(r.Value, "-%d-%d", round, i)
					}
					want := deepCopy(r)
					got := clone.fn(r)
					// Scribble over the source: the copy must not change.
					for _, b := range [][]byte{r.Key, r.Value} {
						for j := range b {
							b[j] = '!'
						}
					}
					for _, h := range r.Headers {
						for j := range h.Value {
							h.Value[j] = '!'
						}
					}
					requireSameRecord(t, want, got)
					copies, originals = append(copies, got), append(originals, want)
				}
			}
			for i, c := range copies {
				c.Key = append(c.Key, "appended"...)
				c.Value = append(c.Value, "appended"...)
				for j := range c.Headers {
					c.Headers[j].Value = append(c.Headers[j].Value, "appended"...)
				}
				if i+1 < len(copies) {
					requireSameRecord(t, originals[i+1], copies[i+1])
				}
			}
		})
	}
}

// deepCopy is a reference copy, one allocation per slice.
func deepCopy(r *Record) *Record {
	c := *r
	dup := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		return append([]byte{}, b...)
	}
	c.Key, c.Value = dup(r.Key), dup(r.Value)
	if r.Headers != nil {
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = Header{Key: h.Key, Value: dup(h.Value)}
		}
	}
	return &c
}

// Records read with a Reader and kept through an Arena stay intact after
// the reader moved on and closed, and cost well under one allocation each.
func TestArenaKeepsReadRecords(t *testing.T) {
	b := tbOpen(t, nil)
	tbCreate(t, b, "t", TopicConfig{})
	ctx := context.Background()
	const n = 5000
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "value %d", i)}
	}
	require.NoError(t, b.Publish(ctx, recs...))
	rd, err := b.NewReader("t", 0, OffsetEarliest, nil)
	require.NoError(t, err)
	var arena Arena
	kept := make([]*Record, 0, n)
	// AllocsPerRun calls the function twice: a warm-up, then the run.
	allocs := testing.AllocsPerRun(1, func() {
		for range n / 2 {
			r, err := rd.Next(ctx)
			require.NoError(t, err)
			kept = append(kept, arena.Clone(r))
		}
	})
	require.NoError(t, rd.Close())
	require.Len(t, kept, n)
	for i, r := range kept {
		require.Equal(t, int64(i), r.Offset)
		require.Equal(t, fmt.Sprintf("k%d", i), string(r.Key))
		require.Equal(t, fmt.Sprintf("value %d", i), string(r.Value))
	}
	if !raceEnabled {
		require.Less(t, allocs/(n/2), 0.05, "allocations per kept record")
	}
}

// Record.Clone takes two allocations for a record without headers.
func TestCloneAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	r := &Record{Topic: "t", Key: []byte("key"), Value: make([]byte, 100)}
	var sink *Record
	require.Equal(t, 2.0, testing.AllocsPerRun(100, func() { sink = r.Clone() }))
	require.NotNil(t, sink)
}
