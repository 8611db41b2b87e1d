// Package endpoints is the Endpoints controller: for every Service with a
// selector it keeps an Endpoints object of the same name listing the
// selected pods' addresses, ready or not ready, per resolved port. The
// Endpoints API is deprecated upstream (v1.33) in favour of EndpointSlices
// but is still served and read, so SA1019 warnings are expected here.
package endpoints

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/endpoints/endpointutil"
	"github.com/skiff-sh/skiff/internal/controller/loop"
)

const (
	// LabelManagedBy marks the Endpoints this controller writes (upstream
	// since v1.33), so stale ones can be told from hand-made ones.
	LabelManagedBy = "endpoints.kubernetes.io/managed-by"
	// ControllerName is the LabelManagedBy value and the events' source.
	ControllerName = "endpoint-controller"

	// overCapacityValue is the over-capacity annotation's value.
	overCapacityValue = "truncated"

	// Event reasons.
	ReasonFailedToCreate = "FailedToCreateEndpoint"
	ReasonFailedToUpdate = "FailedToUpdateEndpoint"
)

// Controller writes Endpoints for Services with selectors.
type Controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	queue     *loop.Queue[string]
	recorder  *loop.Recorder
	events    record.EventRecorder
	triggers  *endpointutil.TriggerTimes
}

// NewController wires the Service, Pod and Endpoints informers of factory
// to the work queue, whose keys are Service keys.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	svcs := factory.Core().V1().Services()
	pods := factory.Core().V1().Pods()
	eps := factory.Core().V1().Endpoints()
	c := &Controller{
		client:    client,
		services:  svcs.Lister(),
		pods:      pods.Lister(),
		endpoints: eps.Lister(),
		synced:    []cache.InformerSynced{svcs.Informer().HasSynced, pods.Informer().HasSynced, eps.Informer().HasSynced},
		recorder:  loop.NewRecorder(client),
		triggers:  endpointutil.NewTriggerTimes(),
	}
	c.events = c.recorder.For(ControllerName)
	c.queue = loop.New("endpoint", c.sync)
	endpointutil.AddServiceAndPodHandlers(svcs, pods, c.queue.Add)
	enqueue := endpointutil.EnqueueKey(c.queue.Add)
	// Our own Endpoints are looked at again when someone else changes them
	// (or when their Service is gone, e.g. deleted while we were down); a
	// deleted one is recreated.
	ours := func(obj any) {
		if ep, ok := obj.(*corev1.Endpoints); ok && ep.Labels[LabelManagedBy] == ControllerName {
			enqueue(obj)
		}
	}
	_, _ = eps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    ours,
		UpdateFunc: func(_, obj any) { ours(obj) },
		DeleteFunc: enqueue,
	})
	return c
}

// Run writes Endpoints until ctx ends.
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
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The Service is gone: so are its Endpoints.
		c.triggers.Forget(key)
		err = c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !endpointutil.Manages(svc) {
		return nil // someone else writes these Endpoints, if anyone
	}
	pods, err := endpointutil.SelectedPods(c.pods, svc)
	if err != nil {
		return err
	}
	// Computed on every sync so the tracker sees every change, even ones
	// that end up writing nothing.
	trigger := c.triggers.Compute(svc, pods)
	subsets, truncated := truncate(desiredSubsets(svc, pods))
	labels := desiredLabels(svc)

	cur, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if cur != nil {
		_, wasTruncated := cur.Annotations[corev1.EndpointsOverCapacity]
		if apiequality.Semantic.DeepEqual(cur.Subsets, subsets) &&
			apiequality.Semantic.DeepEqual(cur.Labels, labels) && wasTruncated == truncated {
			return nil
		}
	}

	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if cur != nil {
		ep = cur.DeepCopy()
	}
	ep.Labels = labels
	if ep.Annotations == nil {
		ep.Annotations = map[string]string{}
	}
	if trigger.IsZero() {
		delete(ep.Annotations, corev1.EndpointsLastChangeTriggerTime)
	} else {
		ep.Annotations[corev1.EndpointsLastChangeTriggerTime] = endpointutil.FormatTriggerTime(trigger)
	}
	if truncated {
		ep.Annotations[corev1.EndpointsOverCapacity] = overCapacityValue
	} else {
		delete(ep.Annotations, corev1.EndpointsOverCapacity)
	}
	ep.Subsets = subsets

	if cur == nil {
		_, err = c.client.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{})
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil // nothing can be created there any more
		}
	} else {
		_, err = c.client.CoreV1().Endpoints(ns).Update(ctx, ep, metav1.UpdateOptions{})
	}
	if err == nil || apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return err // conflicts only mean a stale cache: retried quietly
	}
	if cur == nil {
		c.events.Eventf(ep, corev1.EventTypeWarning, ReasonFailedToCreate, "Failed to create endpoint for service %s: %v", key, err)
		return fmt.Errorf("create endpoints %s: %w", key, err)
	}
	c.events.Eventf(ep, corev1.EventTypeWarning, ReasonFailedToUpdate, "Failed to update endpoint %s: %v", key, err)
	return fmt.Errorf("update endpoints %s: %w", key, err)
}

// desiredLabels are the Service's labels, the headless marker for a Service
// without a cluster IP, and the managed-by label.
func desiredLabels(svc *corev1.Service) map[string]string {
	labels := make(map[string]string, len(svc.Labels)+2)
	for k, v := range svc.Labels {
		labels[k] = v
	}
	if endpointutil.IsHeadless(svc) {
		labels[corev1.IsHeadlessService] = ""
	} else {
		delete(labels, corev1.IsHeadlessService)
	}
	labels[LabelManagedBy] = ControllerName
	return labels
}
