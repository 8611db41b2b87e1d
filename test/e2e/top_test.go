package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/clientcmd"
)

// topRow finds name's row in kubectl top output and returns its fields.
func topRow(out, name string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i, v := range f {
			if v == name && i < 2 {
				return f
			}
		}
	}
	return nil
}

// quantity parses a kubectl top figure such as 998m or 201Mi.
func quantity(t *testing.T, s string) *resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return &q
}

// promNames parses Prometheus text into its metric families by name.
func promNames(t *testing.T, what, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s is not Prometheus text: %v", what, err)
	}
	return fams
}

func wantNames(t *testing.T, what string, got map[string]*dto.MetricFamily, want ...string) {
	t.Helper()
	for _, n := range want {
		if got[n] == nil {
			t.Errorf("%s lacks %s", what, n)
		}
	}
}

func TestTopAndMetrics(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: container figures come from cgroups")
	}
	c, k := agentCluster(t, "--metric-resolution", "2s")
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: burner
  labels: {app: burner}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: spin
    image: busybox
    command: ["sh", "-c", "while :; do :; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: holder
  labels: {app: holder}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hold
    image: busybox
    command: ["sh", "-c", "x=$(head -c 220000000 /dev/zero | tr '\\0' x); sleep 3600"]
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
`)
	waitPhase(t, k, c, "burner", "Running", 30*time.Second)
	waitPhase(t, k, c, "holder", "Running", 30*time.Second)

	// The burner spins as fast as it is allowed: a whole core on an idle
	// machine, less on a busy one. So the figures are checked against the
	// container's own cgroup, sampled here all along: the API's rate must be
	// the cgroup's over the API's window (whose end is known to the second,
	// as metav1.Time goes), and kubectl top must show it. On an idle machine
	// that is ≥ 800m. The holder's 210 MiB string is in memory once the
	// shell has read it all.
	cid := strings.TrimPrefix(jsonpath(k, c, "pod/burner", "{.status.containerStatuses[0].containerID}"), "process://")
	cpu := sampleCgroupCPU(t, cid)
	eventually(t, 30*time.Second, func() string {
		raw, err := k.try(c, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner")
		if err != nil {
			return "burner metrics: " + raw
		}
		var pm struct {
			Timestamp  time.Time
			Window     string
			Containers []struct{ Usage map[string]string }
		}
		if err := json.Unmarshal([]byte(raw), &pm); err != nil || len(pm.Containers) != 1 {
			return fmt.Sprintf("burner metrics %v: %s", err, raw)
		}
		window, _ := time.ParseDuration(pm.Window)
		got := quantity(t, pm.Containers[0].Usage["cpu"]).MilliValue()
		lo, hi, ok := cpu.rates(pm.Timestamp, pm.Timestamp.Add(time.Second), window)
		if !ok {
			return "cgroup not sampled over the API's window yet"
		}
		if got < lo*9/10-20 || got > hi*11/10+20 {
			return fmt.Sprintf("API says the burner used %dm over %s; its cgroup says %d…%dm", got, window, lo, hi)
		}
		t.Logf("burner: API %dm over %s, cgroup %d…%dm", got, window, lo, hi)
		return ""
	})
	var out string
	eventually(t, 30*time.Second, func() string {
		var err error
		now := time.Now()
		out, err = k.try(c, "top", "pod", "--sort-by=cpu")
		if err != nil {
			return "kubectl top pod: " + out
		}
		b, h := topRow(out, "burner"), topRow(out, "holder")
		if len(b) != 3 || len(h) != 3 {
			return "rows missing:\n" + out
		}
		// The figure kubectl shows is from a 2 s window ending in the last
		// resolution (2 s) before now.
		got := quantity(t, b[1]).MilliValue()
		lo, hi, _ := cpu.rates(now.Add(-3*time.Second), now, 2*time.Second)
		if got < lo*9/10-20 || got > hi*11/10+20 {
			return fmt.Sprintf("kubectl top says the burner uses %dm, its cgroup %d…%dm:\n%s", got, lo, hi, out)
		}
		if quantity(t, h[1]).MilliValue() > 50 || quantity(t, h[2]).Value() < 190<<20 {
			return "holder still reading its 210 MiB, or holding less than 190Mi:\n" + out
		}
		return ""
	})
	mustContain(t, "top pod", out, "NAME", "CPU(cores)", "MEMORY(bytes)")
	if strings.Index(out, "burner") > strings.Index(out, "holder") {
		t.Errorf("--sort-by=cpu does not put the burner first:\n%s", out)
	}

	out = k.run(t, c, "top", "pod", "-A", "-l", "app=holder", "--containers", "--sort-by=memory")
	mustContain(t, "top pod -A -l --containers", out, "NAMESPACE", "POD", "NAME", "default", "holder", "hold")
	if strings.Contains(out, "burner") {
		t.Errorf("label selector app=holder lists the burner:\n%s", out)
	}

	out = k.run(t, c, "top", "node")
	row := topRow(out, "node-a")
	mustContain(t, "top node", out, "CPU(cores)", "MEMORY(bytes)")
	if len(row) < 5 || quantity(t, row[1]).MilliValue() < 100 || quantity(t, row[3]).Value() < 190<<20 {
		t.Errorf("node figures implausible with a burner spinning and 210 MiB held:\n%s", out)
	}

	// Both kubectls read the same API.
	for _, kc := range kubectls(t) {
		kc.cacheDir = t.TempDir()
		mustContain(t, kc.name+" top pod burner", kc.run(t, c, "top", "pod", "burner"), "burner", "m ")
		mustContain(t, kc.name+" top node", kc.run(t, c, "top", "node", "-l", "kubernetes.io/hostname=node-a"), "node-a", "CPU(%)")
	}

	// The API itself: discovery, and a NodeMetrics for node-a.
	mustContain(t, "api-versions", k.run(t, c, "api-versions"), "metrics.k8s.io/v1beta1")
	nm := k.run(t, c, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/node-a")
	if jsonField(t, nm, "kind") != "NodeMetrics" {
		t.Errorf("NodeMetrics: %s", nm)
	}

	// /metrics of the server (API server, scheduler, controllers) and of the agent.
	names := promNames(t, "server /metrics", k.run(t, c, "get", "--raw", "/metrics"))
	wantNames(t, "server /metrics", names, "apiserver_request_total", "scheduler_schedule_attempts_total",
		"scheduler_scheduling_attempt_duration_seconds", "scheduler_pending_pods",
		"workqueue_depth", "workqueue_adds_total", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds",
		"workqueue_retries_total", "workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds")

	port := jsonpath(k, c, "node/node-a", "{.status.daemonEndpoints.kubeletEndpoint.Port}")
	client := kubeletClient(t, c)
	get := func(path string) string {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%s%s", port, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	if got := get("/healthz"); got != "ok" {
		t.Errorf("agent /healthz: %q", got)
	}
	// A user's certificate from the cluster CA may scrape metrics, but logs
	// and streams are for the API server only.
	if resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%s/containerLogs/default/x/y", port)); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("agent /containerLogs with the admin's certificate: %v %v, want 403", err, resp)
	} else {
		resp.Body.Close()
	}
	km := promNames(t, "agent /metrics", get("/metrics"))
	wantNames(t, "agent /metrics", km,
		"kubelet_running_pods", "kubelet_running_containers", "kubelet_pod_start_duration_seconds",
		"kubelet_runtime_operations_duration_seconds", "prober_probe_total")
	if n := km["kubelet_running_pods"].GetMetric()[0].GetGauge().GetValue(); n != 2 {
		t.Errorf("kubelet_running_pods %v, want 2", n)
	}
	if n := km["kubelet_pod_start_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n < 2 {
		t.Errorf("kubelet_pod_start_duration_seconds observed %d pod starts, want 2", n)
	}
	probed := false
	for _, m := range km["prober_probe_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		probed = probed || (l["probe_type"] == "Readiness" && l["result"] == "successful" && l["pod"] == "holder" && m.GetCounter().GetValue() >= 1)
	}
	if !probed {
		t.Errorf("no successful Readiness probe of holder in prober_probe_total")
	}
	wantNames(t, "agent /metrics/resource", promNames(t, "agent /metrics/resource", get("/metrics/resource")),
		"node_cpu_usage_seconds_total", "node_memory_working_set_bytes", "container_cpu_usage_seconds_total",
		"container_memory_working_set_bytes", "pod_cpu_usage_seconds_total", "pod_memory_working_set_bytes",
		"container_start_time_seconds", "scrape_error")

	// The kubelet port refuses metrics without a cluster client certificate.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := anon.Get(fmt.Sprintf("https://127.0.0.1:%s/metrics", port)); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous agent /metrics: %s, want 401", resp.Status)
		}
	}
	k.run(t, c, "delete", "pod", "burner", "holder", "--grace-period=1", "--wait")
}

// kubeletClient presents the admin kubeconfig's client certificate, which
// the cluster CA signed, as the API server presents its own.
func kubeletClient(t *testing.T, c *cluster) *http.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
	if err != nil {
		t.Fatalf("kubeconfig client certificate: %v", err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, // the agent's serving cert is self-signed
	}}}
}

// cpuSampler records a container's cumulative CPU time from its cgroup
// every 20 ms, so a rate over any recent window can be computed.
type cpuSampler struct {
	mu  sync.Mutex
	at  []time.Time
	ns  []int64
	err error
}

// sampleCgroupCPU samples the container's v1 cpuacct (or v2 cpu.stat)
// cgroup, skiff/<sandbox>/<container>, until the test ends.
func sampleCgroupCPU(t *testing.T, containerID string) *cpuSampler {
	t.Helper()
	file := ""
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/cpuacct/skiff/*/" + containerID); len(dirs) == 1 {
		file = filepath.Join(dirs[0], "cpuacct.usage")
	} else if dirs, _ := filepath.Glob("/sys/fs/cgroup/skiff/*/" + containerID); len(dirs) == 1 {
		file = filepath.Join(dirs[0], "cpu.stat")
	} else {
		t.Fatalf("no cgroup for container %q", containerID)
	}
	s := &cpuSampler{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			b, err := os.ReadFile(file)
			now := time.Now()
			var v int64
			if f := strings.Fields(string(b)); len(f) >= 2 && f[0] == "usage_usec" {
				v, _ = strconv.ParseInt(f[1], 10, 64)
				v *= 1000
			} else if err == nil {
				v, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			}
			s.mu.Lock()
			if err != nil {
				s.err = err
			} else {
				s.at, s.ns = append(s.at, now), append(s.ns, v)
			}
			s.mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return s
}

// usageAt interpolates the cumulative CPU nanoseconds at x.
func (s *cpuSampler) usageAt(x time.Time) (float64, bool) {
	i := sort.Search(len(s.at), func(i int) bool { return !s.at[i].Before(x) })
	if i == 0 || i == len(s.at) {
		return 0, false
	}
	a, b := s.at[i-1], s.at[i]
	f := float64(x.Sub(a)) / float64(b.Sub(a))
	return float64(s.ns[i-1]) + f*float64(s.ns[i]-s.ns[i-1]), true
}

// rates is the lowest and highest rate, in millicores, over windows of
// length w ending between from and to.
func (s *cpuSampler) rates(from, to time.Time, w time.Duration) (lo, hi int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo = math.MaxInt64
	for end := from; !end.After(to); end = end.Add(50 * time.Millisecond) {
		u1, ok1 := s.usageAt(end.Add(-w))
		u2, ok2 := s.usageAt(end)
		if !ok1 || !ok2 {
			continue
		}
		r := int64((u2 - u1) / float64(w.Microseconds()))
		lo, hi, ok = min(lo, r), max(hi, r), true
	}
	return lo, hi, ok
}
