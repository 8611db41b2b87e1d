// Package metrics holds the Prometheus registry shared by the components
// that run inside `skiff server` beside the API server: the scheduler and
// the controllers' workqueues. Like upstream's legacy registry it is one per
// process (client-go's workqueue metrics are process-wide too); the API
// server serves it on /metrics together with its own metrics.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Registry is the process's component registry. Packages register their
// collectors once, when first used; it holds no Go or process collectors,
// which the API server's own registry already has.
var Registry = prometheus.NewRegistry()
