package prometheus_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/embedstream/stream"
	esprom "github.com/embedstream/stream/prometheus"
)

// Serving /metrics: register the broker's Collector with a registry and
// serve it with promhttp. Prometheus then scrapes the URL (see
// doc/prometheus.md for a scrape config).
func Example() {
	dir, err := os.MkdirTemp("", "embedstream-prometheus")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	b, err := stream.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic("orders", stream.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	if err := b.Publish(context.Background(), &stream.Record{Topic: "orders", Value: []byte("hello")}); err != nil {
		panic(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(esprom.NewCollector(b, &esprom.Options{PerPartition: true}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux) // in a program: http.ListenAndServe(":9464", mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "embedstream_log_end_offset") || strings.HasPrefix(line, "embedstream_published_records_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// embedstream_log_end_offset{partition="0",topic="orders"} 1
	// embedstream_published_records_total 1
}
