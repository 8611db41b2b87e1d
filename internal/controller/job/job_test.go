package job

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	"github.com/skiff-sh/skiff/internal/testenv"
)

func TestMain(m *testing.M) {
	// Keep back-off short so failing jobs finish quickly; set before any controller runs.
	backoffBase, backoffMax = 20*time.Millisecond, 200*time.Millisecond
	os.Exit(m.Run())
}

const timeout = 30 * time.Second

// withGarbageCollector asks startController for the garbage collector too.
const withGarbageCollector = true

// startController runs a server without its own controllers and this
// package's controller against it, and the garbage collector when asked.
func startController(t *testing.T, gc ...bool) kubernetes.Interface {
	t.Helper()
	env := testenv.Start(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := NewController(env.Client, factory)
	runs := []func(context.Context){func(ctx context.Context) { c.Run(ctx, 2) }}
	if len(gc) > 0 && gc[0] {
		collector := garbagecollector.NewController(metadata.NewForConfigOrDie(env.Config), env.Client.Discovery())
		runs = append(runs, func(ctx context.Context) { collector.Run(ctx, 2) })
	}
	env.Run(t, factory, runs...)
	return env.Client
}

func newJob(name string, mutate func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
		}}},
	}
	if mutate != nil {
		mutate(j)
	}
	return j
}

func createJob(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	out, err := cs.BatchV1().Jobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return out
}

func podsOfJob(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) []corev1.Pod {
	t.Helper()
	l, err := cs.CoreV1().Pods(j.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.Set{batchv1.JobNameLabel: j.Name}.String()})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return l.Items
}

// livePods are the job's pods not yet finished.
func livePods(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range podsOfJob(t, cs, j) {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// finish simulates a node: the pod ends in phase with the container's exit code.
func finish(t *testing.T, cs kubernetes.Interface, p corev1.Pod, phase corev1.PodPhase, code int32) {
	t.Helper()
	now := metav1.Now()
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: now, StartedAt: now}}}}
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pod status: %v", err)
	}
}

func getJob(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	out, err := cs.BatchV1().Jobs(j.Namespace).Get(context.Background(), j.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get job: %v", err)
	}
	return out
}

func hasCondition(j *batchv1.Job, typ batchv1.JobConditionType, reason string) bool {
	c := findCondition(j.Status.Conditions, typ)
	return c != nil && c.Status == corev1.ConditionTrue && (reason == "" || c.Reason == reason)
}

func waitCondition(t *testing.T, cs kubernetes.Interface, j *batchv1.Job, typ batchv1.JobConditionType, reason string) *batchv1.Job {
	t.Helper()
	var got *batchv1.Job
	testenv.Eventually(t, timeout, string(typ)+" "+reason, func() bool {
		got = getJob(t, cs, j)
		return hasCondition(got, typ, reason)
	})
	return got
}

func waitLive(t *testing.T, cs kubernetes.Interface, j *batchv1.Job, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testenv.Eventually(t, timeout, "live pods", func() bool {
		pods = livePods(t, cs, j)
		return len(pods) == n
	})
	return pods
}

func TestOneCompletionRunsOnePodAndCompletes(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("one", nil))
	pods := waitLive(t, cs, j, 1)
	p := pods[0]
	if !strings.HasPrefix(p.Name, "one-") {
		t.Errorf("pod name %q", p.Name)
	}
	ref := metav1.GetControllerOf(&p)
	if ref == nil || ref.UID != j.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", p.OwnerReferences)
	}
	testenv.Eventually(t, timeout, "active 1 and startTime", func() bool {
		g := getJob(t, cs, j)
		return g.Status.Active == 1 && g.Status.StartTime != nil
	})
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	running, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), &p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, "ready 1", func() bool {
		r := getJob(t, cs, j).Status.Ready
		return r != nil && *r == 1
	})
	finish(t, cs, *running, corev1.PodSucceeded, 0)
	got := waitCondition(t, cs, j, batchv1.JobComplete, "")
	if !hasCondition(got, batchv1.JobSuccessCriteriaMet, "") || got.Status.CompletionTime == nil || got.Status.Succeeded != 1 || got.Status.Active != 0 {
		t.Errorf("status %+v", got.Status)
	}
	if n := len(podsOfJob(t, cs, j)); n != 1 {
		t.Errorf("%d pods, want 1", n)
	}
	testenv.Eventually(t, timeout, "Completed event", func() bool {
		evs, err := cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		var created, completed bool
		for _, e := range evs.Items {
			created = created || (e.Reason == ReasonSuccessfulCreate && e.Message == "Created pod: "+p.Name)
			completed = completed || (e.Reason == ReasonCompleted && e.Message == "Job completed")
		}
		return created && completed
	})
}

