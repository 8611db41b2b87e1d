package apiserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/printers"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/storage"
)

// maxBodyBytes bounds request bodies, as upstream's 3 MiB limit does.
const maxBodyBytes = 3 << 20

// resourceHandler serves one resource over its store.
type resourceHandler struct {
	*registry.Resource
	store  *storage.Store
	server *Server

	fmMu sync.Mutex
	fms  map[string]*managedfields.FieldManager // server-side apply, by subresource
	enc  encodeCache
}

func (h *resourceHandler) serve(w http.ResponseWriter, r *http.Request, req *request) {
	switch req.verb {
	case "create", "update", "patch":
		growStack()
	}
	var err error
	switch req.verb {
	case "get":
		err = h.get(w, r, req)
	case "list":
		err = h.list(w, r, req)
	case "watch":
		err = h.watch(w, r, req)
	case "create":
		switch req.sub {
		case "binding":
			err = h.bind(w, r, req)
		case "eviction":
			err = h.evict(w, r, req)
		default:
			err = h.create(w, r, req)
		}
	case "update":
		err = h.update(w, r, req)
	case "patch":
		err = h.patch(w, r, req)
	case "delete":
		err = h.delete(w, r, req)
	case "deletecollection":
		err = h.deleteCollection(w, r, req)
	}
	if err != nil {
		writeError(w, r, err)
	}
}

// growStack grows the goroutine's stack, while it is still shallow, to what
// the write path needs. Each request runs on a new goroutine with a small
// stack, and decoding, managedFields (structured-merge-diff walks the object
// recursively), validation and the etcd call go some 30 KiB deep: grown by
// doubling as it deepens, the stack was copied two or three times when
// already deep (6% of the server's CPU in a profile of `skiff bench api`).
//
//go:noinline
func growStack() {
	var pad [28 << 10]byte
	stackSink(pad[:])
}

//go:noinline
func stackSink(b []byte) { b[0] = 1 }

func (h *resourceHandler) key(req *request) string { return h.store.Key(req.namespace, req.name) }

// preallocBodyBytes bounds the buffer readBody allocates up front.
const preallocBodyBytes = 64 << 10

func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= preallocBodyBytes {
		// One buffer of the announced size (net/http holds the client to
		// it); io.ReadAll would grow one from 512 bytes, copying each time.
		// Only for small bodies: a slow client must not pin megabytes it
		// has merely announced.
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, badRequest(fmt.Sprintf("read request body: %v", err))
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest(fmt.Sprintf("read request body: %v", err))
	}
	if len(body) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
	}
	return body, nil
}

// respond writes obj (or its Table) as the client negotiated.
func (h *resourceHandler) respond(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) error {
	out, ok := negotiate(r, "Table", "PartialObjectMetadata", "PartialObjectMetadataList")
	if !ok {
		return notAcceptable()
	}
	switch out.as {
	case "Table":
		opts := tableOptions(r)
		t, err := printers.Table(obj, opts, time.Now())
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		obj = t
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		obj = toPartial(obj)
	}
	writeObject(w, r, code, out, obj)
	return nil
}

func tableOptions(r *http.Request) metav1.IncludeObjectPolicy {
	switch p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p {
	case metav1.IncludeNone, metav1.IncludeObject:
		return p
	}
	return metav1.IncludeMetadata
}

func toPartial(obj runtime.Object) runtime.Object {
	if meta.IsListType(obj) {
		items, _ := meta.ExtractList(obj)
		l := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		if lm, err := meta.ListAccessor(obj); err == nil {
			l.ResourceVersion, l.Continue, l.RemainingItemCount = lm.GetResourceVersion(), lm.GetContinue(), lm.GetRemainingItemCount()
		}
		for _, it := range items {
			l.Items = append(l.Items, *partialMetadata(it))
		}
		return l
	}
	return partialMetadata(obj)
}

func (h *resourceHandler) get(w http.ResponseWriter, r *http.Request, req *request) error {
	if req.sub == "log" {
		return h.server.proxyLog(w, r, req)
	}
	obj, err := h.store.GetAt(r.Context(), h.key(req), req.name, r.URL.Query().Get("resourceVersion"))
	if err != nil {
		return err
	}
	if req.sub == "scale" {
		return h.respondScale(w, r, obj)
	}
	return h.respond(w, r, http.StatusOK, obj)
}

