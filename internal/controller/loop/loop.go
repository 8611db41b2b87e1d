// Package loop is the work loop every skiff controller runs: a named,
// rate-limited queue of keys drained by N workers that call the controller's
// sync function, plus the event recorder plumbing. The queue's name labels the
// client-go workqueue metrics (workqueue_depth{name=...}, ...).
package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Queue is a rate-limited work queue bound to a sync function. Controllers
// add keys from informer handlers (Add, AddAfter) and call Run once.
type Queue[K comparable] struct {
	workqueue.TypedRateLimitingInterface[K]
	name string
	sync func(context.Context, K) error
}

// New returns a queue named name (the workqueue metrics label) with
// client-go's default controller rate limiter (per-item exponential 5 ms …
// 1000 s, overall 10 qps / 100 burst).
func New[K comparable](name string, sync func(context.Context, K) error) *Queue[K] {
	return NewWithLimiter(name, workqueue.DefaultTypedControllerRateLimiter[K](), sync)
}

// NewWithLimiter is New with a chosen rate limiter.
func NewWithLimiter[K comparable](name string, limiter workqueue.TypedRateLimiter[K], sync func(context.Context, K) error) *Queue[K] {
	return &Queue[K]{
		TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
			workqueue.TypedRateLimitingQueueConfig[K]{Name: name, MetricsProvider: metricsProvider()}),
		name: name,
		sync: sync,
	}
}

// ConflictRetry is how soon a key whose write met a newer object is synced
// again: about the time the informer takes to deliver that object.
const ConflictRetry = 100 * time.Millisecond

// Requeue is an error a sync returns to have its key looked at again after
// the given delay without counting as a failure (no log, no back-off).
type Requeue time.Duration

func (r Requeue) Error() string { return fmt.Sprintf("requeue after %s", time.Duration(r)) }

// Run waits for synced, then runs workers goroutines until ctx ends; it
// returns after they have stopped.
func (q *Queue[K]) Run(ctx context.Context, workers int, synced ...cache.InformerSynced) {
	defer utilruntime.HandleCrash()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	for range workers {
		wg.Go(func() {
			for q.next(ctx) {
			}
		})
	}
	<-ctx.Done()
}

func (q *Queue[K]) next(ctx context.Context) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	err := q.sync(ctx, key)
	var again Requeue
	switch {
	case err == nil:
		q.Forget(key)
	case errors.As(err, &again):
		q.Forget(key)
		q.AddAfter(key, time.Duration(again))
	case OnlyConflicts(err):
		// The cache is behind the API: look again shortly, quietly and
		// without growing the back-off (a few quick conflicts must not
		// park a key for seconds).
		q.Forget(key)
		q.AddAfter(key, ConflictRetry)
	default:
		if ctx.Err() == nil {
			slog.Warn("sync failed", "controller", q.name, "key", key, "err", err)
		}
		q.AddRateLimited(key)
	}
	return true
}

// OnlyConflicts reports whether err is a conflict and, when it joins several
// errors (a sync that wrote more than one object), whether every one is: a
// conflict beside a real failure must not hide that failure in a quiet retry.
func OnlyConflicts(err error) bool {
	switch e := err.(type) {
	case apierrors.APIStatus:
		return apierrors.IsConflict(err)
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, part := range errs {
			if !OnlyConflicts(part) {
				return false
			}
		}
		return len(errs) > 0
	case interface{ Unwrap() error }:
		return OnlyConflicts(e.Unwrap())
	}
	return false
}

// Recorder is an event broadcaster writing to the API and recorders made
// from it. Start it in Run, and Stop it when Run returns (tests that never
// Start it still Stop it: the broadcaster runs a goroutine from birth).
type Recorder struct {
	client      kubernetes.Interface
	broadcaster record.EventBroadcaster
	sink        watch.Interface
}

// NewRecorder returns a broadcaster that will write events through client.
func NewRecorder(client kubernetes.Interface) *Recorder {
	return &Recorder{client: client, broadcaster: record.NewBroadcaster()}
}

// For returns a recorder whose events name component as their source.
func (r *Recorder) For(component string) record.EventRecorder {
	return r.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

// Start sends recorded events to the API server.
func (r *Recorder) Start() {
	r.sink = r.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.client.CoreV1().Events("")})
}

// Stop stops sending events and the broadcaster.
func (r *Recorder) Stop() {
	if r.sink != nil {
		r.sink.Stop()
	}
	r.broadcaster.Shutdown()
}
