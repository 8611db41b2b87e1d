package deployment

import (
	"fmt"
	"math"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ResolveFenceposts turns maxSurge and maxUnavailable into counts for desired
// replicas: surge rounds up, unavailable rounds down, and if both come to 0
// unavailable becomes 1 so a rollout can make progress.
func ResolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (int32, int32, error) {
	zero := intstr.FromInt32(0)
	if maxSurge == nil {
		maxSurge = &zero
	}
	if maxUnavailable == nil {
		maxUnavailable = &zero
	}
	surge, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(desired), true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(desired), false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable), nil
}

// MaxSurge is d's resolved maxSurge; 0 for Recreate.
func MaxSurge(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil {
		return 0
	}
	s, _, _ := ResolveFenceposts(d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, deploymentReplicas(d))
	return s
}

// MaxUnavailable is d's resolved maxUnavailable, never above replicas; 0 for Recreate.
func MaxUnavailable(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil || deploymentReplicas(d) == 0 {
		return 0
	}
	_, u, _ := ResolveFenceposts(d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, deploymentReplicas(d))
	if u > deploymentReplicas(d) {
		return deploymentReplicas(d)
	}
	return u
}

func sumSpecReplicas(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		n += replicas(rs)
	}
	return n
}

func sumStatus(rss []*appsv1.ReplicaSet, f func(*appsv1.ReplicaSetStatus) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += f(&rs.Status)
		}
	}
	return n
}

// NewRSNewReplicas is the size the new ReplicaSet may take now: for
// RollingUpdate it grows as far as replicas+maxSurge allows, never past
// replicas; for Recreate it is replicas.
func NewRSNewReplicas(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (int32, error) {
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return deploymentReplicas(d), nil
	case appsv1.RollingUpdateDeploymentStrategyType:
		maxTotal := deploymentReplicas(d) + MaxSurge(d)
		current := sumSpecReplicas(allRSs)
		if current >= maxTotal {
			return replicas(newRS), nil
		}
		up := min(maxTotal-current, deploymentReplicas(d)-replicas(newRS))
		return replicas(newRS) + up, nil
	default:
		return 0, fmt.Errorf("deployment strategy type %q not supported", d.Spec.Strategy.Type)
	}
}

// Scale is a target size for one ReplicaSet.
type Scale struct {
	RS       *appsv1.ReplicaSet
	Replicas int32
}

// MaxScaleDown is how many old pods may go now without availability dropping
// below replicas-maxUnavailable, counting the new ReplicaSet's unavailable pods
// as already missing.
func MaxScaleDown(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	minAvailable := deploymentReplicas(d) - MaxUnavailable(d)
	newUnavailable := int32(0)
	if newRS != nil {
		newUnavailable = replicas(newRS) - newRS.Status.AvailableReplicas
	}
	return sumSpecReplicas(allRSs) - minAvailable - newUnavailable
}

// CleanupUnhealthy scales down old ReplicaSets' unavailable pods first
// (oldest first), up to maxCleanup; it returns the new sizes and the total.
func CleanupUnhealthy(oldRSs []*appsv1.ReplicaSet, maxCleanup int32) ([]Scale, int32) {
	sorted := append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sortByCreation(sorted)
	var out []Scale
	var total int32
	for _, rs := range sorted {
		if total >= maxCleanup {
			break
		}
		if replicas(rs) == 0 {
			continue
		}
		unhealthy := replicas(rs) - rs.Status.AvailableReplicas
		if unhealthy <= 0 {
			continue
		}
		down := min(maxCleanup-total, unhealthy)
		out = append(out, Scale{RS: rs, Replicas: replicas(rs) - down})
		total += down
	}
	return out, total
}

// ScaleDownOld scales old ReplicaSets down (oldest first) by as many pods as
// are available beyond replicas-maxUnavailable.
func ScaleDownOld(d *appsv1.Deployment, allRSs, oldRSs []*appsv1.ReplicaSet) []Scale {
	minAvailable := deploymentReplicas(d) - MaxUnavailable(d)
	// A ReplicaSet just scaled down may still report the pods it is
	// deleting as available: count no more than its size.
	var available int32
	for _, rs := range allRSs {
		available += min(rs.Status.AvailableReplicas, replicas(rs))
	}
	if available <= minAvailable {
		return nil
	}
	budget := available - minAvailable
	sorted := append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sortByCreation(sorted)
	var out []Scale
	var total int32
	for _, rs := range sorted {
		if total >= budget {
			break
		}
		if replicas(rs) == 0 {
			continue
		}
		down := min(replicas(rs), budget-total)
		out = append(out, Scale{RS: rs, Replicas: replicas(rs) - down})
		total += down
	}
	return out
}

