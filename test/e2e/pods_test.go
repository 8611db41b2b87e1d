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

// waitPhase waits until the pod reaches phase.
func waitPhase(t *testing.T, k kubectl, c *cluster, pod, phase string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() string {
		if p := jsonpath(k, c, "pod/"+pod, "{.status.phase}"); p != phase {
			return pod + " phase " + p
		}
		return ""
	})
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
	c, k := agentCluster(t, "--max-pods", "150")
	if pods := jsonpath(k, c, "node/node-a", "{.status.capacity.pods} {.status.allocatable.pods}"); pods != "150 150" {
		t.Fatalf("node pods capacity/allocatable with --max-pods 150: %q", pods)
	}
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo hi; echo to-stderr >&2; echo host=$HOSTNAME; sleep 3600"]
`)
	waitPhase(t, k, c, "hello", "Running", 30*time.Second)
	eventually(t, 10*time.Second, func() string {
		out, _ := k.try(c, "logs", "hello")
		if !strings.Contains(out, "hi") || !strings.Contains(out, "to-stderr") || !strings.Contains(out, "host=hello") {
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
	// describe shows the failing pod's events, repeated ones aggregated as
	// client-go's recorder counts them ("(x2 over 3s)").
	eventually(t, 30*time.Second, func() string {
		out := k.run(t, c, "describe", "pod", "probed")
		for _, want := range []string{"Events:", "Scheduled", "Started", "Killing", "Unhealthy", "Liveness probe failed", "(x"} {
			if !strings.Contains(out, want) {
				return "describe pod lacks " + want + ":\n" + out
			}
		}
		return ""
	})
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
	waitPhase(t, k, c, "stubborn", "Running", 30*time.Second)
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

// startAgent runs `skiff agent` joining c, as another machine would.
func startAgent(t *testing.T, c *cluster, name string) *exec.Cmd {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	t.Cleanup(func() { reset(t, root) })
	return startAgentIn(t, c, name, root, freePort(t))
}

func startAgentIn(t *testing.T, c *cluster, name, root string, port int) *exec.Cmd {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(c.dataDir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(strings.SplitN(string(mustRead(t, c.kubeconfig)), "server: ", 2)[1])
	url = strings.Fields(url)[0]
	cmd := exec.Command(skiffBin, "agent", "--server", url, "--token", strings.TrimSpace(string(token)),
		"--node-name", name, "--root-dir", root, "--kubelet-port", fmt.Sprint(port), "--node-ip", "127.0.0.1")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent %s output:\n%s", name, out.String())
		}
	})
	return cmd
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nodeReady(k kubectl, c *cluster, name string) func() string {
	return func() string {
		if s := jsonpath(k, c, "node/"+name, `{.status.conditions[?(@.type=="Ready")].status}`); s != "True" {
			return name + " not Ready: " + s
		}
		return ""
	}
}

// TestTwoAgentsSpreadPodsAndUnschedulableWaits joins a second agent with the
// node token and checks the scheduler's spreading and its Unschedulable message.
func TestTwoAgentsSpreadPodsAndUnschedulableWaits(t *testing.T) {
	c, k := agentCluster(t)
	startAgent(t, c, "node-b")
	eventually(t, 30*time.Second, nodeReady(k, c, "node-b"))

	owner := k.run(t, c, "create", "configmap", "owner", "-o", "jsonpath={.metadata.uid}")
	var pods strings.Builder
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&pods, `---
apiVersion: v1
kind: Pod
metadata:
  name: spread-%d
  labels: {app: spread}
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: %s, controller: true}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
`, i, owner)
	}
	applyYAML(t, k, c, pods.String())
	eventually(t, 60*time.Second, func() string {
		out, _ := k.try(c, "get", "pods", "-l", "app=spread", "-o", `jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{"\n"}{end}`)
		count := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[1] == "Running" {
				count[f[0]]++
			}
		}
		if count["node-a"] != 2 || count["node-b"] != 2 {
			return fmt.Sprintf("running per node: %v", count)
		}
		return ""
	})

	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: huge
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: "1000"}
`)
	eventually(t, 30*time.Second, func() string {
		msg := jsonpath(k, c, "pod/huge", `{.status.conditions[?(@.type=="PodScheduled")].message}`)
		reason := jsonpath(k, c, "pod/huge", `{.status.conditions[?(@.type=="PodScheduled")].reason}`)
		if reason != "Unschedulable" || !strings.HasPrefix(msg, "0/2 nodes are available: 2 Insufficient cpu.") {
			return "PodScheduled: " + reason + " " + msg
		}
		return ""
	})
	out := k.run(t, c, "get", "events", "--field-selector", "involvedObject.name=huge")
	mustContain(t, "FailedScheduling event", out, "FailedScheduling", "Insufficient cpu")
	if p := jsonpath(k, c, "pod/huge", "{.status.phase}"); p != "Pending" {
		t.Fatalf("unschedulable pod phase %q, want Pending", p)
	}
}

