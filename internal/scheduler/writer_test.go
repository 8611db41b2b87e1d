package scheduler

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// One pod's writes run in order; another pod's do not wait behind them.
func TestWriterOrdersPerPodAndRunsPodsApart(t *testing.T) {
	ctx := t.Context()
	w := newWriter(4)
	release := make(chan struct{})
	var mu sync.Mutex
	var got []int
	record := func(i int) func() {
		return func() {
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
		}
	}
	// Pod a's first write blocks; its later ones queue behind it.
	w.dispatch(ctx, "a", func() { <-release; record(1)() })
	for i := 2; i <= 5; i++ {
		w.dispatch(ctx, "a", record(i))
	}
	other := make(chan struct{})
	w.dispatch(ctx, "b", func() { close(other) })
	select {
	case <-other:
	case <-time.After(10 * time.Second):
		t.Fatal("pod b's write waited behind pod a's")
	}
	close(release)
	w.wg.Wait()
	if !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("pod a's writes ran as %v, want in order", got)
	}
}

// With every slot taken, dispatch waits, and gives up when ctx ends.
func TestWriterLimit(t *testing.T) {
	w := newWriter(1)
	release := make(chan struct{})
	w.dispatch(t.Context(), "a", func() { <-release })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if w.dispatch(ctx, "b", func() { t.Error("ran beyond the limit") }) {
		t.Error("dispatch beyond the limit did not wait for ctx")
	}
	close(release)
	w.wg.Wait()
	ran := make(chan struct{})
	if !w.dispatch(t.Context(), "b", func() { close(ran) }) {
		t.Fatal("dispatch with a free slot failed")
	}
	<-ran
}
