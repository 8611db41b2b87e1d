package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// RolloutOptions configure `skiff bench rollout`.
type RolloutOptions struct {
	Replicas int
	JSON     bool
}

// RolloutResult is what `skiff bench rollout --json` prints.
type RolloutResult struct {
	Replicas int     `json:"replicas"`
	CreateS  float64 `json:"create_s"`
	RolloutS float64 `json:"rollout_s"`
	// ServerRSSMB is the peak resident memory (VmHWM) of the `skiff server`
	// process (API server, etcd, scheduler, controllers; its agent disabled).
	ServerRSSMB float64 `json:"server_rss_mb"`
	AgentRSSMB  float64 `json:"agent_rss_mb"`
}

// RunRollout starts `skiff server` and `skiff agent` as processes, creates a
// Deployment of o.Replicas `sleep 3600` pods and times it until all are
// available, then rolls all of them to a new template.
func RunRollout(ctx context.Context, o RolloutOptions, out io.Writer) (*RolloutResult, error) {
	c, err := startCluster(ctx, false, "--max-pods", strconv.Itoa(o.Replicas*2+10))
	if err != nil {
		return nil, err
	}
	defer c.stop()
	ds := c.client.AppsV1().Deployments("default")
	n := int32(o.Replicas)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bench"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bench"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox",
					Command: []string{"sleep", "3600"}, Env: []corev1.EnvVar{{Name: "VERSION", Value: "1"}}}}},
			},
		},
	}
	t0 := time.Now()
	if d, err = ds.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := c.waitRolledOut(ctx, d.Name, o.Replicas); err != nil {
		return nil, err
	}
	res := &RolloutResult{Replicas: o.Replicas, CreateS: time.Since(t0).Seconds()}

	t1 := time.Now()
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"main","env":[{"name":"VERSION","value":"2"}]}]}}}}`)
	if _, err := ds.Patch(ctx, d.Name, "application/strategic-merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		return nil, err
	}
	if err := c.waitRolledOut(ctx, d.Name, o.Replicas); err != nil {
		return nil, err
	}
	res.RolloutS = time.Since(t1).Seconds()
	res.ServerRSSMB = procMB(c.server.Process.Pid, "VmHWM")
	res.AgentRSSMB = procMB(c.agent.Process.Pid, "VmRSS")
	if o.JSON {
		return res, json.NewEncoder(out).Encode(res)
	}
	fmt.Fprintf(out, "%-14s %10s\n%-14s %10d\n%-14s %10.2f\n%-14s %10.2f\n%-14s %10.1f\n%-14s %10.1f\n", "METRIC", "VALUE",
		"replicas", res.Replicas, "create_s", res.CreateS, "rollout_s", res.RolloutS,
		"server_rss_mb", res.ServerRSSMB, "agent_rss_mb", res.AgentRSSMB)
	return res, nil
}

// waitRolledOut watches the Deployment until, as `kubectl rollout status`
// judges it, every replica runs the current template and is available and
// no old pod is left.
func (c *cluster) waitRolledOut(ctx context.Context, name string, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	w, err := c.client.AppsV1().Deployments("default").Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		return err
	}
	defer w.Stop()
	want := int32(replicas)
	for ev := range w.ResultChan() {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			continue
		}
		s := d.Status
		if s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want {
			return nil
		}
	}
	return fmt.Errorf("deployment %s not rolled out: %w", name, context.Cause(ctx))
}

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
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "server")
	args := []string{"server", "--data-dir", data, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port)}
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
	if err := poll(ctx, 30*time.Second, func() bool {
		_, e1 := os.Stat(kubeconfig)
		_, e2 := os.Stat(token)
		return e1 == nil && e2 == nil
	}); err != nil {
		c.stop()
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
	if ownAgent {
		if err := waitNodeReady(ctx, c.client, "bench-node"); err != nil {
			c.stop()
			return nil, err
		}
		c.ready = time.Now()
		return c, nil
	}
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// poll calls cond every 50 ms until it holds or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
