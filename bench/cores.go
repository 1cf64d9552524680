package main

import (
	"context"
	"fmt"
	"runtime"
)

// The cores row (#19): N goroutines, each publishing to (then reading) a
// partition of its own, N from 1 up to the machine's cores. Partitions
// share nothing a user can see, so the total should grow with N as long as
// there are cores for it; a lock the partitions share would show here and,
// with -mutexprofile, in the mutex profile. Ours and the raw file only.

const (
	coresSection = "Many cores: N partitions, each published to and then read by a goroutine of its own (ours and the raw file only)."
	// parallelNotSupported is why the other peers have no cores row.
	parallelNotSupported = "ours and the raw file only: a row about our partitions sharing nothing"
)

// coreCounts are the Ns of the cores row: 1, 2, 4, ... up to the cores,
// and the cores themselves.
func coreCounts() []int {
	var ns []int
	for n := 1; n < runtime.NumCPU(); n *= 2 {
		ns = append(ns, n)
	}
	return append(ns, runtime.NumCPU())
}

// coresPerCall is the records per Broker.Publish call of the row's batched
// figures, as in the publish row.
const coresPerCall = 1000

func coresWorkload(s sizes) workload {
	ns := coreCounts()
	var metrics []metricSpec
	for _, kind := range []struct{ key, label string }{
		{"publish_batched", fmt.Sprintf("publish, %s per call", count(coresPerCall))},
		{"publish_one", "publish, 1 per call"},
		{"consume", "consume, a Reader each"},
	} {
		for _, n := range ns {
			metrics = append(metrics, rateMetric(fmt.Sprintf("cores_%s_%d_msgs", kind.key, n), fmt.Sprintf("%s: msg/s total, N = %d", kind.label, n)))
		}
		if len(ns) > 1 {
			metrics = append(metrics, factorMetric(fmt.Sprintf("cores_%s_scaling", kind.key), fmt.Sprintf("%s: N = %d ÷ N = 1", kind.label, ns[len(ns)-1]), true))
		}
	}
	return workload{id: "cores", section: coresSection,
		title:   fmt.Sprintf("%s × 100 B (%s with 1 record per call) over N partitions", count(s.records), count(coresSingles(s))),
		metrics: metrics,
		run:     cores}
}

// coresSingles is how many records the 1-record-per-call figures publish.
func coresSingles(s sizes) int { return min(s.records, s.latencyMax) }

// cores publishes (a warm-up first, untimed) and reads with N goroutines
// for each N, the median of rounds each; every figure is the records of a
// round over its time.
func cores(ctx context.Context, e *env, p peer) ([]float64, error) {
	ns := coreCounts()
	v := payload(100)
	return withInstance(ctx, e, p, startOptions{partitions: ns[len(ns)-1]}, func(inst instance) ([]float64, error) {
		if err := inst.publishParallel(ctx, max(e.records/10, ns[len(ns)-1]), ns[len(ns)-1], coresPerCall, v); err != nil {
			return nil, err
		}
		// Each partition i < N gets n/N records from the N-goroutine round:
		// enough for the reads of N goroutines afterwards.
		var out []float64
		for _, kind := range []struct {
			n  int
			fn func(n, g int) error
		}{
			{e.records, func(n, g int) error { return inst.publishParallel(ctx, n, g, coresPerCall, v) }},
			{coresSingles(e.sizes), func(n, g int) error { return inst.publishParallel(ctx, n, g, 1, v) }},
			{e.records, func(n, g int) error { return inst.readParallel(ctx, n, g) }},
		} {
			var rates []float64
			for _, g := range ns {
				d, _, err := rounds(e.budget, func() error { return kind.fn(kind.n, g) })
				if err != nil {
					return nil, err
				}
				rates = append(rates, float64(kind.n/g*g)/seconds(d))
			}
			out = append(out, rates...)
			if len(ns) > 1 {
				out = append(out, rates[len(rates)-1]/rates[0])
			}
		}
		return out, nil
	})
}
