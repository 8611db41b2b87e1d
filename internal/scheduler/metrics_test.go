package scheduler_test

import (
	"context"
	"io"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/skiff-sh/skiff/internal/testenv"
)

// scrape reads the API server's /metrics, where the scheduler's metrics are
// served from the process's component registry.
func scrape(t *testing.T, env *testenv.Env) map[string]*dto.MetricFamily {
	t.Helper()
	rc := env.Client.CoreV1().RESTClient().Get().AbsPath("/metrics")
	body, err := rc.Stream(context.Background())
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the counter, gauge or histogram count of name with label=value.
func value(fams map[string]*dto.MetricFamily, name, label, want string) float64 {
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == want {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

// The metrics are process-wide (other tests' schedulers add to them), so
// the test looks at what its own pods add.
func TestSchedulingAttemptsAndPendingPodsAreMeasured(t *testing.T) {
	env := start(t)
	before := scrape(t, env)
	create(t, env, node("m1", "2", "4Gi"), pod("fits", "1"), pod("too-big", "8"))
	waitBound(t, env, "fits")
	waitUnschedulable(t, env, "too-big", "0/1 nodes are available: 1 Insufficient cpu.")

	var after map[string]*dto.MetricFamily
	testenv.Eventually(t, wait, "attempts counted", func() bool {
		after = scrape(t, env)
		return value(after, "scheduler_schedule_attempts_total", "result", "scheduled") >= value(before, "scheduler_schedule_attempts_total", "result", "scheduled")+1 &&
			value(after, "scheduler_schedule_attempts_total", "result", "unschedulable") >= value(before, "scheduler_schedule_attempts_total", "result", "unschedulable")+1
	})
	if n := value(after, "scheduler_scheduling_attempt_duration_seconds", "result", "scheduled"); n < 1 {
		t.Errorf("no scheduled attempt durations observed")
	}
	if n := value(after, "scheduler_pending_pods", "queue", "unschedulable"); n < 1 {
		t.Errorf("scheduler_pending_pods{queue=unschedulable} = %v with a pod waiting", n)
	}
	queues := map[string]bool{}
	for _, m := range after["scheduler_pending_pods"].GetMetric() {
		for _, l := range m.GetLabel() {
			queues[l.GetName()+"="+l.GetValue()] = true
		}
	}
	for _, q := range []string{"active", "backoff", "unschedulable", "gated"} {
		if !queues["queue="+q] {
			t.Errorf("no scheduler_pending_pods{queue=%q}", q)
		}
	}
}
