package deployment

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/skiff-sh/skiff/internal/testenv"
)

const ns = "default"

// fakeReplicaSets stands in for the ReplicaSet controller: it sets each
// ReplicaSet's status to its spec (all pods ready) unless held, when pods
// exist but are not ready. It checks the rollout bounds on every pass.
type fakeReplicaSets struct {
	client   kubernetes.Interface
	hold     atomic.Bool
	maxTotal atomic.Int32 // 0: unchecked
	minAvail atomic.Int32 // -1: unchecked
	mu       sync.Mutex
	errs     []string
}

// startFake runs the fake until ctx ends; the returned channel closes when it has stopped.
func startFake(ctx context.Context, client kubernetes.Interface) (*fakeReplicaSets, <-chan struct{}) {
	f := &fakeReplicaSets{client: client}
	f.minAvail.Store(-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f.pass(ctx)
			}
		}
	}()
	return f, done
}

func (f *fakeReplicaSets) pass(ctx context.Context) {
	list, err := f.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	var total, avail int32
	for i := range list.Items {
		rs := &list.Items[i]
		total += *rs.Spec.Replicas
		want := appsv1.ReplicaSetStatus{Replicas: *rs.Spec.Replicas, ObservedGeneration: rs.Generation,
			FullyLabeledReplicas: *rs.Spec.Replicas, ReadyReplicas: *rs.Spec.Replicas, AvailableReplicas: *rs.Spec.Replicas}
		if f.hold.Load() {
			// Pods exist but are not ready; keep what was already available, capped by spec.
			want.ReadyReplicas = min(rs.Status.ReadyReplicas, *rs.Spec.Replicas)
			want.AvailableReplicas = min(rs.Status.AvailableReplicas, *rs.Spec.Replicas)
		}
		avail += want.AvailableReplicas
		if rs.Status.Replicas == want.Replicas && rs.Status.ObservedGeneration == want.ObservedGeneration &&
			rs.Status.ReadyReplicas == want.ReadyReplicas && rs.Status.AvailableReplicas == want.AvailableReplicas {
			continue
		}
		rs.Status = want
		_, _ = f.client.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.maxTotal.Load(); m > 0 && total > m {
		f.errs = append(f.errs, fmt.Sprintf("total replicas %d > %d", total, m))
	}
	if m := f.minAvail.Load(); m >= 0 && avail < m {
		f.errs = append(f.errs, fmt.Sprintf("available %d < %d", avail, m))
	}
}

func (f *fakeReplicaSets) violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	fake   *fakeReplicaSets
}

func newFixture(t *testing.T) *fixture {
	env := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := NewController(env.Client, factory)
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, 2) }()
	fake, fakeDone := startFake(ctx, env.Client)
	t.Cleanup(func() { cancel(); <-done; <-fakeDone; factory.Shutdown() })
	return &fixture{t: t, ctx: ctx, client: env.Client, fake: fake}
}

func newDeployment(name string, n int32, image string) *appsv1.Deployment {
	l := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

func (f *fixture) create(d *appsv1.Deployment) *appsv1.Deployment {
	f.t.Helper()
	out, err := f.client.AppsV1().Deployments(ns).Create(f.ctx, d, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create deployment: %v", err)
	}
	return out
}

func (f *fixture) get(name string) *appsv1.Deployment {
	f.t.Helper()
	d, err := f.client.AppsV1().Deployments(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get deployment: %v", err)
	}
	return d
}

// update retries mutate on conflicts.
func (f *fixture) update(name string, mutate func(*appsv1.Deployment)) *appsv1.Deployment {
	f.t.Helper()
	for i := 0; ; i++ {
		d := f.get(name)
		mutate(d)
		out, err := f.client.AppsV1().Deployments(ns).Update(f.ctx, d, metav1.UpdateOptions{})
		if err == nil {
			return out
		}
		if i > 20 {
			f.t.Fatalf("update deployment: %v", err)
		}
	}
}

func (f *fixture) replicaSets() []appsv1.ReplicaSet {
	f.t.Helper()
	l, err := f.client.AppsV1().ReplicaSets(ns).List(f.ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatalf("list replicasets: %v", err)
	}
	return l.Items
}

func (f *fixture) rsByName(name string) *appsv1.ReplicaSet {
	for _, rs := range f.replicaSets() {
		if rs.Name == name {
			return &rs
		}
	}
	return nil
}

// rsForTemplate is the name the controller gives d's current template.
func rsForTemplate(d *appsv1.Deployment) string {
	return d.Name + "-" + ComputeHash(&d.Spec.Template, d.Status.CollisionCount)
}

// rolloutStatus is what `kubectl rollout status` prints for name.
func (f *fixture) rolloutStatus(name string) (string, bool) {
	f.t.Helper()
	d := f.get(name)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		f.t.Fatal(err)
	}
	v, err := polymorphichelpers.StatusViewerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind())
	if err != nil {
		f.t.Fatal(err)
	}
	msg, done, err := v.Status(&unstructured.Unstructured{Object: m}, 0)
	if err != nil {
		return err.Error(), false
	}
	return msg, done
}