// TestAgentRestartKeepsContainers kills `skiff agent` and starts it again:
// the container keeps running and is adopted, with the same restart count.
func TestAgentRestartKeepsContainers(t *testing.T) {
	c, k := agentCluster(t)
	root := filepath.Join(t.TempDir(), "node-r")
	t.Cleanup(func() { reset(t, root) })
	port := freePort(t)
	agent := startAgentIn(t, c, "node-r", root, port)
	eventually(t, 30*time.Second, nodeReady(k, c, "node-r"))
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: survivor
spec:
  nodeName: node-r
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo started; sleep 3600"]
`)
	waitPhase(t, k, c, "survivor", "Running", 30*time.Second)
	id := jsonpath(k, c, "pod/survivor", "{.status.containerStatuses[0].containerID}")
	agent.Process.Kill()
	agent.Wait()
	if out, _ := exec.Command("pgrep", "-f", "echo started; sleep 3600").Output(); strings.TrimSpace(string(out)) == "" {
		t.Fatal("the container died with its agent")
	}
	startAgentIn(t, c, "node-r", root, port)
	// The restarted agent adopts the container: same ID, no restart, logs still served.
	eventually(t, 30*time.Second, func() string {
		out, err := k.try(c, "logs", "survivor")
		if err != nil || !strings.Contains(out, "started") {
			return "logs after agent restart: " + out
		}
		return ""
	})
	if got := jsonpath(k, c, "pod/survivor", "{.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}"); got != id+" 0" {
		t.Fatalf("after agent restart: %q, want %q", got, id+" 0")
	}
	k.run(t, c, "delete", "pod", "survivor", "--grace-period=1", "--wait")
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: memory limits are enforced through cgroups")
	}
	c, k := agentCluster(t)
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "x=$(head -c 300000000 /dev/zero | tr '\\0' x); sleep 5"]
    resources:
      limits: {memory: 32Mi}
`)
	eventually(t, 60*time.Second, func() string {
		got := jsonpath(k, c, "pod/hog", "{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode} {.status.phase}")
		if got != "OOMKilled 137 Failed" {
			return "terminated: " + got
		}
		return ""
	})
}

