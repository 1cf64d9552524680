// Package listenermetrics exports the Kafka listener's statistics
// (listener.Server.Stats) as Prometheus metrics: connections open,
// accepted and refused, and requests and their errors per Kafka API.
//
// It is a package of its own, apart from the broker's Collector, so that a
// program that serves no Kafka clients compiles nothing of the listener
// (nor of franz-go's protocol code that it brings).
//
// Series: 4 for the connections and unsupported requests, and 2 per API
// the listener serves (requests and errors; about 40 APIs, every one
// exported from the start so that a rate over them is defined before the
// first request): a fixed set, whatever the clients do.
package listenermetrics

import (
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/embedstream/stream/listener"
	esprom "github.com/embedstream/stream/prometheus"
)

// Collector exports a listener.Server's Stats, read at each scrape.
// Register it beside the broker's Collector. After the server is shut
// down it goes on exporting the counters as they were, with no
// connection open.
type Collector struct {
	s *listener.Server

	open, accepted, refused, unsupported *prom.Desc
	requests, errors                     *prom.Desc
}

// NewCollector returns a Collector of s's statistics.
func NewCollector(s *listener.Server) *Collector {
	name := func(n string) string { return esprom.Namespace + "_listener_" + n }
	return &Collector{
		s:           s,
		open:        prom.NewDesc(name("connections"), "Kafka client connections being served now.", nil, nil),
		accepted:    prom.NewDesc(name("connections_accepted_total"), "Kafka client connections accepted and served.", nil, nil),
		refused:     prom.NewDesc(name("connections_refused_total"), "Kafka client connections closed at once: over MaxConnections, or during shutdown.", nil, nil),
		unsupported: prom.NewDesc(name("unsupported_requests_total"), "Requests for an API or version the listener does not serve (each closed its connection).", nil, nil),
		requests:    prom.NewDesc(name("requests_total"), "Requests per Kafka API.", []string{"api"}, nil),
		errors:      prom.NewDesc(name("request_errors_total"), "Requests per Kafka API that closed their connection instead of being answered (unparsable, unauthorized, a failed handler).", []string{"api"}, nil),
	}
}

// Describe sends the description of every metric Collect sends.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, d := range []*prom.Desc{c.open, c.accepted, c.refused, c.unsupported, c.requests, c.errors} {
		ch <- d
	}
}

// Collect sends the metrics as they are now.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	st := c.s.Stats()
	ch <- prom.MustNewConstMetric(c.open, prom.GaugeValue, float64(st.ConnectionsOpen))
	ch <- prom.MustNewConstMetric(c.accepted, prom.CounterValue, float64(st.ConnectionsAccepted))
	ch <- prom.MustNewConstMetric(c.refused, prom.CounterValue, float64(st.ConnectionsRefused))
	ch <- prom.MustNewConstMetric(c.unsupported, prom.CounterValue, float64(st.Unsupported))
	for api, n := range st.Requests {
		ch <- prom.MustNewConstMetric(c.requests, prom.CounterValue, float64(n.Requests), api)
		ch <- prom.MustNewConstMetric(c.errors, prom.CounterValue, float64(n.Errors), api)
	}
}
