package cronjob

import (
	"context"
	"errors"
	"slices"
	"strings"
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
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// fixture syncs one CronJob against a fake clientset whose informer caches
// hold exactly the given objects, at a time the test sets, and records the
// actions and events the sync produced.
type fixture struct {
	t      *testing.T
	client *fake.Clientset
	c      *Controller
	events *record.FakeRecorder
	clock  *clocktesting.FakePassiveClock
}

func newFixture(t *testing.T, now string, cj *batchv1.CronJob, jobs ...*batchv1.Job) *fixture {
	objs := []runtime.Object{cj}
	for _, j := range jobs {
		objs = append(objs, j)
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakePassiveClock(at(t, now))
	c := NewControllerWithClock(client, factory, clk)
	t.Cleanup(c.events.Stop)
	events := record.NewFakeRecorder(100)
	c.recorder = events
	_ = factory.Batch().V1().CronJobs().Informer().GetIndexer().Add(cj)
	for _, j := range jobs {
		_ = factory.Batch().V1().Jobs().Informer().GetIndexer().Add(j)
	}
	return &fixture{t: t, client: client, c: c, events: events, clock: clk}
}

// sync runs one sync and returns the requeue it asked for (0 for none).
func (f *fixture) sync() time.Duration {
	f.t.Helper()
	err := f.c.sync(context.Background(), "default/report")
	var again loop.Requeue
	if errors.As(err, &again) {
		return time.Duration(again)
	}
	if err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	return 0
}

// actions lists "verb resource[/subresource] name" for the writes the sync made.
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "get" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		r := a.GetResource().Resource
		if s := a.GetSubresource(); s != "" {
			r += "/" + s
		}
		name := ""
		switch a := a.(type) {
		case core.CreateAction:
			name = a.GetObject().(metav1.Object).GetName()
		case core.UpdateAction:
			name = a.GetObject().(metav1.Object).GetName()
		case core.DeleteAction:
			name = a.GetName()
		}
		out = append(out, a.GetVerb()+" "+r+" "+name)
	}
	return out
}

func (f *fixture) expectWrites(want ...string) {
	f.t.Helper()
	if got := f.writes(); !slices.Equal(got, want) {
		f.t.Errorf("writes:\n got %q\nwant %q", got, want)
	}
}

// status is the CronJob as the sync left it in the API.
func (f *fixture) status() batchv1.CronJobStatus {
	f.t.Helper()
	cj, err := f.client.BatchV1().CronJobs("default").Get(context.Background(), "report", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cj.Status
}

// expectEvents checks the reasons of the events recorded, in order.
func (f *fixture) expectEvents(reasons ...string) {
	f.t.Helper()
	var got []string
	for {
		select {
		case e := <-f.events.Events:
			got = append(got, strings.Fields(e)[1])
			continue
		default:
		}
		break
	}
	if !slices.Equal(got, reasons) {
		f.t.Errorf("events %q, want %q", got, reasons)
	}
}

func testCronJob(mutate func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "default", UID: "cj-uid",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC))},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: new(false),
			SuccessfulJobsHistoryLimit: new(int32(3)), FailedJobsHistoryLimit: new(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure,
					Containers: []corev1.Container{{Name: "c", Image: "unused", Command: []string{"true"}}}}}}},
		},
	}
	if mutate != nil {
		mutate(cj)
	}
	return cj
}

// ownedJob is a job of testCronJob scheduled at the given minute of 10:00 on
// 2026-03-02, in the given state ("running", "complete" or "failed").
func ownedJob(cj *batchv1.CronJob, minute int, state string) *batchv1.Job {
	scheduled := time.Date(2026, 3, 2, 10, minute, 0, 0, time.UTC)
	j, _ := jobFor(cj, scheduled)
	j.UID = types.UID(j.Name + "-uid")
	j.Status.StartTime = &metav1.Time{Time: scheduled.Add(time.Second)}
	switch state {
	case "complete":
		j.Status.CompletionTime = &metav1.Time{Time: scheduled.Add(10 * time.Second)}
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	case "failed":
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
	}
	return j
}

func activeRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name, UID: j.UID}
}

// minuteName is the job name for a start at 10:<minute> on 2026-03-02.
func minuteName(minute int) string {
	return jobName(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "report"}}, time.Date(2026, 3, 2, 10, minute, 0, 0, time.UTC))
}

