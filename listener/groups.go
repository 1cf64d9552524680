package listener

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's classic group protocol, mapped onto the coordinator's task
// protocol (group.Coordinator: Poll → Revoke/Assign → Ack), so that remote
// members and in-process Consumers share one group and its guarantees.
//
//   - Assignment stays on the server. A JoinGroup response names
//     coordinatorLeader, no member's ID, as leader: every client is a
//     follower, sends SyncGroup without assignments and takes what the
//     response holds (the member's partitions as a ConsumerMemberAssignment).
//   - A remote member is a *stream.GroupMember whose MaxPollInterval is the
//     client's session timeout. Every request it makes (Join, Sync,
//     Heartbeat, OffsetCommit) calls PollDone, which keeps it alive; one not
//     heard from for session.timeout.ms is evicted by the broker like an
//     in-process Consumer that stopped polling. Static membership
//     (group.instance.id) is the coordinator's InstanceID.
//   - The balancer is chosen at the member's join: the group's own while it
//     has members (in-process or remote), which the member must offer, else
//     the first the member offers. Kafka may switch protocols when the
//     members' preferences change; here the group keeps its balancer while
//     it has members. None in common: INCONSISTENT_GROUP_PROTOCOL.
//   - JoinGroup is the member's rejoin: only there does the listener Poll
//     the coordinator (a Poll during a rebalance counts as rejoining). It
//     long-polls on the group's bell, bounded by the rebalance timeout and
//     the connection, until the coordinator hands the member its
//     assignment:
//     Revoke, eager protocol: the client revoked everything before
//     rejoining (Kafka's rule), so the task is acknowledged at once.
//     Revoke, cooperative: acknowledged at once if the client's
//     subscription no longer lists the partitions as owned; else the
//     JoinGroup answers with the new generation and an assignment without
//     them, so the client revokes them (committing in its callback) and
//     rejoins at once, as KIP-429 clients do; that rejoin acknowledges the
//     revoke, and the follow-up rebalance hands them to the new owner.
//     Assign: answered with its generation; SyncGroup delivers it and only
//     then acknowledges it (an Assign the client already holds from its
//     last SyncGroup, the cooperative case above, is acknowledged at once).
//     Fetch (no change for the member): the current generation and what
//     it holds, unless a rebalance is preparing, which it waits out.
//   - A rebalance reaches a member that is not in JoinGroup as
//     REBALANCE_IN_PROGRESS on Heartbeat (group.Member.State, which does
//     not count as rejoining). One that keeps heartbeating without
//     rejoining stops being kept alive after its rebalance timeout, so its
//     session timeout evicts it, as Kafka evicts it from the rebalance.
//   - Generations are the coordinator's. A request of another generation
//     than the member's last JoinGroup gets ILLEGAL_GENERATION; an evicted
//     member UNKNOWN_MEMBER_ID; a replaced static member FENCED_INSTANCE_ID.
//     Commits are checked again by the coordinator under the group's lock
//     (current member, owns every partition), so a partition's new owner
//     always reads its old owner's last commit.
//   - A commit with generation -1 and no member (assign-mode clients,
//     kcat) is stored only while the group has no members, as Kafka does.
//
// Member IDs are the listener's (client ID and a random suffix, as
// Kafka's), mapped onto the coordinator's.

// coordinatorLeader is the leader ID JoinGroup responses name: no member's.
const coordinatorLeader = "embedstream-coordinator"

// protocolType is the only group protocol type served.
const protocolType = "consumer"

// Bounds on a member's session timeout, wider than Kafka's broker defaults
// (6s to 30min) so that tests may use short ones.
const (
	minSessionTimeout = time.Millisecond
	maxSessionTimeout = 30 * time.Minute
)

// memberIDPending is how long a member ID handed out with
// MEMBER_ID_REQUIRED waits for the member to join with it.
const memberIDPending = 5 * time.Minute

// remoteGroups is the server's registry of remote members.
type remoteGroups struct {
	mu      sync.Mutex
	members map[memberKey]*remoteMember
	pending map[memberKey]time.Time // IDs from MEMBER_ID_REQUIRED: until when they are valid
}

// memberKey names a remote member: its group and its Kafka member ID.
type memberKey struct{ group, id string }

// remoteMember is a Kafka client's membership of a group. Its fields after
// gm are guarded by the registry's mu.
type remoteMember struct {
	key        memberKey
	gm         *stream.GroupMember
	instanceID string
	clientID   string
	host       string
	balancer   group.Balancer
	protocol   string // balancer as the client named it at its join (an alias, see protocolAliases)

	metadata         []byte // the chosen protocol's metadata, for DescribeGroups
	version          int16  // the metadata's ConsumerMemberMetadata version
	topics           []string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration

	gen        int              // generation of the member's last JoinGroup answer; -1 before
	assignment []TopicPartition // what that answer's SyncGroup delivers
	pending    *group.Task      // Assign task acknowledged at SyncGroup
	rebalance  time.Time        // when Heartbeat first saw the rebalance in progress; zero if none
}

// TopicPartition is stream's.
type TopicPartition = stream.TopicPartition

// member returns a remote member, or nil.
func (r *remoteGroups) member(groupName, id string) *remoteMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[memberKey{groupName, id}]
}

// add registers a member.
func (r *remoteGroups) add(rm *remoteMember) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members == nil {
		r.members = map[memberKey]*remoteMember{}
	}
	r.members[rm.key] = rm
}

