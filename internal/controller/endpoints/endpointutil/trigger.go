package endpointutil

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TriggerTimes computes the endpoints.kubernetes.io/last-change-trigger-time
// annotation: the time of the earliest change (a pod's Ready transition, or
// the Service's creation) that the controller has not yet seen in an earlier
// sync. It remembers, per Service, what the last sync saw; a sync that saw no
// new change gets the zero time, and the annotation is then dropped.
type TriggerTimes struct {
	mu    sync.Mutex
	state map[string]triggerState
}

type triggerState struct {
	service time.Time
	pods    map[string]time.Time
}

// NewTriggerTimes returns an empty tracker.
func NewTriggerTimes() *TriggerTimes {
	return &TriggerTimes{state: map[string]triggerState{}}
}

// Compute records what this sync of svc sees and returns the trigger time
// (zero when nothing changed since the last sync).
func (t *TriggerTimes) Compute(svc *corev1.Service, pods []*corev1.Pod) time.Time {
	key := svc.Namespace + "/" + svc.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.state[key]
	var earliest time.Time
	note := func(ts time.Time) {
		if earliest.IsZero() || ts.Before(earliest) {
			earliest = ts
		}
	}
	next := triggerState{service: svc.CreationTimestamp.Time, pods: make(map[string]time.Time, len(pods))}
	for _, pod := range pods {
		ts := podTriggerTime(pod)
		if ts.IsZero() {
			continue
		}
		next.pods[pod.Name] = ts
		if ts.After(last.pods[pod.Name]) {
			note(ts)
		}
	}
	if next.service.After(last.service) {
		note(next.service)
	}
	t.state[key] = next
	return earliest
}

// Forget drops what was remembered of a deleted Service.
func (t *TriggerTimes) Forget(key string) {
	t.mu.Lock()
	delete(t.state, key)
	t.mu.Unlock()
}

// podTriggerTime is when the pod last became ready or unready.
func podTriggerTime(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// FormatTriggerTime is the annotation's value format.
func FormatTriggerTime(ts time.Time) string { return ts.UTC().Format(time.RFC3339Nano) }
