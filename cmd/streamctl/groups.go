package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/embedstream/stream"
)

// groupsCommand is "groups": kafka-consumer-groups.sh.
func groupsCommand() *command {
	return &command{name: "groups", summary: "list, describe and delete consumer groups; show lag; reset offsets", subs: []*command{
		{name: "list", args: "[flags]", summary: "list the groups that have committed offsets", run: groupsList},
		{name: "describe", args: "[-group G] [flags]", summary: "show a group's state, last generation and members, and, per partition, committed offset, end and lag",
			run: groupsDescribe, help: `Without -group, every group is described. Besides the live members (a group has
none while its application is stopped), it shows the group's last completed
rebalance as the broker stored it: its generation, balancer, when it completed,
and each member with its topics and the partitions it was assigned.`},
		{name: "lag", args: "[-group G] [flags]", summary: "show committed offset, end and lag per partition, and the total lag",
			run: groupsLag, help: "Without -group, every group's lag is shown."},
		{name: "reset-offsets", args: "-group G -topic T (-to POSITION | -shift-by N) [flags]", summary: "set a group's committed offsets",
			run: groupsReset, help: `Sets the group's committed offset of each partition of -topic (or of -partition)
to POSITION, or moves it by N with -shift-by (kafka-consumer-groups.sh
--reset-offsets --to-earliest, --to-latest, --to-offset, --to-datetime,
--shift-by). As there, an offset outside a partition's log is moved to the
log's nearest end, with a note on stderr. The group must have no members.
-dry-run prints the plan (old and new offsets) and commits nothing.

` + positionHelp + `
A TIME is the first offset at or after it, or the end if every record is
older.`},
		{name: "delete", args: "-group G [flags]", summary: "delete a group's committed offsets", run: groupsDelete},
	}}
}

// groupsList runs "groups list".
func groupsList(_ context.Context, a *app, args []string) error {
	if err := a.parseFlags(a.flags(), args); err != nil {
		return err
	}
	return a.withBroker(readAccess, func(b *stream.Broker) error {
		if err := needMeta(b); err != nil {
			return err
		}
		for _, g := range b.Groups() {
			fmt.Fprintln(a.stdout, g)
		}
		return nil
	})
}

// groupsDescribe runs "groups describe".
func groupsDescribe(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	group := fs.String("group", "", "the group `name` (default: all groups)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	return a.withBroker(readAccess, func(b *stream.Broker) error {
		infos, err := describeGroups(b, *group)
		for i, info := range infos {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			printGroup(a.stdout, info)
		}
		return err
	})
}

// groupsLag runs "groups lag".
func groupsLag(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	group := fs.String("group", "", "the group `name` (default: all groups)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	return a.withBroker(readAccess, func(b *stream.Broker) error {
		infos, err := describeGroups(b, *group)
		if err == nil {
			printLag(a.stdout, infos)
		}
		return err
	})
}

// describeGroups describes the named group, or every group for "".
func describeGroups(b *stream.Broker, name string) ([]stream.GroupInfo, error) {
	if err := needMeta(b); err != nil {
		return nil, err
	}
	names := b.Groups()
	if name != "" {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("group %q not found", name)
		}
		names = []string{name}
	}
	infos := make([]stream.GroupInfo, 0, len(names))
	for _, n := range names {
		info, err := b.DescribeGroup(n)
		if err != nil {
			return infos, err
		}
		info.Partitions = allPartitions(b, info.Partitions)
		infos = append(infos, info)
	}
	return infos, nil
}

// allPartitions adds to parts, for every topic in it, the partitions the
// group never committed (Committed and Lag -1).
func allPartitions(b *stream.Broker, parts []stream.GroupPartitionInfo) []stream.GroupPartitionInfo {
	var out []stream.GroupPartitionInfo
	for i := 0; i < len(parts); {
		topic := parts[i].Topic
		j := i
		for j < len(parts) && parts[j].Topic == topic {
			j++
		}
		info, err := b.DescribeTopic(topic)
		if err != nil || len(info.Partitions) <= j-i {
			out = append(out, parts[i:j]...) // a deleted topic, or nothing missing
		} else {
			out = append(out, fillPartitions(parts[i:j], info)...)
		}
		i = j
	}
	return out
}

// fillPartitions returns a row for every partition of info, from have where
// the group committed.
func fillPartitions(have []stream.GroupPartitionInfo, info stream.TopicInfo) []stream.GroupPartitionInfo {
	out := make([]stream.GroupPartitionInfo, len(info.Partitions))
	for i, p := range info.Partitions {
		out[i] = stream.GroupPartitionInfo{Topic: info.Name, Partition: p.Partition, Committed: -1, End: p.EndOffset, Lag: -1}
	}
	for _, h := range have {
		if int(h.Partition) < len(out) {
			out[h.Partition] = h
		}
	}
	return out
}

// printGroup prints a group's state, members, last generation and
// partitions.
func printGroup(w io.Writer, info stream.GroupInfo) {
	fmt.Fprintf(w, "Group: %s  State: %s  Generation: %d  Balancer: %s  Members: %d\n",
		info.Group, info.State, info.Generation, orDash(info.Balancer), len(info.Members))
	if len(info.Members) > 0 {
		printMembers(w, info.Members)
	}
	if l := info.Last; l != nil {
		fmt.Fprintf(w, "Last generation: %d  Balancer: %s  Completed: %s  Members: %d\n",
			l.Generation, l.Balancer, formatTime(l.Completed), len(l.Members))
		printMembers(w, l.Members)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	for _, p := range info.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", p.Topic, p.Partition, offsetOrDash(p.Committed), p.End, offsetOrDash(p.Lag))
	}
	tw.Flush()
}

// printMembers prints members and their assignments, indented, as
// kafka-consumer-groups.sh --members --verbose does.
func printMembers(w io.Writer, members []stream.MemberInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MEMBER\tINSTANCE\tTOPICS\tASSIGNMENT")
	for _, m := range members {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.ID, orDash(m.InstanceID), orDash(strings.Join(m.Topics, ",")), formatAssignment(m.Assignment))
	}
	tw.Flush()
}

// formatAssignment prints partitions by topic: "orders(0,1) audit(2)", or -
// for none.
func formatAssignment(parts []stream.TopicPartition) string {
	var b strings.Builder
	for i, tp := range parts {
		switch {
		case i == 0:
			b.WriteString(tp.Topic + "(")
		case tp.Topic != parts[i-1].Topic:
			b.WriteString(") " + tp.Topic + "(")
		default:
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(tp.Partition)))
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String() + ")"
}

// printLag prints the groups' partitions and their total lag.
func printLag(w io.Writer, infos []stream.GroupInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	var total int64
	for _, info := range infos {
		for _, p := range info.Partitions {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", info.Group, p.Topic, p.Partition,
				offsetOrDash(p.Committed), p.End, offsetOrDash(p.Lag))
			total += max(p.Lag, 0)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "total lag: %d\n", total)
}

// offsetOrDash prints n, or - for -1 (unknown).
func offsetOrDash(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// orDash prints s, or - for "".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupsDelete runs "groups delete".
func groupsDelete(_ context.Context, a *app, args []string) error {
	fs := a.flags()
	group := fs.String("group", "", "the group `name` (required)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return a.usagef("-group is required")
	}
	return a.withBroker(writeAccess, func(b *stream.Broker) error {
		if !slices.Contains(b.Groups(), *group) {
			return fmt.Errorf("group %q not found", *group)
		}
		if err := b.DeleteGroup(*group); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "deleted group %s\n", *group)
		return nil
	})
}
