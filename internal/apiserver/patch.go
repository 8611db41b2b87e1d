package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sync"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
)

var (
	typeConverterOnce sync.Once
	typeConverter     managedfields.TypeConverter
)

// defaulter adapts a resource's Default to runtime.ObjectDefaulter.
type defaulter struct{ h *resourceHandler }

func (d defaulter) Default(obj runtime.Object) {
	if d.h.Default != nil {
		d.h.Default(obj)
	}
}

// fieldManager returns the server-side apply field manager for this resource.
func (h *resourceHandler) fieldManager(sub string) (*managedfields.FieldManager, error) {
	typeConverterOnce.Do(func() { typeConverter = applyconfigurations.NewTypeConverter(scheme.Scheme) })
	h.fmMu.Lock()
	defer h.fmMu.Unlock()
	if fm, ok := h.fms[sub]; ok {
		return fm, nil
	}
	fm, err := managedfields.NewDefaultFieldManager(typeConverter, scheme.Scheme, defaulter{h}, scheme.Scheme, h.GVK, h.GVK.GroupVersion(), sub, nil)
	if err != nil {
		return nil, err
	}
	if h.fms == nil {
		h.fms = map[string]*managedfields.FieldManager{}
	}
	h.fms[sub] = fm
	return fm, nil
}

func (h *resourceHandler) patch(w http.ResponseWriter, r *http.Request, req *request) error {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return unsupportedMediaType(r.Header.Get("Content-Type"))
	}
	pt := types.PatchType(ct)
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
	default:
		return unsupportedMediaType(ct)
	}
	if pt == types.ApplyCBORPatchType {
		return unsupportedMediaType(ct)
	}
	mode, err := fieldValidation(r)
	if err != nil {
		return err
	}
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if req.sub == "scale" {
		return h.updateScale(w, r, req, func(cur []byte) ([]byte, error) { return applyPatch(pt, cur, body, &autoscalingScale{}) })
	}
	if pt == types.ApplyYAMLPatchType {
		return h.apply(w, r, req, body, mode, dry)
	}
	out, err := h.updateObject(r.Context(), req, dry, func(cur runtime.Object) (runtime.Object, error) {
		curJSON, err := json.Marshal(cur)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		patched, err := applyPatch(pt, curJSON, body, h.New())
		if err != nil {
			return nil, err
		}
		obj, strictErr, err := decodeBody(mimeJSON, patched, h.GVK, h.New())
		if err != nil {
			return nil, err
		}
		if err := handleStrict(w, h.GVK.Kind, h.GVK.Version, mode, strictErr); err != nil {
			return nil, err
		}
		m, _ := meta.Accessor(obj)
		if m.GetName() != req.name {
			return nil, badRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), req.name))
		}
		return obj, nil
	})
	if err != nil {
		return err
	}
	return h.respond(w, r, http.StatusOK, out)
}

// applyPatch applies a JSON, merge or strategic-merge patch to cur.
func applyPatch(pt types.PatchType, cur, patch []byte, schemaObj any) ([]byte, error) {
	var out []byte
	var err error
	switch pt {
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(patch); err == nil {
			out, err = p.Apply(cur)
		}
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(cur, patch)
	case types.StrategicMergePatchType:
		out, err = strategicpatch.StrategicMergePatch(cur, patch, schemaObj)
	default:
		return nil, unsupportedMediaType(string(pt))
	}
	if err != nil {
		if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			return nil, err
		}
		return nil, badRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	return out, nil
}

// apply is server-side apply: the patch is the applier's whole intent, merged
// with what other managers own; the object is created if missing.
func (h *resourceHandler) apply(w http.ResponseWriter, r *http.Request, req *request, body []byte, mode string, dry bool) error {
	q := r.URL.Query()
	manager := q.Get("fieldManager")
	if manager == "" {
		return badRequest("PATCH requests with apply content type must have a fieldManager query parameter")
	}
	force := q.Get("force") == "true"
	req.applied = true
	applied, strictErr, err := decodeBody(mimeYAML, body, h.GVK, h.New())
	if err != nil {
		return err
	}
	if err := handleStrict(w, h.GVK.Kind, h.GVK.Version, mode, strictErr); err != nil {
		return err
	}
	fm, err := h.fieldManager(req.sub)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	am, _ := meta.Accessor(applied)
	if am.GetName() != req.name {
		return badRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", am.GetName(), req.name))
	}
	_, err = h.store.Get(r.Context(), h.key(req), req.name)
	if apierrors.IsNotFound(err) && req.sub == "" {
		empty := h.New()
		em, _ := meta.Accessor(empty)
		em.SetName(req.name)
		em.SetNamespace(req.namespace)
		obj, err := fm.Apply(empty, applied, manager, force)
		if err != nil {
			return applyError(err)
		}
		obj.GetObjectKind().SetGroupVersionKind(h.GVK)
		out, err := h.createObject(r.Context(), obj, req, dry)
		if err != nil {
			return err
		}
		return h.respond(w, r, http.StatusCreated, out)
	} else if err != nil {
		return err
	}
	out, err := h.updateObject(r.Context(), req, dry, func(cur runtime.Object) (runtime.Object, error) {
		obj, err := fm.Apply(cur.DeepCopyObject(), applied.DeepCopyObject(), manager, force)
		if err != nil {
			return nil, applyError(err)
		}
		return obj, nil
	})
	if err != nil {
		return err
	}
	return h.respond(w, r, http.StatusOK, out)
}

func applyError(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewBadRequest(err.Error())
}
