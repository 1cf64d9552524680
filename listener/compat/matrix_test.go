package compat

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// stepTimeout bounds each client step: rebalances and first connections
// take seconds, not minutes.
const stepTimeout = 60 * time.Second

// rec is a record as the matrix compares them: by key and value (the
// clients' default partitioners differ: kafka-go's is round robin).
type rec struct {
	key, value string
	partition  int32
}

func (r rec) String() string { return r.key + "=" + r.value }

// client is one Kafka client, driven with its default settings. Every
// method fails t on error; addr is the server's host:port.
type client interface {
	createTopic(t *testing.T, addr, topic string, partitions int)
	produce(t *testing.T, addr, topic string, recs []rec)
	// readAll reads n records of topic from the earliest offset, outside
	// any group.
	readAll(t *testing.T, addr, topic string, n int) []rec
	// consumeGroup consumes topic as a member of group, committing what it
	// reads, until it has n records (n > 0) or ctx ends, then leaves.
	// got is called for each record.
	consumeGroup(ctx context.Context, t *testing.T, addr, group, topic string, n int, got func(rec))
}

// keyed returns n records numbered from first, over ten keys.
func keyed(prefix string, first, n int) []rec {
	recs := make([]rec, n)
	for i := range recs {
		j := first + i
		recs[i] = rec{key: fmt.Sprintf("%s-k%d", prefix, j%10), value: fmt.Sprintf("%s-v%d", prefix, j)}
	}
	return recs
}

// requireSame fails unless got holds exactly want's records.
func requireSame(t *testing.T, want, got []rec) {
	t.Helper()
	str := func(rs []rec) []string {
		s := make([]string, len(rs))
		for i, r := range rs {
			s[i] = r.String()
		}
		slices.Sort(s)
		return s
	}
	require.Equal(t, str(want), str(got))
}

// groupRead consumes n records in group and returns them.
func groupRead(t *testing.T, c client, addr, group, topic string, n int) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	var got []rec
	c.consumeGroup(ctx, t, addr, group, topic, n, func(r rec) { got = append(got, r) })
	require.Len(t, got, n, "records read in group %s before the timeout", group)
	return got
}

// runMatrix runs every step of the matrix with c; other is another client,
// for the cross-check.
func runMatrix(t *testing.T, name string, c, other client) {
	tg := newTarget(t)
	topic, group := "compat-"+name, "compat-"+name+"-group"
	first, second := keyed(name, 0, 30), keyed(name, 30, 10)
	all := append(slices.Clone(first), second...)

	require.True(t, t.Run("create topic", func(t *testing.T) {
		c.createTopic(t, tg.addr(), topic, 3)
	}), "the other steps need the topic")
	t.Run("produce keyed records", func(t *testing.T) {
		c.produce(t, tg.addr(), topic, first)
	})
	t.Run("consume from earliest", func(t *testing.T) {
		requireSame(t, first, c.readAll(t, tg.addr(), topic, len(first)))
	})
	t.Run("consume in a group with commits", func(t *testing.T) {
		requireSame(t, first, groupRead(t, c, tg.addr(), group, topic, len(first)))
	})
	t.Run("resume after a restart", func(t *testing.T) {
		tg.restart()
		c.produce(t, tg.addr(), topic, second)
		// Only the new records: the group's commits survived the restart.
		requireSame(t, second, groupRead(t, c, tg.addr(), group, topic, len(second)))
	})
	t.Run("read in-process", func(t *testing.T) {
		requireSame(t, all, readInProcess(t, tg.broker(t), topic))
	})
	t.Run("read with another client", func(t *testing.T) {
		requireSame(t, all, other.readAll(t, tg.addr(), topic, len(all)))
	})
	t.Run("mixed group", func(t *testing.T) {
		mixedGroup(t, tg.broker(t), c, tg.addr(), name)
	})
}

