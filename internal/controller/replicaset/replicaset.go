// Package replicaset keeps the pods of ReplicaSets (apps/v1) and
// ReplicationControllers (core/v1) at their replica count. One sync loop
// serves both; RCs are converted to the ReplicaSet view (adapter.go).
package replicaset

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// Event reasons, as upstream.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedCreate     = "FailedCreate"
	ReasonFailedDelete     = "FailedDelete"
)

// burstReplicas caps the pods created or deleted in one sync.
const burstReplicas = 500

// Controller reconciles ReplicaSets and ReplicationControllers.
type Controller struct {
	client    kubernetes.Interface
	podLister corelisters.PodLister
	rsLister  appslisters.ReplicaSetLister
	rcLister  corelisters.ReplicationControllerLister
	synced    []cache.InformerSynced
	queue     *loop.Queue[objectKey]

	expectations *expectations
	events       *loop.Recorder
	recorders    map[kind]record.EventRecorder
	now          func() time.Time
}

// NewController registers informers for pods, replicasets and
// replicationcontrollers in factory; the caller starts the factory.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	pods := factory.Core().V1().Pods()
	rss := factory.Apps().V1().ReplicaSets()
	rcs := factory.Core().V1().ReplicationControllers()
	events := loop.NewRecorder(client)
	c := &Controller{
		client:       client,
		podLister:    pods.Lister(),
		rsLister:     rss.Lister(),
		rcLister:     rcs.Lister(),
		synced:       []cache.InformerSynced{pods.Informer().HasSynced, rss.Informer().HasSynced, rcs.Informer().HasSynced},
		expectations: newExpectations(time.Now),
		events:       events,
		recorders: map[kind]record.EventRecorder{
			kindReplicaSet:            events.For("replicaset-controller"),
			kindReplicationController: events.For("replication-controller"),
		},
		now: time.Now,
	}
	c.queue = loop.New("replicaset", c.sync)
	workloadHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueWorkload,
		UpdateFunc: func(_, cur any) { c.enqueueWorkload(cur) },
		DeleteFunc: func(obj any) {
			if k, ok := workloadKey(obj); ok {
				c.expectations.forget(k)
				c.queue.Add(k)
			}
		},
	}
	_, _ = rss.Informer().AddEventHandler(workloadHandler)
	_, _ = rcs.Informer().AddEventHandler(workloadHandler)
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run waits for caches, then syncs with workers goroutines until ctx ends; it
// returns after its workers have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.Start()
	defer c.events.Stop()
	c.queue.Run(ctx, workers, c.synced...)
}

// --- informer handlers: they only find keys and note observations ---

func workloadKey(obj any) (objectKey, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		return objectKey{kindReplicaSet, o.Namespace, o.Name}, true
	case *corev1.ReplicationController:
		return objectKey{kindReplicationController, o.Namespace, o.Name}, true
	}
	return objectKey{}, false
}

func (c *Controller) enqueueWorkload(obj any) {
	if k, ok := workloadKey(obj); ok {
		c.queue.Add(k)
	}
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// ownerOf resolves a pod's controller reference to one of our workloads.
func (c *Controller) ownerOf(pod *corev1.Pod, ref *metav1.OwnerReference) (objectKey, bool) {
	if ref == nil {
		return objectKey{}, false
	}
	k, ok := kindOfRef(ref)
	if !ok {
		return objectKey{}, false
	}
	key := objectKey{k, pod.Namespace, ref.Name}
	w, err := c.getWorkload(key)
	if err != nil || w.rs.UID != ref.UID {
		return objectKey{}, false
	}
	return key, true
}

// matchingWorkloads returns the workloads whose selector matches an orphan pod.
func (c *Controller) matchingWorkloads(pod *corev1.Pod) []objectKey {
	if len(pod.Labels) == 0 {
		return nil
	}
	set := labels.Set(pod.Labels)
	var keys []objectKey
	rss, _ := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything())
	for _, rs := range rss {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(set) {
			keys = append(keys, objectKey{kindReplicaSet, rs.Namespace, rs.Name})
		}
	}
	rcs, _ := c.rcLister.ReplicationControllers(pod.Namespace).List(labels.Everything())
	for _, rc := range rcs {
		if len(rc.Spec.Selector) > 0 && labels.SelectorFromSet(rc.Spec.Selector).Matches(set) {
			keys = append(keys, objectKey{kindReplicationController, rc.Namespace, rc.Name})
		}
	}
	return keys
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if key, ok := c.ownerOf(pod, ref); ok {
			c.expectations.creationObserved(key, 1)
			c.queue.Add(key)
		}
		return
	}
	for _, key := range c.matchingWorkloads(pod) {
		c.queue.Add(key)
	}
}

