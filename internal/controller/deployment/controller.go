// Package deployment runs Deployments through ReplicaSets named
// <deployment>-<pod-template-hash>: it creates the ReplicaSet for the current
// pod template, rolls pods over from old ReplicaSets (RollingUpdate or
// Recreate), keeps revision history, and reports status and conditions the way
// upstream's controller does, so kubectl rollout works unchanged.
package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Controller reconciles Deployments into ReplicaSets.
type Controller struct {
	client    kubernetes.Interface
	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced
	queue     *loop.Queue[string]
	events    *loop.Recorder
	recorder  record.EventRecorder
	now       func() time.Time
}

// NewController wires deployment, replicaset and pod informers from factory
// to the work queue. The caller starts factory.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	dInf := factory.Apps().V1().Deployments()
	rsInf := factory.Apps().V1().ReplicaSets()
	podInf := factory.Core().V1().Pods()
	events := loop.NewRecorder(client)
	c := &Controller{
		client:    client,
		dLister:   dInf.Lister(),
		rsLister:  rsInf.Lister(),
		podLister: podInf.Lister(),
		synced:    []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		events:    events,
		recorder:  events.For("deployment-controller"),
		now:       time.Now,
	}
	c.queue = loop.New("deployment", c.sync)
	_, _ = dInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	_, _ = rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run waits for caches, then processes deployments with workers until ctx
