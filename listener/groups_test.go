package listener

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// owners tracks who holds which partition, from the members' callbacks,
// and fails the test if a partition is assigned while another member still
// holds it: one owner at a time, revocation before the next assignment.
type owners struct {
	t   *testing.T
	mu  sync.Mutex
	of  map[TopicPartition]string
	bad []string
}

func newOwners(t *testing.T) *owners {
	o := &owners{t: t, of: map[TopicPartition]string{}}
	t.Cleanup(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		require.Empty(t, o.bad, "partitions owned twice")
	})
	return o
}

func (o *owners) assigned(who string, parts []TopicPartition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, tp := range parts {
		if prev, ok := o.of[tp]; ok && prev != who {
			o.bad = append(o.bad, fmt.Sprintf("%s assigned to %s while %s holds it", tp, who, prev))
		}
		o.of[tp] = who
	}
}

func (o *owners) revoked(who string, parts []TopicPartition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, tp := range parts {
		if o.of[tp] == who {
			delete(o.of, tp)
		}
	}
}

// count returns how many partitions each member holds.
func (o *owners) count() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := map[string]int{}
	for _, who := range o.of {
		n[who]++
	}
	return n
}

func kgoParts(m map[string][]int32) []TopicPartition {
	var out []TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, TopicPartition{Topic: t, Partition: p})
		}
	}
	return out
}

// kgoMember returns a group member over the wire reporting to o as who.
func kgoMember(t *testing.T, s *Server, o *owners, who, groupName string, opts ...kgo.Opt) *kgo.Client {
	track := []kgo.Opt{
		kgo.ConsumerGroup(groupName), kgo.ConsumeTopics("t"),
		kgo.HeartbeatInterval(50 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { o.assigned(who, kgoParts(m)) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { o.revoked(who, kgoParts(m)) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { o.revoked(who, kgoParts(m)) }),
	}
	return newClient(t, s, append(track, opts...)...)
}

// localMember subscribes an in-process member reporting to o as who and
// polls it until the test ends or it is closed.
func localMember(t *testing.T, b *stream.Broker, o *owners, who, groupName string, opts stream.ConsumerOptions) *stream.Consumer {
	opts.OnAssigned = func(_ *stream.Consumer, parts []TopicPartition) { o.assigned(who, parts) }
	opts.OnRevoked = func(_ *stream.Consumer, parts []TopicPartition) { o.revoked(who, parts) }
	opts.OnLost = func(_ *stream.Consumer, parts []TopicPartition) { o.revoked(who, parts) }
	c, err := b.Subscribe(groupName, []string{"t"}, &opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := c.Poll(ctx); errors.Is(err, stream.ErrClosed) || ctx.Err() != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
	})
	return c
}

func topicBroker(t *testing.T, partitions int) (*stream.Broker, *Server) {
	b := openBroker(t, nil)
	require.NoError(t, b.CreateTopic("t", stream.TopicConfig{Partitions: partitions}))
	return b, startServer(t, b, nil)
}

func eventuallyCounts(t *testing.T, o *owners, want map[string]int) {
	t.Helper()
	require.Eventually(t, func() bool { return maps2eq(o.count(), want) }, 20*time.Second, 5*time.Millisecond,
		"want %v", want)
}

func maps2eq(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An in-process Consumer and a franz-go member share a group under each
// balancer kind: they split the partitions, and when either leaves the
// other takes everything, never with two owners at once.
func TestGroupMixedMembers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local stream.Balancer
		kgo   kgo.GroupBalancer
	}{
		{"cooperative-sticky", stream.CooperativeStickyBalancer{}, kgo.CooperativeStickyBalancer()},
		{"range", stream.RangeBalancer{}, kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := topicBroker(t, 4)
			o := newOwners(t)
			local := localMember(t, b, o, "local", "g", stream.ConsumerOptions{Balancer: tc.local})
			eventuallyCounts(t, o, map[string]int{"local": 4})

			remote := kgoMember(t, s, o, "remote", "g", kgo.Balancers(tc.kgo))
			eventuallyCounts(t, o, map[string]int{"local": 2, "remote": 2})

			info, err := b.DescribeGroup("g")
			require.NoError(t, err)
			require.Len(t, info.Members, 2)
			require.Equal(t, tc.local.Name(), info.Balancer)

			remote.Close() // leaves the group
			eventuallyCounts(t, o, map[string]int{"local": 4})

			// And back: the remote member joins again, the local leaves.
			kgoMember(t, s, o, "remote2", "g", kgo.Balancers(tc.kgo))
			eventuallyCounts(t, o, map[string]int{"local": 2, "remote2": 2})
			require.NoError(t, local.Close())
			eventuallyCounts(t, o, map[string]int{"remote2": 4})
		})
	}
}

