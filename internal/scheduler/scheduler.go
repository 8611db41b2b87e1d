// Package scheduler places pods on nodes, as kube-scheduler's default
// profile does for the filters and scores skiff supports. The filter and
// score logic are plain functions over PodInfo and NodeInfo values
// (filter.go, score.go, algorithm.go); this file is the I/O around them:
// informers feed a Cache of node usage and a Queue of pods, one loop takes
// pods off the queue and decides, and a writer runs the bindings and
// status conditions (up to Workers at once, each pod's in order) through
// the API.
package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// SchedulerName is the spec.schedulerName of the pods this scheduler places.
const SchedulerName = corev1.DefaultSchedulerName

// Event reasons, as upstream's.
const (
	EventScheduled        = "Scheduled"
	EventFailedScheduling = "FailedScheduling"
)

// How often pods left unschedulable are checked against maxUnschedulableWait.
const flushUnschedulableEvery = 5 * time.Second

// defaultWorkers is how many API writes run at once. Bindings are
// independent writes, so throughput grows with them until the API server
// is the limit.
const defaultWorkers = 64

// Scheduler binds unassigned pods to nodes.
type Scheduler struct {
	client kubernetes.Interface
	synced []toolscache.InformerSynced
	cache  *Cache
	queue  *Queue

	// Workers is how many bindings and status writes run at once; set before Run.
	Workers int
	// PercentageOfNodesToScore is the share of nodes to find feasible before
	// scoring; 0 adapts to the cluster's size as upstream does. Set before Run.
	PercentageOfNodesToScore int

	recorder record.EventRecorder
	log      *slog.Logger
}

// New returns a scheduler and registers its pod and node event handlers
// with factory; the caller starts the factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) *Scheduler {
	s := &Scheduler{
		client:  client,
		cache:   NewCache(0),
		queue:   NewQueue(nil),
		Workers: defaultWorkers,
		log:     slog.Default().With("component", "scheduler"),
	}
	podReg, err := factory.Core().V1().Pods().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPod(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { s.onPod(obj.(*corev1.Pod)) },
		DeleteFunc: s.onPodDelete,
	})
	if err != nil {
		// Only a stopped informer refuses a handler; Run then never syncs.
		s.log.Error("register pod handler", "err", err)
	}
	nodeReg, err := factory.Core().V1().Nodes().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.onNodeAdd,
		UpdateFunc: s.onNodeUpdate,
		DeleteFunc: s.onNodeDelete,
	})
	if err != nil {
		s.log.Error("register node handler", "err", err)
	}
	if podReg != nil && nodeReg != nil {
		s.synced = []toolscache.InformerSynced{podReg.HasSynced, nodeReg.HasSynced}
	} else {
		s.synced = []toolscache.InformerSynced{func() bool { return false }}
	}
	return s
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func (s *Scheduler) onPod(pod *corev1.Pod) {
	switch {
	case pod.Spec.NodeName != "":
		s.queue.Delete(pod.UID)
		if terminal(pod) {
			// A finished pod frees its node, which may let a waiting pod fit.
			if s.cache.RemovePod(pod.UID) {
				s.queue.MoveAll()
			}
			return
		}
		s.cache.AddPod(pod)
	case pod.Spec.SchedulerName != SchedulerName || pod.DeletionTimestamp != nil || terminal(pod):
		s.queue.Delete(pod.UID)
	case s.cache.Assumed(pod.UID):
		// Being bound: the informer has not seen the binding yet. Refresh
		// the copy in case the binding fails, but do not queue it again.
		s.queue.Update(pod)
	default:
		s.queue.Add(pod)
	}
}

func (s *Scheduler) onPodDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.queue.Delete(pod.UID)
	if s.cache.RemovePod(pod.UID) {
		s.queue.MoveAll()
	}
}