// ends; it returns once its workers have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.Start()
	defer c.events.Stop()
	c.queue.Run(ctx, workers, c.synced...)
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// deploymentForController resolves a controllerRef to a cached Deployment.
func (c *Controller) deploymentForController(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	d, err := c.dLister.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// enqueueMatching enqueues every deployment whose selector matches an orphan.
func (c *Controller) enqueueMatching(rs *appsv1.ReplicaSet) {
	ds, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, d := range ds {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		c.enqueue(d)
	}
}

func (c *Controller) addReplicaSet(obj any) {
	rs := obj.(*appsv1.ReplicaSet)
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.deploymentForController(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	c.enqueueMatching(rs)
}

func (c *Controller) updateReplicaSet(oldObj, newObj any) {
	oldRS, curRS := oldObj.(*appsv1.ReplicaSet), newObj.(*appsv1.ReplicaSet)
	if oldRS.ResourceVersion == curRS.ResourceVersion {
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curRS), metav1.GetControllerOf(oldRS)
	if !reflect.DeepEqual(curRef, oldRef) && oldRef != nil {
		if d := c.deploymentForController(oldRS.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.deploymentForController(curRS.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if !reflect.DeepEqual(curRS.Labels, oldRS.Labels) || !reflect.DeepEqual(curRef, oldRef) {
		c.enqueueMatching(curRS)
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if rs, ok = tomb.Obj.(*appsv1.ReplicaSet); !ok {
			return
		}
	}
	if d := c.deploymentForController(rs.Namespace, metav1.GetControllerOf(rs)); d != nil {
		c.enqueue(d)
	}
}

// deletePod wakes a Recreate deployment waiting for its old pods to go.
func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := c.deploymentForController(rs.Namespace, metav1.GetControllerOf(rs)); d != nil &&
		d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := cached.DeepCopy()
	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		c.recorder.Eventf(d, corev1.EventTypeWarning, SelectingAllReason, "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			_, err := c.client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
			return err
		}
		return nil
	}
	rsList, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		newRS, oldRSs, err := c.getAllReplicaSetsAndSyncRevision(ctx, &d, rsList, false)
		if err != nil {
			return err
		}
		return c.syncDeploymentStatus(ctx, d, withNew(oldRSs, newRS), newRS)
	}
	st := d.Status.DeepCopy()
	if PausedCondition(d, st, c.now()) {
		d.Status = *st
		if d, err = c.client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update paused condition of %s: %w", key, err)
		}
	}
	if d.Spec.Paused || ScalingEvent(d, rsList) {
		return c.syncScale(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return c.rolloutRecreate(ctx, d, rsList)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return c.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("deployment %s: unexpected strategy type %q", key, d.Spec.Strategy.Type)
}

func withNew(oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	all := append([]*appsv1.ReplicaSet(nil), oldRSs...)
	if newRS != nil {
		all = append(all, newRS)
	}
	return all
}

// claimReplicaSets returns the ReplicaSets d controls, adopting matching
// orphans and releasing owned ones that no longer match its selector.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s selector: %w", d.Namespace, d.Name, err)
	}
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var owned []*appsv1.ReplicaSet
	for _, rs := range all {
		ref := metav1.GetControllerOf(rs)
		matches := sel.Matches(labels.Set(rs.Labels))
		switch {
		case ref != nil && ref.UID == d.UID:
			if matches {
				owned = append(owned, rs)
				continue
			}
			if d.DeletionTimestamp != nil || rs.DeletionTimestamp != nil {
				continue
			}
			cp := rs.DeepCopy()
			var refs []metav1.OwnerReference
			for _, r := range cp.OwnerReferences {
				if r.UID != d.UID {
					refs = append(refs, r)
				}
			}
			cp.OwnerReferences = refs
			if _, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("release replicaset %s: %w", rs.Name, err)
			}
		case ref == nil && matches && d.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			// Recheck against the API that d is still the live object before adopting.
			fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
				return owned, nil
			}
			cp := rs.DeepCopy()
			cp.OwnerReferences = append(cp.OwnerReferences, *metav1.NewControllerRef(d, controllerKind))
			adopted, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("adopt replicaset %s: %w", rs.Name, err)
			}
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

// updateDeployment writes d's metadata (when meta) and then its status (when
// status), returning the latest object with the intended status.
func (c *Controller) updateDeployment(ctx context.Context, d *appsv1.Deployment, meta, status bool) (*appsv1.Deployment, error) {
	st := d.Status
	api := c.client.AppsV1().Deployments(d.Namespace)
	if meta {
		out, err := api.Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("update deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		d = out
		d.Status = st
	}
	if status {
		out, err := api.UpdateStatus(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("update status of deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		d = out
	}
	return d, nil
}

// getAllReplicaSetsAndSyncRevision finds the new ReplicaSet (creating it when
// create is set) and the old ones, and brings revision annotations up to date.
func (c *Controller) getAllReplicaSetsAndSyncRevision(ctx context.Context, dp **appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	d := *dp
	existing := FindNewReplicaSet(d, rsList)
	oldRSs := FindOldReplicaSets(existing, rsList)
	newRevision := MaxRevision(oldRSs) + 1
	now := c.now()

	if existing != nil {
		cp := existing.DeepCopy()
		changed := copyDeploymentAnnotations(d, cp)
		changed = setNewReplicaSetRevision(cp, newRevision) || changed
		if cp.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			cp.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			changed = true
		}
		if changed {
			out, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("update revision of replicaset %s: %w", cp.Name, err)
			}
			cp = out
		}
		meta := setDeploymentRevision(d, cp.Annotations[RevisionAnnotation])
		status := false
		if HasProgressDeadline(d) && GetCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			SetCondition(&d.Status, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, FoundNewRSReason,
				fmt.Sprintf("Found new replica set %q", cp.Name), now))
			status = true
		}
		if meta || status {
			out, err := c.updateDeployment(ctx, d, meta, status)
			if err != nil {
				return nil, nil, err
			}
			*dp = out
		}
		return cp, oldRSs, nil
	}
	if !create {
		return nil, oldRSs, nil
	}

	hash := ComputeHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rsLabels := make(map[string]string, len(tmpl.Labels))
	for k, v := range tmpl.Labels {
		rsLabels[k] = v
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Labels:          rsLabels,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        new(int32(0)),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        *tmpl,
		},
	}
	n, err := NewRSNewReplicas(d, withNew(oldRSs, rs), rs)
	if err != nil {
		return nil, nil, err
	}
	rs.Spec.Replicas = &n
	copyDeploymentAnnotations(d, rs)
	setNewReplicaSetRevision(rs, newRevision)
	setReplicasAnnotations(rs, deploymentReplicas(d), deploymentReplicas(d)+MaxSurge(d))

	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	alreadyExists := false
	switch {
	case apierrors.IsAlreadyExists(err):
		cur, gerr := c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, nil, gerr
		}
		if ref := metav1.GetControllerOf(cur); ref != nil && ref.UID == d.UID && equalIgnoreHash(&cur.Spec.Template, &d.Spec.Template) {
			created, alreadyExists = cur, true
			break
		}
		// A different template hashed to the same name: bump the collision
		// count so the next attempt gets a new name.
		cc := int32(0)
		if d.Status.CollisionCount != nil {
			cc = *d.Status.CollisionCount
		}
		cc++
		d.Status.CollisionCount = &cc
		if _, uerr := c.updateDeployment(ctx, d, false, true); uerr != nil {
			return nil, nil, uerr
		}
		return nil, nil, fmt.Errorf("replicaset %s exists with another template (collision %d): %w", rs.Name, cc, err)
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		c.recorder.Event(d, corev1.EventTypeWarning, FailedRSCreateReason, msg)
		if HasProgressDeadline(d) {
			SetCondition(&d.Status, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, FailedRSCreateReason, msg, now))
			_, _ = c.updateDeployment(ctx, d, false, true)
		}
		return nil, nil, fmt.Errorf("create replicaset %s: %w", rs.Name, err)
	}
	if !alreadyExists && n > 0 {
		c.recorder.Eventf(d, corev1.EventTypeNormal, ScalingReplicaSetReason, "Scaled up replica set %s to %d from 0", created.Name, n)
	}
	meta := setDeploymentRevision(d, fmt.Sprint(newRevision))
	status := false
	if !alreadyExists && HasProgressDeadline(d) {
		SetCondition(&d.Status, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, NewReplicaSetReason,
			fmt.Sprintf("Created new replica set %q", created.Name), now))
		status = true
	}
	if meta || status {
		out, err := c.updateDeployment(ctx, d, meta, status)
		if err != nil {
			return nil, nil, err
		}
		*dp = out
	}
	return created, oldRSs, nil
}

