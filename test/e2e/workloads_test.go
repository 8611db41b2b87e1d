package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestDeploymentRolloutAndJobs drives the controllers with kubectl on a real agent.
func TestDeploymentRolloutAndJobs(t *testing.T) {
	c, k := agentCluster(t)
	k.run(t, c, "create", "deployment", "web", "--image=busybox", "--replicas=4", "--", "sleep", "3600")
	if out, err := k.try(c, "rollout", "status", "deploy/web", "--timeout=60s"); err != nil {
		state, _ := k.try(c, "get", "deploy,rs,pods", "-o", "wide")
		desc, _ := k.try(c, "describe", "pods")
		t.Fatalf("rollout status: %v\n%s\n%s\n%s", err, out[max(0, len(out)-300):], state, desc)
	}
	k.run(t, c, "set", "image", "deploy/web", "busybox=busybox:1.36")
	k.run(t, c, "rollout", "status", "deploy/web", "--timeout=90s")
	out := k.run(t, c, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.status.availableReplicas} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}")
	if out != "busybox:1.36 4 2" {
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
