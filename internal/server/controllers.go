package server

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/certs"
	"github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/scheduler"
)

// loopbackConfig is how in-process components reach the API: as ordinary
// clients over HTTPS with a certificate of their own.
func loopbackConfig(pki *certs.PKI, url, user string) (*rest.Config, error) {
	return loopbackConfigFor(pki, url, user, []string{"system:masters"})
}

func loopbackConfigFor(pki *certs.PKI, url, user string, groups []string) (*rest.Config, error) {
	cert, key, err := pki.IssueClient(user, groups, 0)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate: %w", user, err)
	}
	return &rest.Config{
		Host:            url,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.CAPEM, CertData: cert, KeyData: key},
		// In-process clients cost no network: limit them only against runaway loops.
		QPS:       2000,
		Burst:     4000,
		UserAgent: user,
	}, nil
}

// startControllers runs the controllers until ctx ends; wg tracks them.
func startControllers(ctx context.Context, cfg *rest.Config, wg *sync.WaitGroup) error {
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
	factory.Start(ctx.Done())
	wg.Add(1)
	go func() {
		defer wg.Done()
		var loops sync.WaitGroup
		loops.Add(3)
		go func() { defer loops.Done(); nsc.Run(ctx, 2) }()
		go func() { defer loops.Done(); sched.Run(ctx) }()
		go func() { defer loops.Done(); rsc.Run(ctx, 5) }()
		loops.Wait()
		factory.Shutdown()
	}()
	return nil
}
