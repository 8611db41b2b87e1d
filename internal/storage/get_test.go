package storage_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/storage"
)

// TestGetAtReadsTheCacheForAResourceVersion: a read without a
// resourceVersion goes to etcd; "0" and "not older than N" are answered by
// the watch cache, which waits for N; a version the cache cannot reach in
// time is a timeout, and a bad one a 400.
func TestGetAtReadsTheCacheForAResourceVersion(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	etcdGets := 0
	s, _ := startStore(t, "configmaps", func() runtime.Object { return &corev1.ConfigMap{} }, storage.Config{
		Observe: func(op string, _ time.Duration) {
			if op == "get" {
				mu.Lock()
				etcdGets++
				mu.Unlock()
			}
		},
	})
	gets := func() int { mu.Lock(); defer mu.Unlock(); return etcdGets }
	key := s.Key("default", "c")
	out, err := s.Create(ctx, key, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	rv := out.(*corev1.ConfigMap).ResourceVersion

	got, err := s.GetAt(ctx, key, "c", rv) // waits for the cache to see the create
	if err != nil || got.(*corev1.ConfigMap).Data["k"] != "v" || got.(*corev1.ConfigMap).ResourceVersion != rv {
		t.Fatalf("get not older than %s: %v, %v", rv, got, err)
	}
	if _, err := s.GetAt(ctx, key, "c", "0"); err != nil {
		t.Fatalf("get at 0: %v", err)
	}
	if _, err := s.GetAt(ctx, s.Key("default", "missing"), "missing", "0"); !apierrors.IsNotFound(err) {
		t.Fatalf("missing object at 0: %v, want 404", err)
	}
	if n := gets(); n != 0 {
		t.Fatalf("%d etcd reads for gets with a resourceVersion, want 0", n)
	}
	if _, err := s.GetAt(ctx, key, "c", ""); err != nil || gets() != 1 {
		t.Fatalf("get without a resourceVersion: %v, %d etcd reads, want 1", err, gets())
	}

	n, _ := strconv.ParseInt(rv, 10, 64)
	future := strconv.FormatInt(n+1000, 10)
	if _, err := s.GetAt(ctx, key, "c", future); !apierrors.IsTimeout(err) {
		t.Fatalf("get at a revision not yet written: %v, want a timeout", err)
	}
	if _, err := s.GetAt(ctx, key, "c", "x"); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad resourceVersion: %v, want 400", err)
	}
}
