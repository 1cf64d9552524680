package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/embedstream/stream"
)

// app is one run of streamctl: its streams, the global settings and the
// command being run.
type app struct {
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	dir      string           // the data directory (-dir, STREAMCTL_DIR)
	readOnly bool             // -readonly: refuse commands that change the directory
	progress bool             // stderr is a terminal: show progress there
	now      func() time.Time // the clock, for relative times
	cur      *command         // the command being parsed or run
}

// newApp returns an app on the given streams with the environment's defaults.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, dir: os.Getenv("STREAMCTL_DIR"),
		progress: isTerminal(stderr), now: time.Now}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// command is a streamctl command: a leaf with run, or a group with subs.
type command struct {
	name    string // the word that selects it
	args    string // its synopsis after the name, for usage
	summary string // one line, for lists of commands
	help    string // more detail for its -h, optional
	run     func(ctx context.Context, a *app, args []string) error
	subs    []*command
	path    string // "streamctl topics create"
}

// setPaths fills in the paths of c and its subcommands.
func (c *command) setPaths(parent string) {
	c.path = strings.TrimSpace(parent + " " + c.name)
	for _, s := range c.subs {
		s.setPaths(c.path)
	}
}

// sub returns the subcommand called name, or nil.
func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// subNames lists the subcommands' names.
func (c *command) subNames() string {
	names := make([]string, len(c.subs))
	for i, s := range c.subs {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// errHelp reports that usage was printed on request: exit status 0.
var errHelp = errors.New("help requested")

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

// Error implements error.
func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError for the current command.
func (a *app) usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exit prints err as one line on stderr and returns the exit status.
func (a *app) exit(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	path := "streamctl"
	if a.cur != nil {
		path = a.cur.path
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "%s: %s (see '%s -h')\n", path, oneLine(ue.msg), path)
		return 2
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", path, oneLine(err.Error()))
	return 1
}

// oneLine joins the lines of a message (errors.Join makes several).
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

// flags returns a flag set for the current command with the global flags,
// which every command accepts too.
func (a *app) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(a.cur.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&a.dir, "dir", a.dir, "the data `directory` (default $STREAMCTL_DIR)")
	fs.BoolVar(&a.readOnly, "readonly", a.readOnly, "refuse any command that would change the directory")
	return fs
}

// parse parses args into fs and returns the positional arguments, of which
// there may be at most maxArgs (-1: any). Unless stopAtFirst, flags may
// follow positional arguments. -h prints the usage and returns errHelp.
func (a *app) parse(fs *flag.FlagSet, args []string, maxArgs int, stopAtFirst bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.printUsage(fs)
				return nil, errHelp
			}
			return nil, a.usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 || stopAtFirst || endedByDashes(args, rest) {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if maxArgs >= 0 && len(pos) > maxArgs {
		return nil, a.usagef("unexpected argument %q", pos[maxArgs])
	}
	return pos, nil
}

// endedByDashes reports whether flag parsing of args stopped at "--",
// leaving rest: everything after it is positional.
func endedByDashes(args, rest []string) bool {
	n := len(args) - len(rest)
	return n > 0 && args[n-1] == "--"
}

// parseFlags parses a command that takes no positional arguments.
func (a *app) parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := a.parse(fs, args, 0, false)
	return err
}

