package garbagecollector

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func obj(uid string, finalizers []string, deleting bool, owners ...metav1.OwnerReference) (identity, metav1.Object) {
	m := &metav1.ObjectMeta{Name: uid, Namespace: "ns", UID: types.UID(uid), Finalizers: finalizers, OwnerReferences: owners}
	if deleting {
		now := metav1.Now()
		m.DeletionTimestamp = &now
	}
	return identity{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: uid, UID: types.UID(uid)}, m
}

func owned(uid string, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: uid, UID: types.UID(uid), BlockOwnerDeletion: &block}
}

func uids(us []types.UID) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = string(u)
	}
	slices.Sort(out)
	return out
}

func TestGraphTracksOwnersAndAsksForWork(t *testing.T) {
	type step struct {
		do          func(g *graph) work
		attempt     []string
		orphan      []string
		nodes       int
		wantVirtual map[string]bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "a dependent seen before its owner makes a virtual owner to check", steps: []step{
			{do: func(g *graph) work { return g.observe(obj("pod", nil, false, owned("rs", true))) },
				attempt: []string{"rs"}, nodes: 2, wantVirtual: map[string]bool{"rs": true}},
			{do: func(g *graph) work { return g.observe(obj("rs", nil, false)) },
				attempt: []string{}, nodes: 2, wantVirtual: map[string]bool{"rs": false}},
		}},
		{name: "a virtual owner found gone releases its dependents", steps: []step{
			{do: func(g *graph) work { return g.observe(obj("pod", nil, false, owned("rs", true))) }, attempt: []string{"rs"}, nodes: 2},
			{do: func(g *graph) work { return g.removeVirtual("rs") }, attempt: []string{"pod"}, nodes: 1},
		}},
		{name: "foreground deletion asks for the owner and every dependent", steps: []step{
			{do: func(g *graph) work { return g.observe(obj("rs", nil, false)) }, attempt: []string{}, nodes: 1},
			{do: func(g *graph) work { return g.observe(obj("a", nil, false, owned("rs", true))) }, attempt: []string{}, nodes: 2},
			{do: func(g *graph) work { return g.observe(obj("b", nil, false, owned("rs", false))) }, attempt: []string{}, nodes: 3},
			{do: func(g *graph) work { return g.observe(obj("rs", []string{metav1.FinalizerDeleteDependents}, true)) },
				attempt: []string{"a", "b", "rs"}, nodes: 3},
			// Seen again: nothing new to do.
			{do: func(g *graph) work { return g.observe(obj("rs", []string{metav1.FinalizerDeleteDependents}, true)) }, attempt: []string{}, nodes: 3},
			// A newcomer goes too.
			{do: func(g *graph) work { return g.observe(obj("c", nil, false, owned("rs", false))) }, attempt: []string{"c"}, nodes: 4},
			// A blocking dependent gone, or unblocked, lets the owner be looked at.
			{do: func(g *graph) work { return g.remove("a") }, attempt: []string{"rs"}, nodes: 3},
			{do: func(g *graph) work { return g.observe(obj("d", nil, false, owned("rs", true))) }, attempt: []string{"d"}, nodes: 4},
			{do: func(g *graph) work { return g.observe(obj("d", nil, false, owned("rs", false))) }, attempt: []string{"rs"}, nodes: 4},
		}},
		{name: "orphan finalizer asks for orphaning once", steps: []step{
			{do: func(g *graph) work { return g.observe(obj("rs", []string{metav1.FinalizerOrphanDependents}, true)) }, attempt: []string{}, orphan: []string{"rs"}, nodes: 1},
			{do: func(g *graph) work { return g.observe(obj("rs", []string{metav1.FinalizerOrphanDependents}, true)) }, attempt: []string{}, nodes: 1},
		}},
		{name: "an owner gone asks for its dependents; an unreferenced virtual owner is dropped", steps: []step{
			{do: func(g *graph) work { return g.observe(obj("rs", nil, false)) }, attempt: []string{}, nodes: 1},
			{do: func(g *graph) work { return g.observe(obj("a", nil, false, owned("rs", true), owned("ghost", false))) }, attempt: []string{"ghost"}, nodes: 3},
			{do: func(g *graph) work { return g.remove("rs") }, attempt: []string{"a"}, nodes: 2},
			{do: func(g *graph) work { return g.observe(obj("a", nil, false)) }, attempt: []string{}, nodes: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph()
			for i, s := range tc.steps {
				w := s.do(g)
				if got := uids(w.attempt); !slices.Equal(got, s.attempt) {
					t.Fatalf("step %d: attempt %v, want %v", i, got, s.attempt)
				}
				if got := uids(w.orphan); s.orphan != nil && !slices.Equal(got, s.orphan) {
					t.Fatalf("step %d: orphan %v, want %v", i, got, s.orphan)
				}
				if n := g.size(); n != s.nodes {
					t.Fatalf("step %d: %d nodes, want %d", i, n, s.nodes)
				}
				for uid, v := range s.wantVirtual {
					if snap, ok := g.snapshot(types.UID(uid)); !ok || snap.virtual != v {
						t.Fatalf("step %d: %s virtual=%v (present %v), want %v", i, uid, snap.virtual, ok, v)
					}
				}
			}
		})
	}
}

func TestSnapshotListsBlockingDependents(t *testing.T) {
	g := newGraph()
	g.observe(obj("rs", nil, false))
	g.observe(obj("a", nil, false, owned("rs", true)))
	g.observe(obj("b", nil, false, owned("rs", false)))
	g.observe(obj("c", []string{metav1.FinalizerDeleteDependents}, true, owned("rs", true)))
	s, _ := g.snapshot("rs")
	var blocking []types.UID
	busy := map[string]bool{}
	for i, d := range s.blocking {
		blocking = append(blocking, d.UID)
		busy[string(d.UID)] = s.busy[i]
	}
	if got := uids(blocking); !slices.Equal(got, []string{"a", "c"}) || busy["a"] || !busy["c"] || len(s.dependents) != 3 {
		t.Fatalf("blocking %v busy %v dependents %d", got, busy, len(s.dependents))
	}
}
