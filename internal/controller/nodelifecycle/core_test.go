package nodelifecycle

import (
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func node(ready corev1.ConditionStatus, unschedulable bool, taints ...corev1.Taint) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Unschedulable: unschedulable, Taints: taints}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: ready},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
		}
	}
	return n
}

func taint(key string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Effect: effect}
}

func TestWantTaints(t *testing.T) {
	then := metav1.NewTime(time.Unix(1000, 0))
	now := metav1.NewTime(time.Unix(2000, 0))
	unreachableOld := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &then}
	user := taint("example.com/dedicated", corev1.TaintEffectNoSchedule)
	cases := []struct {
		name    string
		node    *corev1.Node
		evict   bool
		want    []string
		changed bool
	}{
		{"ready node keeps user taints only", node(corev1.ConditionTrue, false, user), true, []string{"example.com/dedicated:NoSchedule"}, false},
		{"unknown gets unreachable NoSchedule and NoExecute", node(corev1.ConditionUnknown, false), true,
			[]string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute@2000"}, true},
		{"false gets not-ready, swapping unreachable", node(corev1.ConditionFalse, false, unreachableOld), true,
			[]string{"node.kubernetes.io/not-ready:NoSchedule", "node.kubernetes.io/not-ready:NoExecute@2000"}, true},
		{"existing NoExecute keeps its timeAdded", node(corev1.ConditionUnknown, false, unreachableOld, taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule)), true,
			[]string{"node.kubernetes.io/unreachable:NoExecute@1000", "node.kubernetes.io/unreachable:NoSchedule"}, false},
		{"recovered node loses both", node(corev1.ConditionTrue, false, unreachableOld, taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule), user), true,
			[]string{"example.com/dedicated:NoSchedule"}, true},
		{"full disruption: no NoExecute", node(corev1.ConditionUnknown, false, unreachableOld), false,
			[]string{"node.kubernetes.io/unreachable:NoSchedule"}, true},
		{"cordoned", node(corev1.ConditionTrue, true), true, []string{"node.kubernetes.io/unschedulable:NoSchedule"}, true},
		{"memory pressure", func() *corev1.Node {
			n := node(corev1.ConditionTrue, false)
			n.Status.Conditions[1].Status = corev1.ConditionTrue
			return n
		}(), true, []string{"node.kubernetes.io/memory-pressure:NoSchedule"}, true},
		{"no Ready condition yet: nothing", node("", false), true, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := wantTaints(tc.node, tc.evict, now)
			var names []string
			for _, tt := range got {
				s := tt.Key + ":" + string(tt.Effect)
				if tt.TimeAdded != nil {
					s += "@" + strconv.FormatInt(tt.TimeAdded.Unix(), 10)
				}
				names = append(names, s)
			}
			if !slices.Equal(names, tc.want) || changed != tc.changed {
				t.Fatalf("got %v changed=%v, want %v changed=%v", names, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestMarkUnknown(t *testing.T) {
	now := metav1.NewTime(time.Unix(5000, 0))
	hb := metav1.NewTime(time.Unix(100, 0))
	n := node(corev1.ConditionTrue, false)
	n.Status.Conditions[0].LastHeartbeatTime = hb
	got, changed := markUnknown(n, now)
	if !changed {
		t.Fatal("want changed")
	}
	if len(got.Status.Conditions) != 4 {
		t.Fatalf("conditions: %+v", got.Status.Conditions)
	}
	for _, c := range got.Status.Conditions {
		if c.Status != corev1.ConditionUnknown || !c.LastTransitionTime.Equal(&now) {
			t.Errorf("%s: %s at %v", c.Type, c.Status, c.LastTransitionTime)
		}
		switch c.Type {
		case corev1.NodeReady, corev1.NodeMemoryPressure:
			if c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." {
				t.Errorf("%s: %s %q", c.Type, c.Reason, c.Message)
			}
		default:
			if c.Reason != "NodeStatusNeverUpdated" {
				t.Errorf("%s: %s", c.Type, c.Reason)
			}
		}
	}
	if !got.Status.Conditions[0].LastHeartbeatTime.Equal(&hb) {
		t.Error("heartbeat must be kept")
	}
	if n.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Error("input modified")
	}
	if _, changed := markUnknown(got, now); changed {
		t.Error("already unknown: want unchanged")
	}
}

func TestEvictionTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	start := func(corev1.Taint) time.Time { return t0 }
	unreachable := taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	custom := corev1.Taint{Key: "example.com/evict", Value: "yes", Effect: corev1.TaintEffectNoExecute}
	tol := func(key string, secs *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	cases := []struct {
		name   string
		tols   []corev1.Toleration
		taints []corev1.Taint
		after  time.Duration
		never  bool
	}{
		{"no taints", nil, nil, 0, true},
		{"not tolerated: now", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](300))}, []corev1.Taint{unreachable, custom}, 0, false},
		{"tolerated for 2s", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](2))}, []corev1.Taint{unreachable}, 2 * time.Second, false},
		{"forever", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, nil)}, []corev1.Taint{unreachable}, 0, true},
		{"Exists without key tolerates all forever", []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, []corev1.Taint{unreachable, custom}, 0, true},
		{"shortest matching seconds wins", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](300)), tol("", ptr.To[int64](5))}, []corev1.Taint{unreachable}, 5 * time.Second, false},
		{"earliest over taints", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](30)), tol("example.com/evict", ptr.To[int64](10))}, []corev1.Taint{unreachable, custom}, 10 * time.Second, false},
		{"negative seconds: now", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](-1))}, []corev1.Taint{unreachable}, 0, false},
		{"NoSchedule toleration does not count", []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}, []corev1.Taint{unreachable}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at, never := evictionTime(tc.tols, tc.taints, start)
			if never != tc.never {
				t.Fatalf("never=%v, want %v", never, tc.never)
			}
			if never {
				return
			}
			want := t0.Add(tc.after)
			if tc.after == 0 && !at.IsZero() && !at.Equal(t0) {
				t.Fatalf("at %v, want now", at)
			}
			if tc.after > 0 && !at.Equal(want) {
				t.Fatalf("at %v, want %v", at, want)
			}
		})
	}
}
