package listener

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Operation is what an ACL allows on a resource (Kafka's ACL operations).
type Operation int8

// Operations. OpDescribe is implied by OpRead, OpWrite, OpDelete and
// OpAlter, as in Kafka; OpAll allows every operation.
const (
	OpRead Operation = iota
	OpWrite
	OpCreate
	OpDelete
	OpAlter
	OpDescribe
	OpAll
)

var opNames = [...]string{"Read", "Write", "Create", "Delete", "Alter", "Describe", "All"}

// String returns Kafka's name of the operation.
func (o Operation) String() string {
	if o < 0 || int(o) >= len(opNames) {
		return fmt.Sprintf("Operation(%d)", int8(o))
	}
	return opNames[o]
}

// ResourceType is the kind of thing an ACL protects (Kafka's resource types).
type ResourceType int8

// Resource types. A cluster ACL covers the one cluster whatever the name a
// request gives it (Kafka names it "kafka-cluster").
const (
	ResourceTopic ResourceType = iota
	ResourceGroup
	ResourceCluster
	ResourceTransactionalID
)

var resourceNames = [...]string{"Topic", "Group", "Cluster", "TransactionalId"}

// String returns Kafka's name of the resource type.
func (r ResourceType) String() string {
	if r < 0 || int(r) >= len(resourceNames) {
		return fmt.Sprintf("ResourceType(%d)", int8(r))
	}
	return resourceNames[r]
}

// ACL allows one principal some operations on some resources. ACLs only
// allow: whatever no ACL allows is denied (Kafka with
// allow.everyone.if.no.acl.found=false). They apply only to connections
// authenticated with SASL; see Options.ACLs.
type ACL struct {
	// Principal is the SASL user name the ACL applies to, or "*" for
	// every authenticated user (Kafka's "User:*").
	Principal string
	// Resource is the type of the resources covered.
	Resource ResourceType
	// Name is a resource name, "*" for every resource of the type, or a
	// prefix if Prefix is set. Ignored for ResourceCluster.
	Name string
	// Prefix makes Name match every resource whose name starts with it
	// (Kafka's PREFIXED pattern type; LITERAL otherwise).
	Prefix bool
	// Operations are those allowed.
	Operations []Operation
}

// ErrInvalidOptions is returned by Serve and ListenAndServe when the
// Options given to New are inconsistent (an ACL without SASL, a SASL
// configuration enabling no mechanism, an ACL naming an unknown operation).
var ErrInvalidOptions = errors.New("listener: invalid options")

func (a *ACL) validate() error {
	switch {
	case a.Principal == "":
		return fmt.Errorf("%w: ACL without a principal", ErrInvalidOptions)
	case a.Resource < 0 || int(a.Resource) >= len(resourceNames):
		return fmt.Errorf("%w: ACL for %s: unknown %v", ErrInvalidOptions, a.Principal, a.Resource)
	case a.Name == "" && a.Resource != ResourceCluster:
		return fmt.Errorf("%w: ACL for %s on %v: no resource name (\"*\" for all)", ErrInvalidOptions, a.Principal, a.Resource)
	case len(a.Operations) == 0:
		return fmt.Errorf("%w: ACL for %s on %v %q: no operation", ErrInvalidOptions, a.Principal, a.Resource, a.Name)
	}
	for _, op := range a.Operations {
		if op < 0 || int(op) >= len(opNames) {
			return fmt.Errorf("%w: ACL for %s on %v %q: unknown %v", ErrInvalidOptions, a.Principal, a.Resource, a.Name, op)
		}
	}
	return nil
}

// matches says whether the ACL allows op on the named resource of type res.
func (a *ACL) matches(op Operation, res ResourceType, name string) bool {
	if a.Resource != res {
		return false
	}
	if res != ResourceCluster {
		switch {
		case a.Prefix:
			if !strings.HasPrefix(name, a.Name) {
				return false
			}
		case a.Name != "*" && a.Name != name:
			return false
		}
	}
	for _, granted := range a.Operations {
		if granted == op || granted == OpAll {
			return true
		}
		// Whoever may read, write, delete or alter a resource may see it.
		if op == OpDescribe && (granted == OpRead || granted == OpWrite || granted == OpDelete || granted == OpAlter) {
			return true
		}
	}
	return false
}

// authorizer holds the ACLs by principal. It is immutable once built.
type authorizer struct {
	byUser     map[string][]ACL // "*" for every user
	superUsers map[string]bool
}

func newAuthorizer(acls []ACL, superUsers []string) (*authorizer, error) {
	az := &authorizer{byUser: make(map[string][]ACL), superUsers: make(map[string]bool)}
	for _, a := range acls {
		if err := a.validate(); err != nil {
			return nil, err
		}
		a.Operations = slices.Clone(a.Operations)
		az.byUser[a.Principal] = append(az.byUser[a.Principal], a)
	}
	for _, u := range superUsers {
		az.superUsers[u] = true
	}
	return az, nil
}

// allows says whether user may perform op on the named resource.
func (az *authorizer) allows(user string, op Operation, res ResourceType, name string) bool {
	if az.superUsers[user] {
		return true
	}
	for _, principal := range [2]string{user, "*"} {
		for i := range az.byUser[principal] {
			if az.byUser[principal][i].matches(op, res, name) {
				return true
			}
		}
	}
	return false
}

// writesAnywhere says whether user may write to some topic, or to the
// cluster: what Kafka asks of a client for a producer ID (IdempotentWrite
// on the cluster, or since 2.8 Write on any topic).
func (az *authorizer) writesAnywhere(user string) bool {
	if az.superUsers[user] {
		return true
	}
	for _, principal := range [2]string{user, "*"} {
		for _, a := range az.byUser[principal] {
			if a.Resource != ResourceTopic && a.Resource != ResourceCluster {
				continue
			}
			if slices.Contains(a.Operations, OpWrite) || slices.Contains(a.Operations, OpAll) {
				return true
			}
		}
	}
	return false
}
