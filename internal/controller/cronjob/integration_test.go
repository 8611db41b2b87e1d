package cronjob_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/controller/cronjob"
	"github.com/skiff-sh/skiff/internal/testenv"
)

const waitFor = 20 * time.Second

// TestCronJobOnRealServer runs the controller against a real API server with
// a fake clock: time jumps from one start to the next instead of passing.
// There is no job controller here; the test finishes jobs itself.
func TestCronJobOnRealServer(t *testing.T) {
	env := testenv.Start(t)
	// The clock starts well before the CronJob exists, so nothing is due
	// until the test moves it.
	clk := clocktesting.NewFakePassiveClock(time.Now().Add(-time.Hour))
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := cronjob.NewControllerWithClock(env.Client, factory, clk)
	env.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 2) })
	ctx := t.Context()
	client := env.Client.BatchV1()

	cj, err := client.CronJobs("default").Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick"},
		Spec: batchv1.CronJobSpec{
			Schedule:                   "* * * * *",
			SuccessfulJobsHistoryLimit: new(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "c", Image: "unused", Command: []string{"true"}}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create cronjob: %v", err)
	}
	jobAt := func(ts time.Time) string { return fmt.Sprintf("tick-%d", ts.Unix()/60) }

	// Just past the first start after the CronJob's creation.
	first := cj.CreationTimestamp.Truncate(time.Minute).Add(time.Minute)
	clk.SetTime(first.Add(time.Second))
	touch(t, env) // the real-time requeue is up to a minute away; an update syncs now
	// The start that came due is made, and recorded in status.
	job1 := waitJob(t, env, jobAt(first))
	if ref := metav1.GetControllerOf(job1); ref == nil || ref.UID != cj.UID {
		t.Errorf("job controller ref %+v, want the cronjob", ref)
	}
	if got, want := job1.Annotations[batchv1.CronJobScheduledTimestampAnnotation], first.UTC().Format(time.RFC3339); got != want {
		t.Errorf("scheduled timestamp %q, want %q", got, want)
	}
	waitStatus(t, env, "job 1 active", func(st batchv1.CronJobStatus) bool {
		return len(st.Active) == 1 && st.Active[0].UID == job1.UID && st.LastScheduleTime != nil && st.LastScheduleTime.Time.Equal(first)
	})

	// Its completion takes it out of status.active and sets lastSuccessfulTime.
	finishJob(t, env, job1.Name, first.Add(5*time.Second))
	waitStatus(t, env, "job 1 seen completed", func(st batchv1.CronJobStatus) bool {
		return len(st.Active) == 0 && st.LastSuccessfulTime != nil && st.LastSuccessfulTime.Time.Equal(first.Add(5*time.Second))
	})

	// A minute later (by the clock) the next start is made; finishing it
	// puts the first job over the history limit of one.
	second := first.Add(time.Minute)
	clk.SetTime(second.Add(time.Second))
	touch(t, env)
	job2 := waitJob(t, env, jobAt(second))
	finishJob(t, env, job2.Name, second.Add(5*time.Second))
	testenv.Eventually(t, waitFor, "job 1 deleted over the history limit", func() bool {
		_, err := client.Jobs("default").Get(ctx, job1.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	waitEvents(t, env, cronjob.ReasonSuccessfulCreate, cronjob.ReasonSawCompletedJob, cronjob.ReasonSuccessfulDelete)

	// With Replace, a job still running at the next start is deleted for it.
	update(t, env, func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent })
	third, fourth := second.Add(time.Minute), second.Add(2*time.Minute)
	clk.SetTime(third.Add(time.Second))
	touch(t, env)
	job3 := waitJob(t, env, jobAt(third))
	// Time moves on only once the start is recorded: a status write lost to
	// the touch's conflict would otherwise be retried at the next start.
	waitStatus(t, env, "job 3 active", func(st batchv1.CronJobStatus) bool {
		return len(st.Active) == 1 && st.Active[0].UID == job3.UID
	})
	clk.SetTime(fourth.Add(time.Second))
	touch(t, env)
	job4 := waitJob(t, env, jobAt(fourth))
	testenv.Eventually(t, waitFor, "running job 3 replaced", func() bool {
		_, err := client.Jobs("default").Get(ctx, job3.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	waitStatus(t, env, "only job 4 active", func(st batchv1.CronJobStatus) bool {
		return len(st.Active) == 1 && st.Active[0].UID == job4.UID
	})
}

// update changes the CronJob's spec through the API.
func update(t *testing.T, env *testenv.Env, change func(*batchv1.CronJob)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cj, err := env.Client.BatchV1().CronJobs("default").Get(context.Background(), "tick", metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(cj)
		_, err = env.Client.BatchV1().CronJobs("default").Update(context.Background(), cj, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update cronjob: %v", err)
	}
}

func waitJob(t *testing.T, env *testenv.Env, name string) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	testenv.Eventually(t, waitFor, "job "+name, func() bool {
		var err error
		job, err = env.Client.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
		return err == nil
	})
	return job
}

func waitStatus(t *testing.T, env *testenv.Env, what string, ok func(batchv1.CronJobStatus) bool) {
	t.Helper()
	testenv.Eventually(t, waitFor, what, func() bool {
		cj, err := env.Client.BatchV1().CronJobs("default").Get(context.Background(), "tick", metav1.GetOptions{})
		return err == nil && ok(cj.Status)
	})
}

// finishJob does what the job controller would: marks the job Complete.
func finishJob(t *testing.T, env *testenv.Env, name string, at time.Time) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		j, err := env.Client.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		start, done := metav1.NewTime(at.Add(-time.Second)), metav1.NewTime(at)
		j.Status.StartTime, j.Status.CompletionTime, j.Status.Succeeded = &start, &done, 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: done},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: done},
		}
		_, err = env.Client.BatchV1().Jobs("default").UpdateStatus(context.Background(), j, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("finish job %s: %v", name, err)
	}
}

// touch changes the CronJob's labels, an update that makes the controller look now.
func touch(t *testing.T, env *testenv.Env) {
	t.Helper()
	update(t, env, func(cj *batchv1.CronJob) {
		cj.Labels = map[string]string{"touched": time.Now().Format("150405.000000")}
	})
}

// waitEvents waits for events with each reason on the CronJob.
func waitEvents(t *testing.T, env *testenv.Env, reasons ...string) {
	t.Helper()
	for _, reason := range reasons {
		testenv.Eventually(t, waitFor, "event "+reason, func() bool {
			list, err := env.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
			if err != nil {
				return false
			}
			for _, e := range list.Items {
				if e.InvolvedObject.Kind == "CronJob" && e.InvolvedObject.Name == "tick" && e.Reason == reason {
					return true
				}
			}
			return false
		})
	}
}
