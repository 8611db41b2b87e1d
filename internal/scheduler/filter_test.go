package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFilter(t *testing.T) {
	const (
		noSchedule = corev1.TaintEffectNoSchedule
		noExecute  = corev1.TaintEffectNoExecute
		prefer     = corev1.TaintEffectPreferNoSchedule
		exists     = corev1.TolerationOpExists
		equal      = corev1.TolerationOpEqual
	)
	inTerm := func(key string, values ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}}}
	}
	nameTerm := func(name string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{name}}}}
	}
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     []string
	}{
		{name: "fits", node: makeNode("n", "2", "4Gi", 10), pod: makePod("1", "1Gi")},
		{name: "cordoned", node: makeNode("n", "2", "4Gi", 10, cordoned), pod: makePod("1", "1Gi"), want: []string{ReasonUnschedulable}},
		{name: "cordoned, tolerated", node: makeNode("n", "2", "4Gi", 10, cordoned),
			pod: makePod("1", "1Gi", withToleration(taintNodeUnschedulable, exists, "", noSchedule))},
		{name: "not ready", node: makeNode("n", "2", "4Gi", 10, withReady(corev1.ConditionFalse)), pod: makePod("1", "1Gi"),
			want: []string{ReasonUntoleratedTaint}},
		{name: "ready unknown", node: makeNode("n", "2", "4Gi", 10, withReady(corev1.ConditionUnknown)), pod: makePod("1", "1Gi"),
			want: []string{ReasonUntoleratedTaint}},
		{name: "not ready, pod tolerates not-ready", node: makeNode("n", "2", "4Gi", 10, withReady(corev1.ConditionFalse)),
			pod: makePod("1", "1Gi", withToleration(taintNodeNotReady, exists, "", noSchedule))},
		{name: "unreachable toleration does not cover not-ready", node: makeNode("n", "2", "4Gi", 10, withReady(corev1.ConditionFalse)),
			pod: makePod("1", "1Gi", withToleration(taintNodeUnreachable, exists, "", "")), want: []string{ReasonUntoleratedTaint}},
		{name: "NoSchedule taint", node: makeNode("n", "2", "4Gi", 10, withTaint("dedicated", "gpu", noSchedule)), pod: makePod("1", "1Gi"),
			want: []string{ReasonUntoleratedTaint}},
		{name: "NoExecute taint", node: makeNode("n", "2", "4Gi", 10, withTaint("dedicated", "gpu", noExecute)), pod: makePod("1", "1Gi"),
			want: []string{ReasonUntoleratedTaint}},
		{name: "PreferNoSchedule only scores", node: makeNode("n", "2", "4Gi", 10, withTaint("dedicated", "gpu", prefer)), pod: makePod("1", "1Gi")},
		{name: "taint tolerated by Equal", node: makeNode("n", "2", "4Gi", 10, withTaint("dedicated", "gpu", noSchedule)),
			pod: makePod("1", "1Gi", withToleration("dedicated", equal, "gpu", noSchedule))},
		{name: "toleration with another value", node: makeNode("n", "2", "4Gi", 10, withTaint("dedicated", "gpu", noSchedule)),
			pod: makePod("1", "1Gi", withToleration("dedicated", equal, "db", noSchedule)), want: []string{ReasonUntoleratedTaint}},
		{name: "toleration for another effect", node: makeNode("n", "2", "4Gi", 10, withTaint("dedicated", "gpu", noExecute)),
			pod: makePod("1", "1Gi", withToleration("dedicated", exists, "", noSchedule)), want: []string{ReasonUntoleratedTaint}},
		{name: "tolerate everything", node: makeNode("n", "2", "4Gi", 10, withTaint("a", "1", noSchedule), withTaint("b", "", noExecute)),
			pod: makePod("1", "1Gi", withToleration("", exists, "", ""))},
		{name: "nodeSelector matches", node: makeNode("n", "2", "4Gi", 10, withLabel("disk", "ssd")), pod: makePod("1", "1Gi", withNodeSelector("disk", "ssd"))},
		{name: "nodeSelector differs", node: makeNode("n", "2", "4Gi", 10, withLabel("disk", "hdd")), pod: makePod("1", "1Gi", withNodeSelector("disk", "ssd")),
			want: []string{ReasonNodeAffinity}},
		{name: "required affinity, one term of two matches", node: makeNode("n", "2", "4Gi", 10, withLabel("zone", "b")),
			pod: makePod("1", "1Gi", withRequiredAffinity(inTerm("zone", "a"), inTerm("zone", "b", "c")))},
		{name: "required affinity misses", node: makeNode("n", "2", "4Gi", 10, withLabel("zone", "d")),
			pod: makePod("1", "1Gi", withRequiredAffinity(inTerm("zone", "a"))), want: []string{ReasonNodeAffinity}},
		{name: "matchFields metadata.name", node: makeNode("n", "2", "4Gi", 10), pod: makePod("1", "1Gi", withRequiredAffinity(nameTerm("n")))},
		{name: "matchFields other name", node: makeNode("n", "2", "4Gi", 10), pod: makePod("1", "1Gi", withRequiredAffinity(nameTerm("m"))),
			want: []string{ReasonNodeAffinity}},
		{name: "nodeSelector and affinity both needed", node: makeNode("n", "2", "4Gi", 10, withLabel("zone", "a")),
			pod: makePod("1", "1Gi", withNodeSelector("disk", "ssd"), withRequiredAffinity(inTerm("zone", "a"))), want: []string{ReasonNodeAffinity}},
		{name: "taint is checked before affinity", node: makeNode("n", "2", "4Gi", 10, withTaint("k", "", noSchedule)),
			pod: makePod("1", "1Gi", withNodeSelector("disk", "ssd")), want: []string{ReasonUntoleratedTaint}},
		{name: "host port in use", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("", "", withHostPort("", "", 8080))},
			pod: makePod("", "", withHostPort("", corev1.ProtocolTCP, 8080)), want: []string{ReasonHostPorts}},
		{name: "host port, other protocol", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("", "", withHostPort("", "", 53))},
			pod: makePod("", "", withHostPort("", corev1.ProtocolUDP, 53))},
		{name: "host port on two addresses", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("", "", withHostPort("10.0.0.1", "", 80))},
			pod: makePod("", "", withHostPort("10.0.0.2", "", 80))},
		{name: "host port, wildcard against an address", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("", "", withHostPort("10.0.0.1", "", 80))},
			pod: makePod("", "", withHostPort("", "", 80)), want: []string{ReasonHostPorts}},
		{name: "host port, an address against a wildcard", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("", "", withHostPort("0.0.0.0", "", 80))},
			pod: makePod("", "", withHostPort("10.0.0.1", "", 80)), want: []string{ReasonHostPorts}},
		{name: "insufficient cpu", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("1500m", "")},
			pod: makePod("600m", "1Gi"), want: []string{ReasonInsufficientCPU}},
		{name: "exactly full fits", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("1500m", "3Gi")},
			pod: makePod("500m", "1Gi")},
		{name: "insufficient cpu and memory", node: makeNode("n", "2", "4Gi", 10),
			pod: makePod("3", "5Gi"), want: []string{ReasonInsufficientCPU, ReasonInsufficientMem}},
		{name: "insufficient ephemeral storage", node: makeNode("n", "2", "4Gi", 10),
			pod: makePod("", "", withRequest(corev1.ResourceEphemeralStorage, "200Gi")), want: []string{ReasonInsufficientStore}},
		{name: "too many pods", node: makeNode("n", "2", "4Gi", 1), existing: []*corev1.Pod{makePod("", "")},
			pod: makePod("", ""), want: []string{ReasonTooManyPods}},
		{name: "too many pods and insufficient cpu", node: makeNode("n", "2", "4Gi", 1), existing: []*corev1.Pod{makePod("2", "")},
			pod: makePod("1", ""), want: []string{ReasonTooManyPods, ReasonInsufficientCPU}},
		{name: "extended resource missing", node: makeNode("n", "2", "4Gi", 10),
			pod: makePod("", "", withRequest("example.com/gpu", "1")), want: []string{"Insufficient example.com/gpu"}},
		{name: "extended resource present", node: makeNode("n", "2", "4Gi", 10, withAllocatable("example.com/gpu", "2")),
			pod: makePod("", "", withRequest("example.com/gpu", "2"))},
		// 100m app + 1500m init: the init container's 1500m counts, not the sum.
		{name: "init container max counts", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("400m", "")},
			pod: makePod("100m", "", withInit("1500m", false))},
		{name: "init container larger than free", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("600m", "")},
			pod: makePod("100m", "", withInit("1500m", false)), want: []string{ReasonInsufficientCPU}},
		// A sidecar runs beside the app: 1000m + 1000m.
		{name: "sidecar adds to the app", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("100m", "")},
			pod: makePod("1", "", withInit("1", true)), want: []string{ReasonInsufficientCPU}},
		{name: "overhead counts", node: makeNode("n", "2", "4Gi", 10), pod: makePod("1800m", "", withOverhead("250m")),
			want: []string{ReasonInsufficientCPU}},
		{name: "existing pods' overhead counts", node: makeNode("n", "2", "4Gi", 10), existing: []*corev1.Pod{makePod("1", "", withOverhead("500m"))},
			pod: makePod("600m", ""), want: []string{ReasonInsufficientCPU}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ni := NewNodeInfo(tc.node, infos(tc.existing...)...)
			got := Filter(NewPodInfo(tc.pod), ni, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Filter = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNodeInfoRemovePodReleasesEverything(t *testing.T) {
	owner := withOwner("rs-1")
	a := NewPodInfo(makePod("1", "1Gi", withHostPort("", "", 80), owner))
	b := NewPodInfo(makePod("500m", "", withRequest("example.com/gpu", "1"), owner))
	ni := NewNodeInfo(makeNode("n", "4", "8Gi", 10), a, b)
	if ni.Requested.MilliCPU != 1500 || ni.Requested.Pods != 2 || ni.owners["rs-1"] != 2 || ni.UsedPorts[newHostPort("", "", 80)] != 1 {
		t.Fatalf("after adding: %+v owners=%v ports=%v", ni.Requested, ni.owners, ni.UsedPorts)
	}
	ni.RemovePod(a.Pod.UID)
	ni.RemovePod(b.Pod.UID)
	if ni.Requested.MilliCPU != 0 || ni.Requested.Memory != 0 || ni.Requested.Pods != 0 || ni.Requested.Scalar["example.com/gpu"] != 0 ||
		ni.NonZeroRequested.MilliCPU != 0 || len(ni.owners) != 0 || len(ni.UsedPorts) != 0 || len(ni.Pods) != 0 {
		t.Fatalf("after removing: %+v nonzero=%+v owners=%v ports=%v", ni.Requested, ni.NonZeroRequested, ni.owners, ni.UsedPorts)
	}
	if ni.RemovePod(a.Pod.UID) {
		t.Fatal("removing twice reported a removal")
	}
}
