package scheduler

import (
	"fmt"
	"sort"
	"strings"
)

// FitError says why no node can take a pod.
type FitError struct {
	NumAllNodes int
	// Reasons counts, per reason, the nodes that gave it.
	Reasons map[string]int
}

// Error builds upstream's FitError message: "0/3 nodes are available: 1
// node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."
// The "count reason" strings are sorted as strings, as upstream sorts them.
func (e *FitError) Error() string {
	if e.NumAllNodes == 0 {
		return "no nodes available to schedule pods"
	}
	msg := fmt.Sprintf("0/%d nodes are available:", e.NumAllNodes)
	parts := make([]string, 0, len(e.Reasons))
	for reason, n := range e.Reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		msg += " " + strings.Join(parts, ", ") + "."
	}
	return msg
}

// Below this many nodes every node is checked; above it, at least this
// many feasible nodes are found before scoring (upstream's minFeasibleNodesToFind).
const minFeasibleNodesToFind = 100

// NumFeasibleNodesToFind is how many feasible nodes to find among all
// before scoring, as upstream's percentageOfNodesToScore: with percentage 0
// it adapts, from 50% of a 100-node cluster down to 5% at 5,625 nodes and
// beyond, but never fewer than 100 nodes.
func NumFeasibleNodesToFind(all, percentage int) int {
	if all < minFeasibleNodesToFind || percentage >= 100 {
		return all
	}
	if percentage <= 0 {
		percentage = max(50-all/125, 5)
	}
	n := all * percentage / 100
	return max(n, minFeasibleNodesToFind)
}

// Scratch holds buffers FindNode reuses from one pod to the next.
type Scratch struct {
	feasible []*NodeInfo
	scores   []int64
	reasons  []string
}

// FindNode picks a node for p. It filters nodes from index start onwards
// (wrapping) until it has NumFeasibleNodesToFind(len(nodes), percentage)
// feasible ones or has seen them all, scores those and returns the best,
// with how many nodes it looked at so the caller can start the next pod
// after them. If nothing fits, it returns the FitError over all nodes.
func FindNode(p *PodInfo, nodes []*NodeInfo, start, percentage int, s *Scratch) (*NodeInfo, int, *FitError) {
	if len(nodes) == 0 {
		return nil, 0, &FitError{}
	}
	want := NumFeasibleNodesToFind(len(nodes), percentage)
	s.feasible = s.feasible[:0]
	var fitErr *FitError
	seen := 0
	for ; seen < len(nodes) && len(s.feasible) < want; seen++ {
		ni := nodes[(start+seen)%len(nodes)]
		s.reasons = Filter(p, ni, s.reasons[:0])
		if len(s.reasons) == 0 {
			s.feasible = append(s.feasible, ni)
			continue
		}
		if fitErr == nil {
			fitErr = &FitError{Reasons: map[string]int{}}
		}
		for _, r := range s.reasons {
			fitErr.Reasons[r]++
		}
	}
	if len(s.feasible) == 0 {
		fitErr.NumAllNodes = len(nodes)
		return nil, seen, fitErr
	}
	s.scores = Score(p, s.feasible, s.scores[:0])
	best := s.feasible[PickNode(s.scores)]
	// Drop the references so a removed node can be collected.
	clear(s.feasible)
	return best, seen, nil
}
