package deployment

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func rolling(n int32, surge, unavail intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: &n, ProgressDeadlineSeconds: new(int32(600)),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}}},
	}
}

// rs makes a ReplicaSet of spec size n with avail available pods, created age seconds after t0.
func rs(name string, n, avail int32, age int) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))},
		Spec:   appsv1.ReplicaSetSpec{Replicas: &n},
		Status: appsv1.ReplicaSetStatus{Replicas: n, ReadyReplicas: avail, AvailableReplicas: avail},
	}
}

func TestResolveFenceposts(t *testing.T) {
	for _, tc := range []struct {
		surge, unavail intstr.IntOrString
		desired        int32
		wantS, wantU   int32
	}{
		{intstr.FromString("25%"), intstr.FromString("25%"), 3, 1, 0},
		{intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2},
		{intstr.FromInt32(0), intstr.FromInt32(0), 5, 0, 1},
		{intstr.FromInt32(2), intstr.FromString("50%"), 5, 2, 2},
		{intstr.FromString("100%"), intstr.FromInt32(0), 4, 4, 0},
	} {
		s, u, err := ResolveFenceposts(&tc.surge, &tc.unavail, tc.desired)
		if err != nil || s != tc.wantS || u != tc.wantU {
			t.Errorf("ResolveFenceposts(%v,%v,%d) = %d,%d,%v want %d,%d", tc.surge.String(), tc.unavail.String(), tc.desired, s, u, err, tc.wantS, tc.wantU)
		}
	}
}

func TestNewRSNewReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      *appsv1.Deployment
		newRS  *appsv1.ReplicaSet
		old    []*appsv1.ReplicaSet
		expect int32
	}{
		{"fresh deployment takes all", rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)), rs("new", 0, 0, 1), nil, 3},
		{"surge one over old", rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)), rs("new", 0, 0, 1), []*appsv1.ReplicaSet{rs("old", 3, 3, 0)}, 1},
		{"at max total no change", rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)), rs("new", 1, 0, 1), []*appsv1.ReplicaSet{rs("old", 3, 3, 0)}, 1},
		{"room after old shrank", rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)), rs("new", 1, 1, 1), []*appsv1.ReplicaSet{rs("old", 1, 1, 0)}, 3},
		{"never past replicas", rolling(3, intstr.FromInt32(5), intstr.FromInt32(0)), rs("new", 0, 0, 1), []*appsv1.ReplicaSet{rs("old", 3, 3, 0)}, 3},
		{"percent surge rounds up", rolling(10, intstr.FromString("25%"), intstr.FromString("25%")), rs("new", 0, 0, 1), []*appsv1.ReplicaSet{rs("old", 10, 10, 0)}, 3},
		{"recreate takes all", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(int32(4)),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}, rs("new", 0, 0, 1), nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewRSNewReplicas(tc.d, append(tc.old, tc.newRS), tc.newRS)
			if err != nil || got != tc.expect {
				t.Errorf("got %d, %v; want %d", got, err, tc.expect)
			}
		})
	}
}

func scalesString(s []Scale) string {
	out := ""
	for _, x := range s {
		out += fmt.Sprintf("%s=%d ", x.RS.Name, x.Replicas)
	}
	return out
}

