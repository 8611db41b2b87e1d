package endpoints

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/dump"
)

// pod is a running pod on node-1 at ip; opts adjust it.
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

func webPort(port int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = port }
}

func noPorts(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }

func service(opts ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: "svc-uid", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")}}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func addr(p *corev1.Pod) corev1.EndpointAddress {
	return corev1.EndpointAddress{IP: p.Status.PodIP, NodeName: new("node-1"),
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: p.Name, UID: p.UID}}
}

func port(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

func TestDesiredSubsets(t *testing.T) {
	a, b, c := pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false), pod("c", "10.0.0.3", true, noPorts)
	shared1, shared2 := pod("s1", "10.0.0.9", true), pod("s2", "10.0.0.9", true, webPort(8081))
	gone := pod("gone", "10.0.0.4", true, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} })
	done := pod("done", "10.0.0.5", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
	noIP := pod("noip", "", false, func(p *corev1.Pod) { p.Status.PodIPs = nil })
	loop := pod("lo", "127.0.0.1", true)
	twoPorts := func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9090)})
	}
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want []corev1.EndpointSubset
	}{{
		name: "ready and not-ready addresses share their port",
		svc:  service(),
		pods: []*corev1.Pod{b, a},
		want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(a)}, NotReadyAddresses: []corev1.EndpointAddress{addr(b)}, Ports: []corev1.EndpointPort{port("http", 8080)}}},
	}, {
		name: "a pod lacking the named port is left out of that port only",
		svc:  service(twoPorts),
		pods: []*corev1.Pod{a, c},
		want: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr(a)}, Ports: []corev1.EndpointPort{port("http", 8080)}},
			{Addresses: []corev1.EndpointAddress{addr(a), addr(c)}, Ports: []corev1.EndpointPort{port("metrics", 9090)}},
		},
	}, {
		name: "addresses offering the same ports share one subset",
		svc:  service(twoPorts),
		pods: []*corev1.Pod{a, b},
		want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(a)}, NotReadyAddresses: []corev1.EndpointAddress{addr(b)},
			Ports: []corev1.EndpointPort{port("http", 8080), port("metrics", 9090)}}},
	}, {
		name: "host-network pods sharing an IP are separate addresses, ports resolved per pod",
		svc:  service(),
		pods: []*corev1.Pod{shared1, shared2},
		want: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr(shared1)}, Ports: []corev1.EndpointPort{port("http", 8080)}},
			{Addresses: []corev1.EndpointAddress{addr(shared2)}, Ports: []corev1.EndpointPort{port("http", 8081)}},
		},
	}, {
		name: "terminating, finished, address-less and loopback pods are left out",
		svc:  service(),
		pods: []*corev1.Pod{a, gone, done, noIP, loop},
		want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(a)}, Ports: []corev1.EndpointPort{port("http", 8080)}}},
	}, {
		name: "publishNotReadyAddresses publishes not-ready and terminating pods as ready",
		svc:  service(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
		pods: []*corev1.Pod{a, b, gone},
		want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(a), addr(b), addr(gone)}, Ports: []corev1.EndpointPort{port("http", 8080)}}},
	}, {
		name: "a headless Service without ports lists bare addresses",
		svc:  service(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil }),
		pods: []*corev1.Pod{a, b},
		want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(a)}, NotReadyAddresses: []corev1.EndpointAddress{addr(b)}}},
	}, {
		name: "a Service with a cluster IP and no ports gets no addresses",
		svc:  service(func(s *corev1.Service) { s.Spec.Ports = nil }),
		pods: []*corev1.Pod{a},
		want: []corev1.EndpointSubset{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := desiredSubsets(tc.svc, tc.pods)
			if !apiequality.Semantic.DeepEqual(got, tc.want) {
				t.Fatalf("subsets:\n got %s\nwant %s", dump.Pretty(got), dump.Pretty(tc.want))
			}
		})
	}
}

func TestRepackNotReadyOnAnyCopyWins(t *testing.T) {
	a := addr(pod("a", "10.0.0.1", true))
	got := repack([]corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{a}, Ports: []corev1.EndpointPort{port("http", 80)}},
		{NotReadyAddresses: []corev1.EndpointAddress{a}, Ports: []corev1.EndpointPort{port("http", 80)}},
	})
	want := []corev1.EndpointSubset{{NotReadyAddresses: []corev1.EndpointAddress{a}, Ports: []corev1.EndpointPort{port("http", 80)}}}
	if !apiequality.Semantic.DeepEqual(got, want) {
		t.Fatalf("got %s", dump.Pretty(got))
	}
}

func TestTruncateKeepsReadyFirst(t *testing.T) {
	var ready, notReady []corev1.EndpointAddress
	for i := range 900 {
		ready = append(ready, corev1.EndpointAddress{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250)})
	}
	for i := range 300 {
		notReady = append(notReady, corev1.EndpointAddress{IP: fmt.Sprintf("10.2.%d.%d", i/250, i%250)})
	}
	got, cut := truncate([]corev1.EndpointSubset{
		{Addresses: ready[:450], NotReadyAddresses: notReady[:200]},
		{Addresses: ready[450:], NotReadyAddresses: notReady[200:]},
	})
	if !cut {
		t.Fatal("1200 addresses were not truncated")
	}
	r, n := 0, 0
	for _, ss := range got {
		r += len(ss.Addresses)
		n += len(ss.NotReadyAddresses)
	}
	if r != 900 || n != 100 {
		t.Fatalf("kept %d ready and %d not ready, want 900 and 100", r, n)
	}
	if _, cut := truncate([]corev1.EndpointSubset{{Addresses: ready}}); cut {
		t.Fatal("900 addresses were truncated")
	}
}

// TestSyncWritesOnlyOnChange runs sync against listers and a fake clientset:
// the first sync creates the Endpoints, a second sync over the same state
// writes nothing, and a readiness change is one update.
func TestSyncWritesOnlyOnChange(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	c := NewController(client, factory)
	t.Cleanup(c.recorder.Stop)
	svc, a := service(), pod("a", "10.0.0.1", false)
	svc.CreationTimestamp = metav1.Now()
	must(t, factory.Core().V1().Services().Informer().GetIndexer().Add(svc))
	pods := factory.Core().V1().Pods().Informer().GetIndexer()
	must(t, pods.Add(a))
	ctx := context.Background()

	must(t, c.sync(ctx, "ns/svc"))
	if n := len(client.Actions()); n != 1 || !client.Actions()[0].Matches("create", "endpoints") {
		t.Fatalf("first sync: actions %v, want one create", client.Actions())
	}
	ep, err := client.CoreV1().Endpoints("ns").Get(ctx, "svc", metav1.GetOptions{})
	must(t, err)
	if ep.Labels[LabelManagedBy] != ControllerName || ep.Labels["team"] != "a" || ep.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
		t.Fatalf("labels %v annotations %v", ep.Labels, ep.Annotations)
	}
	must(t, factory.Core().V1().Endpoints().Informer().GetIndexer().Add(ep))
	client.ClearActions()

	must(t, c.sync(ctx, "ns/svc"))
	if len(client.Actions()) != 0 {
		t.Fatalf("sync of unchanged state wrote: %v", client.Actions())
	}

	ready := pod("a", "10.0.0.1", true)
	ready.Status.Conditions[0].LastTransitionTime = metav1.Now()
	must(t, pods.Update(ready))
	must(t, c.sync(ctx, "ns/svc"))
	if n := len(client.Actions()); n != 1 || !client.Actions()[0].Matches("update", "endpoints") {
		t.Fatalf("after readiness change: actions %v, want one update", client.Actions())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
