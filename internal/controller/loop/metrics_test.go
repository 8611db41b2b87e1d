package loop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/skiff-sh/skiff/internal/metrics"
)

// queueMetric is the value of a workqueue metric of the queue named name.
func queueMetric(t *testing.T, metric, name string) (float64, bool) {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.Metric {
			if len(m.Label) == 1 && m.Label[0].GetName() == "name" && m.Label[0].GetValue() == name {
				return metricValue(m), true
			}
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// A key that fails once and then syncs shows up in every workqueue metric
// under the queue's name, as client-go reports it upstream.
func TestQueueReportsWorkqueueMetrics(t *testing.T) {
	const name = "metrics-test"
	// The registry is process-wide: compare with what earlier runs (-count) left.
	counters := []string{"workqueue_adds_total", "workqueue_retries_total", "workqueue_work_duration_seconds", "workqueue_queue_duration_seconds"}
	before := map[string]float64{}
	for _, m := range counters {
		before[m], _ = queueMetric(t, m, name)
	}
	var calls atomic.Int32
	q := New(name, func(context.Context, string) error {
		if calls.Add(1) == 1 {
			return errors.New("first try fails")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx, 1) }()
	defer func() { cancel(); <-done }()
	q.Add("k")

	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("key synced %d times, want a failure and a success", calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := map[string]float64{
		"workqueue_adds_total":             2, // the add and the rate-limited retry
		"workqueue_retries_total":          1,
		"workqueue_work_duration_seconds":  2,
		"workqueue_queue_duration_seconds": 2,
		"workqueue_depth":                  0,
	}
	for metric, v := range want {
		v += before[metric]
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			got, ok := queueMetric(t, metric, name)
			if ok && got == v {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s{name=%q} = %v (present %v), want %v", metric, name, got, ok, v)
				break
			}
		}
	}
	for _, metric := range []string{"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"} {
		if _, ok := queueMetric(t, metric, name); !ok {
			t.Errorf("no %s{name=%q}", metric, name)
		}
	}
}
