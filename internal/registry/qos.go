package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// The DefaultTolerationSeconds admission: how long pods stay on a node that
// went not-ready or unreachable before they are evicted, unless they say.
// `skiff server --default-not-ready-toleration-seconds` and
// `--default-unreachable-toleration-seconds` set them.
var (
	DefaultNotReadyTolerationSeconds    int64 = 300
	DefaultUnreachableTolerationSeconds int64 = 300
)

func init() {
	Pods.PrepareForCreate = func(obj runtime.Object) {
		pod := obj.(*corev1.Pod)
		// As upstream's pod strategy: a new pod is Pending with its QoS class.
		pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: PodQOSClass(pod)}
		addDefaultToleration(pod, corev1.TaintNodeNotReady, DefaultNotReadyTolerationSeconds)
		addDefaultToleration(pod, corev1.TaintNodeUnreachable, DefaultUnreachableTolerationSeconds)
	}
}

// addDefaultToleration adds a NoExecute toleration for key unless the pod
// already tolerates that taint.
func addDefaultToleration(pod *corev1.Pod, key string, seconds int64) {
	for _, t := range pod.Spec.Tolerations {
		if (t.Key == key || t.Key == "" && t.Operator == corev1.TolerationOpExists) &&
			(t.Effect == "" || t.Effect == corev1.TaintEffectNoExecute) {
			return
		}
	}
	s := seconds
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
		Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &s})
}

// PodQOSClass classifies a pod as upstream does: BestEffort without requests
// or limits, Guaranteed when every container's limits equal its requests.
func PodQOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			if hasReq && !req.IsZero() {
				add(requests, name, req)
			}
			if hasLim && !lim.IsZero() {
				add(limits, name, lim)
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func add(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	cur := l[name]
	cur.Add(q)
	l[name] = cur
}
