package scheduler

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-sh/skiff/internal/metrics"
)

// Attempt results, as upstream's scheduler_schedule_attempts_total labels them.
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

// The scheduler's Prometheus metrics under upstream's names, on the
// process's component registry (served on the API server's /metrics).
var (
	scheduleAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "scheduler", Name: "schedule_attempts_total",
		Help: "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
	}, []string{"result", "profile"})
	attemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "scheduler", Name: "scheduling_attempt_duration_seconds",
		Help:    "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"result", "profile"})
	pendingPodsDesc = prometheus.NewDesc("scheduler_pending_pods",
		"Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.",
		[]string{"queue"}, nil)

	registerOnce sync.Once
	// running are the queues of the schedulers running in this process;
	// scheduler_pending_pods sums them at scrape time.
	running sync.Map // *Queue → struct{}
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(scheduleAttempts, attemptDuration, pendingCollector{})
	})
}

// observeAttempt records one scheduling attempt that began at start.
func observeAttempt(result string, start time.Time) {
	scheduleAttempts.WithLabelValues(result, SchedulerName).Inc()
	attemptDuration.WithLabelValues(result, SchedulerName).Observe(time.Since(start).Seconds())
}

// pendingCollector reads the queues' sizes when scraped, so the gauge can
// never drift from the queue.
type pendingCollector struct{}

func (pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingPodsDesc }

func (pendingCollector) Collect(ch chan<- prometheus.Metric) {
	var active, backoff, unschedulable int
	running.Range(func(k, _ any) bool {
		a, b, u := k.(*Queue).Counts()
		active, backoff, unschedulable = active+a, backoff+b, unschedulable+u
		return true
	})
	for q, n := range map[string]int{"active": active, "backoff": backoff, "unschedulable": unschedulable, "gated": 0} {
		ch <- prometheus.MustNewConstMetric(pendingPodsDesc, prometheus.GaugeValue, float64(n), q)
	}
}
