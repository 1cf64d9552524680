//go:build compat_external

package compat

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The non-Go clients, each a script in scripts/ run as
// `SCRIPT ADDR setup|resume|member NAME`. A client missing from the machine
// fails its test: `make compat` installs them.
var scripts = map[string][]string{
	"kcat":           {"bash", "scripts/kcat.sh"},
	"kafkapython":    {"/usr/bin/python3", "scripts/kafka_python.py"},
	"confluentkafka": {"/usr/bin/python3", "scripts/confluent_kafka_client.py"},
	"kafkajs":        {"node", "scripts/kafkajs.js"},
}

func TestKcat(t *testing.T)           { runExternal(t, "kcat") }
func TestKafkaPython(t *testing.T)    { runExternal(t, "kafkapython") }
func TestConfluentKafka(t *testing.T) { runExternal(t, "confluentkafka") }
func TestKafkaJS(t *testing.T)        { runExternal(t, "kafkajs") }

// TestConfluentKafkaEOS runs confluent-kafka's transactional producer in a
// consume-transform-produce loop against streamserve (or COMPAT_TARGET,
// COMPAT_ADDR): every input exactly once in the read_committed output.
func TestConfluentKafkaEOS(t *testing.T) {
	srv := startExternal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "scripts/confluent_kafka_eos.py", srv.addr(), "confluentkafka").CombinedOutput()
	t.Logf("confluent_kafka_eos.py:\n%s", out)
	require.NoError(t, err)
}

// runScript runs a client's script phase and fails t unless it succeeds.
func runScript(t *testing.T, name, addr, phase string) {
	t.Helper()
	argv := append(append([]string{}, scripts[name]...), addr, phase, name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*stepTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	t.Logf("%s %s:\n%s", name, phase, out)
	require.NoError(t, err, "%s %s", name, phase)
}

// runExternal runs the matrix's steps with a scripted client against
// streamserve (or COMPAT_TARGET=kfake, or the server at COMPAT_ADDR).
func runExternal(t *testing.T, name string) {
	srv := startExternal(t)
	topic := "compat-" + name
	all := append(keyed(name, 0, 30), keyed(name, 30, 10)...)

	require.True(t, t.Run("create, produce, consume from earliest, in a group", func(t *testing.T) {
		runScript(t, name, srv.addr(), "setup")
	}))
	t.Run("resume after a restart", func(t *testing.T) {
		srv.restart(t)
		runScript(t, name, srv.addr(), "resume")
	})
	t.Run("read with another client", func(t *testing.T) {
		requireSame(t, all, franz{}.readAll(t, srv.addr(), topic, len(all)))
	})
	t.Run("read in-process", func(t *testing.T) {
		if srv.cmd == nil {
			t.Skipf("needs streamserve's directory: COMPAT_TARGET=%s, COMPAT_ADDR=%q", targetKind(), os.Getenv("COMPAT_ADDR"))
		}
		srv.stop(t)
		b, err := stream.Open(srv.dir, &stream.Options{ReadOnly: true})
		require.NoError(t, err)
		defer b.Close()
		requireSame(t, all, readInProcess(t, b, topic))
	})
	t.Run("mixed group", func(t *testing.T) {
		// The in-process member needs the Broker in this process:
		// listenertest's server rather than streamserve.
		tg := newTarget(t)
		mixedGroup(t, tg.broker(t), scriptMember{name}, tg.addr(), name)
	})
}

// scriptMember is a script's "member" phase as a client of mixedGroup: a
// group member printing "record PARTITION KEY" per record until killed.
type scriptMember struct{ name string }

func (s scriptMember) consumeGroup(ctx context.Context, t *testing.T, addr, group, topic string, n int, got func(rec)) {
	argv := append(append([]string{}, scripts[s.name]...), addr, "member", s.name)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil || cmd.Start() != nil {
		t.Errorf("start %s member: %v", s.name, err)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "record" {
				p, _ := strconv.Atoi(f[1])
				got(rec{key: f[2], partition: int32(p)})
			}
		}
	})
	<-ctx.Done()
	cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	cmd.Wait()
}

// balancer is the in-process member's in mixedGroup: the script client's
// default assignor. kafkajs offers only "RoundRobinAssigner" (the listener's
// alias of roundrobin); librdkafka (range,roundrobin) and kafka-python
// (range,roundrobin) share the default range.
func (s scriptMember) balancer() stream.Balancer {
	if s.name == "kafkajs" {
		return stream.RoundRobinBalancer{}
	}
	return stream.RangeBalancer{}
}

func (scriptMember) createTopic(*testing.T, string, string, int)   { panic("member only") }
func (scriptMember) produce(*testing.T, string, string, []rec)     { panic("member only") }
func (scriptMember) readAll(*testing.T, string, string, int) []rec { panic("member only") }

// external is the server the scripts talk to.
type external struct {
	fixed string         // COMPAT_ADDR
	fake  *kfake.Cluster // COMPAT_TARGET=kfake
	dir   string
	bin   string    // streamserve
	cmd   *exec.Cmd // streamserve, while it runs
	at    string    // streamserve's address
}

var listeningLine = regexp.MustCompile(`msg="streamserve: listening" addr=(\S+)`)

func startExternal(t *testing.T) *external {
	e := &external{fixed: os.Getenv("COMPAT_ADDR"), dir: t.TempDir()}
	switch {
	case e.fixed != "":
	case targetKind() == "kfake":
		e.startFake(t)
		t.Cleanup(func() { e.fake.Close() })
	default:
		e.bin = filepath.Join(t.TempDir(), "streamserve")
		out, err := exec.Command("go", "build", "-o", e.bin, "../cmd/streamserve").CombinedOutput()
		require.NoError(t, err, "build streamserve: %s", out)
		e.startServe(t)
		t.Cleanup(func() { e.stop(t) })
	}
	return e
}

func (e *external) startFake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(e.dir),
		kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	require.NoError(t, err)
	e.fake = c
}

func (e *external) startServe(t *testing.T) {
	cmd := exec.Command(e.bin, "-dir", e.dir, "-addr", "127.0.0.1:0", "-sync", "never", "-auto-create", "-partitions", "3")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	e.cmd = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
			os.Stderr.WriteString(sc.Text() + "\n")
		}
	}()
	select {
	case e.at = <-found:
	case <-time.After(stepTimeout):
		t.Fatal("streamserve did not log that it listens")
	}
}

func (e *external) addr() string {
	switch {
	case e.fixed != "":
		return e.fixed
	case e.fake != nil:
		return e.fake.ListenAddrs()[0]
	}
	return e.at
}

// stop ends streamserve with SIGTERM; it must exit cleanly.
func (e *external) stop(t *testing.T) {
	if e.cmd == nil {
		return
	}
	cmd := e.cmd
	e.cmd = nil
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "streamserve's exit")
}

func (e *external) restart(t *testing.T) {
	switch {
	case e.fixed != "":
		t.Logf("COMPAT_ADDR=%s: not restarted", e.fixed)
	case e.fake != nil:
		e.fake.Close()
		e.startFake(t)
	default:
		e.stop(t)
		e.startServe(t)
	}
}
