package apiserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	componentmetrics "github.com/skiff-sh/skiff/internal/metrics"
)

// apiMetrics are the API server's Prometheus metrics, named as upstream's so
// existing dashboards and alerts work. Each server has its own registry:
// tests run several servers in one process.
type apiMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	watchers *prometheus.GaugeVec
	etcd     *prometheus.HistogramVec
	objects  *prometheus.GaugeVec
	// handler serves this registry and the in-process components' one.
	handler http.Handler
}

func newAPIMetrics() *apiMetrics {
	m := &apiMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, group, version, resource, subresource and HTTP response code.",
		}, []string{"verb", "group", "version", "resource", "subresource", "scope", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency distribution in seconds for each verb, group, version, resource, subresource and scope.",
			Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
		}, []string{"verb", "group", "version", "resource", "subresource", "scope"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_current_inflight_requests",
			Help: "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
		}, []string{"request_kind"}),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_longrunning_requests",
			Help: "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.",
		}, []string{"verb", "group", "version", "resource", "subresource", "scope", "component"}),
		etcd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcd_request_duration_seconds",
			Help:    "Etcd request latency in seconds for each operation and object type.",
			Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
		}, []string{"operation", "type"}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_storage_objects",
			Help: "Number of stored objects at the time of last check split by kind.",
		}, []string{"resource"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.inflight, m.watchers, m.etcd, m.objects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The scheduler and controllers run in this process; their metrics are served here too.
	m.handler = promhttp.HandlerFor(prometheus.Gatherers{m.registry, componentmetrics.Registry}, promhttp.HandlerOpts{})
	return m
}

// statusRecorder remembers the response code for the request metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush keeps watches and log streams streaming through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe records one finished resource request.
func (m *apiMetrics) observe(req *request, version string, code int, took time.Duration) {
	scope := "cluster"
	switch {
	case req.name != "":
		scope = "resource"
	case req.namespace != "":
		scope = "namespace"
	}
	verb := strings.ToUpper(req.verb)
	if req.verb == "update" {
		verb = "PUT"
	}
	gr := req.h.GR()
	m.requests.WithLabelValues(verb, gr.Group, version, gr.Resource, req.sub, scope, strconv.Itoa(code)).Inc()
	if req.verb != "watch" {
		m.latency.WithLabelValues(verb, gr.Group, version, gr.Resource, req.sub, scope).Observe(took.Seconds())
	}
}

// serveMetrics answers /metrics, refreshing the object counts from the caches first.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	for _, h := range s.resources {
		s.metrics.objects.WithLabelValues(h.GR().String()).Set(float64(h.store.Count()))
	}
	s.metrics.inflight.WithLabelValues("readOnly").Set(float64(len(s.readOnly)))
	s.metrics.inflight.WithLabelValues("mutating").Set(float64(len(s.mutating)))
	s.metrics.handler.ServeHTTP(w, r)
}
