// Package endpointutil holds what the Endpoints and EndpointSlice controllers
// share: which pods a Service publishes, how a Service port resolves on a pod,
// the informer handlers that enqueue the Services an event concerns, and the
// last-change trigger time.
package endpointutil

import (
	"net"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubectl/pkg/util/podutils"
)

// IsReady reports whether the pod's Ready condition is True.
func IsReady(pod *corev1.Pod) bool { return podutils.IsPodReady(pod) }

// ShouldPodBeInEndpoints reports whether a pod is published at all: it has
// an IP and has not finished. Terminating pods count only when
// includeTerminating (EndpointSlices keep them, flagged terminating).
func ShouldPodBeInEndpoints(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

// PodIPs returns the pod's addresses of one family (IPv6 or not), in
// canonical form. Addresses the API refuses in Endpoints and EndpointSlices
// (loopback, unspecified, link-local) are left out: a node started with
// --node-ip 127.0.0.1 gives its host-network pods such an address, and
// publishing it would fail the whole object for every other pod too.
func PodIPs(pod *corev1.Pod, ipv6 bool) []string {
	ips := make([]string, 0, 1)
	for _, s := range podIPStrings(pod) {
		ip := net.ParseIP(s)
		if ip == nil || (ip.To4() == nil) != ipv6 || !publishable(ip) {
			continue
		}
		ips = append(ips, ip.String())
	}
	return ips
}

func podIPStrings(pod *corev1.Pod) []string {
	if len(pod.Status.PodIPs) == 0 {
		return []string{pod.Status.PodIP}
	}
	out := make([]string, len(pod.Status.PodIPs))
	for i, p := range pod.Status.PodIPs {
		out[i] = p.IP
	}
	return out
}

func publishable(ip net.IP) bool {
	return !ip.IsLoopback() && !ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast()
}

// FindPort resolves a Service port's targetPort on a pod: a number is used
// as is; a name is looked up among the container ports (and those of
// sidecar init containers) with the same protocol. ok is false when the pod
// has no such named port.
func FindPort(pod *corev1.Pod, sp *corev1.ServicePort) (port int32, ok bool) {
	if sp.TargetPort.Type == intstr.Int {
		return sp.TargetPort.IntVal, true
	}
	name := sp.TargetPort.StrVal
	match := func(cs []corev1.ContainerPort) (int32, bool) {
		for _, p := range cs {
			if p.Name == name && p.Protocol == sp.Protocol {
				return p.ContainerPort, true
			}
		}
		return 0, false
	}
	for _, c := range pod.Spec.Containers {
		if p, ok := match(c.Ports); ok {
			return p, true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			if p, ok := match(c.Ports); ok {
				return p, true
			}
		}
	}
	return 0, false
}

// ShouldSetHostname reports whether an address carries the pod's hostname:
// the pod asked for it by naming this Service as its subdomain.
func ShouldSetHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace
}

// IsHeadless reports whether the Service has no cluster IP.
func IsHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// Manages reports whether a Service gets endpoints from the controllers:
// ExternalName Services never do, and Services without a selector have
// theirs written by someone else.
func Manages(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.Selector != nil
}

// SelectedPods lists the pods a Service selects.
func SelectedPods(pods corelisters.PodLister, svc *corev1.Service) ([]*corev1.Pod, error) {
	return pods.Pods(svc.Namespace).List(labels.Set(svc.Spec.Selector).AsSelectorPreValidated())
}

// PodHandler returns informer handlers that enqueue the keys of the Services
// a pod event may change: those selecting the pod before or after it.
func PodHandler(services corelisters.ServiceLister, enqueue func(key string)) cache.ResourceEventHandler {
	forPod := func(pod *corev1.Pod) {
		for _, k := range servicesSelecting(services, pod.Namespace, pod.Labels) {
			enqueue(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				forPod(pod)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.Pod)
			cur, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
				return // a resync: the service informer resyncs Services itself
			}
			relabeled := !reflect.DeepEqual(old.Labels, cur.Labels)
			if !relabeled && !podEndpointsChanged(old, cur) {
				return
			}
			forPod(cur)
			if relabeled {
				forPod(old)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				forPod(pod)
			}
		},
	}
}

// servicesSelecting returns the keys of the Services in ns whose selector
// matches podLabels. A nil selector selects nothing.
func servicesSelecting(services corelisters.ServiceLister, ns string, podLabels map[string]string) []string {
	all, err := services.Services(ns).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, svc := range all {
		if svc.Spec.Selector == nil {
			continue
		}
		if labels.ValidatedSetSelector(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
			keys = append(keys, svc.Namespace+"/"+svc.Name)
		}
	}
	return keys
}

// podEndpointsChanged reports whether a pod changed in a way its published
// address reflects (labels aside).
func podEndpointsChanged(old, cur *corev1.Pod) bool {
	return !old.DeletionTimestamp.Equal(cur.DeletionTimestamp) ||
		IsReady(old) != IsReady(cur) ||
		old.Status.Phase != cur.Status.Phase ||
		old.Status.PodIP != cur.Status.PodIP ||
		!slices.Equal(podIPStrings(old), podIPStrings(cur)) ||
		old.Spec.NodeName != cur.Spec.NodeName ||
		old.Spec.Hostname != cur.Spec.Hostname || old.Spec.Subdomain != cur.Spec.Subdomain
}
