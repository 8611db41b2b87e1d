package garbagecollector

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// identity names one object well enough to read, patch and delete it.
type identity struct {
	APIVersion, Kind, Namespace, Name string
	UID                               types.UID
}

// node is an object in the dependency graph. A virtual node is an owner
// that some object references but no informer has shown yet: it may exist
// (not yet listed, or of a kind not watched) or be long gone.
type node struct {
	id                 identity
	virtual            bool
	owners             []metav1.OwnerReference
	dependents         map[*node]struct{}
	beingDeleted       bool // deletionTimestamp set
	deletingDependents bool // ... with the foregroundDeletion finalizer
	orphaning          bool // ... with the orphan finalizer
	rechecks           int  // times a virtual node was found to exist
}

// graph is the dependency graph keyed by UID: informer handlers change it,
// workers read snapshots of it. Only metadata is kept.
type graph struct {
	mu    sync.Mutex
	nodes map[types.UID]*node
}

func newGraph() *graph { return &graph{nodes: map[types.UID]*node{}} }

// work is what a graph change asks the workers to look at.
type work struct {
	attempt []types.UID // may need deleting, or (deleting dependents) finishing
	orphan  []types.UID // owners whose dependents are to be orphaned
}

// observe records an object added or updated: id from its informer, the
// rest from its metadata.
func (g *graph) observe(id identity, m metav1.Object) work {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w work
	n := g.nodes[id.UID]
	if n == nil {
		n = &node{dependents: map[*node]struct{}{}}
		g.nodes[id.UID] = n
	}
	n.id, n.virtual = id, false

	owners := m.GetOwnerReferences()
	for _, old := range n.owners {
		i := slices.IndexFunc(owners, func(o metav1.OwnerReference) bool { return o.UID == old.UID })
		owner := g.nodes[old.UID]
		if owner == nil {
			continue
		}
		if i < 0 {
			g.unlink(owner, n)
		}
		// An owner waiting on its blocking dependents may be free now.
		if owner.deletingDependents && (i < 0 || blocks(old) && !blocks(owners[i])) {
			w.attempt = append(w.attempt, owner.id.UID)
		}
	}
	for _, o := range owners {
		if slices.ContainsFunc(n.owners, func(old metav1.OwnerReference) bool { return old.UID == o.UID }) {
			continue
		}
		owner := g.nodes[o.UID]
		if owner == nil {
			// Assume the owner shares the dependent's namespace; the
			// worker drops it for cluster-scoped kinds.
			owner = &node{virtual: true, dependents: map[*node]struct{}{},
				id: identity{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: id.Namespace, Name: o.Name, UID: o.UID}}
			g.nodes[o.UID] = owner
			w.attempt = append(w.attempt, o.UID)
		}
		owner.dependents[n] = struct{}{}
		if owner.deletingDependents {
			// A newcomer to an owner deleted in the foreground goes too.
			w.attempt = append(w.attempt, n.id.UID)
		}
	}
	n.owners = owners

	deleting := m.GetDeletionTimestamp() != nil
	fg := deleting && slices.Contains(m.GetFinalizers(), metav1.FinalizerDeleteDependents)
	orphan := deleting && slices.Contains(m.GetFinalizers(), metav1.FinalizerOrphanDependents)
	if fg && !n.deletingDependents {
		w.attempt = append(w.attempt, n.id.UID)
		for d := range n.dependents {
			w.attempt = append(w.attempt, d.id.UID)
		}
	}
	if orphan && !n.orphaning {
		w.orphan = append(w.orphan, n.id.UID)
	}
	n.beingDeleted, n.deletingDependents, n.orphaning = deleting, fg, orphan
	return w
}

// remove forgets an object that is gone; its dependents are looked at again
// and so are owners waiting for it.
func (g *graph) remove(uid types.UID) work {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w work
	n := g.nodes[uid]
	if n == nil {
		return w
	}
	delete(g.nodes, uid)
	for _, o := range n.owners {
		if owner := g.nodes[o.UID]; owner != nil {
			g.unlink(owner, n)
			if owner.deletingDependents {
				w.attempt = append(w.attempt, owner.id.UID)
			}
		}
	}
	for d := range n.dependents {
		w.attempt = append(w.attempt, d.id.UID)
	}
	return w
}

// removeVirtual forgets a virtual node found not to exist (unless an
// informer showed it meanwhile).
func (g *graph) removeVirtual(uid types.UID) work {
	g.mu.Lock()
	n := g.nodes[uid]
	virtual := n != nil && n.virtual
	g.mu.Unlock()
	if !virtual {
		return work{}
	}
	return g.remove(uid)
}

// recheck counts one more look at a virtual node found to exist.
func (g *graph) recheck(uid types.UID) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return 0
	}
	n.rechecks++
	return n.rechecks
}

// unlink removes dependent from owner, and a virtual owner nobody points to.
func (g *graph) unlink(owner, dependent *node) {
	delete(owner.dependents, dependent)
	if owner.virtual && len(owner.dependents) == 0 {
		delete(g.nodes, owner.id.UID)
	}
}

// blocks reports a reference that keeps a foreground-deleted owner around.
func blocks(o metav1.OwnerReference) bool {
	return o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion
}

// snapshot is a copy of a node for a worker to act on without the lock.
type snapshot struct {
	id                                              identity
	virtual, beingDeleted, deletingDependents, orph bool
	dependents                                      []identity
	// blocking are dependents that block this owner's deletion; busy marks
	// those already deleting their own dependents.
	blocking []identity
	busy     []bool
}

func (g *graph) snapshot(uid types.UID) (snapshot, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return snapshot{}, false
	}
	s := snapshot{id: n.id, virtual: n.virtual, beingDeleted: n.beingDeleted,
		deletingDependents: n.deletingDependents, orph: n.orphaning}
	for d := range n.dependents {
		s.dependents = append(s.dependents, d.id)
		if slices.ContainsFunc(d.owners, func(o metav1.OwnerReference) bool { return o.UID == uid && blocks(o) }) {
			s.blocking = append(s.blocking, d.id)
			s.busy = append(s.busy, d.deletingDependents)
		}
	}
	return s, true
}

// size is the number of nodes, virtual ones included.
func (g *graph) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nodes)
}