func TestCreatesJobAtScheduleTime(t *testing.T) {
	f := newFixture(t, "2026-03-02T10:01:05Z", testCronJob(nil))
	if got := f.sync(); got != 55*time.Second {
		t.Errorf("requeue after %s, want 55s (the next start at 10:02)", got)
	}
	f.expectWrites("create jobs "+minuteName(1), "update cronjobs/status report")
	f.expectEvents(ReasonSuccessfulCreate)
	job, err := f.client.BatchV1().Jobs("default").Get(context.Background(), minuteName(1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != "cj-uid" {
		t.Errorf("job controller ref %+v", ref)
	}
	if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-03-02T10:01:00Z" {
		t.Errorf("scheduled timestamp %q", got)
	}
	st := f.status()
	if len(st.Active) != 1 || st.Active[0].Name != minuteName(1) || !st.LastScheduleTime.Time.Equal(at(t, "2026-03-02T10:01:00Z")) {
		t.Errorf("status %+v", st)
	}
}

func TestWaitsForNextScheduleTime(t *testing.T) {
	f := newFixture(t, "2026-03-02T10:00:45Z", testCronJob(nil))
	if got := f.sync(); got != 15*time.Second {
		t.Errorf("requeue after %s, want 15s", got)
	}
	f.expectWrites()
	f.expectEvents()
}

func TestStartAlreadyMadeIsNotRepeated(t *testing.T) {
	cj := testCronJob(nil)
	running := ownedJob(cj, 1, "running")
	cj.Status.Active = []corev1.ObjectReference{activeRef(running)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	f := newFixture(t, "2026-03-02T10:01:20Z", cj, running)
	if got := f.sync(); got != 40*time.Second {
		t.Errorf("requeue after %s, want 40s", got)
	}
	f.expectWrites()
}

func TestConcurrencyPolicies(t *testing.T) {
	tests := []struct {
		policy batchv1.ConcurrencyPolicy
		writes []string
		events []string
		active []string
	}{
		{policy: batchv1.AllowConcurrent,
			writes: []string{"create jobs " + minuteName(2), "update cronjobs/status report"},
			events: []string{ReasonSuccessfulCreate}, active: []string{minuteName(1), minuteName(2)}},
		{policy: batchv1.ForbidConcurrent,
			events: []string{ReasonJobAlreadyActive}, active: []string{minuteName(1)}},
		{policy: batchv1.ReplaceConcurrent,
			writes: []string{"delete jobs " + minuteName(1), "create jobs " + minuteName(2), "update cronjobs/status report"},
			events: []string{ReasonSuccessfulDelete, ReasonSuccessfulCreate}, active: []string{minuteName(2)}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			cj := testCronJob(func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = tt.policy })
			running := ownedJob(cj, 1, "running")
			cj.Status.Active = []corev1.ObjectReference{activeRef(running)}
			cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
			f := newFixture(t, "2026-03-02T10:02:01Z", cj, running)
			if got := f.sync(); got != 59*time.Second {
				t.Errorf("requeue after %s, want 59s", got)
			}
			f.expectWrites(tt.writes...)
			f.expectEvents(tt.events...)
			var active []string
			for _, r := range f.status().Active {
				active = append(active, r.Name)
			}
			if !slices.Equal(active, tt.active) {
				t.Errorf("active %v, want %v", active, tt.active)
			}
		})
	}
}

func TestForbidStartsLateWhenPriorJobFinishes(t *testing.T) {
	// The 10:02 start was held back by a running job that has now finished.
	cj := testCronJob(func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent })
	done := ownedJob(cj, 1, "complete")
	cj.Status.Active = []corev1.ObjectReference{activeRef(done)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	f := newFixture(t, "2026-03-02T10:02:30Z", cj, done)
	f.sync()
	f.expectWrites("create jobs "+minuteName(2), "update cronjobs/status report")
	f.expectEvents(ReasonSawCompletedJob, ReasonSuccessfulCreate)
}

func TestMissedStartBeyondDeadlineIsSkipped(t *testing.T) {
	cj := testCronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = new(int64(10)) })
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	f := newFixture(t, "2026-03-02T10:02:30Z", cj)
	if got := f.sync(); got != 30*time.Second {
		t.Errorf("requeue after %s, want 30s", got)
	}
	f.expectWrites()
	f.expectEvents(ReasonMissSchedule)
}

func TestStartWithinDeadlineIsMade(t *testing.T) {
	cj := testCronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = new(int64(60)) })
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	f := newFixture(t, "2026-03-02T10:02:30Z", cj)
	f.sync()
	f.expectWrites("create jobs "+minuteName(2), "update cronjobs/status report")
}

func TestTooManyMissedStartsWarnsAndStartsTheLatest(t *testing.T) {
	// Created 10:00:30, now three hours later: 180 starts were missed.
	f := newFixture(t, "2026-03-02T13:00:10Z", testCronJob(nil))
	f.sync()
	f.expectEvents(ReasonTooManyMissedTimes, ReasonSuccessfulCreate)
	want := jobName(testCronJob(nil), at(t, "2026-03-02T13:00:00Z"))
	f.expectWrites("create jobs "+want, "update cronjobs/status report")
}

func TestSuspendedCronJobStartsNothing(t *testing.T) {
	f := newFixture(t, "2026-03-02T10:05:00Z", testCronJob(func(cj *batchv1.CronJob) { cj.Spec.Suspend = new(true) }))
	if got := f.sync(); got != 0 {
		t.Errorf("suspended cronjob requeued after %s; resuming is an update event", got)
	}
	f.expectWrites()
}

