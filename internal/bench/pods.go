package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// PodsOptions configure `skiff bench pods`.
type PodsOptions struct {
	Pods int
	// Idle is how long to measure the agent's CPU once every pod runs (0: not at all).
	Idle time.Duration
	JSON bool
}

// PodsResult is what `skiff bench pods --json` prints.
type PodsResult struct {
	Pods         int     `json:"pods"`
	StartupP50Ms float64 `json:"startup_p50_ms"`
	StartupP99Ms float64 `json:"startup_p99_ms"`
	// ScheduledP50Ms and ScheduledP99Ms: from create until a watch sees the pod bound.
	ScheduledP50Ms float64 `json:"scheduled_p50_ms"`
	ScheduledP99Ms float64 `json:"scheduled_p99_ms"`
	AgentRSSMB     float64 `json:"agent_rss_mb"`
	// ShimsAnonMB is the private memory of the pods' shims, one per container.
	ShimsAnonMB float64 `json:"shims_anon_mb"`
	// AgentIdleMillicores is the agent's CPU per second with the pods running
	// and nothing changing (its relist, syncs, lease and status).
	AgentIdleMillicores float64 `json:"agent_idle_millicores,omitempty"`
}

// procMB reads a field such as VmRSS or RssAnon of /proc/<pid>/status in MB.
func procMB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// RunPods starts `skiff server` and a separate `skiff agent` process, creates
// o.Pods pods at once and measures each one's time from its create request
// until a watch sees it Running.
func RunPods(ctx context.Context, o PodsOptions, out io.Writer) (*PodsResult, error) {
	c, err := startCluster(ctx, false)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	client, root := c.client, filepath.Join(c.dir, "agent")

	w, err := client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	var wg sync.WaitGroup
	errs := make(chan error, o.Pods)
	for i := 0; i < o.Pods; i++ {
		name := fmt.Sprintf("bench-%03d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			mu.Lock()
			created[name] = t0
			mu.Unlock()
			_, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64),
					Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}}},
			}, metav1.CreateOptions{})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	var startup, scheduled []time.Duration
	seen, bound := map[string]bool{}, map[string]bool{}
	timeout := time.After(5 * time.Minute)
	for len(seen) < o.Pods {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, fmt.Errorf("watch closed")
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted {
				continue
			}
			if pod.Spec.NodeName != "" && !bound[pod.Name] {
				bound[pod.Name] = true
				mu.Lock()
				scheduled = append(scheduled, time.Since(created[pod.Name]))
				mu.Unlock()
			}
			if pod.Status.Phase != corev1.PodRunning || seen[pod.Name] {
				continue
			}
			seen[pod.Name] = true
			mu.Lock()
			startup = append(startup, time.Since(created[pod.Name]))
			mu.Unlock()
		case <-timeout:
			return nil, fmt.Errorf("%d of %d pods Running after 5 minutes", len(seen), o.Pods)
		}
	}
	res := &PodsResult{Pods: o.Pods, StartupP50Ms: percentile(startup, 0.5), StartupP99Ms: percentile(startup, 0.99),
		ScheduledP50Ms: percentile(scheduled, 0.5), ScheduledP99Ms: percentile(scheduled, 0.99),
		AgentRSSMB: procMB(c.agent.Process.Pid, "VmRSS")}
	if pids, err := exec.Command("pgrep", "-f", "shim start "+root).Output(); err == nil {
		for _, p := range strings.Fields(string(pids)) {
			pid, _ := strconv.Atoi(p)
			res.ShimsAnonMB += procMB(pid, "RssAnon")
		}
	}
	if o.Idle > 0 {
		if res.AgentIdleMillicores, err = millicores(ctx, c.agent.Process.Pid, o.Idle); err != nil {
			return nil, err
		}
	}
	if o.JSON {
		return res, json.NewEncoder(out).Encode(res)
	}
	fmt.Fprintf(out, "%-22s %10s\n%-22s %10d\n", "METRIC", "VALUE", "pods", res.Pods)
	for _, row := range []struct {
		k string
		v float64
	}{
		{"startup_p50_ms", res.StartupP50Ms}, {"startup_p99_ms", res.StartupP99Ms},
		{"scheduled_p50_ms", res.ScheduledP50Ms}, {"scheduled_p99_ms", res.ScheduledP99Ms},
		{"agent_rss_mb", res.AgentRSSMB}, {"shims_anon_mb", res.ShimsAnonMB}, {"agent_idle_millicores", res.AgentIdleMillicores},
	} {
		fmt.Fprintf(out, "%-22s %10.1f\n", row.k, row.v)
	}
	return res, nil
}