// ProportionalScale spreads a change of the deployment's size over its active
// ReplicaSets in proportion to their sizes, so a scale during a rollout keeps
// the ratio of old to new; leftovers go to the largest (newest on a tie).
func ProportionalScale(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet) []Scale {
	active := activeReplicaSets(allRSs)
	allowed := deploymentReplicas(d) + MaxSurge(d)
	current := sumSpecReplicas(active)
	toAdd := allowed - current
	if toAdd == 0 || current == 0 {
		return nil
	}
	sort.SliceStable(active, func(i, j int) bool {
		if replicas(active[i]) != replicas(active[j]) {
			if toAdd > 0 {
				return replicas(active[i]) > replicas(active[j])
			}
			return replicas(active[i]) < replicas(active[j])
		}
		a, b := active[i].CreationTimestamp, active[j].CreationTimestamp
		return b.Before(&a)
	})
	sizes := make([]int32, len(active))
	var added int32
	for i, rs := range active {
		p := int32(math.Round(float64(replicas(rs)) * float64(toAdd) / float64(current)))
		if toAdd > 0 {
			p = min(p, toAdd-added)
		} else {
			p = max(p, toAdd-added)
		}
		sizes[i] = replicas(rs) + p
		added += p
	}
	if len(active) > 0 {
		sizes[0] += toAdd - added
	}
	var out []Scale
	for i, rs := range active {
		if sizes[i] < 0 {
			// A negative share moves to the next ReplicaSet; rare with rounding.
			if i+1 < len(sizes) {
				sizes[i+1] += sizes[i]
			}
			sizes[i] = 0
		}
		out = append(out, Scale{RS: rs, Replicas: sizes[i]})
	}
	return out
}

// CalculateStatus computes a deployment's status from its ReplicaSets,
// keeping its conditions and updating Available.
func CalculateStatus(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	available := sumStatus(allRSs, func(s *appsv1.ReplicaSetStatus) int32 { return s.AvailableReplicas })
	unavailable := max(sumSpecReplicas(allRSs)-available, 0)
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            sumStatus(allRSs, func(s *appsv1.ReplicaSetStatus) int32 { return s.Replicas }),
		ReadyReplicas:       sumStatus(allRSs, func(s *appsv1.ReplicaSetStatus) int32 { return s.ReadyReplicas }),
		AvailableReplicas:   available,
		UnavailableReplicas: unavailable,
		CollisionCount:      d.Status.CollisionCount,
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	for _, c := range d.Status.Conditions {
		st.Conditions = append(st.Conditions, *c.DeepCopy())
	}
	if available >= deploymentReplicas(d)-MaxUnavailable(d) {
		SetCondition(&st, NewCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, MinimumReplicasAvailable, "Deployment has minimum availability.", now))
	} else {
		SetCondition(&st, NewCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, MinimumReplicasUnavailable, "Deployment does not have minimum availability.", now))
	}
	return st
}

// NewCondition makes a condition stamped now.
func NewCondition(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg, LastUpdateTime: ts, LastTransitionTime: ts}
}

// GetCondition returns the condition of type t, or nil.
func GetCondition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// SetCondition sets c unless one with the same status and reason is there;
// the transition time is kept when the status does not change.
func SetCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := GetCondition(*st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	RemoveCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

// RemoveCondition drops the condition of type t.
func RemoveCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	out := st.Conditions[:0]
	for _, c := range st.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	st.Conditions = out
}