// scaleReplicaSet sizes rs to n and refreshes its replica annotations,
// recording an event when the size changes. It reports whether it wrote.
func (c *Controller) scaleReplicaSet(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int32) (bool, *appsv1.ReplicaSet, error) {
	cp := rs.DeepCopy()
	annChanged := setReplicasAnnotations(cp, deploymentReplicas(d), deploymentReplicas(d)+MaxSurge(d))
	sizeChanged := replicas(rs) != n
	if !annChanged && !sizeChanged {
		return false, rs, nil
	}
	cp.Spec.Replicas = &n
	out, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return false, rs, fmt.Errorf("scale replicaset %s to %d: %w", rs.Name, n, err)
	}
	if sizeChanged {
		op := "up"
		if n < replicas(rs) {
			op = "down"
		}
		c.recorder.Eventf(d, corev1.EventTypeNormal, ScalingReplicaSetReason, "Scaled %s replica set %s to %d from %d", op, rs.Name, n, replicas(rs))
	}
	return true, out, nil
}

// applyScales writes scales and returns rss with the written objects in place.
func (c *Controller) applyScales(ctx context.Context, d *appsv1.Deployment, rss []*appsv1.ReplicaSet, scales []Scale) ([]*appsv1.ReplicaSet, bool, error) {
	out := append([]*appsv1.ReplicaSet(nil), rss...)
	wroteAny := false
	for _, s := range scales {
		wrote, updated, err := c.scaleReplicaSet(ctx, d, s.RS, s.Replicas)
		if err != nil {
			return out, wroteAny, err
		}
		wroteAny = wroteAny || wrote
		for i := range out {
			if out[i].UID == updated.UID {
				out[i] = updated
			}
		}
	}
	return out, wroteAny, nil
}

// syncScale handles a paused deployment or a change of its size: it resizes
// ReplicaSets without starting a rollout.
func (c *Controller) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := c.getAllReplicaSetsAndSyncRevision(ctx, &d, rsList, false)
	if err != nil {
		return err
	}
	all := withNew(oldRSs, newRS)
	active := activeReplicaSets(all)
	var scales []Scale
	switch {
	case len(active) <= 1:
		target := newRS
		if len(active) == 1 {
			target = active[0]
		} else if target == nil && len(oldRSs) > 0 {
			sorted := append([]*appsv1.ReplicaSet(nil), oldRSs...)
			sortByCreation(sorted)
			target = sorted[len(sorted)-1]
		}
		if target != nil {
			scales = []Scale{{RS: target, Replicas: deploymentReplicas(d)}}
		}
	case newRS != nil && replicas(newRS) == deploymentReplicas(d) && newRS.Status.AvailableReplicas >= deploymentReplicas(d):
		for _, rs := range activeReplicaSets(oldRSs) {
			scales = append(scales, Scale{RS: rs, Replicas: 0})
		}
	case d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType:
		scales = ProportionalScale(d, all)
	}
	all, _, err = c.applyScales(ctx, d, all, scales)
	if err != nil {
		return err
	}
	if newRS != nil {
		for _, rs := range all {
			if rs.UID == newRS.UID {
				newRS = rs
			}
		}
	}
	if d.Spec.Paused {
		c.cleanup(ctx, d, FindOldReplicaSets(newRS, all))
	}
	return c.syncDeploymentStatus(ctx, d, all, newRS)
}

