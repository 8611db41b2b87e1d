package agent

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the agent puts on sandboxes and containers to find them again.
const (
	labelPodUID        = "io.kubernetes.pod.uid"
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelContainerName = "io.kubernetes.container.name"
	// resyncPeriod re-syncs every pod now and then: ConfigMap and Secret volumes follow their objects.
	resyncPeriod = 10 * time.Second
)

// podWorker owns one pod: every change to it is made by its goroutine.
type podWorker struct {
	a    *Agent
	uid  types.UID
	mu   sync.Mutex
	pod  *corev1.Pod // the latest; nil once the object is gone
	poke chan struct{}
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	w := &podWorker{a: a, uid: pod.UID, pod: pod, poke: make(chan struct{}, 1)}
	w.wake()
	return w
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.wake()
}

func (w *podWorker) wake() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

func (w *podWorker) latest() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) run(ctx context.Context) {
	timer := time.NewTimer(resyncPeriod)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.poke:
		case <-timer.C:
		}
		next, done := w.sync(ctx)
		if done {
			return
		}
		if next <= 0 || next > resyncPeriod {
			next = resyncPeriod
		}
		timer.Reset(next)
	}
}

// podContainers groups a pod's runtime containers by name, newest attempt first.
type podContainers map[string][]*runtimeapi.ContainerStatus

func (w *podWorker) containers(ctx context.Context) (podContainers, error) {
	return w.a.podContainers(ctx, w.uid)
}

// podContainers lists a pod's runtime containers (logs and streams use it too).
func (a *Agent) podContainers(ctx context.Context, uid types.UID) (podContainers, error) {
	list, err := a.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{labelPodUID: string(uid)}})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := podContainers{}
	for _, c := range list {
		resp, err := a.rt.ContainerStatus(ctx, c.Id, false)
		if err != nil || resp.Status == nil {
			continue
		}
		name := c.Labels[labelContainerName]
		out[name] = append(out[name], resp.Status)
	}
	for _, l := range out {
		sort.Slice(l, func(i, j int) bool { return l[i].Metadata.GetAttempt() > l[j].Metadata.GetAttempt() })
	}
	return out, nil
}

func (pc podContainers) latest(name string) *runtimeapi.ContainerStatus {
	if l := pc[name]; len(l) > 0 {
		return l[0]
	}
	return nil
}

func (pc podContainers) previous(name string) *runtimeapi.ContainerStatus {
	if l := pc[name]; len(l) > 1 {
		return l[1]
	}
	return nil
}

func (w *podWorker) sandbox(ctx context.Context) (*runtimeapi.PodSandbox, error) {
	return w.a.podSandbox(ctx, w.uid)
}

// podSandbox is a pod's ready sandbox, or nil (port-forward uses it too).
func (a *Agent) podSandbox(ctx context.Context, uid types.UID) (*runtimeapi.PodSandbox, error) {
	sbs, err := a.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(uid)}})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	for _, sb := range sbs {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			return sb, nil
		}
	}
	return nil, nil
}

