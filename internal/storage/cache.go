package storage

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"log/slog"
)

// ringSize is how many recent events a cache keeps for watches that resume
// from an older resourceVersion; older ones get 410 Gone and relist.
const ringSize = 8192

// watcherBuffer is how many undelivered events a watcher may have before it is
// closed (the client then resumes from its last resourceVersion).
const watcherBuffer = 1024

type event struct {
	typ  watch.EventType
	key  string
	obj  runtime.Object
	prev runtime.Object // nil for ADDED
	rev  int64
}

// cache mirrors one resource prefix in memory from a single etcd watch.
type cache struct {
	store     *Store
	watcher   clientv3.Watcher
	compacted func() int64

	mu       sync.RWMutex
	rev      int64
	revCh    chan struct{} // closed and replaced whenever rev advances
	items    map[string]runtime.Object
	ring     []event
	ringNext int
	ringLen  int
	watchers map[*cacheWatcher]struct{}
}

func newCache(ctx context.Context, s *Store, w clientv3.Watcher, compacted func() int64) (*cache, error) {
	c := &cache{
		store:     s,
		watcher:   w,
		compacted: compacted,
		revCh:     make(chan struct{}),
		ring:      make([]event, ringSize),
		watchers:  map[*cacheWatcher]struct{}{},
	}
	rev, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	go c.run(ctx, rev)
	return c, nil
}

// load reads the whole prefix and replaces the items, emitting the
// differences as events when reloading after a lost etcd watch.
func (c *cache) load(ctx context.Context) (int64, error) {
	resp, err := c.store.client.Get(ctx, c.store.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", c.store.prefix, err)
	}
	items := make(map[string]runtime.Object, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		obj, err := c.store.decode(kv.Value, kv.ModRevision)
		if err != nil {
			slog.Error("skip undecodable object", "key", string(kv.Key), "err", err)
			continue
		}
		items[string(kv.Key)] = obj
	}
	rev := resp.Header.Revision
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items != nil {
		for k, old := range c.items {
			if _, ok := items[k]; !ok {
				c.apply(event{typ: watch.Deleted, key: k, obj: withRV(old, rev), prev: old, rev: rev})
			}
		}
		for k, obj := range items {
			old, ok := c.items[k]
			switch {
			case !ok:
				c.apply(event{typ: watch.Added, key: k, obj: obj, rev: rev})
			case rvOf(old) != rvOf(obj):
				c.apply(event{typ: watch.Modified, key: k, obj: obj, prev: old, rev: rev})
			}
		}
	}
	c.items = items
	c.advance(rev)
	return rev, nil
}

func rvOf(obj runtime.Object) string {
	m, _ := meta.Accessor(obj)
	return m.GetResourceVersion()
}

func withRV(obj runtime.Object, rev int64) runtime.Object {
	cp := obj.DeepCopyObject()
	m, _ := meta.Accessor(cp)
	m.SetResourceVersion(fmt.Sprint(rev))
	return cp
}

