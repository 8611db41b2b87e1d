package endpointutil

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func TestFindPort(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
			{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
		}}},
		InitContainers: []corev1.Container{
			{Ports: []corev1.ContainerPort{{Name: "once", ContainerPort: 1, Protocol: corev1.ProtocolTCP}}},
			{RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "sidecar", ContainerPort: 9000, Protocol: corev1.ProtocolTCP}}},
		},
	}}
	for _, tc := range []struct {
		target intstr.IntOrString
		proto  corev1.Protocol
		want   int32
		ok     bool
	}{
		{intstr.FromInt32(7000), corev1.ProtocolTCP, 7000, true},
		{intstr.FromString("http"), corev1.ProtocolTCP, 8080, true},
		{intstr.FromString("http"), corev1.ProtocolUDP, 0, false}, // protocol must match too
		{intstr.FromString("dns"), corev1.ProtocolUDP, 5353, true},
		{intstr.FromString("sidecar"), corev1.ProtocolTCP, 9000, true},
		{intstr.FromString("once"), corev1.ProtocolTCP, 0, false}, // plain init containers are gone when pods serve
		{intstr.FromString("missing"), corev1.ProtocolTCP, 0, false},
	} {
		got, ok := FindPort(pod, &corev1.ServicePort{TargetPort: tc.target, Protocol: tc.proto})
		if got != tc.want || ok != tc.ok {
			t.Errorf("FindPort(%v/%s) = %d, %t; want %d, %t", tc.target.String(), tc.proto, got, ok, tc.want, tc.ok)
		}
	}
}

func readyPod(name string, at time.Time) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}}}
}

func TestTriggerTimesReportTheEarliestUnseenChange(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", CreationTimestamp: metav1.NewTime(t0)}}
	tt := NewTriggerTimes()
	if got := tt.Compute(svc, []*corev1.Pod{readyPod("a", t0.Add(time.Minute))}); !got.Equal(t0) {
		t.Fatalf("first sync: %v, want the Service's creation %v", got, t0)
	}
	if got := tt.Compute(svc, []*corev1.Pod{readyPod("a", t0.Add(time.Minute))}); !got.IsZero() {
		t.Fatalf("nothing new: %v, want zero", got)
	}
	got := tt.Compute(svc, []*corev1.Pod{readyPod("a", t0.Add(3*time.Minute)), readyPod("b", t0.Add(2*time.Minute))})
	if !got.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("two changes: %v, want the earlier", got)
	}
	tt.Forget("ns/svc")
	if got := tt.Compute(svc, nil); !got.Equal(t0) {
		t.Fatalf("after Forget: %v, want the Service's creation again", got)
	}
}

func TestPodHandlerEnqueuesAffectedServices(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "manual"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}},
	} {
		if err := idx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	h := PodHandler(corelisters.NewServiceLister(idx), func(k string) { got = append(got, k) }).(cache.ResourceEventHandlerFuncs)
	pod := func(rv, app string, ready bool) *corev1.Pod {
		p := readyPod("p", time.Now())
		p.Namespace, p.ResourceVersion, p.Labels = "ns", rv, map[string]string{"app": app}
		if !ready {
			p.Status.Conditions[0].Status = corev1.ConditionFalse
		}
		return p
	}
	for _, tc := range []struct {
		name string
		fire func()
		want []string
	}{
		{"add", func() { h.OnAdd(pod("1", "web", true), false) }, []string{"ns/web"}},
		{"resync", func() { h.OnUpdate(pod("1", "web", true), pod("1", "web", false)) }, nil},
		{"irrelevant change", func() {
			p := pod("2", "web", true)
			p.Annotations = map[string]string{"x": "y"}
			h.OnUpdate(pod("1", "web", true), p)
		}, nil},
		{"readiness", func() { h.OnUpdate(pod("1", "web", true), pod("2", "web", false)) }, []string{"ns/web"}},
		{"relabel", func() { h.OnUpdate(pod("1", "web", true), pod("2", "api", true)) }, []string{"ns/api", "ns/web"}},
		{"delete tombstone", func() {
			h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod("1", "api", true)})
		}, []string{"ns/api"}},
	} {
		got = nil
		tc.fire()
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: enqueued %v, want %v", tc.name, got, tc.want)
		}
	}
}
