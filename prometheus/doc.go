// Package prometheus exports an embedstream Broker's statistics as
// Prometheus metrics: a Collector to register with a
// prometheus.Registerer, computed at each scrape from the broker's Stats,
// DescribeTopic and DescribeGroup.
//
// It lives in its own module so that users of the engine who do not use
// Prometheus pull in nothing of client_golang. Its name is the directory's;
// import it under another, since client_golang's package is prometheus too:
//
//	import esprom "github.com/embedstream/stream/prometheus"
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(esprom.NewCollector(b, nil))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The Kafka listener's metrics (connections, requests per API) are in the
// subpackage listenermetrics, so that a program without the listener
// compiles nothing of it.
//
// Names follow Prometheus' conventions: every one starts with
// embedstream_, sizes are in bytes and durations in seconds, counters end
// in _total. doc/prometheus.md has the table of metrics, their labels and
// the number of series they make; Collector's doc has the count too.
package prometheus
