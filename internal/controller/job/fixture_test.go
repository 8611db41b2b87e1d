package job

import (
	"context"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
)

// fixture syncs one job against a fake clientset whose informer caches hold
// exactly the given objects, and records the actions the sync took.
type fixture struct {
	t       *testing.T
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	c       *Controller
}

func newFixture(t *testing.T, job *batchv1.Job, pods ...*corev1.Pod) *fixture {
	client := fake.NewClientset(job)
	// The fake tracker does not do generateName; name pods as the server would.
	seq := 0
	client.PrependReactor("create", "pods", func(a core.Action) (bool, runtime.Object, error) {
		if p := a.(core.CreateAction).GetObject().(*corev1.Pod); p.Name == "" {
			seq++
			p.Name = p.GenerateName + strconv.Itoa(seq)
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	c := NewController(client, factory)
	c.now = func() time.Time { return fixedNow }
	_ = factory.Batch().V1().Jobs().Informer().GetIndexer().Add(job)
	for _, p := range pods {
		_ = factory.Core().V1().Pods().Informer().GetIndexer().Add(p)
	}
	client.ClearActions()
	t.Cleanup(c.events.Stop)
	return &fixture{t: t, client: client, factory: factory, c: c}
}

var fixedNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func (f *fixture) sync() {
	f.t.Helper()
	if err := f.c.sync(context.Background(), "default/j"); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
}

func (f *fixture) count(verb, resource string) int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func (f *fixture) statusUpdate() *batchv1.Job {
	for _, a := range f.client.Actions() {
		if u, ok := a.(core.UpdateAction); ok && u.GetSubresource() == "status" {
			return u.GetObject().(*batchv1.Job)
		}
	}
	f.t.Fatalf("no status update in %v", f.client.Actions())
	return nil
}

func fixtureJob(mutate func(*batchv1.Job)) *batchv1.Job {
	j := newJob("j", mutate)
	j.UID = "job-uid"
	j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: "job-uid"}}
	j.Spec.Template.Labels = map[string]string{batchv1.ControllerUidLabel: "job-uid"}
	if j.Spec.Parallelism == nil {
		j.Spec.Parallelism = new(int32(1))
	}
	if j.Spec.Completions == nil {
		j.Spec.Completions = new(int32(1))
	}
	if j.Spec.BackoffLimit == nil {
		j.Spec.BackoffLimit = new(int32(6))
	}
	return j
}

func fixturePod(j *batchv1.Job, name string, phase corev1.PodPhase, finishedAt time.Time) *corev1.Pod {
	p := newPod(j, -1)
	p.Name, p.UID = name, types.UID(name)
	p.CreationTimestamp = metav1.Time{Time: finishedAt.Add(-time.Minute)}
	p.Status.Phase = phase
	if phase == corev1.PodFailed || phase == corev1.PodSucceeded {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: metav1.Time{Time: finishedAt}}}}}
	}
	return p
}

func TestCreatesPodsForNewJob(t *testing.T) {
	f := newFixture(t, fixtureJob(func(j *batchv1.Job) { j.Spec.Parallelism, j.Spec.Completions = new(int32(3)), new(int32(4)) }))
	f.sync()
	if n := f.count("create", "pods"); n != 3 {
		t.Errorf("created %d pods, want 3", n)
	}
	if st := f.statusUpdate().Status; st.Active != 3 || st.StartTime == nil {
		t.Errorf("status %+v", st)
	}
}

func TestDoesNotCreateAgainWhileExpectationsPending(t *testing.T) {
	f := newFixture(t, fixtureJob(nil))
	f.sync()
	f.sync() // the informer has not shown the first pod yet
	if n := f.count("create", "pods"); n != 1 {
		t.Errorf("created %d pods, want 1", n)
	}
}

