package replicaset

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kind says which API type a workload is stored as.
type kind int

const (
	kindReplicaSet kind = iota
	kindReplicationController
)

func (k kind) String() string {
	if k == kindReplicationController {
		return "ReplicationController"
	}
	return "ReplicaSet"
}

func (k kind) gvk() schema.GroupVersionKind {
	if k == kindReplicationController {
		return corev1.SchemeGroupVersion.WithKind("ReplicationController")
	}
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}

// kindOfRef returns the kind an owner reference points at, if it is one of ours.
func kindOfRef(ref *metav1.OwnerReference) (kind, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return 0, false
	}
	switch {
	case ref.Kind == "ReplicaSet" && gv.Group == appsv1.GroupName:
		return kindReplicaSet, true
	case ref.Kind == "ReplicationController" && gv.Group == corev1.GroupName:
		return kindReplicationController, true
	}
	return 0, false
}

// objectKey names one workload in the work queue and in expectations; the
// kind keeps a ReplicaSet and an RC of the same name apart.
type objectKey struct {
	kind      kind
	namespace string
	name      string
}

func (k objectKey) String() string {
	return fmt.Sprintf("%s %s/%s", k.kind, k.namespace, k.name)
}

// workload is the one view the sync loop works on: a ReplicaSet as stored, or
// a ReplicationController converted to a ReplicaSet (its equality selector
// becoming matchLabels), as upstream's RC adapter does.
type workload struct {
	key objectKey
	obj runtime.Object     // as stored: the object events are about
	rs  *appsv1.ReplicaSet // common view; never mutate (may be the lister's)
}

func fromReplicaSet(rs *appsv1.ReplicaSet) *workload {
	return &workload{key: objectKey{kindReplicaSet, rs.Namespace, rs.Name}, obj: rs, rs: rs}
}

func fromReplicationController(rc *corev1.ReplicationController) *workload {
	return &workload{key: objectKey{kindReplicationController, rc.Namespace, rc.Name}, obj: rc, rs: rcToRS(rc)}
}

// rcToRS converts an RC to the common ReplicaSet view.
func rcToRS(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: *rc.ObjectMeta.DeepCopy()}
	if rc.Spec.Replicas != nil {
		r := *rc.Spec.Replicas
		rs.Spec.Replicas = &r
	}
	rs.Spec.MinReadySeconds = rc.Spec.MinReadySeconds
	if rc.Spec.Selector != nil {
		ml := make(map[string]string, len(rc.Spec.Selector))
		for k, v := range rc.Spec.Selector {
			ml[k] = v
		}
		rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: ml}
	}
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template.DeepCopy()
	}
	st := rc.Status
	rs.Status = appsv1.ReplicaSetStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rs
}

// rcStatus converts the common status back to an RC's.
func rcStatus(st appsv1.ReplicaSetStatus) corev1.ReplicationControllerStatus {
	out := corev1.ReplicationControllerStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		out.Conditions = append(out.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return out
}
