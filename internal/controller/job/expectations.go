package job

import (
	"sync"
	"time"
)

// expectationsTTL bounds how long a sync waits on creations or deletions the
// informer never reports (a lost watch event must not wedge a job).
const expectationsTTL = 5 * time.Minute

type expectation struct {
	adds, dels int
	at         time.Time
}

// expectations counts pod creations and deletions a job's sync made that the
// pod informer has not shown yet, so a lagging cache does not make the next
// sync create (or delete) the same pods again.
type expectations struct {
	mu sync.Mutex
	m  map[string]*expectation
}

func newExpectations() *expectations { return &expectations{m: map[string]*expectation{}} }

// expect records adds and dels about to be made for key.
func (e *expectations) expect(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: adds, dels: dels, at: time.Now()}
}

// observe lowers the counts when the informer shows a creation or deletion
// (or when a request failed and the event will never come).
func (e *expectations) observe(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.adds -= adds
		x.dels -= dels
	}
}

// satisfied tells whether everything expected for key has been seen.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	return (x.adds <= 0 && x.dels <= 0) || time.Since(x.at) > expectationsTTL
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
