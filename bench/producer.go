package main

import (
	"context"
	"fmt"
)

// The producer row (#19): the way most applications publish, one record
// per call with a callback each, through the peer's batching producer
// (ours: stream.Producer; kgo: async Produce with a promise per record;
// JetStream: PublishAsync; the raw file: a frame per 512 KiB under a lock),
// lingering eventLinger, from one goroutine and from producerGoroutines,
// keyless to a topic of one partition and keyed (producerKeys distinct
// keys, placed by the key's hash) to a topic of producerPartitions. A round
// is timed from its first publish until flush returns: every record
// acknowledged and its callback run.

const (
	producerGoroutines = 8
	producerKeys       = 10_000
)

func producerWorkload(s sizes) workload {
	return workload{id: "producer",
		title: fmt.Sprintf("Producer.Publish with a callback per record, %s × 100 B, Linger %v", count(s.records), eventLinger),
		metrics: []metricSpec{
			rateMetric("producer_1g_msgs", "msg/s, 1 goroutine, keyless, 1 partition"),
			rateMetric("producer_8g_msgs", fmt.Sprintf("msg/s, %d goroutines, keyless, 1 partition", producerGoroutines)),
			rateMetric("producer_keyed_1g_msgs", fmt.Sprintf("msg/s, 1 goroutine, keyed, %d partitions", producerPartitions)),
			rateMetric("producer_keyed_8g_msgs", fmt.Sprintf("msg/s, %d goroutines, keyed, %d partitions", producerGoroutines, producerPartitions)),
		},
		run: producerRun}
}

// producerGoals are #19's goals for the producer row: on each figure at
// least half of ours' batched Publish (the publish row of the same run:
// 1,000 records per call, one partition) and 6× kfake's same figure; from
// 8 goroutines at least as fast as from one.
func producerGoals() []goal {
	vsPublish := func(key string) goal {
		return goal{key, "≥ 0.5× batched Publish and ≥ 6× kfake", func(v float64, r *report) bool {
			batched, ok := r.value("publish_100B_msgs", r.ours)
			kf := bestKfake(r, key)
			return ok && v >= 0.5*batched && kf > 0 && v >= 6*kf
		}}
	}
	vsOne := func(key, one string) goal {
		return goal{key, "≥ 1 goroutine", func(v float64, r *report) bool {
			o, ok := r.value(one, r.ours)
			return ok && v >= o
		}}
	}
	return []goal{
		vsPublish("producer_1g_msgs"),
		vsPublish("producer_8g_msgs"), vsOne("producer_8g_msgs", "producer_1g_msgs"),
		vsPublish("producer_keyed_1g_msgs"),
		vsPublish("producer_keyed_8g_msgs"), vsOne("producer_keyed_8g_msgs", "producer_keyed_1g_msgs"),
	}
}

// producerRun measures the producer row: keyless, then keyed, each on an
// instance of its own; after a warm-up of a tenth of the records from one
// goroutine, rounds of all of them (the median) from one goroutine, then
// from producerGoroutines.
func producerRun(ctx context.Context, e *env, p peer) ([]float64, error) {
	v := payload(100)
	keys := make([][]byte, producerKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%06d", i)
	}
	var out []float64
	for _, keyed := range []bool{false, true} {
		o := startOptions{}
		if keyed {
			o.partitions = producerPartitions
		}
		vals, err := withInstance(ctx, e, p, o, func(inst instance) (vals []float64, err error) {
			pr, err := inst.newProducer(ctx, keyed)
			if err != nil {
				return nil, err
			}
			defer func() {
				if cerr := pr.close(); err == nil {
					err = cerr
				}
			}()
			pr.prepare(e.records)
			var published int64
			round := func(n, g int) error {
				if err := fanOut(g, func(w int) error {
					for i := w * n / g; i < (w+1)*n/g; i++ {
						var k []byte
						if keyed {
							k = keys[i%len(keys)]
						}
						pr.publish(ctx, i, k, v)
					}
					return nil
				}); err != nil {
					return err
				}
				acked, err := pr.flush(ctx)
				if err == nil && acked != int64(n) {
					err = fmt.Errorf("%d of %d records acknowledged", acked, n)
				}
				published += int64(n)
				return err
			}
			if err := round(max(e.records/10, 1), 1); err != nil {
				return nil, err
			}
			for _, g := range []int{1, producerGoroutines} {
				d, _, err := rounds(e.budget, func() error { return round(e.records, g) })
				if err != nil {
					return nil, err
				}
				vals = append(vals, float64(e.records)/seconds(d))
			}
			if !keyed {
				err = expectRecords(ctx, inst, published)
			}
			return vals, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, vals...)
	}
	return out, nil
}
