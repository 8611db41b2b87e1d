// Package nodelifecycle watches node health as upstream's node lifecycle
// controller does: a node whose Lease and status heartbeat both go
// unrenewed for the grace period has its conditions set to Unknown; nodes
// get the NoSchedule taints their conditions call for (TaintNodesByCondition)
// and the not-ready/unreachable NoExecute taints while not Ready; pods on a
// node that is not Ready are marked not Ready. The TaintEviction controller
// in this package then deletes the pods those NoExecute taints evict.
//
// Unlike upstream there is no per-zone rate limiting of NoExecute tainting
// (0.1 nodes/s by default): a node is tainted as soon as it is seen unhealthy.
// What is kept is upstream's "full disruption" guard: while no node at all is
// Ready (most likely this server is the one cut off), no NoExecute taint is
// added and those present are removed, so nothing is evicted.
package nodelifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coordinformers "k8s.io/client-go/informers/coordination/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// DefaultNodeMonitorGracePeriod is upstream's --node-monitor-grace-period.
const DefaultNodeMonitorGracePeriod = 50 * time.Second

// Event reasons and the condition texts upstream uses.
const (
	EventNodeNotReady    = "NodeNotReady"
	reasonUnknown        = "NodeStatusUnknown"
	messageUnknown       = "Kubelet stopped posting node status."
	reasonNeverUpdated   = "NodeStatusNeverUpdated"
	messageNeverUpdated  = "Kubelet never posted node status."
	nodeNameIndex        = "nodelifecycle.spec.nodeName"
	componentNodeControl = "node-controller"
)

// monitoredConditions turn Unknown when the node stops reporting
// (NetworkUnavailable is left alone, as upstream does).
var monitoredConditions = []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure}

// conditionTaints is TaintNodesByCondition: the NoSchedule taint each
// condition status calls for.
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady:              {corev1.ConditionFalse: corev1.TaintNodeNotReady, corev1.ConditionUnknown: corev1.TaintNodeUnreachable},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
}

// health is what the controller last saw of a node, with the local time it
// last saw a sign of life (so clock skew between machines does not matter).
type health struct {
	probe     time.Time
	heartbeat metav1.Time       // Ready condition's lastHeartbeatTime
	renew     *metav1.MicroTime // the Lease's renewTime
	ready     corev1.ConditionStatus
	// markPods is set when the node stops being Ready and cleared once its
	// pods are all marked not ready (so a failed attempt is retried).
	markPods bool
}

// Controller monitors node health, taints nodes and marks their pods not ready.
type Controller struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	leases   coordlisters.LeaseLister
	pods     cache.Indexer
	synced   []cache.InformerSynced
	queue    *loop.Queue[string]
	events   *loop.Recorder
	recorder record.EventRecorder
	grace    time.Duration
	now      func() time.Time

	mu     sync.Mutex
	health map[string]*health
}

// NewController wires the node, lease and pod informers; grace <= 0 means
// DefaultNodeMonitorGracePeriod.
func NewController(client kubernetes.Interface, nodes coreinformers.NodeInformer, leases coordinformers.LeaseInformer, pods coreinformers.PodInformer, grace time.Duration) *Controller {
	if grace <= 0 {
		grace = DefaultNodeMonitorGracePeriod
	}
	c := &Controller{
		client: client,
		nodes:  nodes.Lister(),
		leases: leases.Lister(),
		pods:   podsByNode(pods),
		synced: []cache.InformerSynced{nodes.Informer().HasSynced, leases.Informer().HasSynced, pods.Informer().HasSynced},
		events: loop.NewRecorder(client),
		grace:  grace,
		now:    time.Now,
		health: map[string]*health{},
	}
	c.recorder = c.events.For(componentNodeControl)
	c.queue = loop.New("node_lifecycle", c.sync)
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				c.queue.Add(n.Name)
			}
		},
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := obj.(*corev1.Node)
			if !ok1 || !ok2 {
				return
			}
			c.queue.Add(n.Name)
			// Whether any node is Ready decides the full-disruption guard
			// for every node, so a readiness change looks at them all.
			if (readyStatus(o) == corev1.ConditionTrue) != (readyStatus(n) == corev1.ConditionTrue) {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				c.queue.Add(n.Name)
			} else if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				c.queue.Add(d.Key)
			}
		},
	})
	leaseChanged := func(obj any) {
		if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == corev1.NamespaceNodeLease {
			c.queue.Add(l.Name)
		}
	}
	_, _ = leases.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    leaseChanged,
		UpdateFunc: func(_, obj any) { leaseChanged(obj) },
	})
	return c
}

