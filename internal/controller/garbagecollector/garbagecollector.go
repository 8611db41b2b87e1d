// Package garbagecollector deletes objects whose owners are gone, as
// upstream's garbage collector does: it watches the metadata of every
// deletable resource, keeps a graph of ownerReferences keyed by owner UID,
// and acts on the finalizers the API server puts on deleted owners —
// foregroundDeletion (delete the dependents, wait for those that block the
// owner, then release it) and orphan (drop the ownerReferences to the owner
// from its dependents, then release it). Dependents with no owner left are
// deleted in the background.
package garbagecollector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// DiscoveryInterval is how often new resources are looked for.
const DiscoveryInterval = 30 * time.Second

// A referenced owner that exists but that no informer has shown yet is
// looked at again after virtualRecheck, doubling up to maxVirtualRecheck
// (an owner of a kind not watched stays virtual).
const (
	virtualRecheck    = time.Second
	maxVirtualRecheck = 5 * time.Minute
)

// ignored resources never own anything and are too many to watch, as upstream.
var ignored = map[schema.GroupResource]bool{
	{Group: "", Resource: "events"}:              true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// Controller is the garbage collector.
type Controller struct {
	meta      metadata.Interface
	discovery discovery.DiscoveryInterface
	factory   metadatainformer.SharedInformerFactory
	graph     *graph
	attempt   *loop.Queue[types.UID]
	orphan    *loop.Queue[types.UID]

	mu       sync.Mutex
	mapper   meta.RESTMapper
	watched  map[schema.GroupVersionResource]cache.SharedIndexInformer
	absent   map[types.UID]bool // owners known gone: a UID never comes back
	interval time.Duration
}

// NewController returns a garbage collector reading metadata through client
// and finding resources through disc.
func NewController(client metadata.Interface, disc discovery.DiscoveryInterface) *Controller {
	c := &Controller{
		meta:      client,
		discovery: disc,
		// Only what the graph needs stays in memory.
		factory:  metadatainformer.NewSharedInformerFactoryWithOptions(client, 0, metadatainformer.WithTransform(trim)),
		graph:    newGraph(),
		watched:  map[schema.GroupVersionResource]cache.SharedIndexInformer{},
		absent:   map[types.UID]bool{},
		interval: DiscoveryInterval,
	}
	c.attempt = loop.New("garbage_collector_attempt_to_delete", c.attemptToDelete)
	c.orphan = loop.New("garbage_collector_attempt_to_orphan", c.attemptToOrphan)
	return c
}

// trim drops the metadata the collector never reads.
func trim(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		m.SetAnnotations(nil)
		m.SetLabels(nil)
	}
	return obj, nil
}

// Run collects garbage until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.factory.Shutdown()
	// Wait for a first discovery, so the graph starts complete.
	for c.refresh(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.attempt.Run(ctx, workers, c.synced) })
	wg.Go(func() { c.orphan.Run(ctx, workers, c.synced) })
	wg.Go(func() {
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.refresh(ctx); err != nil {
					slog.Warn("garbage collector discovery", "err", err)
				}
			}
		}
	})
	wg.Wait()
}

// synced reports whether every informer started so far has listed.
func (c *Controller) synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inf := range c.watched {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// refresh rediscovers the resources: a new REST mapping for owner
// references, and an informer for every deletable resource not yet watched.
func (c *Controller) refresh(ctx context.Context) error {
	groups, err := restmapper.GetAPIGroupResources(c.discovery)
	if err != nil && len(groups) == 0 {
		return fmt.Errorf("discover resources: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	for _, g := range groups {
		version := g.Group.PreferredVersion.Version
		for _, r := range g.VersionedResources[version] {
			gvr := schema.GroupVersionResource{Group: g.Group.Name, Version: version, Resource: r.Name}
			if strings.Contains(r.Name, "/") || ignored[gvr.GroupResource()] || c.watched[gvr] != nil ||
				!(discovery.SupportsAllVerbs{Verbs: []string{"delete", "list", "watch"}}).Match(g.Group.Name+"/"+version, &r) {
				continue
			}
			c.watch(gvr, gvr.GroupVersion().WithKind(r.Kind))
		}
	}
	c.factory.Start(ctx.Done())
	return nil
}

// watch feeds one resource's metadata informer into the graph.
func (c *Controller) watch(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind) {
	inf := c.factory.ForResource(gvr).Informer()
	apiVersion, kind := gvk.GroupVersion().String(), gvk.Kind
	observe := func(obj any) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		c.enqueue(c.graph.observe(identity{APIVersion: apiVersion, Kind: kind,
			Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID()}, m))
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if m, err := meta.Accessor(obj); err == nil {
				c.enqueue(c.graph.remove(m.GetUID()))
			}
		},
	})
	c.watched[gvr] = inf
}