func (f *fixture) waitRolledOut(name string) {
	f.t.Helper()
	testenv.Eventually(f.t, 20*time.Second, name+" rolled out", func() bool {
		msg, done := f.rolloutStatus(name)
		return done && msg == fmt.Sprintf("deployment %q successfully rolled out\n", name)
	})
}

func cond(d *appsv1.Deployment, t appsv1.DeploymentConditionType) appsv1.DeploymentCondition {
	if c := GetCondition(d.Status, t); c != nil {
		return *c
	}
	return appsv1.DeploymentCondition{}
}

func TestCreatesReplicaSetWithHashLabelAndRevision(t *testing.T) {
	f := newFixture(t)
	d := f.create(newDeployment("web", 3, "nginx:1"))
	name := rsForTemplate(d)
	f.waitRolledOut("web")

	rss := f.replicaSets()
	if len(rss) != 1 || rss[0].Name != name {
		t.Fatalf("replicasets = %v, want one named %s", names(rss), name)
	}
	rs := rss[0]
	hash := strings.TrimPrefix(name, "web-")
	if *rs.Spec.Replicas != 3 || rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replicaset spec/labels wrong: %+v %v", rs.Spec, rs.Labels)
	}
	if ref := metav1.GetControllerOf(&rs); ref == nil || ref.UID != d.UID || ref.Kind != "Deployment" {
		t.Errorf("controller ref = %+v", ref)
	}
	if rs.Annotations[RevisionAnnotation] != "1" || rs.Annotations[DesiredReplicasAnnotation] != "3" || rs.Annotations[MaxReplicasAnnotation] != "4" {
		t.Errorf("replicaset annotations = %v", rs.Annotations)
	}
	got := f.get("web")
	if got.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision = %q", got.Annotations[RevisionAnnotation])
	}
	st := got.Status
	if st.ObservedGeneration != got.Generation || st.Replicas != 3 || st.UpdatedReplicas != 3 || st.ReadyReplicas != 3 ||
		st.AvailableReplicas != 3 || st.UnavailableReplicas != 0 {
		t.Errorf("status = %+v", st)
	}
	if c := cond(got, appsv1.DeploymentAvailable); c.Status != corev1.ConditionTrue || c.Reason != MinimumReplicasAvailable || c.Message != "Deployment has minimum availability." {
		t.Errorf("Available = %+v", c)
	}
	if c := cond(got, appsv1.DeploymentProgressing); c.Status != corev1.ConditionTrue || c.Reason != NewRSAvailableReason ||
		c.Message != fmt.Sprintf("ReplicaSet %q has successfully progressed.", name) {
		t.Errorf("Progressing = %+v", c)
	}
	testenv.Eventually(t, 10*time.Second, "scaling event", func() bool {
		evs, err := f.client.CoreV1().Events(ns).List(f.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == ScalingReplicaSetReason && e.Message == fmt.Sprintf("Scaled up replica set %s to 3 from 0", name) && e.InvolvedObject.Name == "web" {
				return true
			}
		}
		return false
	})

	// Scaling without a template change resizes the same ReplicaSet.
	f.update("web", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(5)) })
	testenv.Eventually(t, 20*time.Second, "scaled to 5", func() bool {
		rs := f.rsByName(name)
		msg, done := f.rolloutStatus("web")
		_ = msg
		return rs != nil && *rs.Spec.Replicas == 5 && rs.Annotations[DesiredReplicasAnnotation] == "5" &&
			rs.Annotations[MaxReplicasAnnotation] == "7" && done && len(f.replicaSets()) == 1
	})
}

func names(rss []appsv1.ReplicaSet) []string {
	var out []string
	for _, rs := range rss {
		out = append(out, fmt.Sprintf("%s=%d(rev %s)", rs.Name, *rs.Spec.Replicas, rs.Annotations[RevisionAnnotation]))
	}
	return out
}