// Run monitors nodes until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.Start()
	defer c.events.Stop()
	c.queue.Run(ctx, workers, c.synced...)
}

func (c *Controller) enqueueAll() {
	all, _ := c.nodes.List(labels.Everything())
	for _, n := range all {
		c.queue.Add(n.Name)
	}
}

func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.health, name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	now := c.now()
	h := c.observe(node, now)
	var again time.Duration
	if left := h.probe.Add(c.grace).Sub(now); left > 0 {
		again = left // one timer per node: look again when its grace runs out
	} else if stale, changed := markUnknown(node, metav1.NewTime(now)); changed {
		if node, err = c.client.CoreV1().Nodes().UpdateStatus(ctx, stale, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("mark node %s unknown: %w", name, err)
		}
		c.mu.Lock()
		h.heartbeat = readyHeartbeat(node) // our own write is no sign of life
		c.mu.Unlock()
	}

	// As upstream, pods are marked not ready when the node stops being
	// Ready, not on every look: an agent still alive may disagree later.
	ready := readyStatus(node)
	c.mu.Lock()
	was := h.ready
	h.ready = ready
	if was == corev1.ConditionTrue && ready != corev1.ConditionTrue {
		h.markPods = true
		c.recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: node.UID}, corev1.EventTypeNormal,
			EventNodeNotReady, "Node %s status is now: %s", node.Name, EventNodeNotReady)
	} else if ready == corev1.ConditionTrue {
		h.markPods = false
	}
	markPods := h.markPods
	c.mu.Unlock()
	if err := c.updateTaints(ctx, node, c.anyOtherReady(name)); err != nil {
		return err
	}
	if markPods {
		if err := c.markPodsNotReady(ctx, node.Name); err != nil {
			return err
		}
		c.mu.Lock()
		h.markPods = false
		c.mu.Unlock()
	}
	if again > 0 {
		return loop.Requeue(again)
	}
	return nil
}

// observe records signs of life: a new status heartbeat or lease renewal
// moves the probe time to now. A node seen for the first time gets a full
// grace period from now.
func (c *Controller) observe(node *corev1.Node, now time.Time) *health {
	var renew *metav1.MicroTime
	if l, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name); err == nil && l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.DeepCopy()
	}
	hb := readyHeartbeat(node)
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[node.Name]
	if h == nil {
		h = &health{probe: now, heartbeat: hb, renew: renew, ready: readyStatus(node)}
		c.health[node.Name] = h
		return h
	}
	if !hb.Equal(&h.heartbeat) {
		h.heartbeat, h.probe = hb, now
	}
	if renew != nil && (h.renew == nil || h.renew.Before(renew)) {
		h.renew, h.probe = renew, now
	}
	return h
}

// anyOtherReady reports whether some node other than name is Ready.
func (c *Controller) anyOtherReady(name string) bool {
	all, _ := c.nodes.List(labels.Everything())
	for _, n := range all {
		if n.Name != name && readyStatus(n) == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// updateTaints writes the taints wantTaints asks for, if they differ.
func (c *Controller) updateTaints(ctx context.Context, node *corev1.Node, evict bool) error {
	taints, changed := wantTaints(node, evict, metav1.NewTime(c.now()))
	if !changed {
		return nil
	}
	node = node.DeepCopy()
	node.Spec.Taints = taints
	if _, err := c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update taints of node %s: %w", node.Name, err)
	}
	return nil
}

// markPodsNotReady sets Ready=False on the node's pods, as upstream's
// MarkPodsNotReady: Services stop sending them traffic.
func (c *Controller) markPodsNotReady(ctx context.Context, nodeName string) error {
	objs, err := c.pods.ByIndex(nodeNameIndex, nodeName)
	if err != nil {
		return err
	}
	now := metav1.NewTime(c.now())
	for _, obj := range objs {
		pod := obj.(*corev1.Pod)
		if pod.Spec.NodeName != nodeName {
			continue
		}
		i := podCondition(pod, corev1.PodReady)
		if i < 0 || pod.Status.Conditions[i].Status == corev1.ConditionFalse {
			continue
		}
		pod = pod.DeepCopy()
		cond := &pod.Status.Conditions[i]
		cond.Status, cond.LastTransitionTime = corev1.ConditionFalse, now
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("mark pod %s/%s not ready: %w", pod.Namespace, pod.Name, err)
		}
		c.recorder.Event(pod, corev1.EventTypeWarning, EventNodeNotReady, "Node is not ready")
	}
	return nil
}