// Two franz-go members with the default cooperative-sticky balancer split
// the partitions between them without any client leading.
func TestGroupRemoteMembers(t *testing.T) {
	_, s := topicBroker(t, 6)
	o := newOwners(t)
	kgoMember(t, s, o, "a", "g")
	eventuallyCounts(t, o, map[string]int{"a": 6})
	kgoMember(t, s, o, "b", "g")
	eventuallyCounts(t, o, map[string]int{"a": 3, "b": 3})
}

// rawJoin joins a group over the wire with kmsg requests, as a client that
// then goes silent, and returns its member ID and generation.
func rawJoin(t *testing.T, cl *kgo.Client, groupName, protocol string, session time.Duration) (string, int32) {
	t.Helper()
	ctx := context.Background()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 5
	join.Group, join.ProtocolType = groupName, "consumer"
	join.SessionTimeoutMillis = int32(session.Milliseconds())
	join.RebalanceTimeoutMillis = 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = protocol, meta.AppendTo(nil)
	join.Protocols = append(join.Protocols, p)
	resp, err := join.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, kerr.MemberIDRequired.Code, resp.ErrorCode)
	require.NotEmpty(t, resp.MemberID)
	join.MemberID = resp.MemberID
	resp, err = join.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode, kerr.ErrorForCode(resp.ErrorCode))
	require.Equal(t, coordinatorLeader, resp.LeaderID)
	require.Equal(t, protocol, *resp.Protocol)

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 3
	sync.Group, sync.MemberID, sync.Generation = groupName, resp.MemberID, resp.Generation
	sresp, err := sync.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, sresp.ErrorCode, kerr.ErrorForCode(sresp.ErrorCode))
	var a kmsg.ConsumerMemberAssignment
	require.NoError(t, a.ReadFrom(sresp.MemberAssignment))
	return resp.MemberID, resp.Generation
}

// A remote member that stops heartbeating is evicted after its session
// timeout, and the in-process member takes its partitions.
func TestGroupRemoteEvicted(t *testing.T) {
	b, s := topicBroker(t, 2)
	o := newOwners(t)
	cl := newClient(t, s)
	id, gen := rawJoin(t, cl, "g", "range", 300*time.Millisecond)

	localMember(t, b, o, "local", "g", stream.ConsumerOptions{Balancer: stream.RangeBalancer{}})
	// The local member's join rebalances; the silent remote member is
	// evicted, and the local one gets everything.
	eventuallyCounts(t, o, map[string]int{"local": 2})

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", id, gen
	resp, err := hb.RequestWith(context.Background(), cl)
	require.NoError(t, err)
	require.Equal(t, kerr.UnknownMemberID.Code, resp.ErrorCode)
}

// kafkajs's only assignor, "RoundRobinAssigner", is the roundrobin
// balancer: the client gets its own protocol name back, and an in-process
// roundrobin member shares the group.
func TestGroupProtocolAlias(t *testing.T) {
	b, s := topicBroker(t, 2)
	cl := newClient(t, s)
	rawJoin(t, cl, "g", "RoundRobinAssigner", 300*time.Millisecond) // asserts the name echoed
	info, err := b.DescribeGroup("g")
	require.NoError(t, err)
	require.Equal(t, "roundrobin", info.Balancer)

	o := newOwners(t)
	localMember(t, b, o, "local", "g", stream.ConsumerOptions{Balancer: stream.RoundRobinBalancer{}})
	eventuallyCounts(t, o, map[string]int{"local": 2}) // the silent remote member evicted
}

// Offsets committed over the wire are the group's offsets in-process, and
// the other way round.
func TestGroupCommitsShared(t *testing.T) {
	b, s := topicBroker(t, 1)
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, b.Publish(ctx, &stream.Record{Topic: "t", Value: []byte{byte(i)}}))
	}
	o := newOwners(t)
	remote := kgoMember(t, s, o, "remote", "g")
	eventuallyCounts(t, o, map[string]int{"remote": 1})
	var commitErr error
	remote.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: 4}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil {
				commitErr = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			}
		})
	require.NoError(t, commitErr)
	committed, err := b.CommittedOffsets("g")
	require.NoError(t, err)
	require.Equal(t, map[TopicPartition]int64{{Topic: "t", Partition: 0}: 4}, committed)
	remote.Close()

	// In-process, the group resumes at 4 and commits 7.
	c, err := b.Subscribe("g", []string{"t"}, &stream.ConsumerOptions{MaxPollRecords: 3, Balancer: stream.CooperativeStickyBalancer{}})
	require.NoError(t, err)
	recs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(4), recs[0].Offset)
	require.NoError(t, c.Commit(ctx))
	require.NoError(t, c.Close())

	// Over the wire, OffsetFetch sees 7.
	cl := newClient(t, s)
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 1
	fetch.Group = "g"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0, 1}
	fetch.Topics = append(fetch.Topics, ft)
	fresp, err := fetch.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, int64(7), fresp.Topics[0].Partitions[0].Offset)
	require.Equal(t, int64(-1), fresp.Topics[0].Partitions[1].Offset, "never committed")
}

