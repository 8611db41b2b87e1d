package endpointslice_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/endpoints/endpointtest"
	"github.com/skiff-sh/skiff/internal/controller/endpointslice"
)

type fixture struct{ *endpointtest.Fixture }

func start(t *testing.T) fixture {
	return fixture{endpointtest.Start(t, func(c kubernetes.Interface, f informers.SharedInformerFactory) endpointtest.Runner {
		return endpointslice.NewController(c, f)
	})}
}

func (f fixture) list(t *testing.T, ns, svc string) []discoveryv1.EndpointSlice {
	t.Helper()
	l, err := f.Client.DiscoveryV1().EndpointSlices(ns).List(f.Ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatalf("list endpointslices: %v", err)
	}
	return l.Items
}

// render shows slices compactly, sorted: "[http:8080] a=RS- b=---" per
// slice, the flags being ready, serving and terminating.
func render(list []discoveryv1.EndpointSlice) string {
	var out []string
	for _, s := range list {
		var ports, eps []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", *p.Name, *p.Port))
		}
		for _, e := range s.Endpoints {
			flag := func(b *bool, c string) string {
				if b != nil && *b {
					return c
				}
				return "-"
			}
			c := e.Conditions
			eps = append(eps, e.TargetRef.Name+"="+flag(c.Ready, "R")+flag(c.Serving, "S")+flag(c.Terminating, "T"))
		}
		slices.Sort(eps)
		out = append(out, strings.TrimSpace("["+strings.Join(ports, ",")+"] "+strings.Join(eps, " ")))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// wait waits until the slices of svc render as want and returns them.
func (f fixture) wait(t *testing.T, ns, svc, want string) []discoveryv1.EndpointSlice {
	t.Helper()
	var list []discoveryv1.EndpointSlice
	endpointtest.Until(t, fmt.Sprintf("slices of %s/%s = %q", ns, svc, want), func() (string, bool) {
		list = f.list(t, ns, svc)
		got := render(list)
		return fmt.Sprintf("%q", got), got == want
	})
	return list
}

// newer compares resourceVersions, which on this server are etcd revisions.
func newer(a, b string) bool {
	x, _ := strconv.ParseUint(a, 10, 64)
	y, _ := strconv.ParseUint(b, 10, 64)
	return x > y
}

func TestEndpointSlicesOnRealServer(t *testing.T) {
	f := start(t)
	port8080 := intstr.FromInt32(8080)

	t.Run("ConditionsAndMetadata", func(t *testing.T) {
		ns := f.Namespace(t)
		svc := f.Service(t, ns, "svc", "web", port8080)
		a := f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		f.Pod(t, ns, "b", "web", "10.0.0.2", false)
		f.Pod(t, ns, "c", "web", "10.0.0.3", true)
		f.Pod(t, ns, "other", "api", "10.0.0.4", true)
		f.Terminate(t, ns, "c")
		list := f.wait(t, ns, "svc", "[http:8080] a=RS- b=--- c=-ST")
		s := list[0]
		if !strings.HasPrefix(s.Name, "svc-") || len(s.Name) != len("svc-")+5 || s.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("name %q addressType %q", s.Name, s.AddressType)
		}
		if s.Labels[discoveryv1.LabelManagedBy] != endpointslice.ControllerName || s.Labels["team"] != "a" {
			t.Errorf("labels %v", s.Labels)
		}
		if ref := metav1.GetControllerOf(&s); ref == nil || ref.UID != svc.UID || ref.Kind != "Service" || ref.APIVersion != "v1" ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("owner reference %+v", s.OwnerReferences)
		}
		for _, e := range s.Endpoints {
			if e.TargetRef.Name == "a" && (e.Addresses[0] != "10.0.0.1" || *e.NodeName != "node-1" || e.TargetRef.UID != a.UID || e.TargetRef.Kind != "Pod") {
				t.Errorf("endpoint of a: %+v", e)
			}
		}
		if p := s.Ports[0]; *p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port protocol %v", *p.Protocol)
		}
		f.SetStatus(t, ns, "b", "10.0.0.2", true)
		f.wait(t, ns, "svc", "[http:8080] a=RS- b=RS- c=-ST")
	})

	t.Run("PlaceholderBecomesTheSlice", func(t *testing.T) {
		ns := f.Namespace(t)
		svc := f.Service(t, ns, "svc", "web", intstr.FromString("web"))
		placeholder := f.wait(t, ns, "svc", "[]")[0]
		// Its first write records the Service's creation as the trigger.
		if placeholder.Annotations[corev1.EndpointsLastChangeTriggerTime] != svc.CreationTimestamp.UTC().Format(time.RFC3339Nano) {
			t.Errorf("annotations %v, want %s = the Service's creation", placeholder.Annotations, corev1.EndpointsLastChangeTriggerTime)
		}
		f.Pod(t, ns, "a", "web", "10.0.0.1", true, endpointtest.Port("web", 8080))
		if got := f.wait(t, ns, "svc", "[http:8080] a=RS-")[0]; got.Name != placeholder.Name {
			t.Errorf("slice %s replaced placeholder %s: want it reused", got.Name, placeholder.Name)
		}
		// A pod with the named port at another number gets its own slice.
		f.Pod(t, ns, "b", "web", "10.0.0.1", true, endpointtest.Port("web", 8081))
		f.Pod(t, ns, "c", "web", "10.0.0.1", true) // lacks the named port
		f.wait(t, ns, "svc", "[] c=RS-; [http:8080] a=RS-; [http:8081] b=RS-")
		f.Remove(t, ns, "a")
		f.Remove(t, ns, "b")
		f.Remove(t, ns, "c")
		f.wait(t, ns, "svc", "[]")
	})

	t.Run("SelectorChanged", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", port8080)
		f.Pod(t, ns, "w", "web", "10.0.0.1", true)
		f.Pod(t, ns, "x", "api", "10.0.0.2", true)
		f.wait(t, ns, "svc", "[http:8080] w=RS-")
		f.UpdateService(t, ns, "svc", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "api"} })
		f.wait(t, ns, "svc", "[http:8080] x=RS-")
	})

	t.Run("PublishNotReadyAddresses", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", port8080, func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })
		f.Pod(t, ns, "a", "web", "10.0.0.1", false)
		f.Pod(t, ns, "b", "web", "10.0.0.2", true)
		f.Terminate(t, ns, "b")
		f.wait(t, ns, "svc", "[http:8080] a=R-- b=RST")
	})

	t.Run("ServiceDeletedDeletesSlices", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", port8080)
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		f.wait(t, ns, "svc", "[http:8080] a=RS-")
		if err := f.Client.CoreV1().Services(ns).Delete(f.Ctx, "svc", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		f.wait(t, ns, "svc", "")
	})

	t.Run("NoWriteWhenNothingChanged", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", port8080)
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		before := f.wait(t, ns, "svc", "[http:8080] a=RS-")[0]
		// A change the slices do not show, then a later Service as a
		// marker: once its slice exists, the change has been looked at.
		p, err := f.Client.CoreV1().Pods(ns).Get(f.Ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Annotations = map[string]string{"touched": "yes"}
		if _, err := f.Client.CoreV1().Pods(ns).Update(f.Ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.Service(t, ns, "marker", "web", port8080)
		f.wait(t, ns, "marker", "[http:8080] a=RS-")
		after := f.list(t, ns, "svc")
		if len(after) != 1 || after[0].Name != before.Name || after[0].ResourceVersion != before.ResourceVersion {
			t.Fatalf("slice rewritten without a change: %s@%s -> %+v", before.Name, before.ResourceVersion, after)
		}
	})

	t.Run("ExternalChangesRepaired", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", port8080)
		f.Pod(t, ns, "a", "web", "10.0.0.1", true)
		// Someone else's slice for the Service is not ours to touch.
		foreign := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "svc-mirror", Labels: map[string]string{
				discoveryv1.LabelServiceName: "svc", discoveryv1.LabelManagedBy: "someone-else"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.9.9.9"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "far"}}},
		}
		if _, err := f.Client.DiscoveryV1().EndpointSlices(ns).Create(f.Ctx, foreign, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		list := f.wait(t, ns, "svc", "[] far=---; [http:8080] a=RS-")
		mine := list[0]
		if mine.Name == "svc-mirror" {
			mine = list[1]
		}
		// repaired waits for our slice to be right again, once it satisfies fresh.
		repaired := func(what string, fresh func(discoveryv1.EndpointSlice) bool) {
			endpointtest.Until(t, what, func() (string, bool) {
				list := f.list(t, ns, "svc")
				for _, s := range list {
					if s.Name != "svc-mirror" && fresh(s) {
						return render(list), render(list) == "[] far=---; [http:8080] a=RS-"
					}
				}
				return render(list), false
			})
		}
		mine.Endpoints[0].Conditions.Ready = new(false)
		edited, err := f.Client.DiscoveryV1().EndpointSlices(ns).Update(f.Ctx, &mine, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		repaired("edited slice repaired", func(s discoveryv1.EndpointSlice) bool { return newer(s.ResourceVersion, edited.ResourceVersion) })
		if err := f.Client.DiscoveryV1().EndpointSlices(ns).Delete(f.Ctx, mine.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		repaired("deleted slice replaced", func(s discoveryv1.EndpointSlice) bool { return s.Name != mine.Name })
	})

	t.Run("AtMost100EndpointsPerSlice", func(t *testing.T) {
		ns := f.Namespace(t)
		f.Service(t, ns, "svc", "web", port8080)
		for i := range 101 {
			f.Pod(t, ns, fmt.Sprintf("p%03d", i), "web", fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), true)
		}
		// How they split depends on how the pods arrive (a slice of 99
		// cannot take 2 more), as upstream: every pod once, no slice over 100.
		endpointtest.Until(t, "101 endpoints, each once, in slices of at most 100", func() (string, bool) {
			var sizes []int
			seen := map[string]bool{}
			for _, s := range f.list(t, ns, "svc") {
				sizes = append(sizes, len(s.Endpoints))
				for _, e := range s.Endpoints {
					seen[e.TargetRef.Name] = true
				}
			}
			total := 0
			for _, n := range sizes {
				total += n
			}
			return fmt.Sprintf("sizes %v, %d pods", sizes, len(seen)), total == 101 && len(seen) == 101 && slices.Max(sizes) <= 100
		})
	})
}
