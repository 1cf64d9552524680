package listener

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
)

// connAuth is a connection's authentication state, touched only by the
// goroutine handling its requests. Without SASL configured every
// connection is anonymous and may send any request.
type connAuth struct {
	mechanism string                    // chosen by SaslHandshake; "" before it
	raw       bool                      // after a v0 handshake: frames are bare SASL tokens
	scram     *scram.ServerConversation // a SCRAM exchange in progress
	attempted string                    // the user a failed attempt claimed, for the log
	user      string                    // the authenticated user; "" until then
}

// errUnauthenticated marks a request other than ApiVersions or the SASL
// exchange sent before authentication; the connection closes, as Kafka's
// broker closes it.
var errUnauthenticated = errors.New("request before SASL authentication")

// authorizeRequest says whether the connection may send a request of API
// key now: before SASL authentication completes, only ApiVersions and the
// SASL exchange are allowed. An error closes the connection.
func (c *conn) authorizeRequest(key int16) error {
	if c.s.sasl == nil || c.auth.user != "" {
		return nil
	}
	switch kmsg.Key(key) {
	case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		return nil
	}
	return fmt.Errorf("%w: %s", errUnauthenticated, kmsg.NameForKey(key))
}

// operation and resource are the handlers' short names for Operation and
// ResourceType.
type (
	operation = Operation
	resource  = ResourceType
)

const (
	opRead     = OpRead
	opWrite    = OpWrite
	opCreate   = OpCreate
	opDelete   = OpDelete
	opAlter    = OpAlter
	opDescribe = OpDescribe

	resTopic           = ResourceTopic
	resGroup           = ResourceGroup
	resCluster         = ResourceCluster
	resTransactionalID = ResourceTransactionalID
)

// allowed says whether the connection's principal may perform op on the
// named resource. Handlers answer a refusal with Kafka's
// TOPIC/GROUP/CLUSTER/TRANSACTIONAL_ID_AUTHORIZATION_FAILED. Without
// authentication configured, everything is allowed; with it, what the
// ACLs allow (Options.ACLs). A denial is logged.
func (c *conn) allowed(op operation, res resource, name string) bool {
	if c.s.sasl == nil {
		return true
	}
	if c.auth.user != "" && c.s.acls.allows(c.auth.user, op, res, name) {
		return true
	}
	c.s.log.Warn("listener: denied", "principal", "User:"+c.auth.user, "operation", op, "resource", res, "name", name,
		"remote", c.remote, "client_id", c.clientID)
	return false
}

// mayProduce says whether the connection's principal may get a producer
// ID: it must be allowed to write somewhere (see writesAnywhere), or a
// read-only principal could make the broker write meta.db at will.
func (c *conn) mayProduce() bool {
	if c.s.sasl == nil {
		return true
	}
	if c.auth.user != "" && c.s.acls.writesAnywhere(c.auth.user) {
		return true
	}
	c.s.log.Warn("listener: denied a producer ID: no write permission anywhere", "principal", "User:"+c.auth.user,
		"remote", c.remote, "client_id", c.clientID)
	return false
}
