package streamtest

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// modulePath is what a goroutine's stack must mention to count as ours.
const modulePath = "github.com/embedstream/stream"

// LeakTimeout is how long CheckLeaks waits for goroutines to end after the
// test before it reports them.
const LeakTimeout = 5 * time.Second

// CheckLeaks fails the test if, once the test and its cleanups are done,
// goroutines of package stream (or of anything else in the
// github.com/embedstream/stream module, including the code under test if it
// lives there) are still running: a Producer, Consumer or Reader left
// blocked, a broker never closed. Call it first in the test:
//
//	func TestOrders(t *testing.T) {
//		streamtest.CheckLeaks(t)
//		b := streamtest.NewBroker(t)
//		...
//	}
//
// Its check runs as a t.Cleanup; cleanups run last-registered first, so
// calling it first makes the check run after every other cleanup. It closes
// any broker streamtest opened for t that is still open before checking
// (closing a broker closes its producers and consumers), so a broker's own
// goroutines never count as a leak, whatever the order; goroutines of the
// test's own that are still blocked in a Poll or a Next of a closed
// consumer or reader do.
//
// A goroutine counts when its stack (from runtime.Stack, including the
// "created by" line) mentions the module path; goroutines running tests
// (those with testing.tRunner on their stack: the test's own, a parent
// waiting for its subtests), and goroutines that already existed when
// CheckLeaks was called, do not. Goroutines get LeakTimeout to finish. Do not use it in tests that
// run in parallel (t.Parallel) with other tests using package stream: their
// goroutines would count. Inside a testing/synctest bubble it is not needed:
// synctest.Test itself fails if goroutines of the bubble outlive it.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := map[int]bool{}
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		for _, b := range brokersOf(t) {
			if err := b.Close(); err != nil {
				t.Errorf("streamtest.CheckLeaks: closing a broker: %v", err)
			}
		}
		// Like require.Eventually, but polled on this goroutine: a
		// condition goroutine of Eventually's own would itself mention
		// the module.
		deadline := time.Now().Add(LeakTimeout)
		leaked := leakedSince(before)
		for len(leaked) > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			leaked = leakedSince(before)
		}
		if len(leaked) > 0 {
			var sb strings.Builder
			for _, g := range leaked {
				sb.WriteString(g.stack)
				sb.WriteString("\n\n")
			}
			t.Errorf("streamtest.CheckLeaks: %d leaked goroutine(s):\n\n%s", len(leaked), sb.String())
		}
	})
}

// Leaked returns the stacks of the goroutines, other than the caller's and
// those running tests, whose stacks mention the
// github.com/embedstream/stream module. CheckLeaks
// is built on it; use it directly for a check of your own.
func Leaked() []string {
	var out []string
	for _, g := range leakedSince(nil) {
		out = append(out, g.stack)
	}
	return out
}

func leakedSince(before map[int]bool) []goroutine {
	var out []goroutine
	for _, g := range goroutines() {
		// A goroutine running a test (or its cleanups, or waiting for its
		// subtests) is not a leak, even if the test's package is in the
		// module.
		if !before[g.id] && strings.Contains(g.stack, modulePath) && !strings.Contains(g.stack, "testing.tRunner(") {
			out = append(out, g)
		}
	}
	return out
}

type goroutine struct {
	id    int
	stack string
}

// goroutines returns every goroutine but the caller's.
func goroutines() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	blocks := bytes.Split(buf, []byte("\n\n"))
	var out []goroutine
	// The caller's goroutine comes first.
	for _, b := range blocks[1:] {
		s := strings.TrimSpace(string(b))
		id, ok := goroutineID(s)
		if !ok {
			continue
		}
		out = append(out, goroutine{id: id, stack: s})
	}
	return out
}

// goroutineID parses "goroutine 42 [chan receive]:".
func goroutineID(stack string) (int, bool) {
	rest, ok := strings.CutPrefix(stack, "goroutine ")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(num)
	return id, err == nil
}
