package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/scheduler"
	"github.com/skiff-sh/skiff/internal/server"
)

// SchedulerOptions configure `skiff bench scheduler`.
type SchedulerOptions struct {
	// Kubeconfig empty: start a server and run this package's scheduler
	// against it. Otherwise measure whatever schedules pods on that cluster.
	Kubeconfig string
	Nodes      int
	Pods       int
	JSON       bool
	// Writers is how many clients create pods at once; 0 means 32.
	Writers int
}

// SchedulerResult is what `skiff bench scheduler --json` prints.
type SchedulerResult struct {
	Nodes   int `json:"nodes"`
	Pods    int `json:"pods"`
	Writers int `json:"writers"`
	// PodsPerS is pods bound per second, from the first create until the last binding is seen.
	PodsPerS float64 `json:"pods_per_s"`
	// CreatesPerS is how fast the pods were created, the ceiling for PodsPerS.
	CreatesPerS float64 `json:"creates_per_s"`
	DurationS   float64 `json:"duration_s"`
	// BindP50Ms and BindP99Ms are from sending a pod's create to seeing it bound.
	BindP50Ms float64 `json:"bind_p50_ms"`
	BindP99Ms float64 `json:"bind_p99_ms"`
}

// RunScheduler measures pod scheduling throughput: it creates o.Nodes Node
// objects (no agents: Ready, 32 cpu, 128Gi, 110 pods each, so everything
// fits), then o.Pods pods of 100m cpu from concurrent writers, and times
// from the first create until every pod is seen bound.
func RunScheduler(ctx context.Context, o SchedulerOptions, out io.Writer) (*SchedulerResult, error) {
	if o.Nodes <= 0 || o.Pods <= 0 {
		return nil, fmt.Errorf("--nodes and --pods must be positive")
	}
	if o.Writers <= 0 {
		o.Writers = 32
	}
	ownScheduler := o.Kubeconfig == ""
	if ownScheduler {
		dir, err := os.MkdirTemp("", "skiff-bench")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		sctx, cancel := context.WithCancel(ctx)
		// Without the server's own scheduler, the one started below is the only one.
		r, err := server.Start(sctx, server.Options{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0, DisableControllers: true})
		if err != nil {
			cancel()
			return nil, err
		}
		defer func() { cancel(); _ = r.Wait() }()
		o.Kubeconfig = r.Kubeconfig
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling: measure the scheduler and server
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	run := fmt.Sprintf("bench-%d", time.Now().UnixNano()%100000)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: run}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	if !ownScheduler {
		// Someone else's cluster: leave it as found (best effort).
		defer func() {
			bg := context.Background()
			_ = client.CoreV1().Namespaces().Delete(bg, run, metav1.DeleteOptions{})
			_ = client.CoreV1().Nodes().DeleteCollection(bg, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "skiff.sh/bench=" + run})
		}()
	}

	if err := parallel(ctx, o.Nodes, o.Writers, func(i int) error {
		_, err := client.CoreV1().Nodes().Create(ctx, benchNode(run, i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create nodes: %w", err)
	}

	bctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	if ownScheduler {
		factory := informers.NewSharedInformerFactory(client, 0)
		s := scheduler.New(client, factory)
		factory.Start(bctx.Done())
		wg.Go(func() {
			s.Run(bctx)
			factory.Shutdown()
		})
		// Start timing once the scheduler knows every node.
		syncCtx, syncCancel := context.WithTimeout(bctx, time.Minute)
		defer syncCancel()
		for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
			if !ok {
				return nil, fmt.Errorf("scheduler's %v informer did not sync", typ)
			}
		}
	}

	// Watch the run's pods and note when each is first seen bound.
	created := make([]time.Time, o.Pods)
	bound := make([]time.Time, o.Pods)
	var nBound atomic.Int64
	allBound := make(chan struct{})
	podIndex := func(p *corev1.Pod) int {
		var i int
		if _, err := fmt.Sscanf(p.Name, "pod-%d", &i); err != nil || i < 0 || i >= o.Pods {
			return -1
		}
		return i
	}
	watchFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(run))
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		// Handlers run one at a time, so bound needs no lock.
		if i := podIndex(p); i >= 0 && bound[i].IsZero() {
			bound[i] = time.Now()
			if nBound.Add(1) == int64(o.Pods) {
				close(allBound)
			}
		}
	}
	if _, err := watchFactory.Core().V1().Pods().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, obj any) { onPod(obj) },
	}); err != nil {
		return nil, err
	}
	watchFactory.Start(bctx.Done())
	// Shutdown waits for the informers, so they must be told to stop first.
	defer func() { stop(); watchFactory.Shutdown() }()
	watchCtx, watchCancel := context.WithTimeout(bctx, time.Minute)
	defer watchCancel()
	for typ, ok := range watchFactory.WaitForCacheSync(watchCtx.Done()) {
		if !ok {
			return nil, fmt.Errorf("the benchmark's %v informer did not sync", typ)
		}
	}

	start := time.Now()
	if err := parallel(ctx, o.Pods, o.Writers, func(i int) error {
		created[i] = time.Now()
		_, err := client.CoreV1().Pods(run).Create(ctx, benchPod(i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create pods: %w", err)
	}
	createDur := time.Since(start)

	// Generous: a scheduler at a tenth of the target still finishes.
	timeout := time.Minute + time.Duration(o.Pods)*10*time.Millisecond
	select {
	case <-allBound:
	case <-time.After(timeout):
		return nil, fmt.Errorf("%d of %d pods bound after %s", nBound.Load(), o.Pods, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var last time.Time
	lat := make([]time.Duration, o.Pods)
	for i := range bound {
		if bound[i].After(last) {
			last = bound[i]
		}
		lat[i] = max(bound[i].Sub(created[i]), 0)
	}
	dur := last.Sub(start)
	res := &SchedulerResult{
		Nodes: o.Nodes, Pods: o.Pods, Writers: o.Writers,
		PodsPerS:    float64(o.Pods) / dur.Seconds(),
		CreatesPerS: float64(o.Pods) / createDur.Seconds(),
		DurationS:   dur.Seconds(),
		BindP50Ms:   percentile(lat, 0.50),
		BindP99Ms:   percentile(lat, 0.99),
	}
	if o.JSON {
		return res, json.NewEncoder(out).Encode(res)
	}
	fmt.Fprintf(out, "%-16s %12s\n", "METRIC", "VALUE")
	for _, row := range []struct {
		k string
		v float64
	}{
		{"nodes", float64(res.Nodes)}, {"pods", float64(res.Pods)}, {"writers", float64(res.Writers)},
		{"pods_per_s", res.PodsPerS}, {"creates_per_s", res.CreatesPerS}, {"duration_s", res.DurationS},
		{"bind_p50_ms", res.BindP50Ms}, {"bind_p99_ms", res.BindP99Ms},
	} {
		fmt.Fprintf(out, "%-16s %12.2f\n", row.k, row.v)
	}
	return res, nil
}

// parallel runs f(0..n-1) on the given number of goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	return ctx.Err()
}

func benchNode(run string, i int) *corev1.Node {
	name := fmt.Sprintf("%s-node-%05d", run, i)
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "skiff.sh/bench": run}},
		Status: corev1.NodeStatus{
			Capacity: alloc, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: now, LastTransitionTime: now,
			}},
		},
	}
}

func benchPod(i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%06d", i)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		}}},
	}
}
