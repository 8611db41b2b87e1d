// Package agent is skiff's node agent (its kubelet): it registers the node,
// renews its lease, runs the pods bound to it through a CRI runtime, reports
// their status and serves their logs on the kubelet port.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	criapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options configure an agent.
type Options struct {
	Config      *rest.Config
	NodeName    string
	RootDir     string
	KubeletPort int
	NodeLabels  map[string]string
	Taints      []corev1.Taint
	Runtime     criapi.RuntimeService
	Images      criapi.ImageManagerService
	// ClientCAPEM verifies client certificates on the kubelet port: only the
	// API server, holding a certificate from the cluster CA, may connect.
	ClientCAPEM []byte
	// NodeIP overrides the detected node address.
	NodeIP string
	// MaxPods is the node's pods capacity (0: DefaultMaxPods).
	MaxPods int
}

// DefaultMaxPods is the kubelet's default --max-pods.
const DefaultMaxPods = 110

// Agent runs the pods of one node.
type Agent struct {
	opts     Options
	client   kubernetes.Interface
	rt       criapi.RuntimeService
	images   criapi.ImageManagerService
	ip       string
	nodeUID  types.UID
	lease    *coordinationv1.Lease // as last written, renewed without a read (heartbeat goroutine only)
	log      *slog.Logger
	recorder record.EventRecorder
	pods     corelisters.PodLister

	probes  *prober
	metrics *agentMetrics

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
}

// New checks the options and builds an agent.
func New(opts Options) (*Agent, error) {
	if opts.NodeName == "" {
		return nil, fmt.Errorf("agent: no node name")
	}
	if opts.Runtime == nil || opts.Images == nil {
		return nil, fmt.Errorf("agent: no runtime")
	}
	// Absolute: the shims run in / and write the containers' logs under it.
	root, err := filepath.Abs(opts.RootDir)
	if err != nil {
		return nil, fmt.Errorf("agent root dir: %w", err)
	}
	opts.RootDir = root
	if err := os.MkdirAll(opts.RootDir, 0o700); err != nil {
		return nil, fmt.Errorf("create agent root dir: %w", err)
	}
	client, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	ip := opts.NodeIP
	if ip == "" {
		ip = nodeIP()
	}
	a := &Agent{
		opts: opts, client: client, rt: opts.Runtime, images: opts.Images, ip: ip,
		log:     slog.Default().With("node", opts.NodeName),
		workers: map[types.UID]*podWorker{},
	}
	a.probes = newProber(a)
	a.metrics = newAgentMetrics(a)
	a.rt = instrumentedRuntime{RuntimeService: a.rt, m: a.metrics}
	return a, nil
}

// Run registers the node and runs its pods until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	// Listen first: with port 0 the node must advertise the port it got.
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(a.opts.KubeletPort)))
	if err != nil {
		return fmt.Errorf("kubelet port %d: %w", a.opts.KubeletPort, err)
	}
	a.opts.KubeletPort = l.Addr().(*net.TCPAddr).Port
	// Events first: registering the node records some.
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: a.opts.NodeName})
	for {
		err := a.register(ctx)
		if err == nil {
			break
		}
		a.log.Warn("register node; retrying", "err", err)
		select {
		case <-ctx.Done():
			l.Close()
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}

	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + a.opts.NodeName
	}))
	podInformer := factory.Core().V1().Pods()
	a.pods = podInformer.Lister()
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.dispatch(ctx, obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { a.dispatch(ctx, obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				a.gone(pod.UID)
			}
		},
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		l.Close()
		return ctx.Err()
	}

	srv, err := a.startServer(ctx, l)
	if err != nil {
		return err
	}
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.heartbeat(ctx) }()
	go func() { defer a.wg.Done(); a.relist(ctx) }()
	<-ctx.Done()
	srv.Close()
	a.wg.Wait()
	return nil
}

// dispatch hands the latest pod to its worker, starting one if needed.
func (a *Agent) dispatch(ctx context.Context, pod *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.workers[pod.UID]
	if !ok {
		a.metrics.seen(pod.UID)
		w = newPodWorker(a, pod)
		a.workers[pod.UID] = w
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.run(ctx)
			a.mu.Lock()
			delete(a.workers, pod.UID)
			a.metrics.forget(pod.UID)
			a.mu.Unlock()
		}()
		return
	}
	w.update(pod)
}

// gone tells a pod's worker that the pod object no longer exists.
func (a *Agent) gone(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w, ok := a.workers[uid]; ok {
		w.update(nil)
	}
}

// relist polls the runtime for container state changes (the kubelet's PLEG)
// and cleans up sandboxes whose pods are gone.
func (a *Agent) relist(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	seen := map[string]runtimeapi.ContainerState{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cs, err := a.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{})
		if err != nil {
			continue
		}
		next := make(map[string]runtimeapi.ContainerState, len(cs))
		for _, c := range cs {
			next[c.Id] = c.State
			if prev, ok := seen[c.Id]; !ok || prev != c.State {
				a.poke(types.UID(c.Labels[labelPodUID]))
			}
		}
		seen = next
		a.collectOrphans(ctx)
	}
}

func (a *Agent) poke(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w, ok := a.workers[uid]; ok {
		w.wake()
	}
}

// collectOrphans removes sandboxes of pods that no longer exist and have no worker
// (deleted while the agent was down).
func (a *Agent) collectOrphans(ctx context.Context) {
	sbs, err := a.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		return
	}
	for _, sb := range sbs {
		uid := types.UID(sb.Labels[labelPodUID])
		a.mu.Lock()
		_, tracked := a.workers[uid]
		a.mu.Unlock()
		if tracked {
			continue
		}
		if sb.Metadata != nil {
			if p, err := a.pods.Pods(sb.Metadata.Namespace).Get(sb.Metadata.Name); err == nil && p.UID == uid {
				continue
			}
		}
		a.log.Info("removing sandbox of a deleted pod", "sandbox", sb.Id, "uid", uid)
		_ = a.rt.StopPodSandbox(ctx, sb.Id)
		_ = a.rt.RemovePodSandbox(ctx, sb.Id)
		_ = os.RemoveAll(a.podDir(uid))
	}
}

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.opts.RootDir, "pods", string(uid))
}
