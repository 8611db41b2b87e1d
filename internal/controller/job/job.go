// Package job runs batch/v1 Jobs as upstream's Job controller does: it keeps
// min(parallelism, remaining completions) pods running from the template,
// counts successes and failures, backs off before replacing failed pods, and
// finishes the job as Complete or Failed (back-off limit, active deadline,
// pod failure policy), deleting it ttlSecondsAfterFinished later.
//
// Counting: succeeded and failed come from the job's pods in the informer and
// never go down in status (the batch.kubernetes.io/job-tracking finalizer is
// not used), so a finished pod deleted by hand stays counted unless a later pod
// finishes the same way before the next sync.
package job

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/loop"
)

// Event reasons.
const (
	ReasonSuccessfulCreate     = "SuccessfulCreate"
	ReasonFailedCreate         = "FailedCreate"
	ReasonSuccessfulDelete     = "SuccessfulDelete"
	ReasonFailedDelete         = "FailedDelete"
	ReasonCompleted            = "Completed"
	ReasonBackoffLimitExceeded = batchv1.JobReasonBackoffLimitExceeded
	ReasonDeadlineExceeded     = batchv1.JobReasonDeadlineExceeded
	ReasonPodFailurePolicy     = batchv1.JobReasonPodFailurePolicy
	ReasonSuspended            = "Suspended"
	ReasonResumed              = "Resumed"
)

// completionIndexEnv is the variable an Indexed job's containers read their index from.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

// recheckTerminating is how soon a finishing job looks again at pods still terminating.
const recheckTerminating = time.Second

var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

// Controller syncs Jobs with their pods.
type Controller struct {
	client     kubernetes.Interface
	jobLister  batchlisters.JobLister
	podLister  corelisters.PodLister
	jobsSynced cache.InformerSynced
	podsSynced cache.InformerSynced
	queue      *loop.Queue[string]
	events     *loop.Recorder
	recorder   record.EventRecorder
	exp        *expectations
	now        func() time.Time
}

// NewController wires the job and pod informers of factory to the work queue.
// The caller starts factory.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	jobs := factory.Batch().V1().Jobs()
	pods := factory.Core().V1().Pods()
	events := loop.NewRecorder(client)
	c := &Controller{
		client:     client,
		jobLister:  jobs.Lister(),
		podLister:  pods.Lister(),
		jobsSynced: jobs.Informer().HasSynced,
		podsSynced: pods.Informer().HasSynced,
		events:     events,
		recorder:   events.For("job-controller"),
		exp:        newExpectations(),
		now:        time.Now,
	}
	c.queue = loop.NewWithLimiter("job", workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Minute), c.sync)
	_, _ = jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueJob,
		UpdateFunc: func(_, obj any) { c.enqueueJob(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.exp.forget(key)
			}
		},
	})
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key, ok := ownerKey(obj); ok {
				c.exp.observe(key, 1, 0)
				c.queue.Add(key)
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			if key, ok := ownerKey(obj); ok {
				if oldObj.(*corev1.Pod).DeletionTimestamp == nil && obj.(*corev1.Pod).DeletionTimestamp != nil {
					c.exp.observe(key, 0, 1)
				}
				c.queue.Add(key)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if key, ok := ownerKey(obj); ok {
				if obj.(*corev1.Pod).DeletionTimestamp == nil {
					c.exp.observe(key, 0, 1)
				}
				c.queue.Add(key)
			}
		},
	})
	return c
}

func (c *Controller) enqueueJob(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// ownerKey is the queue key of the Job controlling a pod.
func ownerKey(obj any) (string, bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return "", false
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != jobKind.Kind || ref.APIVersion != jobKind.GroupVersion().String() {
		return "", false
	}
	return pod.Namespace + "/" + ref.Name, true
}

// Run waits for the caches, then syncs jobs with workers goroutines until ctx
// ends; it returns once they have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.Start()
	defer c.events.Stop()
	c.queue.Run(ctx, workers, c.jobsSynced, c.podsSynced)
}

// podSets sorts a job's pods by state.
type podSets struct {
	active, terminating []*corev1.Pod
	succeeded, failed   int32 // failed excludes pods an Ignore rule matched
	succeededIdx        map[int]bool
	failJobMessage      string
	failureTimes        []time.Time // of counted failures, for the back-off
	lastSuccess         time.Time
}

