package scheduler

import (
	"container/heap"
	"context"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// Retry timing, as upstream's podInitialBackoff/podMaxBackoff: a pod that
// failed waits 1s, 2s, 4s, 8s, then 10s per further failure. A pod left
// unschedulable (no cluster change has woken it) is retried after
// maxUnschedulableWait anyway, in case an event was missed.
const (
	podInitialBackoff    = 1 * time.Second
	podMaxBackoff        = 10 * time.Second
	maxUnschedulableWait = 60 * time.Second
)

// backoffFor is the wait after the given number of failed attempts.
func backoffFor(attempts int) time.Duration {
	if attempts <= 0 {
		return 0
	}
	d := podInitialBackoff
	for i := 1; i < attempts; i++ {
		d *= 2
		if d >= podMaxBackoff {
			return podMaxBackoff
		}
	}
	return d
}

type place int

const (
	inActive place = iota + 1
	inBackoff
	inUnschedulable
	inFlight
)

// QueuedPod is a pod in the queue, or handed out by Pop until Done or Requeue.
// Its fields belong to the queue's lock.
type QueuedPod struct {
	uid         types.UID
	pod         *corev1.Pod
	attempts    int
	added       time.Time
	lastFailure time.Time
	// since is when the pod became unschedulable.
	since time.Time
	where place
	index int // in its heap
	// cycle is the scheduling cycle that popped it.
	cycle int64
}

func (qp *QueuedPod) backoffUntil() time.Time {
	return qp.lastFailure.Add(backoffFor(qp.attempts))
}

type podHeap struct {
	items []*QueuedPod
	less  func(a, b *QueuedPod) bool
}

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *podHeap) Push(x any) {
	qp := x.(*QueuedPod)
	qp.index = len(h.items)
	h.items = append(h.items, qp)
}
func (h *podHeap) Pop() any {
	n := len(h.items) - 1
	qp := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	return qp
}

// Queue holds the pods waiting to be scheduled, as upstream's scheduling
// queue: an active heap (higher priority first, then oldest), a backoff
// heap of pods that failed recently, and a set of unschedulable pods that
// wait for a cluster change (MoveAll) or maxUnschedulableWait. Pods are
// keyed by UID, so a pod deleted and recreated under its name is a new one.
// Pop has a single consumer.
type Queue struct {
	mu            sync.Mutex
	pods          map[types.UID]*QueuedPod
	active        podHeap
	backoff       podHeap
	unschedulable map[types.UID]*QueuedPod
	// cycle counts Pops; moveCycle is the cycle at the last MoveAll. A pod
	// that fails after a MoveAll that happened while it was in flight goes
	// to backoff, not unschedulable: the change may have made it fit.
	cycle, moveCycle int64
	wake             chan struct{}
	closed           bool
	now              func() time.Time
}

// NewQueue returns an empty queue; now is the clock (time.Now if nil).
func NewQueue(now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{
		pods:          map[types.UID]*QueuedPod{},
		unschedulable: map[types.UID]*QueuedPod{},
		active: podHeap{less: func(a, b *QueuedPod) bool {
			pa, pb := corev1helpers.PodPriority(a.pod), corev1helpers.PodPriority(b.pod)
			if pa != pb {
				return pa > pb
			}
			return a.added.Before(b.added)
		}},
		backoff: podHeap{less: func(a, b *QueuedPod) bool { return a.backoffUntil().Before(b.backoffUntil()) }},
		wake:    make(chan struct{}, 1),
		now:     now,
	}
}