func (s *Scheduler) onNodeAdd(obj any) {
	s.cache.SetNode(obj.(*corev1.Node))
	s.queue.MoveAll()
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, node := oldObj.(*corev1.Node), newObj.(*corev1.Node)
	s.cache.SetNode(node)
	// Heartbeats update nodes every few seconds; only a change a filter
	// looks at is worth retrying the unschedulable pods for.
	if nodeSchedulingChanged(old, node) {
		s.queue.MoveAll()
	}
}

func nodeSchedulingChanged(old, node *corev1.Node) bool {
	return old.Spec.Unschedulable != node.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) ||
		!maps.Equal(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		readinessTaint(old) != readinessTaint(node)
}

func (s *Scheduler) onNodeDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.RemoveNode(node.Name)
	}
}

// Run waits for the informers' caches, then schedules until ctx ends. It
// returns after its goroutines (and the event writes it started) stop.
func (s *Scheduler) Run(ctx context.Context) {
	s.cache.mu.Lock()
	s.cache.percentage = s.PercentageOfNodesToScore
	s.cache.mu.Unlock()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	sink := &eventSink{ctx: ctx, client: s.client}
	broadcaster.StartRecordingToSink(sink)
	s.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: SchedulerName})
	defer func() {
		broadcaster.Shutdown()
		sink.close()
	}()

	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	registerMetrics()
	running.Store(s.queue, struct{}{})
	defer running.Delete(s.queue)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(flushUnschedulableEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.queue.FlushUnschedulable()
			}
		}
	})
	writes := newWriter(max(s.Workers, 1))
	dispatch := func(uid types.UID, f func()) bool { return writes.dispatch(ctx, uid, f) }
	for s.scheduleOne(ctx, dispatch) {
	}
	s.queue.Close()
	writes.wg.Wait()
	wg.Wait()
}

// writer runs the scheduler's API writes, up to a limit at once. The writes
// for one pod run one after another in order (a failure's status write
// never overtakes a later binding), and none waits behind another pod's
// while the limit allows: a pool of workers picked by hash would queue a
// binding behind the slow ones of pods sharing its worker.
type writer struct {
	slots   chan struct{}
	mu      sync.Mutex
	pending map[types.UID][]func() // the writes waiting behind a pod's running one
	wg      sync.WaitGroup
}

func newWriter(limit int) *writer {
	return &writer{slots: make(chan struct{}, limit), pending: map[types.UID][]func(){}}
}

// dispatch queues f after the pod's earlier writes; false if ctx ended first.
func (w *writer) dispatch(ctx context.Context, uid types.UID, f func()) bool {
	w.mu.Lock()
	if q, running := w.pending[uid]; running {
		w.pending[uid] = append(q, f)
		w.mu.Unlock()
		return true
	}
	w.pending[uid] = nil
	w.mu.Unlock()
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.pending, uid)
		w.mu.Unlock()
		return false
	}
	w.wg.Go(func() {
		defer func() { <-w.slots }()
		for {
			f()
			w.mu.Lock()
			q := w.pending[uid]
			if len(q) == 0 {
				delete(w.pending, uid)
				w.mu.Unlock()
				return
			}
			f, w.pending[uid] = q[0], q[1:]
			w.mu.Unlock()
		}
	})
	return true
}

// scheduleOne decides for the next pod and hands the writes to a worker;
// it returns false when the scheduler stops.
func (s *Scheduler) scheduleOne(ctx context.Context, dispatch func(types.UID, func()) bool) bool {
	qp, pod, ok := s.queue.Pop(ctx)
	if !ok {
		return false
	}
	if pod.DeletionTimestamp != nil {
		s.queue.Done(qp)
		return true
	}
	start := time.Now()
	node, fitErr := s.cache.Schedule(NewPodInfo(pod))
	if node == "" && fitErr == nil {
		// Already assumed or bound: an update raced with its binding.
		s.queue.Done(qp)
		return true
	}
	if fitErr != nil {
		observeAttempt(resultUnschedulable, start)
		s.queue.Requeue(qp, true)
		msg := fitErr.Error()
		return dispatch(pod.UID, func() { s.recordUnschedulable(ctx, pod, msg) })
	}
	if !dispatch(pod.UID, func() { s.bind(ctx, qp, pod, node, start) }) {
		s.cache.Forget(pod.UID)
		return false
	}
	return true
}

