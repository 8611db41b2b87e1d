package endpointslice

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(name, ip string, ready bool, opts ...func(*corev1.Pod)) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c",
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func terminating(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }

func service() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: "svc-uid", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")}}},
	}
}

func pods(n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		out = append(out, pod(fmt.Sprintf("p%02d", i), fmt.Sprintf("10.0.0.%d", i+1), true))
	}
	return out
}

func noZone(string) string { return "" }

// existing turns a planned slice into one the server returned.
func existing(s *discoveryv1.EndpointSlice, name string) *discoveryv1.EndpointSlice {
	s = s.DeepCopy()
	s.Name, s.UID, s.ResourceVersion = name, types.UID("uid-"+name), "1"
	return s
}

func counts(p plan) string {
	sizes := func(ss []*discoveryv1.EndpointSlice) []int {
		out := []int{}
		for _, s := range ss {
			out = append(out, len(s.Endpoints))
		}
		return out
	}
	return fmt.Sprintf("create %v update %v delete %v", sizes(p.create), sizes(p.update), sizes(p.delete))
}

func TestNewServiceGetsOneSliceWithConditions(t *testing.T) {
	svc := service()
	p := reconcile(svc, []*corev1.Pod{pod("ready", "10.0.0.1", true), pod("unready", "10.0.0.2", false),
		pod("leaving", "10.0.0.3", true, terminating), pod("done", "10.0.0.4", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })},
		func(string) string { return "zone-a" }, nil, MaxEndpointsPerSlice)
	if got := counts(p); got != "create [3] update [] delete []" {
		t.Fatalf("plan: %s", got)
	}
	s := p.create[0]
	if s.GenerateName != "svc-" || s.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Fatalf("generateName %q addressType %q", s.GenerateName, s.AddressType)
	}
	if s.Labels[discoveryv1.LabelServiceName] != "svc" || s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels["team"] != "a" {
		t.Fatalf("labels %v", s.Labels)
	}
	ref := s.OwnerReferences[0]
	if ref.Kind != "Service" || ref.UID != "svc-uid" || !*ref.Controller || !*ref.BlockOwnerDeletion {
		t.Fatalf("owner %+v", ref)
	}
	if len(s.Ports) != 1 || *s.Ports[0].Name != "http" || *s.Ports[0].Port != 8080 || *s.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("ports %+v", s.Ports)
	}
	want := map[string][3]bool{"ready": {true, true, false}, "unready": {false, false, false}, "leaving": {false, true, true}}
	for _, ep := range s.Endpoints {
		c := ep.Conditions
		if got := [3]bool{*c.Ready, *c.Serving, *c.Terminating}; got != want[ep.TargetRef.Name] {
			t.Errorf("%s: ready/serving/terminating %v, want %v", ep.TargetRef.Name, got, want[ep.TargetRef.Name])
		}
		if *ep.NodeName != "node-1" || *ep.Zone != "zone-a" || ep.TargetRef.UID != types.UID("uid-"+ep.TargetRef.Name) {
			t.Errorf("%s: node %v zone %v ref %+v", ep.TargetRef.Name, *ep.NodeName, *ep.Zone, ep.TargetRef)
		}
	}
}

func TestSlicesHoldAtMostMaxEndpoints(t *testing.T) {
	p := reconcile(service(), pods(7), noZone, nil, 3)
	if got := counts(p); got != "create [3 3 1] update [] delete []" {
		t.Fatalf("plan: %s", got)
	}
}

func TestUpToDateSlicesWriteNothing(t *testing.T) {
	svc, ps := service(), pods(5)
	first := reconcile(svc, ps, noZone, nil, 3)
	var have []*discoveryv1.EndpointSlice
	for i, s := range first.create {
		have = append(have, existing(s, fmt.Sprintf("svc-%d", i)))
	}
	if got := counts(reconcile(svc, ps, noZone, have, 3)); got != "create [] update [] delete []" {
		t.Fatalf("second plan: %s", got)
	}
	// A label change on the Service rewrites every slice.
	svc.Labels["team"] = "b"
	if got := counts(reconcile(svc, ps, noZone, have, 3)); got != "create [] update [3 2] delete []" {
		t.Fatalf("after relabel: %s", got)
	}
}

