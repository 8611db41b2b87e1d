package endpointslice

import (
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// expectationTTL bounds how long a write waits to be seen: an object created
// and deleted again across a relist never shows up in the informer at all.
const expectationTTL = 30 * time.Second

// tracker remembers this controller's own slice writes until the informer
// shows them. A sync on a cache that does not yet show them would plan from
// stale state: above all, create a second set of slices (their names are
// generated, so the server cannot refuse a duplicate).
type tracker struct {
	mu     sync.Mutex
	bySvc  map[string]map[types.UID]expectation
	now    func() time.Time
	byUID  map[types.UID]string // slice -> service key, to forget deletions
	expiry time.Duration
}

type expectation struct {
	rv      uint64 // the resourceVersion written; 0 for a deletion
	deleted bool
	at      time.Time
}

func newTracker() *tracker {
	return &tracker{
		bySvc:  map[string]map[types.UID]expectation{},
		byUID:  map[types.UID]string{},
		now:    time.Now,
		expiry: expectationTTL,
	}
}

// wrote records a created or updated slice as the server returned it.
func (t *tracker) wrote(svc string, s *discoveryv1.EndpointSlice) {
	t.expect(svc, s.UID, expectation{rv: resourceVersion(s)})
}

// deleted records a slice this controller deleted.
func (t *tracker) deleted(svc string, s *discoveryv1.EndpointSlice) {
	t.expect(svc, s.UID, expectation{deleted: true})
}

func (t *tracker) expect(svc string, uid types.UID, e expectation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.at = t.now()
	m := t.bySvc[svc]
	if m == nil {
		m = map[types.UID]expectation{}
		t.bySvc[svc] = m
	}
	m[uid] = e
	t.byUID[uid] = svc
}

// gone notes that the informer saw a slice deleted: nothing more to wait for.
func (t *tracker) gone(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if svc, ok := t.byUID[uid]; ok {
		delete(t.bySvc[svc], uid)
		if len(t.bySvc[svc]) == 0 {
			delete(t.bySvc, svc)
		}
		delete(t.byUID, uid)
	}
}

// forget drops everything about a Service.
func (t *tracker) forget(svc string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid := range t.bySvc[svc] {
		delete(t.byUID, uid)
	}
	delete(t.bySvc, svc)
}

// stale reports whether the cached slices of svc miss one of our writes.
// Writes the cache shows are forgotten.
func (t *tracker) stale(svc string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.bySvc[svc]
	if len(m) == 0 {
		return false
	}
	seen := make(map[types.UID]uint64, len(cached))
	for _, s := range cached {
		seen[s.UID] = resourceVersion(s)
	}
	stale := false
	now := t.now()
	for uid, e := range m {
		rv, present := seen[uid]
		switch {
		case now.Sub(e.at) > t.expiry:
		case e.deleted && present, !e.deleted && (!present || rv < e.rv):
			stale = true
			continue
		}
		delete(m, uid)
		delete(t.byUID, uid)
	}
	if len(m) == 0 {
		delete(t.bySvc, svc)
	}
	return stale
}

// resourceVersion reads the server's resourceVersion, an etcd revision: a
// number that grows with every write. Unreadable ones count as 0 (never stale).
func resourceVersion(s *discoveryv1.EndpointSlice) uint64 {
	rv, _ := strconv.ParseUint(s.ResourceVersion, 10, 64)
	return rv
}