func (s *Scheduler) bind(ctx context.Context, qp *QueuedPod, pod *corev1.Pod, node string, start time.Time) {
	err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if err == nil {
		observeAttempt(resultScheduled, start)
		s.queue.Done(qp)
		if ctx.Err() != nil {
			return // the recorder is shut down
		}
		s.recorder.Eventf(pod, corev1.EventTypeNormal, EventScheduled, "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
		return
	}
	s.cache.Forget(pod.UID)
	if ctx.Err() != nil {
		return
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Deleted, being deleted, recreated or bound by someone else: the
		// informer brings whatever is there now.
		s.queue.Done(qp)
		return
	}
	observeAttempt(resultError, start)
	s.log.Warn("bind pod", "pod", pod.Namespace+"/"+pod.Name, "node", node, "err", err)
	s.queue.Requeue(qp, false)
	s.recorder.Eventf(pod, corev1.EventTypeWarning, EventFailedScheduling, "Binding rejected: %v", err)
}

// recordUnschedulable sets PodScheduled=False (reason Unschedulable, the
// fit error as message) unless it already says so, and records a
// FailedScheduling event, as upstream does on every failed attempt.
func (s *Scheduler) recordUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) {
	if ctx.Err() != nil {
		return
	}
	s.recorder.Event(pod, corev1.EventTypeWarning, EventFailedScheduling, msg)
	patch, ok := unschedulablePatch(pod, msg, metav1.Now())
	if !ok {
		return
	}
	_, err := s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		s.log.Warn("set pod unschedulable", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// unschedulablePatch is the strategic merge patch of pod's status that
// sets PodScheduled=False with msg; false if the pod already has it. The
// UID makes the patch fail on a pod recreated under the same name.
func unschedulablePatch(pod *corev1.Pod, msg string, now metav1.Time) ([]byte, bool) {
	cond := corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: msg, LastTransitionTime: now,
	}
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.PodScheduled {
			continue
		}
		if c.Status == cond.Status && c.Reason == cond.Reason && c.Message == cond.Message {
			return nil, false
		}
		if c.Status == cond.Status {
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	b, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
	})
	if err != nil {
		panic(fmt.Sprintf("marshal pod condition: %v", err)) // plain data: cannot fail
	}
	return b, true
}

// eventSink writes events with the scheduler's context, so writes stop when
// it ends, and lets Run wait for the write in progress before returning.
type eventSink struct {
	ctx    context.Context
	client kubernetes.Interface
	mu     sync.RWMutex
	closed bool
}

// errStopped is how the sink drops an event once the scheduler stops: the
// recorder retries and logs most errors, but drops an AlreadyExists quietly.
var errStopped = apierrors.NewAlreadyExists(corev1.Resource("events"), "(scheduler stopped)")

func (e *eventSink) do(f func() (*corev1.Event, error)) (*corev1.Event, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed || e.ctx.Err() != nil {
		return nil, errStopped
	}
	ev, err := f()
	if err != nil && e.ctx.Err() != nil {
		return nil, errStopped
	}
	return ev, err
}

func (e *eventSink) Create(ev *corev1.Event) (*corev1.Event, error) {
	return e.do(func() (*corev1.Event, error) {
		return e.client.CoreV1().Events(ev.Namespace).Create(e.ctx, ev, metav1.CreateOptions{})
	})
}

func (e *eventSink) Update(ev *corev1.Event) (*corev1.Event, error) {
	return e.do(func() (*corev1.Event, error) {
		return e.client.CoreV1().Events(ev.Namespace).Update(e.ctx, ev, metav1.UpdateOptions{})
	})
}

func (e *eventSink) Patch(ev *corev1.Event, data []byte) (*corev1.Event, error) {
	return e.do(func() (*corev1.Event, error) {
		return e.client.CoreV1().Events(ev.Namespace).Patch(e.ctx, ev.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	})
}

// close waits for the write in progress and refuses later ones.
func (e *eventSink) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}