// sync moves the pod one step towards its spec; it returns when to look
// again and whether the worker is finished.
func (w *podWorker) sync(ctx context.Context) (time.Duration, bool) {
	pod := w.latest()
	if pod == nil {
		w.teardown(ctx, nil, 2)
		return 0, true
	}
	if pod.DeletionTimestamp != nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		w.teardown(ctx, pod, grace)
		zero := int64(0)
		err := w.a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			if ctx.Err() == nil { // a stopping agent finishes the deletion when it starts again
				w.a.log.Warn("finish pod deletion", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
			return time.Second, false
		}
		return 0, true
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished pods keep their status; only make sure nothing runs.
		w.stopAll(ctx, pod, 0)
		return resyncPeriod, false
	}
	next, err := w.reconcile(ctx, pod)
	if err != nil {
		if ctx.Err() != nil {
			return 0, true // the agent is stopping: not a failure of the pod
		}
		w.a.log.Warn("sync pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return 2 * time.Second, false
	}
	return next, false
}

// reconcile runs the sandbox, init containers and containers, then posts status.
func (w *podWorker) reconcile(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	now := time.Now()
	sb, err := w.sandbox(ctx)
	if err != nil {
		return 0, err
	}
	sbConfig := w.sandboxConfig(pod)
	vols, volErr := w.a.prepareVolumes(ctx, pod)
	if sb == nil && volErr == nil {
		id, err := w.a.rt.RunPodSandbox(ctx, sbConfig, "")
		if err != nil {
			return 0, fmt.Errorf("run sandbox: %w", err)
		}
		sb = &runtimeapi.PodSandbox{Id: id}
	}
	pcs, err := w.containers(ctx)
	if err != nil {
		return 0, err
	}
	next := resyncPeriod
	later := func(d time.Duration) {
		if d > 0 && d < next {
			next = d
		}
	}
	waiting := map[string][2]string{}
	started := false // a container was started (or its start tried): its state changed
	start := func(c *corev1.Container, latest *runtimeapi.ContainerStatus) {
		d, reason := w.startOrWait(ctx, pod, sb.Id, sbConfig, c, latest, vols, now)
		if reason[0] != "CrashLoopBackOff" { // back-off waits without calling the runtime
			started = true
		}
		if reason[0] != "" {
			waiting[c.Name] = reason
		}
		later(d)
	}
	if volErr != nil {
		for _, c := range pod.Spec.Containers {
			waiting[c.Name] = [2]string{"ContainerCreating", volErr.Error()}
		}
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: %v", volErr)
		later(2 * time.Second)
	} else {
		initDone := true
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			latest := pcs.latest(c.Name)
			if latest != nil && latest.State == runtimeapi.ContainerState_CONTAINER_EXITED && latest.ExitCode == 0 {
				continue
			}
			initDone = false
			if latest == nil || latest.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				if latest != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
					break // the pod has failed
				}
				start(c, latest)
			}
			break
		}
		for i := range pod.Spec.Containers {
			if !initDone {
				break
			}
			c := &pod.Spec.Containers[i]
			latest := pcs.latest(c.Name)
			if latest != nil && !shouldRestart(pod, latest) {
				continue
			}
			start(c, latest)
		}
	}
	if started {
		// Read the containers again: starting them changed their state.
		if pcs, err = w.containers(ctx); err != nil {
			return 0, err
		}
	}
	runningIDs := map[string]bool{}
	view := func(c *corev1.Container, probed bool) containerView {
		v := containerView{name: c.Name, image: c.Image, latest: pcs.latest(c.Name), previous: pcs.previous(c.Name)}
		if r, ok := waiting[c.Name]; ok {
			v.waitingReason, v.waitingMessage = r[0], r[1]
		}
		if v.latest != nil && v.latest.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			runningIDs[v.latest.Id] = true
			v.started, v.ready = true, true
			if probed {
				w.a.probes.ensure(ctx, pod, c, v.latest.Id, pod.UID)
				v.started, v.ready = w.a.probes.status(pod.UID, v.latest.Id, c)
			}
		}
		return v
	}
	var inits, apps []containerView
	for i := range pod.Spec.InitContainers {
		inits = append(inits, view(&pod.Spec.InitContainers[i], false))
	}
	for i := range pod.Spec.Containers {
		apps = append(apps, view(&pod.Spec.Containers[i], true))
	}
	w.a.probes.forget(pod.UID, runningIDs)
	status := podStatus(pod, sb != nil, inits, apps, w.a.ip, now)
	posted, err := w.a.postPodStatus(ctx, pod, status)
	if err != nil {
		return 0, err
	}
	if posted != nil {
		// Until the informer brings it, the next sync (a runtime change
		// pokes one at once) would compare against, and write from, the
		// pod before this write: a needless 409.
		w.mu.Lock()
		if w.pod == pod {
			w.pod = posted
		}
		w.mu.Unlock()
	}
	return next, nil
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func shouldRestart(pod *corev1.Pod, s *runtimeapi.ContainerStatus) bool {
	if s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		return false
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return s.ExitCode != 0
	}
	return true
}