func (c *cache) run(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := c.watcher.Watch(wctx, c.store.prefix, clientv3.WithPrefix(),
			clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
		for resp := range ch {
			if err := resp.Err(); err != nil {
				slog.Warn("watch cache lost its etcd watch; reloading", "prefix", c.store.prefix, "err", err)
				break
			}
			if resp.IsProgressNotify() {
				c.mu.Lock()
				c.advance(resp.Header.Revision)
				c.mu.Unlock()
				rev = max(rev, resp.Header.Revision)
				continue
			}
			// Decoded before taking the lock: readers and new watchers
			// wait only for the map updates, not for JSON decoding.
			objs := make([]runtime.Object, len(resp.Events))
			for i, ev := range resp.Events {
				objs[i] = c.decodeEvent(ev)
			}
			c.mu.Lock()
			for i, ev := range resp.Events {
				c.applyEtcd(ev, objs[i])
				rev = ev.Kv.ModRevision
			}
			// Not the header's revision: etcd sends a lagging watcher its
			// events in batches stamped with the store's current revision.
			c.advance(rev)
			c.mu.Unlock()
		}
		cancel()
		if ctx.Err() != nil {
			break
		}
		// The etcd watch ended (compaction, lost leader, closed stream):
		// reload the state and resume; clients see the difference as events.
		for ctx.Err() == nil {
			r, err := c.load(ctx)
			if err == nil {
				rev = r
				break
			}
			slog.Warn("watch cache reload failed", "prefix", c.store.prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	c.mu.Lock()
	for w := range c.watchers {
		w.stopLocked()
	}
	c.mu.Unlock()
}

// decodeEvent is the object a PUT stored (nil for a DELETE, or when the
// stored bytes do not decode).
func (c *cache) decodeEvent(ev *clientv3.Event) runtime.Object {
	if ev.Type == mvccpb.DELETE {
		return nil
	}
	obj, err := c.store.decode(ev.Kv.Value, ev.Kv.ModRevision)
	if err != nil {
		slog.Error("skip undecodable object", "key", string(ev.Kv.Key), "err", err)
	}
	return obj
}

// applyEtcd applies one etcd event, whose stored object decodeEvent gave;
// c.mu is held.
func (c *cache) applyEtcd(ev *clientv3.Event, obj runtime.Object) {
	key := string(ev.Kv.Key)
	if ev.Type == mvccpb.DELETE {
		prev, ok := c.items[key]
		if !ok {
			return
		}
		delete(c.items, key)
		c.apply(event{typ: watch.Deleted, key: key, obj: withRV(prev, ev.Kv.ModRevision), prev: prev, rev: ev.Kv.ModRevision})
		return
	}
	if obj == nil {
		return
	}
	prev, existed := c.items[key]
	c.items[key] = obj
	typ := watch.Added
	if existed {
		typ = watch.Modified
	}
	c.apply(event{typ: typ, key: key, obj: obj, prev: prev, rev: ev.Kv.ModRevision})
}

// apply records an event and hands it to every watcher; c.mu is held.
func (c *cache) apply(ev event) {
	c.ring[c.ringNext] = ev
	c.ringNext = (c.ringNext + 1) % len(c.ring)
	if c.ringLen < len(c.ring) {
		c.ringLen++
	}
	for w := range c.watchers {
		w.sendLocked(ev)
	}
}

func (c *cache) advance(rev int64) {
	if rev <= c.rev {
		return
	}
	c.rev = rev
	close(c.revCh)
	c.revCh = make(chan struct{})
}

// oldestLocked is the oldest revision a watch may resume from.
func (c *cache) oldestLocked() int64 {
	if c.ringLen == 0 {
		return c.rev
	}
	first := c.ring[(c.ringNext-c.ringLen+len(c.ring))%len(c.ring)]
	return first.rev - 1
}

// waitFor blocks until the cache has seen revision rev (0 = no wait). When
// rev is newer than the cache, it asks etcd for progress notifications so
// an idle prefix catches up with revisions written elsewhere.
func (c *cache) waitFor(ctx context.Context, rev int64) error {
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	ask := time.NewTicker(100 * time.Millisecond)
	defer ask.Stop()
	for first := true; ; first = false {
		c.mu.RLock()
		cur, ch := c.rev, c.revCh
		c.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		if first {
			_ = c.watcher.RequestProgress(clientv3.WithRequireLeader(ctx))
		}
		select {
		case <-ch:
		case <-ask.C:
			// etcd answers a progress request only while every watch on the
			// stream is caught up, so keep asking.
			_ = c.watcher.RequestProgress(clientv3.WithRequireLeader(ctx))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rev, cur), 1)
		}
	}
}

// waitCurrent waits until the cache holds everything etcd has now. A cache
// that cannot confirm it within a second serves what it has: its events
// continue from there, so a client sees every later change either way.
func (c *cache) waitCurrent(ctx context.Context) error {
	rev, err := c.store.Revision(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.waitFor(wctx, rev); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func inNamespace(key, prefix string) bool { return strings.HasPrefix(key, prefix) }

// snapshot returns the matching objects sorted by key, and the cache revision.
func (c *cache) snapshot(namespace string, filter func(runtime.Object) bool) ([]runtime.Object, int64) {
	prefix := c.store.Prefix(namespace)
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.snapshotLocked(prefix, filter), c.rev
}

func (c *cache) snapshotLocked(prefix string, filter func(runtime.Object) bool) []runtime.Object {
	keys := make([]string, 0, len(c.items))
	for k, obj := range c.items {
		if inNamespace(k, prefix) && (filter == nil || filter(obj)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]runtime.Object, len(keys))
	for i, k := range keys {
		out[i] = c.items[k]
	}
	return out
}
