package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/skiff-sh/skiff/internal/storage"
)

// deleteOptions reads DeleteOptions from the body (any codec) or the query.
func deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	// Query first: decoding it resets every option it does not name, and a
	// deletecollection's query also carries the list options. The body wins.
	if err := paramCodec.DecodeParameters(r.URL.Query(), metav1.Unversioned, opts); err != nil {
		return nil, badRequest(err.Error())
	}
	if len(body) > 0 {
		if err := decodeOptions(r.Header.Get("Content-Type"), body, opts); err != nil {
			return nil, badRequest(fmt.Sprintf("decode DeleteOptions: %v", err))
		}
	}
	for _, d := range opts.DryRun {
		if d != metav1.DryRunAll {
			return nil, badRequest(fmt.Sprintf("unsupported dry run option %q", d))
		}
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	if err := validateDeleteOptions(opts); err != nil {
		return nil, err
	}
	return opts, nil
}

// validateDeleteOptions rejects what upstream's ValidateDeleteOptions
// rejects: both cascade options at once, or an unknown propagation policy.
func validateDeleteOptions(opts *metav1.DeleteOptions) error {
	var errs field.ErrorList
	p := field.NewPath("propagationPolicy")
	//nolint:staticcheck // OrphanDependents is deprecated but still honoured, as upstream does.
	if opts.OrphanDependents != nil && opts.PropagationPolicy != nil {
		errs = append(errs, field.Invalid(p, *opts.PropagationPolicy, "orphanDependents and deletionPropagation cannot be both set"))
	}
	if pp := opts.PropagationPolicy; pp != nil && *pp != metav1.DeletePropagationForeground &&
		*pp != metav1.DeletePropagationBackground && *pp != metav1.DeletePropagationOrphan {
		errs = append(errs, field.NotSupported(p, *pp, []string{string(metav1.DeletePropagationForeground),
			string(metav1.DeletePropagationBackground), string(metav1.DeletePropagationOrphan), "nil"}))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "DeleteOptions"}, "", errs)
	}
	return nil
}

// gcPolicy is what a delete without a cascade option does to dependents,
// as upstream's per-strategy DefaultGarbageCollectionPolicy says.
type gcPolicy int

const (
	gcBackground  gcPolicy = iota // dependents are deleted after the owner is gone
	gcOrphan                      // legacy default: dependents are kept
	gcUnsupported                 // never takes garbage collector finalizers
)

func (h *resourceHandler) gcDefault() gcPolicy {
	switch h.GVK {
	// Kept for backwards compatibility in these versions, as upstream does.
	case corev1.SchemeGroupVersion.WithKind("ReplicationController"), batchv1.SchemeGroupVersion.WithKind("Job"):
		return gcOrphan
	case corev1.SchemeGroupVersion.WithKind("Event"):
		return gcUnsupported
	}
	return gcBackground
}

// gcFinalizers returns the object's finalizers with the orphan and
// foregroundDeletion finalizers set as the delete options ask (explicit
// option, then a finalizer already there, then the resource's default), and
// whether that changed anything. The garbage collector acts on them.
func gcFinalizers(current []string, opts *metav1.DeleteOptions, def gcPolicy) ([]string, bool) {
	if def == gcUnsupported {
		return current, false
	}
	orphan, foreground := def == gcOrphan, false
	had := func(f string) bool { return slices.Contains(current, f) }
	switch {
	//nolint:staticcheck // the deprecated option still decides, as upstream.
	case opts.OrphanDependents != nil:
		orphan = *opts.OrphanDependents //nolint:staticcheck
	case opts.PropagationPolicy != nil:
		orphan = *opts.PropagationPolicy == metav1.DeletePropagationOrphan
		foreground = *opts.PropagationPolicy == metav1.DeletePropagationForeground
	case had(metav1.FinalizerOrphanDependents):
		orphan = true
	case had(metav1.FinalizerDeleteDependents):
		orphan, foreground = false, true
	}
	if orphan == had(metav1.FinalizerOrphanDependents) && foreground == had(metav1.FinalizerDeleteDependents) {
		return current, false
	}
	out := make([]string, 0, len(current)+1)
	for _, f := range current {
		if f != metav1.FinalizerOrphanDependents && f != metav1.FinalizerDeleteDependents {
			out = append(out, f)
		}
	}
	if orphan {
		out = append(out, metav1.FinalizerOrphanDependents)
	}
	if foreground {
		out = append(out, metav1.FinalizerDeleteDependents)
	}
	return out, true
}

// gracefulPending reports an object already counting down a grace period
// that this delete does not shorten: upstream then leaves it, finalizers
// included, as it is.
func gracefulPending(m metav1.Object, grace int64) bool {
	old := m.GetDeletionGracePeriodSeconds()
	return m.GetDeletionTimestamp() != nil && old != nil && *old > 0 && grace >= *old
}

func (h *resourceHandler) delete(w http.ResponseWriter, r *http.Request, req *request) error {
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	obj, done, err := h.deleteObject(r.Context(), req.namespace, req.name, opts)
	if err != nil {
		return err
	}
	//nolint:staticcheck // as upstream: 202 only for an explicit orphanDependents=false left pending.
	if !done && opts.OrphanDependents != nil && !*opts.OrphanDependents {
		return h.respond(w, r, http.StatusAccepted, obj)
	}
	if !done || h.GVK.Kind == "Pod" {
		// Still there (finalizers or a grace period) — or pods, whose deletion returns the object.
		return h.respond(w, r, http.StatusOK, obj)
	}
	m, _ := meta.Accessor(obj)
	st := &metav1.Status{Status: metav1.StatusSuccess, Details: &metav1.StatusDetails{
		Name: m.GetName(), Group: h.GVK.Group, Kind: h.Plural, UID: m.GetUID()}}
	writeObject(w, r, http.StatusOK, output{mediaType: mimeJSON}, st)
	return nil
}

