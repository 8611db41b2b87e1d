package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	nodeutil "k8s.io/component-helpers/node/util"
)

// cluster is a `skiff server` process and its node: either the server's own
// agent or a `skiff agent` process, so that their memory can be told apart.
type cluster struct {
	dir           string
	server, agent *exec.Cmd
	client        kubernetes.Interface
	started       time.Time // when the server process was started
	ready         time.Time // when its node was first seen Ready
}

// startCluster starts `skiff server` with its own agent (node name
// "bench-node") when ownAgent, else without and a `skiff agent` process.
func startCluster(ctx context.Context, ownAgent bool, agentArgs ...string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "skiff-bench")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "server")
	// Port 0: the server picks a free one and writes it into the kubeconfig.
	args := []string{"server", "--data-dir", data, "--bind-address", "127.0.0.1", "--secure-port", "0"}
	if ownAgent {
		args = append(append(args, "--node-name", "bench-node", "--kubelet-port", "0", "--node-ip", "127.0.0.1"), agentArgs...)
	} else {
		args = append(args, "--disable-agent")
	}
	c.server = exec.Command(self, args...)
	c.server.Stderr = os.Stderr
	c.started = time.Now()
	if err := c.server.Start(); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(data, "kubeconfig.yaml")
	token := filepath.Join(data, "token")
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, e1 := os.Stat(kubeconfig)
		_, e2 := os.Stat(token)
		return e1 == nil && e2 == nil, nil
	}); err != nil {
		c.stop()
		if ctx.Err() == nil {
			err = errors.New("not within 30s") // the poll's deadline passed, not ctx's
		}
		return nil, fmt.Errorf("server did not write its kubeconfig: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		c.stop()
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	if c.client, err = kubernetes.NewForConfig(cfg); err != nil {
		c.stop()
		return nil, err
	}
	if !ownAgent {
		tok, err := os.ReadFile(token)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.agent = exec.Command(self, append([]string{"agent", "--server", cfg.Host, "--token", strings.TrimSpace(string(tok)), "--node-name", "bench-node",
			"--root-dir", filepath.Join(dir, "agent"), "--kubelet-port", "0", "--node-ip", "127.0.0.1"}, agentArgs...)...)
		c.agent.Stderr = os.Stderr
		if err := c.agent.Start(); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := waitNodeReady(ctx, c.client, "bench-node"); err != nil {
		c.stop()
		return nil, err
	}
	c.ready = time.Now()
	return c, nil
}

// stop ends both processes (SIGTERM, so SKIFF_CPUPROFILE profiles are
// written), kills what the agent started and removes the state.
func (c *cluster) stop() {
	self, _ := os.Executable()
	for _, p := range []*exec.Cmd{c.agent, c.server} {
		if p == nil || p.Process == nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	for _, root := range []string{filepath.Join(c.dir, "agent"), filepath.Join(c.dir, "server", "agent")} {
		_ = exec.Command(self, "reset", "--root-dir", root).Run()
	}
	_ = os.RemoveAll(c.dir)
}

// waitNodeReady waits for the node's Ready condition to be True.
func waitNodeReady(ctx context.Context, client kubernetes.Interface, name string) error {
	var last error // why the node was not read, for the timeout's message
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if last = err; err != nil {
			return false, nil // not registered yet
		}
		_, c := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady)
		return c != nil && c.Status == corev1.ConditionTrue, nil
	})
	if err != nil && ctx.Err() == nil { // the poll's deadline passed, not ctx's
		if last != nil {
			return fmt.Errorf("node %s not Ready within 60s: %w", name, last)
		}
		return fmt.Errorf("node %s not Ready within 60s", name)
	}
	return err
}
