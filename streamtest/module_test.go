package streamtest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The steps doc/unittests.md gives to use streamtest from a clone, before
// the module is published, work: a replace of the module by the clone,
// go mod tidy, go test.
func TestAddingTheModuleFromAClone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	doc, err := os.ReadFile("../doc/unittests.md")
	require.NoError(t, err)
	require.Contains(t, string(doc), "go mod edit -replace=github.com/embedstream/stream=../stream\ngo mod tidy")
	require.Contains(t, string(doc), "go get github.com/embedstream/stream@latest")

	clone, err := filepath.Abs("..")
	require.NoError(t, err)
	app := t.TempDir()
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = app
		// go mod tidy may need modules the core's own build never
		// fetched (tests of its dependencies import more), so the go
		// command may use the module proxy; not the checksum database,
		// which this machine cannot reach: the temporary module's go.sum
		// starts empty.
		cmd.Env = append(os.Environ(), "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %q:\n%s", args, out)
		return string(out)
	}
	goCmd("mod", "init", "example.com/app")
	require.NoError(t, os.WriteFile(filepath.Join(app, "app_test.go"), []byte(`package app

import (
	"testing"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

func TestOrders(t *testing.T) {
	b := streamtest.NewBroker(t, streamtest.WithTopic("orders", stream.TopicConfig{}))
	streamtest.Publish(t, b, "orders", "book")
	require.Equal(t, []string{"book"}, streamtest.Values(streamtest.Records(t, b, "orders")))
}
`), 0o600))
	goCmd("mod", "edit", "-replace=github.com/embedstream/stream="+clone)
	goCmd("mod", "tidy")
	mod, err := os.ReadFile(filepath.Join(app, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(mod), "github.com/embedstream/stream v0.0.0-00010101000000-000000000000")
	require.Contains(t, string(mod), "github.com/stretchr/testify v")
	require.Contains(t, goCmd("test", "-count=1", "./..."), "ok  \texample.com/app")
}
