package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// MaxNodeScore is the most a single score gives a node.
const MaxNodeScore = 100

// Weights of the scores: upstream's defaults for the plugins they mirror
// (NodeResourcesFit, PodTopologySpread, TaintToleration, NodeAffinity).
const (
	weightLeastAllocated = 1
	weightSpread         = 2
	weightTaint          = 3
	weightNodeAffinity   = 2
)

// LeastAllocatedScore favours nodes with more of cpu and memory left after
// placing p: the mean over both of free×100/allocatable.
func LeastAllocatedScore(p *PodInfo, ni *NodeInfo) int64 {
	cpu := leastAllocated(ni.NonZeroRequested.MilliCPU+p.NonZeroMilliCPU, ni.Allocatable.MilliCPU)
	mem := leastAllocated(ni.NonZeroRequested.Memory+p.NonZeroMemory, ni.Allocatable.Memory)
	return (cpu + mem) / 2
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * MaxNodeScore / capacity
}

// sameOwnerPods counts the pods on ni with p's controller.
func sameOwnerPods(p *PodInfo, ni *NodeInfo) int64 {
	if p.Owner == "" {
		return 0
	}
	return int64(ni.owners[p.Owner])
}

// intolerablePreferNoSchedule counts ni's PreferNoSchedule taints p does not tolerate.
func intolerablePreferNoSchedule(p *PodInfo, ni *NodeInfo) int64 {
	var n int64
	for i := range ni.taints {
		t := &ni.taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !tolerates(p.Pod.Spec.Tolerations, t) {
			n++
		}
	}
	return n
}

func preferredAffinity(p *PodInfo, ni *NodeInfo) int64 {
	if p.preferred == nil {
		return 0
	}
	return p.preferred.Score(ni.Node)
}

// Score appends to scores the total score of each node in nodes (all of
// which fit p), in order. Scores that compare nodes with each other (owner
// spreading, PreferNoSchedule taints, preferred node affinity) are
// normalised over nodes to 0..MaxNodeScore, as upstream's NormalizeScore does.
func Score(p *PodInfo, nodes []*NodeInfo, scores []int64) []int64 {
	// First pass: the maxima to normalise by. Each raw score is a map lookup
	// or a short loop, so recomputing them below is cheaper than storing them.
	var maxSpread, maxTaint, maxAffinity int64
	for _, ni := range nodes {
		maxSpread = max(maxSpread, sameOwnerPods(p, ni))
		maxTaint = max(maxTaint, intolerablePreferNoSchedule(p, ni))
		maxAffinity = max(maxAffinity, preferredAffinity(p, ni))
	}
	for _, ni := range nodes {
		total := weightLeastAllocated * LeastAllocatedScore(p, ni)
		// Fewer pods of the same owner is better; with none anywhere every node is as good.
		spread := int64(MaxNodeScore)
		if maxSpread > 0 {
			spread = MaxNodeScore * (maxSpread - sameOwnerPods(p, ni)) / maxSpread
		}
		total += weightSpread * spread
		taint := int64(MaxNodeScore)
		if maxTaint > 0 {
			taint = MaxNodeScore - MaxNodeScore*intolerablePreferNoSchedule(p, ni)/maxTaint
		}
		total += weightTaint * taint
		if maxAffinity > 0 {
			total += weightNodeAffinity * MaxNodeScore * preferredAffinity(p, ni) / maxAffinity
		}
		scores = append(scores, total)
	}
	return scores
}

// PickNode returns the index of the highest score; the first one wins a tie,
// and since the caller rotates where it starts looking, ties go round-robin.
func PickNode(scores []int64) int {
	best := -1
	for i, s := range scores {
		if best < 0 || s > scores[best] {
			best = i
		}
	}
	return best
}
