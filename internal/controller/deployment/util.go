package deployment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/dump"
)

// Annotation keys and condition reasons as upstream spells them; kubectl reads them.
const (
	RevisionAnnotation        = "deployment.kubernetes.io/revision"
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"

	NewReplicaSetReason         = "NewReplicaSetCreated"
	FoundNewRSReason            = "FoundNewReplicaSet"
	ReplicaSetUpdatedReason     = "ReplicaSetUpdated"
	NewRSAvailableReason        = "NewReplicaSetAvailable"
	TimedOutReason              = "ProgressDeadlineExceeded"
	PausedDeployReason          = "DeploymentPaused"
	ResumedDeployReason         = "DeploymentResumed"
	MinimumReplicasAvailable    = "MinimumReplicasAvailable"
	MinimumReplicasUnavailable  = "MinimumReplicasUnavailable"
	FailedRSCreateReason        = "ReplicaSetCreateError"
	ScalingReplicaSetReason     = "ScalingReplicaSet"
	SelectingAllReason          = "SelectingAll"
	lastAppliedConfigAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
)

// ComputeHash returns the pod-template-hash of a template: FNV-32a over the
// template's deep-printed form, then the collision count, encoded so it is a
// safe name suffix. It matches upstream so names agree across controllers.
func ComputeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*template))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash compares templates without the pod-template-hash label.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a1, b1 := a.DeepCopy(), b.DeepCopy()
	delete(a1.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b1.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a1, b1)
}

// Revision parses an object's revision annotation; absent or bad is 0.
func Revision(annotations map[string]string) int64 {
	v, err := strconv.ParseInt(annotations[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

func deploymentReplicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// sortByCreation orders oldest first, ties by name.
func sortByCreation(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		a, b := rss[i].CreationTimestamp, rss[j].CreationTimestamp
		if a.Equal(&b) {
			return rss[i].Name < rss[j].Name
		}
		return a.Before(&b)
	})
}

// sortByRevision orders lowest revision first.
func sortByRevision(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		ri, rj := Revision(rss[i].Annotations), Revision(rss[j].Annotations)
		if ri == rj {
			a, b := rss[i].CreationTimestamp, rss[j].CreationTimestamp
			return a.Before(&b)
		}
		return ri < rj
	})
}

// FindNewReplicaSet returns the oldest ReplicaSet whose template equals the
// deployment's, ignoring the hash label.
func FindNewReplicaSet(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sorted := append([]*appsv1.ReplicaSet(nil), rss...)
	sortByCreation(sorted)
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// FindOldReplicaSets splits the rest into all old ones and the active (non-zero) old ones.
func FindOldReplicaSets(newRS *appsv1.ReplicaSet, rss []*appsv1.ReplicaSet) (old []*appsv1.ReplicaSet) {
	for _, rs := range rss {
		if newRS != nil && rs.UID == newRS.UID {
			continue
		}
		old = append(old, rs)
	}
	return old
}

func activeReplicaSets(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// MaxRevision is the highest revision among rss.
func MaxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		if v := Revision(rs.Annotations); v > m {
			m = v
		}
	}
	return m
}

// skipCopyAnnotation lists deployment annotations that are not copied to its ReplicaSets.
func skipCopyAnnotation(k string) bool {
	switch k {
	case lastAppliedConfigAnnotation, RevisionAnnotation, RevisionHistoryAnnotation,
		DesiredReplicasAnnotation, MaxReplicasAnnotation, "deprecated.deployment.rollback.to":
		return true
	}
	return false
}

// copyDeploymentAnnotations copies d's annotations onto rs; reports a change.
func copyDeploymentAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	changed := false
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for k, v := range d.Annotations {
		if skipCopyAnnotation(k) {
			continue
		}
		if cur, ok := rs.Annotations[k]; !ok || cur != v {
			rs.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

// setReplicasAnnotations sets desired- and max-replicas; reports a change.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, max int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	ds, ms := strconv.Itoa(int(desired)), strconv.Itoa(int(max))
	if rs.Annotations[DesiredReplicasAnnotation] == ds && rs.Annotations[MaxReplicasAnnotation] == ms {
		return false
	}
	rs.Annotations[DesiredReplicasAnnotation] = ds
	rs.Annotations[MaxReplicasAnnotation] = ms
	return true
}

// setNewReplicaSetRevision raises rs's revision to newRevision, remembering the
// old one in revision-history as upstream does; reports a change.
func setNewReplicaSetRevision(rs *appsv1.ReplicaSet, newRevision int64) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	old, had := rs.Annotations[RevisionAnnotation]
	oldRev := Revision(rs.Annotations)
	if had && oldRev >= newRevision {
		return false
	}
	if had && old != "" {
		if h := rs.Annotations[RevisionHistoryAnnotation]; h == "" {
			rs.Annotations[RevisionHistoryAnnotation] = old
		} else {
			rs.Annotations[RevisionHistoryAnnotation] = h + "," + old
		}
	}
	rs.Annotations[RevisionAnnotation] = strconv.FormatInt(newRevision, 10)
	return true
}

// setDeploymentRevision sets d's revision annotation; reports a change.
func setDeploymentRevision(d *appsv1.Deployment, rev string) bool {
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	if d.Annotations[RevisionAnnotation] == rev {
		return false
	}
	d.Annotations[RevisionAnnotation] = rev
	return true
}
