package batch

import (
	"encoding/binary"
	"testing"
)

// TestVarintLen checks the size table against encoding/binary at every
// power-of-two boundary.
func TestVarintLen(t *testing.T) {
	var buf [binary.MaxVarintLen64]byte
	check := func(v int64) {
		if got, want := varintLen(v), binary.PutVarint(buf[:], v); got != want {
			t.Fatalf("varintLen(%d) = %d, want %d", v, got, want)
		}
		if n := putVarint(buf[:], 0, v); n != varintLen(v) {
			t.Fatalf("putVarint(%d) wrote %d bytes, want %d", v, n, varintLen(v))
		}
		if got, _ := binary.Varint(buf[:]); got != v {
			t.Fatalf("putVarint(%d) decodes as %d", v, got)
		}
	}
	for s := range 63 {
		for _, v := range []int64{1 << s, 1<<s - 1, -(1 << s), -(1 << s) - 1} {
			check(v)
		}
	}
	check(1<<63 - 1)
	check(-1 << 63)
}
