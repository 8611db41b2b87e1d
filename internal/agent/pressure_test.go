package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestPressureConditions checks the conditions and events of each pressure.
func TestPressureConditions(t *testing.T) {
	conds := pressure{memory: true}.conditions()
	if len(conds) != 4 || conds[3].t != corev1.NodeReady {
		t.Fatalf("want 4 conditions, Ready last: %+v", conds)
	}
	if c := conds[0]; c.t != corev1.NodeMemoryPressure || c.status != corev1.ConditionTrue ||
		c.reason != "KubeletHasInsufficientMemory" || c.event != "NodeHasInsufficientMemory" {
		t.Fatalf("memory pressure: %+v", c)
	}
	if c := conds[1]; c.status != corev1.ConditionFalse || c.reason != "KubeletHasNoDiskPressure" || c.event != "NodeHasNoDiskPressure" {
		t.Fatalf("no disk pressure: %+v", c)
	}
	// A test machine has more than 100 MiB free and PIDs to spare.
	a := &Agent{opts: Options{RootDir: t.TempDir()}}
	if p := a.readPressure(); p.memory || p.pid {
		t.Fatalf("readPressure on a test machine = %+v", p)
	}
}