func TestOldReplicaSetScaleDown(t *testing.T) {
	for _, tc := range []struct {
		name          string
		d             *appsv1.Deployment
		newRS         *appsv1.ReplicaSet
		old           []*appsv1.ReplicaSet
		wantBudget    int32
		wantCleanup   string
		wantScaleDown string
	}{
		{"new not ready: nothing may go", rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)), rs("new", 1, 0, 2),
			[]*appsv1.ReplicaSet{rs("old", 3, 3, 0)}, 0, "", ""},
		{"new ready: one old may go", rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)), rs("new", 1, 1, 2),
			[]*appsv1.ReplicaSet{rs("old", 3, 3, 0)}, 1, "", "old=2 "},
		{"maxUnavailable lets one go early", rolling(3, intstr.FromInt32(1), intstr.FromInt32(1)), rs("new", 1, 0, 2),
			[]*appsv1.ReplicaSet{rs("old", 3, 3, 0)}, 1, "", "old=2 "},
		{"unhealthy old pods go first, oldest first", rolling(4, intstr.FromInt32(0), intstr.FromInt32(1)), rs("new", 0, 0, 3),
			[]*appsv1.ReplicaSet{rs("older", 2, 1, 0), rs("old", 2, 1, 1)}, 1, "older=1 ", ""},
		{"oldest scaled down first", rolling(4, intstr.FromInt32(1), intstr.FromInt32(1)), rs("new", 1, 1, 3),
			[]*appsv1.ReplicaSet{rs("old", 2, 2, 1), rs("older", 2, 2, 0)}, 2, "", "older=0 "},
		// The old RS was just scaled 10 -> 8 and its status still counts 10
		// available: it cannot have more available pods than its size, or
		// the next scale-down would take availability below 10 - 2.
		{"stale status counts no more than the size", rolling(10, intstr.FromInt32(3), intstr.FromInt32(2)), rs("new", 3, 3, 1),
			[]*appsv1.ReplicaSet{rs("old", 8, 10, 0)}, 3, "", "old=5 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := append(append([]*appsv1.ReplicaSet(nil), tc.old...), tc.newRS)
			budget := MaxScaleDown(tc.d, all, tc.newRS)
			if budget != tc.wantBudget {
				t.Errorf("budget = %d, want %d", budget, tc.wantBudget)
			}
			if budget <= 0 {
				return
			}
			cleanups, _ := CleanupUnhealthy(tc.old, budget)
			if got := scalesString(cleanups); got != tc.wantCleanup {
				t.Errorf("cleanup = %q, want %q", got, tc.wantCleanup)
			}
			if len(cleanups) > 0 {
				return
			}
			if got := scalesString(ScaleDownOld(tc.d, all, tc.old)); got != tc.wantScaleDown {
				t.Errorf("scale down = %q, want %q", got, tc.wantScaleDown)
			}
		})
	}
}

func TestProportionalScale(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		rss  []*appsv1.ReplicaSet
		want string
	}{
		{"scale up mid-rollout keeps ratio", rolling(20, intstr.FromInt32(0), intstr.FromInt32(1)),
			[]*appsv1.ReplicaSet{rs("old", 5, 5, 0), rs("new", 5, 5, 1)}, "new=10 old=10 "},
		{"scale down mid-rollout", rolling(4, intstr.FromInt32(0), intstr.FromInt32(1)),
			[]*appsv1.ReplicaSet{rs("old", 6, 6, 0), rs("new", 2, 2, 1)}, "new=1 old=3 "},
		{"leftover goes to the largest", rolling(10, intstr.FromInt32(0), intstr.FromInt32(1)),
			[]*appsv1.ReplicaSet{rs("old", 1, 1, 0), rs("new", 2, 2, 1)}, "new=7 old=3 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ProportionalScale(tc.d, tc.rss)
			var total int32
			for _, s := range got {
				total += s.Replicas
			}
			if total != deploymentReplicas(tc.d)+MaxSurge(tc.d) {
				t.Errorf("total = %d", total)
			}
			if s := scalesString(got); s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}

func TestRolloutStatusConditions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		d          func() *appsv1.Deployment
		rss        []*appsv1.ReplicaSet
		newRS      string
		wantAvail  string
		wantProg   string
		wantStatus appsv1.DeploymentStatus
	}{
		{"complete rollout", func() *appsv1.Deployment {
			d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
			d.Status.Conditions = []appsv1.DeploymentCondition{NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, NewReplicaSetReason, "", t0)}
			return d
		}, []*appsv1.ReplicaSet{rs("new", 3, 3, 0)}, "new", MinimumReplicasAvailable, NewRSAvailableReason,
			appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}},
		{"progress made", func() *appsv1.Deployment {
			d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
			d.Status = appsv1.DeploymentStatus{Replicas: 3, AvailableReplicas: 3, Conditions: []appsv1.DeploymentCondition{
				NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, NewReplicaSetReason, "", t0)}}
			return d
		}, []*appsv1.ReplicaSet{rs("old", 3, 3, 0), rs("new", 1, 0, 1)}, "new", MinimumReplicasAvailable, ReplicaSetUpdatedReason,
			appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, UnavailableReplicas: 1}},
		{"no progress past the deadline", func() *appsv1.Deployment {
			d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, Conditions: []appsv1.DeploymentCondition{
				NewCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReplicaSetUpdatedReason, "", t0.Add(-time.Hour))}}
			return d
		}, []*appsv1.ReplicaSet{rs("old", 3, 3, 0), rs("new", 1, 0, 1)}, "new", MinimumReplicasAvailable, TimedOutReason,
			appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, UnavailableReplicas: 1}},
		{"below minimum availability", func() *appsv1.Deployment {
			return rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
		}, []*appsv1.ReplicaSet{rs("new", 3, 1, 0)}, "new", MinimumReplicasUnavailable, ReplicaSetUpdatedReason,
			appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d()
			var newRS *appsv1.ReplicaSet
			for _, r := range tc.rss {
				if r.Name == tc.newRS {
					newRS = r
				}
			}
			st := RolloutStatus(d, tc.rss, newRS, t0)
			if c := GetCondition(st, appsv1.DeploymentAvailable); c == nil || c.Reason != tc.wantAvail {
				t.Errorf("Available = %+v, want %s", c, tc.wantAvail)
			}
			if c := GetCondition(st, appsv1.DeploymentProgressing); c == nil || c.Reason != tc.wantProg {
				t.Errorf("Progressing = %+v, want %s", c, tc.wantProg)
			}
			st.Conditions = nil
			if !reflect.DeepEqual(st, tc.wantStatus) {
				t.Errorf("status = %+v\nwant %+v", st, tc.wantStatus)
			}
		})
	}
}

