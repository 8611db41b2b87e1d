package scheduler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFitErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  FitError
		want string
	}{
		{name: "no nodes", err: FitError{}, want: "no nodes available to schedule pods"},
		{name: "one reason", err: FitError{NumAllNodes: 2, Reasons: map[string]int{ReasonInsufficientCPU: 2}},
			want: "0/2 nodes are available: 2 Insufficient cpu."},
		{name: "sorted", err: FitError{NumAllNodes: 3, Reasons: map[string]int{ReasonInsufficientMem: 2, ReasonNodeAffinity: 1}},
			want: "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."},
		// Upstream sorts the "count reason" strings as strings, so 10 comes before 2.
		{name: "sorted as strings", err: FitError{NumAllNodes: 12, Reasons: map[string]int{ReasonUntoleratedTaint: 2, ReasonUnschedulable: 10}},
			want: "0/12 nodes are available: 10 node(s) were unschedulable, 2 node(s) had untolerated taint(s)."},
		// One node short of both cpu and memory counts for each.
		{name: "a node can give two reasons", err: FitError{NumAllNodes: 1, Reasons: map[string]int{ReasonInsufficientCPU: 1, ReasonInsufficientMem: 1}},
			want: "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q\nwant      %q", got, tc.want)
			}
		})
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct{ all, percentage, want int }{
		{all: 0, want: 0},
		{all: 50, want: 50},
		{all: 99, percentage: 10, want: 99},
		{all: 100, want: 100},   // 50% of 100 is under the floor of 100
		{all: 1000, want: 420},  // 50 - 1000/125 = 42%
		{all: 5000, want: 500},  // 10%
		{all: 10000, want: 500}, // the 5% floor
		{all: 5000, percentage: 100, want: 5000},
		{all: 5000, percentage: 1, want: 100},
		{all: 5000, percentage: 30, want: 1500},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d nodes at %d%%", tc.all, tc.percentage), func(t *testing.T) {
			if got := NumFeasibleNodesToFind(tc.all, tc.percentage); got != tc.want {
				t.Errorf("NumFeasibleNodesToFind(%d, %d) = %d, want %d", tc.all, tc.percentage, got, tc.want)
			}
		})
	}
}

func TestFindNode(t *testing.T) {
	nodes := func(ns ...*corev1.Node) []*NodeInfo {
		out := make([]*NodeInfo, len(ns))
		for i, n := range ns {
			out[i] = NewNodeInfo(n)
		}
		return out
	}
	tests := []struct {
		name     string
		nodes    []*NodeInfo
		pod      *corev1.Pod
		start    int
		wantNode string
		wantErr  string
	}{
		{name: "no nodes", pod: makePod("1", ""), wantErr: "no nodes available to schedule pods"},
		{name: "too big for all", nodes: nodes(makeNode("a", "2", "4Gi", 10), makeNode("b", "2", "4Gi", 10)), pod: makePod("3", ""),
			wantErr: "0/2 nodes are available: 2 Insufficient cpu."},
		{name: "mixed reasons", pod: makePod("", "6Gi", withNodeSelector("disk", "ssd")),
			nodes:   nodes(makeNode("a", "2", "4Gi", 10), makeNode("b", "2", "4Gi", 10, withLabel("disk", "ssd")), makeNode("c", "2", "4Gi", 10, withLabel("disk", "ssd"))),
			wantErr: "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."},
		{name: "only one fits", pod: makePod("3", ""),
			nodes: nodes(makeNode("a", "2", "4Gi", 10), makeNode("b", "4", "4Gi", 10), makeNode("c", "2", "4Gi", 10)), wantNode: "b"},
		{name: "tie goes to the first looked at", pod: makePod("1", ""), start: 2,
			nodes: nodes(makeNode("a", "4", "4Gi", 10), makeNode("b", "4", "4Gi", 10), makeNode("c", "4", "4Gi", 10)), wantNode: "c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Scratch
			ni, seen, fitErr := FindNode(NewPodInfo(tc.pod), tc.nodes, tc.start, 0, &s)
			if tc.wantErr != "" {
				if fitErr == nil {
					t.Fatalf("FindNode picked %s, want error %q", ni.Name(), tc.wantErr)
				}
				if fitErr.Error() != tc.wantErr {
					t.Fatalf("error %q, want %q", fitErr.Error(), tc.wantErr)
				}
				if seen != len(tc.nodes) {
					t.Errorf("looked at %d nodes, want all %d", seen, len(tc.nodes))
				}
				return
			}
			if fitErr != nil {
				t.Fatalf("FindNode: %v", fitErr)
			}
			if ni.Name() != tc.wantNode {
				t.Errorf("picked %s, want %s", ni.Name(), tc.wantNode)
			}
		})
	}
}

// With many nodes, FindNode stops filtering once it has enough feasible
// ones and reports how far it went, so the next pod starts after them.
func TestFindNodeSamplesLargeClusters(t *testing.T) {
	var all []*NodeInfo
	for i := range 1000 {
		all = append(all, NewNodeInfo(makeNode(fmt.Sprintf("n%04d", i), "4", "8Gi", 110)))
	}
	var s Scratch
	_, seen, fitErr := FindNode(NewPodInfo(makePod("1", "")), all, 990, 0, &s)
	if fitErr != nil {
		t.Fatal(fitErr)
	}
	if want := NumFeasibleNodesToFind(1000, 0); seen != want {
		t.Errorf("looked at %d nodes, want %d", seen, want)
	}
	// Every other node is too small: it keeps looking until it has found enough.
	for i := 0; i < len(all); i += 2 {
		all[i] = NewNodeInfo(makeNode(fmt.Sprintf("small%04d", i), "500m", "8Gi", 110))
	}
	_, seen, fitErr = FindNode(NewPodInfo(makePod("1", "")), all, 0, 0, &s)
	if fitErr != nil {
		t.Fatal(fitErr)
	}
	if want := 2 * NumFeasibleNodesToFind(1000, 0); seen != want {
		t.Errorf("looked at %d nodes, want %d", seen, want)
	}
}

func BenchmarkFindNode5000(b *testing.B) {
	var all []*NodeInfo
	for i := range 5000 {
		all = append(all, NewNodeInfo(makeNode(fmt.Sprintf("n%04d", i), "32", "128Gi", 110)))
	}
	p := NewPodInfo(makePod("100m", "", withOwner("rs")))
	var s Scratch
	start := 0
	b.ReportAllocs()
	for b.Loop() {
		_, seen, _ := FindNode(p, all, start, 0, &s)
		start = (start + seen) % len(all)
	}
}
