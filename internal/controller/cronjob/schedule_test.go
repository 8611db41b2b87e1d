package cronjob

import (
	"os"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// at parses an RFC 3339 time; tests read better with literal instants.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func parse(t testing.TB, cj *batchv1.CronJob) cron.Schedule {
	t.Helper()
	spec, err := scheduleSpec(cj)
	if err != nil {
		t.Fatalf("scheduleSpec: %v", err)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatalf("parse %q: %v", spec, err)
	}
	return sched
}

func TestMostRecentUnmet(t *testing.T) {
	tests := []struct {
		name      string
		schedule  string
		tz        string
		created   string
		last      string // lastScheduleTime, if any
		deadline  *int64
		now       string
		scheduled string // "" for none
		missed    int64
		late      bool
		err       bool
	}{
		{name: "before the first start", schedule: "* * * * *", created: "2026-03-02T10:00:30Z", now: "2026-03-02T10:00:45Z"},
		{name: "at the first start", schedule: "* * * * *", created: "2026-03-02T10:00:30Z", now: "2026-03-02T10:01:00Z",
			scheduled: "2026-03-02T10:01:00Z", missed: 1},
		{name: "missed starts: the most recent wins", schedule: "* * * * *", created: "2026-03-02T10:00:30Z", now: "2026-03-02T10:03:10Z",
			scheduled: "2026-03-02T10:03:00Z", missed: 3},
		{name: "last start already made", schedule: "* * * * *", created: "2026-03-02T09:00:00Z", last: "2026-03-02T10:01:00Z",
			now: "2026-03-02T10:01:30Z"},
		{name: "deadline window counts only recent misses", schedule: "* * * * *", created: "2026-03-02T09:00:00Z",
			last: "2026-03-02T10:00:00Z", deadline: new(int64(30)), now: "2026-03-02T10:05:10Z", scheduled: "2026-03-02T10:05:00Z", missed: 1},
		{name: "start past its deadline is reported late", schedule: "* * * * *", created: "2026-03-02T09:00:00Z",
			last: "2026-03-02T10:00:00Z", deadline: new(int64(5)), now: "2026-03-02T10:05:10Z", scheduled: "2026-03-02T10:05:00Z", late: true},
		{name: "more than 100 missed", schedule: "* * * * *", created: "2026-03-02T00:00:00Z", now: "2026-03-05T00:00:30Z",
			scheduled: "2026-03-05T00:00:00Z", missed: 3*24*60 + 1 - 1},
		{name: "deadline keeps the count small", schedule: "* * * * *", created: "2026-03-02T00:00:00Z", deadline: new(int64(200)),
			now: "2026-03-05T00:00:30Z", scheduled: "2026-03-05T00:00:00Z", missed: 3},
		{name: "clock off by decades", schedule: "0 * * * *", created: "2000-01-01T00:00:00Z", now: "2026-03-02T10:30:00Z",
			scheduled: "2026-03-02T10:00:00Z", missed: 229378},
		{name: "irregular schedule", schedule: "0 0 * * 1,3", created: "2020-01-01T00:00:00Z", now: "2026-03-06T12:00:00Z",
			scheduled: "2026-03-04T00:00:00Z", missed: 1126},
		{name: "time zone in winter", schedule: "0 9 * * *", tz: "America/New_York", created: "2026-01-10T00:00:00Z",
			now: "2026-01-10T14:30:00Z", scheduled: "2026-01-10T14:00:00Z", missed: 1},
		{name: "time zone in summer", schedule: "0 9 * * *", tz: "America/New_York", created: "2026-07-10T00:00:00Z",
			now: "2026-07-10T13:30:00Z", scheduled: "2026-07-10T13:00:00Z", missed: 1},
		{name: "never fires", schedule: "0 0 30 2 *", created: "2026-01-01T00:00:00Z", now: "2026-07-10T13:30:00Z", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := &batchv1.CronJob{
				ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(at(t, tt.created))},
				Spec:       batchv1.CronJobSpec{Schedule: tt.schedule, StartingDeadlineSeconds: tt.deadline},
			}
			if tt.tz != "" {
				cj.Spec.TimeZone = &tt.tz
			}
			if tt.last != "" {
				cj.Status.LastScheduleTime = &metav1.Time{Time: at(t, tt.last)}
			}
			now := at(t, tt.now)
			u, err := mostRecentUnmet(cj, now, parse(t, cj))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			var want time.Time
			if tt.scheduled != "" {
				want = at(t, tt.scheduled)
			}
			if !u.scheduled.Equal(want) || u.missed != tt.missed {
				t.Errorf("got %s (%d missed), want %s (%d missed)", u.scheduled.UTC().Format(time.RFC3339), u.missed, tt.scheduled, tt.missed)
			}
			if got := !u.scheduled.IsZero() && tooLate(cj, u.scheduled, now); got != tt.late {
				t.Errorf("tooLate = %v, want %v", got, tt.late)
			}
		})
	}
}

