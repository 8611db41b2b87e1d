package storage

import (
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
)

// Paginated lists from the cache keep their snapshot so that the following
// pages come from the same revision without reading etcd. Snapshots share
// the cache's immutable objects; a few are kept, briefly: a token whose
// snapshot is gone is served by etcd at the token's revision.
const (
	maxSnapshots = 8
	snapshotTTL  = time.Minute
)

// sortedSnapshot is one prefix of the cache at one revision, sorted by key.
type sortedSnapshot struct {
	rev    int64
	prefix string
	keys   []string
	objs   []runtime.Object
	taken  time.Time
}

// sortedSnapshot copies the prefix's items at the cache's current revision.
func (c *cache) sortedSnapshot(prefix string) *sortedSnapshot {
	c.mu.RLock()
	entries, rev := c.collectLocked(prefix), c.rev
	c.mu.RUnlock()
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	keys := make([]string, len(entries))
	objs := make([]runtime.Object, len(entries))
	for i, e := range entries {
		keys[i], objs[i] = e.key, e.obj
	}
	return &sortedSnapshot{rev: rev, prefix: prefix, keys: keys, objs: objs, taken: time.Now()}
}

// page returns up to limit matching objects from key start on, with a
// continue token naming the next key when more remain.
func (s *sortedSnapshot) page(start string, limit int64, filter func(runtime.Object) bool) *ListResult {
	res := &ListResult{Revision: s.rev}
	i := sort.SearchStrings(s.keys, start)
	for ; i < len(s.keys); i++ {
		if limit > 0 && int64(len(res.Items)) == limit {
			res.Continue = encodeContinue(s.rev, s.keys[i])
			if filter == nil {
				left := int64(len(s.keys) - i)
				res.Remaining = &left
			}
			return res
		}
		if filter == nil || filter(s.objs[i]) {
			res.Items = append(res.Items, s.objs[i])
		}
	}
	return res
}

// keepSnapshot remembers a snapshot for its continue tokens.
func (c *cache) keepSnapshot(s *sortedSnapshot) {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	c.pruneSnapshotsLocked()
	if len(c.snaps) >= maxSnapshots {
		c.snaps[0] = nil
		c.snaps = c.snaps[1:]
	}
	c.snaps = append(c.snaps, s)
}

// snapshotAt returns the kept snapshot of prefix at rev, if any.
func (c *cache) snapshotAt(rev int64, prefix string) *sortedSnapshot {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	c.pruneSnapshotsLocked()
	for _, s := range c.snaps {
		if s.rev == rev && s.prefix == prefix {
			return s
		}
	}
	return nil
}

func (c *cache) pruneSnapshotsLocked() {
	for len(c.snaps) > 0 && time.Since(c.snaps[0].taken) > snapshotTTL {
		c.snaps[0] = nil
		c.snaps = c.snaps[1:]
	}
}
