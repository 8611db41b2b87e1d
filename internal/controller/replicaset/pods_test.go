package replicaset

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func node(n string) podOpt            { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func created(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(d)) }
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) { p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: n}} }
}
func podLabels(l map[string]string) podOpt { return func(p *corev1.Pod) { p.Labels = l } }
func cost(c string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{podDeletionCostAnnotation: c} }
}
func readySince(d time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(d))})
	}
}

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)}}
	p.Status.Phase = corev1.PodRunning
	p.Spec.NodeName = "n-" + name
	for _, o := range opts {
		o(p)
	}
	return p
}

func names(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func TestPodsToDeleteTakesLeastValuableFirst(t *testing.T) {
	tests := []struct {
		name string
		pods []*corev1.Pod
		n    int
		want []string
	}{
		{"unscheduled before scheduled", []*corev1.Pod{pod("a", readySince(0)), pod("b", node(""), phase(corev1.PodPending))}, 1, []string{"b"}},
		{"pending before unknown before running", []*corev1.Pod{
			pod("run", phase(corev1.PodRunning)), pod("unk", phase(corev1.PodUnknown)), pod("pend", phase(corev1.PodPending)),
		}, 2, []string{"pend", "unk"}},
		{"not ready before ready", []*corev1.Pod{pod("ready", readySince(0)), pod("notready")}, 1, []string{"notready"}},
		{"lower deletion cost first", []*corev1.Pod{pod("high", cost("10")), pod("low", cost("-5")), pod("none")}, 2, []string{"low", "none"}},
		{"doubled-up node first", []*corev1.Pod{pod("alone"), pod("x", node("shared")), pod("y", node("shared"), created(-time.Hour))}, 1, []string{"x"}},
		{"ready for less time first", []*corev1.Pod{pod("old", readySince(-time.Hour)), pod("new", readySince(-time.Minute))}, 1, []string{"new"}},
		{"more restarts first", []*corev1.Pod{pod("calm", restarts(0)), pod("crashy", restarts(7))}, 1, []string{"crashy"}},
		{"newer first", []*corev1.Pod{pod("older", created(-time.Hour)), pod("newer", created(time.Minute)), pod("oldest", created(-2*time.Hour))}, 2, []string{"newer", "older"}},
		{"all when n exceeds", []*corev1.Pod{pod("a"), pod("b")}, 5, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(podsToDelete(tt.pods, tt.n))
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestFilterActivePodsDropsTerminalAndDeleted(t *testing.T) {
	gone := pod("gone")
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	pods := []*corev1.Pod{pod("ok"), pod("done", phase(corev1.PodSucceeded)), pod("failed", phase(corev1.PodFailed)), gone, pod("pend", phase(corev1.PodPending))}
	got := names(filterActivePods(pods))
	if len(got) != 2 || got[0] != "ok" || got[1] != "pend" {
		t.Fatalf("active pods %v, want [ok pend]", got)
	}
}

func replicaSet(replicas, minReady int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "ns", Generation: 4},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, MinReadySeconds: minReady,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", "tier": "web"}}}},
	}
}

func TestCalculateStatus(t *testing.T) {
	full := map[string]string{"app": "a", "tier": "web"}
	partial := map[string]string{"app": "a"}
	failed := errors.New("quota exceeded")
	tests := []struct {
		name                              string
		rs                                *appsv1.ReplicaSet
		pods                              []*corev1.Pod
		err                               error
		replicas, fully, ready, available int32
		wantFailure                       string // reason, or "" for no condition
	}{
		{"counts labels and readiness", replicaSet(3, 0),
			[]*corev1.Pod{pod("a", podLabels(full), readySince(-time.Second)), pod("b", podLabels(partial), readySince(0)), pod("c", podLabels(full))},
			nil, 3, 2, 2, 2, ""},
		{"minReadySeconds holds back availability", replicaSet(2, 10),
			[]*corev1.Pod{pod("a", podLabels(full), readySince(-time.Minute)), pod("b", podLabels(full), readySince(-5*time.Second))},
			nil, 2, 2, 2, 1, ""},
		{"failed create sets ReplicaFailure", replicaSet(3, 0), []*corev1.Pod{pod("a", podLabels(full))}, failed, 1, 1, 0, 0, "FailedCreate"},
		{"failed delete sets ReplicaFailure", replicaSet(0, 0), []*corev1.Pod{pod("a", podLabels(full))}, failed, 1, 1, 0, 0, "FailedDelete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := calculateStatus(tt.rs, tt.pods, tt.err, t0)
			if st.Replicas != tt.replicas || st.FullyLabeledReplicas != tt.fully || st.ReadyReplicas != tt.ready || st.AvailableReplicas != tt.available {
				t.Errorf("status %+v, want replicas %d fully %d ready %d available %d", st, tt.replicas, tt.fully, tt.ready, tt.available)
			}
			if st.ObservedGeneration != 4 {
				t.Errorf("observedGeneration %d, want 4", st.ObservedGeneration)
			}
			reason := ""
			for _, c := range st.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure {
					reason = c.Reason
				}
			}
			if reason != tt.wantFailure {
				t.Errorf("ReplicaFailure reason %q, want %q", reason, tt.wantFailure)
			}
		})
	}
}

