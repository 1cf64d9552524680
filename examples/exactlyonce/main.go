// Command exactlyonce shows a consume-transform-publish step that happens
// exactly once: a ledger worker turns each payment into a debit and a
// credit entry, publishing them and committing the payment's offset in one
// transaction (stream.TxSession). The first worker dies in the middle of a
// transaction; its replacement, with the same transactional ID, fences it
// and finishes the work. In the end every payment has exactly one debit
// and one credit in the ledger, as read_committed readers see it, even
// though the dead worker's half-done entries are in the log.
//
//	go run ./examples/exactlyonce
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/embedstream/stream"
)

// out is where the demo writes; its test captures it.
var out io.Writer = os.Stdout

func main() {
	dir, err := os.MkdirTemp("", "embedstream-exactlyonce-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), dir); err != nil {
		log.Fatal(err)
	}
}

const payments = 30

func run(ctx context.Context, dir string) error {
	b, err := stream.Open(dir, &stream.Options{Sync: stream.SyncAlways})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic("payments", stream.TopicConfig{Partitions: 3}); err != nil {
		return err
	}
	if err := b.CreateTopic("ledger", stream.TopicConfig{Partitions: 2}); err != nil {
		return err
	}
	for i := 1; i <= payments; i++ {
		rec := &stream.Record{Topic: "payments", Key: fmt.Appendf(nil, "p%02d", i), Value: fmt.Appendf(nil, "%d", i*10)}
		if err := b.Publish(ctx, rec); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "published %d payments\n", payments)

	// The first worker commits three steps, then dies in the fourth with
	// its entries published but not committed.
	done, err := work(ctx, b, 3, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "worker 1 committed %d payments, then died in a transaction\n", done)
	// Its replacement takes the transactional ID (fencing the dead worker)
	// and the group's partitions, and resumes from the committed offsets.
	done, err = work(ctx, b, -1, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "worker 2 committed the other %d payments\n", done)
	return check(ctx, b)
}

// work runs a ledger worker for steps transactions (-1: until the payments
// are all committed); with die, it then publishes one more step's entries
// and stops without ending the transaction, as a crashed process would.
func work(ctx context.Context, b *stream.Broker, steps int, die bool) (int, error) {
	s, err := b.NewTxSession("ledger-worker", "ledger", []string{"payments"},
		&stream.TxSessionOptions{Consumer: stream.ConsumerOptions{Reset: stream.ResetEarliest, MaxPollRecords: 4}})
	if err != nil {
		return 0, err
	}
	committed := 0
	for step := 0; steps < 0 || step <= steps; step++ {
		if steps < 0 && committedPayments(b) == payments {
			break
		}
		recs, err := s.Poll(ctx)
		if err != nil {
			return committed, err
		}
		for _, r := range recs {
			debit := &stream.Record{Topic: "ledger", Key: r.Key, Value: append([]byte("debit "), r.Value...)}
			credit := &stream.Record{Topic: "ledger", Key: r.Key, Value: append([]byte("credit "), r.Value...)}
			if err := s.Publish(ctx, debit, credit); err != nil {
				return committed, err
			}
		}
		if die && step == steps {
			// Dies here, without End: its group membership goes with the
			// process (in this demo, closing the member), its transaction
			// stays open until the next worker's session fences it.
			return committed, s.Consumer().Close()
		}
		ok, err := s.End(ctx, true)
		if err != nil {
			return committed, err
		}
		if ok {
			committed += len(recs)
		}
	}
	return committed, s.Close()
}

// committedPayments is how many payments the group has committed.
func committedPayments(b *stream.Broker) int {
	info, err := b.DescribeGroup("ledger")
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range info.Partitions {
		n += int(max(p.Committed, 0))
	}
	return n
}

// check reads the ledger as read_committed and read_uncommitted readers.
func check(ctx context.Context, b *stream.Broker) error {
	entries := map[string]int{}
	uncommitted := 0
	for p := range int32(2) {
		for _, iso := range []stream.IsolationLevel{stream.ReadCommitted, stream.ReadUncommitted} {
			r, err := b.NewReader("ledger", p, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true, Isolation: iso})
			if err != nil {
				return err
			}
			for {
				rec, err := r.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					r.Close()
					return err
				}
				if iso == stream.ReadCommitted {
					kind, _, _ := strings.Cut(string(rec.Value), " ")
					entries[string(rec.Key)+" "+kind]++
				} else {
					uncommitted++
				}
			}
			r.Close()
		}
	}
	for key, n := range entries {
		if n != 1 {
			return fmt.Errorf("ledger entry %s appears %d times", key, n)
		}
	}
	if len(entries) != 2*payments {
		return fmt.Errorf("ledger has %d entries, want %d", len(entries), 2*payments)
	}
	fmt.Fprintf(out, "read_committed: %d ledger entries, one debit and one credit per payment, none twice\n", len(entries))
	fmt.Fprintf(out, "read_uncommitted: %d entries, the dead worker's aborted ones included\n", uncommitted)
	return nil
}
