package scheduler

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUnschedulablePatch(t *testing.T) {
	earlier := metav1.NewTime(time.Unix(1000, 0))
	now := metav1.NewTime(time.Unix(2000, 0))
	const msg = "0/2 nodes are available: 2 Insufficient cpu."
	withCond := func(status corev1.ConditionStatus, reason, message string) *corev1.Pod {
		p := makePod("", "")
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: status, Reason: reason, Message: message, LastTransitionTime: earlier}}
		return p
	}
	tests := []struct {
		name           string
		pod            *corev1.Pod
		wantPatch      bool
		wantTransition metav1.Time
	}{
		{name: "no condition yet", pod: makePod("", ""), wantPatch: true, wantTransition: now},
		{name: "same message already", pod: withCond(corev1.ConditionFalse, corev1.PodReasonUnschedulable, msg)},
		{name: "new message keeps the transition time", pod: withCond(corev1.ConditionFalse, corev1.PodReasonUnschedulable, "0/1 nodes are available: 1 Too many pods."),
			wantPatch: true, wantTransition: earlier},
		{name: "from True", pod: withCond(corev1.ConditionTrue, "", ""), wantPatch: true, wantTransition: now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := unschedulablePatch(tc.pod, msg, now)
			if ok != tc.wantPatch {
				t.Fatalf("patch = %v, want %v", ok, tc.wantPatch)
			}
			if !ok {
				return
			}
			var got struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Status   corev1.PodStatus  `json:"status"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Metadata.UID != tc.pod.UID || len(got.Status.Conditions) != 1 {
				t.Fatalf("patch %s", b)
			}
			c := got.Status.Conditions[0]
			if c.Type != corev1.PodScheduled || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable || c.Message != msg ||
				!c.LastTransitionTime.Equal(&tc.wantTransition) {
				t.Errorf("condition %+v", c)
			}
		})
	}
}