// markUnknown returns a copy of node whose monitored conditions are Unknown,
// and whether that changed anything. Heartbeat times are kept: they say
// when the node last spoke.
func markUnknown(node *corev1.Node, now metav1.Time) (*corev1.Node, bool) {
	node = node.DeepCopy()
	changed := false
	for _, t := range monitoredConditions {
		i := nodeCondition(node, t)
		if i < 0 {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: reasonNeverUpdated, Message: messageNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: now,
			})
			changed = true
			continue
		}
		c := &node.Status.Conditions[i]
		if c.Status != corev1.ConditionUnknown {
			c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionUnknown, reasonUnknown, messageUnknown, now
			changed = true
		}
	}
	return node, changed
}

// wantTaints returns the node's taints with those this controller manages
// set from its conditions: the NoSchedule ones of TaintNodesByCondition (and
// unschedulable for a cordoned node), and, when evict, the NoExecute
// not-ready or unreachable taint for a node that is not Ready. Taints that
// stay keep their timeAdded; new NoExecute ones get now.
func wantTaints(node *corev1.Node, evict bool, now metav1.Time) ([]corev1.Taint, bool) {
	var want []corev1.Taint
	for _, c := range node.Status.Conditions {
		if key, ok := conditionTaints[c.Type][c.Status]; ok {
			want = append(want, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		want = append(want, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	if evict {
		switch readyStatus(node) {
		case corev1.ConditionFalse:
			want = append(want, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now})
		case corev1.ConditionUnknown:
			want = append(want, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now})
		}
	}
	var out []corev1.Taint
	changed := false
	for _, t := range node.Spec.Taints {
		if !managed(t) || indexTaint(want, t) >= 0 {
			out = append(out, t)
		} else {
			changed = true
		}
	}
	for _, t := range want {
		if indexTaint(out, t) < 0 {
			out = append(out, t)
			changed = true
		}
	}
	return out, changed
}

// managed reports whether this controller owns taint t.
func managed(t corev1.Taint) bool {
	switch t.Effect {
	case corev1.TaintEffectNoSchedule:
		if t.Key == corev1.TaintNodeUnschedulable {
			return true
		}
		for _, m := range conditionTaints {
			for _, key := range m {
				if key == t.Key {
					return true
				}
			}
		}
	case corev1.TaintEffectNoExecute:
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	}
	return false
}

func indexTaint(ts []corev1.Taint, t corev1.Taint) int {
	for i := range ts {
		if ts[i].Key == t.Key && ts[i].Effect == t.Effect {
			return i
		}
	}
	return -1
}

func nodeCondition(node *corev1.Node, t corev1.NodeConditionType) int {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return i
		}
	}
	return -1
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) int {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return i
		}
	}
	return -1
}

// readyStatus is the node's Ready condition status, "" if it has none.
func readyStatus(node *corev1.Node) corev1.ConditionStatus {
	if i := nodeCondition(node, corev1.NodeReady); i >= 0 {
		return node.Status.Conditions[i].Status
	}
	return ""
}

func readyHeartbeat(node *corev1.Node) metav1.Time {
	if i := nodeCondition(node, corev1.NodeReady); i >= 0 {
		return node.Status.Conditions[i].LastHeartbeatTime
	}
	return metav1.Time{}
}

// podsByNode indexes the shared pod informer by spec.nodeName (under a
// name of this package's own, so it cannot clash with another controller's).
func podsByNode(pods coreinformers.PodInformer) cache.Indexer {
	inf := pods.Informer()
	if _, ok := inf.GetIndexer().GetIndexers()[nodeNameIndex]; !ok {
		_ = inf.AddIndexers(cache.Indexers{nodeNameIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}})
	}
	return inf.GetIndexer()
}