func TestLogsFollowPreviousAndCordonDrain(t *testing.T) {
	c, k := agentCluster(t)
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: chatty
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo run-$(date +%s%N); sleep 1; echo done; exit 1"]
`)
	// The container exits after a second and restarts: --previous shows the run before.
	eventually(t, 60*time.Second, func() string {
		if n := jsonpath(k, c, "pod/chatty", "{.status.containerStatuses[0].restartCount}"); n == "" || n == "0" {
			return "restartCount " + n
		}
		return ""
	})
	out := k.run(t, c, "logs", "chatty", "--previous")
	mustContain(t, "logs --previous", out, "run-", "done")
	f := k.cmd(c, "logs", "-f", "chatty")
	var buf lockedBuffer
	f.Stdout, f.Stderr = &buf, &buf
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Wait() }()
	select {
	case <-done:
		// -f ends when the container exits.
	case <-time.After(60 * time.Second):
		f.Process.Kill()
		t.Fatalf("logs -f did not end with its container: %s", buf.String())
	}
	mustContain(t, "logs -f", buf.String(), "run-")

	k.run(t, c, "cordon", "node-a")
	if u := jsonpath(k, c, "node/node-a", "{.spec.unschedulable}"); u != "true" {
		t.Fatalf("cordon: unschedulable=%q", u)
	}
	out = k.run(t, c, "drain", "node-a", "--force", "--grace-period=1", "--timeout=60s")
	mustContain(t, "drain", out, "evicting pod default/chatty", "drained")
	k.run(t, c, "uncordon", "node-a")
}

// TestInitContainersEnvAndVolumes covers init containers in order, env from
// ConfigMaps, Secrets and the downward API, and a ConfigMap volume following
// its object.
func TestInitContainersEnvAndVolumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: volumes are bind-mounted in a private mount namespace")
	}
	c, k := agentCluster(t)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(out, 0o777); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, k, c, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: conf
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret
---
apiVersion: v1
kind: Pod
metadata:
  name: full
  labels: {tier: test}
spec:
  initContainers:
  - name: first
    image: busybox
    command: ["sh", "-c", "echo first >> /out/order"]
    volumeMounts: [{name: out, mountPath: /out}]
  - name: second
    image: busybox
    command: ["sh", "-c", "echo second >> /out/order"]
    volumeMounts: [{name: out, mountPath: /out}]
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo main >> /out/order; echo $GREETING $PASSWORD $POD_NAME $TIER > /out/env; while true; do cat /etc/conf/greeting > /out/volume; sleep 0.5; done"]
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: conf, key: greeting}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: TIER
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}
    volumeMounts:
    - {name: out, mountPath: /out}
    - {name: conf, mountPath: /etc/conf}
  volumes:
  - name: out
    hostPath: {path: %s}
  - name: conf
    configMap: {name: conf}
`, out))
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return strings.TrimSpace(string(b))
	}
	eventually(t, 60*time.Second, func() string {
		if got := read("order"); got != "first\nsecond\nmain" {
			return "order: " + got
		}
		if got := read("env"); got != "hello s3cret full test" {
			return "env: " + got
		}
		if got := read("volume"); got != "hello" {
			return "volume: " + got
		}
		return ""
	})
	k.run(t, c, "patch", "configmap", "conf", "-p", `{"data":{"greeting":"updated"}}`)
	eventually(t, 60*time.Second, func() string {
		if got := read("volume"); got != "updated" {
			return "volume after the ConfigMap changed: " + got
		}
		return ""
	})
}

// The README starts the server with a relative --data-dir (./.skiff): the
// shims run in /, so the agent must hand them absolute paths or the logs
// land under / and `kubectl logs` shows nothing.
func TestRelativeDataDirKeepsLogs(t *testing.T) {
	t.Parallel()
	cwd := t.TempDir()
	c := startServerIn(t, cwd, ".skiff", "--node-name", "rel-node", "--kubelet-port", fmt.Sprint(freePort(t)), "--node-ip", "127.0.0.1")
	k := kubectl{name: "embedded", argv: []string{skiffBin, "kubectl"}, cacheDir: t.TempDir()}
	applyYAML(t, k, c, `apiVersion: v1
kind: Pod
metadata:
  name: rel
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo from-relative-dir; sleep 3600"]
`)
	waitPhase(t, k, c, "rel", "Running", 30*time.Second)
	eventually(t, 10*time.Second, func() string {
		if out, _ := k.try(c, "logs", "rel"); !strings.Contains(out, "from-relative-dir") {
			return "logs: " + out
		}
		return ""
	})
}