func (c *Controller) enqueue(w work) {
	for _, uid := range w.attempt {
		c.attempt.Add(uid)
	}
	for _, uid := range w.orphan {
		c.orphan.Add(uid)
	}
}

// client returns the metadata client for id's resource; id.Namespace is
// dropped for cluster-scoped kinds.
func (c *Controller) client(id identity) (metadata.ResourceInterface, error) {
	gv, err := schema.ParseGroupVersion(id.APIVersion)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	mapper := c.mapper
	c.mu.Unlock()
	mapping, err := mapper.RESTMapping(gv.WithKind(id.Kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, fmt.Errorf("map %s %s: %w", id.APIVersion, id.Kind, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameRoot {
		return c.meta.Resource(mapping.Resource), nil
	}
	return c.meta.Resource(mapping.Resource).Namespace(id.Namespace), nil
}

// get reads id's object; ok is false when it is gone (not found, or the
// name now belongs to another object).
func (c *Controller) get(ctx context.Context, id identity) (*metav1.PartialObjectMetadata, bool, error) {
	ri, err := c.client(id)
	if err != nil {
		return nil, false, err
	}
	obj, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return obj, obj.UID == id.UID, nil
}

// attemptToDelete decides about one node: a virtual owner is checked for
// existence, an owner deleting its dependents is released once none blocks
// it, and any other object is deleted when no owner of it remains.
func (c *Controller) attemptToDelete(ctx context.Context, uid types.UID) error {
	n, ok := c.graph.snapshot(uid)
	if !ok {
		return nil
	}
	if n.virtual {
		_, exists, err := c.get(ctx, n.id)
		if err != nil {
			return err
		}
		if !exists {
			c.markAbsent(uid)
			c.enqueue(c.graph.removeVirtual(uid))
			return nil
		}
		tries := c.graph.recheck(uid)
		return loop.Requeue(min(virtualRecheck<<min(tries, 10), maxVirtualRecheck))
	}
	if n.deletingDependents {
		return c.processDeletingDependents(ctx, n)
	}
	if n.beingDeleted {
		// Its delete event will bring its dependents back here.
		return nil
	}
	latest, exists, err := c.get(ctx, n.id)
	if err != nil || !exists {
		return err
	}
	refs := latest.GetOwnerReferences()
	if len(refs) == 0 {
		return nil
	}
	var solid, dangling, waiting []metav1.OwnerReference
	for _, ref := range refs {
		state, err := c.classify(ctx, n.id.Namespace, ref)
		if err != nil {
			return err
		}
		switch state {
		case ownerSolid:
			solid = append(solid, ref)
		case ownerDangling:
			dangling = append(dangling, ref)
		case ownerWaiting:
			waiting = append(waiting, ref)
		}
	}
	switch {
	case len(solid) > 0:
		// Kept: only the references to owners gone or going are dropped.
		if len(dangling)+len(waiting) == 0 {
			return nil
		}
		gone := map[types.UID]bool{}
		for _, r := range append(dangling, waiting...) {
			gone[r.UID] = true
		}
		return c.removeOwnerRefs(ctx, n.id, gone)
	case len(waiting) > 0 && len(n.dependents) > 0:
		// An owner deleted in the foreground waits for this object, which
		// must delete its own dependents first: foreground is transitive.
		// Unblock its references first if a dependent is itself deleting
		// dependents, so that a cycle cannot wait forever.
		if slices.Contains(n.busy, true) {
			if err := c.unblockOwnerRefs(ctx, n.id); err != nil {
				return err
			}
		}
		return c.delete(ctx, n.id, metav1.DeletePropagationForeground)
	default:
		policy := metav1.DeletePropagationBackground
		switch {
		case slices.Contains(latest.Finalizers, metav1.FinalizerOrphanDependents):
			policy = metav1.DeletePropagationOrphan
		case slices.Contains(latest.Finalizers, metav1.FinalizerDeleteDependents):
			policy = metav1.DeletePropagationForeground
		}
		return c.delete(ctx, n.id, policy)
	}
}

// processDeletingDependents releases an owner deleted in the foreground
// once no dependent blocks it, and meanwhile makes sure those that block it
// are being deleted.
func (c *Controller) processDeletingDependents(ctx context.Context, n snapshot) error {
	if len(n.blocking) == 0 {
		return c.removeFinalizer(ctx, n.id, metav1.FinalizerDeleteDependents)
	}
	for i, d := range n.blocking {
		if !n.busy[i] {
			c.attempt.Add(d.UID)
		}
	}
	return nil
}

type ownerState int

const (
	ownerSolid    ownerState = iota // exists and is not deleting its dependents
	ownerDangling                   // gone
	ownerWaiting                    // deleted in the foreground, waiting for its dependents
)

// classify reads an owner through the API (the graph may lag behind).
func (c *Controller) classify(ctx context.Context, namespace string, ref metav1.OwnerReference) (ownerState, error) {
	c.mu.Lock()
	gone := c.absent[ref.UID]
	c.mu.Unlock()
	if gone {
		return ownerDangling, nil
	}
	owner, exists, err := c.get(ctx, identity{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: namespace, Name: ref.Name, UID: ref.UID})
	switch {
	case err != nil:
		return 0, err
	case !exists:
		c.markAbsent(ref.UID)
		return ownerDangling, nil
	case owner.DeletionTimestamp != nil && slices.Contains(owner.Finalizers, metav1.FinalizerDeleteDependents):
		return ownerWaiting, nil
	}
	return ownerSolid, nil
}

// maxAbsent bounds the cache of owners known gone.
const maxAbsent = 4096

func (c *Controller) markAbsent(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.absent) >= maxAbsent {
		clear(c.absent)
	}
	c.absent[uid] = true
}

// delete deletes id, only if it is still the same object.
func (c *Controller) delete(ctx context.Context, id identity, policy metav1.DeletionPropagation) error {
	ri, err := c.client(id)
	if err != nil {
		return err
	}
	uid := id.UID
	slog.Debug("garbage collector deletes", "kind", id.Kind, "namespace", id.Namespace, "name", id.Name, "propagation", policy)
	err = ri.Delete(ctx, id.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone already, or the name belongs to a new object.
		return nil
	}
	return err
}

// attemptToOrphan drops the references to an owner deleted with the orphan
// finalizer from all its dependents, then releases the owner.
func (c *Controller) attemptToOrphan(ctx context.Context, uid types.UID) error {
	n, ok := c.graph.snapshot(uid)
	if !ok || !n.orph {
		return nil
	}
	for _, d := range n.dependents {
		if err := c.removeOwnerRefs(ctx, d, map[types.UID]bool{uid: true}); err != nil {
			return fmt.Errorf("orphan %s %s/%s: %w", d.Kind, d.Namespace, d.Name, err)
		}
	}
	return c.removeFinalizer(ctx, n.id, metav1.FinalizerOrphanDependents)
}

// patchMeta merge-patches id's metadata from its latest version, guarded by
// that version's resourceVersion, retrying on conflicts. change returns the
// metadata fields to set, or nil when nothing is to change.
func (c *Controller) patchMeta(ctx context.Context, id identity, change func(*metav1.PartialObjectMetadata) map[string]any) error {
	ri, err := c.client(id)
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		latest, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil || latest.UID != id.UID {
			return err
		}
		fields := change(latest)
		if fields == nil {
			return nil
		}
		fields["resourceVersion"] = latest.ResourceVersion
		body, err := json.Marshal(map[string]any{"metadata": fields})
		if err != nil {
			return err
		}
		_, err = ri.Patch(ctx, id.Name, types.MergePatchType, body, metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// removeOwnerRefs drops id's references to the owners in gone.
func (c *Controller) removeOwnerRefs(ctx context.Context, id identity, gone map[types.UID]bool) error {
	return c.patchMeta(ctx, id, func(m *metav1.PartialObjectMetadata) map[string]any {
		keep := slices.DeleteFunc(slices.Clone(m.OwnerReferences), func(r metav1.OwnerReference) bool { return gone[r.UID] })
		if len(keep) == len(m.OwnerReferences) {
			return nil
		}
		return map[string]any{"ownerReferences": keep}
	})
}

// unblockOwnerRefs clears blockOwnerDeletion on all of id's references.
func (c *Controller) unblockOwnerRefs(ctx context.Context, id identity) error {
	return c.patchMeta(ctx, id, func(m *metav1.PartialObjectMetadata) map[string]any {
		refs := slices.Clone(m.OwnerReferences)
		changed := false
		for i := range refs {
			if blocks(refs[i]) {
				f := false
				refs[i].BlockOwnerDeletion, changed = &f, true
			}
		}
		if !changed {
			return nil
		}
		return map[string]any{"ownerReferences": refs}
	})
}

// removeFinalizer drops finalizer from id; the API server then finishes
// deleting it when no other finalizer remains.
func (c *Controller) removeFinalizer(ctx context.Context, id identity, finalizer string) error {
	return c.patchMeta(ctx, id, func(m *metav1.PartialObjectMetadata) map[string]any {
		if !slices.Contains(m.Finalizers, finalizer) {
			return nil
		}
		return map[string]any{"finalizers": slices.DeleteFunc(slices.Clone(m.Finalizers), func(f string) bool { return f == finalizer })}
	})
}
