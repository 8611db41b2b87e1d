// Package namespace deletes everything in a namespace that is being deleted,
// then releases the namespace by clearing its "kubernetes" finalizer.
package namespace

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// finalizerName is the spec finalizer the API server puts on every namespace.
const finalizerName = corev1.FinalizerKubernetes

// Controller empties and finalizes terminating namespaces.
type Controller struct {
	client    kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.DiscoveryInterface
	lister    corelisters.NamespaceLister
	synced    cache.InformerSynced
	queue     *loop.Queue[string]
}

// NewController wires the namespace informer to the work queue.
func NewController(client kubernetes.Interface, dyn dynamic.Interface, namespaces coreinformers.NamespaceInformer) *Controller {
	c := &Controller{
		client:    client,
		dynamic:   dyn,
		discovery: client.Discovery(),
		lister:    namespaces.Lister(),
		synced:    namespaces.Informer().HasSynced,
	}
	c.queue = loop.NewWithLimiter("namespace",
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 10*time.Second), c.sync)
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	_, _ = namespaces.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

// Run processes namespaces until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, workers, c.synced)
}

// errContentRemains requeues a namespace whose pods may take their grace period to go.
var errContentRemains = loop.Requeue(time.Second)

func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil {
		return nil
	}
	remaining, err := c.deleteContent(ctx, name)
	if err != nil {
		return err
	}
	if remaining > 0 {
		return errContentRemains
	}
	return c.finalize(ctx, ns)
}

// deleteContent deletes every namespaced object in ns and counts what is left.
func (c *Controller) deleteContent(ctx context.Context, ns string) (int, error) {
	lists, err := c.discovery.ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return 0, fmt.Errorf("discover resources: %w", err)
	}
	remaining := 0
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if !has(r.Verbs, "deletecollection") || !has(r.Verbs, "list") {
				continue
			}
			ri := c.dynamic.Resource(gv.WithResource(r.Name)).Namespace(ns)
			// Background, as upstream: a Job's or RC's default (orphan) would leave them waiting on the garbage collector.
			background := metav1.DeletePropagationBackground
			if err := ri.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("delete %s in %s: %w", r.Name, ns, err)
			}
			left, err := ri.List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, fmt.Errorf("list %s in %s: %w", r.Name, ns, err)
			}
			remaining += len(left.Items)
		}
	}
	return remaining, nil
}

// finalize clears the kubernetes finalizer; the API server then removes the namespace.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) error {
	if !has(finalizerStrings(ns.Spec.Finalizers), string(finalizerName)) {
		return nil
	}
	ns = ns.DeepCopy()
	var keep []corev1.FinalizerName
	for _, f := range ns.Spec.Finalizers {
		if f != finalizerName {
			keep = append(keep, f)
		}
	}
	ns.Spec.Finalizers = keep
	_, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func finalizerStrings(fs []corev1.FinalizerName) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
