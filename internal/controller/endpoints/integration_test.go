package endpoints_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/endpoints"
	"github.com/skiff-sh/skiff/internal/controller/endpoints/endpointtest"
	"github.com/skiff-sh/skiff/internal/testenv"
)

type fixture struct{ *endpointtest.Fixture }

func start(t *testing.T) fixture {
	return fixture{endpointtest.Start(t, func(c kubernetes.Interface, f informers.SharedInformerFactory) endpointtest.Runner {
		return endpoints.NewController(c, f)
	})}
}

// render shows subsets compactly: "[http:8080] ready=a,b notReady=c; ...".
func render(ep *corev1.Endpoints) string {
	var parts []string
	for _, ss := range ep.Subsets {
		var ports, ready, notReady []string
		for _, p := range ss.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}
		for _, a := range ss.Addresses {
			ready = append(ready, a.TargetRef.Name)
		}
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, a.TargetRef.Name)
		}
		slices.Sort(ready)
		slices.Sort(notReady)
		s := "[" + strings.Join(ports, ",") + "]"
		if len(ready) > 0 {
			s += " ready=" + strings.Join(ready, ",")
		}
		if len(notReady) > 0 {
			s += " notReady=" + strings.Join(notReady, ",")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// wait waits until the Endpoints of svc render as want and returns them.
func (f fixture) wait(t *testing.T, ns, svc, want string) *corev1.Endpoints {
	t.Helper()
	var ep *corev1.Endpoints
	endpointtest.Until(t, fmt.Sprintf("endpoints %s/%s = %q", ns, svc, want), func() (string, bool) {
		var err error
		ep, err = f.Client.CoreV1().Endpoints(ns).Get(f.Ctx, svc, metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		got := render(ep)
		return fmt.Sprintf("%q", got), got == want
	})
	return ep
}

func (f fixture) waitGone(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, endpointtest.WaitFor, "endpoints "+name+" deleted", func() bool {
		_, err := f.Client.CoreV1().Endpoints(ns).Get(f.Ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func TestEndpointsOnRealServer(t *testing.T) {
	f := start(t)
	web := intstr.FromString("web")

	t.Run("ReadyAndNotReadyAddresses", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", web)
		a := f.Pod(t, ns, "a", "web", "10.0.0.1", true, endpointtest.Port("web", 8080))
		f.Pod(t, ns, "b", "web", "10.0.0.2", false, endpointtest.Port("web", 8080))
		f.Pod(t, ns, "nameless", "web", "10.0.0.3", true) // lacks the named port
		f.Pod(t, ns, "other", "api", "10.0.0.4", true, endpointtest.Port("web", 8080))
		ep := f.wait(t, ns, "svc", "[http:8080] ready=a notReady=b")
		if ep.Labels[endpoints.LabelManagedBy] != endpoints.ControllerName || ep.Labels["team"] != "a" {
			t.Errorf("labels %v: want the Service's and managed-by", ep.Labels)
		}
		if _, headless := ep.Labels[corev1.IsHeadlessService]; headless {
			t.Errorf("a Service with a cluster IP got the headless label")
		}
		if ep.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
			t.Errorf("no %s annotation", corev1.EndpointsLastChangeTriggerTime)
		}
		got := ep.Subsets[0].Addresses[0]
		if got.IP != "10.0.0.1" || got.NodeName == nil || *got.NodeName != "node-1" || got.TargetRef.Kind != "Pod" || got.TargetRef.UID != a.UID {
			t.Errorf("address %+v", got)
		}
		f.SetStatus(t, ns, "b", "10.0.0.2", true)
		f.wait(t, ns, "svc", "[http:8080] ready=a,b")
		f.SetStatus(t, ns, "a", "10.0.0.1", false)
		f.wait(t, ns, "svc", "[http:8080] ready=b notReady=a")
	})

	t.Run("NamedPortResolvedPerPod", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", web, func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)})
		})
		// Host-network pods share an IP and differ by port.
		f.Pod(t, ns, "a", "web", "10.0.0.1", true, endpointtest.Port("web", 8080))
		f.Pod(t, ns, "b", "web", "10.0.0.1", true, endpointtest.Port("web", 8081))
		f.Pod(t, ns, "c", "web", "10.0.0.1", true)
		f.wait(t, ns, "svc", "[http:8080] ready=a; [http:8081] ready=b; [metrics:9090] ready=a,b,c")
	})

	t.Run("TerminatingAndDeletedPods", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080))
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		f.Pod(t, ns, "b", "web", "10.0.0.2", true)
		f.wait(t, ns, "svc", "[http:8080] ready=a,b")
		f.Terminate(t, ns, "a")
		f.wait(t, ns, "svc", "[http:8080] ready=b")
		f.Remove(t, ns, "b")
		f.wait(t, ns, "svc", "")
	})

	t.Run("PublishNotReadyAddresses", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080), func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })
		f.Pod(t, ns, "a", "web", "10.0.0.1", false)
		f.Pod(t, ns, "b", "web", "10.0.0.2", true)
		f.wait(t, ns, "svc", "[http:8080] ready=a,b")
		f.Terminate(t, ns, "b")
		f.Pod(t, ns, "c", "web", "10.0.0.3", false)
		f.wait(t, ns, "svc", "[http:8080] ready=a,b,c")
	})

	t.Run("SelectorChanged", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080))
		f.Pod(t, ns, "w", "web", "10.0.0.1", true)
		f.Pod(t, ns, "x", "api", "10.0.0.2", true)
		f.wait(t, ns, "svc", "[http:8080] ready=w")
		f.UpdateService(t, ns, "svc", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "api"} })
		f.wait(t, ns, "svc", "[http:8080] ready=x")
	})

	t.Run("HeadlessServiceWithoutPorts", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", web, func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil })
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		ep := f.wait(t, ns, "svc", "[] ready=a")
		if _, ok := ep.Labels[corev1.IsHeadlessService]; !ok {
			t.Errorf("labels %v lack %s", ep.Labels, corev1.IsHeadlessService)
		}
	})

	t.Run("ServiceDeletedDeletesEndpoints", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080))
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		f.wait(t, ns, "svc", "[http:8080] ready=a")
		if err := f.Client.CoreV1().Services(ns).Delete(f.Ctx, "svc", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		f.waitGone(t, ns, "svc")
	})

	t.Run("SelectorlessServiceEndpointsLeftAlone", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "manual", "", intstr.FromInt32(8080), func(s *corev1.Service) { s.Spec.Selector = nil })
		manual := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "manual"},
			Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.9.9.9"}},
				Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}}}},
		}
		created, err := f.Client.CoreV1().Endpoints(ns).Create(f.Ctx, manual, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A Service the controller does manage, made afterwards: once its
		// Endpoints exist, the events before it have been handled too.
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080))
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		f.wait(t, ns, "svc", "[http:8080] ready=a")
		got, err := f.Client.CoreV1().Endpoints(ns).Get(f.Ctx, "manual", metav1.GetOptions{})
		if err != nil || got.ResourceVersion != created.ResourceVersion {
			t.Fatalf("hand-made Endpoints were touched: %v %+v", err, got)
		}
		// Deleting its Service deletes them, as upstream does.
		if err := f.Client.CoreV1().Services(ns).Delete(f.Ctx, "manual", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		f.waitGone(t, ns, "manual")
	})

	t.Run("NoWriteWhenNothingChanged", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080))
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		before := f.wait(t, ns, "svc", "[http:8080] ready=a")
		// A change the Endpoints do not show, then a later Service as a
		// marker: once its Endpoints exist, the change has been looked at.
		p, err := f.Client.CoreV1().Pods(ns).Get(f.Ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Annotations = map[string]string{"touched": "yes"}
		if _, err := f.Client.CoreV1().Pods(ns).Update(f.Ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.Service(t, ns, "marker", "web", intstr.FromInt32(8080))
		f.wait(t, ns, "marker", "[http:8080] ready=a")
		after, err := f.Client.CoreV1().Endpoints(ns).Get(f.Ctx, "svc", metav1.GetOptions{})
		if err != nil || after.ResourceVersion != before.ResourceVersion {
			t.Fatalf("endpoints rewritten without a change: %v, resourceVersion %s -> %s", err, before.ResourceVersion, after.ResourceVersion)
		}
	})

	t.Run("ExternalChangesRepaired", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", intstr.FromInt32(8080))
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		ep := f.wait(t, ns, "svc", "[http:8080] ready=a")
		ep.Subsets = []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.9.9.9",
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "intruder"}}}, Ports: ep.Subsets[0].Ports}}
		if _, err := f.Client.CoreV1().Endpoints(ns).Update(f.Ctx, ep, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.wait(t, ns, "svc", "[http:8080] ready=a")
		if err := f.Client.CoreV1().Endpoints(ns).Delete(f.Ctx, "svc", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointtest.Until(t, "deleted endpoints recreated", func() (string, bool) {
			got, err := f.Client.CoreV1().Endpoints(ns).Get(f.Ctx, "svc", metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			return fmt.Sprintf("uid %s: %q", got.UID, render(got)), got.UID != ep.UID && render(got) == "[http:8080] ready=a"
		})
	})
}
