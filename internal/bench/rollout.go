package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
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
