package listener

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.JoinGroup, 0, 7, handleJoinGroup) }

// offer is one protocol a joining member offers, parsed.
type offer struct {
	name     string // as the client names it: balancer's name or an alias
	balancer group.Balancer
	metadata []byte
	meta     kmsg.ConsumerMemberMetadata
}

// handleJoinGroup is a member's (re)join; see groups.go for the mapping
// onto the coordinator.
func handleJoinGroup(c *conn, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = req.MemberID
	fail := func(code int16) (kmsg.Response, error) { resp.ErrorCode = code; return resp, nil }
	if !c.allowed(opRead, resGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed.Code)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < minSessionTimeout || session > maxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session // v0 has none: Kafka uses the session timeout
	}
	offers := parseOffers(req)
	if req.ProtocolType != protocolType || len(offers) == 0 {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	var instanceID string
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}

	c.s.groups.sweep()
	var rm *remoteMember
	switch {
	case req.MemberID == "" && req.Version >= 4 && instanceID == "":
		// KIP-394: the client joins again with this ID.
		resp.MemberID = c.s.groups.newPendingID(req.Group, c.clientID)
		return fail(kerr.MemberIDRequired.Code)
	case req.MemberID == "" || c.s.groups.takePending(req.Group, req.MemberID):
		id := req.MemberID
		if id == "" {
			id = newMemberID(c.clientID)
		}
		var code int16
		if rm, code = c.join(req.Group, id, instanceID, offers, session, rebalance); code != 0 {
			return fail(code)
		}
	default:
		var code int16
		if rm, code = c.lookupMember(req.Group, req.MemberID, req.InstanceID); code != 0 {
			return fail(code)
		}
		o := slices.IndexFunc(offers, func(o offer) bool { return o.balancer.Name() == rm.balancer.Name() })
		if o < 0 {
			return fail(kerr.InconsistentGroupProtocol.Code)
		}
		c.s.groups.mu.Lock()
		rm.metadata, rm.version = offers[o].metadata, offers[o].meta.Version
		rm.sessionTimeout, rm.rebalanceTimeout = session, rebalance
		changed := !slices.Equal(rm.topics, sortedTopics(offers[o].meta.Topics))
		rm.topics = sortedTopics(offers[o].meta.Topics)
		c.s.groups.mu.Unlock()
		if changed {
			rm.gm.Resubscribe(rm.topics)
		}
	}
	c.s.groups.mu.Lock()
	rm.rebalance = time.Time{}
	c.s.groups.mu.Unlock()

	owned := ownedPartitions(offers, rm.balancer)
	gen, parts, code := c.rejoin(rm, owned)
	if code != 0 {
		return fail(code)
	}
	resp.MemberID = rm.key.id
	resp.Generation = int32(gen)
	resp.LeaderID = coordinatorLeader
	resp.Protocol = kmsg.StringPtr(rm.protocol)
	resp.ProtocolType = kmsg.StringPtr(protocolType)
	c.s.groups.mu.Lock()
	rm.gen, rm.assignment = gen, parts
	c.s.groups.mu.Unlock()
	return resp, nil
}

// parseOffers returns the protocols of req the broker has a balancer for,
// in the member's order of preference, with their subscriptions parsed;
// those whose metadata does not parse are left out.
func parseOffers(req *kmsg.JoinGroupRequest) []offer {
	var out []offer
	for _, p := range req.Protocols {
		bal, ok := balancerFor(p.Name)
		if !ok {
			continue
		}
		meta, ok := readSubscription(p.Metadata)
		if !ok {
			continue
		}
		out = append(out, offer{name: p.Name, balancer: bal, metadata: p.Metadata, meta: meta})
	}
	return out
}

// readSubscription parses a ConsumerMemberMetadata leniently: some clients
// declare a version whose fields they do not write (kafka-go declares v1,
// with v1's owned partitions, but writes only v0's topics and user data),
// and Kafka's brokers never parse it, so the subscription is read at the
// highest version at or below the declared one that parses. The declared
// version is kept: the assignment answers with it.
func readSubscription(b []byte) (kmsg.ConsumerMemberMetadata, bool) {
	meta := kmsg.NewConsumerMemberMetadata()
	if err := meta.ReadFrom(b); err == nil {
		return meta, true
	}
	if len(b) < 2 {
		return meta, false
	}
	declared := int16(binary.BigEndian.Uint16(b))
	patched := slices.Clone(b)
	for v := min(declared, 3) - 1; v >= 0; v-- {
		binary.BigEndian.PutUint16(patched, uint16(v))
		meta = kmsg.NewConsumerMemberMetadata()
		if err := meta.ReadFrom(patched); err == nil {
			meta.Version = declared
			return meta, true
		}
	}
	return meta, false
}

// protocolAliases are clients' own names for the broker's balancers: the
// assignment runs on the broker, so a client's assignor of the same
// strategy under another name is that balancer.
var protocolAliases = map[string]string{
	"RoundRobinAssigner": "roundrobin", // kafkajs's default (and only) assignor
}

// balancerFor is the balancer a client's protocol name stands for.
func balancerFor(name string) (group.Balancer, bool) {
	if alias, ok := protocolAliases[name]; ok {
		name = alias
	}
	return group.BalancerByName(name)
}

