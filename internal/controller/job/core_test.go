package job

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBackoffDelayDoublesUpToCap(t *testing.T) {
	for _, tc := range []struct {
		failures int32
		want     time.Duration
	}{
		{0, 0}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second},
		{6, 320 * time.Second}, {7, 6 * time.Minute}, {100, 6 * time.Minute},
	} {
		if got := backoffDelay(tc.failures, 10*time.Second, 6*time.Minute); got != tc.want {
			t.Errorf("backoffDelay(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}

func TestBackoffRemainingCountsFailuresSinceLastSuccess(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name        string
		failures    []time.Time
		lastSuccess time.Time
		want        time.Duration
	}{
		{"no failures", nil, time.Time{}, 0},
		{"one failure just now", []time.Time{now}, time.Time{}, 10 * time.Second},
		{"one failure 4s ago", []time.Time{ago(4 * time.Second)}, time.Time{}, 6 * time.Second},
		{"two failures", []time.Time{ago(30 * time.Second), ago(5 * time.Second)}, time.Time{}, 15 * time.Second},
		{"success resets", []time.Time{ago(30 * time.Second), ago(5 * time.Second)}, ago(10 * time.Second), 5 * time.Second},
		{"waited out", []time.Time{ago(time.Minute)}, time.Time{}, 0},
	} {
		if got := backoffRemaining(tc.failures, tc.lastSuccess, now, 10*time.Second, 6*time.Minute); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestWantActive(t *testing.T) {
	for _, tc := range []struct {
		name               string
		parallelism, compl *int32
		succeeded, active  int32
		want               int32
	}{
		{"one completion", new(int32(1)), new(int32(1)), 0, 0, 1},
		{"parallelism caps", new(int32(2)), new(int32(5)), 0, 0, 2},
		{"remaining caps", new(int32(5)), new(int32(5)), 3, 0, 2},
		{"done", new(int32(5)), new(int32(5)), 5, 0, 0},
		{"over done", new(int32(5)), new(int32(5)), 6, 0, 0},
		{"paused", new(int32(0)), new(int32(5)), 0, 3, 0},
		{"work queue not started", new(int32(3)), nil, 0, 0, 3},
		{"work queue after a success keeps running pods only", new(int32(3)), nil, 1, 2, 2},
	} {
		if got := wantActive(tc.parallelism, tc.compl, tc.succeeded, tc.active); got != tc.want {
			t.Errorf("%s: wantActive = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestPendingIndexes(t *testing.T) {
	got := pendingIndexes(6, map[int]bool{0: true, 3: true}, map[int]bool{1: true}, 2)
	if len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Errorf("pendingIndexes = %v, want [2 4]", got)
	}
	if got := pendingIndexes(2, map[int]bool{0: true, 1: true}, nil, 5); len(got) != 0 {
		t.Errorf("all done: got %v", got)
	}
}

func TestFormatIndexes(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, ""}, {[]int{0}, "0"}, {[]int{0, 1, 2}, "0-2"}, {[]int{7, 1, 3, 4, 5}, "1,3-5,7"},
	} {
		set := map[int]bool{}
		for _, i := range tc.in {
			set[i] = true
		}
		if got := formatIndexes(set); got != tc.want {
			t.Errorf("formatIndexes(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseIndexesRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", ""}, {"0", "0"}, {"1,3-5,7", "1,3-5,7"}, {"0-2,x,9", "0-2,9"}, {"3-x", ""}, {"5-20", "5-9"},
	} {
		if got := formatIndexes(parseIndexes(tc.in, 10)); got != tc.want {
			t.Errorf("parseIndexes(%q) formats as %q, want %q", tc.in, got, tc.want)
		}
	}
}

func terminated(name string, code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func TestMatchPodFailurePolicy(t *testing.T) {
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: new("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1}}},
	}}
	for _, tc := range []struct {
		name   string
		status corev1.PodStatus
		want   batchv1.PodFailurePolicyAction
	}{
		{"exit code in", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated("main", 42)}}, batchv1.PodFailurePolicyActionFailJob},
		{"other container", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated("side", 42)}}, batchv1.PodFailurePolicyActionCount},
		{"pod condition", corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}, batchv1.PodFailurePolicyActionIgnore},
		{"not in matches", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated("main", 3)}}, batchv1.PodFailurePolicyActionCount},
		{"no rule", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated("main", 1)}}, ""},
		{"exit 0 never matches", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated("main", 0)}}, ""},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: tc.status}
		if got := matchPodFailurePolicy(policy, pod); got.action != tc.want {
			t.Errorf("%s: action %q, want %q", tc.name, got.action, tc.want)
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated("main", 42)}}}
	if got := matchPodFailurePolicy(policy, pod).message; got != "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0" {
		t.Errorf("message %q", got)
	}
}