func TestChangesStayInTheirSlice(t *testing.T) {
	svc, ps := service(), pods(5)
	var have []*discoveryv1.EndpointSlice
	for i, s := range reconcile(svc, ps, noZone, nil, 3).create {
		have = append(have, existing(s, fmt.Sprintf("svc-%d", i)))
	}
	// p00 becomes unready: only its slice is rewritten.
	changed := append([]*corev1.Pod{pod("p00", "10.0.0.1", false)}, ps[1:]...)
	if got := counts(reconcile(svc, changed, noZone, have, 3)); got != "create [] update [3] delete []" {
		t.Fatalf("readiness change: %s", got)
	}
	// A new pod fills the slice with room rather than a new slice.
	more := append(ps, pod("p99", "10.0.0.99", true))
	if got := counts(reconcile(svc, more, noZone, have, 3)); got != "create [] update [3] delete []" {
		t.Fatalf("added pod: %s", got)
	}
	// The pods of the second slice go: it is deleted.
	if got := counts(reconcile(svc, ps[:3], noZone, have, 3)); got != "create [] update [] delete [2]" {
		t.Fatalf("removed pods: %s", got)
	}
}

func TestPlaceholder(t *testing.T) {
	svc := service()
	p := reconcile(svc, nil, noZone, nil, 3)
	if got := counts(p); got != "create [0] update [] delete []" {
		t.Fatalf("no pods: %s", got)
	}
	ph := existing(p.create[0], "svc-ph")
	if len(ph.Ports) != 0 || ph.Endpoints == nil {
		t.Fatalf("placeholder ports %v endpoints %v", ph.Ports, ph.Endpoints)
	}
	if got := counts(reconcile(svc, nil, noZone, []*discoveryv1.EndpointSlice{ph}, 3)); got != "create [] update [] delete []" {
		t.Fatalf("placeholder kept: %s", got)
	}
	// Pods arrive: the placeholder is reused, not deleted and recreated.
	p = reconcile(svc, pods(2), noZone, []*discoveryv1.EndpointSlice{ph}, 3)
	if got := counts(p); got != "create [] update [2] delete []" || p.update[0].Name != "svc-ph" || len(p.update[0].Ports) != 1 {
		t.Fatalf("pods arrive: %s (%+v)", got, p.update)
	}
	// And when they go, the slice becomes the placeholder again.
	full := existing(p.update[0], "svc-ph")
	p = reconcile(svc, nil, noZone, []*discoveryv1.EndpointSlice{full}, 3)
	if got := counts(p); got != "create [] update [0] delete []" || len(p.update[0].Ports) != 0 {
		t.Fatalf("pods gone: %s (%+v)", got, p.update)
	}
}

func TestNamedPortsSplitSlicesAndForeignSlicesGo(t *testing.T) {
	svc := service()
	other := pod("other", "10.0.0.9", true, func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9090 })
	stale := existing(newSlice(svc, discoveryv1.AddressTypeIPv4, nil, sliceLabels(svc)), "svc-old")
	stale.OwnerReferences[0].UID = "earlier-svc"
	p := reconcile(svc, append(pods(2), other), noZone, []*discoveryv1.EndpointSlice{stale}, 3)
	if got := counts(p); got != "create [2 1] update [] delete [0]" {
		t.Fatalf("plan: %s", got)
	}
	for _, s := range p.create {
		if want := map[int]int32{2: 8080, 1: 9090}[len(s.Endpoints)]; *s.Ports[0].Port != want {
			t.Errorf("slice of %d endpoints has port %d, want %d", len(s.Endpoints), *s.Ports[0].Port, want)
		}
	}
}

func TestTrackerWaitsForOwnWrites(t *testing.T) {
	tr := newTracker()
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "u1", ResourceVersion: "10"}}
	tr.wrote("ns/svc", s)
	if !tr.stale("ns/svc", nil) {
		t.Fatal("a created slice missing from the cache is not stale")
	}
	old := s.DeepCopy()
	old.ResourceVersion = "9"
	if !tr.stale("ns/svc", []*discoveryv1.EndpointSlice{old}) {
		t.Fatal("an older version in the cache is not stale")
	}
	if tr.stale("ns/svc", []*discoveryv1.EndpointSlice{s}) || tr.stale("ns/svc", nil) {
		t.Fatal("a seen write is still awaited")
	}
	tr.deleted("ns/svc", s)
	if !tr.stale("ns/svc", []*discoveryv1.EndpointSlice{s}) {
		t.Fatal("a deleted slice still cached is not stale")
	}
	tr.gone(s.UID)
	if tr.stale("ns/svc", []*discoveryv1.EndpointSlice{s}) {
		t.Fatal("a deletion the informer saw is still awaited")
	}
	tr.wrote("ns/svc", s)
	tr.now = func() time.Time { return time.Now().Add(time.Minute) }
	if tr.stale("ns/svc", nil) {
		t.Fatal("an expired expectation still holds")
	}
}