// filter builds the label and field selector match function.
func (h *resourceHandler) filter(opts *metav1.ListOptions) (func(runtime.Object) bool, error) {
	ls, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, badRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	fs, err := fields.ParseSelector(opts.FieldSelector)
	if err != nil {
		return nil, badRequest(fmt.Sprintf("invalid field selector: %v", err))
	}
	known := h.SelectableFields(h.New())
	for _, req := range fs.Requirements() {
		if _, ok := known[req.Field]; !ok {
			return nil, badRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	if ls.Empty() && fs.Empty() {
		return nil, nil
	}
	return func(obj runtime.Object) bool {
		m, err := meta.Accessor(obj)
		if err != nil {
			return false
		}
		if !ls.Matches(labels.Set(m.GetLabels())) {
			return false
		}
		return fs.Empty() || fs.Matches(h.SelectableFields(obj))
	}, nil
}

func listOptions(r *http.Request) (*metav1.ListOptions, error) {
	opts := &metav1.ListOptions{}
	if err := paramCodec.DecodeParameters(r.URL.Query(), metav1.Unversioned, opts); err != nil {
		return nil, badRequest(err.Error())
	}
	return opts, nil
}

func (h *resourceHandler) list(w http.ResponseWriter, r *http.Request, req *request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	filter, err := h.filter(opts)
	if err != nil {
		return err
	}
	res, err := h.store.List(r.Context(), storage.ListOptions{
		Namespace: req.namespace, Filter: filter, ResourceVersion: opts.ResourceVersion,
		ResourceVersionMatch: opts.ResourceVersionMatch, Limit: opts.Limit, Continue: opts.Continue,
	})
	if err != nil {
		return err
	}
	list := h.NewList()
	if err := meta.SetList(list, res.Items); err != nil {
		return apierrors.NewInternalError(err)
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(fmt.Sprint(res.Revision))
	lm.SetContinue(res.Continue)
	lm.SetRemainingItemCount(res.Remaining)
	list.GetObjectKind().SetGroupVersionKind(h.GVK.GroupVersion().WithKind(h.GVK.Kind + "List"))
	return h.respond(w, r, http.StatusOK, list)
}

// fieldValidation reads the fieldValidation query parameter (default Warn, as upstream).
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return "Warn", nil
	case "Strict", "Warn", "Ignore":
		return v, nil
	}
	return "", badRequest(fmt.Sprintf("fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got %q", v))
}

func dryRun(r *http.Request) (bool, error) {
	vals := r.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != "All" {
			return false, badRequest(fmt.Sprintf("unsupported dry run option %q, only \"All\" is supported", v))
		}
	}
	return len(vals) > 0, nil
}

// decodeObject reads and decodes the body as this resource's kind, applying fieldValidation.
func (h *resourceHandler) decodeObject(w http.ResponseWriter, r *http.Request) (runtime.Object, error) {
	mode, err := fieldValidation(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	obj, strictErr, err := decodeBody(r.Header.Get("Content-Type"), body, h.GVK, h.New())
	if err != nil {
		return nil, err
	}
	if err := handleStrict(w, h.GVK.Kind, h.GVK.Version, mode, strictErr); err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(h.GVK)
	return obj, nil
}

// handleStrict turns unknown/duplicate field findings into a 400 (Strict) or warnings (Warn).
func handleStrict(w http.ResponseWriter, kind, version, mode string, strictErr error) error {
	if strictErr == nil || mode == "Ignore" {
		return nil
	}
	if mode == "Strict" {
		return badRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", kind, version, kind, strictErr))
	}
	if se, ok := runtime.AsStrictDecodingError(strictErr); ok {
		for _, e := range se.Errors() {
			w.Header().Add("Warning", fmt.Sprintf(`299 - %q`, e))
		}
	}
	return nil
}

func (h *resourceHandler) checkTarget(obj runtime.Object, req *request) (metav1.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	if h.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(req.namespace)
		} else if m.GetNamespace() != req.namespace {
			return nil, badRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else if m.GetNamespace() != "" {
		m.SetNamespace("")
	}
	if req.name != "" && m.GetName() != req.name {
		if m.GetName() == "" && req.verb != "create" {
			m.SetName(req.name)
		} else {
			return nil, badRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), req.name))
		}
	}
	return m, nil
}

func (h *resourceHandler) nameFunc() apivalidation.ValidateNameFunc {
	switch {
	case h.GVK.Kind == "Event":
		return func(name string, prefix bool) []string { return path.IsValidPathSegmentName(name) }
	case h.NameIsDNSLabel:
		return apivalidation.NameIsDNSLabel
	}
	return apivalidation.NameIsDNSSubdomain
}

