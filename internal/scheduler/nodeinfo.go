package scheduler

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Requests the scheduler assumes, for scoring only, for a container that
// asks for nothing, as upstream does: otherwise a node full of
// request-less pods would look empty and attract every new pod.
const (
	defaultMilliCPURequest int64 = 100
	defaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// Resource is the part of a node's capacity the scheduler accounts for.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// Pods is the number of pods allowed (allocatable) or, in a request, unused.
	Pods int64
	// Scalar holds extended resources, hugepages and the like; nil when none.
	Scalar map[corev1.ResourceName]int64
}

// isScalarResource follows upstream's IsScalarResourceName: extended and
// prefixed native resources (anything with a "/"), hugepages, attachable volumes.
func isScalarResource(name corev1.ResourceName) bool {
	s := string(name)
	if strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) || strings.HasPrefix(s, corev1.ResourceAttachableVolumesPrefix) {
		return true
	}
	return strings.Contains(s, "/") && !strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix)
}

func (r *Resource) add(rl corev1.ResourceList) {
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case corev1.ResourcePods:
			r.Pods += q.Value()
		default:
			if isScalarResource(name) {
				if r.Scalar == nil {
					r.Scalar = map[corev1.ResourceName]int64{}
				}
				r.Scalar[name] += q.Value()
			}
		}
	}
}

// addScaled adds sign × o to r; sign is +1 or -1.
func (r *Resource) addScaled(o *Resource, sign int64) {
	r.MilliCPU += sign * o.MilliCPU
	r.Memory += sign * o.Memory
	r.EphemeralStorage += sign * o.EphemeralStorage
	r.Pods += sign * o.Pods
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[name] += sign * v
	}
}

// ResourceFromList converts a ResourceList (e.g. a node's allocatable).
func ResourceFromList(rl corev1.ResourceList) Resource {
	var r Resource
	r.add(rl)
	return r
}

// hostPort is one host port a container binds, normalised as upstream does:
// an empty IP is 0.0.0.0 (every address), an empty protocol is TCP.
type hostPort struct {
	IP       string
	Protocol corev1.Protocol
	Port     int32
}

func newHostPort(ip string, proto corev1.Protocol, port int32) hostPort {
	if ip == "" {
		ip = "0.0.0.0"
	}
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return hostPort{ip, proto, port}
}

// podHostPorts lists the host ports a pod's long-running containers (app
// containers and restartable init containers, i.e. sidecars) bind.
func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	collect := func(cs []corev1.Container, sidecarsOnly bool) {
		for i := range cs {
			c := &cs[i]
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range c.Ports {
				if p.HostPort > 0 {
					out = append(out, newHostPort(p.HostIP, p.Protocol, p.HostPort))
				}
			}
		}
	}
	collect(pod.Spec.InitContainers, true)
	collect(pod.Spec.Containers, false)
	return out
}

// PodInfo is a pod with what the filters and scores need computed once.
type PodInfo struct {
	Pod *corev1.Pod
	// Requests are the pod's effective requests: max(sum of app containers,
	// largest init container) plus overhead, as upstream computes them.
	Requests Resource
	// NonZeroMilliCPU and NonZeroMemory are Requests with the per-container
	// defaults filled in, used only for scoring.
	NonZeroMilliCPU, NonZeroMemory int64
	HostPorts                      []hostPort
	// Owner is the UID of the pod's controller, empty if none.
	Owner types.UID

	affinity  nodeaffinity.RequiredNodeAffinity
	preferred *nodeaffinity.PreferredSchedulingTerms
}

// NewPodInfo computes what scheduling pod needs.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	p := &PodInfo{Pod: pod, HostPorts: podHostPorts(pod), affinity: nodeaffinity.GetRequiredNodeAffinity(pod)}
	p.Requests.add(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{UseStatusResources: true}))
	p.Requests.Pods = 1
	nonZero := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		UseStatusResources: true,
		NonMissingContainerRequests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(defaultMilliCPURequest, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(defaultMemoryRequest, resource.BinarySI),
		},
	})
	p.NonZeroMilliCPU, p.NonZeroMemory = nonZero.Cpu().MilliValue(), nonZero.Memory().Value()
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			p.Owner = ref.UID
			break
		}
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		// An invalid term was already refused by validation; a nil result only drops the preference.
		p.preferred, _ = nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return p
}

