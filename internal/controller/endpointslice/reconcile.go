package endpointslice

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/controller/endpoints/endpointutil"
)

// plan is the writes that bring a Service's slices to what its pods call for.
type plan struct {
	create, update, delete []*discoveryv1.EndpointSlice
}

// zoneFunc returns the topology zone of a node ("" if unknown).
type zoneFunc func(node string) string

// reconcile plans the slices of svc: per address type, the selected pods'
// endpoints grouped by their resolved ports, at most max to a slice. It
// keeps endpoints where they are when it can, fills slices it is rewriting
// anyway before touching others, deletes slices left empty, and keeps one
// empty placeholder slice when the Service has no endpoints at all. existing
// holds every slice this controller manages for the Service's name.
func reconcile(svc *corev1.Service, pods []*corev1.Pod, zone zoneFunc, existing []*discoveryv1.EndpointSlice, max int) plan {
	var out plan
	types := addressTypes(svc)
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if slices.Contains(types, s.AddressType) {
			byType[s.AddressType] = append(byType[s.AddressType], s)
		} else {
			out.delete = append(out.delete, s)
		}
	}
	for _, at := range types {
		p := reconcileType(svc, pods, zone, byType[at], at, max)
		out.create = append(out.create, p.create...)
		out.update = append(out.update, p.update...)
		out.delete = append(out.delete, p.delete...)
	}
	return out
}

// addressTypes are the families the Service publishes: its IP families, else
// its cluster IP's, else IPv4 (the API server does not always fill in
// ipFamilies, and pods here are single-stack).
func addressTypes(svc *corev1.Service) []discoveryv1.AddressType {
	var types []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		at := discoveryv1.AddressTypeIPv4
		if f == corev1.IPv6Protocol {
			at = discoveryv1.AddressTypeIPv6
		}
		if !slices.Contains(types, at) {
			types = append(types, at)
		}
	}
	if len(types) > 0 {
		return types
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil && ip.To4() == nil {
		return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
	}
	return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
}

// group is the desired endpoints sharing one set of ports.
type group struct {
	ports []discoveryv1.EndpointPort
	eps   map[string]discoveryv1.Endpoint
}

func reconcileType(svc *corev1.Service, pods []*corev1.Pod, zone zoneFunc, existing []*discoveryv1.EndpointSlice, at discoveryv1.AddressType, max int) plan {
	var out plan
	existingByPorts := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if ownedBy(s, svc) {
			k := portsKey(s.Ports)
			existingByPorts[k] = append(existingByPorts[k], s)
		} else {
			out.delete = append(out.delete, s) // left by an earlier Service of this name
		}
	}
	desired := map[string]*group{}
	for _, pod := range pods {
		if !endpointutil.ShouldPodBeInEndpoints(pod, true) {
			continue
		}
		ep := podEndpoint(pod, svc, at, zone)
		if len(ep.Addresses) == 0 {
			continue
		}
		ports := endpointPorts(svc, pod)
		k := portsKey(ports)
		g, ok := desired[k]
		if !ok {
			g = &group{ports: ports, eps: map[string]discoveryv1.Endpoint{}}
			desired[k] = g
		}
		g.eps[endpointKey(&ep)] = ep
	}
	labels := sliceLabels(svc)
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		p := reconcileGroup(svc, existingByPorts[k], desired[k], labels, at, max)
		out.create = append(out.create, p.create...)
		out.update = append(out.update, p.update...)
		out.delete = append(out.delete, p.delete...)
	}
	for _, k := range slices.Sorted(maps.Keys(existingByPorts)) {
		if desired[k] == nil {
			out.delete = append(out.delete, existingByPorts[k]...)
		}
	}
	// A Service with no endpoints keeps one empty slice, so that readers can
	// tell "no endpoints" from "not processed yet".
	if len(existing) == len(out.delete) && len(out.create) == 0 {
		placeholder := newSlice(svc, at, []discoveryv1.EndpointPort{}, labels)
		if len(out.delete) == 1 && isPlaceholder(out.delete[0], placeholder) {
			out.delete = nil
		} else {
			out.create = append(out.create, placeholder)
		}
	}
	// Rather than delete one slice and create another, rewrite the first.
	for len(out.create) > 0 {
		i := slices.IndexFunc(out.delete, func(s *discoveryv1.EndpointSlice) bool { return ownedBy(s, svc) })
		if i < 0 {
			break
		}
		old, fresh := out.delete[i], out.create[len(out.create)-1]
		reused := old.DeepCopy()
		reused.Labels, reused.Ports, reused.Endpoints = fresh.Labels, fresh.Ports, fresh.Endpoints
		out.update = append(out.update, reused)
		out.create = out.create[:len(out.create)-1]
		out.delete = slices.Delete(out.delete, i, i+1)
	}
	return out
}

