// Package controllermanager runs the scheduler and the controllers in one
// process, sharing one informer factory, as ordinary API clients.
package controllermanager

import (
	"context"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/controller/deployment"
	"github.com/skiff-sh/skiff/internal/controller/job"
	"github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/scheduler"
)

// Start runs the scheduler and controllers until ctx ends; wg tracks them.
func Start(ctx context.Context, cfg *rest.Config, wg *sync.WaitGroup) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nsc := namespace.NewController(client, dyn, factory.Core().V1().Namespaces())
	sched := scheduler.New(client, factory)
	rsc := replicaset.NewController(client, factory)
	jc := job.NewController(client, factory)
	dc := deployment.NewController(client, factory)
	factory.Start(ctx.Done())
	run := []func(){
		func() { nsc.Run(ctx, 2) },
		func() { sched.Run(ctx) },
		func() { rsc.Run(ctx, 5) },
		func() { jc.Run(ctx, 5) },
		func() { dc.Run(ctx, 5) },
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var all sync.WaitGroup
		for _, f := range run {
			all.Go(f)
		}
		all.Wait()
		factory.Shutdown()
	}()
	return nil
}
