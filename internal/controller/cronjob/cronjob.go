// Package cronjob starts batch/v1 Jobs on a cron schedule as upstream's
// CronJob controller (v2) does: one Job per start time, named
// <cronjob>-<scheduled unix minutes> and controlled by the CronJob; the
// concurrency policy (Allow, Forbid, Replace), the starting deadline, suspend
// and spec.timeZone decide whether a start happens; finished jobs beyond the
// history limits are deleted. Each CronJob is looked at again exactly when
// its next start time comes, never polled.
package cronjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// Event reasons, as upstream names them.
const (
	ReasonSuccessfulCreate    = "SuccessfulCreate"
	ReasonFailedCreate        = "FailedCreate"
	ReasonSuccessfulDelete    = "SuccessfulDelete"
	ReasonFailedDelete        = "FailedDelete"
	ReasonSawCompletedJob     = "SawCompletedJob"
	ReasonUnexpectedJob       = "UnexpectedJob"
	ReasonMissingJob          = "MissingJob"
	ReasonMissSchedule        = "MissSchedule"
	ReasonTooManyMissedTimes  = "TooManyMissedTimes"
	ReasonJobAlreadyActive    = "JobAlreadyActive"
	ReasonUnparseableSchedule = "UnparseableSchedule"
	ReasonUnsupportedSchedule = "UnsupportedSchedule"
	ReasonInvalidSchedule     = "InvalidSchedule"
	ReasonUnknownTimeZone     = "UnknownTimeZone"
)

// Controller starts the Jobs of CronJobs.
type Controller struct {
	client   kubernetes.Interface
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced
	queue    *loop.Queue[string]
	events   *loop.Recorder
	recorder record.EventRecorder
	clock    clock.PassiveClock
}

// NewController wires the cronjob and job informers of factory to the work
// queue. The caller starts factory.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	return NewControllerWithClock(client, factory, clock.RealClock{})
}

// NewControllerWithClock is NewController reading the time from clk, so
// tests can move time instead of waiting for it.
func NewControllerWithClock(client kubernetes.Interface, factory informers.SharedInformerFactory, clk clock.PassiveClock) *Controller {
	cronJobs := factory.Batch().V1().CronJobs()
	jobs := factory.Batch().V1().Jobs()
	rec := loop.NewRecorder(client)
	c := &Controller{
		client:   client,
		cronJobs: cronJobs.Lister(),
		jobs:     jobs.Lister(),
		synced:   []cache.InformerSynced{cronJobs.Informer().HasSynced, jobs.Informer().HasSynced},
		events:   rec,
		recorder: rec.For("cronjob-controller"),
		clock:    clk,
	}
	c.queue = loop.New("cronjob", c.sync)
	_, _ = cronJobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: c.updateCronJob,
		DeleteFunc: c.enqueue,
	})
	_, _ = jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueOwner,
		UpdateFunc: func(oldObj, obj any) {
			if o, n := cronJobRef(oldObj), cronJobRef(obj); o != nil && (n == nil || o.UID != n.UID) {
				c.enqueueOwner(oldObj)
			}
			c.enqueueOwner(obj)
		},
		DeleteFunc: c.enqueueOwner,
	})
	return c
}

// Run starts jobs until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.Start()
	defer c.events.Stop()
	c.queue.Run(ctx, workers, c.synced...)
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// updateCronJob looks at a CronJob whose schedule or time zone changed only
// at its new next start time, as upstream does: an immediate look would start
// a job for a start time of the new schedule that has already passed.
func (c *Controller) updateCronJob(oldObj, obj any) {
	old, cj := oldObj.(*batchv1.CronJob), obj.(*batchv1.CronJob)
	if old.Spec.Schedule != cj.Spec.Schedule || deref(old.Spec.TimeZone) != deref(cj.Spec.TimeZone) {
		if spec, err := scheduleSpec(cj); err == nil || errors.Is(err, errUsesTZ) {
			if sched, err := cron.ParseStandard(spec); err == nil {
				if d := requeueAfter(c.clock.Now(), sched); d > 0 {
					key, _ := cache.MetaNamespaceKeyFunc(cj)
					c.queue.AddAfter(key, d)
					return
				}
			}
		}
	}
	c.enqueue(obj)
}