// reconcileGroup plans the slices of one set of ports.
func reconcileGroup(svc *corev1.Service, existing []*discoveryv1.EndpointSlice, g *group, labels map[string]string, at discoveryv1.AddressType, max int) plan {
	var out plan
	existing = slices.Clone(existing)
	slices.SortFunc(existing, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	placed := map[string]bool{}
	var unchanged []*discoveryv1.EndpointSlice
	// 1. Keep each endpoint in the slice that has it, updated; drop the gone.
	for _, s := range existing {
		changed := !apiequality.Semantic.DeepEqual(s.Labels, labels)
		var keep []discoveryv1.Endpoint
		for i := range s.Endpoints {
			k := endpointKey(&s.Endpoints[i])
			want, ok := g.eps[k]
			if !ok || placed[k] {
				changed = true
				continue
			}
			placed[k] = true
			if !endpointEqual(&s.Endpoints[i], &want) {
				changed = true
			}
			keep = append(keep, want)
		}
		switch {
		case !changed:
			unchanged = append(unchanged, s)
		case len(keep) == 0:
			out.delete = append(out.delete, s)
		default:
			u := s.DeepCopy()
			u.Labels, u.Endpoints = labels, keep
			out.update = append(out.update, u)
		}
	}
	var rest []discoveryv1.Endpoint
	for _, k := range slices.Sorted(maps.Keys(g.eps)) {
		if !placed[k] {
			rest = append(rest, g.eps[k])
		}
	}
	// 2. New endpoints go first into slices being rewritten anyway.
	for _, u := range out.update {
		n := min(max-len(u.Endpoints), len(rest))
		if n > 0 {
			u.Endpoints = append(u.Endpoints, rest[:n]...)
			rest = rest[n:]
		}
	}
	// 3. Then full new slices; a last partial one goes into the unchanged
	// slice it fills most, if any has room, else into a new slice.
	for len(rest) > 0 {
		n := min(max, len(rest))
		if n < max {
			if i := sliceToFill(unchanged, n, max); i >= 0 {
				u := unchanged[i].DeepCopy()
				u.Endpoints = append(u.Endpoints, rest...)
				out.update = append(out.update, u)
				unchanged = slices.Delete(unchanged, i, i+1)
				break
			}
		}
		s := newSlice(svc, at, g.ports, labels)
		s.Endpoints = slices.Clone(rest[:n])
		out.create = append(out.create, s)
		rest = rest[n:]
	}
	return out
}

// sliceToFill picks the slice that n more endpoints fill closest to max
// (-1 when none has room).
func sliceToFill(candidates []*discoveryv1.EndpointSlice, n, max int) int {
	best, bestRoom := -1, max
	for i, s := range candidates {
		if room := max - len(s.Endpoints) - n; room >= 0 && room < bestRoom {
			best, bestRoom = i, room
		}
	}
	return best
}

// podEndpoint is the endpoint of a pod. Ready means "send new traffic": a
// terminating pod is never ready (unless the Service publishes not-ready
// addresses), while serving still reports its readiness probe.
func podEndpoint(pod *corev1.Pod, svc *corev1.Service, at discoveryv1.AddressType, zone zoneFunc) discoveryv1.Endpoint {
	serving := endpointutil.IsReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  endpointutil.PodIPs(pod, at == discoveryv1.AddressTypeIPv6),
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = new(pod.Spec.NodeName)
		if z := zone(pod.Spec.NodeName); z != "" {
			ep.Zone = new(z)
		}
	}
	if endpointutil.ShouldSetHostname(pod, svc) {
		ep.Hostname = new(pod.Spec.Hostname)
	}
	return ep
}