func TestRequeueAfterIsTheNextStartTime(t *testing.T) {
	cj := &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *"}}
	if got := requeueAfter(at(t, "2026-03-02T10:03:30Z"), parse(t, cj)); got != 90*time.Second {
		t.Errorf("every 5 minutes at 10:03:30: requeue after %s, want 1m30s", got)
	}
	tz := "Asia/Tokyo"
	cj = &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "0 9 * * *", TimeZone: &tz}}
	// 09:00 in Tokyo is 00:00 UTC.
	if got := requeueAfter(at(t, "2026-03-02T23:00:00Z"), parse(t, cj)); got != time.Hour {
		t.Errorf("09:00 Tokyo at 23:00 UTC: requeue after %s, want 1h", got)
	}
	cj = &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "0 0 30 2 *"}}
	if got := requeueAfter(at(t, "2026-03-02T23:00:00Z"), parse(t, cj)); got != 0 {
		t.Errorf("a schedule that never fires: requeue after %s, want none", got)
	}
}

func TestScheduleSpecAddsTimeZone(t *testing.T) {
	tz := "Europe/Paris"
	for _, tt := range []struct {
		cj      batchv1.CronJobSpec
		want    string
		usesTZ  bool
		comment string
	}{
		{cj: batchv1.CronJobSpec{Schedule: "@hourly"}, want: "@hourly"},
		{cj: batchv1.CronJobSpec{Schedule: "0 1 * * *", TimeZone: &tz}, want: "TZ=Europe/Paris 0 1 * * *"},
		{cj: batchv1.CronJobSpec{Schedule: "CRON_TZ=UTC 0 1 * * *", TimeZone: &tz}, want: "CRON_TZ=UTC 0 1 * * *", usesTZ: true},
	} {
		got, err := scheduleSpec(&batchv1.CronJob{Spec: tt.cj})
		if got != tt.want || (err != nil) != tt.usesTZ {
			t.Errorf("%q: got %q, %v; want %q, usesTZ %v", tt.cj.Schedule, got, err, tt.want, tt.usesTZ)
		}
	}
}

func TestJobForCopiesTemplate(t *testing.T) {
	tz := "America/New_York"
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "ns", UID: "cj-uid"},
		Spec: batchv1.CronJobSpec{Schedule: "0 9 * * *", TimeZone: &tz, JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "report"}, Annotations: map[string]string{"note": "x"}},
			Spec:       batchv1.JobSpec{BackoffLimit: new(int32(2))},
		}},
	}
	job, err := jobFor(cj, at(t, "2026-01-10T14:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "report-29467560"; job.Name != want { // 2026-01-10T14:00Z in unix minutes
		t.Errorf("name %q, want %q", job.Name, want)
	}
	if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-01-10T09:00:00-05:00" {
		t.Errorf("scheduled timestamp annotation %q, want the time in the CronJob's zone", got)
	}
	if job.Annotations["note"] != "x" || job.Labels["app"] != "report" || *job.Spec.BackoffLimit != 2 {
		t.Errorf("template not copied: %+v", job)
	}
	if len(cj.Spec.JobTemplate.Annotations) != 1 {
		t.Errorf("template annotations changed: %v", cj.Spec.JobTemplate.Annotations)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != "cj-uid" || ref.Kind != "CronJob" || ref.APIVersion != "batch/v1" {
		t.Errorf("controller ref %+v", ref)
	}
}

func TestOverHistoryLimitPicksOldest(t *testing.T) {
	started := func(name, ts string) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if ts != "" {
			j.Status.StartTime = &metav1.Time{Time: at(t, ts)}
		}
		return j
	}
	jobs := []*batchv1.Job{
		started("never", ""),
		started("c", "2026-03-02T10:03:00Z"),
		started("a", "2026-03-02T10:01:00Z"),
		started("b", "2026-03-02T10:01:00Z"),
	}
	var got []string
	for _, j := range overHistoryLimit(jobs, 1) {
		got = append(got, j.Name)
	}
	if want := []string{"a", "b", "c"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("deleted %v, want %v", got, want)
	}
	if over := overHistoryLimit(jobs, 4); over != nil {
		t.Errorf("within the limit, deleted %v", over)
	}
	if over := overHistoryLimit(jobs, 0); len(over) != 4 {
		t.Errorf("limit 0 deletes all, got %d", len(over))
	}
}

// TestMain pins the process time zone: schedules without spec.timeZone use
// it, as upstream's use the controller manager's.
func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Exit(m.Run())
}
