package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"k8s.io/client-go/tools/clientcmd"
)

// TestExecAttachPortForwardCp drives kubectl exec (with and without a
// terminal), attach, port-forward and cp through the API server to the
// agent, with each kubectl over WebSocket (its default: v5.channel.k8s.io,
// and SPDY tunnelled in WebSocket for port-forward) and over SPDY (the
// fallback, forced by kubectl's environment switches).
func TestExecAttachPortForwardCp(t *testing.T) {
	c, k := agentCluster(t)
	work := t.TempDir()
	mnt := filepath.Join(work, "mnt") // the emptyDir's path inside the container
	webPort := freePort(t)
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Logf("no %s to serve HTTP in a pod: port-forward is not tested", python)
		python = ""
	}
	web := ""
	if python != "" {
		web = fmt.Sprintf(`
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: main
    image: python
    workingDir: %s
    command: [%q, "-m", "http.server", "%d", "--bind", "127.0.0.1"]
`, work, python, webPort)
	}
	applyYAML(t, k, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: box
spec:
  volumes:
  - name: scratch
    emptyDir: {}
  containers:
  - name: main
    image: busybox
    workingDir: %s
    env:
    - name: GREETING
      value: hello from the pod
    volumeMounts:
    - name: scratch
      mountPath: %s
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  containers:
  - name: main
    image: busybox
    stdin: true
    command: ["sh", "-c", "while read line; do echo got:$line; done"]
%s`, work, mnt, web))
	waitPhase(t, k, c, "box", "Running", 30*time.Second)
	waitPhase(t, k, c, "talker", "Running", 30*time.Second)
	if web != "" {
		waitPhase(t, k, c, "web", "Running", 30*time.Second)
	}
	containerID := strings.TrimPrefix(jsonpath(k, c, "pod/box", "{.status.containerStatuses[0].containerID}"), "process://")
	if err := os.WriteFile(filepath.Join(work, "served.txt"), []byte("served through port-forward"), 0o644); err != nil {
		t.Fatal(err)
	}

	kubectls := []kubectl{k}
	if p, err := exec.LookPath("kubectl"); err == nil {
		kubectls = append(kubectls, kubectl{name: "installed", argv: []string{p}, cacheDir: t.TempDir()})
	}
	for _, kc := range kubectls {
		for _, proto := range []string{"websocket", "spdy"} {
			var env []string
			if proto == "spdy" {
				env = []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}
			}
			s := streamCase{t: t, k: kc, c: c, env: env, name: kc.name + "-" + proto}
			t.Run(s.name, func(t *testing.T) {
				s.t = t
				s.exec(work, mnt, containerID)
				s.terminal()
				s.cp(work)
				s.attach()
				s.runInteractive()
				if web != "" {
					s.portForward(webPort)
				}
			})
		}
	}

	// Only authenticated users reach exec, and only the API server reaches
	// the agent's streaming endpoints.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	port := jsonpath(k, c, "node/node-a", "{.status.daemonEndpoints.kubeletEndpoint.Port}")
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for what, u := range map[string]string{
		"API server pods/exec":   cfg.Host + "/api/v1/namespaces/default/pods/box/exec?command=true&stdout=true",
		"agent /exec":            "https://127.0.0.1:" + port + "/exec/default/box/main?command=true&output=1",
		"agent /portforward":     "https://127.0.0.1:" + port + "/portforward/default/web",
		"API server pods/attach": cfg.Host + "/api/v1/namespaces/default/pods/talker/attach?stdout=true",
	} {
		resp, err := anon.Post(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %s, want 401", what, resp.Status)
		}
	}
}

// streamCase runs one kubectl over one protocol.
type streamCase struct {
	t    *testing.T
	k    kubectl
	c    *cluster
	env  []string
	name string
}

func (s streamCase) cmd(args ...string) *exec.Cmd {
	cmd := s.k.cmd(s.c, args...)
	cmd.Env = append(cmd.Env, s.env...)
	return cmd
}

func (s streamCase) run(stdin string, args ...string) (string, error) {
	cmd := s.cmd(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s streamCase) mustRun(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.run(stdin, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// usedProtocol checks kubectl's -v=6 log (either kubectl's format):
// WebSocket upgrades with GET, SPDY with POST.
func (s streamCase) usedProtocol(sub, log string) {
	s.t.Helper()
	want := "GET"
	if len(s.env) > 0 {
		want = "POST"
	}
	var methods []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "/"+sub) && strings.Contains(line, "101 Switching Protocols") {
			methods = append(methods, regexp.MustCompile(`\b(GET|POST)\b`).FindString(line))
		}
	}
	if len(methods) != 1 || methods[0] != want {
		s.t.Errorf("%s: want one %s upgrade, got %q in:\n%s", sub, want, methods, log)
	}
}

// exec: output, environment, working directory, exit code, input, and the
// container's cgroup and mount namespace.
func (s streamCase) exec(work, mnt, containerID string) {
	t := s.t
	// The protocol asked for is the one used, not a fallback.
	out := s.mustRun("", "-v=6", "exec", "box", "--", "true")
	s.usedProtocol("exec", out)
	out = s.mustRun("", "exec", "box", "--", "cat", "/etc/hostname")
	if want, err := os.ReadFile("/etc/hostname"); err == nil && out != string(want) {
		// Pods share the node's network, so its hostname.
		t.Errorf("exec cat /etc/hostname: %q, want %q", out, want)
	}
	out = s.mustRun("", "exec", "box", "--", "sh", "-c", `echo "$GREETING"; pwd; [ -t 0 ] || echo no-tty`)
	if want := "hello from the pod\n" + work + "\nno-tty\n"; out != want {
		t.Errorf("exec env and working dir: %q, want %q", out, want)
	}
	out, err := s.run("", "exec", "box", "--", "sh", "-c", "echo to-stderr >&2; exit 3")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("exec exit 3: %v\n%s", err, out)
	}
	mustContain(t, "exec exit 3", out, "to-stderr", "command terminated with exit code 3")
	out = s.mustRun("line one\nline two\n", "exec", "-i", "box", "--", "wc", "-l")
	if strings.TrimSpace(out) != "2" {
		t.Errorf("exec -i wc -l: %q, want 2", out)
	}
	if os.Geteuid() != 0 {
		return
	}
	// The emptyDir is mounted in the container's own mount namespace: what
	// exec writes there is not on the host.
	probe := filepath.Join(mnt, "probe-"+s.name)
	out = s.mustRun("", "exec", "box", "--", "sh", "-c", "echo inside > "+probe+" && cat "+probe)
	if out != "inside\n" {
		t.Errorf("exec write to the emptyDir: %q", out)
	}
	if _, err := os.Stat(probe); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec did not enter the container's mount namespace: %s is on the host (%v)", probe, err)
	}
	if hasCgroups() {
		out = s.mustRun("", "exec", "box", "--", "cat", "/proc/self/cgroup")
		mustContain(t, "exec's cgroup", out, containerID)
	}
}

func hasCgroups() bool {
	for _, f := range []string{"/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// terminal drives an interactive shell through a pseudo-terminal, as a
// user at a terminal runs `kubectl exec -it`.
func (s streamCase) terminal() {
	t := s.t
	cmd := s.cmd("exec", "-it", "box", "--", "sh")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out lockedBuffer
	go func() { _, _ = io.Copy(&out, tty) }()
	waitOut := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("exec -it: no %s (%q) in %q", what, want, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Fprintf(tty, "echo $((6*7)); [ -t 0 ] && echo is-a-tty; stty size\n")
	waitOut("arithmetic", "42")
	waitOut("terminal", "is-a-tty")
	waitOut("terminal size", "33 99")
	fmt.Fprintf(tty, "exit 5\n")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 5 {
			t.Errorf("exec -it: shell's exit 5 ended kubectl with %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("exec -it: kubectl did not end after exit\n%s", out.String())
	}
}

// cp copies a file into the pod and back (kubectl runs tar through exec).
func (s streamCase) cp(work string) {
	t := s.t
	local := filepath.Join(t.TempDir(), "up.txt")
	payload := bytes.Repeat([]byte("payload of "+s.name+"\n"), 5000) // many stream frames
	if err := os.WriteFile(local, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	inPod := filepath.Join(work, "copied-"+s.name+".txt")
	s.mustRun("", "cp", local, "box:"+inPod)
	if out := s.mustRun("", "exec", "box", "--", "md5sum", inPod); !strings.HasPrefix(out, fmt.Sprintf("%x", md5.Sum(payload))) {
		t.Errorf("cp to the pod: md5sum in the pod %q", out)
	}
	back := filepath.Join(t.TempDir(), "down.txt")
	s.mustRun("", "cp", "box:"+inPod, back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("cp from the pod: %d bytes, %v; want %d", len(got), err, len(payload))
	}
}

// attach sends a line to a container's stdin and sees its answer.
func (s streamCase) attach() {
	t := s.t
	cmd := s.cmd("attach", "-i", "talker")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	want := "got:hello-" + s.name
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), want) {
		// Again until answered: a line sent before the attach was set up
		// reaches the container, but its answer may precede the attach.
		fmt.Fprintf(stdin, "hello-%s\n", s.name)
		if time.Now().After(deadline) {
			t.Fatalf("attach: no %q in %q", want, out.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// runInteractive pipes input to a new pod, as `kubectl run -i --rm` does:
// the pod has stdin and stdinOnce, so the end of the piped input is the
// container's, and the pod is deleted after it exits.
func (s streamCase) runInteractive() {
	t := s.t
	name := "once-" + s.name
	out := s.mustRun("piped line\n", "run", "-i", "--rm", name, "--image=busybox", "--restart=Never",
		"--command", "--", "sh", "-c", "cat; echo input-ended")
	mustContain(t, "run -i --rm", out, "piped line\n", "input-ended", `pod "`+name+`" deleted`)
}

// portForward forwards a local port to the pod's HTTP server and GETs a
// file through it.
func (s streamCase) portForward(podPort int) {
	t := s.t
	cmd := s.cmd("-v=6", "port-forward", "pod/web", fmt.Sprintf(":%d", podPort))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)
	var local string
	eventually(t, 15*time.Second, func() string {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			local = m[1]
			return ""
		}
		return "port-forward not ready: " + out.String()
	})
	s.usedProtocol("portforward", out.String())
	for i := range 2 { // two connections over one forwarding session
		resp, err := http.Get("http://127.0.0.1:" + local + "/served.txt")
		if err != nil {
			t.Fatalf("GET %d through port-forward: %v\n%s", i, err, out.String())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "served through port-forward" {
			t.Fatalf("GET %d through port-forward: %s %q", i, resp.Status, body)
		}
	}
}
