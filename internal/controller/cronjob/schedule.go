package cronjob

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // spec.timeZone must resolve even where the host has no zoneinfo

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The schedule arithmetic and the job bookkeeping are plain functions over
// values; the controller around them does the I/O.

// maxMissed is how many missed start times are counted before the controller
// warns that the clock or the deadline is off (upstream's "more than 100").
const maxMissed = 100

// cronJobKind is the controller owner reference kind of the jobs it makes.
var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// errUsesTZ marks a schedule that carries its own TZ=/CRON_TZ= prefix, which
// upstream tolerates (with a warning) on objects stored before validation forbade it.
var errUsesTZ = errors.New("CRON_TZ or TZ used in schedule is not officially supported")

// scheduleSpec returns the schedule robfig/cron parses: spec.timeZone
// becomes its TZ= prefix. A schedule already holding TZ is used as it is and
// reported through errUsesTZ, so the caller can warn and go on.
func scheduleSpec(cj *batchv1.CronJob) (string, error) {
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		return cj.Spec.Schedule, errUsesTZ
	}
	if cj.Spec.TimeZone != nil {
		return fmt.Sprintf("TZ=%s %s", *cj.Spec.TimeZone, cj.Spec.Schedule), nil
	}
	return cj.Spec.Schedule, nil
}

// unmet is the outcome of looking for a start time that has come and not been used.
type unmet struct {
	// scheduled is the most recent start time after the last one used (or
	// the CronJob's creation) that is not after now; zero if none.
	scheduled time.Time
	// missed counts the start times inside the starting deadline window (or
	// since the last one used); beyond maxMissed it is an estimate.
	missed int64
}

// mostRecentUnmet finds the latest start time in (last schedule or creation,
// now]. Unlike upstream it does not clamp that window to the starting
// deadline, so a start that is too late is reported (MissSchedule) rather
// than silently dropped; the jobs started are the same.
func mostRecentUnmet(cj *batchv1.CronJob, now time.Time, sched cron.Schedule) (unmet, error) {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	t1 := sched.Next(earliest)
	if t1.IsZero() {
		// robfig/cron gives up after five years: "0 0 30 2 *" never fires.
		return unmet{}, fmt.Errorf("no start time within five years of %s", earliest.UTC().Format(time.RFC3339))
	}
	if now.Before(t1) {
		return unmet{}, nil
	}
	t2 := sched.Next(t1)
	if now.Before(t2) {
		return unmet{scheduled: t1, missed: 1}, nil
	}
	step := t2.Sub(t1)
	if step < time.Second {
		return unmet{}, fmt.Errorf("time difference between two schedules is less than 1 second")
	}
	// Only start times inside the deadline window count as missed, and the
	// walk starts there: with a short deadline and an old last schedule,
	// walking from t1 could take forever.
	from := t1
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if w := sched.Next(now.Add(-time.Duration(*d) * time.Second)); w.After(from) {
			from = w
		}
	}
	if from.After(now) {
		return unmet{scheduled: latestNotAfter(t1, now, sched, step)}, nil
	}
	last, n := from, int64(0)
	for t := from; !t.IsZero() && !t.After(now); t = sched.Next(t) {
		last, n = t, n+1
		if n > maxMissed {
			// A clock off by years: estimate the count as upstream does and
			// jump back from now instead of walking the whole gap.
			n = int64(now.Sub(from)/step) + 1
			last = latestNotAfter(t1, now, sched, step)
			break
		}
	}
	return unmet{scheduled: last, missed: n}, nil
}

// latestNotAfter returns the latest start time in [t1, now] (t1 is one),
// looking back from now in doubling windows.
func latestNotAfter(t1, now time.Time, sched cron.Schedule, step time.Duration) time.Time {
	for d := step; ; d *= 2 {
		t := t1
		if from := now.Add(-d); from.After(t1) {
			if t = sched.Next(from); t.IsZero() || t.After(now) {
				continue
			}
		}
		for n := sched.Next(t); !n.IsZero() && !n.After(now); n = sched.Next(n) {
			t = n
		}
		return t
	}
}

// requeueAfter is how long to wait from now for the next start time, or
// zero when the schedule never fires again.
func requeueAfter(now time.Time, sched cron.Schedule) time.Duration {
	next := sched.Next(now)
	if next.IsZero() {
		return 0
	}
	return next.Sub(now)
}

// tooLate reports whether scheduled is past the starting deadline at now.
func tooLate(cj *batchv1.CronJob, scheduled, now time.Time) bool {
	d := cj.Spec.StartingDeadlineSeconds
	return d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now)
}

// jobName is deterministic per start time, so a start is never made twice:
// the second create is AlreadyExists. Minutes keep it short (the 52-character
// name limit leaves 11 for "-" and the number).
func jobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// jobFor builds the Job to start at scheduled from the CronJob's template.
func jobFor(cj *batchv1.CronJob, scheduled time.Time) (*batchv1.Job, error) {
	loc, err := time.LoadLocation(deref(cj.Spec.TimeZone))
	if err != nil {
		return nil, err
	}
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	annotations := tmpl.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobName(cj, scheduled),
			Namespace:       cj.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, cronJobKind)},
		},
		Spec: tmpl.Spec,
	}, nil
}

// finished returns the job's terminal condition (Complete or Failed), if any.
func finished(j *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

// inActive reports whether uid is in the CronJob's active list.
func inActive(cj *batchv1.CronJob, uid types.UID) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}

// removeActive drops uid from the active list, reporting whether it was there.
func removeActive(cj *batchv1.CronJob, uid types.UID) bool {
	n := len(cj.Status.Active)
	cj.Status.Active = slices.DeleteFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
	return len(cj.Status.Active) != n
}

// overHistoryLimit returns the oldest finished jobs beyond limit: by start
// time, jobs never started last, names breaking ties.
func overHistoryLimit(jobs []*batchv1.Job, limit int32) []*batchv1.Job {
	if int32(len(jobs)) <= limit {
		return nil
	}
	sorted := slices.Clone(jobs)
	slices.SortFunc(sorted, func(a, b *batchv1.Job) int {
		as, bs := a.Status.StartTime, b.Status.StartTime
		switch {
		case as == nil && bs != nil:
			return 1
		case as != nil && bs == nil:
			return -1
		case as != nil && !as.Equal(bs):
			return as.Compare(bs.Time)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return sorted[:len(sorted)-int(limit)]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
