package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podsByNode lists pods matching selector as "name node terminating phase".
func podsByNode(k kubectl, c *cluster, selector string) []string {
	out, _ := k.try(c, "get", "pods", "-l", selector, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.deletionTimestamp}{"|"}{.status.phase}{"\n"}{end}`)
	return strings.Split(strings.TrimSpace(out), "\n")
}

// TestDeadNodePodsAreReplaced kills a second agent and its containers
// outright: after the grace period its node goes Unknown and is tainted
// unreachable; once the pods' unreachable toleration (2 s here) runs out
// they are evicted, the Deployment's replicas come back on the live node and
// the Job still reaches its completions.
func TestDeadNodePodsAreReplaced(t *testing.T) {
	// The grace period stays above the agents' 10 s lease renewal, so the
	// live node never looks silent.
	c, k := agentCluster(t, "--node-monitor-grace-period", "15s",
		"--default-unreachable-toleration-seconds", "2", "--default-not-ready-toleration-seconds", "2")
	root := filepath.Join(t.TempDir(), "node-b")
	t.Cleanup(func() { reset(t, root) })
	agent := startAgentIn(t, c, "node-b", root, freePort(t))
	eventually(t, 30*time.Second, nodeReady(k, c, "node-b"))

	k.run(t, c, "create", "deployment", "web", "--image=busybox", "--replicas=4", "--", "sleep", "3600")
	applyYAML(t, k, c, `apiVersion: batch/v1
kind: Job
metadata:
  name: batch
spec:
  completions: 2
  parallelism: 2
  template:
    metadata:
      labels: {app: batch}
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sleep", "8"]
`)
	// Both nodes run web pods, and the Job's pods are running.
	eventually(t, 40*time.Second, func() string {
		perNode := map[string]int{}
		for _, l := range podsByNode(k, c, "app=web") {
			if f := strings.Fields(l); len(f) == 3 && f[2] == "|Running" {
				perNode[f[1]]++
			}
		}
		running := 0
		for _, l := range podsByNode(k, c, "app=batch") {
			if strings.HasSuffix(l, "|Running") {
				running++
			}
		}
		if perNode["node-a"] == 0 || perNode["node-b"] == 0 || perNode["node-a"]+perNode["node-b"] != 4 || running != 2 {
			return fmt.Sprintf("web running per node %v, batch running %d", perNode, running)
		}
		return ""
	})
	t.Logf("before the failure: web %v; batch %v", podsByNode(k, c, "app=web"), podsByNode(k, c, "app=batch"))

	// The machine dies: the agent and every container it started, at once.
	killed := time.Now()
	_ = agent.Process.Kill()
	_ = agent.Wait()
	if out, err := exec.Command(skiffBin, "reset", "--root-dir", root).CombinedOutput(); err != nil {
		t.Fatalf("kill node-b's containers: %v\n%s", err, out)
	}

	eventually(t, 30*time.Second, func() string {
		s := jsonpath(k, c, "node/node-b", `{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}`)
		if !strings.HasPrefix(s, "Unknown ") || !strings.Contains(s, "node.kubernetes.io/unreachable") {
			return "node-b Ready and taints: " + s
		}
		return ""
	})
	t.Logf("node-b Unknown and tainted %s after the kill", time.Since(killed).Round(time.Second))

	// All replicas available again, the live ones all on node-a; node-b
	// keeps only terminating pods (no agent is left to finish them).
	eventually(t, 40*time.Second, func() string {
		avail := jsonpath(k, c, "deploy/web", "{.status.availableReplicas}")
		liveA := 0
		for _, l := range podsByNode(k, c, "app=web") {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			terminating := !strings.HasPrefix(f[2], "|")
			if f[1] == "node-b" && !terminating {
				return "web pod still live on node-b: " + l
			}
			if f[1] == "node-a" && !terminating && strings.HasSuffix(l, "|Running") {
				liveA++
			}
		}
		if avail != "4" || liveA != 4 {
			return fmt.Sprintf("web available %q, running on node-a %d", avail, liveA)
		}
		return ""
	})
	t.Logf("web back to 4 on node-a %s after the kill", time.Since(killed).Round(time.Second))

	// The Job's work completes: the pod lost with node-b is replaced and
	// both completions are reached. As upstream, the Complete condition then
	// waits for the lost pod, Terminating on the dead node, to be gone: an
	// operator force-deletes the pods of a machine that will not come back.
	k.run(t, c, "wait", "--for=condition=SuccessCriteriaMet", "job/batch", "--timeout=40s")
	if got := jsonpath(k, c, "job/batch", "{.status.succeeded}"); got != "2" {
		t.Fatalf("job succeeded %q, want 2", got)
	}
	k.run(t, c, "delete", "pods", "--field-selector", "spec.nodeName=node-b", "--force", "--grace-period=0")
	k.run(t, c, "wait", "--for=condition=complete", "job/batch", "--timeout=30s")
	out := k.run(t, c, "get", "events", "--field-selector", "reason=TaintManagerEviction")
	mustContain(t, "eviction events", out, "Marking for deletion Pod")
}