// gracePeriod returns how long a pod may take to stop, or 0 to delete at once:
// only pods bound to a node and not finished terminate gracefully.
func gracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		g = *opts.GracePeriodSeconds
	}
	if g == 0 {
		return 0
	}
	return g
}

// deleteObject deletes one object; done is false when it remains, marked for
// deletion, waiting on finalizers or its grace period.
func (h *resourceHandler) deleteObject(ctx context.Context, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	key := h.store.Key(namespace, name)
	cur, err := h.store.Get(ctx, key, name)
	if err != nil {
		return nil, false, err
	}
	if err := checkPreconditions(h, cur, opts.Preconditions); err != nil {
		return nil, false, err
	}
	dry := len(opts.DryRun) > 0
	cm, _ := meta.Accessor(cur)
	grace := gracePeriod(cur, opts)
	ns, isNS := cur.(*corev1.Namespace)
	finalizers := cm.GetFinalizers()
	if !gracefulPending(cm, grace) {
		finalizers, _ = gcFinalizers(finalizers, opts, h.gcDefault())
	}
	pending := len(finalizers) > 0 || grace > 0 || (isNS && len(ns.Spec.Finalizers) > 0)
	if isNS && !dry {
		// Before the write, so no create slips in between the write and
		// the cache seeing it.
		h.server.markNamespaceDeleted(name)
	}
	if !pending {
		if dry {
			return cur, true, nil
		}
		out, err := h.store.Delete(ctx, key, name, cm.GetUID(), func(o runtime.Object) error {
			return checkPreconditions(h, o, opts.Preconditions)
		})
		if err != nil {
			return nil, false, err
		}
		h.afterDelete(ctx, out)
		return out, true, nil
	}
	if dry {
		return cur, false, nil
	}
	out, err := h.store.GuaranteedUpdate(ctx, key, name, func(o runtime.Object) (runtime.Object, error) {
		if err := checkPreconditions(h, o, opts.Preconditions); err != nil {
			return nil, err
		}
		o = o.DeepCopyObject()
		m, _ := meta.Accessor(o)
		if !gracefulPending(m, grace) {
			if fs, changed := gcFinalizers(m.GetFinalizers(), opts, h.gcDefault()); changed {
				m.SetFinalizers(fs)
			}
		}
		now := metav1.Now()
		if m.GetDeletionTimestamp() == nil {
			at := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			m.SetDeletionTimestamp(&at)
			m.SetDeletionGracePeriodSeconds(&grace)
		} else if old := m.GetDeletionGracePeriodSeconds(); old != nil && grace < *old {
			// A shorter grace period may replace a longer one, never the reverse.
			at := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			m.SetDeletionTimestamp(&at)
			m.SetDeletionGracePeriodSeconds(&grace)
		}
		if n, ok := o.(*corev1.Namespace); ok {
			n.Status.Phase = corev1.NamespaceTerminating
		}
		return o, nil
	})
	if err != nil {
		return nil, false, err
	}
	// The options may have dropped the last finalizer of an object already
	// marked for deletion (orphan, then background): it goes now.
	if m, _ := meta.Accessor(out); grace == 0 && len(m.GetFinalizers()) == 0 {
		if out, err = h.finishIfDeleted(ctx, out); err != nil {
			return nil, false, err
		}
		_, err := h.store.Get(ctx, key, name)
		return out, apierrors.IsNotFound(err), nil
	}
	return out, false, nil
}

func checkPreconditions(h *resourceHandler, obj runtime.Object, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	m, _ := meta.Accessor(obj)
	if p.UID != nil && *p.UID != m.GetUID() {
		return apierrors.NewConflict(h.GR(), m.GetName(), fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(h.GR(), m.GetName(), fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
	}
	return nil
}

func (h *resourceHandler) deleteCollection(w http.ResponseWriter, r *http.Request, req *request) error {
	lopts, err := listOptions(r)
	if err != nil {
		return err
	}
	filter, err := h.filter(lopts)
	if err != nil {
		return err
	}
	dopts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	res, err := h.store.List(r.Context(), storage.ListOptions{Namespace: req.namespace, Filter: filter})
	if err != nil {
		return err
	}
	var deleted []runtime.Object
	for _, it := range res.Items {
		m, _ := meta.Accessor(it)
		obj, _, err := h.deleteObject(r.Context(), m.GetNamespace(), m.GetName(), dopts)
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		deleted = append(deleted, obj)
	}
	list := h.NewList()
	_ = meta.SetList(list, deleted)
	list.GetObjectKind().SetGroupVersionKind(h.GVK.GroupVersion().WithKind(h.GVK.Kind + "List"))
	return h.respond(w, r, http.StatusOK, list)
}

// decodeOptions decodes an options body whatever group version it names:
// DeleteOptions travel with apiVersion meta.k8s.io/v1, v1 or a group's version.
func decodeOptions(contentType string, body []byte, into interface{ Unmarshal([]byte) error }) error {
	if strings.HasPrefix(contentType, mimeProtobuf) {
		var u runtime.Unknown
		if len(body) < 4 || string(body[:4]) != "k8s\x00" {
			return fmt.Errorf("protobuf body without the k8s envelope")
		}
		if err := u.Unmarshal(body[4:]); err != nil {
			return err
		}
		return into.Unmarshal(u.Raw)
	}
	return yaml.Unmarshal(body, into)
}