// HasProgressDeadline reports whether d's progress is tracked.
func HasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// DeploymentComplete reports whether all replicas are updated and available
// and the latest generation was observed.
func DeploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	n := deploymentReplicas(d)
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// DeploymentProgressing reports whether st moved forward from d.Status.
func DeploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// DeploymentTimedOut reports whether the Progressing condition was last
// updated more than progressDeadlineSeconds ago.
func DeploymentTimedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) bool {
	if !HasProgressDeadline(d) {
		return false
	}
	c := GetCondition(*st, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == NewRSAvailableReason {
		return false
	}
	if c.Reason == TimedOutReason {
		return true
	}
	return c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Before(now)
}

// RolloutStatus computes status and the Progressing condition after a rollout step.
func RolloutStatus(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	st := CalculateStatus(d, allRSs, newRS, now)
	if !HasProgressDeadline(d) {
		RemoveCondition(&st, appsv1.DeploymentProgressing)
	}
	cur := GetCondition(st, appsv1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == NewRSAvailableReason
	if HasProgressDeadline(d) && !complete {
		switch {
		case DeploymentComplete(d, &st):
			msg := fmt.Sprintf("Deployment %q has successfully progressed.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
			}
			SetCondition(&st, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, NewRSAvailableReason, msg, now))
		case DeploymentProgressing(d, &st):
			msg := fmt.Sprintf("Deployment %q is progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
			}
			c := NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReplicaSetUpdatedReason, msg, now)
			// Progress refreshes lastUpdateTime (the deadline's start) even
			// when the reason stays the same.
			if cur != nil && cur.Status == corev1.ConditionTrue {
				c.LastTransitionTime = cur.LastTransitionTime
			}
			RemoveCondition(&st, appsv1.DeploymentProgressing)
			SetCondition(&st, c)
		case DeploymentTimedOut(d, &st, now):
			msg := fmt.Sprintf("Deployment %q has timed out progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name)
			}
			SetCondition(&st, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, TimedOutReason, msg, now))
		}
	}
	// Surface a ReplicaSet's failure to create pods (quota, admission) on the deployment.
	if f := replicaFailure(allRSs, newRS); f != nil {
		SetCondition(&st, *f)
	} else {
		RemoveCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	return st
}

// replicaFailure is the ReplicaFailure condition of the new ReplicaSet, or
// else of any ReplicaSet, as a deployment condition.
func replicaFailure(allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	find := func(rs *appsv1.ReplicaSet) *appsv1.DeploymentCondition {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return &appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason,
					Message: c.Message, LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime}
			}
		}
		return nil
	}
	if newRS != nil {
		if f := find(newRS); f != nil {
			return f
		}
	}
	for _, rs := range allRSs {
		if rs != nil {
			if f := find(rs); f != nil {
				return f
			}
		}
	}
	return nil
}

// PausedCondition updates Progressing for a pause or resume; reports a change.
func PausedCondition(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) bool {
	if !HasProgressDeadline(d) {
		return false
	}
	c := GetCondition(*st, appsv1.DeploymentProgressing)
	pausedCond := c != nil && c.Reason == PausedDeployReason
	switch {
	case d.Spec.Paused && !pausedCond:
		SetCondition(st, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, PausedDeployReason, "Deployment is paused", now))
		return true
	case !d.Spec.Paused && pausedCond:
		SetCondition(st, NewCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ResumedDeployReason, "Deployment is resumed", now))
		return true
	}
	return false
}

// CleanableReplicaSets returns the old ReplicaSets to delete to keep at most
// limit of them: the lowest revisions among those fully scaled to zero.
func CleanableReplicaSets(oldRSs []*appsv1.ReplicaSet, limit int32) []*appsv1.ReplicaSet {
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs.DeletionTimestamp == nil && replicas(rs) == 0 && rs.Status.Replicas == 0 && rs.Status.ObservedGeneration >= rs.Generation {
			cleanable = append(cleanable, rs)
		}
	}
	diff := int32(len(cleanable)) - limit
	if diff <= 0 {
		return nil
	}
	sortByRevision(cleanable)
	return cleanable[:diff]
}

// ScalingEvent reports whether d's size differs from what its active
// ReplicaSets were last sized for (their desired-replicas annotation).
func ScalingEvent(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet) bool {
	for _, rs := range activeReplicaSets(allRSs) {
		v, ok := rs.Annotations[DesiredReplicasAnnotation]
		if !ok {
			continue
		}
		if v != fmt.Sprint(deploymentReplicas(d)) {
			return true
		}
	}
	return false
}
