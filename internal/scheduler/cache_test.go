package scheduler

import (
	"testing"
)

func cpuOn(t *testing.T, c *Cache, node string) int64 {
	t.Helper()
	r, _ := c.NodeUsage(node)
	return r.MilliCPU
}

func TestCacheAssumedPodsAreNotDoubleBooked(t *testing.T) {
	c := NewCache(0)
	c.SetNode(makeNode("a", "1", "4Gi", 10))
	c.SetNode(makeNode("b", "1", "4Gi", 10))
	p1, p2, p3 := makePod("600m", ""), makePod("600m", ""), makePod("600m", "")
	n1, err := c.Schedule(NewPodInfo(p1))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := c.Schedule(NewPodInfo(p2))
	if err != nil {
		t.Fatal(err)
	}
	if n1 == n2 {
		t.Fatalf("both pods assumed on %s", n1)
	}
	if _, err := c.Schedule(NewPodInfo(p3)); err == nil || err.Error() != "0/2 nodes are available: 2 Insufficient cpu." {
		t.Fatalf("third pod: %v", err)
	}
	if !c.Assumed(p1.UID) {
		t.Fatal("p1 not assumed")
	}
	if n, err := c.Schedule(NewPodInfo(p1)); n != "" || err != nil {
		t.Fatalf("an assumed pod was scheduled again: %q %v", n, err)
	}

	// The informer confirms p1; the binding of p2 fails and it is forgotten.
	p1.Spec.NodeName = n1
	if c.AddPod(p1) {
		t.Error("confirming an assumed pod reported a new pod")
	}
	if c.Assumed(p1.UID) || cpuOn(t, c, n1) != 600 {
		t.Fatalf("after confirming: assumed=%v cpu=%d", c.Assumed(p1.UID), cpuOn(t, c, n1))
	}
	c.Forget(p2.UID)
	if cpuOn(t, c, n2) != 0 {
		t.Fatalf("after forgetting, %s has %dm", n2, cpuOn(t, c, n2))
	}
	// Forget leaves confirmed pods alone.
	c.Forget(p1.UID)
	if cpuOn(t, c, n1) != 600 {
		t.Fatal("Forget dropped a bound pod")
	}
	if n, err := c.Schedule(NewPodInfo(p3)); err != nil || n != n2 {
		t.Fatalf("third pod after the forget: %q %v", n, err)
	}
	if !c.RemovePod(p1.UID) || cpuOn(t, c, n1) != 0 {
		t.Fatal("RemovePod did not release p1")
	}
}

func TestCachePodsOnUnknownNodes(t *testing.T) {
	c := NewCache(0)
	p := makePod("1", "")
	p.Spec.NodeName = "late"
	if !c.AddPod(p) {
		t.Fatal("AddPod of a new pod reported it known")
	}
	// The node is not offered before the informer delivers it...
	if _, err := c.Schedule(NewPodInfo(makePod("100m", ""))); err == nil || err.NumAllNodes != 0 {
		t.Fatalf("scheduled onto a node not delivered: %v", err)
	}
	// ...and when it arrives, the pod already counts.
	c.SetNode(makeNode("late", "1500m", "4Gi", 10))
	if _, err := c.Schedule(NewPodInfo(makePod("600m", ""))); err == nil {
		t.Fatal("scheduled past the pod bound before the node arrived")
	}
	// A node that goes away and comes back still counts its pods.
	c.RemoveNode("late")
	c.SetNode(makeNode("late", "1500m", "4Gi", 10))
	if cpuOn(t, c, "late") != 1000 {
		t.Fatalf("cpu after the node came back: %d", cpuOn(t, c, "late"))
	}
	c.RemovePod(p.UID)
	c.RemoveNode("late")
	if _, ok := c.NodeUsage("late"); ok {
		t.Fatal("an empty removed node is still kept")
	}
}

func TestCacheRemoveNodeKeepsListConsistent(t *testing.T) {
	c := NewCache(0)
	for _, n := range []string{"a", "b", "c"} {
		c.SetNode(makeNode(n, "1", "1Gi", 10))
	}
	c.RemoveNode("a")
	c.SetNode(makeNode("b", "2", "1Gi", 10)) // an update must not list b twice
	if len(c.list) != 2 {
		t.Fatalf("list has %d nodes, want 2", len(c.list))
	}
	for i, ni := range c.list {
		if ni.index != i {
			t.Errorf("%s at %d thinks it is at %d", ni.Name(), i, ni.index)
		}
	}
	seen := map[string]bool{}
	for range 4 {
		n, err := c.Schedule(NewPodInfo(makePod("100m", "")))
		if err != nil {
			t.Fatal(err)
		}
		seen[n] = true
	}
	if seen["a"] || !seen["b"] || !seen["c"] {
		t.Fatalf("placed on %v", seen)
	}
}