// Edge cases of the group APIs, with raw requests.
func TestGroupProtocolErrors(t *testing.T) {
	b, s := topicBroker(t, 2)
	ctx := context.Background()
	cl := newClient(t, s)
	o := newOwners(t)
	localMember(t, b, o, "local", "g", stream.ConsumerOptions{Balancer: stream.RangeBalancer{}})
	eventuallyCounts(t, o, map[string]int{"local": 2})

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 2 // kafka-python's: no MEMBER_ID_REQUIRED
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "roundrobin", meta.AppendTo(nil)
	join.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	resp := rawRequest(t, s, join).(*kmsg.JoinGroupResponse)
	require.Equal(t, kerr.InconsistentGroupProtocol.Code, resp.ErrorCode, "the group uses range")

	join.ProtocolType = "connect"
	resp = rawRequest(t, s, join).(*kmsg.JoinGroupResponse)
	require.Equal(t, kerr.InconsistentGroupProtocol.Code, resp.ErrorCode)

	// kafka-python's versions: join v2 (no MEMBER_ID_REQUIRED), sync and
	// heartbeat v1, commit v2, fetch v1.
	join.ProtocolType = "consumer"
	join.Protocols[0].Name = "range"
	resp = rawRequest(t, s, join).(*kmsg.JoinGroupResponse)
	require.Zero(t, resp.ErrorCode, kerr.ErrorForCode(resp.ErrorCode))
	require.NotEmpty(t, resp.MemberID)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 1
	sync.Group, sync.MemberID, sync.Generation = "g", resp.MemberID, resp.Generation
	sresp := rawRequest(t, s, sync).(*kmsg.SyncGroupResponse)
	require.Zero(t, sresp.ErrorCode, kerr.ErrorForCode(sresp.ErrorCode))
	var got kmsg.ConsumerMemberAssignment
	require.NoError(t, got.ReadFrom(sresp.MemberAssignment))
	require.Len(t, got.Topics, 1)
	require.Len(t, got.Topics[0].Partitions, 1, "range splits two partitions between two members")
	eventuallyCounts(t, o, map[string]int{"local": 1})
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 1
	leave.Group, leave.MemberID = "g", resp.MemberID
	require.Zero(t, rawRequest(t, s, leave).(*kmsg.LeaveGroupResponse).ErrorCode)
	eventuallyCounts(t, o, map[string]int{"local": 2})

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", "nobody", 1
	hresp, err := hb.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, kerr.UnknownMemberID.Code, hresp.ErrorCode)

	// A simple consumer's commit (generation -1) is refused while the
	// group has members, stored in a group without.
	commit := func(groupName string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 2
		req.Group, req.Generation = groupName, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	require.Equal(t, kerr.UnknownMemberID.Code, commit("g"))
	require.Zero(t, commit("simple"))

	// OffsetFetch with null topics: every committed partition; v8 batches
	// groups.
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 8
	for _, g := range []string{"simple", "g"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		fetch.Groups = append(fetch.Groups, rg)
	}
	fresp, err := fetch.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, fresp.Groups, 2)
	require.Len(t, fresp.Groups[0].Topics, 1)
	require.Equal(t, int64(0), fresp.Groups[0].Topics[0].Partitions[0].Offset)
	require.Empty(t, fresp.Groups[1].Topics)

	// DescribeGroups and ListGroups.
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{"g", "simple", "none"}
	dresp, err := dreq.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, "Stable", dresp.Groups[0].State)
	require.Equal(t, "range", dresp.Groups[0].Protocol)
	require.Len(t, dresp.Groups[0].Members, 1)
	var a kmsg.ConsumerMemberAssignment
	require.NoError(t, a.ReadFrom(dresp.Groups[0].Members[0].MemberAssignment))
	require.Len(t, a.Topics[0].Partitions, 2)
	require.Equal(t, "Empty", dresp.Groups[1].State)
	require.Equal(t, "Dead", dresp.Groups[2].State)

	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version = 4
	lreq.StatesFilter = []string{"empty"}
	lresp, err := lreq.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, lresp.Groups, 1)
	require.Equal(t, "simple", lresp.Groups[0].Group)

	// DeleteGroups: not while members are in; unknown groups not found.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g", "simple", "none"}
	delResp, err := del.RequestWith(ctx, cl)
	require.NoError(t, err)
	codes := []int16{}
	for _, g := range delResp.Groups {
		codes = append(codes, g.ErrorCode)
	}
	require.Equal(t, []int16{kerr.NonEmptyGroup.Code, 0, kerr.GroupIDNotFound.Code}, codes)
	committed, err := b.CommittedOffsets("simple")
	require.NoError(t, err)
	require.Empty(t, committed)

	// FindCoordinator: v4 batches keys; transactions are not served.
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.Version = 4
	find.CoordinatorKeys = []string{"a", "b"}
	findResp, err := find.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, findResp.Coordinators, 2)
	host, port := s.hostPort()
	for _, co := range findResp.Coordinators {
		require.Zero(t, co.ErrorCode)
		require.Equal(t, int32(0), co.NodeID)
		require.Equal(t, host, co.Host)
		require.Equal(t, port, co.Port)
	}
	find.CoordinatorType = 1 // transactions: the same broker
	findResp, err = find.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, findResp.Coordinators[0].ErrorCode)
	require.Equal(t, int32(0), findResp.Coordinators[0].NodeID)
	find.CoordinatorType = 2
	findResp, err = find.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, kerr.InvalidRequest.Code, findResp.Coordinators[0].ErrorCode)
}

