package apiserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	nodeutil "k8s.io/component-helpers/node/util"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/storage"
)

// The metrics API is served as metrics-server serves it: every resolution
// the API server scrapes /metrics/resource of each Ready node's agent and
// keeps the last two points of every node and container in memory (nothing
// goes to etcd). CPU usage is the rate between those two points; memory is
// the last working set.

// DefaultMetricResolution is metrics-server's default --metric-resolution.
const DefaultMetricResolution = 15 * time.Second

var metricsGV = metricsv1beta1.SchemeGroupVersion

// point is one cumulative CPU reading (core-seconds) and a working set.
type point struct {
	cpu   float64
	mem   float64
	at    time.Time
	start float64 // container start time: a restarted container starts a new series
}

// series holds the last two points of a node or container.
type series struct{ prev, last point }

// next adds p, keeping the previous point only when p continues its series.
func (s series) next(p point) series {
	if p.at.After(s.last.at) && p.cpu >= s.last.cpu && p.start == s.last.start {
		return series{prev: s.last, last: p}
	}
	return series{last: p}
}

// usage is the CPU rate and memory of the last window; false until two points exist.
func (s series) usage() (corev1.ResourceList, time.Duration, bool) {
	if s.prev.at.IsZero() {
		return nil, 0, false
	}
	window := s.last.at.Sub(s.prev.at)
	rate := (s.last.cpu - s.prev.cpu) / window.Seconds()
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(math.Round(rate*1e9)), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(s.last.mem), resource.BinarySI),
	}, window, true
}

type podKey struct{ namespace, name string }

// nodeScrape is what one node's agent reported.
type nodeScrape struct {
	node series
	pods map[podKey]map[string]series // container name → series
}

// metricsAPI keeps the scraped figures and serves them.
type metricsAPI struct {
	s          *Server
	resolution time.Duration
	client     *http.Client

	mu    sync.RWMutex
	nodes map[string]*nodeScrape
}

func newMetricsAPI(s *Server, resolution time.Duration) *metricsAPI {
	if resolution <= 0 {
		resolution = DefaultMetricResolution
	}
	c := &http.Client{Transport: s.kubelet, Timeout: max(resolution*8/10, time.Second)}
	return &metricsAPI{s: s, resolution: resolution, client: c, nodes: map[string]*nodeScrape{}}
}

