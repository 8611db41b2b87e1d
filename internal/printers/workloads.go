package printers

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// apps/v1 and batch/v1 printers. Descriptions come from the same API
// versions' swagger docs as upstream's, so the text matches upstream.

var deploymentColumns = columns(
	nameColumn(),
	stringColumn("Ready", "Number of the pod with ready state"),
	stringColumn("Up-to-date", extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]),
	stringColumn("Available", extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]),
	ageColumn(),
	containerColumns(),
	wide(stringColumn("Selector", extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"])),
)

func deploymentCells(d *appsv1.Deployment, now time.Time) []any {
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	return []any{
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas(d.Spec.Replicas)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		age(d.CreationTimestamp, now),
		names, images, selector,
	}
}

var replicaSetColumns = columns(
	nameColumn(),
	integerColumn("Desired", extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
	integerColumn("Current", extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
	integerColumn("Ready", extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
	ageColumn(),
	containerColumns(),
	wide(stringColumn("Selector", extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["selector"])),
)

func replicaSetCells(rs *appsv1.ReplicaSet, now time.Time) []any {
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []any{
		rs.Name,
		int64(replicas(rs.Spec.Replicas)),
		int64(rs.Status.Replicas),
		int64(rs.Status.ReadyReplicas),
		age(rs.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(rs.Spec.Selector),
	}
}

var jobColumns = columns(
	nameColumn(),
	stringColumn("Status", "Status of the job."),
	stringColumn("Completions", batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
	stringColumn("Duration", "Time required to complete the job."),
	ageColumn(),
	containerColumns(),
	wide(stringColumn("Selector", batchv1.JobSpec{}.SwaggerDoc()["selector"])),
)

func jobCells(j *batchv1.Job, now time.Time) []any {
	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return []any{
		j.Name,
		jobStatus(j),
		jobCompletions(j),
		jobDuration(j, now),
		age(j.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(j.Spec.Selector),
	}
}

// jobStatus is Complete, Failed, Terminating, Suspended, FailureTarget or
// Running, in that order of precedence.
func jobStatus(j *batchv1.Job) string {
	switch {
	case jobCondition(j, batchv1.JobComplete):
		return "Complete"
	case jobCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case jobCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	default:
		return "Running"
	}
}

// jobCondition reports whether the first condition of type t is True.
func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// jobCompletions is "succeeded/completions"; jobs without a completion count
// need one success, shown as "n/1" (or "n/1 of parallelism").
func jobCompletions(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	if j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// jobDuration is the time from start to completion (or to now while running).
func jobDuration(j *batchv1.Job, now time.Time) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	default:
		return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}
}

var cronJobColumns = columns(
	nameColumn(),
	stringColumn("Schedule", batchv1beta1.CronJobSpec{}.SwaggerDoc()["schedule"]),
	stringColumn("Timezone", batchv1beta1.CronJobSpec{}.SwaggerDoc()["timeZone"]),
	booleanColumn("Suspend", batchv1beta1.CronJobSpec{}.SwaggerDoc()["suspend"]),
	integerColumn("Active", batchv1beta1.CronJobStatus{}.SwaggerDoc()["active"]),
	stringColumn("Last Schedule", batchv1beta1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]),
	ageColumn(),
	containerColumns(),
	wide(stringColumn("Selector", batchv1.JobSpec{}.SwaggerDoc()["selector"])),
)

func cronJobCells(cj *batchv1.CronJob, now time.Time) []any {
	lastSchedule := "<none>"
	if cj.Status.LastScheduleTime != nil {
		lastSchedule = age(*cj.Status.LastScheduleTime, now)
	}
	timeZone := "<none>"
	if cj.Spec.TimeZone != nil {
		timeZone = *cj.Spec.TimeZone
	}
	tmpl := cj.Spec.JobTemplate.Spec
	names, images := containerCells(tmpl.Template.Spec.Containers)
	return []any{
		cj.Name,
		cj.Spec.Schedule,
		timeZone,
		boolPtr(cj.Spec.Suspend),
		int64(len(cj.Status.Active)),
		lastSchedule,
		age(cj.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(tmpl.Selector),
	}
}