// endpointPorts resolves the Service's ports on a pod; a named port the pod
// lacks is left out.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	ports := []discoveryv1.EndpointPort{}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		num, ok := endpointutil.FindPort(pod, sp)
		if !ok {
			continue
		}
		ports = append(ports, discoveryv1.EndpointPort{
			Name: new(sp.Name), Port: new(num), Protocol: new(sp.Protocol), AppProtocol: sp.AppProtocol,
		})
	}
	return ports
}

// portsKey identifies a set of ports regardless of order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprintf("%s/%s/%s/%s", deref(p.Name), deref(p.Protocol), num(p.Port), deref(p.AppProtocol))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// endpointKey identifies an endpoint across syncs: its pod, addresses and
// hostname (pods on the host network share addresses).
func endpointKey(ep *discoveryv1.Endpoint) string {
	var ref string
	if ep.TargetRef != nil {
		ref = ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
	}
	addrs := slices.Sorted(slices.Values(ep.Addresses))
	return ref + "|" + strings.Join(addrs, ",") + "|" + deref(ep.Hostname)
}

// endpointEqual compares what endpointKey leaves out.
func endpointEqual(a, b *discoveryv1.Endpoint) bool {
	uid := func(e *discoveryv1.Endpoint) string {
		if e.TargetRef == nil {
			return ""
		}
		return string(e.TargetRef.UID)
	}
	return apiequality.Semantic.DeepEqual(a.Conditions, b.Conditions) &&
		deref(a.NodeName) == deref(b.NodeName) && deref(a.Zone) == deref(b.Zone) &&
		uid(a) == uid(b) && a.Hints == nil && b.Hints == nil
}

// sliceLabels are the Service's labels (but for the reserved ones), the
// headless marker, the Service's name and this controller's.
func sliceLabels(svc *corev1.Service) map[string]string {
	labels := map[string]string{}
	for k, v := range svc.Labels {
		switch k {
		case discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy, corev1.IsHeadlessService:
			continue
		}
		labels[k] = v
	}
	if endpointutil.IsHeadless(svc) {
		labels[corev1.IsHeadlessService] = ""
	}
	labels[discoveryv1.LabelServiceName] = svc.Name
	labels[discoveryv1.LabelManagedBy] = ControllerName
	return labels
}

// newSlice is a slice of svc to create, named by the server after it.
func newSlice(svc *corev1.Service, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, labels map[string]string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    svc.Name + "-",
			Namespace:       svc.Namespace,
			Labels:          maps.Clone(labels),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))},
		},
		AddressType: at,
		Ports:       ports,
		Endpoints:   []discoveryv1.Endpoint{},
	}
}

// isPlaceholder reports whether s already is the placeholder want.
func isPlaceholder(s, want *discoveryv1.EndpointSlice) bool {
	return s.AddressType == want.AddressType && len(s.Endpoints) == 0 && len(s.Ports) == 0 &&
		apiequality.Semantic.DeepEqual(s.Labels, want.Labels)
}

// ownedBy reports whether s belongs to this very Service (not an earlier
// one of the same name).
func ownedBy(s *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	return slices.ContainsFunc(s.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.UID == svc.UID && o.Kind == "Service" && o.APIVersion == "v1"
	})
}

func deref[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

func num(p *int32) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}
