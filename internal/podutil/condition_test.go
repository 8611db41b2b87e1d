package podutil

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetConditionReplacesByTypeAndKeepsTransitionTime(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	cond := func(s corev1.ConditionStatus, reason string, at metav1.Time) corev1.PodCondition {
		return corev1.PodCondition{Type: corev1.DisruptionTarget, Status: s, Reason: reason, LastTransitionTime: at}
	}
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	for _, tc := range []struct {
		name        string
		have        []corev1.PodCondition
		set         corev1.PodCondition
		wantChanged bool
		want        []corev1.PodCondition
	}{
		{"added", []corev1.PodCondition{ready}, cond("True", "A", t1), true,
			[]corev1.PodCondition{ready, cond("True", "A", t1)}},
		{"same again: one condition, old time, no change", []corev1.PodCondition{cond("True", "A", t0)}, cond("True", "A", t1), false,
			[]corev1.PodCondition{cond("True", "A", t0)}},
		{"new reason, same status: old time", []corev1.PodCondition{cond("True", "A", t0)}, cond("True", "B", t1), true,
			[]corev1.PodCondition{cond("True", "B", t0)}},
		{"status flips: new time", []corev1.PodCondition{ready, cond("False", "A", t0)}, cond("True", "A", t1), true,
			[]corev1.PodCondition{ready, cond("True", "A", t1)}},
	} {
		st := corev1.PodStatus{Conditions: tc.have}
		if got := SetCondition(&st, tc.set); got != tc.wantChanged {
			t.Errorf("%s: changed = %v, want %v", tc.name, got, tc.wantChanged)
		}
		if len(st.Conditions) != len(tc.want) {
			t.Fatalf("%s: conditions %v, want %v", tc.name, st.Conditions, tc.want)
		}
		for i := range tc.want {
			if !st.Conditions[i].LastTransitionTime.Equal(&tc.want[i].LastTransitionTime) || st.Conditions[i].Reason != tc.want[i].Reason || st.Conditions[i].Status != tc.want[i].Status {
				t.Errorf("%s: condition %d = %+v, want %+v", tc.name, i, st.Conditions[i], tc.want[i])
			}
		}
	}
}