// cronJobRef returns the CronJob controller reference of a job, if any.
func cronJobRef(obj any) *metav1.OwnerReference {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return nil
	}
	ref := metav1.GetControllerOf(j)
	if ref == nil || ref.Kind != cronJobKind.Kind || ref.APIVersion != cronJobKind.GroupVersion().String() {
		return nil
	}
	return ref
}

func (c *Controller) enqueueOwner(obj any) {
	if ref := cronJobRef(obj); ref != nil {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		c.queue.Add(obj.(*batchv1.Job).Namespace + "/" + ref.Name)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // its jobs go with it through garbage collection
	}
	if err != nil {
		return err
	}
	jobs, err := c.ownedJobs(cached)
	if err != nil {
		return err
	}
	cj := cached.DeepCopy()
	requeue, changed, syncErr := c.syncCronJob(ctx, cj, jobs, c.clock.Now())
	if c.cleanupFinishedJobs(ctx, cj, jobs) {
		changed = true
	}
	if changed {
		if _, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of cronjob %s: %w", key, err)
		}
	}
	if syncErr != nil {
		return syncErr
	}
	if requeue > 0 {
		return loop.Requeue(requeue)
	}
	return nil
}

// ownedJobs lists the jobs the CronJob controls (by UID: not those of an
// earlier CronJob of the same name).
func (c *Controller) ownedJobs(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	all, err := c.jobs.Jobs(cj.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var owned []*batchv1.Job
	for _, j := range all {
		if ref := cronJobRef(j); ref != nil && ref.UID == cj.UID {
			owned = append(owned, j)
		}
	}
	return owned, nil
}

// syncCronJob brings cj's status up to date with its jobs and starts the job
// of the most recent start time when that is due. It changes cj in place and
// returns when to look again and whether the status changed.
func (c *Controller) syncCronJob(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job, now time.Time) (time.Duration, bool, error) {
	changed := false
	seen := map[types.UID]bool{}
	for _, j := range jobs {
		seen[j.UID] = true
		cond, done := finished(j)
		active := inActive(cj, j.UID)
		switch {
		case !active && !done:
			// Our cache may lag our own status write: ask the API before warning.
			fresh, err := c.client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
			if err != nil {
				return 0, changed, fmt.Errorf("get cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
			}
			if !inActive(fresh, j.UID) {
				// Created by hand (kubectl create job --from), or by us just
				// before a crash; upstream leaves it out of status.active too.
				c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonUnexpectedJob, "Saw a job that the controller did not create or forgot: %s", j.Name)
			}
		case active && done:
			removeActive(cj, j.UID)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, ReasonSawCompletedJob, "Saw completed job: %s, condition: %v", j.Name, cond)
			changed = true
		}
		// Any successful job, active or not, moves lastSuccessfulTime forward.
		if cond == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(cj.Status.LastSuccessfulTime == nil || j.Status.CompletionTime.After(cj.Status.LastSuccessfulTime.Time)) {
			cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
			changed = true
		}
	}
	// Active jobs missing from the cache may be gone, or too new for it.
	for _, ref := range cj.Status.Active {
		if seen[ref.UID] {
			continue
		}
		j, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, changed, fmt.Errorf("get job %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if err != nil || j.UID != ref.UID {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, ReasonMissingJob, "Active job went missing: %v", ref.Name)
			removeActive(cj, ref.UID)
			changed = true
		}
	}

	// A CronJob being deleted, suspended, or with a bad schedule or time
	// zone starts nothing and needs no timer: a change to it will be an event.
	if cj.DeletionTimestamp != nil || (cj.Spec.Suspend != nil && *cj.Spec.Suspend) {
		return 0, changed, nil
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonUnknownTimeZone, "invalid timeZone: %q: %s", *tz, err)
			return 0, changed, nil
		}
	}
	spec, err := scheduleSpec(cj)
	if errors.Is(err, errUsesTZ) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonUnsupportedSchedule, "CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonUnparseableSchedule, "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return 0, changed, nil
	}
	u, err := mostRecentUnmet(cj, now, sched)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonInvalidSchedule, "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return 0, changed, nil
	}
	if u.missed > maxMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonTooManyMissedTimes, "too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", u.missed)
	}
	next := requeueAfter(now, sched)
	if u.scheduled.IsZero() {
		return next, changed, nil
	}
	if tooLate(cj, u.scheduled, now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonMissSchedule, "Missed scheduled time to start a job: %s", u.scheduled.UTC().Format(time.RFC1123Z))
		return next, changed, nil
	}
	name := jobName(cj, u.scheduled)
	if cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(u.scheduled) || activeByName(cj, name) {
		return next, changed, nil // already started
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			// The start is not dropped: when the running job finishes, its
			// update brings us back and the start is made late, if the
			// deadline allows.
			c.recorder.Eventf(cj, corev1.EventTypeNormal, ReasonJobAlreadyActive, "Not starting job because prior execution is running and concurrency policy is Forbid")
			return next, changed, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
			if err := c.deleteJob(ctx, cj, ref.Name, ref.UID); err != nil {
				return 0, changed, err
			}
			changed = true
		}
	}

	job, err := jobFor(cj, u.scheduled)
	if err != nil {
		return 0, changed, err
	}
	created, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return 0, changed, nil // every later create would fail the same way
	case apierrors.IsAlreadyExists(err):
		// Made by us before a lost status write, or by someone else.
		existing, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return 0, changed, fmt.Errorf("get job %s/%s: %w", cj.Namespace, job.Name, err)
		}
		if !metav1.IsControlledBy(existing, cj) || inActive(cj, existing.UID) {
			return next, changed, nil
		}
		created = existing
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating job: %v", err)
		return 0, changed, fmt.Errorf("create job %s/%s: %w", cj.Namespace, job.Name, err)
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created job %v", created.Name)
	}
	cj.Status.Active = append(cj.Status.Active, corev1.ObjectReference{
		Kind: "Job", APIVersion: batchv1.SchemeGroupVersion.String(), Namespace: created.Namespace,
		Name: created.Name, UID: created.UID, ResourceVersion: created.ResourceVersion,
	})
	cj.Status.LastScheduleTime = &metav1.Time{Time: u.scheduled}
	return next, true, nil
}

