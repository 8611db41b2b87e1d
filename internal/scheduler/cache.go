package scheduler

import (
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cache is the scheduler's view of node usage. A pod counts on its node as
// soon as the scheduler picks the node ("assumed"), before the binding is
// written, so the next decision already sees it and nothing is double-booked.
// The informer later confirms the pod (it arrives bound) or the binding
// fails and the scheduler forgets it.
type Cache struct {
	mu    sync.Mutex
	nodes map[string]*NodeInfo
	// list holds the nodes the informer has delivered, in a stable order for
	// FindNode's rotation; pods may name a node before it arrives, and such
	// a node is kept in nodes only.
	list []*NodeInfo
	pods map[types.UID]*cachedPod
	// next is where the next FindNode starts, so successive pods look at
	// different nodes first, as upstream's nextStartNodeIndex.
	next       int
	percentage int
	scratch    Scratch
}

type cachedPod struct {
	info    *PodInfo
	node    string
	assumed bool
}

// NewCache returns an empty cache; percentage is the share of nodes to find
// feasible before scoring (0 adapts to the cluster's size, as upstream).
func NewCache(percentage int) *Cache {
	return &Cache{nodes: map[string]*NodeInfo{}, pods: map[types.UID]*cachedPod{}, percentage: percentage}
}

func (c *Cache) nodeLocked(name string) *NodeInfo {
	ni := c.nodes[name]
	if ni == nil {
		ni = NewNodeInfo(nil)
		c.nodes[name] = ni
	}
	return ni
}

// SetNode adds or updates a node.
func (c *Cache) SetNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodeLocked(node.Name)
	ni.SetNode(node)
	if ni.index < 0 {
		ni.index = len(c.list)
		c.list = append(c.list, ni)
	}
}

// RemoveNode drops a node. Pods still bound to it keep counting on it, so
// a node that returns under the same name is not overbooked.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodes[name]
	if ni == nil {
		return
	}
	if ni.index >= 0 {
		last := len(c.list) - 1
		c.list[ni.index] = c.list[last]
		c.list[ni.index].index = ni.index
		c.list[last] = nil
		c.list = c.list[:last]
		ni.index = -1
	}
	ni.SetNode(nil)
	if len(ni.Pods) == 0 {
		delete(c.nodes, name)
	}
}

// AddPod records a pod the informer shows bound to a node (confirming it
// if it was assumed). It reports whether the pod was new to the cache.
func (c *Cache) AddPod(pod *corev1.Pod) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, known := c.pods[pod.UID]
	if known {
		c.releaseLocked(cp)
	}
	c.placeLocked(NewPodInfo(pod), pod.Spec.NodeName, false)
	return !known
}

// RemovePod forgets a pod that was deleted or finished; it reports whether
// the pod was counted.
func (c *Cache) RemovePod(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.pods[uid]
	if ok {
		c.releaseLocked(cp)
		delete(c.pods, uid)
	}
	return ok
}

// Forget drops a pod assumed on a node whose binding failed.
func (c *Cache) Forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.pods[uid]; ok && cp.assumed {
		c.releaseLocked(cp)
		delete(c.pods, uid)
	}
}

// Assumed reports whether the pod is assumed and not yet seen bound.
func (c *Cache) Assumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.pods[uid]
	return ok && cp.assumed
}

// Schedule finds a node for p and, if one fits, assumes p there, in one
// step under the lock so that concurrent changes cannot slip in between.
// It returns "" and no error for a pod already assumed or seen bound.
func (c *Cache) Schedule(p *PodInfo) (string, *FitError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[p.Pod.UID]; ok {
		return "", nil
	}
	if len(c.list) > 0 {
		c.next %= len(c.list)
	}
	ni, seen, fitErr := FindNode(p, c.list, c.next, c.percentage, &c.scratch)
	if len(c.list) > 0 {
		c.next = (c.next + seen) % len(c.list)
	}
	if fitErr != nil {
		return "", fitErr
	}
	c.placeLocked(p, ni.Name(), true)
	return ni.Name(), nil
}

func (c *Cache) placeLocked(p *PodInfo, node string, assumed bool) {
	c.nodeLocked(node).AddPod(p)
	c.pods[p.Pod.UID] = &cachedPod{info: p, node: node, assumed: assumed}
}

func (c *Cache) releaseLocked(cp *cachedPod) {
	ni := c.nodes[cp.node]
	if ni == nil {
		return
	}
	ni.RemovePod(cp.info.Pod.UID)
	if ni.Node == nil && len(ni.Pods) == 0 {
		delete(c.nodes, cp.node)
	}
}

// NodeUsage is what a node has requested, for tests and debugging.
func (c *Cache) NodeUsage(name string) (Resource, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[name]
	if !ok {
		return Resource{}, false
	}
	r := ni.Requested
	r.Scalar = maps.Clone(r.Scalar)
	return r, true
}
