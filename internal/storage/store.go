// Package storage is the etcd-backed object store: one Store per resource keeps
// objects as JSON under /registry/<resource>/<namespace>/<name>, uses etcd
// revisions as resourceVersions and serves watches (and resourceVersion=0 lists)
// from one in-memory watch cache fed by a single etcd watch.
package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Store holds the objects of one resource.
type Store struct {
	client   *clientv3.Client
	prefix   string // "/registry/pods/"
	resource schema.GroupResource
	newFunc  func() runtime.Object
	cache    *cache
	observe  func(op string, took time.Duration)
	leases   *leases // nil: objects do not expire
}

// Config describes one resource's store.
type Config struct {
	// Client's one Watcher serves every cache, so one progress request
	// reaches them all.
	Client   *clientv3.Client
	Resource schema.GroupResource
	// KeyRoot is the <resource> path element, usually Resource.Resource.
	KeyRoot string
	NewFunc func() runtime.Object
	// Compacted reports the newest compacted revision; watches older than it get 410.
	Compacted func() int64
	// Observe, when set, is told how long each etcd operation took (for metrics).
	Observe func(op string, took time.Duration)
	// TTL, when set, makes etcd delete each object this long after its last
	// write (events: --event-ttl).
	TTL time.Duration
}

// New creates a store and starts its watch cache; the cache runs until ctx ends.
func New(ctx context.Context, cfg Config) (*Store, error) {
	s := &Store{
		client:   cfg.Client,
		prefix:   "/registry/" + cfg.KeyRoot + "/",
		resource: cfg.Resource,
		newFunc:  cfg.NewFunc,
		observe:  cfg.Observe,
	}
	if cfg.TTL > 0 {
		s.leases = newLeases(cfg.Client, cfg.TTL)
	}
	c, err := newCache(ctx, s, cfg.Client.Watcher, cfg.Compacted)
	if err != nil {
		return nil, err
	}
	s.cache = c
	return s, nil
}

// timed reports an operation's duration to the observer: defer s.timed("get", time.Now()).
func (s *Store) timed(op string, start time.Time) {
	if s.observe != nil {
		s.observe(op, time.Since(start))
	}
}

// Count returns how many objects the watch cache holds.
func (s *Store) Count() int {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return len(s.cache.items)
}

// Key returns the etcd key of an object.
func (s *Store) Key(namespace, name string) string {
	if namespace == "" {
		return s.prefix + name
	}
	return s.prefix + namespace + "/" + name
}

// Prefix returns the key prefix for a namespace ("" = all).
func (s *Store) Prefix(namespace string) string {
	if namespace == "" {
		return s.prefix
	}
	return s.prefix + namespace + "/"
}

func (s *Store) encode(obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	// The revision is the resourceVersion; storing it would go stale.
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	data, err := json.Marshal(obj)
	m.SetResourceVersion(rv)
	return data, err
}