func sortedTopics(topics []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(topics)))
}

// ownedPartitions is what a member's subscription for balancer says it
// holds (cooperative clients send it).
func ownedPartitions(offers []offer, balancer group.Balancer) []TopicPartition {
	var out []TopicPartition
	for _, o := range offers {
		if o.balancer.Name() != balancer.Name() {
			continue
		}
		for _, t := range o.meta.OwnedPartitions {
			for _, p := range t.Partitions {
				out = append(out, TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	return out
}

// join makes a new member with the group's balancer if the member offers
// it, else with the first it offers that the group accepts.
func (c *conn) join(groupName, id, instanceID string, offers []offer, session, rebalance time.Duration) (*remoteMember, int16) {
	for _, o := range offers {
		topics := sortedTopics(o.meta.Topics)
		gm, err := c.s.broker.JoinGroup(groupName, o.balancer, group.JoinRequest{
			InstanceID: instanceID, Topics: topics,
			SessionTimeout: session, MaxPollInterval: session,
		})
		if errors.Is(err, stream.ErrInvalidConfig) {
			continue // the group's members use another balancer
		}
		if err != nil {
			return nil, memberErrCode(err)
		}
		host, _, _ := net.SplitHostPort(c.remote)
		rm := &remoteMember{
			key: memberKey{groupName, id}, gm: gm, instanceID: instanceID,
			clientID: c.clientID, host: "/" + host, balancer: o.balancer, protocol: o.name,
			metadata: o.metadata, version: o.meta.Version, topics: topics,
			sessionTimeout: session, rebalanceTimeout: rebalance, gen: -1,
		}
		if old := c.s.groups.byInstanceID(groupName, instanceID); instanceID != "" && old != nil {
			c.s.groups.drop(old) // fenced by the coordinator's Join
		}
		c.s.groups.add(rm)
		return rm, 0
	}
	return nil, kerr.InconsistentGroupProtocol.Code
}

// rejoin drives the coordinator's tasks for a member in JoinGroup until it
// has its generation and assignment (see groups.go), waiting on the
// group's bell at most the rebalance timeout, and while the connection
// lives.
func (c *conn) rejoin(rm *remoteMember, clientOwns []TopicPartition) (gen int, parts []TopicPartition, code int16) {
	gm := rm.gm
	defer gm.PollDone()
	bell := make(chan struct{}, 1)
	defer gm.Forget(bell)
	c.s.groups.mu.Lock()
	timeout, heldGen, held := rm.rebalanceTimeout, rm.gen, rm.assignment
	c.s.groups.mu.Unlock()
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	cooperative := gm.Protocol() == group.Cooperative
	for {
		select {
		case <-bell:
		default:
		}
		gm.Notify(bell)
		task, err := gm.Poll()
		if err != nil {
			c.s.groups.drop(rm)
			return 0, nil, memberErrCode(err)
		}
		switch task.Kind {
		case group.Revoke:
			if !cooperative || !slices.ContainsFunc(task.Partitions, func(tp TopicPartition) bool { return slices.Contains(clientOwns, tp) }) {
				gm.Ack(task) // the client gave them up before rejoining
				continue
			}
			// The client still holds partitions that move: its new
			// assignment lacks them, it revokes them and rejoins.
			_, gen := gm.State()
			c.setPending(rm, nil)
			return gen, task.Owned, 0
		case group.Assign:
			if cooperative && task.Generation == heldGen && sameParts(task.Owned, held) {
				gm.Ack(task) // delivered by the last SyncGroup already
				continue
			}
			c.setPending(rm, &task)
			return task.Generation, task.Owned, 0
		case group.Fetch:
			if state, _ := gm.State(); state != group.PreparingRebalance {
				c.setPending(rm, nil)
				return task.Generation, task.Owned, 0
			}
			// A cooperative member keeps its partitions while the others
			// rejoin: wait for the rebalance to complete.
		}
		if code := c.waitGroup(gm, bell, limit.C); code != 0 {
			return 0, nil, code
		}
	}
}

// waitGroup waits for the group's bell, or the group's next eviction (a
// member that went silent), or answers REBALANCE_IN_PROGRESS when the
// rebalance timeout ends (the client rejoins) and the connection closes.
func (c *conn) waitGroup(gm *stream.GroupMember, bell chan struct{}, limit <-chan time.Time) int16 {
	var evict <-chan time.Time
	if due := gm.NextDeadline(); !due.IsZero() {
		t := time.NewTimer(max(time.Until(due), 0))
		defer t.Stop()
		evict = t.C
	}
	select {
	case <-bell:
	case <-evict:
	case <-limit:
		return kerr.RebalanceInProgress.Code
	case <-c.ctx.Done():
		return kerr.RebalanceInProgress.Code // nobody reads it
	}
	return 0
}

// setPending records the Assign task the member's SyncGroup acknowledges.
func (c *conn) setPending(rm *remoteMember, task *group.Task) {
	c.s.groups.mu.Lock()
	rm.pending = task
	c.s.groups.mu.Unlock()
}

// sameParts reports whether a and b hold the same partitions.
func sameParts(a, b []TopicPartition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, tp := range a {
		if !slices.Contains(b, tp) {
			return false
		}
	}
	return true
}