// readInProcess reads every partition of topic with a stream.Reader.
func readInProcess(t *testing.T, b *stream.Broker, topic string) []rec {
	t.Helper()
	info, err := b.DescribeTopic(topic)
	require.NoError(t, err)
	var got []rec
	for p := range int32(len(info.Partitions)) {
		r, err := b.NewReader(topic, p, stream.OffsetEarliest, &stream.ReaderOptions{StopAtEnd: true})
		require.NoError(t, err)
		for m, err := range r.All(t.Context()) {
			require.NoError(t, err)
			got = append(got, rec{key: string(m.Key), value: string(m.Value), partition: p})
		}
		require.NoError(t, r.Close())
	}
	return got
}

// mixedGroup has an in-process Consumer and a remote member of c share a
// group: once both hold partitions, records published to every partition
// are each read once, by the member owning its partition.
func mixedGroup(t *testing.T, b *stream.Broker, c client, addr, name string) {
	const partitions = 4
	topic, group := "compat-mixed-"+name, "compat-mixed-"+name+"-group"
	require.NoError(t, b.CreateTopic(topic, stream.TopicConfig{Partitions: partitions}))

	var mu sync.Mutex
	local, remote := map[int32]int{}, map[int32]int{}
	var localOwns []stream.TopicPartition

	// A group has one protocol: the in-process member offers what the
	// client does by default (range, unless the client says otherwise).
	// Poll blocks until there are records, so what the member holds is
	// followed through its rebalance callbacks (on the polling goroutine).
	opts := &stream.ConsumerOptions{
		MaxWait: 100 * time.Millisecond,
		OnAssigned: func(_ *stream.Consumer, parts []stream.TopicPartition) {
			mu.Lock()
			defer mu.Unlock()
			for _, tp := range parts {
				if !slices.Contains(localOwns, tp) {
					localOwns = append(localOwns, tp)
				}
			}
		},
		OnRevoked: func(_ *stream.Consumer, parts []stream.TopicPartition) {
			mu.Lock()
			defer mu.Unlock()
			localOwns = slices.DeleteFunc(localOwns, func(tp stream.TopicPartition) bool { return slices.Contains(parts, tp) })
		},
	}
	if bc, ok := c.(interface{ balancer() stream.Balancer }); ok {
		opts.Balancer = bc.balancer()
	}
	cons, err := b.Subscribe(group, []string{topic}, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			recs, err := cons.Poll(ctx)
			if err != nil && ctx.Err() == nil {
				t.Errorf("in-process Poll: %v", err)
				return
			}
			mu.Lock()
			for _, r := range recs {
				local[r.Partition]++
			}
			mu.Unlock()
		}
	})
	wg.Go(func() {
		c.consumeGroup(ctx, t, addr, group, topic, 0, func(r rec) {
			mu.Lock()
			remote[r.partition]++
			mu.Unlock()
		})
	})
	defer func() {
		cancel()
		cons.Wakeup()
		wg.Wait()
		require.NoError(t, cons.Close())
	}()

	// Both members hold partitions: the group has two members, and the
	// in-process one owns some partitions but not all.
	require.Eventually(t, func() bool {
		info, err := b.DescribeGroup(group)
		mu.Lock()
		defer mu.Unlock()
		return err == nil && info.State == "Stable" && len(info.Members) == 2 &&
			len(localOwns) > 0 && len(localOwns) < partitions
	}, stepTimeout, 50*time.Millisecond, "both members hold partitions")

	recs := make([]*stream.Record, 40)
	for i := range recs {
		recs[i] = &stream.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
	}
	require.NoError(t, b.Publish(context.Background(), recs...))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range local {
			n += c
		}
		for _, c := range remote {
			n += c
		}
		return n >= len(recs)
	}, stepTimeout, 50*time.Millisecond, "every record read")

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, local, "the in-process member read records")
	require.NotEmpty(t, remote, "the remote member read records")
	for p := range remote {
		require.NotContains(t, local, p, "partition %d read by both members", p)
	}
	n := 0
	for _, c := range local {
		n += c
	}
	for _, c := range remote {
		n += c
	}
	require.Equal(t, len(recs), n, "each record read once")
}
