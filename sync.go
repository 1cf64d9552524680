package stream

import (
	"github.com/embedstream/stream/internal/log"

	"fmt"
	"strings"
)

// SyncPolicy says when appended data is forced to disk with fsync, and so
// what a crash of the machine (not just the process) may lose. A crash of
// the process alone loses nothing that was appended: the data is in the
// kernel's page cache.
type SyncPolicy int

const (
	// SyncDefault, the zero value, means SyncInterval in Options and "the
	// broker's policy" in a TopicConfig.
	SyncDefault SyncPolicy = iota
	// SyncInterval (the default) fsyncs each written partition every
	// Options.SyncInterval. A machine crash may lose the last interval's
	// records, never older ones. Like Kafka's default of leaving flushes to
	// the OS, but bounded.
	SyncInterval
	// SyncNever leaves flushing to the operating system (Kafka's default,
	// log.flush.interval.messages unset). Fastest; a machine crash may lose
	// whatever the kernel had not yet written.
	SyncNever
	// SyncAlways fsyncs before Publish returns, so an acknowledged record
	// survives a machine crash. Concurrent publishers to a partition share
	// one fsync (group commit). Records become visible to readers only once
	// durable, so no consumer can act on a record a crash could take back.
	SyncAlways
)

// String returns the policy's name: "default", "interval", "never" or "always".
func (s SyncPolicy) String() string {
	switch s {
	case SyncDefault:
		return "default"

	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	case SyncAlways:
		return "always"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(s))
}

// ParseSyncPolicy is the inverse of SyncPolicy.String.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for _, p := range []SyncPolicy{SyncDefault, SyncInterval, SyncNever, SyncAlways} {
		if strings.EqualFold(s, p.String()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: sync policy %q (want default, interval, never or always)", ErrInvalidConfig, s)
}

func (s SyncPolicy) valid() bool { return s >= SyncDefault && s <= SyncAlways }

// or returns s, or def when s is SyncDefault.
func (s SyncPolicy) or(def SyncPolicy) SyncPolicy {
	if s == SyncDefault {
		return def
	}
	return s
}

// log is the policy as the log package spells it; s is not SyncDefault.
func (s SyncPolicy) log() log.SyncPolicy {
	switch s {
	case SyncNever:
		return log.SyncNever
	case SyncAlways:
		return log.SyncAlways
	}
	return log.SyncInterval
}
