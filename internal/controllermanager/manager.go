// Package controllermanager runs the scheduler and the controllers in one
// process, as ordinary API clients. Each of the two runs under leader
// election on its own Lease in kube-system ("kube-scheduler",
// "kube-controller-manager"), so of several servers sharing one etcd exactly
// one schedules and one reconciles; a standby takes over within
// leaseDuration+retryPeriod of the leader's death, at once on a clean stop.
package controllermanager

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/skiff-sh/skiff/internal/controller/cronjob"
	"github.com/skiff-sh/skiff/internal/controller/deployment"
	"github.com/skiff-sh/skiff/internal/controller/endpoints"
	"github.com/skiff-sh/skiff/internal/controller/endpointslice"
	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	"github.com/skiff-sh/skiff/internal/controller/job"
	"github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-sh/skiff/internal/controller/podgc"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/controller/serviceaccount"
	"github.com/skiff-sh/skiff/internal/quietlog"
	"github.com/skiff-sh/skiff/internal/scheduler"
)

// Lease timings: shorter than upstream's 15/10/2 s so that a standby takes
// over within 15 s of the leader's death (10 s lease + 2 s retry).
const (
	leaseDuration = 10 * time.Second
	renewDeadline = 7 * time.Second
	retryPeriod   = 2 * time.Second
	// healthTimeout is how long past its lease's expiry a leader that could
	// not renew still counts as healthy (upstream's 20 s).
	healthTimeout = 20 * time.Second
)

// Options tune the controllers; the zero value is upstream's defaults.
type Options struct {
	// NodeMonitorGracePeriod is how long a node may go without renewing its
	// Lease or posting status before it is marked Unknown (0: 50s).
	NodeMonitorGracePeriod time.Duration
}

// Start runs the scheduler and controllers with default Options.
func Start(ctx context.Context, cfg *rest.Config, wg *sync.WaitGroup) (map[string]func() error, error) {
	return Options{}.Start(ctx, cfg, wg)
}

// Start runs the scheduler and controllers until ctx ends; wg tracks them.
// It returns health checks for the server's /readyz and /healthz: a leader
// that has failed to renew its lease is unhealthy.
func (o Options) Start(ctx context.Context, cfg *rest.Config, wg *sync.WaitGroup) (map[string]func() error, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	id := identity(cfg)
	schedHealth := leaderelection.NewLeaderHealthzAdaptor(healthTimeout)
	cmHealth := leaderelection.NewLeaderHealthzAdaptor(healthTimeout)
	wg.Go(func() {
		lead(ctx, client, "kube-scheduler", id, schedHealth, func(ctx context.Context) {
			factory := informers.NewSharedInformerFactory(client, 0)
			sched := scheduler.New(client, factory)
			factory.Start(ctx.Done())
			sched.Run(ctx)
			factory.Shutdown()
		})
	})
	wg.Go(func() {
		lead(ctx, client, "kube-controller-manager", id, cmHealth, func(ctx context.Context) {
			o.runControllers(ctx, cfg, client, dyn)
		})
	})
	return map[string]func() error{"leaderElection": func() error {
		if err := schedHealth.Check(nil); err != nil {
			return fmt.Errorf("kube-scheduler: %w", err)
		}
		if err := cmHealth.Check(nil); err != nil {
			return fmt.Errorf("kube-controller-manager: %w", err)
		}
		return nil
	}}, nil
}

// runControllers runs every controller on one informer factory until ctx ends.
func (o Options) runControllers(ctx context.Context, cfg *rest.Config, client kubernetes.Interface, dyn dynamic.Interface) {
	factory := informers.NewSharedInformerFactory(client, 0)
	nsc := namespace.NewController(client, dyn, factory.Core().V1().Namespaces())
	rsc := replicaset.NewController(client, factory)
	jc := job.NewController(client, factory)
	cjc := cronjob.NewController(client, factory)
	dc := deployment.NewController(client, factory)
	epc := endpoints.NewController(client, factory)
	pgc := podgc.NewController(client, factory, 0)
	esc := endpointslice.NewController(client, factory)
	nlc := nodelifecycle.NewController(client, factory.Core().V1().Nodes(), factory.Coordination().V1().Leases(), factory.Core().V1().Pods(), o.NodeMonitorGracePeriod)
	tec := nodelifecycle.NewTaintEviction(client, factory.Core().V1().Nodes(), factory.Core().V1().Pods())
	sac := serviceaccount.NewController(client, factory.Core().V1().Namespaces(), factory.Core().V1().ServiceAccounts())
	// cfg already made a clientset, so a metadata client from it cannot fail.
	gcc := garbagecollector.NewController(metadata.NewForConfigOrDie(cfg), client.Discovery())
	factory.Start(ctx.Done())
	run := []func(){
		func() { gcc.Run(ctx, 5) },
		func() { nsc.Run(ctx, 2) },
		func() { rsc.Run(ctx, 5) },
		func() { jc.Run(ctx, 5) },
		func() { cjc.Run(ctx, 5) },
		func() { dc.Run(ctx, 5) },
		func() { epc.Run(ctx, 5) },
		func() { pgc.Run(ctx) },
		func() { esc.Run(ctx, 5) },
		func() { nlc.Run(ctx, 2) },
		func() { tec.Run(ctx, 4) },
		func() { sac.Run(ctx, 2) },
	}
	var all sync.WaitGroup
	for _, f := range run {
		all.Go(f)
	}
	all.Wait()
	factory.Shutdown()
}

// lead runs work whenever this process holds the named lease, until ctx
// ends. Losing the lease cancels work; the process then stands by again.
func lead(ctx context.Context, client kubernetes.Interface, name, id string, health *leaderelection.HealthzAdaptor, work func(context.Context)) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "kube-system", Name: name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	// A clean stop cancels ctx under a renewal, which client-go would log as
	// an error: the elector logs quietly, the work with ctx's own logger.
	logger := klog.FromContext(ctx)
	electorCtx := quietlog.Context(ctx)
	// working is held while work runs (client-go calls OnStartedLeading in
	// its own goroutine), so a new term never overlaps the last one's work.
	var working sync.Mutex
	for ctx.Err() == nil {
		leaderelection.RunOrDie(electorCtx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   leaseDuration,
			RenewDeadline:   renewDeadline,
			RetryPeriod:     retryPeriod,
			ReleaseOnCancel: true,
			Name:            name,
			WatchDog:        health,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					slog.Info("became leader", "lease", name, "identity", id)
					working.Lock()
					defer working.Unlock()
					work(klog.NewContext(ctx, logger))
				},
				OnStoppedLeading: func() {},
			},
		})
		// RunOrDie returns once leadership is lost (work's context is then
		// cancelled); wait for work to stop before standing by again.
		working.Lock()
		working.Unlock() //nolint:staticcheck // an empty critical section is the wait
	}
}

// identity names this process in leases: the host and the API server's port,
// stable across restarts (a restarted server takes its lease back at once)
// and distinct for several servers on one host.
func identity(cfg *rest.Config) string {
	host, _ := os.Hostname()
	if u, err := url.Parse(cfg.Host); err == nil && u.Port() != "" {
		return host + "_" + u.Port()
	}
	return host
}
