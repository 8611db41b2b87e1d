package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	criapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// agentMetrics are the kubelet's Prometheus metrics under upstream's names.
// Each agent has its own registries: tests run several agents in one process.
// /metrics/resource has a registry of its own, as the kubelet's: it is what
// the API server scrapes for metrics.k8s.io, so it stays small.
type agentMetrics struct {
	registry     *prometheus.Registry // /metrics
	resource     *prometheus.Registry // /metrics/resource
	podStart     prometheus.Histogram
	probes       *prometheus.CounterVec
	runtimeOps   *prometheus.HistogramVec
	runtimeTotal *prometheus.CounterVec
	runtimeErrs  *prometheus.CounterVec

	mu        sync.Mutex
	firstSeen map[types.UID]time.Time // when a pod was first seen, until it first runs
}

func newAgentMetrics(a *Agent) *agentMetrics {
	m := &agentMetrics{
		registry: prometheus.NewRegistry(),
		resource: prometheus.NewRegistry(),
		podStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "pod_start_duration_seconds",
			Help:    "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
			Buckets: []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600},
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "prober", Name: "probe_total",
			Help: "Cumulative number of a liveness, readiness or startup probe for a container by result.",
		}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
		runtimeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "runtime_operations_duration_seconds",
			Help:    "Duration in seconds of runtime operations. Broken down by operation type.",
			Buckets: prometheus.ExponentialBuckets(.005, 2.5, 14),
		}, []string{"operation_type"}),
		runtimeTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "runtime_operations_total",
			Help: "Cumulative number of runtime operations by operation type.",
		}, []string{"operation_type"}),
		runtimeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "runtime_operations_errors_total",
			Help: "Cumulative number of runtime operation errors by operation type.",
		}, []string{"operation_type"}),
		firstSeen: map[types.UID]time.Time{},
	}
	m.registry.MustRegister(m.podStart, m.probes, m.runtimeOps, m.runtimeTotal, m.runtimeErrs, &runningCollector{a: a})
	m.resource.MustRegister(&resourceCollector{a: a})
	return m
}

// seen notes the first time the agent sees a pod.
func (m *agentMetrics) seen(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.firstSeen[uid]; !ok {
		m.firstSeen[uid] = time.Now()
	}
}

// posted observes the pod start duration when a written status first says
// Running, and forgets pods that will not start.
func (m *agentMetrics) posted(uid types.UID, phase corev1.PodPhase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.firstSeen[uid]
	if !ok {
		return
	}
	switch phase {
	case corev1.PodRunning:
		m.podStart.Observe(time.Since(t).Seconds())
		delete(m.firstSeen, uid)
	case corev1.PodSucceeded, corev1.PodFailed:
		delete(m.firstSeen, uid)
	}
}

// forget drops a pod that went away before it ran.
func (m *agentMetrics) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.firstSeen, uid)
	m.mu.Unlock()
}

// probed counts one probe result; probeType is "Liveness", "Readiness" or "Startup".
func (m *agentMetrics) probed(probeType string, ok bool, pod *corev1.Pod, container string) {
	result := "failed"
	if ok {
		result = "successful"
	}
	m.probes.WithLabelValues(probeType, result, container, pod.Name, pod.Namespace, string(pod.UID)).Inc()
}

var (
	runningPodsDesc = prometheus.NewDesc("kubelet_running_pods",
		"Number of pods that have a running pod sandbox", nil, nil)
	runningContainersDesc = prometheus.NewDesc("kubelet_running_containers",
		"Number of containers currently running", []string{"container_state"}, nil)
)

// runningCollector counts sandboxes and containers from the runtime at scrape
// time, so the figures cannot drift from what runs.
type runningCollector struct{ a *Agent }

func (c *runningCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
}

