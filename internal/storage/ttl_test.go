package storage_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/storage"
)

// TestTTLExpiresObjectsAndSharesLeases stores events with a 2 s TTL: both
// share one etcd lease, and both are gone a few seconds later.
func TestTTLExpiresObjectsAndSharesLeases(t *testing.T) {
	ctx := context.Background()
	s, b := startStore(t, "events", func() runtime.Object { return &corev1.Event{} }, storage.Config{TTL: 2 * time.Second})
	for _, name := range []string{"e1", "e2"} {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		if _, err := s.Create(ctx, s.Key("default", name), ev); err != nil {
			t.Fatal(err)
		}
	}
	leases, err := b.Client.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.Leases) != 1 {
		t.Fatalf("%d leases for two events written together, want 1", len(leases.Leases))
	}
	if _, err := s.Get(ctx, s.Key("default", "e1"), "e1"); err != nil {
		t.Fatalf("event gone at once: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err1 := s.Get(ctx, s.Key("default", "e1"), "e1")
		_, err2 := s.Get(ctx, s.Key("default", "e2"), "e2")
		if apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events still there 15 s after a 2 s TTL: %v %v", err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
