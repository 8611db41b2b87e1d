package loop

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/metrics"
)

// workqueueMetrics is client-go's workqueue.MetricsProvider backed by
// Prometheus, under the names and label (name) upstream's component-base
// registers, so every controller's queue shows up as
// workqueue_depth{name="replicaset"} and so on. It is one per process, as
// upstream's: queues of the same name (several servers in one test process)
// share their series.
type workqueueMetrics struct {
	adds, retries                   *prometheus.CounterVec
	depthGauge, unfinished, longest *prometheus.GaugeVec
	latency, workDuration           *prometheus.HistogramVec
}

var (
	providerOnce sync.Once
	provider     *workqueueMetrics
)

// metricsProvider registers the workqueue metrics on metrics.Registry the
// first time a queue is made.
func metricsProvider() workqueue.MetricsProvider {
	providerOnce.Do(func() {
		const sub = "workqueue"
		label := []string{"name"}
		provider = &workqueueMetrics{
			depthGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: sub, Name: "depth",
				Help: "Current depth of workqueue"}, label),
			adds: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: sub, Name: "adds_total",
				Help: "Total number of adds handled by workqueue"}, label),
			latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "queue_duration_seconds",
				Help:    "How long in seconds an item stays in workqueue before being requested.",
				Buckets: prometheus.ExponentialBuckets(10e-9, 10, 10)}, label),
			workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "work_duration_seconds",
				Help:    "How long in seconds processing an item from workqueue takes.",
				Buckets: prometheus.ExponentialBuckets(10e-9, 10, 10)}, label),
			unfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: sub, Name: "unfinished_work_seconds",
				Help: "How many seconds of work has done that is in progress and hasn't been observed by work_duration. " +
					"Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases."}, label),
			longest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: sub, Name: "longest_running_processor_seconds",
				Help: "How many seconds has the longest running processor for workqueue been running."}, label),
			retries: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: sub, Name: "retries_total",
				Help: "Total number of retries handled by workqueue"}, label),
		}
		p := provider
		metrics.Registry.MustRegister(p.depthGauge, p.adds, p.latency, p.workDuration, p.unfinished, p.longest, p.retries)
	})
	return provider
}

func (p *workqueueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depthGauge.WithLabelValues(name)
}

func (p *workqueueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.adds.WithLabelValues(name)
}

func (p *workqueueMetrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.WithLabelValues(name)
}

func (p *workqueueMetrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.workDuration.WithLabelValues(name)
}

func (p *workqueueMetrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinished.WithLabelValues(name)
}

func (p *workqueueMetrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longest.WithLabelValues(name)
}

func (p *workqueueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retries.WithLabelValues(name)
}
