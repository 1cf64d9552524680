package listener

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestAuthorizerAllows(t *testing.T) {
	az, err := newAuthorizer([]ACL{
		{Principal: "alice", Resource: ResourceTopic, Name: "orders", Operations: []Operation{OpRead}},
		{Principal: "alice", Resource: ResourceTopic, Name: "logs.", Prefix: true, Operations: []Operation{OpWrite, OpCreate}},
		{Principal: "alice", Resource: ResourceGroup, Name: "*", Operations: []Operation{OpRead}},
		{Principal: "bob", Resource: ResourceTopic, Name: "*", Operations: []Operation{OpAll}},
		{Principal: "bob", Resource: ResourceCluster, Operations: []Operation{OpCreate}},
		{Principal: "*", Resource: ResourceTransactionalID, Name: "tx", Operations: []Operation{OpWrite}},
	}, []string{"root"})
	require.NoError(t, err)
	for _, tc := range []struct {
		user string
		op   Operation
		res  ResourceType
		name string
		want bool
	}{
		{"alice", OpRead, ResourceTopic, "orders", true},
		{"alice", OpDescribe, ResourceTopic, "orders", true}, // implied by read
		{"alice", OpWrite, ResourceTopic, "orders", false},
		{"alice", OpRead, ResourceTopic, "orders2", false},          // literal, not prefix
		{"alice", OpRead, ResourceTransactionalID, "orders", false}, // another resource type
		{"alice", OpWrite, ResourceTopic, "logs.app", true},
		{"alice", OpCreate, ResourceTopic, "logs.", true},
		{"alice", OpDescribe, ResourceTopic, "logs.app", true}, // implied by write
		{"alice", OpDelete, ResourceTopic, "logs.app", false},
		{"alice", OpWrite, ResourceTopic, "log", false},
		{"alice", OpRead, ResourceGroup, "any-group", true},
		{"alice", OpDescribe, ResourceGroup, "any-group", true},
		{"alice", OpCreate, ResourceCluster, "kafka-cluster", false},
		{"bob", OpDelete, ResourceTopic, "orders", true},
		{"bob", OpRead, ResourceGroup, "g", false},
		{"bob", OpCreate, ResourceCluster, "kafka-cluster", true},
		{"bob", OpCreate, ResourceCluster, "", true},            // one cluster, whatever its name
		{"bob", OpDescribe, ResourceCluster, "", false},         // create does not imply describe
		{"carol", OpWrite, ResourceTransactionalID, "tx", true}, // "*": any user
		{"carol", OpWrite, ResourceTransactionalID, "tx2", false},
		{"carol", OpRead, ResourceTopic, "orders", false}, // deny by default
		{"root", OpDelete, ResourceCluster, "", true},
		{"", OpRead, ResourceTopic, "orders", false},
	} {
		require.Equal(t, tc.want, az.allows(tc.user, tc.op, tc.res, tc.name), "%s %v %v %q", tc.user, tc.op, tc.res, tc.name)
	}
}

// allowed on a connection: everything without SASL, the ACLs with it, and
// every denial logged.
func TestAllowedOnConnections(t *testing.T) {
	b := openBroker(t, nil)
	open := New(b, nil)
	require.True(t, (&conn{s: open}).allowed(OpDelete, ResourceTopic, "anything"))

	log, lb := newLogger()
	s := startServer(t, b, &Options{
		Logger: log, SASL: testSASL(t),
		ACLs: []ACL{{Principal: "alice", Resource: ResourceTopic, Name: "orders", Operations: []Operation{OpRead}}},
	})
	alice := newClient(t, s, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()))
	bob := newClient(t, s, kgo.SASL(plain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism()))
	ask := func(cl *kgo.Client, op Operation, name string) int16 {
		t.Helper()
		resp, err := authorizeReq(op, ResourceTopic, name).RequestWith(t.Context(), cl)
		require.NoError(t, err)
		return resp.ErrorCode
	}
	require.Zero(t, ask(alice, OpRead, "orders"))
	require.Zero(t, ask(alice, OpDescribe, "orders"))
	require.Equal(t, kerr.ClusterAuthorizationFailed.Code, ask(alice, OpWrite, "orders"))
	requireLogged(t, lb, "listener: denied", "principal=User:alice", "operation=Write", "resource=Topic", "name=orders")
	require.Equal(t, kerr.ClusterAuthorizationFailed.Code, ask(bob, OpRead, "orders"))
	requireLogged(t, lb, "listener: denied", "principal=User:bob", "operation=Read", "resource=Topic", "name=orders")

	// A denial is an answer, not a closed connection.
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(t.Context(), bob)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
}
