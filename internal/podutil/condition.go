// Package podutil holds the small pod helpers several components share.
package podutil

import corev1 "k8s.io/api/core/v1"

// SetCondition puts c into status in place of any condition of its type, as
// upstream's UpdatePodCondition does: a condition whose status does not
// change keeps its LastTransitionTime. It reports whether anything but the
// probe and transition times changed, so callers can skip a needless write.
func SetCondition(status *corev1.PodStatus, c corev1.PodCondition) bool {
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		changed := old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message
		*old = c
		return changed
	}
	status.Conditions = append(status.Conditions, c)
	return true
}
