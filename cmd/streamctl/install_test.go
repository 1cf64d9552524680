package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// README's install line works for someone who cloned the repository: run
// from its root, it puts a working streamctl in GOBIN. Offline
// (GOPROXY=off): the module cache this module's own build filled is enough.
func TestReadmeInstallLine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	const line = "go install ./cmd/streamctl"
	require.Contains(t, string(readme), "\n"+line+" ")

	bin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/streamctl")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s:\n%s", line, out)
	out, err = exec.Command(filepath.Join(bin, "streamctl"), "-h").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "Usage: streamctl")
}
