// Package podgc deletes pods nothing else will finish, as upstream's pod
// garbage collector does: pods bound to nodes that no longer exist, pods
// terminating on a node that is out of service (the
// node.kubernetes.io/out-of-service taint an operator adds to a node that is
// known to be down), terminating pods that were never scheduled, and the
// oldest finished pods beyond a threshold.
package podgc

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	nodeutil "k8s.io/component-helpers/node/util"

	"github.com/skiff-sh/skiff/internal/controller/loop"
	"github.com/skiff-sh/skiff/internal/podutil"
)

// period is how often the pods are looked over (upstream's 20 s), and
// quarantine how long a node must stay missing before its pods go
// (upstream's 40 s), so that a node being re-registered keeps them.
// Variables for tests.
var (
	period     = 20 * time.Second
	quarantine = 40 * time.Second
)

const (
	// DefaultTerminatedThreshold is upstream's --terminated-pod-gc-threshold.
	DefaultTerminatedThreshold = 12500
)

// Controller is the pod garbage collector. Its queue holds one key.
type Controller struct {
	client    kubernetes.Interface
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	synced    []cache.InformerSynced
	queue     *loop.Queue[struct{}]
	threshold int
	// missing remembers when each absent node was first seen missing.
	missing map[string]time.Time
	now     func() time.Time
}

// NewController watches pods and nodes of factory; threshold 0 means
// DefaultTerminatedThreshold.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory, threshold int) *Controller {
	pods, nodes := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	if threshold <= 0 {
		threshold = DefaultTerminatedThreshold
	}
	c := &Controller{
		client: client, pods: pods.Lister(), nodes: nodes.Lister(),
		synced:    []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced},
		threshold: threshold, missing: map[string]time.Time{}, now: time.Now,
	}
	c.queue = loop.New("pod_garbage_collector", c.sync)
	return c
}

// Run collects pods every period until ctx ends. One worker: the passes
// must not overlap.
func (c *Controller) Run(ctx context.Context) {
	c.queue.Add(struct{}{})
	c.queue.Run(ctx, 1, c.synced...)
}

func (c *Controller) sync(ctx context.Context, _ struct{}) error {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	var finished []*corev1.Pod
	gone := map[string]bool{} // nodes looked up in this pass: one API read each
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			finished = append(finished, p)
		case p.DeletionTimestamp != nil && p.Spec.NodeName == "":
			c.forceDelete(ctx, p, "")
			continue
		}
		if p.Spec.NodeName == "" {
			continue
		}
		node, err := c.nodes.Get(p.Spec.NodeName)
		switch {
		case apierrors.IsNotFound(err):
			g, known := gone[p.Spec.NodeName]
			if !known {
				g = c.nodeGone(ctx, p.Spec.NodeName)
				gone[p.Spec.NodeName] = g
			}
			if g {
				c.forceDelete(ctx, p, "PodGC: node no longer exists")
			}
		case err == nil && p.DeletionTimestamp != nil && outOfService(node):
			c.forceDelete(ctx, p, "PodGC: node is out of service")
		}
	}
	c.forgetPresentNodes()
	if extra := len(finished) - c.threshold; extra > 0 {
		slices.SortFunc(finished, func(a, b *corev1.Pod) int {
			return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
		})
		for _, p := range finished[:extra] {
			c.forceDelete(ctx, p, "")
		}
	}
	return loop.Requeue(period)
}

// nodeGone reports whether a node the cache lacks has been missing for the
// quarantine and the API confirms it.
func (c *Controller) nodeGone(ctx context.Context, name string) bool {
	first, seen := c.missing[name]
	if !seen {
		c.missing[name] = c.now()
		return false
	}
	if c.now().Sub(first) < quarantine {
		return false
	}
	_, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

func (c *Controller) forgetPresentNodes() {
	for name := range c.missing {
		if _, err := c.nodes.Get(name); err == nil {
			delete(c.missing, name)
		}
	}
}

func outOfService(n *corev1.Node) bool {
	if _, ready := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady); ready != nil && ready.Status == corev1.ConditionTrue {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService && t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// forceDelete deletes a pod at once. A pod still running somewhere first
// gets upstream's DisruptionTarget condition and phase Failed, so its
// controller counts it as failed rather than lost.
func (c *Controller) forceDelete(ctx context.Context, p *corev1.Pod, why string) {
	if why != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		q := p.DeepCopy()
		q.Status.Phase = corev1.PodFailed
		podutil.SetCondition(&q.Status, corev1.PodCondition{Type: corev1.DisruptionTarget,
			Status: corev1.ConditionTrue, Reason: "DeletionByPodGC", Message: why, LastTransitionTime: metav1.Now()})
		_, _ = c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, q, metav1.UpdateOptions{})
	}
	// A failure is looked at again on the next pass.
	_ = c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &p.UID}})
}
