// Package endpointslice is the EndpointSlice controller: for every Service
// with a selector it keeps discovery.k8s.io/v1 EndpointSlices (owned by the
// Service, at most 100 endpoints each) listing the selected pods with their
// ready/serving/terminating conditions, per resolved set of ports.
package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/endpoints/endpointutil"
	"github.com/skiff-sh/skiff/internal/controller/loop"
)

const (
	// ControllerName is the endpointslice.kubernetes.io/managed-by value of
	// the slices this controller owns; slices managed by others are left alone.
	ControllerName = "endpointslice-controller.k8s.io"

	// MaxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
	MaxEndpointsPerSlice = 100

	// ReasonFailedToUpdate is the warning event on a Service whose slices
	// could not be written.
	ReasonFailedToUpdate = "FailedToUpdateEndpointSlices"
)

// Controller writes EndpointSlices for Services with selectors.
type Controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	queue    *loop.Queue[string]
	recorder *loop.Recorder
	events   record.EventRecorder
	triggers *endpointutil.TriggerTimes
	tracker  *tracker
	max      int
}

// NewController wires the Service, Pod, Node and EndpointSlice informers of
// factory to the work queue, whose keys are Service keys.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	svcs := factory.Core().V1().Services()
	pods := factory.Core().V1().Pods()
	nodes := factory.Core().V1().Nodes()
	eps := factory.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:   client,
		services: svcs.Lister(),
		pods:     pods.Lister(),
		nodes:    nodes.Lister(),
		slices:   eps.Lister(),
		synced: []cache.InformerSynced{svcs.Informer().HasSynced, pods.Informer().HasSynced,
			nodes.Informer().HasSynced, eps.Informer().HasSynced},
		recorder: loop.NewRecorder(client),
		triggers: endpointutil.NewTriggerTimes(),
		tracker:  newTracker(),
		max:      MaxEndpointsPerSlice,
	}
	c.events = c.recorder.For("endpoint-slice-controller")
	c.queue = loop.New("endpoint_slice", c.sync)
	endpointutil.AddServiceAndPodHandlers(svcs, pods, c.queue.Add)
	// Any change to one of our slices (ours or someone else's edit, or its
	// deletion) has its Service looked at again; a sync that finds nothing
	// to do writes nothing.
	sliceEvent := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels[discoveryv1.LabelServiceName] == "" {
			return
		}
		c.queue.Add(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
	}
	_, _ = eps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sliceEvent,
		UpdateFunc: func(_, obj any) { sliceEvent(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				c.tracker.gone(s.UID)
			}
			sliceEvent(obj)
		},
	})
	return c
}

// Run writes EndpointSlices until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.recorder.Start()
	defer c.recorder.Stop()
	c.queue.Run(ctx, workers, c.synced...)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	existing, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   ControllerName,
	}))
	if err != nil {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The garbage collector would remove the slices through their owner
		// reference; removing them here does not wait for it.
		c.triggers.Forget(key)
		c.tracker.forget(key)
		return c.apply(ctx, key, nil, plan{delete: existing}, time.Time{})
	}
	if err != nil {
		return err
	}
	if !endpointutil.Manages(svc) {
		return nil
	}
	if c.tracker.stale(key, existing) {
		return loop.Requeue(loop.ConflictRetry) // the cache is behind our own writes
	}
	pods, err := endpointutil.SelectedPods(c.pods, svc)
	if err != nil {
		return err
	}
	trigger := c.triggers.Compute(svc, pods)
	p := reconcile(svc, pods, c.zone, existing, c.max)
	return c.apply(ctx, key, svc, p, trigger)
}

// zone is a node's topology zone, if the node is known.
func (c *Controller) zone(node string) string {
	n, err := c.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

// apply writes a plan: creations first, then updates, then deletions, so
// that a Service never lacks endpoints in between.
func (c *Controller) apply(ctx context.Context, key string, svc *corev1.Service, p plan, trigger time.Time) error {
	api := c.client.DiscoveryV1()
	var errs []error
	for _, s := range p.create {
		annotate(s, trigger)
		got, err := api.EndpointSlices(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil // nothing can be created there any more
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("create endpointslice for %s: %w", key, err))
			break // creating more would only multiply slices on a retry
		}
		c.tracker.wrote(key, got)
	}
	for _, s := range p.update {
		annotate(s, trigger)
		got, err := api.EndpointSlices(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		c.tracker.wrote(key, got)
	}
	for _, s := range p.delete {
		err := api.EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &s.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		c.tracker.deleted(key, s)
	}
	err := errors.Join(errs...)
	// Conflicts (a stale cache) are retried without a warning event. A
	// forbidden write is not: a terminating namespace is told apart by its
	// status cause above, so what is left is a policy the user must hear of.
	if err != nil && svc != nil && !loop.OnlyConflicts(err) {
		c.events.Eventf(svc, corev1.EventTypeWarning, ReasonFailedToUpdate, "Error updating Endpoint Slices for Service %s: %v", key, err)
	}
	return err
}

// annotate stamps the last-change trigger time on a slice being written.
func annotate(s *discoveryv1.EndpointSlice, trigger time.Time) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if trigger.IsZero() {
		delete(s.Annotations, corev1.EndpointsLastChangeTriggerTime)
	} else {
		s.Annotations[corev1.EndpointsLastChangeTriggerTime] = endpointutil.FormatTriggerTime(trigger)
	}
}