func TestCompletionsRunOneAtATimeWithParallelismOne(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("serial", func(j *batchv1.Job) { j.Spec.Completions = new(int32(5)) }))
	for i := 0; i < 5; i++ {
		pods := waitLive(t, cs, j, 1)
		if all := podsOfJob(t, cs, j); len(all) != i+1 {
			t.Fatalf("round %d: %d pods exist, want %d", i, len(all), i+1)
		}
		finish(t, cs, pods[0], corev1.PodSucceeded, 0)
	}
	got := waitCondition(t, cs, j, batchv1.JobComplete, "")
	if got.Status.Succeeded != 5 || len(podsOfJob(t, cs, j)) != 5 {
		t.Errorf("succeeded %d, pods %d", got.Status.Succeeded, len(podsOfJob(t, cs, j)))
	}
}

func TestParallelismCreatesPodsAtOnce(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("par", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = new(int32(5)), new(int32(5))
	}))
	pods := waitLive(t, cs, j, 5)
	testenv.Eventually(t, timeout, "active 5", func() bool { return getJob(t, cs, j).Status.Active == 5 })
	for _, p := range pods {
		finish(t, cs, p, corev1.PodSucceeded, 0)
	}
	got := waitCondition(t, cs, j, batchv1.JobComplete, "")
	if got.Status.Succeeded != 5 || len(podsOfJob(t, cs, j)) != 5 {
		t.Errorf("succeeded %d, pods %d", got.Status.Succeeded, len(podsOfJob(t, cs, j)))
	}
}

func TestParallelismZeroPauses(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("paused", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = new(int32(2)), new(int32(0))
	}))
	testenv.Eventually(t, timeout, "startTime", func() bool { return getJob(t, cs, j).Status.StartTime != nil })
	if n := len(podsOfJob(t, cs, j)); n != 0 {
		t.Fatalf("%d pods with parallelism 0", n)
	}
}

func TestFailingJobStopsAtBackoffLimit(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("failing", func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(2)) }))
	for i := 0; i < 3; i++ {
		pods := waitLive(t, cs, j, 1)
		finish(t, cs, pods[0], corev1.PodFailed, 1)
	}
	got := waitCondition(t, cs, j, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	if c := findCondition(got.Status.Conditions, batchv1.JobFailed); c.Message != "Job has reached the specified backoff limit" {
		t.Errorf("message %q", c.Message)
	}
	if !hasCondition(got, batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded) || got.Status.Failed != 3 {
		t.Errorf("status %+v", got.Status)
	}
	if n := len(podsOfJob(t, cs, j)); n != 3 {
		t.Errorf("%d pods, want 3", n)
	}
}

func TestRestartsCountTowardsBackoffLimitWithOnFailure(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("restarts", func(j *batchv1.Job) {
		j.Spec.BackoffLimit = new(int32(2))
		j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	}))
	p := waitLive(t, cs, j, 1)[0]
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Image: "busybox", RestartCount: 2,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, cs, j, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	waitLive(t, cs, j, 0)
}

func TestActiveDeadlineFailsAndDeletesPods(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("deadline", func(j *batchv1.Job) {
		j.Spec.ActiveDeadlineSeconds = new(int64(2))
		j.Spec.Parallelism, j.Spec.Completions = new(int32(2)), new(int32(2))
	}))
	waitLive(t, cs, j, 2)
	got := waitCondition(t, cs, j, batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)
	if c := findCondition(got.Status.Conditions, batchv1.JobFailed); c.Message != "Job was active longer than specified deadline" {
		t.Errorf("message %q", c.Message)
	}
	if n := len(podsOfJob(t, cs, j)); n != 0 || got.Status.Active != 0 {
		t.Errorf("%d pods left, active %d", n, got.Status.Active)
	}
}