func TestTimeZoneSchedulesInThatZone(t *testing.T) {
	cj := testCronJob(func(cj *batchv1.CronJob) {
		cj.Spec.Schedule = "30 10 * * *"
		cj.Spec.TimeZone = new("Asia/Kolkata") // UTC+05:30: 10:30 there is 05:00 UTC
		cj.CreationTimestamp = metav1.NewTime(at(t, "2026-03-02T00:00:00Z"))
	})
	f := newFixture(t, "2026-03-02T05:00:01Z", cj)
	if got := f.sync(); got != 24*time.Hour-time.Second {
		t.Errorf("requeue after %s, want a day less a second", got)
	}
	job, err := f.client.BatchV1().Jobs("default").Get(context.Background(), jobName(cj, at(t, "2026-03-02T05:00:00Z")), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("job for 05:00 UTC: %v (writes %q)", err, f.writes())
	}
	if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-03-02T10:30:00+05:30" {
		t.Errorf("scheduled timestamp %q", got)
	}
}

func TestUnknownTimeZoneStartsNothing(t *testing.T) {
	f := newFixture(t, "2026-03-02T10:05:00Z", testCronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = new("Mars/Olympus") }))
	f.sync()
	f.expectWrites()
	f.expectEvents(ReasonUnknownTimeZone)
}

func TestCompletedJobLeavesActiveList(t *testing.T) {
	cj := testCronJob(nil)
	done := ownedJob(cj, 1, "complete")
	cj.Status.Active = []corev1.ObjectReference{activeRef(done)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	f := newFixture(t, "2026-03-02T10:01:30Z", cj, done)
	f.sync()
	f.expectWrites("update cronjobs/status report")
	f.expectEvents(ReasonSawCompletedJob)
	st := f.status()
	if len(st.Active) != 0 || st.LastSuccessfulTime == nil || !st.LastSuccessfulTime.Time.Equal(done.Status.CompletionTime.Time) {
		t.Errorf("status %+v", st)
	}
}

func TestMissingActiveJobIsDropped(t *testing.T) {
	cj := testCronJob(nil)
	gone := ownedJob(cj, 1, "running")
	cj.Status.Active = []corev1.ObjectReference{activeRef(gone)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	f := newFixture(t, "2026-03-02T10:01:30Z", cj) // not in the cache, nor the API
	f.sync()
	f.expectWrites("update cronjobs/status report")
	f.expectEvents(ReasonMissingJob)
	if st := f.status(); len(st.Active) != 0 {
		t.Errorf("active %v", st.Active)
	}
}

func TestManualJobIsReportedNotAdopted(t *testing.T) {
	cj := testCronJob(nil)
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:01:00Z")}
	manual := ownedJob(cj, 1, "running")
	manual.Name, manual.UID = "manual", "manual-uid"
	f := newFixture(t, "2026-03-02T10:01:30Z", cj, manual)
	f.sync()
	f.expectWrites()
	f.expectEvents(ReasonUnexpectedJob)
}

func TestJobMadeBeforeLostStatusWriteIsRecorded(t *testing.T) {
	// The job exists in the API but neither the cache nor the status knows it.
	cj := testCronJob(nil)
	existing := ownedJob(cj, 1, "running")
	f := newFixture(t, "2026-03-02T10:01:30Z", cj)
	if _, err := f.client.BatchV1().Jobs("default").Create(context.Background(), existing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.client.ClearActions()
	f.sync()
	f.expectWrites("create jobs "+minuteName(1), "update cronjobs/status report")
	f.expectEvents()
	if st := f.status(); len(st.Active) != 1 || st.Active[0].UID != existing.UID {
		t.Errorf("active %v", st.Active)
	}
}

func TestHistoryLimitsDeleteOldestFinishedJobs(t *testing.T) {
	cj := testCronJob(func(cj *batchv1.CronJob) {
		cj.Spec.SuccessfulJobsHistoryLimit = new(int32(2))
		cj.Spec.FailedJobsHistoryLimit = new(int32(1))
	})
	cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, "2026-03-02T10:06:00Z")}
	jobs := []*batchv1.Job{
		ownedJob(cj, 1, "complete"), ownedJob(cj, 2, "failed"), ownedJob(cj, 3, "complete"),
		ownedJob(cj, 4, "failed"), ownedJob(cj, 5, "complete"), ownedJob(cj, 6, "running"),
	}
	cj.Status.Active = []corev1.ObjectReference{activeRef(jobs[5])}
	f := newFixture(t, "2026-03-02T10:06:30Z", cj, jobs...)
	f.sync()
	f.expectWrites("delete jobs "+minuteName(1), "delete jobs "+minuteName(2), "update cronjobs/status report")
	f.expectEvents(ReasonSuccessfulDelete, ReasonSuccessfulDelete)
	if st := f.status(); len(st.Active) != 1 || !st.LastSuccessfulTime.Time.Equal(jobs[4].Status.CompletionTime.Time) {
		t.Errorf("status %+v", st)
	}
}