// printUsage prints the current command's usage and flags on stdout.
func (a *app) printUsage(fs *flag.FlagSet) {
	c := a.cur
	if c.run == nil {
		a.printGroupUsage(c)
		return
	}
	fmt.Fprintf(a.stdout, "Usage: %s %s\n\n%s.\n", c.path, c.args, upperFirst(c.summary))
	if c.help != "" {
		fmt.Fprintf(a.stdout, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintf(a.stdout, "\nFlags:\n")
	fs.SetOutput(a.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// printGroupUsage prints the usage of a group of commands on stdout.
func (a *app) printGroupUsage(c *command) {
	synopsis := c.path
	if c.path == "streamctl" {
		synopsis += " [-dir DIR] [-readonly]"
	}
	fmt.Fprintf(a.stdout, "Usage: %s COMMAND [flags]\n\n%s.\n\nCommands:\n", synopsis, upperFirst(c.summary))
	for _, s := range c.subs {
		fmt.Fprintf(a.stdout, "  %-16s %s\n", s.name, s.summary)
	}
	if c.path == "streamctl" {
		fmt.Fprintf(a.stdout, "\nGlobal flags (also accepted after the command):\n")
		fs := a.flags()
		fs.SetOutput(a.stdout)
		fs.PrintDefaults()
	}
	fmt.Fprintf(a.stdout, "\nRun '%s COMMAND -h' for a command's usage.\n", c.path)
}

// upperFirst capitalizes the first letter of s.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// access is how a command uses the data directory.
type access int

// The ways to open the data directory.
const (
	readAccess   access = iota // as a follower: read-only, no lock; the directory must exist
	writeAccess                // writable; the directory must exist
	createAccess               // writable; the directory is created if missing
)

// withBroker opens the data directory, runs fn on the broker and closes it.
func (a *app) withBroker(acc access, fn func(b *stream.Broker) error) (err error) {
	b, err := a.open(acc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	return fn(b)
}

// open opens the data directory for acc, with clear errors for a missing
// directory and one a running broker holds. Reads open it as a follower
// (stream.Options.Follow): without its lock, so they work on a directory a
// running application owns and never stop it from opening.
func (a *app) open(acc access) (*stream.Broker, error) {
	if err := a.needDir(); err != nil {
		return nil, err
	}
	if acc != readAccess && a.readOnly {
		return nil, a.usagef("this command changes the directory; it cannot run with -readonly")
	}
	if acc != createAccess {
		if err := checkDataDir(a.dir); err != nil {
			return nil, err
		}
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := stream.Open(a.dir, &stream.Options{Follow: acc == readAccess, Logger: logger})
	if errors.Is(err, stream.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running broker: stop it, or work on a copy", a.dir)
	}
	return b, err
}

// checkDataDir checks that dir exists and holds a broker's data (meta.db or
// topics/), so a mistyped -dir is reported rather than opened empty.
func checkDataDir(dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("no data directory at %s", dir)
	}
	for _, name := range []string{"meta.db", "topics"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s holds no embedstream data (no meta.db or topics/)", dir)
}

// needDir checks that a data directory was given.
func (a *app) needDir() error {
	if a.dir == "" {
		return a.usagef("no data directory: give -dir DIR or set STREAMCTL_DIR")
	}
	return nil
}

// needTopic checks that -topic was given.
func (a *app) needTopic(topic string) error {
	if topic == "" {
		return a.usagef("-topic is required")
	}
	return nil
}

// partitionFlag is a -partition flag: a partition number, or all (-1, the
// default).
type partitionFlag struct{ p *int }

// partitionVar defines a -partition flag setting *p, -1 unless given.
func partitionVar(fs *flag.FlagSet, p *int, usage string) {
	*p = -1
	fs.Var(partitionFlag{p}, "partition", usage)
}

// String implements flag.Value.
func (f partitionFlag) String() string {
	if f.p == nil || *f.p < 0 {
		return ""
	}
	return strconv.Itoa(*f.p)
}

// Set implements flag.Value.
func (f partitionFlag) Set(s string) error {
	if s == "all" {
		*f.p = -1
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a partition number, or all")
	}
	*f.p = n
	return nil
}

// requiredInt64 is an integer flag without a default: whether it was given
// is known, and the usage shows no made-up default for it.
type requiredInt64 struct {
	v   int64
	set bool
}

// String implements flag.Value.
func (f *requiredInt64) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatInt(f.v, 10)
}

// Set implements flag.Value.
func (f *requiredInt64) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("want an integer")
	}
	f.v, f.set = n, true
	return nil
}

// parseTime reads a point in time: RFC 3339 ("2024-05-01T12:00:00Z",
// fractional seconds allowed), "now", or a negative duration back from now
// ("-90m").
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if strings.HasPrefix(s, "-") {
		if d, err := time.ParseDuration(s); err == nil {
			return now.Add(d), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: want RFC 3339 (2006-01-02T15:04:05Z), now, or -DURATION", s)
	}
	return t, nil
}

// needMeta checks that meta.db, where groups and their committed offsets
// are, can be read now: a follower that cannot read it (damaged, or being
// rewritten faster than it can be copied) would show no groups.
func needMeta(b *stream.Broker) error {
	if err := b.Refresh(); errors.Is(err, stream.ErrMetadataUnavailable) {
		return err
	}
	return nil
}
