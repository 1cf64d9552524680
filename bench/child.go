package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// childEnv, when set, makes this binary (or the test binary) a child process
// of a workload instead of the benchmark: its value is the child's arguments
// separated by \x1f. Children are what a workload needs a process of its own
// for: something to kill -9, or a clean process to measure RSS in.
const childEnv = "EMBEDSTREAM_BENCH_CHILD"

// runChild runs the child described by spec.
func runChild(spec string) error {
	args := strings.Split(spec, "\x1f")
	if len(args) != 4 {
		return fmt.Errorf("child: bad arguments %q", args)
	}
	kind, id, dir := args[0], args[1], args[2]
	n, err := strconv.ParseInt(args[3], 10, 64)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if kind == "scale" && id == "idle" {
		return reportScale(0)
	}
	p, err := peerByID(id)
	if err != nil {
		return err
	}
	switch kind {
	case "fill":
		return fillChild(ctx, p, dir, n)
	case "partitions":
		return partitionsChild(ctx, dir, int(n))
	case "scale":
		start := time.Now()
		inst, err := p.start(ctx, dir, startOptions{partitions: int(n), persistent: true})
		if err != nil {
			return err
		}
		if err := reportScale(time.Since(start)); err != nil {
			return err
		}
		return inst.close()
	}
	return fmt.Errorf("child: unknown kind %q", kind)
}

// fillChild publishes 1 KiB records until bytes of values are acknowledged,
// says "ready" and how many on stdout, and goes on publishing until it is
// killed, but not for long: it gives up after a minute, after another
// max(bytes, 256 MiB), or once its parent is gone, so that an orphan cannot
// fill the disk.
func fillChild(ctx context.Context, p peer, dir string, bytes int64) error {
	parent := os.Getppid()
	inst, err := p.start(ctx, dir, startOptions{persistent: true, bigLog: true})
	if err != nil {
		return err
	}
	v := payload(1 << 10)
	const chunk = 4096
	acked := 0
	for written := int64(0); written < bytes; written += chunk << 10 {
		if err := inst.publishBatched(ctx, chunk, v); err != nil {
			return err
		}
		acked += chunk
	}
	if _, err := fmt.Printf("ready %d\n", acked); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for extra := int64(0); extra < max(bytes, 256<<20); extra += 64 << 10 {
		if time.Now().After(deadline) || os.Getppid() != parent {
			break
		}
		if err := inst.publishBatched(ctx, 64, v); err != nil {
			return err
		}
	}
	inst.close()
	return errors.New("fill child: not killed")
}

// reportScale prints the scale report: open time, then the process's RSS and
// mapping count as they are now.
func reportScale(open time.Duration) error {
	rss, err := rssBytes()
	if err != nil {
		return err
	}
	maps, err := mappings()
	if err != nil {
		return err
	}
	fds, err := openFiles()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(scaleReport{OpenNs: open.Nanoseconds(), RSS: rss, Mappings: maps, FDs: fds})
}

// scaleReport is what a scale child prints.
type scaleReport struct {
	OpenNs   int64 `json:"open_ns"`
	RSS      int64 `json:"rss_bytes"`
	Mappings int   `json:"mappings"`
	FDs      int   `json:"fds"`
}

// runScaleChild runs the scale child and decodes its report. Peer "idle"
// measures a child that opens nothing.
func runScaleChild(ctx context.Context, peerID, dir string, partitions int) (scaleReport, error) {
	var r scaleReport
	cmd := childCommand(ctx, "scale", peerID, dir, strconv.Itoa(partitions))
	out, err := cmd.Output()
	if err != nil {
		return r, fmt.Errorf("scale child: %w", err)
	}
	return r, json.Unmarshal(out, &r)
}

// childCommand returns a command running this binary as a child process.
func childCommand(ctx context.Context, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"))
	cmd.Stderr = os.Stderr
	return cmd
}

// rssBytes reads VmRSS from /proc/self/status (Linux only).
func rssBytes() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// mappings counts the lines of /proc/self/maps (Linux only).
func mappings() (int, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// machine describes where the run happens, for the table and the JSON.
func machine() map[string]string {
	m := map[string]string{}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = string(bytes.TrimSpace(data))
	}
	return m
}