// startOrWait starts the next attempt of a container unless it is in
// crash-loop back-off; it returns when to look again and, while the
// container cannot run, the waiting reason and message.
func (w *podWorker) startOrWait(ctx context.Context, pod *corev1.Pod, sandboxID string, sbConfig *runtimeapi.PodSandboxConfig,
	c *corev1.Container, latest *runtimeapi.ContainerStatus, vols map[string]string, now time.Time) (time.Duration, [2]string) {
	attempt := uint32(0)
	if latest != nil {
		attempt = latest.Metadata.GetAttempt() + 1
		ranFor := time.Duration(latest.FinishedAt - latest.StartedAt)
		if latest.State == runtimeapi.ContainerState_CONTAINER_CREATED {
			// Created but never started (the agent stopped in between): start it.
			if err := w.a.rt.StartContainer(ctx, latest.Id); err != nil {
				return 2 * time.Second, [2]string{"RunContainerError", err.Error()}
			}
			return 0, [2]string{}
		}
		delay := restartDelay(int32(latest.Metadata.GetAttempt()), ranFor)
		if wait := time.Unix(0, latest.FinishedAt).Add(delay).Sub(now); wait > 0 {
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID)
			return wait, [2]string{"CrashLoopBackOff", msg}
		}
		if delay > 0 || latest.ExitCode != 0 {
			w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
		}
	}
	cfg, err := w.a.containerConfig(ctx, pod, c, attempt, vols)
	if err == nil {
		var id string
		if id, err = w.a.rt.CreateContainer(ctx, sandboxID, cfg, sbConfig); err == nil {
			w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
			if err = w.a.rt.StartContainer(ctx, id); err == nil {
				w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
				w.pruneAttempts(ctx, c.Name, attempt)
				if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
					if herr := w.a.runHook(ctx, pod, c, id, c.Lifecycle.PostStart, podGrace(pod)); herr != nil {
						// As the kubelet: a failed postStart hook kills the container.
						w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed: %v", herr)
						_ = w.a.rt.StopContainer(ctx, id, podGrace(pod))
					}
				}
				return 0, [2]string{}
			}
		}
	}
	w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
	return 10 * time.Second, [2]string{"CreateContainerError", err.Error()}
}

// pruneAttempts removes attempts older than the previous one: the previous
// stays for `kubectl logs --previous`.
func (w *podWorker) pruneAttempts(ctx context.Context, name string, current uint32) {
	if current < 2 {
		return // no attempt older than the previous one: spare a start the runtime reads
	}
	pcs, err := w.containers(ctx)
	if err != nil {
		return
	}
	for _, s := range pcs[name] {
		if s.Metadata.GetAttempt()+1 < current {
			_ = w.a.rt.RemoveContainer(ctx, s.Id)
		}
	}
}

// stopAll stops every running container of the pod, each within grace seconds.
func (w *podWorker) stopAll(ctx context.Context, pod *corev1.Pod, grace int64) {
	pcs, err := w.containers(ctx)
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for name, l := range pcs {
		for _, s := range l {
			if s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				left := grace
				if pod != nil {
					w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
					if c := specContainer(pod, name); c != nil && grace > 0 {
						// preStop runs first, inside the grace period; SIGTERM gets
						// what is left, at least 2 seconds, as the kubelet gives.
						start := time.Now()
						if err := w.a.runHook(ctx, pod, c, s.Id, preStopOf(c), grace); err != nil {
							w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
						}
						left = max(grace-int64(time.Since(start).Seconds()), 2)
					}
				}
				if err := w.a.rt.StopContainer(ctx, s.Id, left); err != nil {
					w.a.log.Warn("stop container", "container", s.Id, "err", err)
				}
			}()
		}
	}
	wg.Wait()
}

func podGrace(pod *corev1.Pod) int64 {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

func specContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// teardown stops the pod's containers gracefully and removes its sandbox and volumes.
func (w *podWorker) teardown(ctx context.Context, pod *corev1.Pod, grace int64) {
	w.stopAll(ctx, pod, grace)
	w.a.probes.forget(w.uid, nil)
	sbs, err := w.a.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(w.uid)}})
	if err == nil {
		for _, sb := range sbs {
			_ = w.a.rt.StopPodSandbox(ctx, sb.Id)
			_ = w.a.rt.RemovePodSandbox(ctx, sb.Id)
		}
	}
	_ = os.RemoveAll(w.a.podDir(w.uid))
}

func (w *podWorker) sandboxConfig(pod *corev1.Pod) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{labelPodUID: string(pod.UID), labelPodName: pod.Name, labelPodNamespace: pod.Namespace}
	for k, v := range pod.Labels {
		if _, taken := labels[k]; !taken {
			labels[k] = v
		}
	}
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID)},
		Hostname:     hostname,
		LogDirectory: w.a.logDir(pod),
		Labels:       labels,
		Annotations:  pod.Annotations,
	}
}

// postPodStatus writes status when it changed, and returns the pod the
// server stored (nil when nothing was written).
func (a *Agent) postPodStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) (*corev1.Pod, error) {
	if apiequality.Semantic.DeepEqual(pod.Status, status) {
		return nil, nil
	}
	p := pod.DeepCopy()
	p.Status = status
	out, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	switch {
	case err == nil:
		a.metrics.posted(pod.UID, status.Phase)
		return out, nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		// The informer will bring the newer pod (or its deletion) and another sync.
		return nil, nil
	}
	return nil, err
}
