package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	if len(body) > 0 {
		if err := decodeOptions(r.Header.Get("Content-Type"), body, opts); err != nil {
			return nil, badRequest(fmt.Sprintf("decode DeleteOptions: %v", err))
		}
	}
	if err := paramCodec.DecodeParameters(r.URL.Query(), metav1.Unversioned, opts); err != nil {
		return nil, badRequest(err.Error())
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
	return opts, nil
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
	pending := len(cm.GetFinalizers()) > 0 || grace > 0 || (isNS && len(ns.Spec.Finalizers) > 0)
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