// validate runs metadata and kind validation; old is nil on create.
func (h *resourceHandler) validate(obj, old runtime.Object) error {
	m, _ := meta.Accessor(obj)
	var errs field.ErrorList
	if old == nil {
		errs = apivalidation.ValidateObjectMetaAccessor(m, h.Namespaced, h.nameFunc(), field.NewPath("metadata"))
	} else {
		om, _ := meta.Accessor(old)
		errs = apivalidation.ValidateObjectMetaAccessorUpdate(m, om, field.NewPath("metadata"))
		errs = append(errs, apivalidation.ValidateObjectMetaAccessor(m, h.Namespaced, h.nameFunc(), field.NewPath("metadata"))...)
	}
	if h.Validate != nil {
		errs = append(errs, h.Validate(obj)...)
	}
	if old != nil && h.ValidateUpdate != nil {
		errs = append(errs, h.ValidateUpdate(obj, old)...)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(h.GVK.GroupKind(), m.GetName(), errs)
	}
	return nil
}

func (h *resourceHandler) create(w http.ResponseWriter, r *http.Request, req *request) error {
	obj, err := h.decodeObject(w, r)
	if err != nil {
		return err
	}
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	out, err := h.createObject(r.Context(), obj, req, dry)
	if err != nil {
		return err
	}
	return h.respond(w, r, http.StatusCreated, out)
}