func (c *Controller) updatePod(oldObj, curObj any) {
	old, cur := oldObj.(*corev1.Pod), curObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	labelsChanged := !labels.Equals(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// A graceful delete: the pod no longer counts, observe it now.
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(cur), metav1.GetControllerOf(old)
	refChanged := !refsEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if key, ok := c.ownerOf(old, oldRef); ok {
			c.queue.Add(key)
		}
	}
	if curRef != nil {
		if key, ok := c.ownerOf(cur, curRef); ok {
			c.queue.Add(key)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, key := range c.matchingWorkloads(cur) {
			c.queue.Add(key)
		}
	}
}

func refsEqual(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		t, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = t.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	if key, ok := c.ownerOf(pod, metav1.GetControllerOf(pod)); ok {
		c.expectations.deletionObserved(key, podKey(pod))
		c.queue.Add(key)
	}
}

// --- reading and writing workloads through their kind ---

func (c *Controller) getWorkload(k objectKey) (*workload, error) {
	if k.kind == kindReplicationController {
		rc, err := c.rcLister.ReplicationControllers(k.namespace).Get(k.name)
		if err != nil {
			return nil, err
		}
		return fromReplicationController(rc), nil
	}
	rs, err := c.rsLister.ReplicaSets(k.namespace).Get(k.name)
	if err != nil {
		return nil, err
	}
	return fromReplicaSet(rs), nil
}

// getLive reads a workload from the API rather than the cache.
func (c *Controller) getLive(ctx context.Context, k objectKey) (*workload, error) {
	if k.kind == kindReplicationController {
		rc, err := c.client.CoreV1().ReplicationControllers(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return fromReplicationController(rc), nil
	}
	rs, err := c.client.AppsV1().ReplicaSets(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromReplicaSet(rs), nil
}

func (c *Controller) writeStatus(ctx context.Context, w *workload, st appsv1.ReplicaSetStatus) error {
	var err error
	switch o := w.obj.(type) {
	case *corev1.ReplicationController:
		rc := o.DeepCopy()
		rc.Status = rcStatus(st)
		_, err = c.client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, rc, metav1.UpdateOptions{})
	case *appsv1.ReplicaSet:
		rs := o.DeepCopy()
		rs.Status = st
		_, err = c.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
	}
	return err
}

// updateStatus writes st unless it is already the status, retrying once on a
// conflict against a fresh read.
func (c *Controller) updateStatus(ctx context.Context, w *workload, st appsv1.ReplicaSetStatus) error {
	for attempt := 0; ; attempt++ {
		if apiequality.Semantic.DeepEqual(w.rs.Status, st) {
			return nil
		}
		err := c.writeStatus(ctx, w, st)
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("update status of %s: %w", w.key, err)
		}
		fresh, err := c.getLive(ctx, w.key)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", w.key, err)
		}
		w = fresh
	}
}

// --- the sync loop ---

func (c *Controller) sync(ctx context.Context, key objectKey) error {
	w, err := c.getWorkload(key)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	// Read expectations before the pods so that a pod observed in between
	// can only make us wait, never act twice.
	needsSync := c.expectations.satisfied(key)
	selector, err := metav1.LabelSelectorAsSelector(w.rs.Spec.Selector)
	if err != nil {
		// Validation rejects this; retrying would not help.
		slog.Warn("replicaset has an invalid selector", "key", key.String(), "err", err)
		return nil
	}
	all, err := c.podLister.Pods(key.namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, w, selector, filterActivePods(all))
	if err != nil {
		return err
	}
	var manageErr error
	if needsSync && w.rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, w, pods)
	}
	now := c.now()
	if err := c.updateStatus(ctx, w, calculateStatus(w.rs, pods, manageErr, now)); err != nil {
		return err
	}
	if manageErr == nil {
		if d, ok := nextAvailable(pods, w.rs.Spec.MinReadySeconds, now); ok {
			c.queue.AddAfter(key, d)
		}
	}
	return manageErr
}

