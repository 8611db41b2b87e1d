package endpoints

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/controller/endpoints/endpointutil"
)

// maxAddresses is the most addresses one Endpoints object holds; beyond it
// the controller truncates and says so in an annotation.
const maxAddresses = 1000

// desiredSubsets computes the subsets of the Endpoints of svc from the pods
// it selects: one address per published pod and resolvable port, ready or
// not ready, then repacked so that addresses offering the same ports share a
// subset.
func desiredSubsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	var subsets []corev1.EndpointSubset
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	for _, pod := range pods {
		if !endpointutil.ShouldPodBeInEndpoints(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		ips := endpointutil.PodIPs(pod, serviceIPv6(svc, pod))
		if len(ips) == 0 {
			continue
		}
		addr := corev1.EndpointAddress{
			IP:        ips[0],
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			addr.NodeName = new(pod.Spec.NodeName)
		}
		if endpointutil.ShouldSetHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		ready := svc.Spec.PublishNotReadyAddresses || endpointutil.IsReady(pod)
		add := func(ports []corev1.EndpointPort) {
			ss := corev1.EndpointSubset{Ports: ports}
			if ready {
				ss.Addresses = []corev1.EndpointAddress{addr}
			} else {
				ss.NotReadyAddresses = []corev1.EndpointAddress{addr}
			}
			subsets = append(subsets, ss)
		}
		if len(svc.Spec.Ports) == 0 {
			// Only a headless Service may do without ports; its DNS names the pods.
			if headless {
				add(nil)
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, ok := endpointutil.FindPort(pod, sp)
			if !ok {
				continue // the pod lacks this named port: it is left out of it
			}
			add([]corev1.EndpointPort{{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol}})
		}
	}
	return repack(subsets)
}

// serviceIPv6 reports which family of pod address the Service publishes: its
// first IP family, else its cluster IP's, else (headless) the pod's own.
func serviceIPv6(svc *corev1.Service, pod *corev1.Pod) bool {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies[0] == corev1.IPv6Protocol
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil {
		return ip.To4() == nil
	}
	ip := net.ParseIP(pod.Status.PodIP)
	return ip != nil && ip.To4() == nil
}

// addrKey tells addresses apart: pods sharing the host network share an IP.
type addrKey struct {
	ip  string
	uid types.UID
}

func keyOf(a *corev1.EndpointAddress) addrKey {
	k := addrKey{ip: a.IP}
	if a.TargetRef != nil {
		k.uid = a.TargetRef.UID
	}
	return k
}

// noPort stands for "no ports" so that port-less addresses are kept.
var noPort = corev1.EndpointPort{Port: -1}

// repack regroups subsets into the canonical form the API shows: each set of
// addresses (with their readiness) appears once, with every port those
// addresses all offer; an address not ready on any port is not ready. The
// result is sorted, so equal contents compare equal.
func repack(in []corev1.EndpointSubset) []corev1.EndpointSubset {
	addrs := map[addrKey]corev1.EndpointAddress{}
	byPort := map[corev1.EndpointPort]map[addrKey]bool{} // port -> address -> ready
	var portOrder []corev1.EndpointPort
	note := func(p corev1.EndpointPort, a corev1.EndpointAddress, ready bool) {
		k := keyOf(&a)
		if _, ok := addrs[k]; !ok {
			addrs[k] = a
		}
		m, ok := byPort[p]
		if !ok {
			m = map[addrKey]bool{}
			byPort[p] = m
			portOrder = append(portOrder, p)
		}
		if was, seen := m[k]; !seen || was {
			m[k] = ready // not ready wins
		}
	}
	for _, ss := range in {
		ports := ss.Ports
		if len(ports) == 0 {
			ports = []corev1.EndpointPort{noPort}
		}
		for _, p := range ports {
			for _, a := range ss.Addresses {
				note(p, a, true)
			}
			for _, a := range ss.NotReadyAddresses {
				note(p, a, false)
			}
		}
	}
	// Ports whose address sets are identical share one subset.
	type group struct {
		ports []corev1.EndpointPort
		set   map[addrKey]bool
	}
	groups := map[string]*group{}
	var order []string
	for _, p := range portOrder {
		set := byPort[p]
		sig := signature(set)
		g, ok := groups[sig]
		if !ok {
			g = &group{set: set}
			groups[sig] = g
			order = append(order, sig)
		}
		if p != noPort {
			g.ports = append(g.ports, p)
		}
	}
	out := make([]corev1.EndpointSubset, 0, len(order))
	for _, sig := range order {
		g := groups[sig]
		var ss corev1.EndpointSubset
		for k, ready := range g.set {
			if ready {
				ss.Addresses = append(ss.Addresses, addrs[k])
			} else {
				ss.NotReadyAddresses = append(ss.NotReadyAddresses, addrs[k])
			}
		}
		slices.SortFunc(ss.Addresses, compareAddrs)
		slices.SortFunc(ss.NotReadyAddresses, compareAddrs)
		slices.SortFunc(g.ports, comparePorts)
		ss.Ports = g.ports
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b corev1.EndpointSubset) int { return strings.Compare(subsetSig(a), subsetSig(b)) })
	return out
}