// A remote member's generation is checked: a heartbeat of another
// generation is ILLEGAL_GENERATION, a rebalance reaches it as
// REBALANCE_IN_PROGRESS, and a stale commit is refused.
func TestGroupGenerations(t *testing.T) {
	b, s := topicBroker(t, 2)
	ctx := context.Background()
	cl := newClient(t, s)
	id, gen := rawJoin(t, cl, "g", "range", 10*time.Second)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", id, gen+1
	resp, err := hb.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, kerr.IllegalGeneration.Code, resp.ErrorCode)

	hb.Generation = gen
	resp, err = hb.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)

	// An in-process member joins: the remote one hears of the rebalance.
	o := newOwners(t)
	localMember(t, b, o, "local", "g", stream.ConsumerOptions{Balancer: stream.RangeBalancer{}})
	require.Eventually(t, func() bool {
		resp, err := hb.RequestWith(ctx, cl)
		return err == nil && resp.ErrorCode == kerr.RebalanceInProgress.Code
	}, 10*time.Second, 5*time.Millisecond)

	// Its commit of the old generation for a partition it owns still goes
	// in (Kafka allows commits before the rejoin)...
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 7
	commit.Group, commit.MemberID, commit.Generation = "g", id, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 0
	rt.Partitions = append(rt.Partitions, rp)
	commit.Topics = append(commit.Topics, rt)
	cresp, err := commit.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, cresp.Topics[0].Partitions[0].ErrorCode)
	// ... one of another generation does not.
	commit.Generation = gen + 1
	cresp, err = commit.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, kerr.IllegalGeneration.Code, cresp.Topics[0].Partitions[0].ErrorCode)

	// Leaving (v3, batched) lets the rebalance complete without it.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 3
	leave.Group = "g"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = id
	leave.Members = append(leave.Members, lm)
	lresp, err := leave.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, lresp.Members[0].ErrorCode)
	eventuallyCounts(t, o, map[string]int{"local": 2})
}

// kafka-go declares its subscription v1 but writes only v0's fields (no
// owned partitions): the member still joins, offering range and
// roundrobin, and gets its assignment in the declared version.
func TestGroupShortSubscription(t *testing.T) {
	_, s := topicBroker(t, 2)
	// version 1, topics ["t"], user data null: v0's layout.
	short := []byte{0, 1, 0, 0, 0, 1, 0, 1, 't', 0xff, 0xff, 0xff, 0xff}
	meta, ok := readSubscription(short)
	require.True(t, ok)
	require.Equal(t, int16(1), meta.Version)
	require.Equal(t, []string{"t"}, meta.Topics)
	_, ok = readSubscription([]byte{0, 1, 0})
	require.False(t, ok, "truncated topics")

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 2
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	for _, name := range []string{"range", "roundrobin"} {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = name, short
		join.Protocols = append(join.Protocols, p)
	}
	resp := rawRequest(t, s, join).(*kmsg.JoinGroupResponse)
	require.Zero(t, resp.ErrorCode, kerr.ErrorForCode(resp.ErrorCode))
	require.Equal(t, "range", *resp.Protocol)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 1
	sync.Group, sync.MemberID, sync.Generation = "g", resp.MemberID, resp.Generation
	sresp := rawRequest(t, s, sync).(*kmsg.SyncGroupResponse)
	require.Zero(t, sresp.ErrorCode, kerr.ErrorForCode(sresp.ErrorCode))
	a := kmsg.NewConsumerMemberAssignment()
	require.NoError(t, a.ReadFrom(sresp.MemberAssignment))
	require.Equal(t, int16(1), a.Version)
	require.Len(t, a.Topics, 1)
	require.Equal(t, []int32{0, 1}, a.Topics[0].Partitions)
}