func TestPastBackoffLimit(t *testing.T) {
	for _, tc := range []struct {
		name             string
		limit            int32
		policy           corev1.RestartPolicy
		failed, restarts int32
		want             bool
	}{
		{"under", 2, corev1.RestartPolicyNever, 2, 0, false},
		{"over", 2, corev1.RestartPolicyNever, 3, 0, true},
		{"restarts ignored for Never", 2, corev1.RestartPolicyNever, 0, 9, false},
		{"restarts reach limit", 2, corev1.RestartPolicyOnFailure, 0, 2, true},
		{"restarts under limit", 2, corev1.RestartPolicyOnFailure, 0, 1, false},
		{"limit zero any restart", 0, corev1.RestartPolicyOnFailure, 0, 1, true},
		{"limit zero no restart", 0, corev1.RestartPolicyOnFailure, 0, 0, false},
	} {
		if got := pastBackoffLimit(tc.limit, tc.policy, tc.failed, tc.restarts); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestRestartsOnFailureCountsOnlyLivePods(t *testing.T) {
	running := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
		InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: 1}},
		ContainerStatuses:     []corev1.ContainerStatus{{RestartCount: 2}, {RestartCount: 3}}}}
	failed := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed,
		ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 5}}}}
	if got := restartsOnFailure([]*corev1.Pod{running, failed}); got != 6 {
		t.Errorf("restarts = %d, want 6", got)
	}
}

func TestJobFailure(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	started := now.Add(-3 * time.Second)
	ads := new(int64(2))
	for _, tc := range []struct {
		name       string
		failJob    string
		backoff    bool
		start      *time.Time
		ads        *int64
		wantReason string
	}{
		{"nothing", "", false, &started, nil, ""},
		{"policy first", "boom", true, &started, ads, batchv1.JobReasonPodFailurePolicy},
		{"backoff before deadline", "", true, &started, ads, batchv1.JobReasonBackoffLimitExceeded},
		{"deadline", "", false, &started, ads, batchv1.JobReasonDeadlineExceeded},
		{"deadline not yet", "", false, &started, new(int64(10)), ""},
		{"not started", "", false, nil, ads, ""},
	} {
		if got := jobFailure(tc.failJob, tc.backoff, tc.start, tc.ads, now); got.reason != tc.wantReason {
			t.Errorf("%s: reason %q, want %q", tc.name, got.reason, tc.wantReason)
		}
	}
}

func TestSucceededEnough(t *testing.T) {
	for _, tc := range []struct {
		name              string
		completions       *int32
		succeeded, active int32
		want              bool
	}{
		{"reached", new(int32(3)), 3, 0, true},
		{"reached with pods left", new(int32(3)), 3, 1, true},
		{"short", new(int32(3)), 2, 0, false},
		{"work queue waits for active", nil, 1, 1, false},
		{"work queue done", nil, 1, 0, true},
		{"work queue nothing yet", nil, 0, 0, false},
	} {
		if got := succeededEnough(tc.completions, tc.succeeded, tc.active); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestTTLRemaining(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	fin := now.Add(-5 * time.Second)
	if got := ttlRemaining(fin, nil, now); got != -1 {
		t.Errorf("no ttl: %s", got)
	}
	if got := ttlRemaining(fin, new(int32(0)), now); got != 0 {
		t.Errorf("ttl 0: %s", got)
	}
	if got := ttlRemaining(fin, new(int32(8)), now); got != 3*time.Second {
		t.Errorf("ttl 8: %s", got)
	}
}

func TestNewPodIndexed(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "ns", UID: "u1"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"job-name": "pi"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}}}
	pod := newPod(job, 3)
	if pod.GenerateName != "pi-3-" || pod.Spec.Hostname != "pi-3" {
		t.Errorf("generateName %q hostname %q", pod.GenerateName, pod.Spec.Hostname)
	}
	if pod.Labels[batchv1.JobCompletionIndexAnnotation] != "3" || pod.Annotations[batchv1.JobCompletionIndexAnnotation] != "3" || pod.Labels["job-name"] != "pi" {
		t.Errorf("labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	if env := pod.Spec.Containers[0].Env; len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" {
		t.Errorf("env %v", env)
	}
	ref := pod.OwnerReferences[0]
	if ref.Kind != "Job" || ref.UID != "u1" || !*ref.Controller || !*ref.BlockOwnerDeletion {
		t.Errorf("owner %+v", ref)
	}
	if job.Spec.Template.Labels[batchv1.JobCompletionIndexAnnotation] != "" {
		t.Errorf("template mutated")
	}
	if plain := newPod(job, -1); plain.GenerateName != "pi-" || plain.Spec.Hostname != "" {
		t.Errorf("non-indexed pod %q %q", plain.GenerateName, plain.Spec.Hostname)
	}
}
