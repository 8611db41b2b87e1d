package scheduler

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock            { return &fakeClock{t: time.Unix(1_000_000, 0)} }
func popNow(t *testing.T, q *Queue) *QueuedPod {
	t.Helper()
	qp, _ := popWithin(t, q, time.Second)
	return qp
}

// popWithin pops, failing the test if nothing comes within d.
func popWithin(t *testing.T, q *Queue, d time.Duration) (*QueuedPod, *corev1.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	qp, pod, ok := q.Pop(ctx)
	if !ok {
		t.Fatalf("nothing to pop within %s", d)
	}
	return qp, pod
}

// assertNothingActive checks that nothing is ready to pop now.
func assertNothingActive(t *testing.T, q *Queue) {
	t.Helper()
	if active, _, _ := q.Counts(); active != 0 {
		t.Fatalf("%d pods active, want none", active)
	}
}

func TestBackoffFor(t *testing.T) {
	tests := []struct {
		attempts int
		want     time.Duration
	}{{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}}
	for _, tc := range tests {
		if got := backoffFor(tc.attempts); got != tc.want {
			t.Errorf("backoffFor(%d) = %s, want %s", tc.attempts, got, tc.want)
		}
	}
}

func TestQueueOrder(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(clock.now)
	low, high, first := makePod("", ""), makePod("", "", withPriority(1000)), makePod("", "")
	q.Add(first)
	clock.step(time.Millisecond)
	q.Add(low)
	q.Add(high)
	for _, want := range []*corev1.Pod{high, first, low} {
		if _, got := popWithin(t, q, time.Second); got.UID != want.UID {
			t.Fatalf("popped %s, want %s", got.Name, want.Name)
		}
	}
}

func TestQueueUnschedulableWaitsForAChange(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(clock.now)
	p := makePod("", "")
	q.Add(p)
	qp := popNow(t, q)
	q.Requeue(qp, true)
	if _, _, u := q.Counts(); u != 1 {
		t.Fatal("not unschedulable")
	}
	// Our own status write does not wake it; a spec change does.
	withStatus := p.DeepCopy()
	withStatus.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.Add(withStatus)
	if _, _, u := q.Counts(); u != 1 {
		t.Fatal("a status update woke an unschedulable pod")
	}
	// A cluster change moves it to backoff for the 1s after its first failure.
	q.MoveAll()
	if _, b, _ := q.Counts(); b != 1 {
		t.Fatal("MoveAll did not move it to backoff")
	}
	assertNothingActive(t, q)
	clock.step(time.Second)
	qp, got := popWithin(t, q, time.Second)
	if got.Status.Conditions == nil {
		t.Error("popped a stale copy")
	}
	// Second failure: 2s of backoff, then unschedulable again until flushed after 60s.
	q.Requeue(qp, true)
	q.FlushUnschedulable()
	if _, _, u := q.Counts(); u != 1 {
		t.Fatal("flushed before maxUnschedulableWait")
	}
	clock.step(maxUnschedulableWait)
	q.FlushUnschedulable()
	if a, _, u := q.Counts(); u != 0 || a != 1 {
		t.Fatalf("after the flush: active=%d unschedulable=%d, want it active (its backoff is over)", a, u)
	}
	popNow(t, q)
}

func TestQueueSpecChangeWakesUnschedulablePod(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(clock.now)
	p := makePod("", "")
	q.Add(p)
	q.Requeue(popNow(t, q), true)
	tolerating := p.DeepCopy()
	tolerating.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	q.Add(tolerating)
	if _, b, u := q.Counts(); u != 0 || b != 1 {
		t.Fatalf("backoff=%d unschedulable=%d after a spec change", b, u)
	}
}

// A cluster change during the attempt may be what makes the pod fit, so
// a pod that fails after one is retried (after backoff), not parked.
func TestQueueMoveDuringAttempt(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(clock.now)
	q.Add(makePod("", ""))
	qp := popNow(t, q)
	q.MoveAll()
	q.Requeue(qp, true)
	if _, b, u := q.Counts(); b != 1 || u != 0 {
		t.Fatalf("backoff=%d unschedulable=%d, want 1 and 0", b, u)
	}
}

func TestQueueDeleteInFlight(t *testing.T) {
	q := NewQueue(nil)
	p := makePod("", "")
	q.Add(p)
	qp := popNow(t, q)
	q.Delete(p.UID)
	q.Requeue(qp, false)
	if a, b, u := q.Counts(); a+b+u != 0 {
		t.Fatalf("a pod deleted during its attempt came back: %d %d %d", a, b, u)
	}
	// An update while in flight refreshes the copy but does not queue it twice.
	q.Add(p)
	qp = popNow(t, q)
	q.Add(p)
	if a, _, _ := q.Counts(); a != 0 {
		t.Fatal("an in-flight pod was queued again")
	}
	q.Done(qp)
	q.Update(p)
	if a, _, _ := q.Counts(); a != 0 {
		t.Fatal("Update queued a pod that was not queued")
	}
}

// Pop sleeps until the earliest backoff ends rather than polling.
func TestQueuePopWaitsForBackoff(t *testing.T) {
	q := NewQueue(nil)
	q.Add(makePod("", ""))
	q.Requeue(popNow(t, q), false)
	start := time.Now()
	popWithin(t, q, 5*time.Second)
	if waited := time.Since(start); waited < podInitialBackoff-50*time.Millisecond {
		t.Fatalf("popped after %s, before the backoff of %s", waited, podInitialBackoff)
	}
}

func TestQueueCloseAndCancel(t *testing.T) {
	q := NewQueue(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { _, _, ok := q.Pop(ctx); done <- ok }()
	cancel()
	if <-done {
		t.Fatal("Pop returned a pod after cancel")
	}
	go func() { _, _, ok := q.Pop(context.Background()); done <- ok }()
	q.Close()
	if <-done {
		t.Fatal("Pop returned a pod after Close")
	}
}