// run scrapes every resolution until ctx ends.
func (m *metricsAPI) run(ctx context.Context) {
	t := time.NewTicker(m.resolution)
	defer t.Stop()
	for {
		m.scrapeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrapeAll scrapes every Ready node at once and forgets nodes that are gone
// or not Ready.
func (m *metricsAPI) scrapeAll(ctx context.Context) {
	nh := m.s.byGR[registry.Nodes.GR()]
	res, err := nh.store.List(ctx, storage.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	ready := map[string]bool{}
	for _, obj := range res.Items {
		node := obj.(*corev1.Node)
		if !nodeReady(node) {
			continue
		}
		ready[node.Name] = true
		wg.Go(func() {
			if err := m.scrape(ctx, node); err != nil && ctx.Err() == nil {
				slog.Debug("scrape node metrics", "node", node.Name, "err", err)
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	for name := range m.nodes {
		if !ready[name] {
			delete(m.nodes, name)
		}
	}
	m.mu.Unlock()
}

func nodeReady(n *corev1.Node) bool {
	_, c := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// scrape reads one agent's /metrics/resource and folds it into the store.
func (m *metricsAPI) scrape(ctx context.Context, node *corev1.Node) error {
	u, err := nodeKubeletURL(node)
	if err != nil {
		return err
	}
	u.Path = "/metrics/resource"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	usage, pods, err := parseResourceMetrics(resp.Body, time.Now())
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.nodes[node.Name]
	if old == nil {
		old = &nodeScrape{pods: map[podKey]map[string]series{}}
	}
	next := &nodeScrape{node: old.node, pods: map[podKey]map[string]series{}}
	if usage != nil {
		next.node = old.node.next(*usage)
	}
	for pk, containers := range pods {
		cs := map[string]series{}
		for name, p := range containers {
			cs[name] = old.pods[pk][name].next(p)
		}
		next.pods[pk] = cs
	}
	m.nodes[node.Name] = next
	return nil
}

// parseResourceMetrics reads the kubelet's resource metrics: the node's
// point (nil if absent) and each container's, by pod. A sample without a
// timestamp is taken as read at now.
func parseResourceMetrics(r io.Reader, now time.Time) (*point, map[podKey]map[string]point, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, nil, fmt.Errorf("parse resource metrics: %w", err)
	}
	at := func(mt *dto.Metric) time.Time {
		if mt.TimestampMs != nil {
			return time.UnixMilli(mt.GetTimestampMs())
		}
		return now
	}
	var node *point
	if f := fams["node_cpu_usage_seconds_total"]; f != nil && len(f.Metric) == 1 {
		mt := f.Metric[0]
		node = &point{cpu: mt.GetCounter().GetValue(), at: at(mt)}
		if g := fams["node_memory_working_set_bytes"]; g != nil && len(g.Metric) == 1 {
			node.mem = g.Metric[0].GetGauge().GetValue()
		}
	}
	type ckey struct {
		pod       podKey
		container string
	}
	key := func(mt *dto.Metric) ckey {
		var k ckey
		for _, l := range mt.Label {
			switch l.GetName() {
			case "namespace":
				k.pod.namespace = l.GetValue()
			case "pod":
				k.pod.name = l.GetValue()
			case "container":
				k.container = l.GetValue()
			}
		}
		return k
	}
	points := map[ckey]*point{}
	if f := fams["container_cpu_usage_seconds_total"]; f != nil {
		for _, mt := range f.Metric {
			points[key(mt)] = &point{cpu: mt.GetCounter().GetValue(), at: at(mt)}
		}
	}
	for name, set := range map[string]func(*point, float64){
		"container_memory_working_set_bytes": func(p *point, v float64) { p.mem = v },
		"container_start_time_seconds":       func(p *point, v float64) { p.start = v },
	} {
		if f := fams[name]; f != nil {
			for _, mt := range f.Metric {
				if p := points[key(mt)]; p != nil {
					set(p, mt.GetGauge().GetValue())
				}
			}
		}
	}
	pods := map[podKey]map[string]point{}
	for k, p := range points {
		if pods[k.pod] == nil {
			pods[k.pod] = map[string]point{}
		}
		pods[k.pod][k.container] = *p
	}
	return node, pods, nil
}

// serveMetricsAPI answers /apis/metrics.k8s.io/v1beta1/{nodes,pods,namespaces/<ns>/pods}[/<name>].
func (s *Server) serveMetricsAPI(w http.ResponseWriter, r *http.Request, rest []string) {
	var namespace, res, name string
	switch {
	case len(rest) >= 3 && rest[0] == "namespaces" && rest[2] == "pods" && len(rest) <= 4:
		namespace, res = rest[1], "pods"
		if len(rest) == 4 {
			name = rest[3]
		}
	case (rest[0] == "nodes" || rest[0] == "pods") && len(rest) <= 2:
		res = rest[0]
		if len(rest) == 2 {
			name = rest[1]
		}
	default:
		writeError(w, r, notFoundPath(r.URL.Path))
		return
	}
	if res == "pods" && name != "" && namespace == "" {
		writeError(w, r, notFoundPath(r.URL.Path))
		return
	}
	verb := "list"
	if name != "" {
		verb = "get"
	}
	if r.Method != http.MethodGet || r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		// metrics-server serves only get and list.
		v := "watch"
		if r.Method != http.MethodGet {
			v = r.Method
		}
		writeError(w, r, apierrors.NewMethodNotSupported(metricsGV.WithResource(res).GroupResource(), v))
		return
	}
	if err := s.authorize(r, metricsGV.WithResource(res).GroupResource(), Attributes{Verb: verb, Namespace: namespace,
		APIGroup: metricsGV.Group, Resource: res, Name: name}); err != nil {
		writeError(w, r, err)
		return
	}
	if res == "nodes" {
		nodeMetrics.serve(s, w, r, namespace, name)
	} else {
		podMetrics.serve(s, w, r, namespace, name)
	}
}

// metricsKind is what NodeMetrics and PodMetrics (T; PT is *T) differ in;
// its methods serve either.
type metricsKind[T any, PT interface {
	*T
	runtime.Object
	GetName() string
}] struct {
	objects *registry.Resource // the nodes or pods described, whose plural the metrics resource shares
	kind    string
	// item builds the metrics of one node or pod (with m.mu held); false
	// while there are none to show.
	item func(m *metricsAPI, o metav1.Object) (T, bool)
	// list wraps items in the kind's list type.
	list func(items []T) runtime.Object
	// usage is what a table row shows: a pod's is summed over its containers.
	usage func(PT) (corev1.ResourceList, time.Duration)
}

var (
	nodeMetrics = metricsKind[metricsv1beta1.NodeMetrics, *metricsv1beta1.NodeMetrics]{
		objects: registry.Nodes, kind: "NodeMetrics",
		item: (*metricsAPI).nodeMetricsLocked,
		list: func(items []metricsv1beta1.NodeMetrics) runtime.Object {
			return &metricsv1beta1.NodeMetricsList{Items: items}
		},
		usage: func(n *metricsv1beta1.NodeMetrics) (corev1.ResourceList, time.Duration) {
			return n.Usage, n.Window.Duration
		},
	}
	podMetrics = metricsKind[metricsv1beta1.PodMetrics, *metricsv1beta1.PodMetrics]{
		objects: registry.Pods, kind: "PodMetrics",
		item: (*metricsAPI).podMetricsLocked,
		list: func(items []metricsv1beta1.PodMetrics) runtime.Object {
			return &metricsv1beta1.PodMetricsList{Items: items}
		},
		usage: func(p *metricsv1beta1.PodMetrics) (corev1.ResourceList, time.Duration) {
			sum := corev1.ResourceList{corev1.ResourceCPU: resource.Quantity{Format: resource.DecimalSI}, corev1.ResourceMemory: resource.Quantity{Format: resource.BinarySI}}
			for _, c := range p.Containers {
				for k, v := range c.Usage {
					q := sum[k]
					q.Add(v)
					sum[k] = q
				}
			}
			return sum, p.Window.Duration
		},
	}
)

// serve answers a get (name set) or a list: JSON only, as metrics-server,
// or the Table kubectl get asks for.
func (k metricsKind[T, PT]) serve(s *Server, w http.ResponseWriter, r *http.Request, namespace, name string) {
	items, err := k.items(s, r, namespace, name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var out runtime.Object
	if o, ok := negotiate(r, "Table"); ok && o.as == "Table" {
		out = k.table(items, tableOptions(r))
	} else if name != "" {
		out = k.typed(&items[0])
	} else {
		// As metrics-server's, a list's items carry no kind.
		out = k.list(items)
		out.GetObjectKind().SetGroupVersionKind(metricsGV.WithKind(k.kind + "List"))
	}
	w.Header().Set("Content-Type", mimeJSON)
	_ = jsonEncode(w, out)
}

// items finds the nodes or pods asked for and builds the metrics of those
// that have them; a get of one without metrics is NotFound.
func (k metricsKind[T, PT]) items(s *Server, r *http.Request, namespace, name string) ([]T, error) {
	q := r.URL.Query()
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, badRequest(fmt.Sprintf("invalid labelSelector: %v", err))
	}
	fsel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, badRequest(fmt.Sprintf("invalid fieldSelector: %v", err))
	}
	notFound := apierrors.NewNotFound(metricsGV.WithResource(k.objects.Plural).GroupResource(), name)
	objs, err := s.metricsObjects(r.Context(), k.objects, namespace, name, sel, fsel)
	if apierrors.IsNotFound(err) {
		return nil, notFound
	} else if err != nil {
		return nil, err
	}
	m := s.usage
	m.mu.RLock()
	defer m.mu.RUnlock()
	items := []T{} // an empty list is [], not null
	for _, o := range objs {
		if it, ok := k.item(m, o); ok {
			items = append(items, it)
		}
	}
	if name != "" && len(items) == 0 {
		return nil, notFound
	}
	return items, nil
}

// typed is an item as served alone or in a table, with its kind.
func (k metricsKind[T, PT]) typed(it *T) PT {
	PT(it).GetObjectKind().SetGroupVersionKind(metricsGV.WithKind(k.kind))
	return it
}

// table prints metrics as metrics-server does for kubectl get: name, cpu,
// memory and window.
func (k metricsKind[T, PT]) table(items []T, include metav1.IncludeObjectPolicy) *metav1.Table {
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"},
			{Name: "cpu", Type: "string", Format: "quantity"},
			{Name: "memory", Type: "string", Format: "quantity"},
			{Name: "Window", Type: "string", Format: "duration"},
		},
		Rows: []metav1.TableRow{},
	}
	for i := range items {
		it := k.typed(&items[i])
		usage, window := k.usage(it)
		row := metav1.TableRow{Cells: []any{it.GetName(), usage.Cpu().String(), usage.Memory().String(), window.String()}}
		switch include {
		case metav1.IncludeObject:
			row.Object.Object = it
		case metav1.IncludeMetadata:
			row.Object.Object = partialMetadata(it)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// metricsObjects lists the nodes or pods the metrics describe, for their labels.
func (s *Server) metricsObjects(ctx context.Context, objects *registry.Resource, namespace, name string, sel labels.Selector, fsel fields.Selector) ([]metav1.Object, error) {
	h := s.byGR[objects.GR()]
	if name != "" {
		obj, err := h.store.GetAt(ctx, h.store.Key(namespace, name), name, "0") // read only, as the list
		if err != nil {
			return nil, err
		}
		return []metav1.Object{obj.(metav1.Object)}, nil
	}
	res, err := h.store.List(ctx, storage.ListOptions{Namespace: namespace, ResourceVersion: "0", Filter: func(o runtime.Object) bool {
		m := o.(metav1.Object)
		return sel.Matches(labels.Set(m.GetLabels())) &&
			fsel.Matches(fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()})
	}})
	if err != nil {
		return nil, err
	}
	out := make([]metav1.Object, 0, len(res.Items))
	for _, o := range res.Items {
		out = append(out, o.(metav1.Object))
	}
	return out, nil
}

// metricsMeta names metrics after the node or pod they describe; as
// metrics-server's, they are created when read.
func metricsMeta(o metav1.Object) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels(), CreationTimestamp: metav1.Now()}
}

// nodeMetricsLocked builds a node's metrics once it has a rate.
func (m *metricsAPI) nodeMetricsLocked(node metav1.Object) (metricsv1beta1.NodeMetrics, bool) {
	ns := m.nodes[node.GetName()]
	if ns == nil {
		return metricsv1beta1.NodeMetrics{}, false
	}
	usage, window, ok := ns.node.usage()
	if !ok {
		return metricsv1beta1.NodeMetrics{}, false
	}
	return metricsv1beta1.NodeMetrics{ObjectMeta: metricsMeta(node),
		Timestamp: metav1.NewTime(ns.node.last.at), Window: metav1.Duration{Duration: window}, Usage: usage}, true
}

// podMetricsLocked builds a pod's metrics; as metrics-server, a pod is
// left out until every container it reports has a rate.
func (m *metricsAPI) podMetricsLocked(o metav1.Object) (metricsv1beta1.PodMetrics, bool) {
	pod := o.(*corev1.Pod)
	ns := m.nodes[pod.Spec.NodeName]
	if ns == nil {
		return metricsv1beta1.PodMetrics{}, false
	}
	containers := ns.pods[podKey{pod.Namespace, pod.Name}]
	if len(containers) == 0 {
		return metricsv1beta1.PodMetrics{}, false
	}
	pm := metricsv1beta1.PodMetrics{ObjectMeta: metricsMeta(pod)}
	for _, n := range slices.Sorted(maps.Keys(containers)) {
		sr := containers[n]
		usage, window, ok := sr.usage()
		if !ok {
			return metricsv1beta1.PodMetrics{}, false
		}
		if sr.last.at.After(pm.Timestamp.Time) {
			pm.Timestamp, pm.Window = metav1.NewTime(sr.last.at), metav1.Duration{Duration: window}
		}
		pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{Name: n, Usage: usage})
	}
	return pm, true
}

// addMetricsDiscovery lists metrics.k8s.io/v1beta1 (nodes, pods: get and
// list) in the legacy and aggregated discovery documents.
func addMetricsDiscovery(d *discoveryDocs) {
	gv := groupVersion{metricsGV.Group, metricsGV.Version}
	verbs := []string{"get", "list"}
	d.groupOrder = append(d.groupOrder, gv)
	d.resources[gv] = &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: metricsGV.String(),
		APIResources: []metav1.APIResource{
			{Name: "nodes", SingularName: "", Namespaced: false, Kind: "NodeMetrics", Verbs: verbs},
			{Name: "pods", SingularName: "", Namespaced: true, Kind: "PodMetrics", Verbs: verbs},
		},
	}
	kind := func(k string) *metav1.GroupVersionKind {
		return &metav1.GroupVersionKind{Group: metricsGV.Group, Version: metricsGV.Version, Kind: k}
	}
	d.aggregated["apis"].Items = append(d.aggregated["apis"].Items, apidiscoveryv2.APIGroupDiscovery{
		ObjectMeta: metav1.ObjectMeta{Name: metricsGV.Group},
		Versions: []apidiscoveryv2.APIVersionDiscovery{{
			Version: metricsGV.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			Resources: []apidiscoveryv2.APIResourceDiscovery{
				{Resource: "nodes", Scope: apidiscoveryv2.ScopeCluster, Verbs: verbs, ResponseKind: kind("NodeMetrics")},
				{Resource: "pods", Scope: apidiscoveryv2.ScopeNamespace, Verbs: verbs, ResponseKind: kind("PodMetrics")},
			},
		}},
	})
}
