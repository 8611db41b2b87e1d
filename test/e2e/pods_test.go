package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// agentCluster is a server with its own agent, cleaned up with `skiff reset`.
func agentCluster(t *testing.T, extra ...string) (*cluster, kubectl) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "agent")
	args := append([]string{"--node-name", "node-a", "--root-dir", root, "--kubelet-port", fmt.Sprint(freePort(t)), "--node-ip", "127.0.0.1"}, extra...)
	c := startServer(t, args...)
	t.Cleanup(func() { reset(t, root) })
	k := kubectl{name: "embedded", argv: []string{skiffBin, "kubectl"}, cacheDir: t.TempDir()}
	eventually(t, 30*time.Second, func() string {
		out, _ := k.try(c, "get", "node", "node-a", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
		if out != "True" {
			return "node-a not Ready: " + out
		}
		return ""
	})
	return c, k
}

// reset stops every container an agent started and removes its state.
func reset(t *testing.T, root string) {
	if out, err := exec.Command(skiffBin, "reset", "--root-dir", root).CombinedOutput(); err != nil {
		t.Errorf("skiff reset: %v\n%s", err, out)
	}
}

func applyYAML(t *testing.T, k kubectl, c *cluster, doc string) {
	t.Helper()
	k.runIn(t, c, doc, "apply", "-f", "-")
}

func jsonpath(k kubectl, c *cluster, obj, path string) string {
	out, _ := k.try(c, "get", obj, "-o", "jsonpath="+path)
	return out
}

func TestPodRunsAndLogs(t *testing.T) {
	c, k := agentCluster(t)
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo hi; echo to-stderr >&2; sleep 3600"]
`)
	eventually(t, 30*time.Second, func() string {
		if p := jsonpath(k, c, "pod/hello", "{.status.phase}"); p != "Running" {
			return "phase " + p
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		out, _ := k.try(c, "logs", "hello")
		if !strings.Contains(out, "hi") || !strings.Contains(out, "to-stderr") {
			return "logs: " + out
		}
		return ""
	})
	out := k.run(t, c, "get", "pod", "hello", "-o", "wide")
	mustContain(t, "get pod -o wide", out, "1/1", "Running", "node-a")
	out = k.run(t, c, "logs", "hello", "--timestamps", "--tail=1")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "T") {
		t.Fatalf("logs --timestamps --tail=1: %q", out)
	}
	start := time.Now()
	k.run(t, c, "delete", "pod", "hello", "--grace-period=2", "--wait")
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("deleting a pod that exits on SIGTERM took %s", d)
	}
}

func TestPodWithoutCommandFailsClearly(t *testing.T) {
	c, k := agentCluster(t)
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: nocmd
spec:
  containers:
  - name: main
    image: nginx
`)
	eventually(t, 30*time.Second, func() string {
		r := jsonpath(k, c, "pod/nocmd", "{.status.containerStatuses[0].state.waiting.reason}")
		m := jsonpath(k, c, "pod/nocmd", "{.status.containerStatuses[0].state.waiting.message}")
		if r != "CreateContainerError" || !strings.Contains(m, "no command") {
			return "waiting " + r + ": " + m
		}
		return ""
	})
	out := k.run(t, c, "describe", "pod", "nocmd")
	mustContain(t, "describe", out, "no command")
}

func TestProbesAndRestarts(t *testing.T) {
	c, k := agentCluster(t)
	port := freePort(t)
	applyYAML(t, k, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  containers:
  - name: web
    image: python
    command: ["python3", "-m", "http.server", "%d", "--bind", "0.0.0.0"]
    readinessProbe:
      httpGet: {port: %d, path: /}
      periodSeconds: 1
  - name: dying
    image: busybox
    command: ["sleep", "3600"]
    livenessProbe:
      exec: {command: ["false"]}
      periodSeconds: 1
      failureThreshold: 1
`, port, port))
	eventually(t, 60*time.Second, func() string {
		ready := jsonpath(k, c, "pod/probed", `{.status.containerStatuses[?(@.name=="web")].ready}`)
		restarts := jsonpath(k, c, "pod/probed", `{.status.containerStatuses[?(@.name=="dying")].restartCount}`)
		if n, _ := strconv.Atoi(restarts); ready != "true" || n < 1 {
			return "web ready=" + ready + " dying restarts=" + restarts
		}
		return ""
	})
	out := k.run(t, c, "get", "events", "--field-selector", "involvedObject.name=probed")
	mustContain(t, "events", out, "Unhealthy", "Liveness probe failed")
}

func TestGracefulTermination(t *testing.T) {
	c, k := agentCluster(t)
	marks := filepath.Join(t.TempDir(), "marks")
	if err := os.WriteFile(marks, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, k, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "trap 'echo sigterm >> %[1]s' TERM; while true; do sleep 0.2; done"]
    lifecycle:
      preStop:
        exec: {command: ["sh", "-c", "echo prestop >> %[1]s"]}
`, marks))
	eventually(t, 30*time.Second, func() string {
		if p := jsonpath(k, c, "pod/stubborn", "{.status.phase}"); p != "Running" {
			return "phase " + p
		}
		return ""
	})
	start := time.Now()
	k.run(t, c, "delete", "pod", "stubborn", "--wait")
	took := time.Since(start)
	data, _ := os.ReadFile(marks)
	if got := strings.Fields(string(data)); len(got) < 2 || got[0] != "prestop" || got[1] != "sigterm" {
		t.Fatalf("marks = %q, want prestop then sigterm", data)
	}
	if took < 3*time.Second || took > 20*time.Second {
		t.Fatalf("a pod ignoring SIGTERM with a 3s grace period took %s to go", took)
	}
}
