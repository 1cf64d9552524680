package compat

import (
	"os"
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/listener/listenertest"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// target is the Kafka-protocol server the matrix runs against, chosen by
// COMPAT_TARGET (see the package doc).
type target struct {
	t       testing.TB
	srv     *listenertest.Server // listener
	fake    *kfake.Cluster       // kfake
	fakeDir string
}

func targetKind() string {
	if k := os.Getenv("COMPAT_TARGET"); k != "" {
		return k
	}
	return "listener"
}

// newTarget starts a server for the test, stopped at its end.
func newTarget(t testing.TB) *target {
	t.Helper()
	tg := &target{t: t}
	switch k := targetKind(); k {
	case "listener":
		tg.srv = listenertest.Start(t, &listenertest.Options{Broker: &stream.Options{Sync: stream.SyncNever}})
	case "kfake":
		tg.fakeDir = t.TempDir()
		tg.startFake()
		t.Cleanup(func() { tg.fake.Close() })
	default:
		t.Fatalf("COMPAT_TARGET=%q: want listener or kfake", k)
	}
	return tg
}

func (tg *target) startFake() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(tg.fakeDir))
	require.NoError(tg.t, err)
	tg.fake = c
}

// addr is where clients connect (a new address after restart).
func (tg *target) addr() string {
	if tg.srv != nil {
		return tg.srv.Addr()
	}
	return tg.fake.ListenAddrs()[0]
}

// restart stops the server and starts it again on the same data, at a new
// address.
func (tg *target) restart() {
	if tg.srv != nil {
		tg.srv.Restart()
		return
	}
	tg.fake.Close()
	tg.startFake()
}

// broker is the served Broker, for in-process steps. Against kfake there
// is none: the step is skipped, saying why (only COMPAT_TARGET=kfake, a
// development mode, gets there).
func (tg *target) broker(t *testing.T) *stream.Broker {
	t.Helper()
	if tg.srv == nil {
		t.Skipf("needs the in-process Broker: COMPAT_TARGET=%s has none", targetKind())
	}
	return tg.srv.Broker()
}