func TestWaitsOutBackoffBeforeReplacingFailedPod(t *testing.T) {
	j := fixtureJob(nil)
	recent := fixturePod(j, "p1", corev1.PodFailed, fixedNow.Add(-time.Millisecond))
	f := newFixture(t, j, recent)
	f.c.now = func() time.Time { return fixedNow }
	f.sync()
	if n := f.count("create", "pods"); n != 0 {
		t.Errorf("created %d pods inside the back-off", n)
	}
	old := fixturePod(j, "p1", corev1.PodFailed, fixedNow.Add(-time.Hour))
	f = newFixture(t, j, old)
	f.sync()
	if n := f.count("create", "pods"); n != 1 {
		t.Errorf("created %d pods after the back-off, want 1", n)
	}
}

func TestDeletesExcessPodsWhenParallelismDrops(t *testing.T) {
	j := fixtureJob(func(j *batchv1.Job) { j.Spec.Parallelism, j.Spec.Completions = new(int32(1)), new(int32(5)) })
	f := newFixture(t, j, fixturePod(j, "a", corev1.PodRunning, fixedNow), fixturePod(j, "b", corev1.PodRunning, fixedNow), fixturePod(j, "c", corev1.PodPending, fixedNow))
	f.sync()
	if n := f.count("delete", "pods"); n != 2 {
		t.Errorf("deleted %d pods, want 2", n)
	}
	if st := f.statusUpdate().Status; st.Active != 1 {
		t.Errorf("active %d", st.Active)
	}
}

func TestIndexedJobKeepsRecordedIndexesWhenPodsAreGone(t *testing.T) {
	j := fixtureJob(func(j *batchv1.Job) {
		j.Spec.Parallelism, j.Spec.Completions = new(int32(3)), new(int32(3))
		j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
		j.Status.CompletedIndexes, j.Status.Succeeded = "0,2", 2
	})
	f := newFixture(t, j)
	f.sync()
	var created []string
	for _, a := range f.client.Actions() {
		if c, ok := a.(core.CreateAction); ok && a.GetResource().Resource == "pods" {
			created = append(created, c.GetObject().(*corev1.Pod).Annotations[batchv1.JobCompletionIndexAnnotation])
		}
	}
	if len(created) != 1 || created[0] != "1" {
		t.Errorf("created pods for indexes %v, want [1]", created)
	}
}

func TestIgnoresPodsOwnedByAnotherJob(t *testing.T) {
	j := fixtureJob(nil)
	other := fixturePod(j, "x", corev1.PodRunning, fixedNow)
	other.OwnerReferences[0].UID = "someone-else"
	f := newFixture(t, j, other)
	f.sync()
	if n := f.count("create", "pods"); n != 1 {
		t.Errorf("created %d pods, want 1", n)
	}
}

// The restarts that fail an OnFailure job live only on its running pod: the
// verdict is written before that pod is deleted, or a failed write (a stale
// job in the cache) would lose it and the job would start over.
func TestRecordsFailureTargetBeforeDeletingPods(t *testing.T) {
	j := fixtureJob(func(j *batchv1.Job) {
		j.Spec.BackoffLimit = new(int32(2))
		j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	})
	p := fixturePod(j, "a", corev1.PodRunning, fixedNow)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: 2}}
	f := newFixture(t, j, p)
	f.sync()
	if n := f.count("delete", "pods"); n != 0 {
		t.Errorf("deleted %d pods before recording the failure", n)
	}
	st := f.statusUpdate().Status
	if c := findCondition(st.Conditions, batchv1.JobFailureTarget); c == nil || c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Fatalf("conditions %+v", st.Conditions)
	}
	if st.StartTime == nil {
		t.Errorf("a job decided in its first sync has no startTime")
	}

	// Next sync, with the verdict in the cache: the pod goes.
	j.Status = st
	f = newFixture(t, j, p)
	f.sync()
	if n := f.count("delete", "pods"); n != 1 {
		t.Errorf("deleted %d pods, want 1", n)
	}
}
