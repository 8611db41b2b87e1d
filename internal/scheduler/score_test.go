package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLeastAllocatedScore(t *testing.T) {
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     int64
	}{
		// cpu (4000-1000)/4000 = 75, memory (8-2)/8 = 75.
		{name: "empty node", node: makeNode("n", "4", "8Gi", 10), pod: makePod("1", "2Gi"), want: 75},
		// cpu (4000-3000)/4000 = 25, memory (8-6)/8 = 25.
		{name: "half used", node: makeNode("n", "4", "8Gi", 10), existing: []*corev1.Pod{makePod("2", "4Gi")}, pod: makePod("1", "2Gi"), want: 25},
		// A pod asking nothing counts as 100m and 200Mi: cpu 97, memory (8192-200)/8192 = 97.
		{name: "request-less pod counts the defaults", node: makeNode("n", "4", "8Gi", 10), pod: makePod("", ""), want: 97},
		{name: "overcommitted scores 0", node: makeNode("n", "1", "1Gi", 10), existing: []*corev1.Pod{makePod("1", "1Gi")}, pod: makePod("1", "1Gi"), want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := LeastAllocatedScore(NewPodInfo(tc.pod), NewNodeInfo(tc.node, infos(tc.existing...)...)); got != tc.want {
				t.Errorf("LeastAllocatedScore = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	rs := withOwner("rs-1")
	tests := []struct {
		name  string
		nodes []*NodeInfo
		pod   *corev1.Pod
		want  []int64
		best  int
	}{
		{
			name: "less allocated node wins",
			nodes: []*NodeInfo{
				NewNodeInfo(makeNode("a", "4", "8Gi", 10), infos(makePod("2", "4Gi"))...),
				NewNodeInfo(makeNode("b", "4", "8Gi", 10)),
			},
			// least allocated + 2×100 spread (no owner) + 3×100 taints.
			pod: makePod("1", "2Gi"), want: []int64{25 + 500, 75 + 500}, best: 1,
		},
		{
			// Node a is bigger, so least allocated alone would put the
			// second replica there too; spreading sends it to b.
			name: "pods of one owner spread",
			nodes: []*NodeInfo{
				NewNodeInfo(makeNode("a", "8", "16Gi", 10), infos(makePod("100m", "", rs))...),
				NewNodeInfo(makeNode("b", "4", "16Gi", 10)),
			},
			pod: makePod("100m", "", rs), want: []int64{97 + 0 + 300, 97 + 200 + 300}, best: 1,
		},
		{
			name: "another owner's pods do not repel",
			nodes: []*NodeInfo{
				NewNodeInfo(makeNode("a", "8", "16Gi", 10), infos(makePod("100m", "", withOwner("rs-2")))...),
				NewNodeInfo(makeNode("b", "4", "16Gi", 10)),
			},
			pod: makePod("100m", "", rs), want: []int64{97 + 200 + 300, 97 + 200 + 300}, best: 0,
		},
		{
			name: "untolerated PreferNoSchedule taint loses",
			nodes: []*NodeInfo{
				NewNodeInfo(makeNode("a", "4", "8Gi", 10, withTaint("spot", "", corev1.TaintEffectPreferNoSchedule))),
				NewNodeInfo(makeNode("b", "4", "8Gi", 10)),
			},
			pod: makePod("1", "2Gi"), want: []int64{75 + 200 + 0, 75 + 200 + 300}, best: 1,
		},
		{
			name: "tolerated PreferNoSchedule taint does not count",
			nodes: []*NodeInfo{
				NewNodeInfo(makeNode("a", "4", "8Gi", 10, withTaint("spot", "", corev1.TaintEffectPreferNoSchedule))),
				NewNodeInfo(makeNode("b", "4", "8Gi", 10)),
			},
			pod:  makePod("1", "2Gi", withToleration("spot", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule)),
			want: []int64{575, 575}, best: 0,
		},
		{
			name: "preferred node affinity",
			nodes: []*NodeInfo{
				NewNodeInfo(makeNode("a", "4", "8Gi", 10)),
				NewNodeInfo(makeNode("b", "4", "8Gi", 10, withLabel("disk", "ssd"))),
			},
			pod: makePod("1", "2Gi", withPreferredAffinity(5, "disk", "ssd")), want: []int64{575, 575 + 200}, best: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Score(NewPodInfo(tc.pod), tc.nodes, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Score = %v, want %v", got, tc.want)
			}
			if best := PickNode(got); best != tc.best {
				t.Errorf("PickNode = %d, want %d", best, tc.best)
			}
		})
	}
}