func classify(job *batchv1.Job, pods []*corev1.Pod) podSets {
	s := podSets{succeededIdx: map[int]bool{}}
	indexed := isIndexed(job)
	if indexed {
		// Indexes already recorded stay done even when their pods are gone.
		s.succeededIdx = parseIndexes(job.Status.CompletedIndexes, completions(job))
	}
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			s.succeeded++
			if t := finishTime(p); t.After(s.lastSuccess) {
				s.lastSuccess = t
			}
			if i := podIndex(p); indexed && i >= 0 && i < int(completions(job)) {
				s.succeededIdx[i] = true
			}
		case p.Status.Phase == corev1.PodFailed:
			m := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
			if m.action == batchv1.PodFailurePolicyActionIgnore {
				continue
			}
			if m.action == batchv1.PodFailurePolicyActionFailJob && s.failJobMessage == "" {
				s.failJobMessage = m.message
			}
			s.failed++
			s.failureTimes = append(s.failureTimes, finishTime(p))
		case p.DeletionTimestamp != nil:
			s.terminating = append(s.terminating, p)
		default:
			s.active = append(s.active, p)
		}
	}
	if indexed {
		s.succeeded = int32(len(s.succeededIdx))
	}
	return s
}

// finishTime is when a finished pod stopped: its containers' latest finish,
// else its latest condition change, else its creation.
func finishTime(p *corev1.Pod) time.Time {
	var t time.Time
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if t.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.LastTransitionTime.After(t) {
				t = c.LastTransitionTime.Time
			}
		}
	}
	if t.IsZero() {
		t = p.CreationTimestamp.Time
	}
	return t
}

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

func completions(job *batchv1.Job) int32 {
	if job.Spec.Completions == nil {
		return 0
	}
	return *job.Spec.Completions
}