func signature(set map[addrKey]bool) string {
	parts := make([]string, 0, len(set))
	for k, ready := range set {
		parts = append(parts, fmt.Sprintf("%s/%s/%t", k.ip, k.uid, ready))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func subsetSig(ss corev1.EndpointSubset) string {
	var b strings.Builder
	for _, p := range ss.Ports {
		fmt.Fprintf(&b, "%s/%d/%s,", p.Name, p.Port, p.Protocol)
	}
	for _, a := range ss.Addresses {
		fmt.Fprintf(&b, "r%s/%s,", a.IP, keyOf(&a).uid)
	}
	for _, a := range ss.NotReadyAddresses {
		fmt.Fprintf(&b, "n%s/%s,", a.IP, keyOf(&a).uid)
	}
	return b.String()
}

func compareAddrs(a, b corev1.EndpointAddress) int {
	ka, kb := keyOf(&a), keyOf(&b)
	return cmp.Or(strings.Compare(ka.ip, kb.ip), strings.Compare(string(ka.uid), string(kb.uid)))
}

func comparePorts(a, b corev1.EndpointPort) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port), strings.Compare(string(a.Protocol), string(b.Protocol)))
}

// truncate caps the addresses at maxAddresses, keeping ready ones first and
// sharing the cut between subsets in proportion to their size. It reports
// whether anything was cut.
func truncate(subsets []corev1.EndpointSubset) ([]corev1.EndpointSubset, bool) {
	ready, notReady := 0, 0
	for _, ss := range subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready+notReady <= maxAddresses {
		return subsets, false
	}
	cutReady := ready > maxAddresses
	budget, total := maxAddresses-ready, notReady
	if cutReady {
		budget, total = maxAddresses, ready
	}
	left := budget
	for i := range subsets {
		ss := &subsets[i]
		n := len(ss.NotReadyAddresses)
		if cutReady {
			n = len(ss.Addresses)
		}
		keep := min(int(math.Ceil(float64(n)/float64(total)*float64(budget))), left)
		if cutReady {
			ss.Addresses = ss.Addresses[:min(keep, len(ss.Addresses))]
			ss.NotReadyAddresses = nil
			left -= len(ss.Addresses)
		} else {
			ss.NotReadyAddresses = ss.NotReadyAddresses[:min(keep, len(ss.NotReadyAddresses))]
			left -= len(ss.NotReadyAddresses)
		}
	}
	// A subset left with no address at all is invalid; drop it.
	return slices.DeleteFunc(subsets, func(ss corev1.EndpointSubset) bool {
		return len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0
	}), true
}