func (c *runningCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sbs, err := c.a.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}); err == nil {
		ch <- prometheus.MustNewConstMetric(runningPodsDesc, prometheus.GaugeValue, float64(len(sbs)))
	}
	cs, err := c.a.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{})
	if err != nil {
		return
	}
	counts := map[string]int{"created": 0, "running": 0, "exited": 0, "unknown": 0}
	for _, ctr := range cs {
		counts[containerStateLabel(ctr.State)]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, float64(n), state)
	}
}

func containerStateLabel(s runtimeapi.ContainerState) string {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return "created"
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return "running"
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return "exited"
	}
	return "unknown"
}

// The /metrics/resource series, named and labelled as the kubelet's, which
// metrics-server (and skiff's API server) scrape.
var (
	nodeCPUDesc = prometheus.NewDesc("node_cpu_usage_seconds_total",
		"Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	nodeMemDesc = prometheus.NewDesc("node_memory_working_set_bytes",
		"Current working set of the node in bytes", nil, nil)
	containerCPUDesc = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"Cumulative cpu time consumed by the container in core-seconds", []string{"container", "pod", "namespace"}, nil)
	containerMemDesc = prometheus.NewDesc("container_memory_working_set_bytes",
		"Current working set of the container in bytes", []string{"container", "pod", "namespace"}, nil)
	containerStartDesc = prometheus.NewDesc("container_start_time_seconds",
		"Start time of the container since unix epoch in seconds", []string{"container", "pod", "namespace"}, nil)
	podCPUDesc = prometheus.NewDesc("pod_cpu_usage_seconds_total",
		"Cumulative cpu time consumed by the pod in core-seconds", []string{"pod", "namespace"}, nil)
	podMemDesc = prometheus.NewDesc("pod_memory_working_set_bytes",
		"Current working set of the pod in bytes", []string{"pod", "namespace"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("scrape_error",
		"1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// resourceCollector reads node, pod and container usage at scrape time:
// the node from its root cgroup (or /proc), pods and containers through the
// CRI stats calls. Samples carry the time they were read, so a scraper can
// compute CPU rates between two scrapes exactly.
type resourceCollector struct{ a *Agent }

func (c *resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeCPUDesc, nodeMemDesc, containerCPUDesc, containerMemDesc,
		containerStartDesc, podCPUDesc, podMemDesc, scrapeErrorDesc} {
		ch <- d
	}
}

func (c *resourceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scrapeErr := 0.0
	if n, err := readNodeUsage(); err == nil {
		ch <- prometheus.NewMetricWithTimestamp(n.at, prometheus.MustNewConstMetric(nodeCPUDesc, prometheus.CounterValue, float64(n.cpuNanos)/1e9))
		ch <- prometheus.NewMetricWithTimestamp(n.at, prometheus.MustNewConstMetric(nodeMemDesc, prometheus.GaugeValue, float64(n.workingSet)))
	} else {
		c.a.log.Warn("read node usage", "err", err)
		scrapeErr = 1
	}
	pods, err := c.a.rt.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{})
	if err != nil {
		scrapeErr = 1
	}
	// No CRI call lists start times, so a container's start time is its
	// creation time, as in the kubelet's CRI stats provider: one
	// ListContainers per scrape rather than a ContainerStatus per container.
	// A restart is a new container, so scrapers still tell restarts by it.
	// Listed after the stats, so it has the containers they report.
	created := map[string]int64{}
	if cs, err := c.a.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{}); err == nil {
		for _, ctr := range cs {
			created[ctr.Id] = ctr.CreatedAt
		}
	} else {
		scrapeErr = 1
	}
	for _, p := range pods {
		md, lx := p.GetAttributes().GetMetadata(), p.GetLinux()
		if md == nil || lx == nil {
			continue
		}
		emitUsage(ch, podCPUDesc, podMemDesc, lx.Cpu, lx.Memory, md.Name, md.Namespace)
		for _, cs := range lx.Containers {
			name := cs.GetAttributes().GetMetadata().GetName()
			emitUsage(ch, containerCPUDesc, containerMemDesc, cs.Cpu, cs.Memory, name, md.Name, md.Namespace)
			if at := created[cs.GetAttributes().GetId()]; at > 0 {
				ch <- prometheus.MustNewConstMetric(containerStartDesc, prometheus.GaugeValue, float64(at)/1e9, name, md.Name, md.Namespace)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, scrapeErr)
}

func emitUsage(ch chan<- prometheus.Metric, cpuDesc, memDesc *prometheus.Desc, cpu *runtimeapi.CpuUsage, mem *runtimeapi.MemoryUsage, labels ...string) {
	if cpu.GetUsageCoreNanoSeconds() != nil {
		ch <- prometheus.NewMetricWithTimestamp(time.Unix(0, cpu.Timestamp),
			prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, float64(cpu.UsageCoreNanoSeconds.Value)/1e9, labels...))
	}
	if mem.GetWorkingSetBytes() != nil {
		ch <- prometheus.NewMetricWithTimestamp(time.Unix(0, mem.Timestamp),
			prometheus.MustNewConstMetric(memDesc, prometheus.GaugeValue, float64(mem.WorkingSetBytes.Value), labels...))
	}
}

// nodeUsage is the whole machine's usage at one moment.
type nodeUsage struct {
	at         time.Time
	cpuNanos   uint64
	workingSet uint64
}

// cgroupRoot is where the node's root cgroup is read (a variable for tests).
var cgroupRoot = "/sys/fs/cgroup"

// readNodeUsage reads the root cgroup as the kubelet (through cAdvisor)
// does: CPU from cpuacct.usage (v1) or cpu.stat (v2), the working set as
// memory usage minus inactive file cache. Without a readable root cgroup
// it falls back to /proc/stat and /proc/meminfo.
func readNodeUsage() (nodeUsage, error) {
	u := nodeUsage{at: time.Now()}
	root := cgroupRoot
	if cpu, err := readUintFile(root + "/cpuacct/cpuacct.usage"); err == nil {
		usage, err1 := readUintFile(root + "/memory/memory.usage_in_bytes")
		stat, err2 := readKV(root + "/memory/memory.stat")
		if err1 == nil && err2 == nil {
			u.cpuNanos = cpu
			u.workingSet = usage - min(usage, stat["total_inactive_file"])
			return u, nil
		}
	}
	if cpu, err := readKV(root + "/cpu.stat"); err == nil && cpu["usage_usec"] > 0 {
		mem, err := readKV("/proc/meminfo")
		if err == nil {
			u.cpuNanos = cpu["usage_usec"] * 1000
			u.workingSet = (mem["MemTotal:"] - min(mem["MemTotal:"], mem["MemAvailable:"])) * 1024
			return u, nil
		}
	}
	return procNodeUsage(u)
}

// procNodeUsage reads /proc: busy CPU time (all but idle and iowait, in
// USER_HZ ticks of 10 ms) and memory in use (total minus available).
func procNodeUsage(u nodeUsage) (nodeUsage, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return u, fmt.Errorf("read node cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return u, fmt.Errorf("read node cpu: unexpected /proc/stat %q", line)
	}
	var ticks uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	u.cpuNanos = ticks * 1e7
	mem, err := readKV("/proc/meminfo")
	if err != nil {
		return u, fmt.Errorf("read node memory: %w", err)
	}
	u.workingSet = (mem["MemTotal:"] - min(mem["MemTotal:"], mem["MemAvailable:"])) * 1024
	return u, nil
}

func readUintFile(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
}

// readKV reads "key value [unit]" lines (memory.stat, cpu.stat, meminfo).
func readKV(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		if v, err := strconv.ParseUint(fs[1], 10, 64); err == nil {
			out[fs[0]] = v
		}
	}
	return out, sc.Err()
}