func countReady(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.jobLister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	job := shared.DeepCopy()
	if finishedAt, ok := finished(job); ok {
		return c.expireFinished(ctx, key, job, finishedAt)
	}
	if !c.exp.satisfied(key) {
		return nil // the informer's pod events requeue the job
	}
	pods, err := c.podsOf(job)
	if err != nil {
		return err
	}
	now := c.now()
	s := classify(job, pods)
	st := job.Status.DeepCopy()
	st.Succeeded = max(st.Succeeded, s.succeeded)
	st.Failed = max(st.Failed, s.failed)
	if isIndexed(job) {
		st.CompletedIndexes = formatIndexes(s.succeededIdx)
	}
	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	var requeue time.Duration = -1
	active := s.active

	target := findCondition(st.Conditions, batchv1.JobFailureTarget)
	success := findCondition(st.Conditions, batchv1.JobSuccessCriteriaMet)
	decided := false // FailureTarget or SuccessCriteriaMet set by this sync
	if target == nil && success == nil {
		var start *time.Time
		if st.StartTime != nil && !suspended {
			start = &st.StartTime.Time
		}
		exceeded := pastBackoffLimit(*job.Spec.BackoffLimit, job.Spec.Template.Spec.RestartPolicy, st.Failed, restartsOnFailure(active))
		if f := jobFailure(s.failJobMessage, exceeded, start, job.Spec.ActiveDeadlineSeconds, now); f.reason != "" {
			st.Conditions = setCondition(st.Conditions, batchv1.JobFailureTarget, f.reason, f.message, now)
			decided = true
		} else if succeededEnough(job.Spec.Completions, st.Succeeded, int32(len(active))) {
			st.Conditions = setCondition(st.Conditions, batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", now)
			decided = true
		}
	}

	switch {
	case decided:
		// Just decided: record the verdict before deleting the pods that carry
		// its evidence (restart counts, exit codes), so a write that fails
		// cannot lose it. The status event brings the job back to finish.
		if st.StartTime == nil && !suspended {
			st.StartTime = &metav1.Time{Time: now} // as upstream: every started job has one
		}
	case target != nil || success != nil:
		// Finishing: stop what still runs, then finish once nothing is left.
		if err := c.deletePods(ctx, key, job, active); err != nil {
			return err
		}
		if len(active) == 0 && len(s.terminating) == 0 {
			if target != nil {
				st.Conditions = setCondition(st.Conditions, batchv1.JobFailed, target.Reason, target.Message, now)
				c.recorder.Event(job, corev1.EventTypeWarning, target.Reason, target.Message)
			} else {
				st.Conditions = setCondition(st.Conditions, batchv1.JobComplete, success.Reason, success.Message, now)
				st.CompletionTime = &metav1.Time{Time: now}
				c.recorder.Event(job, corev1.EventTypeNormal, ReasonCompleted, "Job completed")
			}
		} else {
			requeue = recheckTerminating
		}
		active = nil
	case suspended:
		if err := c.deletePods(ctx, key, job, active); err != nil {
			return err
		}
		active = nil
		if cond := findCondition(st.Conditions, batchv1.JobSuspended); cond == nil || cond.Status != corev1.ConditionTrue {
			st.Conditions = setCondition(st.Conditions, batchv1.JobSuspended, "JobSuspended", "Job suspended", now)
			c.recorder.Event(job, corev1.EventTypeNormal, ReasonSuspended, "Job suspended")
		}
		// The active deadline starts again when the job resumes.
		st.StartTime = nil
	default:
		if cond := findCondition(st.Conditions, batchv1.JobSuspended); cond != nil && cond.Status == corev1.ConditionTrue {
			cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, "JobResumed", "Job resumed"
			cond.LastProbeTime, cond.LastTransitionTime = metav1.Time{Time: now}, metav1.Time{Time: now}
			c.recorder.Event(job, corev1.EventTypeNormal, ReasonResumed, "Job resumed")
			st.StartTime = nil
		}
		if st.StartTime == nil {
			st.StartTime = &metav1.Time{Time: now}
		}
		if left := deadlineRemaining(&st.StartTime.Time, job.Spec.ActiveDeadlineSeconds, now); left >= 0 {
			requeue = left + 10*time.Millisecond
		}
		var wait time.Duration
		active, wait, err = c.managePods(ctx, key, job, s, now)
		if err != nil {
			return err
		}
		if wait > 0 && (requeue < 0 || wait < requeue) {
			requeue = wait
		}
	}

	st.Active = int32(len(active))
	st.Ready = new(countReady(active))
	st.Terminating = new(int32(len(s.terminating)))
	if !apiequality.Semantic.DeepEqual(&job.Status, st) {
		job.Status = *st
		if _, err := c.client.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of job %s: %w", key, err)
		}
	}
	if requeue >= 0 {
		c.queue.AddAfter(key, requeue)
	}
	return nil
}

// managePods creates or deletes pods so the right number run, and returns the
// pods now active and how long to wait before the back-off lets it create.
func (c *Controller) managePods(ctx context.Context, key string, job *batchv1.Job, s podSets, now time.Time) ([]*corev1.Pod, time.Duration, error) {
	active := s.active
	var excess []*corev1.Pod
	activeIdx := map[int]bool{}
	if isIndexed(job) {
		// One pod per index: drop duplicates, bad indexes and finished indexes.
		var keep []*corev1.Pod
		for _, p := range active {
			i := podIndex(p)
			if i < 0 || i >= int(completions(job)) || activeIdx[i] || s.succeededIdx[i] {
				excess = append(excess, p)
				continue
			}
			activeIdx[i] = true
			keep = append(keep, p)
		}
		active = keep
	}
	running := int32(len(active))
	if job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed {
		// Replace pods only once they are fully gone.
		running += int32(len(s.terminating))
	}
	want := wantActive(job.Spec.Parallelism, job.Spec.Completions, s.succeeded, running)
	if running > want {
		excess = append(excess, pickExcess(active, int(running-want))...)
		active = slices.DeleteFunc(active, func(p *corev1.Pod) bool { return slices.Contains(excess, p) })
	}
	if len(excess) > 0 {
		return active, 0, c.deletePods(ctx, key, job, excess)
	}
	if running >= want {
		return active, 0, nil
	}
	if left := backoffRemaining(s.failureTimes, s.lastSuccess, now, backoffBase, backoffMax); left > 0 {
		return active, left, nil
	}
	n := want - running
	indexes := make([]int, n)
	for i := range indexes {
		indexes[i] = -1
	}
	if isIndexed(job) {
		indexes = pendingIndexes(completions(job), s.succeededIdx, activeIdx, n)
	}
	c.exp.expect(key, len(indexes), 0)
	for _, idx := range indexes {
		pod, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, newPod(job, idx), metav1.CreateOptions{})
		if err != nil {
			c.exp.observe(key, 1, 0)
			if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
				continue
			}
			c.recorder.Eventf(job, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
			return active, 0, fmt.Errorf("create pod for job %s: %w", key, err)
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
		active = append(active, pod)
	}
	return active, 0, nil
}

