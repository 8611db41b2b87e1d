package storage_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/storage"
)

// startStore starts an embedded etcd in a temp dir and a store of resource
// on it, both stopped when the test ends; cfg sets the rest (TTL, Observe).
func startStore(t *testing.T, resource string, newFunc func() runtime.Object, cfg storage.Config) (*storage.Store, *etcd.Backend) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b, err := etcd.Start(ctx, etcd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg.Client = b.Client
	cfg.Resource, cfg.KeyRoot, cfg.NewFunc = schema.GroupResource{Resource: resource}, resource, newFunc
	cfg.Compacted = func() int64 { return 0 }
	s, err := storage.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}