func (q *Queue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Add queues a pod, or refreshes the queued copy.
func (q *Queue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp := q.pods[pod.UID]
	if qp == nil {
		qp = &QueuedPod{uid: pod.UID, pod: pod, added: q.now()}
		q.pods[pod.UID] = qp
		q.pushActiveLocked(qp)
		return
	}
	q.updateLocked(qp, pod)
}

// Update refreshes a queued pod's copy and does not add a pod not queued.
func (q *Queue) Update(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp := q.pods[pod.UID]; qp != nil {
		q.updateLocked(qp, pod)
	}
}

func (q *Queue) updateLocked(qp *QueuedPod, pod *corev1.Pod) {
	old := qp.pod
	qp.pod = pod
	switch qp.where {
	case inActive:
		heap.Fix(&q.active, qp.index)
	case inUnschedulable:
		// A change the scheduler looks at (not our own status write) may make it fit.
		if !equality.Semantic.DeepEqual(old.Spec, pod.Spec) || !maps.Equal(old.Labels, pod.Labels) {
			delete(q.unschedulable, pod.UID)
			q.moveLocked(qp)
		}
	}
}

// Delete drops a pod wherever it is.
func (q *Queue) Delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp := q.pods[uid]
	if qp == nil {
		return
	}
	switch qp.where {
	case inActive:
		heap.Remove(&q.active, qp.index)
	case inBackoff:
		heap.Remove(&q.backoff, qp.index)
	case inUnschedulable:
		delete(q.unschedulable, uid)
	}
	delete(q.pods, uid)
}

func (q *Queue) pushActiveLocked(qp *QueuedPod) {
	qp.where = inActive
	heap.Push(&q.active, qp)
	q.notify()
}

// moveLocked sends a pod to backoff if its wait is not over, else to active.
func (q *Queue) moveLocked(qp *QueuedPod) {
	if q.now().Before(qp.backoffUntil()) {
		qp.where = inBackoff
		heap.Push(&q.backoff, qp)
		// The backoff head may have changed: let Pop re-arm its timer.
		q.notify()
		return
	}
	q.pushActiveLocked(qp)
}

func (q *Queue) flushBackoffLocked(now time.Time) {
	for q.backoff.Len() > 0 && !now.Before(q.backoff.items[0].backoffUntil()) {
		qp := heap.Pop(&q.backoff).(*QueuedPod)
		qp.where = inActive
		heap.Push(&q.active, qp)
	}
}

// Pop waits for the next pod to schedule and returns its handle and the
// latest copy. It returns false when the queue is closed or ctx ends. The
// pod stays in flight until Done or Requeue.
func (q *Queue) Pop(ctx context.Context) (*QueuedPod, *corev1.Pod, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, nil, false
		}
		now := q.now()
		q.flushBackoffLocked(now)
		if q.active.Len() > 0 {
			qp := heap.Pop(&q.active).(*QueuedPod)
			q.cycle++
			qp.where, qp.cycle = inFlight, q.cycle
			pod := qp.pod
			q.mu.Unlock()
			return qp, pod, true
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if q.backoff.Len() > 0 {
			timer = time.NewTimer(q.backoff.items[0].backoffUntil().Sub(now))
			fire = timer.C
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, nil, false
		}
	}
}

// Done drops a pod handed out by Pop that needs no more scheduling.
func (q *Queue) Done(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pods[qp.uid] == qp && qp.where == inFlight {
		delete(q.pods, qp.uid)
	}
}

// Requeue puts back a pod handed out by Pop after a failed attempt: to the
// unschedulable set if nothing fit, else (an error) to backoff. A pod
// deleted meanwhile stays gone.
func (q *Queue) Requeue(qp *QueuedPod, unschedulable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pods[qp.uid] != qp || qp.where != inFlight {
		return
	}
	qp.attempts++
	qp.lastFailure = q.now()
	if unschedulable && q.moveCycle < qp.cycle {
		qp.where, qp.since = inUnschedulable, qp.lastFailure
		q.unschedulable[qp.uid] = qp
		return
	}
	q.moveLocked(qp)
}

// MoveAll retries every unschedulable pod (after its backoff): something
// changed in the cluster that may make it fit.
func (q *Queue) MoveAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle = q.cycle
	for uid, qp := range q.unschedulable {
		delete(q.unschedulable, uid)
		q.moveLocked(qp)
	}
}

// FlushUnschedulable retries the pods unschedulable for maxUnschedulableWait or longer.
func (q *Queue) FlushUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for uid, qp := range q.unschedulable {
		if now.Sub(qp.since) >= maxUnschedulableWait {
			delete(q.unschedulable, uid)
			q.moveLocked(qp)
		}
	}
}

// Close makes Pop return false.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.notify()
}

// Counts reports how many pods are active, backing off and unschedulable.
func (q *Queue) Counts() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}