// pickExcess chooses n pods to delete: not ready before ready, newest first.
func pickExcess(pods []*corev1.Pod, n int) []*corev1.Pod {
	sorted := slices.Clone(pods)
	slices.SortStableFunc(sorted, func(a, b *corev1.Pod) int {
		ra, rb := countReady([]*corev1.Pod{a}), countReady([]*corev1.Pod{b})
		if ra != rb {
			return int(ra - rb)
		}
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	return sorted[:min(n, len(sorted))]
}

// newPod builds a pod from the job's template; index is -1 unless Indexed.
func newPod(job *batchv1.Job, index int) *corev1.Pod {
	t := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
		},
		Spec: t.Spec,
	}
	if index >= 0 {
		s := strconv.Itoa(index)
		pod.GenerateName = job.Name + "-" + s + "-"
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Labels[batchv1.JobCompletionIndexAnnotation] = s
		pod.Annotations[batchv1.JobCompletionIndexAnnotation] = s
		if pod.Spec.Hostname == "" {
			pod.Spec.Hostname = job.Name + "-" + s
		}
		env := corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			APIVersion: "v1", FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation)}}}
		for i := range pod.Spec.InitContainers {
			pod.Spec.InitContainers[i].Env = append(pod.Spec.InitContainers[i].Env, env)
		}
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].Env = append(pod.Spec.Containers[i].Env, env)
		}
	}
	return pod
}

// deletePods deletes pods, recording an event for each.
func (c *Controller) deletePods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	if len(pods) == 0 {
		return nil
	}
	c.exp.expect(key, 0, len(pods))
	for _, p := range pods {
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil {
			c.exp.observe(key, 0, 1)
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			c.recorder.Eventf(job, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
			return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %s", p.Name)
	}
	return nil
}

// podsOf lists the pods the job's selector matches and it controls.
func (c *Controller) podsOf(job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil || job.Spec.Selector == nil {
		sel = labels.Nothing()
	}
	all, err := c.podLister.Pods(job.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range all {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == job.UID {
			out = append(out, p)
		}
	}
	return out, nil
}

// finished tells whether the job has a true Complete or Failed condition, and since when.
func finished(job *batchv1.Job) (time.Time, bool) {
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if c := findCondition(job.Status.Conditions, t); c != nil && c.Status == corev1.ConditionTrue {
			if t == batchv1.JobComplete && job.Status.CompletionTime != nil {
				return job.Status.CompletionTime.Time, true
			}
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// expireFinished deletes a finished job once its ttlSecondsAfterFinished has
// passed.
func (c *Controller) expireFinished(ctx context.Context, key string, job *batchv1.Job, finishedAt time.Time) error {
	left := ttlRemaining(finishedAt, job.Spec.TTLSecondsAfterFinished, c.now())
	if left < 0 {
		return nil
	}
	if left > 0 {
		c.queue.AddAfter(key, left)
		return nil
	}
	// Background: the garbage collector deletes the job's pods after it.
	policy := metav1.DeletePropagationBackground
	err := c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &job.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete expired job %s: %w", key, err)
	}
	return nil
}

func findCondition(conds []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// setCondition sets a true condition of type t, keeping its transition time
// when it was already true.
func setCondition(conds []batchv1.JobCondition, t batchv1.JobConditionType, reason, message string, now time.Time) []batchv1.JobCondition {
	at := metav1.Time{Time: now}
	if c := findCondition(conds, t); c != nil {
		if c.Status != corev1.ConditionTrue {
			c.LastTransitionTime = at
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = corev1.ConditionTrue, reason, message, at
		return conds
	}
	return append(conds, batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: at, LastTransitionTime: at})
}
