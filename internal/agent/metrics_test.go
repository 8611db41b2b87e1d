package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	criapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/process"
)

// sample finds the value of name whose labels include want.
func sample(fams []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func mustSample(t *testing.T, fams []*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := sample(fams, name, labels)
	if !ok {
		t.Fatalf("no %s%v", name, labels)
	}
	return v
}

func gather(t *testing.T, r *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	fams, err := r.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return fams
}

// procCPUSeconds is what ps reports as a process's CPU time (utime+stime).
func procCPUSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// procRSS is the resident set size of a process in bytes, as ps shows it.
func procRSS(t *testing.T, pid int) float64 {
	t.Helper()
	kv, err := readKV("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	return float64(kv["VmRSS:"] * 1024)
}

// A container burning CPU and one holding 50 MB, in a real sandbox of the
// process runtime: /metrics/resource agrees with what /proc says of their
// processes, and /metrics counts them.
func TestResourceMetricsOfRealContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: container figures come from cgroups")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "runtime")
	// The test binary is the shim: see TestMain.
	rt, err := process.New(process.Options{RootDir: root, NodeIP: "127.0.0.1", ShimCommand: []string{exe}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := process.Reset(root); err != nil {
			t.Errorf("reset: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "work", Namespace: "ns1", Uid: "uid-1"},
		LogDirectory: filepath.Join(dir, "logs"),
	}
	sb, err := rt.RunPodSandbox(ctx, sbCfg, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{log: slog.Default()}
	a.metrics = newAgentMetrics(a)
	a.rt = instrumentedRuntime{RuntimeService: rt, m: a.metrics}
	pids := map[string]int{}
	for name, cmd := range map[string]string{
		"spin": "while :; do :; done",
		"hold": "x=$(head -c 50000000 /dev/zero | tr '\\0' x); sleep 60",
	} {
		id, err := a.rt.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Command: []string{"sh", "-c", cmd}, LogPath: name + ".log",
		}, sbCfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		st, err := a.rt.ContainerStatus(ctx, id, true)
		if err != nil {
			t.Fatal(err)
		}
		pids[name], _ = strconv.Atoi(st.Info["pid"])
	}
	spin := map[string]string{"container": "spin", "pod": "work", "namespace": "ns1"}
	hold := map[string]string{"container": "hold", "pod": "work", "namespace": "ns1"}

	// The holder's string fills up as the shell reads it.
	var fams []*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = gather(t, a.metrics.resource)
		if v, ok := sample(fams, "container_memory_working_set_bytes", hold); ok && v >= 48e6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("holder working set never reached 48 MB")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ws, rss := mustSample(t, fams, "container_memory_working_set_bytes", hold), procRSS(t, pids["hold"]); ws < rss*0.9 {
		t.Errorf("holder working set %.0f below its RSS %.0f", ws, rss)
	}

	// CPU: the container's cgroup counts exactly what the kernel charges the
	// process, which /proc shows in 10 ms ticks.
	before := procCPUSeconds(t, pids["spin"])
	fams = gather(t, a.metrics.resource)
	after := procCPUSeconds(t, pids["spin"])
	cpu := mustSample(t, fams, "container_cpu_usage_seconds_total", spin)
	if cpu < before-0.1 || cpu > after+0.1 {
		t.Errorf("spin cpu %.3fs, /proc says %.2f…%.2fs", cpu, before, after)
	}
	grew := func() bool {
		return mustSample(t, gather(t, a.metrics.resource), "container_cpu_usage_seconds_total", spin) > cpu+0.05
	}
	for deadline := time.Now().Add(10 * time.Second); !grew(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("spin cpu does not grow")
		}
	}
	podCPU := mustSample(t, fams, "pod_cpu_usage_seconds_total", map[string]string{"pod": "work", "namespace": "ns1"})
	if podCPU < cpu {
		t.Errorf("pod cpu %.3f below its container's %.3f", podCPU, cpu)
	}
	if node := mustSample(t, fams, "node_cpu_usage_seconds_total", nil); node < cpu {
		t.Errorf("node cpu %.3f below a container's %.3f", node, cpu)
	}
	if node := mustSample(t, fams, "node_memory_working_set_bytes", nil); node < 48e6 {
		t.Errorf("node working set %.0f below the holder's", node)
	}
	if start := mustSample(t, fams, "container_start_time_seconds", spin); time.Since(time.Unix(int64(start), 0)) > time.Minute {
		t.Errorf("spin start time %v", time.Unix(int64(start), 0))
	}
	if e := mustSample(t, fams, "scrape_error", nil); e != 0 {
		t.Errorf("scrape_error %v", e)
	}

	km := gather(t, a.metrics.registry)
	if n := mustSample(t, km, "kubelet_running_pods", nil); n != 1 {
		t.Errorf("kubelet_running_pods %v, want 1", n)
	}
	if n := mustSample(t, km, "kubelet_running_containers", map[string]string{"container_state": "running"}); n != 2 {
		t.Errorf("kubelet_running_containers{running} %v, want 2", n)
	}
	if n := mustSample(t, km, "kubelet_runtime_operations_duration_seconds", map[string]string{"operation_type": "start_container"}); n != 2 {
		t.Errorf("start_container operations observed %v, want 2", n)
	}
}

// statsRuntime reports one pod's stats and its containers; any other CRI
// call panics on the nil embedded interface.
type statsRuntime struct {
	criapi.RuntimeService
	pods       []*runtimeapi.PodSandboxStats
	containers []*runtimeapi.Container
}

func (r statsRuntime) ListPodSandboxStats(context.Context, *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	return r.pods, nil
}

func (r statsRuntime) ListContainers(context.Context, *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	return r.containers, nil
}

// A scrape of /metrics/resource lists containers once, whatever their
// number, and takes their start times from it.
func TestResourceMetricsListContainersOnce(t *testing.T) {
	created := time.Unix(1700000000, 0)
	usage := func(id, name string) *runtimeapi.ContainerStats {
		return &runtimeapi.ContainerStats{
			Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}},
			Cpu:        &runtimeapi.CpuUsage{Timestamp: 1, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 1e9}},
		}
	}
	rt := statsRuntime{
		pods: []*runtimeapi.PodSandboxStats{{
			Attributes: &runtimeapi.PodSandboxAttributes{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns"}},
			Linux:      &runtimeapi.LinuxPodSandboxStats{Containers: []*runtimeapi.ContainerStats{usage("a", "main"), usage("b", "side")}},
		}},
		containers: []*runtimeapi.Container{
			{Id: "a", CreatedAt: created.UnixNano()},
			{Id: "b", CreatedAt: created.Add(time.Second).UnixNano()},
		},
	}
	a := &Agent{log: slog.Default()}
	a.metrics = newAgentMetrics(a)
	a.rt = instrumentedRuntime{RuntimeService: rt, m: a.metrics}
	fams := gather(t, a.metrics.resource)
	for ctr, want := range map[string]time.Time{"main": created, "side": created.Add(time.Second)} {
		got := mustSample(t, fams, "container_start_time_seconds", map[string]string{"container": ctr, "pod": "web", "namespace": "ns"})
		if got != float64(want.UnixNano())/1e9 {
			t.Errorf("%s start time %v, want %v", ctr, got, float64(want.UnixNano())/1e9)
		}
	}
	// Only the runtime calls: the rest of /metrics makes its own.
	ops := prometheus.NewRegistry()
	ops.MustRegister(a.metrics.runtimeTotal)
	if n := mustSample(t, gather(t, ops), "kubelet_runtime_operations_total", map[string]string{"operation_type": "list_containers"}); n != 1 {
		t.Errorf("list_containers called %v times in one scrape, want 1", n)
	}
}
