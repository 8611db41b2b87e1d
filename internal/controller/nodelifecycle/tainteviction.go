package nodelifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/skiff-sh/skiff/internal/controller/loop"
	"github.com/skiff-sh/skiff/internal/podutil"
)

// Event reason and pod condition of a taint eviction, as upstream's.
const (
	EventTaintManagerEviction = "TaintManagerEviction"
	reasonDeletionByTaint     = "DeletionByTaintManager"
	messageDeletionByTaint    = "Taint manager: deleting due to NoExecute taint"
	componentTaintEviction    = "taint-eviction-controller"
)

// TaintEviction deletes pods from nodes with NoExecute taints they do not
// tolerate, at once, or when their tolerationSeconds run out (counted from
// the taint's timeAdded). A toleration without seconds keeps a pod forever.
type TaintEviction struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	podList  corelisters.PodLister
	pods     cache.Indexer
	synced   []cache.InformerSynced
	queue    *loop.Queue[string]
	events   *loop.Recorder
	recorder record.EventRecorder
	now      func() time.Time

	mu sync.Mutex
	// firstSeen stands in for the timeAdded of a taint that has none:
	// when this controller first saw it, keyed by node/key:effect.
	firstSeen map[string]time.Time
	// scheduled holds pods waiting out a toleration, so that a taint
	// going away first is reported as a cancelled eviction.
	scheduled map[string]bool
}

// NewTaintEviction wires the node and pod informers.
func NewTaintEviction(client kubernetes.Interface, nodes coreinformers.NodeInformer, pods coreinformers.PodInformer) *TaintEviction {
	c := &TaintEviction{
		client:    client,
		nodes:     nodes.Lister(),
		podList:   pods.Lister(),
		pods:      podsByNode(pods),
		synced:    []cache.InformerSynced{nodes.Informer().HasSynced, pods.Informer().HasSynced},
		events:    loop.NewRecorder(client),
		now:       time.Now,
		firstSeen: map[string]time.Time{},
		scheduled: map[string]bool{},
	}
	c.recorder = c.events.For(componentTaintEviction)
	c.queue = loop.New("taint_eviction", c.sync)
	enqueuePod := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				c.queue.Add(key)
			}
		}
	}
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueuePod,
		UpdateFunc: func(_, obj any) { enqueuePod(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				c.mu.Lock()
				delete(c.scheduled, p.Namespace+"/"+p.Name)
				c.mu.Unlock()
			}
		},
	})
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok && len(noExecuteTaints(n)) > 0 {
				c.enqueueNode(n)
			}
		},
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := obj.(*corev1.Node)
			if ok1 && ok2 && !sameTaints(noExecuteTaints(o), noExecuteTaints(n)) {
				c.enqueueNode(n)
			}
		},
	})
	return c
}

// Run evicts pods until ctx ends.
func (c *TaintEviction) Run(ctx context.Context, workers int) {
	c.events.Start()
	defer c.events.Stop()
	c.queue.Run(ctx, workers, c.synced...)
}

// enqueueNode looks at every pod on node again, and forgets the first-seen
// times of its taints that are gone.
func (c *TaintEviction) enqueueNode(node *corev1.Node) {
	present := map[string]bool{}
	for _, t := range noExecuteTaints(node) {
		present[taintID(node.Name, t)] = true
	}
	c.mu.Lock()
	for id := range c.firstSeen {
		if strings.HasPrefix(id, node.Name+"/") && !present[id] {
			delete(c.firstSeen, id)
		}
	}
	c.mu.Unlock()
	objs, _ := c.pods.ByIndex(nodeNameIndex, node.Name)
	for _, obj := range objs {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
}

func (c *TaintEviction) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.podList.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" || pod.DeletionTimestamp != nil {
		return nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := c.now()
	at, never := evictionTime(pod.Spec.Tolerations, noExecuteTaints(node), func(t corev1.Taint) time.Time {
		if t.TimeAdded != nil {
			return t.TimeAdded.Time
		}
		return c.seen(taintID(node.Name, t), now)
	})
	if never {
		c.cancel(pod)
		return nil
	}
	if wait := at.Sub(now); wait > 0 {
		c.mu.Lock()
		c.scheduled[key] = true
		c.mu.Unlock()
		return loop.Requeue(wait)
	}
	return c.evict(ctx, pod)
}

// seen returns when taint id was first seen, recording now if never.
func (c *TaintEviction) seen(id string, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.firstSeen[id]; ok {
		return t
	}
	c.firstSeen[id] = now
	return now
}

// cancel reports that a pod waiting out its toleration may stay after all.
func (c *TaintEviction) cancel(pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name
	c.mu.Lock()
	was := c.scheduled[key]
	delete(c.scheduled, key)
	c.mu.Unlock()
	if was {
		c.recorder.Eventf(pod, corev1.EventTypeNormal, EventTaintManagerEviction, "Cancelling deletion of Pod %s", key)
	}
}

// evict marks the pod as disrupted (so a Job's podFailurePolicy sees why)
// and deletes it with its own grace period.
func (c *TaintEviction) evict(ctx context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	c.mu.Lock()
	delete(c.scheduled, key)
	c.mu.Unlock()
	c.recorder.Eventf(pod, corev1.EventTypeNormal, EventTaintManagerEviction, "Marking for deletion Pod %s", key)
	pods := c.client.CoreV1().Pods(pod.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != pod.UID || p.DeletionTimestamp != nil {
			return nil
		}
		if !podutil.SetCondition(&p.Status, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: reasonDeletionByTaint, Message: messageDeletionByTaint, LastTransitionTime: metav1.NewTime(c.now())}) {
			return nil
		}
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark pod %s disrupted: %w", key, err)
	}
	err = pods.Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", key, err)
	}
	return nil
}

// evictionTime says when a pod with these tolerations must leave a node
// with these NoExecute taints: at once if one is not tolerated; else, per
// taint, its start plus the shortest tolerationSeconds among the
// tolerations matching it, the earliest over all taints. never is true when
// every taint is tolerated without a time limit (or there are none).
func evictionTime(tolerations []corev1.Toleration, taints []corev1.Taint, start func(corev1.Taint) time.Time) (at time.Time, never bool) {
	never = true
	logger := klog.Background()
	for i := range taints {
		matched, limited := false, false
		var secs int64
		for j := range tolerations {
			if !tolerations[j].ToleratesTaint(logger, &taints[i], false) {
				continue
			}
			matched = true
			if s := tolerations[j].TolerationSeconds; s != nil && (!limited || *s < secs) {
				secs, limited = max(*s, 0), true
			}
		}
		if !matched {
			return time.Time{}, false
		}
		if !limited {
			continue
		}
		t := start(taints[i]).Add(time.Duration(secs) * time.Second)
		if never || t.Before(at) {
			at, never = t, false
		}
	}
	return at, never
}

func noExecuteTaints(node *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

func sameTaints(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].MatchTaint(&b[i]) || a[i].Value != b[i].Value || !a[i].TimeAdded.Equal(b[i].TimeAdded) {
			return false
		}
	}
	return true
}

func taintID(node string, t corev1.Taint) string {
	return node + "/" + t.Key + ":" + string(t.Effect)
}