// NodeInfo is a node and what the pods on it (bound or assumed) use.
type NodeInfo struct {
	// Node is nil while pods are known on a node the informer has not delivered yet.
	Node        *corev1.Node
	Allocatable Resource
	// Requested sums the pods' Requests; Requested.Pods is the pod count.
	Requested Resource
	// NonZeroRequested sums the pods' NonZero requests, for scoring.
	NonZeroRequested Resource
	Pods             map[types.UID]*PodInfo
	// UsedPorts counts the pods binding each host port.
	UsedPorts map[hostPort]int
	// owners counts the pods here per controller UID, for spreading.
	owners map[types.UID]int
	// taints are the node's taints plus the one the node lifecycle
	// controller puts on a node that is not Ready, if it is not there yet.
	taints []corev1.Taint
	// index is the position in the cache's node list, -1 when not listed.
	index int
}

// NewNodeInfo builds a NodeInfo for node with pods on it.
func NewNodeInfo(node *corev1.Node, pods ...*PodInfo) *NodeInfo {
	ni := &NodeInfo{Pods: map[types.UID]*PodInfo{}, UsedPorts: map[hostPort]int{}, owners: map[types.UID]int{}, index: -1}
	ni.SetNode(node)
	for _, p := range pods {
		ni.AddPod(p)
	}
	return ni
}

// Taint keys the node lifecycle controller uses for a node whose Ready
// condition is False (not-ready) or Unknown (unreachable).
const (
	taintNodeNotReady      = "node.kubernetes.io/not-ready"
	taintNodeUnreachable   = "node.kubernetes.io/unreachable"
	taintNodeUnschedulable = "node.kubernetes.io/unschedulable"
)

// SetNode replaces the node object.
func (ni *NodeInfo) SetNode(node *corev1.Node) {
	ni.Node = node
	ni.Allocatable, ni.taints = Resource{}, nil
	if node == nil {
		return
	}
	ni.Allocatable = ResourceFromList(node.Status.Allocatable)
	ni.taints = node.Spec.Taints
	if key := readinessTaint(node); key != "" && !hasTaint(node.Spec.Taints, key, corev1.TaintEffectNoSchedule) {
		// A node that is not Ready is filtered as if it already carried the
		// NoSchedule taint the lifecycle controller will give it, so a pod
		// that tolerates that taint (as DaemonSet pods do) may still land.
		ni.taints = append(append(make([]corev1.Taint, 0, len(node.Spec.Taints)+1), node.Spec.Taints...),
			corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
	}
}

// readinessTaint names the taint a node's Ready condition calls for, or "".
// A node without a Ready condition has not reported yet; the kubelet
// registers such nodes with the not-ready taint.
func readinessTaint(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			switch c.Status {
			case corev1.ConditionTrue:
				return ""
			case corev1.ConditionFalse:
				return taintNodeNotReady
			default:
				return taintNodeUnreachable
			}
		}
	}
	return taintNodeNotReady
}

func hasTaint(taints []corev1.Taint, key string, effect corev1.TaintEffect) bool {
	for _, t := range taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

// Name is the node's name, or "" for a node not yet known.
func (ni *NodeInfo) Name() string {
	if ni.Node == nil {
		return ""
	}
	return ni.Node.Name
}

// AddPod accounts p on the node.
func (ni *NodeInfo) AddPod(p *PodInfo) {
	ni.account(p, 1)
	ni.Pods[p.Pod.UID] = p
}

// RemovePod releases what p used; it reports whether p was there.
func (ni *NodeInfo) RemovePod(uid types.UID) bool {
	p, ok := ni.Pods[uid]
	if !ok {
		return false
	}
	ni.account(p, -1)
	delete(ni.Pods, uid)
	return true
}

func (ni *NodeInfo) account(p *PodInfo, sign int64) {
	ni.Requested.addScaled(&p.Requests, sign)
	ni.NonZeroRequested.MilliCPU += sign * p.NonZeroMilliCPU
	ni.NonZeroRequested.Memory += sign * p.NonZeroMemory
	for _, hp := range p.HostPorts {
		ni.UsedPorts[hp] += int(sign)
		if ni.UsedPorts[hp] <= 0 {
			delete(ni.UsedPorts, hp)
		}
	}
	if p.Owner != "" {
		ni.owners[p.Owner] += int(sign)
		if ni.owners[p.Owner] <= 0 {
			delete(ni.owners, p.Owner)
		}
	}
}

// portConflict reports whether hp collides with a port in use: the same
// protocol and port on the same address, where 0.0.0.0 overlaps every address.
func (ni *NodeInfo) portConflict(hp hostPort) bool {
	if len(ni.UsedPorts) == 0 {
		return false
	}
	if hp.IP == "0.0.0.0" {
		for used := range ni.UsedPorts {
			if used.Port == hp.Port && used.Protocol == hp.Protocol {
				return true
			}
		}
		return false
	}
	return ni.UsedPorts[hp] > 0 || ni.UsedPorts[hostPort{"0.0.0.0", hp.Protocol, hp.Port}] > 0
}