func activeByName(cj *batchv1.CronJob, name string) bool {
	for _, r := range cj.Status.Active {
		if r.Name == name {
			return true
		}
	}
	return false
}

// cleanupFinishedJobs deletes the oldest finished jobs beyond the history
// limits, reporting whether the status changed.
func (c *Controller) cleanupFinishedJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) bool {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue // already going
		}
		switch cond, _ := finished(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	changed := false
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil {
			continue
		}
		for _, j := range overHistoryLimit(h.jobs, *h.limit) {
			if c.deleteJob(ctx, cj, j.Name, j.UID) == nil {
				changed = true
			}
		}
	}
	return changed
}

// deleteJob deletes a job (its pods follow through garbage collection) and
// drops it from the active list.
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, name string, uid types.UID) error {
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid} // never a job of the same name made since
	}
	err := c.client.BatchV1().Jobs(cj.Namespace).Delete(ctx, name, opts)
	if err != nil && !apierrors.IsNotFound(err) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, ReasonFailedDelete, "Deleted job: %v", err)
		return fmt.Errorf("delete job %s/%s: %w", cj.Namespace, name, err)
	}
	removeActive(cj, uid)
	if err == nil {
		c.recorder.Eventf(cj, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted job %v", name)
	}
	return nil
}