// instrumentedRuntime times every CRI call the agent makes, as the kubelet's
// instrumentedRuntimeService does (kubelet_runtime_operations_*). Calls not
// listed here pass through the embedded interface untimed.
type instrumentedRuntime struct {
	criapi.RuntimeService
	m *agentMetrics
}

func (r instrumentedRuntime) record(op string, start time.Time, err error) {
	r.m.runtimeOps.WithLabelValues(op).Observe(time.Since(start).Seconds())
	r.m.runtimeTotal.WithLabelValues(op).Inc()
	if err != nil {
		r.m.runtimeErrs.WithLabelValues(op).Inc()
	}
}

func (r instrumentedRuntime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (id string, err error) {
	defer func(t time.Time) { r.record("run_podsandbox", t, err) }(time.Now())
	return r.RuntimeService.RunPodSandbox(ctx, config, handler)
}

func (r instrumentedRuntime) StopPodSandbox(ctx context.Context, id string) (err error) {
	defer func(t time.Time) { r.record("stop_podsandbox", t, err) }(time.Now())
	return r.RuntimeService.StopPodSandbox(ctx, id)
}

func (r instrumentedRuntime) RemovePodSandbox(ctx context.Context, id string) (err error) {
	defer func(t time.Time) { r.record("remove_podsandbox", t, err) }(time.Now())
	return r.RuntimeService.RemovePodSandbox(ctx, id)
}

func (r instrumentedRuntime) ListPodSandbox(ctx context.Context, f *runtimeapi.PodSandboxFilter) (out []*runtimeapi.PodSandbox, err error) {
	defer func(t time.Time) { r.record("list_podsandbox", t, err) }(time.Now())
	return r.RuntimeService.ListPodSandbox(ctx, f)
}

func (r instrumentedRuntime) CreateContainer(ctx context.Context, sb string, c *runtimeapi.ContainerConfig, sbc *runtimeapi.PodSandboxConfig) (id string, err error) {
	defer func(t time.Time) { r.record("create_container", t, err) }(time.Now())
	return r.RuntimeService.CreateContainer(ctx, sb, c, sbc)
}

func (r instrumentedRuntime) StartContainer(ctx context.Context, id string) (err error) {
	defer func(t time.Time) { r.record("start_container", t, err) }(time.Now())
	return r.RuntimeService.StartContainer(ctx, id)
}

func (r instrumentedRuntime) StopContainer(ctx context.Context, id string, timeout int64) (err error) {
	defer func(t time.Time) { r.record("stop_container", t, err) }(time.Now())
	return r.RuntimeService.StopContainer(ctx, id, timeout)
}

func (r instrumentedRuntime) RemoveContainer(ctx context.Context, id string) (err error) {
	defer func(t time.Time) { r.record("remove_container", t, err) }(time.Now())
	return r.RuntimeService.RemoveContainer(ctx, id)
}

func (r instrumentedRuntime) ListContainers(ctx context.Context, f *runtimeapi.ContainerFilter) (out []*runtimeapi.Container, err error) {
	defer func(t time.Time) { r.record("list_containers", t, err) }(time.Now())
	return r.RuntimeService.ListContainers(ctx, f)
}

func (r instrumentedRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (out *runtimeapi.ContainerStatusResponse, err error) {
	defer func(t time.Time) { r.record("container_status", t, err) }(time.Now())
	return r.RuntimeService.ContainerStatus(ctx, id, verbose)
}

func (r instrumentedRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error) {
	defer func(t time.Time) { r.record("exec_sync", t, err) }(time.Now())
	return r.RuntimeService.ExecSync(ctx, id, cmd, timeout)
}

func (r instrumentedRuntime) ListPodSandboxStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) (out []*runtimeapi.PodSandboxStats, err error) {
	defer func(t time.Time) { r.record("list_podsandbox_stats", t, err) }(time.Now())
	return r.RuntimeService.ListPodSandboxStats(ctx, f)
}