func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := c.getAllReplicaSetsAndSyncRevision(ctx, &d, rsList, true)
	if err != nil {
		return err
	}
	all := withNew(oldRSs, newRS)

	// Scale the new ReplicaSet up within maxSurge (or down if oversized).
	target := deploymentReplicas(d)
	if replicas(newRS) < target {
		if target, err = NewRSNewReplicas(d, all, newRS); err != nil {
			return err
		}
	}
	wrote, _, err := c.scaleReplicaSet(ctx, d, newRS, target)
	if err != nil {
		return err
	}
	if wrote {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}

	// Scale old ReplicaSets down while availability allows.
	active := activeReplicaSets(oldRSs)
	if sumSpecReplicas(active) > 0 {
		if budget := MaxScaleDown(d, all, newRS); budget > 0 {
			cleanups, _ := CleanupUnhealthy(active, budget)
			var wrote1, wrote2 bool
			active, wrote1, err = c.applyScales(ctx, d, active, cleanups)
			if err != nil {
				return err
			}
			active, wrote2, err = c.applyScales(ctx, d, active, ScaleDownOld(d, withNew(active, newRS), active))
			if err != nil {
				return err
			}
			if wrote1 || wrote2 {
				return c.syncRolloutStatus(ctx, d, all, newRS)
			}
		}
	}
	if DeploymentComplete(d, &d.Status) {
		c.cleanup(ctx, d, oldRSs)
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := c.getAllReplicaSetsAndSyncRevision(ctx, &d, rsList, false)
	if err != nil {
		return err
	}
	var downs []Scale
	for _, rs := range activeReplicaSets(oldRSs) {
		downs = append(downs, Scale{RS: rs, Replicas: 0})
	}
	if _, wrote, err := c.applyScales(ctx, d, oldRSs, downs); err != nil {
		return err
	} else if wrote {
		return c.syncRolloutStatus(ctx, d, withNew(oldRSs, newRS), newRS)
	}
	if c.oldPodsRunning(oldRSs) {
		return c.syncRolloutStatus(ctx, d, withNew(oldRSs, newRS), newRS)
	}
	if newRS == nil {
		if newRS, oldRSs, err = c.getAllReplicaSetsAndSyncRevision(ctx, &d, rsList, true); err != nil {
			return err
		}
	}
	if _, _, err := c.scaleReplicaSet(ctx, d, newRS, deploymentReplicas(d)); err != nil {
		return err
	}
	if DeploymentComplete(d, &d.Status) {
		c.cleanup(ctx, d, oldRSs)
	}
	return c.syncRolloutStatus(ctx, d, withNew(oldRSs, newRS), newRS)
}

// oldPodsRunning reports whether any pod of an old ReplicaSet may still run.
func (c *Controller) oldPodsRunning(oldRSs []*appsv1.ReplicaSet) bool {
	if sumStatus(oldRSs, func(s *appsv1.ReplicaSetStatus) int32 { return s.Replicas }) > 0 {
		return true
	}
	if len(oldRSs) == 0 {
		return false
	}
	uids := map[string]bool{}
	for _, rs := range oldRSs {
		uids[string(rs.UID)] = true
	}
	pods, err := c.podLister.Pods(oldRSs[0].Namespace).List(labels.Everything())
	if err != nil {
		return true
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || !uids[string(ref.UID)] {
			continue
		}
		if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			return true
		}
	}
	return false
}

// cleanup deletes old ReplicaSets beyond revisionHistoryLimit.
func (c *Controller) cleanup(ctx context.Context, d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet) {
	if d.Spec.RevisionHistoryLimit == nil {
		return
	}
	for _, rs := range CleanableReplicaSets(oldRSs, *d.Spec.RevisionHistoryLimit) {
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &rs.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			slog.Warn("delete old replicaset", "replicaset", rs.Namespace+"/"+rs.Name, "err", err)
		}
	}
}

func (c *Controller) syncDeploymentStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	st := CalculateStatus(d, all, newRS, c.now())
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		return nil
	}
	d.Status = st
	_, err := c.updateDeployment(ctx, d, false, true)
	return err
}

func (c *Controller) syncRolloutStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	st := RolloutStatus(d, all, newRS, c.now())
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		c.requeueStuck(d, st)
		return nil
	}
	d.Status = st
	_, err := c.updateDeployment(ctx, d, false, true)
	return err
}

// requeueStuck looks at d again when its progress deadline would pass, so
// ProgressDeadlineExceeded is reported without any other event.
func (c *Controller) requeueStuck(d *appsv1.Deployment, st appsv1.DeploymentStatus) {
	cond := GetCondition(st, appsv1.DeploymentProgressing)
	if !HasProgressDeadline(d) || cond == nil || cond.Reason == NewRSAvailableReason || cond.Reason == TimedOutReason || DeploymentComplete(d, &st) {
		return
	}
	after := cond.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(c.now())
	key, err := cache.MetaNamespaceKeyFunc(d)
	if err != nil {
		return
	}
	if after < time.Second {
		after = time.Second
	}
	c.queue.AddAfter(key, after)
}
