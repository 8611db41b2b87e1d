package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDeploymentRolloutAndJobs drives the controllers with kubectl on a real agent.
func TestDeploymentRolloutAndJobs(t *testing.T) {
	c, k := agentCluster(t)
	k.run(t, c, "create", "deployment", "web", "--image=busybox", "--replicas=10", "--", "sleep", "3600")
	if out, err := k.try(c, "rollout", "status", "deploy/web", "--timeout=60s"); err != nil {
		state, _ := k.try(c, "get", "deploy,rs,pods", "-o", "wide")
		desc, _ := k.try(c, "describe", "pods")
		t.Fatalf("rollout status: %v\n%s\n%s\n%s", err, out[max(0, len(out)-300):], state, desc)
	}
	// Watch availability through the rolling update: with upstream's
	// default maxUnavailable of 25 %, never fewer than 10 - 2 available.
	watch := k.cmd(c, "get", "deploy", "web", "--watch", "-o", `jsonpath={.status.availableReplicas}{"\n"}`)
	var seen lockedBuffer
	watch.Stdout = &seen
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	k.run(t, c, "set", "image", "deploy/web", "busybox=busybox:1.36")
	k.run(t, c, "rollout", "status", "deploy/web", "--timeout=90s")
	watch.Process.Kill()
	watch.Wait()
	fewest := 10
	for _, line := range strings.Fields(seen.String()) {
		if n, err := strconv.Atoi(line); err == nil {
			fewest = min(fewest, n)
		}
	}
	if fewest < 8 || strings.Count(seen.String(), "\n") < 2 {
		t.Fatalf("available replicas during the rollout went down to %d (want >= 8); seen:\n%s", fewest, seen.String())
	}
	out := k.run(t, c, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.status.availableReplicas} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}")
	if out != "busybox:1.36 10 2" {
		t.Fatalf("after set image: %q", out)
	}
	k.run(t, c, "rollout", "undo", "deploy/web")
	k.run(t, c, "rollout", "status", "deploy/web", "--timeout=90s")
	if img := jsonpath(k, c, "deploy/web", "{.spec.template.spec.containers[0].image}"); img != "busybox" {
		t.Fatalf("after undo: image %q", img)
	}
	out = k.run(t, c, "get", "rs", "-l", "app=web")
	if n := strings.Count(out, "web-"); n != 2 {
		t.Fatalf("undo should reuse the first ReplicaSet, got %d:\n%s", n, out)
	}

	applyYAML(t, k, c, `apiVersion: batch/v1
kind: Job
metadata:
  name: serial
spec:
  completions: 3
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "echo done"]
`)
	k.run(t, c, "wait", "--for=condition=complete", "job/serial", "--timeout=90s")
	out = k.run(t, c, "get", "job", "serial")
	mustContain(t, "get job", out, "Complete", "3/3")
	out = k.run(t, c, "logs", "job/serial")
	mustContain(t, "job logs", out, "done")

	applyYAML(t, k, c, `apiVersion: batch/v1
kind: Job
metadata:
  name: doomed
spec:
  activeDeadlineSeconds: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sleep", "3600"]
`)
	eventually(t, 60*time.Second, func() string {
		r := jsonpath(k, c, "job/doomed", `{.status.conditions[?(@.type=="Failed")].reason}`)
		if r != "DeadlineExceeded" {
			return "Failed reason " + r
		}
		return ""
	})
}
