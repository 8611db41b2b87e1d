package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Reasons a node is filtered out, worded exactly as upstream's plugins word
// them: users and tools grep FailedScheduling messages for these.
const (
	ReasonUnschedulable     = "node(s) were unschedulable"
	ReasonUntoleratedTaint  = "node(s) had untolerated taint(s)"
	ReasonNodeAffinity      = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts         = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods       = "Too many pods"
	ReasonInsufficientCPU   = "Insufficient cpu"
	ReasonInsufficientMem   = "Insufficient memory"
	ReasonInsufficientStore = "Insufficient ephemeral-storage"
)

// insufficientReason is upstream's "Insufficient <resource>".
func insufficientReason(name corev1.ResourceName) string { return "Insufficient " + string(name) }

// logger is for the toleration helper's debug lines.
var logger = klog.Background()

// unschedulableTaint is what a pod needs to land on a cordoned node.
var unschedulableTaint = corev1.Taint{Key: taintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// Filter appends to reasons why p cannot run on ni and returns the result;
// nothing appended means the pod fits. As upstream, filters run in a fixed
// order and the first one that fails decides (only the resource filter can
// give several reasons). reasons is the caller's buffer, so the common case
// (a fit) allocates nothing. ni.Node must be set.
func Filter(p *PodInfo, ni *NodeInfo, reasons []string) []string {
	if ni.Node.Spec.Unschedulable && !tolerates(p.Pod.Spec.Tolerations, &unschedulableTaint) {
		return append(reasons, ReasonUnschedulable)
	}
	if untoleratedTaint(p.Pod.Spec.Tolerations, ni.taints) {
		return append(reasons, ReasonUntoleratedTaint)
	}
	// A malformed term matches nothing, as upstream treats it.
	if ok, _ := p.affinity.Match(ni.Node); !ok {
		return append(reasons, ReasonNodeAffinity)
	}
	for _, hp := range p.HostPorts {
		if ni.portConflict(hp) {
			return append(reasons, ReasonHostPorts)
		}
	}
	return fitsResources(p, ni, reasons)
}

func tolerates(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tolerations {
		// Gt/Lt tolerations are refused by validation, so comparison operators stay off.
		if tolerations[i].ToleratesTaint(logger, taint, false) {
			return true
		}
	}
	return false
}

// untoleratedTaint reports whether a NoSchedule or NoExecute taint is not tolerated.
func untoleratedTaint(tolerations []corev1.Toleration, taints []corev1.Taint) bool {
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(tolerations, t) {
			return true
		}
	}
	return false
}

// fitsResources checks p's requests against what is left of ni's
// allocatable, in upstream's order and words.
func fitsResources(p *PodInfo, ni *NodeInfo, reasons []string) []string {
	free := func(alloc, used int64) int64 { return alloc - used }
	if ni.Requested.Pods+1 > ni.Allocatable.Pods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	r := &p.Requests
	if r.MilliCPU == 0 && r.Memory == 0 && r.EphemeralStorage == 0 && len(r.Scalar) == 0 {
		return reasons
	}
	if r.MilliCPU > 0 && r.MilliCPU > free(ni.Allocatable.MilliCPU, ni.Requested.MilliCPU) {
		reasons = append(reasons, ReasonInsufficientCPU)
	}
	if r.Memory > 0 && r.Memory > free(ni.Allocatable.Memory, ni.Requested.Memory) {
		reasons = append(reasons, ReasonInsufficientMem)
	}
	if r.EphemeralStorage > 0 && r.EphemeralStorage > free(ni.Allocatable.EphemeralStorage, ni.Requested.EphemeralStorage) {
		reasons = append(reasons, ReasonInsufficientStore)
	}
	for name, v := range r.Scalar {
		if v > 0 && v > free(ni.Allocatable.Scalar[name], ni.Requested.Scalar[name]) {
			reasons = append(reasons, insufficientReason(name))
		}
	}
	return reasons
}