func TestPausedCondition(t *testing.T) {
	d := rolling(1, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Spec.Paused = true
	if !PausedCondition(d, &d.Status, t0) {
		t.Fatal("pause not recorded")
	}
	if c := GetCondition(d.Status, appsv1.DeploymentProgressing); c.Reason != PausedDeployReason || c.Status != corev1.ConditionUnknown || c.Message != "Deployment is paused" {
		t.Errorf("paused = %+v", c)
	}
	if PausedCondition(d, &d.Status, t0) {
		t.Error("second pause changed status")
	}
	d.Spec.Paused = false
	if !PausedCondition(d, &d.Status, t0) || GetCondition(d.Status, appsv1.DeploymentProgressing).Reason != ResumedDeployReason {
		t.Errorf("resume = %+v", d.Status.Conditions)
	}
}

func TestCleanableReplicaSetsKeepsNewestRevisions(t *testing.T) {
	mk := func(name, rev string, n int32) *appsv1.ReplicaSet {
		r := rs(name, n, n, 0)
		r.Annotations = map[string]string{RevisionAnnotation: rev}
		return r
	}
	old := []*appsv1.ReplicaSet{mk("r3", "3", 0), mk("r1", "1", 0), mk("r2", "2", 0), mk("r4", "4", 1)}
	got := CleanableReplicaSets(old, 1)
	if len(got) != 2 || got[0].Name != "r1" || got[1].Name != "r2" {
		t.Errorf("cleanable = %v", got)
	}
	if got := CleanableReplicaSets(old, 5); got != nil {
		t.Errorf("under limit cleaned %v", got)
	}
}

func TestComputeHashIsStableAndChangesWithCollisionCount(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
	a, b := ComputeHash(tmpl, nil), ComputeHash(tmpl.DeepCopy(), nil)
	if a != b || a == "" {
		t.Errorf("hash not stable: %q %q", a, b)
	}
	if c := ComputeHash(tmpl, new(int32(1))); c == a {
		t.Errorf("collision count did not change the hash")
	}
	other := tmpl.DeepCopy()
	other.Spec.Containers[0].Image = "nginx:2"
	if ComputeHash(other, nil) == a {
		t.Errorf("template change did not change the hash")
	}
}

func TestScalingEvent(t *testing.T) {
	d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
	r := rs("a", 3, 3, 0)
	r.Annotations = map[string]string{DesiredReplicasAnnotation: "3"}
	if ScalingEvent(d, []*appsv1.ReplicaSet{r}) {
		t.Error("same size reported as scaling")
	}
	d.Spec.Replicas = new(int32(5))
	if !ScalingEvent(d, []*appsv1.ReplicaSet{r}) {
		t.Error("new size not reported as scaling")
	}
}

func TestRolloutStatusCopiesReplicaFailure(t *testing.T) {
	d := rolling(2, intstr.FromInt32(1), intstr.FromInt32(0))
	newRS := rs("new", 2, 0, 0)
	newRS.Status.Replicas = 0
	newRS.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
		Reason: "FailedCreate", Message: "pods \"new-x\" is forbidden: exceeded quota"}}
	st := RolloutStatus(d, []*appsv1.ReplicaSet{newRS}, newRS, t0)
	if c := GetCondition(st, appsv1.DeploymentReplicaFailure); c == nil || c.Reason != "FailedCreate" || c.Status != corev1.ConditionTrue {
		t.Fatalf("ReplicaFailure = %+v", c)
	}
	d.Status = st
	newRS.Status.Conditions = nil
	if c := GetCondition(RolloutStatus(d, []*appsv1.ReplicaSet{newRS}, newRS, t0), appsv1.DeploymentReplicaFailure); c != nil {
		t.Errorf("ReplicaFailure kept after it cleared: %+v", c)
	}
}