func (s *Store) decode(data []byte, rev int64) (runtime.Object, error) {
	obj := s.newFunc()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", s.resource, err)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

func nameOf(obj runtime.Object) string {
	m, _ := meta.Accessor(obj)
	return m.GetName()
}

// Create stores a new object; it fails with AlreadyExists when the key is taken.
// The returned object carries its resourceVersion.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object) (runtime.Object, error) {
	defer s.timed("create", time.Now())
	data, err := s.encode(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	put, err := s.put(ctx, key, data)
	if err != nil {
		return nil, storageError(err)
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(put).
		Commit()
	if err != nil {
		return nil, storageError(err)
	}
	if !resp.Succeeded {
		return nil, apierrors.NewAlreadyExists(s.resource, nameOf(obj))
	}
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
	return obj, nil
}

// put is the write of data at key, bound to a lease when objects expire.
func (s *Store) put(ctx context.Context, key string, data []byte) (clientv3.Op, error) {
	if s.leases == nil {
		return clientv3.OpPut(key, string(data)), nil
	}
	lease, err := s.leases.option(ctx)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpPut(key, string(data), lease), nil
}

// Get reads the current object from etcd.
func (s *Store) Get(ctx context.Context, key, name string) (runtime.Object, error) {
	defer s.timed("get", time.Now())
	_, obj, err := s.read(ctx, key, name)
	return obj, err
}

// GetAt is Get with a GET's resourceVersion: "" reads etcd; "0" (any) and N
// (not older than N) are answered by the watch cache, as upstream does, so a
// client polling one object (the agent its Node) costs etcd nothing; such
// reads are not in the etcd request metrics. The object is the cache's,
// shared: callers must not modify it (encoding it does not: stored objects
// carry their kind already).
func (s *Store) GetAt(ctx context.Context, key, name, resourceVersion string) (runtime.Object, error) {
	if resourceVersion == "" {
		return s.Get(ctx, key, name)
	}
	rv, err := parseRV(resourceVersion)
	if err != nil {
		return nil, err
	}
	if err := s.cache.waitFor(ctx, rv); err != nil {
		return nil, err
	}
	obj, ok := s.CachedGet(key)
	if !ok {
		return nil, apierrors.NewNotFound(s.resource, name)
	}
	return obj, nil
}

// read returns the stored key-value and its decoded object.
func (s *Store) read(ctx context.Context, key, name string) (*mvccpb.KeyValue, runtime.Object, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, nil, storageError(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, apierrors.NewNotFound(s.resource, name)
	}
	kv := resp.Kvs[0]
	obj, err := s.decode(kv.Value, kv.ModRevision)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	return kv, obj, nil
}

// UpdateFunc computes the new object from the current one. Returning the
// current object unchanged (same bytes) makes the update a no-op.
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// GuaranteedUpdate reads the object, applies fn and writes the result only if
// nobody wrote in between, retrying on races. It returns the stored object.
func (s *Store) GuaranteedUpdate(ctx context.Context, key, name string, fn UpdateFunc) (runtime.Object, error) {
	defer s.timed("update", time.Now())
	for attempt := 0; ; attempt++ {
		kv, cur, err := s.read(ctx, key, name)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		data, err := s.encode(next)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if string(data) == string(kv.Value) {
			// Nothing changed: no write, the resourceVersion stays.
			m, _ := meta.Accessor(next)
			m.SetResourceVersion(strconv.FormatInt(kv.ModRevision, 10))
			return next, nil
		}
		put, err := s.put(ctx, key, data)
		if err != nil {
			return nil, storageError(err)
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(put).
			Commit()
		if err != nil {
			return nil, storageError(err)
		}
		if txn.Succeeded {
			m, _ := meta.Accessor(next)
			m.SetResourceVersion(strconv.FormatInt(txn.Header.Revision, 10))
			return next, nil
		}
		if attempt > 100 {
			return nil, apierrors.NewConflict(s.resource, name, fmt.Errorf("too many concurrent writers"))
		}
	}
}

// Delete removes the object, if it still has the given uid (when given) and
// precheck accepts it, and returns the deleted object. A write in between
// makes it read and check again.
func (s *Store) Delete(ctx context.Context, key, name string, uid types.UID, precheck func(runtime.Object) error) (runtime.Object, error) {
	defer s.timed("delete", time.Now())
	for attempt := 0; ; attempt++ {
		kv, cur, err := s.read(ctx, key, name)
		if err != nil {
			return nil, err
		}
		if uid != "" {
			if m, _ := meta.Accessor(cur); m.GetUID() != uid {
				return nil, apierrors.NewNotFound(s.resource, name)
			}
		}
		if precheck != nil {
			if err := precheck(cur); err != nil {
				return nil, err
			}
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).
			Commit()
		if err != nil {
			return nil, storageError(err)
		}
		if txn.Succeeded {
			m, _ := meta.Accessor(cur)
			m.SetResourceVersion(strconv.FormatInt(txn.Header.Revision, 10))
			return cur, nil
		}
		if attempt > 100 {
			return nil, apierrors.NewConflict(s.resource, name, fmt.Errorf("too many concurrent writers"))
		}
	}
}

func storageError(err error) error {
	if err == context.DeadlineExceeded || err == context.Canceled {
		return apierrors.NewTimeoutError(fmt.Sprintf("storage: %v", err), 1)
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("storage: %v", err))
}

// CachedGet returns the object from the watch cache, which may lag etcd by
// the latency of one watch event; ok is false when the cache lacks it.
// Callers must not modify the returned object.
func (s *Store) CachedGet(key string) (runtime.Object, bool) {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	obj, ok := s.cache.items[key]
	return obj, ok
}