func TestIndexedJobGivesEachPodItsIndex(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("idx", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = new(int32(3)), new(int32(3))
		j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
	}))
	pods := waitLive(t, cs, j, 3)
	seen := map[string]bool{}
	for _, p := range pods {
		idx := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		if idx == "" || p.Labels[batchv1.JobCompletionIndexAnnotation] != idx || seen[idx] {
			t.Fatalf("pod %s: index %q (seen %v)", p.Name, idx, seen)
		}
		seen[idx] = true
		if p.Spec.Hostname != "idx-"+idx {
			t.Errorf("hostname %q", p.Spec.Hostname)
		}
		env := p.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom == nil || env[0].ValueFrom.FieldRef == nil {
			t.Errorf("env %+v", env)
		}
	}
	// A failed index is retried under the same index.
	var failed corev1.Pod
	for _, p := range pods {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "1" {
			failed = p
		} else {
			finish(t, cs, p, corev1.PodSucceeded, 0)
		}
	}
	finish(t, cs, failed, corev1.PodFailed, 1)
	retry := waitLive(t, cs, j, 1)[0]
	if retry.Annotations[batchv1.JobCompletionIndexAnnotation] != "1" {
		t.Fatalf("retry got index %q", retry.Annotations[batchv1.JobCompletionIndexAnnotation])
	}
	finish(t, cs, retry, corev1.PodSucceeded, 0)
	got := waitCondition(t, cs, j, batchv1.JobComplete, "")
	if got.Status.CompletedIndexes != "0-2" || got.Status.Succeeded != 3 || got.Status.Failed != 1 {
		t.Errorf("status %+v", got.Status)
	}
}

func TestSuspendDeletesPodsAndResumeRecreates(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("susp", func(j *batchv1.Job) { j.Spec.Parallelism, j.Spec.Completions = new(int32(2)), new(int32(2)) }))
	waitLive(t, cs, j, 2)
	setSuspend := func(v bool) {
		t.Helper()
		testenv.Eventually(t, timeout, "update suspend", func() bool {
			cur := getJob(t, cs, j)
			cur.Spec.Suspend = new(v)
			_, err := cs.BatchV1().Jobs(j.Namespace).Update(context.Background(), cur, metav1.UpdateOptions{})
			return err == nil
		})
	}
	setSuspend(true)
	got := waitCondition(t, cs, j, batchv1.JobSuspended, "JobSuspended")
	testenv.Eventually(t, timeout, "pods deleted", func() bool { return len(podsOfJob(t, cs, j)) == 0 })
	testenv.Eventually(t, timeout, "active 0", func() bool {
		got = getJob(t, cs, j)
		return got.Status.Active == 0 && got.Status.StartTime == nil
	})
	setSuspend(false)
	waitLive(t, cs, j, 2)
	testenv.Eventually(t, timeout, "resumed", func() bool {
		c := findCondition(getJob(t, cs, j).Status.Conditions, batchv1.JobSuspended)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "JobResumed"
	})
}

func TestCreatedSuspendedJobRunsNothing(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("susp0", func(j *batchv1.Job) { j.Spec.Suspend = new(true) }))
	waitCondition(t, cs, j, batchv1.JobSuspended, "JobSuspended")
	if n := len(podsOfJob(t, cs, j)); n != 0 {
		t.Errorf("%d pods for a suspended job", n)
	}
}

// TestTTLDeletesFinishedJobAndPods: the job controller deletes the expired
// job in the background, and the garbage collector its pods.
func TestTTLDeletesFinishedJobAndPods(t *testing.T) {
	cs := startController(t, withGarbageCollector)
	j := createJob(t, cs, newJob("ttl", func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(1)) }))
	finish(t, cs, waitLive(t, cs, j, 1)[0], corev1.PodSucceeded, 0)
	testenv.Eventually(t, timeout, "job and pods deleted", func() bool {
		_, err := cs.BatchV1().Jobs(j.Namespace).Get(context.Background(), j.Name, metav1.GetOptions{})
		return err != nil && len(podsOfJob(t, cs, j)) == 0
	})
}

func TestPodFailurePolicy(t *testing.T) {
	cs := startController(t)
	j := createJob(t, cs, newJob("pfp", func(j *batchv1.Job) {
		j.Spec.BackoffLimit = new(int32(6))
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}},
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: new("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		}}
	}))
	finish(t, cs, waitLive(t, cs, j, 1)[0], corev1.PodFailed, 3) // ignored: replaced, not counted
	finish(t, cs, waitLive(t, cs, j, 1)[0], corev1.PodFailed, 42)
	got := waitCondition(t, cs, j, batchv1.JobFailed, batchv1.JobReasonPodFailurePolicy)
	if got.Status.Failed != 1 {
		t.Errorf("failed %d, want 1 (the ignored failure is not counted)", got.Status.Failed)
	}
}