func TestCalculateStatusClearsReplicaFailureOnSuccess(t *testing.T) {
	rs := replicaSet(1, 0)
	rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue}}
	if st := calculateStatus(rs, nil, nil, t0); len(st.Conditions) != 0 {
		t.Fatalf("conditions %v, want none", st.Conditions)
	}
	if len(rs.Status.Conditions) != 1 {
		t.Fatal("calculateStatus modified its input")
	}
}

func TestNextAvailable(t *testing.T) {
	pods := []*corev1.Pod{pod("a", readySince(-8*time.Second)), pod("b", readySince(-2*time.Second)), pod("c")}
	d, ok := nextAvailable(pods, 10, t0)
	if !ok || d < 2*time.Second || d > 3*time.Second {
		t.Fatalf("next available in %v %v, want just over 2s", d, ok)
	}
	if _, ok := nextAvailable(pods, 0, t0); ok {
		t.Fatal("without minReadySeconds nothing waits")
	}
}

func TestSlowStartBatchDoublesAndStopsOnError(t *testing.T) {
	var calls atomic.Int32
	n, err := slowStartBatch(10, 1, func() error { calls.Add(1); return nil })
	if n != 10 || err != nil || calls.Load() != 10 {
		t.Fatalf("all succeed: %d %v calls %d", n, err, calls.Load())
	}
	calls.Store(0)
	// Batches 1, 2, 4: failing from the 4th call on stops after the batch of 4.
	n, err = slowStartBatch(10, 1, func() error {
		if calls.Add(1) > 3 {
			return errors.New("boom")
		}
		return nil
	})
	if err == nil || n != 3 || calls.Load() != 7 {
		t.Fatalf("failing: successes %d err %v calls %d, want 3, error, 7", n, err, calls.Load())
	}
}

func TestExpectations(t *testing.T) {
	now := t0
	e := newExpectations(func() time.Time { return now })
	k := objectKey{kindReplicaSet, "ns", "rs"}
	if !e.satisfied(k) {
		t.Fatal("no expectations: satisfied")
	}
	e.expectCreations(k, 2)
	e.creationObserved(k, 1)
	if e.satisfied(k) {
		t.Fatal("one of two creations seen: not satisfied")
	}
	e.creationObserved(k, 1)
	if !e.satisfied(k) {
		t.Fatal("both creations seen: satisfied")
	}
	e.expectDeletions(k, []string{"ns/a", "ns/b"})
	e.deletionObserved(k, "ns/a")
	e.deletionObserved(k, "ns/a")
	if e.satisfied(k) {
		t.Fatal("one deletion seen twice: not satisfied")
	}
	now = now.Add(expectationsTTL + time.Second)
	if !e.satisfied(k) {
		t.Fatal("expired expectations: satisfied")
	}
	e.forget(k)
	if !e.satisfied(k) {
		t.Fatal("forgotten: satisfied")
	}
}

func TestRCAdapterRoundTripsStatus(t *testing.T) {
	two := int32(2)
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "u1", Generation: 3},
		Spec: corev1.ReplicationControllerSpec{Replicas: &two, MinReadySeconds: 5, Selector: map[string]string{"app": "x"},
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}}},
		Status: corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 3,
			Conditions: []corev1.ReplicationControllerCondition{{Type: corev1.ReplicationControllerReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate"}}},
	}
	w := fromReplicationController(rc)
	if w.key.kind != kindReplicationController || *w.rs.Spec.Replicas != 2 || w.rs.Spec.MinReadySeconds != 5 ||
		w.rs.Spec.Selector.MatchLabels["app"] != "x" || w.rs.Spec.Template.Labels["app"] != "x" || w.rs.UID != "u1" {
		t.Fatalf("converted spec %+v", w.rs)
	}
	back := rcStatus(w.rs.Status)
	if back.Replicas != 2 || back.ReadyReplicas != 1 || back.ObservedGeneration != 3 || len(back.Conditions) != 1 || back.Conditions[0].Reason != "FailedCreate" {
		t.Fatalf("round trip status %+v", back)
	}
	if ref := metav1.NewControllerRef(w.rs, w.key.kind.gvk()); ref.APIVersion != "v1" || ref.Kind != "ReplicationController" {
		t.Fatalf("owner reference %+v", ref)
	}
}
