package streamtest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// fakeT records failures instead of failing the real test, so tests can
// check that a helper fails when it should. FailNow ends the goroutine, as
// testing.T's does: call helpers that may fail it through runIsolated.
type fakeT struct {
	testing.TB

	mu       sync.Mutex
	failed   bool
	msg      string
	cleanups []func()
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fail() {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
}

func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeT) FailNow() {
	f.Fail()
	runtime.Goexit()
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.msg += fmt.Sprintf(format, args...) + "\n"
	f.mu.Unlock()
}

func (f *fakeT) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Fatal(args ...any) {
	f.Error(args...)
	runtime.Goexit()
}

func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	f.cleanups = append(f.cleanups, fn)
	f.mu.Unlock()
}

// runCleanups runs the registered cleanups, last first, as testing does.
func (f *fakeT) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// runIsolated runs fn in its own goroutine and waits for it to end, by
// returning or by a fakeT's FailNow.
func runIsolated(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}
