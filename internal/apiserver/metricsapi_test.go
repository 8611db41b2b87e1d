package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/testenv"
)

// fakeKubelet serves /metrics/resource as an agent would, for a node using
// half a core and a pod whose container uses a quarter, with fixed memory.
func fakeKubelet(t *testing.T) (port int, scrapes *atomic.Int64) {
	t.Helper()
	start := time.Now()
	scrapes = &atomic.Int64{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/resource" {
			http.NotFound(w, r)
			return
		}
		scrapes.Add(1)
		now := time.Now()
		s, ms := now.Sub(start).Seconds(), now.UnixMilli()
		fmt.Fprintf(w, "# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %g %d\n", 100+s*0.5, ms)
		fmt.Fprintf(w, "# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes %d %d\n", 3<<30, ms)
		fmt.Fprintf(w, "# TYPE container_cpu_usage_seconds_total counter\n")
		fmt.Fprintf(w, "container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"web\"} %g %d\n", s*0.25, ms)
		fmt.Fprintf(w, "container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"db\"} %g %d\n", s*0.1, ms)
		fmt.Fprintf(w, "# TYPE container_memory_working_set_bytes gauge\n")
		fmt.Fprintf(w, "container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"web\"} %d %d\n", 200<<20, ms)
		fmt.Fprintf(w, "container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"db\"} %d %d\n", 50<<20, ms)
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port, scrapes
}

func TestMetricsAPIServesScrapedUsage(t *testing.T) {
	env := testenv.Start(t, func(o *server.Options) { o.MetricResolution = 200 * time.Millisecond })
	ctx := context.Background()
	port, scrapes := fakeKubelet(t)

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}}
	node, err := env.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{
		Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
	}
	if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, tier := range map[string]string{"web": "front", "db": "back"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"tier": tier}},
			Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Image: "x"}}},
		}
		if _, err := env.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Discovery, legacy and aggregated, lists the group as kubectl top needs.
	for _, aggregated := range []bool{false, true} {
		dc := discovery.NewDiscoveryClientForConfigOrDie(env.Config)
		dc.UseLegacyDiscovery = !aggregated
		groups, resources, err := dc.ServerGroupsAndResources()
		if err != nil {
			t.Fatalf("discovery (aggregated=%v): %v", aggregated, err)
		}
		if !slices.ContainsFunc(groups, func(g *metav1.APIGroup) bool {
			return g.Name == "metrics.k8s.io" && g.PreferredVersion.Version == "v1beta1"
		}) {
			t.Errorf("discovery (aggregated=%v) lacks metrics.k8s.io", aggregated)
		}
		found := map[string]bool{}
		for _, rl := range resources {
			if rl.GroupVersion == "metrics.k8s.io/v1beta1" {
				for _, r := range rl.APIResources {
					found[fmt.Sprintf("%s %v %v", r.Name, r.Namespaced, r.Verbs)] = true
				}
			}
		}
		if !found["nodes false [get list]"] || !found["pods true [get list]"] {
			t.Errorf("discovery (aggregated=%v) metrics resources: %v", aggregated, found)
		}
	}

	mc := metricsclient.NewForConfigOrDie(env.Config)
	var nm *metricsv1beta1.NodeMetrics
	testenv.Eventually(t, 20*time.Second, "node metrics after two scrapes", func() bool {
		nm, err = mc.MetricsV1beta1().NodeMetricses().Get(ctx, "n1", metav1.GetOptions{})
		return err == nil
	})
	if cpu := nm.Usage.Cpu().MilliValue(); cpu < 450 || cpu > 550 {
		t.Errorf("node cpu %dm, want ~500m (half a core)", cpu)
	}
	if mem := nm.Usage.Memory().Value(); mem != 3<<30 {
		t.Errorf("node memory %d, want %d", mem, 3<<30)
	}
	if nm.Window.Duration <= 0 || nm.Timestamp.IsZero() || nm.Labels["zone"] != "a" {
		t.Errorf("node metrics window %v timestamp %v labels %v", nm.Window, nm.Timestamp, nm.Labels)
	}

	nl, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{LabelSelector: "zone=b"})
	if err != nil || len(nl.Items) != 0 {
		t.Errorf("node list zone=b: %v %v", nl, err)
	}
	if _, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get missing node metrics: %v, want NotFound", err)
	}

	var pl *metricsv1beta1.PodMetricsList
	testenv.Eventually(t, 10*time.Second, "both pods' metrics", func() bool {
		pl, err = mc.MetricsV1beta1().PodMetricses("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(pl.Items) == 2
	})
	pm, err := mc.MetricsV1beta1().PodMetricses("default").List(ctx, metav1.ListOptions{LabelSelector: "tier=front"})
	if err != nil || len(pm.Items) != 1 || pm.Items[0].Name != "web" {
		t.Fatalf("pods tier=front: %+v %v", pm, err)
	}
	web := pm.Items[0]
	if len(web.Containers) != 1 || web.Containers[0].Name != "main" {
		t.Fatalf("web containers: %+v", web.Containers)
	}
	if cpu := web.Containers[0].Usage.Cpu().MilliValue(); cpu < 225 || cpu > 275 {
		t.Errorf("web cpu %dm, want ~250m", cpu)
	}
	if mem := web.Containers[0].Usage.Memory().Value(); mem != 200<<20 {
		t.Errorf("web memory %d, want %d", mem, 200<<20)
	}
	if got, err := mc.MetricsV1beta1().PodMetricses("default").Get(ctx, "db", metav1.GetOptions{}); err != nil || got.Labels["tier"] != "back" {
		t.Errorf("get db metrics: %+v %v", got, err)
	}
	all, err := mc.MetricsV1beta1().PodMetricses("").List(ctx, metav1.ListOptions{})
	if err != nil || len(all.Items) != 2 {
		t.Errorf("all-namespaces pod metrics: %+v %v", all, err)
	}
	if other, err := mc.MetricsV1beta1().PodMetricses("kube-system").List(ctx, metav1.ListOptions{}); err != nil || len(other.Items) != 0 {
		t.Errorf("kube-system pod metrics: %+v %v", other, err)
	}
	if _, err := mc.MetricsV1beta1().PodMetricses("default").Get(ctx, "gone", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get missing pod metrics: %v, want NotFound", err)
	}
	// kubectl get podmetrics asks for a Table: name, cpu, memory, window.
	code, body := rawAccept(t, env, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=tier%3Dfront",
		"application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	var table metav1.Table
	if err := json.Unmarshal([]byte(body), &table); code != http.StatusOK || err != nil || table.Kind != "Table" {
		t.Fatalf("pod metrics table: %d %v %s", code, err, body)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if fmt.Sprint(cols) != "[Name cpu memory Window]" || len(table.Rows) != 1 || table.Rows[0].Cells[0] != "web" || table.Rows[0].Cells[2] != "200Mi" {
		t.Errorf("pod metrics table columns %v rows %+v", cols, table.Rows)
	}
	if code, _ := do(t, env, "DELETE", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", nil, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE pod metrics: %d, want 405", code)
	}

	// A node that stops being Ready is no longer scraped, and its figures go.
	node, _ = env.Client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	node.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "metrics of a NotReady node dropped", func() bool {
		_, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, "n1", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if n := scrapes.Load(); n < 2 {
		t.Errorf("scraped %d times", n)
	}
}