// createObject runs the create path shared by POST and apply-creates.
func (h *resourceHandler) createObject(ctx context.Context, obj runtime.Object, req *request, dry bool) (runtime.Object, error) {
	m, err := h.checkTarget(obj, req)
	if err != nil {
		return nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
	}
	if h.Namespaced {
		if err := h.server.namespaceAccepts(ctx, m.GetNamespace()); err != nil {
			return nil, err
		}
	}
	m.SetUID(types.UID(uuid.NewString()))
	m.SetCreationTimestamp(metav1.Now())
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	if h.HasStatus() {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if h.ResetStatusOnCreate {
		registry.ResetStatus(obj)
	}
	if h.Default != nil {
		h.Default(obj)
	}
	if h.PrepareForCreate != nil {
		h.PrepareForCreate(obj)
	}
	if !req.applied {
		obj = h.trackFields(h.New(), obj, req)
	}
	if err := h.admitCreate(ctx, obj, dry); err != nil {
		return nil, err
	}
	if err := h.validate(obj, nil); err != nil {
		h.releaseCreate(ctx, obj, dry)
		return nil, err
	}
	if dry {
		return obj, nil
	}
	out, err := h.store.Create(ctx, h.store.Key(m.GetNamespace(), m.GetName()), obj)
	if err != nil {
		h.releaseCreate(ctx, obj, dry)
		return nil, err
	}
	return out, nil
}

func (h *resourceHandler) update(w http.ResponseWriter, r *http.Request, req *request) error {
	if req.sub == "scale" {
		return h.updateScale(w, r, req, nil)
	}
	obj, err := h.decodeObject(w, r)
	if err != nil {
		return err
	}
	if _, err := h.checkTarget(obj, req); err != nil {
		return err
	}
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	out, err := h.updateObject(r.Context(), req, dry, func(cur runtime.Object) (runtime.Object, error) { return obj.DeepCopyObject(), nil })
	if err != nil {
		return err
	}
	return h.respond(w, r, http.StatusOK, out)
}

// updateObject runs the update path shared by PUT and PATCH: next computes the
// desired object from the current one; conflicts are checked against the
// resourceVersion it carries.
func (h *resourceHandler) updateObject(ctx context.Context, req *request, dry bool, next func(cur runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	fn := func(cur runtime.Object) (runtime.Object, error) {
		obj, err := next(cur)
		if err != nil {
			return nil, err
		}
		return h.prepareUpdate(obj, cur, req)
	}
	if dry {
		cur, err := h.store.Get(ctx, h.key(req), req.name)
		if err != nil {
			return nil, err
		}
		return fn(cur)
	}
	out, err := h.store.GuaranteedUpdate(ctx, h.key(req), req.name, fn)
	if err != nil {
		return nil, err
	}
	return h.finishIfDeleted(ctx, out)
}

// prepareUpdate applies the update rules to obj against the stored cur.
func (h *resourceHandler) prepareUpdate(obj, cur runtime.Object, req *request) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	cm, _ := meta.Accessor(cur)
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, apierrors.NewConflict(h.GR(), req.name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	switch req.sub {
	case "status":
		// A status write changes only status.
		st := cur.DeepCopyObject()
		registry.CopyStatus(st, obj)
		obj = st
		m, _ = meta.Accessor(obj)
	case "finalize":
		st := cur.DeepCopyObject().(*corev1.Namespace)
		st.Spec.Finalizers = obj.(*corev1.Namespace).Spec.Finalizers
		obj = st
		m = st
	default:
		if h.HasStatus() {
			registry.CopyStatus(obj, cur)
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(h.GVK)
	m.SetNamespace(cm.GetNamespace())
	m.SetUID(cm.GetUID())
	m.SetCreationTimestamp(cm.GetCreationTimestamp())
	m.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	m.SetGeneration(cm.GetGeneration())
	m.SetResourceVersion(cm.GetResourceVersion())
	if cm.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) > len(cm.GetFinalizers()) {
		return nil, apierrors.NewInvalid(h.GVK.GroupKind(), req.name, field.ErrorList{field.Forbidden(field.NewPath("metadata", "finalizers"), "no new finalizers can be added if the object is being deleted")})
	}
	carryAllocated(obj, cur)
	if h.Default != nil {
		h.Default(obj)
	}
	if h.HasStatus() && req.sub != "status" && registry.SpecChanged(obj, cur) {
		m.SetGeneration(cm.GetGeneration() + 1)
	}
	if !req.applied {
		obj = h.trackFields(cur, obj, req)
	}
	if err := h.validate(obj, cur); err != nil {
		return nil, err
	}
	return obj, nil
}

// trackFields records in managedFields which fields this write's manager
// set, as upstream does for every write, so later server-side applies see
// who owns what.
func (h *resourceHandler) trackFields(live, obj runtime.Object, req *request) runtime.Object {
	if req.manager == "" {
		return obj
	}
	fm, err := h.fieldManager(req.sub)
	if err != nil {
		return obj
	}
	return fm.UpdateNoErrors(live, obj, req.manager)
}

// finishIfDeleted removes an object whose deletion waited only on finalizers
// that are now gone.
func (h *resourceHandler) finishIfDeleted(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	m, _ := meta.Accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return obj, nil
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return obj, nil // a pod still terminating on its node
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return obj, nil
	}
	_, err := h.store.Delete(ctx, h.store.Key(m.GetNamespace(), m.GetName()), m.GetName(), m.GetUID(), nil)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	h.afterDelete(ctx, obj)
	return obj, nil
}

// nsLiveLookup is how long after this server marked a namespace deleted its
// state is read from etcd rather than from the cache, which may not show the
// deletion yet (upstream's NamespaceLifecycle admission does the same).
const nsLiveLookup = 30 * time.Second

// markNamespaceDeleted starts the live lookups of ns, and forgets namespaces
// whose window has passed.
func (s *Server) markNamespaceDeleted(ns string) {
	now := time.Now()
	s.nsDeleted.Range(func(k, at any) bool {
		if now.Sub(at.(time.Time)) >= nsLiveLookup {
			s.nsDeleted.CompareAndDelete(k, at)
		}
		return true
	})
	s.nsDeleted.Store(ns, now)
}

// namespaceAccepts refuses objects in missing or terminating namespaces.
func (s *Server) namespaceAccepts(ctx context.Context, ns string) error {
	nh := s.byGR[registry.Namespaces.GR()]
	// The cache answers the common case; a namespace it has not seen yet
	// (created a moment ago) or one deleted a moment ago is read from etcd.
	obj, ok := nh.store.CachedGet(nh.store.Key("", ns))
	if at, deleted := s.nsDeleted.Load(ns); deleted && time.Since(at.(time.Time)) < nsLiveLookup {
		ok = false
	}
	var err error
	if !ok {
		obj, err = nh.store.Get(ctx, nh.store.Key("", ns), ns)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return apierrors.NewNotFound(registry.Namespaces.GR(), ns)
		}
		return err
	}
	if n := obj.(*corev1.Namespace); n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		// With upstream's cause, so controllers can tell this from RBAC.
		err := apierrors.NewForbidden(registry.Namespaces.GR(), ns,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Message: fmt.Sprintf("namespace %s is being terminated", ns), Field: "metadata.namespace"})
		return err
	}
	return nil
}