func TestRollingUpdateRollsThenRollbackReusesOldReplicaSet(t *testing.T) {
	f := newFixture(t)
	d := newDeployment("web", 3, "nginx:1")
	surge, unavail := intstr.FromInt32(1), intstr.FromInt32(1)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}}
	limit := int32(1)
	d.Spec.RevisionHistoryLimit = &limit
	d = f.create(d)
	first := rsForTemplate(d)
	f.waitRolledOut("web")
	f.fake.maxTotal.Store(4)
	f.fake.minAvail.Store(2)

	d = f.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:2" })
	second := rsForTemplate(d)
	f.waitRolledOut("web")
	if rs := f.rsByName(second); rs == nil || *rs.Spec.Replicas != 3 || rs.Annotations[RevisionAnnotation] != "2" {
		t.Fatalf("new replicaset: %v", names(f.replicaSets()))
	}
	if rs := f.rsByName(first); rs == nil || *rs.Spec.Replicas != 0 {
		t.Fatalf("old replicaset: %v", names(f.replicaSets()))
	}
	if got := f.get("web"); got.Annotations[RevisionAnnotation] != "2" || got.Status.UpdatedReplicas != 3 {
		t.Errorf("deployment after rollout: rev %q status %+v", got.Annotations[RevisionAnnotation], got.Status)
	}

	// kubectl rollout undo copies the old ReplicaSet's template back.
	old := f.rsByName(first)
	f.update("web", func(d *appsv1.Deployment) {
		tmpl := old.Spec.Template.DeepCopy()
		delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		d.Spec.Template = *tmpl
	})
	testenv.Eventually(t, 20*time.Second, "rollback onto the first replicaset", func() bool {
		rs := f.rsByName(first)
		msg, done := f.rolloutStatus("web")
		_ = msg
		return rs != nil && *rs.Spec.Replicas == 3 && rs.Annotations[RevisionAnnotation] == "3" && done
	})
	if n := len(f.replicaSets()); n != 2 {
		t.Errorf("replicasets after rollback = %v, want the two", names(f.replicaSets()))
	}
	if got := f.get("web"); got.Annotations[RevisionAnnotation] != "3" {
		t.Errorf("deployment revision = %q, want 3", got.Annotations[RevisionAnnotation])
	}

	// A third template: with revisionHistoryLimit 1 the oldest zero-sized ReplicaSet goes.
	d = f.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:3" })
	third := rsForTemplate(d)
	f.waitRolledOut("web")
	testenv.Eventually(t, 20*time.Second, "history trimmed to one old replicaset", func() bool {
		rss := f.replicaSets()
		return len(rss) == 2 && f.rsByName(second) == nil && f.rsByName(first) != nil && f.rsByName(third) != nil
	})
	if v := f.fake.violations(); len(v) > 0 {
		t.Errorf("rollout bounds violated: %v", v)
	}
}

func TestRolloutStatusMessagesWhilePodsNotReady(t *testing.T) {
	f := newFixture(t)
	d := newDeployment("web", 3, "nginx:1")
	surge, unavail := intstr.FromInt32(1), intstr.FromInt32(0)
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}
	f.create(d)
	f.waitRolledOut("web")
	f.fake.hold.Store(true)
	d = f.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:2" })
	want := `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...` + "\n"
	testenv.Eventually(t, 20*time.Second, "one new replica updated", func() bool {
		msg, done := f.rolloutStatus("web")
		return !done && msg == want
	})
	got := f.get("web")
	if c := cond(got, appsv1.DeploymentProgressing); c.Status != corev1.ConditionTrue ||
		(c.Reason != ReplicaSetUpdatedReason && c.Reason != NewReplicaSetReason) {
		t.Errorf("Progressing = %+v", c)
	}
	if rs := f.rsByName(rsForTemplate(d)); rs == nil || *rs.Spec.Replicas != 1 {
		t.Errorf("new replicaset must stay at maxSurge while not ready: %v", names(f.replicaSets()))
	}
	f.fake.hold.Store(false)
	f.waitRolledOut("web")
}

