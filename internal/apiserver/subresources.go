package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/podutil"
)

type autoscalingScale = autoscalingv1.Scale

// scaleOf reads replicas and selector from any workload with spec.replicas
// (Deployment, ReplicaSet, ReplicationController) by reflection.
func scaleOf(obj runtime.Object) *autoscalingv1.Scale {
	m, _ := meta.Accessor(obj)
	sc := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
	}
	v := reflect.ValueOf(obj).Elem()
	spec, status := v.FieldByName("Spec"), v.FieldByName("Status")
	if r := spec.FieldByName("Replicas"); r.IsValid() && !r.IsNil() {
		sc.Spec.Replicas = int32(r.Elem().Int())
	}
	if r := status.FieldByName("Replicas"); r.IsValid() {
		sc.Status.Replicas = int32(r.Int())
	}
	switch sel := spec.FieldByName("Selector").Interface().(type) {
	case *metav1.LabelSelector:
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			sc.Status.Selector = s.String()
		}
	case map[string]string:
		sc.Status.Selector = labels.SelectorFromSet(sel).String()
	}
	return sc
}

func setReplicas(obj runtime.Object, n int32) {
	r := reflect.ValueOf(obj).Elem().FieldByName("Spec").FieldByName("Replicas")
	r.Set(reflect.ValueOf(&n))
}

func (h *resourceHandler) respondScale(w http.ResponseWriter, r *http.Request, obj runtime.Object) error {
	out, ok := negotiate(r)
	if !ok {
		return notAcceptable()
	}
	writeObject(w, r, http.StatusOK, out, scaleOf(obj))
	return nil
}

// updateScale serves PUT (patch == nil) and PATCH of the scale subresource.
func (h *resourceHandler) updateScale(w http.ResponseWriter, r *http.Request, req *request, patch func(cur []byte) ([]byte, error)) error {
	var body []byte
	if patch == nil {
		b, err := readBody(r)
		if err != nil {
			return err
		}
		body = b
	}
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	scaleGVK := schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
	out, err := h.updateObject(r.Context(), req, dry, func(cur runtime.Object) (runtime.Object, error) {
		curScale := scaleOf(cur)
		data := body
		if patch != nil {
			curJSON, _ := json.Marshal(curScale)
			p, err := patch(curJSON)
			if err != nil {
				return nil, err
			}
			data = p
		}
		obj, _, err := decodeBody(r.Header.Get("Content-Type"), data, scaleGVK, &autoscalingv1.Scale{})
		if patch != nil {
			obj, _, err = decodeBody(mimeJSON, data, scaleGVK, &autoscalingv1.Scale{})
		}
		if err != nil {
			return nil, err
		}
		sc := obj.(*autoscalingv1.Scale)
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), req.name, field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		if sc.ResourceVersion != "" && sc.ResourceVersion != curScale.ResourceVersion {
			return nil, apierrors.NewConflict(h.GR(), req.name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		next := cur.DeepCopyObject()
		setReplicas(next, sc.Spec.Replicas)
		return next, nil
	})
	if err != nil {
		return err
	}
	return h.respondScale(w, r, out)
}

// bind assigns a pod to a node (pods/binding), as the scheduler does.
func (h *resourceHandler) bind(w http.ResponseWriter, r *http.Request, req *request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj, _, err := decodeBody(r.Header.Get("Content-Type"), body, corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{})
	if err != nil {
		return err
	}
	b := obj.(*corev1.Binding)
	if b.Target.Name == "" {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), req.name, field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	_, err = h.store.GuaranteedUpdate(r.Context(), h.key(req), req.name, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.DeepCopyObject().(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(h.GR(), req.name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(h.GR(), req.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", req.name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(h.GR(), req.name, fmt.Errorf("pod %s is already assigned to node %q", req.name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		podutil.SetCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	})
	if err != nil {
		return err
	}
	writeObject(w, r, http.StatusCreated, output{mediaType: mimeJSON}, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return nil
}

// evict deletes a pod through pods/eviction. No PodDisruptionBudgets are
// served yet, so every eviction is allowed.
func (h *resourceHandler) evict(w http.ResponseWriter, r *http.Request, req *request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj, _, err := decodeBody(r.Header.Get("Content-Type"), body, policyv1.SchemeGroupVersion.WithKind("Eviction"), &policyv1.Eviction{})
	if err != nil {
		return err
	}
	ev := obj.(*policyv1.Eviction)
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if _, _, err := h.deleteObject(r.Context(), req.namespace, req.name, opts); err != nil {
		return err
	}
	writeObject(w, r, http.StatusCreated, output{mediaType: mimeJSON}, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return nil
}
