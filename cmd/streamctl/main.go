// Command streamctl inspects and operates an embedstream data directory: the
// one-process equivalent of kafka-topics.sh, kafka-console-producer.sh,
// kafka-console-consumer.sh, kafka-consumer-groups.sh, kafka-dump-log.sh and
// kcat.
//
//	streamctl -dir DIR topics create -topic orders -partitions 3
//	printf 'alice:apples\nbob:pears\n' | streamctl -dir DIR produce -topic orders -key-separator :
//	streamctl -dir DIR consume -topic orders
//	streamctl -dir DIR groups lag
//	streamctl -dir DIR verify
//
// Commands that only read open the directory as a follower
// (stream.Options.Follow): they take no lock and never change a byte of it,
// so they work on a copy, on a stopped application's directory, and on a
// running application's without stopping it or keeping it from starting
// (consume -follow tails what it publishes); dump and verify read the
// segment files directly. What a follower cannot see is documented at
// stream.Options.Follow: the application's group members, records not yet
// written. Commands that write (produce, topics create, consume -group, ...)
// need the directory to themselves: one a running broker holds is refused.
//
// Run "streamctl -h" for the command list and "streamctl COMMAND -h" for each
// command's flags. Exit status: 0 on success, 1 on failure, 2 on a usage error.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// main runs streamctl on the process's arguments and streams. A first
// interrupt ends waiting commands normally (consume -follow, produce reading
// a terminal); a second kills the process.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills at once
	}()
	os.Exit(runContext(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs streamctl with args (without the program name) and returns the
// exit status. It is main without the process: tests call it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdin, stdout, stderr)
}

// runContext is run with a context whose end (an interrupt) stops commands
// that wait, such as consume -follow.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	return a.exit(a.main(ctx, args))
}

// main parses the global flags and runs the command they precede.
func (a *app) main(ctx context.Context, args []string) error {
	root := commandTree()
	a.cur = root
	fs := a.flags()
	rest, err := a.parse(fs, args, -1, true)
	if err != nil {
		return err
	}
	return a.dispatch(ctx, root, rest)
}

// dispatch runs c with args: a leaf command directly, a group of commands by
// its first argument.
func (a *app) dispatch(ctx context.Context, c *command, args []string) error {
	a.cur = c
	if c.run != nil {
		return c.run(ctx, a, args)
	}
	if len(args) == 0 {
		return a.usagef("missing command (one of: %s)", c.subNames())
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if args[0] == "help" && len(args) > 1 {
			return a.help(ctx, c, args[1:])
		}
		a.printGroupUsage(c)
		return errHelp
	}
	sub := c.sub(args[0])
	if sub == nil {
		return a.usagef("unknown command %q (one of: %s)", args[0], c.subNames())
	}
	return a.dispatch(ctx, sub, args[1:])
}

// help runs "help CMD...": the usage of the named command.
func (a *app) help(ctx context.Context, c *command, names []string) error {
	return a.dispatch(ctx, c, append(names, "-h"))
}

// commandTree returns streamctl's commands.
func commandTree() *command {
	root := &command{name: "streamctl", summary: "operate an embedstream data directory", subs: []*command{
		topicsCommand(),
		produceCommand(),
		consumeCommand(),
		groupsCommand(),
		dumpCommand(),
		verifyCommand(),
		replayCommand(),
	}}
	root.setPaths("")
	return root
}
