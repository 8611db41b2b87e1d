package agent

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/podutil"
	"github.com/skiff-sh/skiff/internal/registry"
)

// containerView is what the agent knows of one container of a pod.
type containerView struct {
	name     string
	image    string
	latest   *runtimeapi.ContainerStatus // nil: never created
	previous *runtimeapi.ContainerStatus // the attempt before latest, for lastState
	// waiting explains a container that is not running: ContainerCreating,
	// PodInitializing, CrashLoopBackOff, CreateContainerError …
	waitingReason, waitingMessage string
	ready                         bool
	started                       bool
}

const runtimeScheme = "process://"

// apiTime is t as the API stores it: whole seconds (RFC 3339). Status built
// from finer times would never equal what the agent reads back, and every
// sync would write it again (the kubelet normalises the same way).
func apiTime(t time.Time) metav1.Time { return metav1.NewTime(t).Rfc3339Copy() }

func nanoTime(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return apiTime(time.Unix(0, ns))
}

func terminatedState(s *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: s.ExitCode, Reason: s.Reason, Message: s.Message,
		StartedAt: nanoTime(s.StartedAt), FinishedAt: nanoTime(s.FinishedAt), ContainerID: runtimeScheme + s.Id,
	}
}

// containerStatus renders a view as the API's ContainerStatus.
func containerStatus(v containerView) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: v.name, Image: v.image, ImageID: v.image, Ready: v.ready}
	started := v.started
	cs.Started = &started
	if v.previous != nil && v.previous.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		cs.LastTerminationState.Terminated = terminatedState(v.previous)
	}
	s := v.latest
	switch {
	case v.waitingReason != "":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: v.waitingReason, Message: v.waitingMessage}
		if s != nil && s.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			// Waiting to restart: the exit just seen becomes the last state.
			cs.LastTerminationState = corev1.ContainerState{Terminated: terminatedState(s)}
		}
	case s == nil || s.State == runtimeapi.ContainerState_CONTAINER_CREATED:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	case s.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: nanoTime(s.StartedAt)}
	default:
		cs.State.Terminated = terminatedState(s)
	}
	if s != nil {
		cs.ContainerID = runtimeScheme + s.Id
		if s.Metadata != nil {
			cs.RestartCount = int32(s.Metadata.Attempt)
		}
	}
	return cs
}

// podPhase follows the kubelet's rules over the rendered container statuses.
func podPhase(pod *corev1.Pod, initDone, initFailed bool, statuses []corev1.ContainerStatus) corev1.PodPhase {
	if initFailed && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	if !initDone {
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// setCondition sets condition t True, or False with reason.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason string, now metav1.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
		reason = ""
	}
	podutil.SetCondition(st, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}

// podStatus computes a pod's status from its containers' views.
func podStatus(pod *corev1.Pod, sandboxReady bool, inits, apps []containerView, nodeIP string, now time.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	mnow := apiTime(now)
	initDone, initFailed := true, false
	st.InitContainerStatuses = st.InitContainerStatuses[:0]
	for _, v := range inits {
		cs := containerStatus(v)
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
			initDone = false
			if t != nil && t.ExitCode != 0 {
				initFailed = true
			}
		}
	}
	if len(st.InitContainerStatuses) == 0 {
		st.InitContainerStatuses = nil
	}
	st.ContainerStatuses = st.ContainerStatuses[:0]
	allReady := true
	for _, v := range apps {
		if !initDone && v.latest == nil {
			v.waitingReason = "PodInitializing"
		}
		cs := containerStatus(v)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
	}
	st.Phase = podPhase(pod, initDone, initFailed, st.ContainerStatuses)
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		allReady = false
	}
	st.HostIP, st.PodIP = nodeIP, nodeIP
	st.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	st.PodIPs = []corev1.PodIP{{IP: nodeIP}}
	if st.StartTime == nil {
		st.StartTime = &mnow
	}
	st.QOSClass = registry.PodQOSClass(pod)
	reason := func(ok bool, r string) string {
		if ok {
			return ""
		}
		return r
	}
	setCondition(&st, corev1.PodReadyToStartContainers, sandboxReady, "", mnow)
	setCondition(&st, corev1.PodInitialized, initDone, reason(initDone, "ContainersNotInitialized"), mnow)
	setCondition(&st, corev1.ContainersReady, allReady, reason(allReady, "ContainersNotReady"), mnow)
	setCondition(&st, corev1.PodReady, allReady, reason(allReady, "ContainersNotReady"), mnow)
	setCondition(&st, corev1.PodScheduled, true, "", mnow)
	return st
}