// drop forgets a member (evicted, fenced or gone).
func (r *remoteGroups) drop(rm *remoteMember) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[rm.key] == rm {
		delete(r.members, rm.key)
	}
}

// newPendingID hands out a member ID for a client to join with.
func (r *remoteGroups) newPendingID(groupName, clientID string) string {
	id := newMemberID(clientID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[memberKey]time.Time{}
	}
	r.pending[memberKey{groupName, id}] = time.Now().Add(memberIDPending)
	return id
}

// takePending reports whether id was handed out for groupName and is still
// valid, forgetting it.
func (r *remoteGroups) takePending(groupName, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := memberKey{groupName, id}
	due, ok := r.pending[k]
	delete(r.pending, k)
	return ok && time.Now().Before(due)
}

// sweep forgets members the coordinator no longer knows (evicted, fenced,
// their group dropped) and expired pending IDs: a client that never comes
// back leaves nothing behind.
func (r *remoteGroups) sweep() {
	r.mu.Lock()
	members := make([]*remoteMember, 0, len(r.members))
	for _, rm := range r.members {
		members = append(members, rm)
	}
	now := time.Now()
	for k, due := range r.pending {
		if now.After(due) {
			delete(r.pending, k)
		}
	}
	r.mu.Unlock()
	for _, rm := range members {
		if _, _, err := rm.gm.Owned(); err != nil {
			r.drop(rm)
		}
	}
}

// byCoordinatorID returns the remote members of groupName by their
// coordinator member IDs.
func (r *remoteGroups) byCoordinatorID(groupName string) map[string]*remoteMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*remoteMember{}
	for k, rm := range r.members {
		if k.group == groupName {
			out[rm.gm.ID()] = rm
		}
	}
	return out
}

// byInstanceID returns groupName's remote member with a static instance
// id, or nil.
func (r *remoteGroups) byInstanceID(groupName, instanceID string) *remoteMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, rm := range r.members {
		if k.group == groupName && rm.instanceID == instanceID {
			return rm
		}
	}
	return nil
}

// newMemberID returns a member ID as Kafka forms them: the client ID and a
// random UUID-sized suffix.
func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

// lookupMember finds the member a request names, or the error code that
// answers it: UNKNOWN_MEMBER_ID for one never known or evicted (forgotten
// then), FENCED_INSTANCE_ID for one replaced by its instance id, or a
// request naming an instance id that is not the member's.
func (c *conn) lookupMember(groupName, id string, instanceID *string) (*remoteMember, int16) {
	rm := c.s.groups.member(groupName, id)
	if rm == nil {
		if instanceID != nil && *instanceID != "" && c.s.groups.byInstanceID(groupName, *instanceID) != nil {
			return nil, kerr.FencedInstanceID.Code
		}
		return nil, kerr.UnknownMemberID.Code
	}
	if instanceID != nil && *instanceID != rm.instanceID {
		return nil, kerr.FencedInstanceID.Code
	}
	if _, _, err := rm.gm.Owned(); err != nil {
		c.s.groups.drop(rm)
		return nil, memberErrCode(err)
	}
	return rm, 0
}

// memberErrCode maps the coordinator's and the broker's errors onto
// Kafka's codes for a member's request: where a member's view of its group
// is at stake, they say more than errorCode's.
func memberErrCode(err error) int16 {
	switch {
	case errors.Is(err, group.ErrFenced), errors.Is(err, stream.ErrFenced):
		return kerr.FencedInstanceID.Code
	case errors.Is(err, group.ErrUnknownMember):
		return kerr.UnknownMemberID.Code
	case errors.Is(err, stream.ErrStaleGeneration), errors.Is(err, stream.ErrNotAssigned):
		// A member committing what it no longer holds has a stale view
		// of the group: rejoining fixes it.
		return kerr.IllegalGeneration.Code
	case errors.Is(err, stream.ErrInvalidArgument):
		return kerr.OffsetOutOfRange.Code // a commit's offset outside the log
	case errors.Is(err, stream.ErrClosed):
		return kerr.CoordinatorNotAvailable.Code // the broker is going away
	}
	return errorCode(err)
}

// alive tells the coordinator a member was heard from, unless it has been
// ignoring a rebalance for longer than its rebalance timeout.
func (rm *remoteMember) alive(s *Server) {
	s.groups.mu.Lock()
	since, limit := rm.rebalance, rm.rebalanceTimeout
	s.groups.mu.Unlock()
	if !since.IsZero() && time.Since(since) > limit {
		return
	}
	rm.gm.PollDone()
}

// encodeAssignment encodes parts as a ConsumerMemberAssignment of the
// version the member's subscription used (every version up to 3 has the
// same fields).
func encodeAssignment(version int16, parts []TopicPartition) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Version = min(max(version, 0), 3)
	parts = slices.Clone(parts)
	slices.SortFunc(parts, func(x, y TopicPartition) int {
		if x.Topic != y.Topic {
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		}
		return int(x.Partition) - int(y.Partition)
	})
	for _, tp := range parts {
		if n := len(a.Topics); n == 0 || a.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewConsumerMemberAssignmentTopic()
			t.Topic = tp.Topic
			a.Topics = append(a.Topics, t)
		}
		t := &a.Topics[len(a.Topics)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	return a.AppendTo(nil)
}
