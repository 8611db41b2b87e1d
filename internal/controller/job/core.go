package job

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Back-off before recreating failed pods: backoffBase doubled per failure,
// capped at backoffMax. Variables so tests can shorten them.
var (
	backoffBase = 10 * time.Second
	backoffMax  = 6 * time.Minute
)

// backoffDelay is how long to wait after the latest failure before creating
// a replacement, given how many pods have failed so far.
func backoffDelay(failures int32, base, maxDelay time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := base
	for i := int32(1); i < failures; i++ {
		d *= 2
		if d >= maxDelay {
			return maxDelay
		}
	}
	return min(d, maxDelay)
}

// backoffRemaining is how long creation must still wait: the delay for the
// failures since the latest success, counted from the latest failure.
func backoffRemaining(failures []time.Time, lastSuccess, now time.Time, base, maxDelay time.Duration) time.Duration {
	var n int32
	var last time.Time
	for _, f := range failures {
		if f.After(lastSuccess) {
			n++
			if f.After(last) {
				last = f
			}
		}
	}
	if n == 0 {
		return 0
	}
	return max(0, last.Add(backoffDelay(n, base, maxDelay)).Sub(now))
}

// wantActive is how many pods should be running: parallelism, but never more
// than the completions still missing. A work-queue job (no completions) stops
// starting pods once any pod succeeded.
func wantActive(parallelism, completions *int32, succeeded, active int32) int32 {
	p := int32(1)
	if parallelism != nil {
		p = *parallelism
	}
	if completions == nil {
		if succeeded > 0 {
			return min(active, p)
		}
		return p
	}
	return max(0, min(p, *completions-succeeded))
}

// pendingIndexes returns up to n of the lowest indexes in [0, completions)
// that neither succeeded nor have an active pod.
func pendingIndexes(completions int32, succeeded, active map[int]bool, n int32) []int {
	var out []int
	for i := 0; i < int(completions) && int32(len(out)) < n; i++ {
		if !succeeded[i] && !active[i] {
			out = append(out, i)
		}
	}
	return out
}

// podIndex reads a pod's completion index, or -1.
func podIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = pod.Labels[batchv1.JobCompletionIndexAnnotation]
	}
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// formatIndexes renders a set of indexes as upstream's completedIndexes:
// sorted, consecutive runs collapsed ("1,3-5,7").
func formatIndexes(set map[int]bool) string {
	idx := make([]int, 0, len(set))
	for i := range set {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(idx[i]))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// parseIndexes reads a completedIndexes string back into a set, keeping
// indexes below completions and skipping anything malformed.
func parseIndexes(s string, completions int32) map[int]bool {
	set := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := max(first, 0); i <= last && i < int(completions); i++ {
			set[i] = true
		}
	}
	return set
}

// failureMatch is the outcome of a pod failure policy for one failed pod.
type failureMatch struct {
	action  batchv1.PodFailurePolicyAction // "" when no rule matched (the failure counts)
	message string
}

// matchPodFailurePolicy finds the first rule that matches a failed pod.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, pod *corev1.Pod) failureMatch {
	if policy == nil {
		return failureMatch{}
	}
	for i, rule := range policy.Rules {
		if r := rule.OnExitCodes; r != nil {
			statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
			for _, cs := range statuses {
				if r.ContainerName != nil && *r.ContainerName != cs.Name {
					continue
				}
				t := cs.State.Terminated
				if t == nil || t.ExitCode == 0 {
					continue
				}
				in := slices.Contains(r.Values, t.ExitCode)
				if (r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) || (r.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in) {
					return failureMatch{action: rule.Action, message: fmt.Sprintf(
						"Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
						cs.Name, pod.Namespace, pod.Name, t.ExitCode, rule.Action, i)}
				}
			}
		}
		for _, pat := range rule.OnPodConditions {
			status := pat.Status
			if status == "" {
				status = corev1.ConditionTrue
			}
			for _, c := range pod.Status.Conditions {
				if c.Type == pat.Type && c.Status == status {
					return failureMatch{action: rule.Action, message: fmt.Sprintf(
						"Pod %s/%s has condition %s matching %s rule at index %d",
						pod.Namespace, pod.Name, c.Type, rule.Action, i)}
				}
			}
		}
	}
	return failureMatch{}
}

// restartsOnFailure sums container restarts of pods still running or pending:
// with restartPolicy OnFailure the kubelet restarts failed containers in place,
// and those restarts count towards the back-off limit.
func restartsOnFailure(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			n += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			n += cs.RestartCount
		}
	}
	return n
}

// pastBackoffLimit tells whether failures (and, for OnFailure, in-place
// restarts) have gone past the job's backoffLimit, as upstream decides it.
func pastBackoffLimit(backoffLimit int32, restartPolicy corev1.RestartPolicy, failed, restarts int32) bool {
	if failed > backoffLimit {
		return true
	}
	if restartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	if backoffLimit == 0 {
		return restarts > 0
	}
	return restarts >= backoffLimit
}

// failure is why a job fails, or reason "" when it does not.
type failure struct {
	reason, message string
}

// Messages as upstream words them.
const (
	msgBackoffLimit = "Job has reached the specified backoff limit"
	msgDeadline     = "Job was active longer than specified deadline"
)

// jobFailure decides whether the job fails now: a FailJob rule of the pod
// failure policy first, then the back-off limit, then the active deadline.
func jobFailure(failJobMessage string, backoffExceeded bool, startTime *time.Time, activeDeadlineSeconds *int64, now time.Time) failure {
	switch {
	case failJobMessage != "":
		return failure{batchv1.JobReasonPodFailurePolicy, failJobMessage}
	case backoffExceeded:
		return failure{batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit}
	case deadlineRemaining(startTime, activeDeadlineSeconds, now) == 0 && startTime != nil && activeDeadlineSeconds != nil:
		return failure{batchv1.JobReasonDeadlineExceeded, msgDeadline}
	}
	return failure{}
}

// deadlineRemaining is the time left before activeDeadlineSeconds passes, or
// -1 when the job has no deadline (or has not started).
func deadlineRemaining(startTime *time.Time, activeDeadlineSeconds *int64, now time.Time) time.Duration {
	if startTime == nil || activeDeadlineSeconds == nil {
		return -1
	}
	left := startTime.Add(time.Duration(*activeDeadlineSeconds) * time.Second).Sub(now)
	return max(0, left)
}

// succeededEnough tells whether the job met its completions: completions
// succeeded pods (or indexes), or for a work-queue job, one success and
// nothing left running.
func succeededEnough(completions *int32, succeeded, active int32) bool {
	if completions == nil {
		return succeeded > 0 && active == 0
	}
	return succeeded >= *completions
}

// ttlRemaining is how long a finished job lives on, or -1 for no TTL.
func ttlRemaining(finished time.Time, ttlSeconds *int32, now time.Time) time.Duration {
	if ttlSeconds == nil || finished.IsZero() {
		return -1
	}
	return max(0, finished.Add(time.Duration(*ttlSeconds)*time.Second).Sub(now))
}
