// Package e2e builds the skiff binary and drives it with kubectl: the
// embedded one (`skiff kubectl`) and the kubectl on PATH when there is one.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var skiffBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skiff-e2e")
	if err != nil {
		panic(err)
	}
	skiffBin = filepath.Join(dir, "skiff")
	// Both binaries, side by side, as `go install ./cmd/...` puts them.
	build := exec.Command("go", "build", "-o", dir, "./cmd/skiff", "./cmd/skiff-shim")
	build.Dir = "../.."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build skiff:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a running `skiff server` process.
type cluster struct {
	dataDir    string
	kubeconfig string
	cmd        *exec.Cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts skiff server and waits for its ready line.
func startServer(t *testing.T, extra ...string) *cluster {
	t.Helper()
	return startServerIn(t, "", t.TempDir(), extra...)
}

// startServerIn starts skiff server in the working directory cwd ("": the
// test's) with --data-dir dataDir, which may be relative to cwd.
func startServerIn(t *testing.T, cwd, dataDir string, extra ...string) *cluster {
	t.Helper()
	dir := dataDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dataDir)
	}
	c := &cluster{dataDir: dir, kubeconfig: filepath.Join(dir, "kubeconfig.yaml")}
	args := append([]string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(freePort(t))}, extra...)
	// The server runs an agent; its containers outlive it by design, so every
	// test resets the agent's root dir after stopping the server (cleanups run
	// last-registered first).
	root := filepath.Join(dir, "agent")
	for i, a := range extra {
		if a == "--root-dir" && i+1 < len(extra) {
			root = extra[i+1]
		}
	}
	t.Cleanup(func() { reset(t, root) })
	c.cmd = exec.Command(skiffBin, args...)
	c.cmd.Dir = cwd
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.cmd.Stderr = &stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "kubeconfig:") {
				ready <- sc.Text()
			}
		}
	}()
	select {
	case line := <-ready:
		if !strings.Contains(line, c.kubeconfig) {
			t.Fatalf("ready line %q does not name %s", line, c.kubeconfig)
		}
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		t.Fatalf("server not ready in 30s; stderr: %s", stderr.String())
	}
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *cluster) stop(t *testing.T) {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("server exited after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		t.Errorf("server did not stop within 20s of SIGTERM")
	}
}

// kubectl is one way of running kubectl.
type kubectl struct {
	name     string
	argv     []string
	cacheDir string
}

func kubectls(t *testing.T) []kubectl {
	ks := []kubectl{{name: "embedded", argv: []string{skiffBin, "kubectl"}}}
	if p, err := exec.LookPath("kubectl"); err == nil {
		ks = append(ks, kubectl{name: "installed", argv: []string{p}})
	} else {
		t.Log("no kubectl on PATH: testing the embedded one only")
	}
	return ks
}

func (k kubectl) cmd(c *cluster, args ...string) *exec.Cmd {
	all := append([]string{}, k.argv[1:]...)
	if k.cacheDir != "" {
		// Before the arguments: anything after a "--" belongs to the command run.
		all = append(all, "--cache-dir", k.cacheDir)
	}
	all = append(all, args...)
	cmd := exec.Command(k.argv[0], all...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	return cmd
}

// run runs kubectl and fails the test on error.
func (k kubectl) run(t *testing.T, c *cluster, args ...string) string {
	t.Helper()
	out, err := k.try(c, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runIn runs kubectl with stdin.
func (k kubectl) runIn(t *testing.T, c *cluster, stdin string, args ...string) string {
	t.Helper()
	cmd := k.cmd(c, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (k kubectl) try(c *cluster, args ...string) (string, error) {
	out, err := k.cmd(c, args...).CombinedOutput()
	return string(out), err
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: output lacks %q:\n%s", what, w, got)
		}
	}
}

// eventually polls f until it returns "" or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonField(t *testing.T, doc string, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("parse json: %v\n%s", err, doc)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