func TestProgressDeadlineExceeded(t *testing.T) {
	f := newFixture(t)
	d := newDeployment("web", 2, "nginx:1")
	deadline := int32(1)
	d.Spec.ProgressDeadlineSeconds = &deadline
	f.fake.hold.Store(true)
	d = f.create(d)
	// Times are stored to the second, so a 1s deadline may pass before the
	// pods even exist; wait for the state after their creation was recorded.
	testenv.Eventually(t, 20*time.Second, "ProgressDeadlineExceeded", func() bool {
		got := f.get("web")
		c := cond(got, appsv1.DeploymentProgressing)
		return got.Status.UpdatedReplicas == 2 && c.Status == corev1.ConditionFalse && c.Reason == TimedOutReason &&
			c.Message == fmt.Sprintf("ReplicaSet %q has timed out progressing.", rsForTemplate(d))
	})
	if c := cond(f.get("web"), appsv1.DeploymentAvailable); c.Status != corev1.ConditionFalse || c.Reason != MinimumReplicasUnavailable {
		t.Errorf("Available = %+v", c)
	}
	if msg, _ := f.rolloutStatus("web"); !strings.Contains(msg, "exceeded its progress deadline") {
		t.Errorf("rollout status = %q", msg)
	}
}

func TestPausedDeploymentScalesButDoesNotRollOut(t *testing.T) {
	f := newFixture(t)
	d := f.create(newDeployment("web", 2, "nginx:1"))
	first := rsForTemplate(d)
	f.waitRolledOut("web")
	d = f.update("web", func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		d.Spec.Replicas = new(int32(4))
	})
	testenv.Eventually(t, 20*time.Second, "paused deployment scaled", func() bool {
		got := f.get("web")
		c := cond(got, appsv1.DeploymentProgressing)
		rs := f.rsByName(first)
		return got.Status.ObservedGeneration == got.Generation && c.Reason == PausedDeployReason &&
			c.Status == corev1.ConditionUnknown && c.Message == "Deployment is paused" &&
			rs != nil && *rs.Spec.Replicas == 4 && got.Status.AvailableReplicas == 4
	})
	if rss := f.replicaSets(); len(rss) != 1 {
		t.Fatalf("paused deployment rolled out: %v", names(rss))
	}
	second := rsForTemplate(d)
	f.update("web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	f.waitRolledOut("web")
	if rs := f.rsByName(second); rs == nil || *rs.Spec.Replicas != 4 {
		t.Fatalf("after resume: %v", names(f.replicaSets()))
	}
}

func TestRecreateScalesOldToZeroBeforeNew(t *testing.T) {
	f := newFixture(t)
	d := newDeployment("web", 3, "nginx:1")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	d = f.create(d)
	first := rsForTemplate(d)
	f.waitRolledOut("web")
	f.fake.maxTotal.Store(3)
	d = f.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:2" })
	f.waitRolledOut("web")
	if rs := f.rsByName(first); rs == nil || *rs.Spec.Replicas != 0 {
		t.Errorf("old: %v", names(f.replicaSets()))
	}
	if rs := f.rsByName(rsForTemplate(d)); rs == nil || *rs.Spec.Replicas != 3 {
		t.Errorf("new: %v", names(f.replicaSets()))
	}
	if v := f.fake.violations(); len(v) > 0 {
		t.Errorf("recreate overlapped old and new: %v", v)
	}
}

func TestAdoptsOrphanReplicaSetAndReleasesNonMatching(t *testing.T) {
	f := newFixture(t)
	d := newDeployment("web", 2, "nginx:1")
	// An orphan whose template matches becomes the deployment's new ReplicaSet.
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "orphan"
	orphan := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-orphan", Namespace: ns, Labels: tmpl.Labels},
		Spec: appsv1.ReplicaSetSpec{Replicas: new(int32(2)), Template: *tmpl,
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}},
	}
	if _, err := f.client.AppsV1().ReplicaSets(ns).Create(f.ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d = f.create(d)
	f.waitRolledOut("web")
	rss := f.replicaSets()
	if len(rss) != 1 || rss[0].Name != "web-orphan" {
		t.Fatalf("replicasets = %v, want only the adopted orphan", names(rss))
	}
	if ref := metav1.GetControllerOf(&rss[0]); ref == nil || ref.UID != d.UID {
		t.Fatalf("orphan not adopted: %+v", rss[0].OwnerReferences)
	}
	// Relabel it out of the selector: the deployment releases it and makes a new one.
	rs := rss[0]
	rs.Labels = map[string]string{"app": "other"}
	if _, err := f.client.AppsV1().ReplicaSets(ns).Update(f.ctx, &rs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "released and replaced", func() bool {
		r := f.rsByName("web-orphan")
		return r != nil && metav1.GetControllerOf(r) == nil && f.rsByName(rsForTemplate(d)) != nil
	})
}
