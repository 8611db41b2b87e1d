package storage

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// bookmarkInterval is how often watchers that allow bookmarks get one.
var bookmarkInterval = 30 * time.Second

// WatchOptions select a watch's start and its events.
type WatchOptions struct {
	Namespace         string
	Filter            func(runtime.Object) bool
	ResourceVersion   string
	SendInitialEvents *bool
	AllowBookmarks    bool
}

// Watch starts a watch served from the cache.
func (s *Store) Watch(ctx context.Context, opts WatchOptions) (watch.Interface, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	c := s.cache
	initial := opts.ResourceVersion == "" || opts.ResourceVersion == "0"
	if opts.SendInitialEvents != nil {
		initial = *opts.SendInitialEvents
	}
	if initial {
		// A snapshot no older than rv, or than etcd now when no rv is given.
		if opts.ResourceVersion == "" {
			err = c.waitCurrent(ctx)
		} else {
			err = c.waitFor(ctx, rv)
		}
		if err != nil {
			return nil, err
		}
	} else if rv > 0 {
		if err := c.waitFor(ctx, rv); err != nil {
			return nil, err
		}
	}

	w := &cacheWatcher{
		c:         c,
		prefix:    s.Prefix(opts.Namespace),
		filter:    opts.Filter,
		bookmarks: opts.AllowBookmarks,
		in:        make(chan watch.Event, watcherBuffer),
		out:       make(chan watch.Event),
		done:      make(chan struct{}),
	}
	c.mu.Lock()
	var pending []watch.Event
	switch {
	case initial:
		for _, obj := range c.snapshotLocked(w.prefix, w.filter) {
			pending = append(pending, watch.Event{Type: watch.Added, Object: obj})
		}
		if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
			pending = append(pending, watch.Event{Type: watch.Bookmark, Object: s.bookmark(c.rev, true)})
		}
	case rv == 0:
		// sendInitialEvents=false without a version: start at the current one.
	default:
		oldest := c.oldestLocked()
		if comp := c.compacted(); comp > oldest {
			oldest = comp
		}
		if rv < oldest {
			c.mu.Unlock()
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, oldest))
		}
		for i := 0; i < c.ringLen; i++ {
			ev := c.ring[(c.ringNext-c.ringLen+i+len(c.ring))%len(c.ring)]
			if ev.rev > rv {
				if e, ok := w.convert(ev); ok {
					pending = append(pending, e)
				}
			}
		}
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()

	go w.run(ctx, pending)
	return w, nil
}

// bookmark makes the object of a BOOKMARK event: only a resourceVersion.
func (s *Store) bookmark(rev int64, initialEnd bool) runtime.Object {
	obj := s.newFunc()
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return obj
}

type cacheWatcher struct {
	c         *cache
	prefix    string
	filter    func(runtime.Object) bool
	bookmarks bool
	in        chan watch.Event
	out       chan watch.Event
	done      chan struct{}
	stopOnce  sync.Once
	closed    bool         // in is closed; guarded by c.mu
	initial   atomic.Int64 // initial events not yet handed to out
}

// convert turns a cache event into what this watcher sees: objects moving
// in or out of its selection appear as ADDED or DELETED.
func (w *cacheWatcher) convert(ev event) (watch.Event, bool) {
	if !inNamespace(ev.key, w.prefix) {
		return watch.Event{}, false
	}
	if ev.typ == watch.Deleted {
		if w.filter == nil || w.filter(ev.prev) {
			return watch.Event{Type: watch.Deleted, Object: ev.obj}, true
		}
		return watch.Event{}, false
	}
	cur := w.filter == nil || w.filter(ev.obj)
	prev := ev.prev != nil && (w.filter == nil || w.filter(ev.prev))
	switch {
	case cur && prev:
		return watch.Event{Type: watch.Modified, Object: ev.obj}, true
	case cur:
		return watch.Event{Type: watch.Added, Object: ev.obj}, true
	case prev:
		return watch.Event{Type: watch.Deleted, Object: ev.obj}, true
	}
	return watch.Event{}, false
}

// sendLocked queues an event; a watcher too slow to keep up is closed so that
// one stuck client cannot hold the cache back. c.mu is held.
func (w *cacheWatcher) sendLocked(ev event) {
	e, ok := w.convert(ev)
	if !ok {
		return
	}
	w.queueLocked(e)
}

func (w *cacheWatcher) queueLocked(e watch.Event) {
	if w.closed {
		return
	}
	select {
	case w.in <- e:
	default:
		w.stopLocked()
	}
}

func (w *cacheWatcher) stopLocked() {
	if !w.closed {
		w.closed = true
		close(w.in)
		delete(w.c.watchers, w)
	}
}

func (w *cacheWatcher) run(ctx context.Context, pending []watch.Event) {
	defer close(w.out)
	defer func() {
		w.c.mu.Lock()
		w.stopLocked()
		w.c.mu.Unlock()
	}()
	w.initial.Store(int64(len(pending)))
	for _, e := range pending {
		w.initial.Add(-1)
		select {
		case w.out <- e:
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
	var tick <-chan time.Time
	if w.bookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case e, ok := <-w.in:
			if !ok {
				return
			}
			select {
			case w.out <- e:
			case <-w.done:
				return
			case <-ctx.Done():
				return
			}
		case <-tick:
			// Queued behind every event already sent, so its version is safe to resume from.
			w.c.mu.Lock()
			w.queueLocked(watch.Event{Type: watch.Bookmark, Object: w.c.store.bookmark(w.c.rev, false)})
			w.c.mu.Unlock()
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Stop ends the watch.
func (w *cacheWatcher) Stop() { w.stopOnce.Do(func() { close(w.done) }) }

// Queued is how many events wait behind the one ResultChan offers, so a
// writer can flush once per burst.
func (w *cacheWatcher) Queued() int { return len(w.in) + int(w.initial.Load()) }

// ResultChan delivers the events; it closes when the watch ends.
func (w *cacheWatcher) ResultChan() <-chan watch.Event { return w.out }
