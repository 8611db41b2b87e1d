package loop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestRunRetriesFailuresAndRequeues checks the three outcomes of a sync: an
// error retries with back-off, Requeue looks again after the delay, nil ends.
func TestRunRetriesFailuresAndRequeues(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan string, 3)
	q := New("test", func(_ context.Context, key string) error {
		mu.Lock()
		defer mu.Unlock()
		calls[key]++
		switch {
		case key == "fails-once" && calls[key] == 1:
			return errors.New("boom")
		case key == "requeues-once" && calls[key] == 1:
			return Requeue(20 * time.Millisecond)
		case key == "conflicts-twice" && calls[key] <= 2:
			return apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", errors.New("stale"))
		}
		done <- key
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { q.Run(ctx, 2); close(stopped) }()
	start := time.Now()
	q.Add("fails-once")
	q.Add("requeues-once")
	q.Add("conflicts-twice")
	for range 3 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("keys were not synced to success")
		}
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("Requeue did not wait its delay")
	}
	cancel()
	<-stopped
	if calls["fails-once"] != 2 || calls["requeues-once"] != 2 || calls["conflicts-twice"] != 3 {
		t.Fatalf("calls = %v, want 2, 2 and 3", calls)
	}
	if n := q.NumRequeues("conflicts-twice"); n != 0 {
		t.Fatalf("conflicts counted as failures: %d", n)
	}
	if n := q.NumRequeues("fails-once"); n != 0 {
		t.Fatalf("success did not forget the failure count: %d", n)
	}
}

// TestOnlyConflictsNeedsEveryJoinedErrorToBeAConflict: a sync that met a
// conflict on one write and a real failure on another must take the failure
// path (logged, backed off), not the quiet conflict retry.
func TestOnlyConflictsNeedsEveryJoinedErrorToBeAConflict(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", errors.New("stale"))
	internal := apierrors.NewInternalError(errors.New("etcd down"))
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"conflict", conflict, true},
		{"wrapped conflict", fmt.Errorf("update pod: %w", conflict), true},
		{"joined conflicts", errors.Join(conflict, fmt.Errorf("status: %w", conflict)), true},
		{"conflict and a 500", errors.Join(conflict, internal), false},
		{"nested join hiding a 500", errors.Join(conflict, errors.Join(conflict, internal)), false},
		{"wrapped join hiding a 500", fmt.Errorf("sync: %w", errors.Join(conflict, internal)), false},
		{"500", internal, false},
		{"plain error", errors.New("boom"), false},
	} {
		if got := OnlyConflicts(tc.err); got != tc.want {
			t.Errorf("%s: OnlyConflicts = %v, want %v", tc.name, got, tc.want)
		}
	}
}
