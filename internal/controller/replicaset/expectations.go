package replicaset

import (
	"sync"
	"time"
)

// expectationsTTL bounds how long a sync waits for the informer to show its
// own creations and deletions; after it the controller trusts the cache again.
const expectationsTTL = 5 * time.Minute

// expectation is what one workload's last sync asked for and has not yet seen.
type expectation struct {
	adds int             // pod creations not yet observed
	dels map[string]bool // namespace/name of pods whose deletion is not yet observed
	set  time.Time
}

// expectations keeps a workload from acting again on a cache that does not yet
// show its previous creates and deletes (upstream's ControllerExpectations with
// UID tracking of deletions).
type expectations struct {
	mu  sync.Mutex
	m   map[objectKey]*expectation
	now func() time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{m: map[objectKey]*expectation{}, now: now}
}

// satisfied reports whether the cache can be trusted for k.
func (e *expectations) satisfied(k objectKey) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[k]
	if !ok {
		return true
	}
	return (x.adds <= 0 && len(x.dels) == 0) || e.now().Sub(x.set) > expectationsTTL
}

func (e *expectations) expectCreations(k objectKey, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[k] = &expectation{adds: n, set: e.now()}
}

func (e *expectations) expectDeletions(k objectKey, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dels := make(map[string]bool, len(podKeys))
	for _, p := range podKeys {
		dels[p] = true
	}
	e.m[k] = &expectation{dels: dels, set: e.now()}
}

// creationObserved lowers the expected creations by n.
func (e *expectations) creationObserved(k objectKey, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[k]; ok {
		x.adds -= n
	}
}

func (e *expectations) deletionObserved(k objectKey, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[k]; ok {
		delete(x.dels, podKey)
	}
}

func (e *expectations) forget(k objectKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, k)
}