// claimPods returns the pods w controls after adopting matching orphans and
// releasing owned pods that no longer match (upstream's ControllerRefManager).
func (c *Controller) claimPods(ctx context.Context, w *workload, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var claimed []*corev1.Pod
	var errs []error
	var adoptErr error
	checked := false
	canAdopt := func() error {
		// The cache may hold a deleted or recreated owner: confirm with the API once.
		if !checked {
			checked = true
			fresh, err := c.getLive(ctx, w.key)
			switch {
			case err != nil:
				adoptErr = fmt.Errorf("get %s before adopting: %w", w.key, err)
			case fresh.rs.UID != w.rs.UID:
				adoptErr = fmt.Errorf("%s was recreated (uid %s, cached %s)", w.key, fresh.rs.UID, w.rs.UID)
			case fresh.rs.DeletionTimestamp != nil:
				adoptErr = fmt.Errorf("%s is being deleted", w.key)
			}
		}
		return adoptErr
	}
	for _, pod := range pods {
		matches := selector.Matches(labels.Set(pod.Labels))
		if ref := metav1.GetControllerOf(pod); ref != nil {
			if ref.UID != w.rs.UID {
				continue
			}
			if matches {
				claimed = append(claimed, pod)
				continue
			}
			if w.rs.DeletionTimestamp != nil {
				continue
			}
			if err := c.releasePod(ctx, w, pod); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				errs = append(errs, err)
			}
			continue
		}
		if !matches || w.rs.DeletionTimestamp != nil || pod.DeletionTimestamp != nil {
			continue
		}
		if err := canAdopt(); err != nil {
			return nil, err
		}
		if err := c.adoptPod(ctx, w, pod); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		claimed = append(claimed, pod)
	}
	return claimed, utilerrors.NewAggregate(errs)
}

// The pod's uid in a patch makes it fail if the name now belongs to another pod.
func (c *Controller) patchOwnerRefs(ctx context.Context, pod *corev1.Pod, refs []map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs, "uid": pod.UID}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

func (c *Controller) adoptPod(ctx context.Context, w *workload, pod *corev1.Pod) error {
	gvk := w.key.kind.gvk()
	ref := map[string]any{
		"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind, "name": w.rs.Name, "uid": w.rs.UID,
		"controller": true, "blockOwnerDeletion": true,
	}
	if err := c.patchOwnerRefs(ctx, pod, []map[string]any{ref}); err != nil {
		return fmt.Errorf("adopt pod %s for %s: %w", pod.Name, w.key, err)
	}
	return nil
}

func (c *Controller) releasePod(ctx context.Context, w *workload, pod *corev1.Pod) error {
	if err := c.patchOwnerRefs(ctx, pod, []map[string]any{{"$patch": "delete", "uid": w.rs.UID}}); err != nil {
		return fmt.Errorf("release pod %s from %s: %w", pod.Name, w.key, err)
	}
	return nil
}

// manageReplicas creates or deletes pods to bring the count to spec.replicas.
func (c *Controller) manageReplicas(ctx context.Context, w *workload, pods []*corev1.Pod) error {
	diff := len(pods) - int(desiredReplicas(w.rs))
	rec := c.recorders[w.key.kind]
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		// Expect before creating: the informer may see a pod before Create returns.
		c.expectations.expectCreations(w.key, n)
		successes, err := slowStartBatch(n, 1, func() error {
			created, err := c.client.CoreV1().Pods(w.key.namespace).Create(ctx, newPod(w), metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				rec.Eventf(w.obj, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
				return fmt.Errorf("create pod for %s: %w", w.key, err)
			}
			rec.Eventf(w.obj, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %s", created.Name)
			return nil
		})
		if skipped := n - successes; skipped > 0 {
			c.expectations.creationObserved(w.key, skipped)
		}
		return err
	case diff > 0:
		victims := podsToDelete(pods, min(diff, burstReplicas))
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = podKey(p)
		}
		c.expectations.expectDeletions(w.key, keys)
		errs := make(chan error, len(victims))
		var wg sync.WaitGroup
		for _, p := range victims {
			wg.Go(func() {
				uid := p.UID
				err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
				if err == nil {
					rec.Eventf(w.obj, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %s", p.Name)
					return
				}
				// The informer will not show this deletion: stop waiting for it.
				c.expectations.deletionObserved(w.key, podKey(p))
				if apierrors.IsNotFound(err) {
					return
				}
				rec.Eventf(w.obj, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
				errs <- fmt.Errorf("delete pod %s for %s: %w", p.Name, w.key, err)
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	return nil
}

// newPod is a pod from w's template, controlled by w.
func newPod(w *workload) *corev1.Pod {
	t := w.rs.Spec.Template.DeepCopy()
	owner := metav1.NewControllerRef(w.rs, w.key.kind.gvk())
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    w.rs.Name + "-",
			Namespace:       w.rs.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*owner},
		},
		Spec: t.Spec,
	}
}
