package listener

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Stats are a Server's counters since New, and its connections now: what
// an operator watches to see who uses the broker over the network and
// whether their requests fail. Read them with Server.Stats; the
// prometheus module exports them.
type Stats struct {
	ConnectionsOpen     int   // connections being served now
	ConnectionsAccepted int64 // connections accepted and served
	// ConnectionsRefused counts connections closed at once: over
	// MaxConnections, or arriving while the server shuts down.
	ConnectionsRefused int64
	// Requests has an entry for every API the server serves (those
	// ApiVersions lists), by Kafka's name of it (kmsg.NameForKey:
	// "Produce", "Fetch", ...), counted or not: a fixed set of keys.
	Requests map[string]APIStats
	// Unsupported counts requests for an API or version the server does
	// not serve; each closed its connection (but an ApiVersions of a newer
	// version, answered as KIP-511 says and counted in Requests).
	Unsupported int64
}

// APIStats are one API's requests.
type APIStats struct {
	// Requests counts requests whose header named the API in a version
	// served: answered or not.
	Requests int64
	// Errors counts those that closed the connection instead of being
	// answered: a body that did not parse, an API the client was not
	// authenticated for, a handler that failed or panicked. Errors a
	// client is meant to handle travel in the response's error codes and
	// are not counted here.
	Errors int64
}

// apiCounters are one API's counts.
type apiCounters struct {
	requests, errors atomic.Int64
}

// serverStats are a Server's counters: atomics, so counting takes no lock.
type serverStats struct {
	accepted, refused, unsupported atomic.Int64
	// apis has an entry per served API key, made by New and never changed
	// afterwards: read without a lock.
	apis map[int16]*apiCounters
}

// init makes the per-API counters.
func (st *serverStats) init() {
	st.apis = make(map[int16]*apiCounters, len(apis))
	for k := range apis {
		st.apis[k] = new(apiCounters)
	}
}

// Stats returns the server's counters. It may be called at any time, after
// Shutdown too (the counters then stay as they were, with no connection
// open).
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	st := Stats{
		ConnectionsOpen:     open,
		ConnectionsAccepted: s.stats.accepted.Load(),
		ConnectionsRefused:  s.stats.refused.Load(),
		Unsupported:         s.stats.unsupported.Load(),
		Requests:            make(map[string]APIStats, len(s.stats.apis)),
	}
	for k, c := range s.stats.apis {
		st.Requests[kmsg.NameForKey(k)] = APIStats{Requests: c.requests.Load(), Errors: c.errors.Load()}
	}
	return st
}
