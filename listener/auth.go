package listener

// connAuth is a connection's authentication state. Without SASL configured
// every connection is anonymous and may send any request.
type connAuth struct{}

// authorizeRequest says whether the connection may send a request of API
// key now: before SASL authentication completes, only ApiVersions and the
// SASL exchange are allowed.
func (c *conn) authorizeRequest(key int16) error { return nil }

// operation is an ACL operation (Kafka's names).
type operation int8

const (
	opRead operation = iota
	opWrite
	opCreate
	opDelete
	opAlter
	opDescribe
)

// resource is the kind of thing an ACL protects.
type resource int8

const (
	resTopic resource = iota
	resGroup
	resCluster
	resTransactionalID
)

// allowed says whether the connection's principal may perform op on the
// named resource. Handlers answer a refusal with Kafka's
// TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED. Without authentication
// configured, everything is allowed.
func (c *conn) allowed(op operation, res resource, name string) bool { return true }
