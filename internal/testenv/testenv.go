// Package testenv starts a real skiff server for tests: embedded etcd in a
// temp dir, the API on a random loopback port, and client-go clients with
// client-go's default settings (protobuf, WatchList informers).
package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/server"
)

// Env is a running server and clients for it.
type Env struct {
	Server     *server.Running
	DataDir    string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface

	stopOnce sync.Once
	stop     func()
}

// Stop stops the server (and waits for it); cleanup calls it too.
func (e *Env) Stop() { e.stopOnce.Do(e.stop) }

// Option changes the server's options.
type Option func(*server.Options)

// Start starts a server that stops when the test ends.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	dir := t.TempDir()
	o := server.Options{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := server.Start(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	env := &Env{Server: r, DataDir: dir}
	env.stop = func() {
		cancel()
		done := make(chan struct{})
		go func() { _ = r.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s")
		}
	}
	t.Cleanup(env.Stop)
	cfg, err := clientcmd.BuildConfigFromFlags("", r.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	env.Kubeconfig, env.Config, env.Client = r.Kubeconfig, cfg, cs
	return env
}

// Run starts factory's informers and runs each of runs (a controller's Run)
// until the test ends; cleanup stops them before the server.
func (e *Env) Run(t testing.TB, factory informers.SharedInformerFactory, runs ...func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
}

// Eventually polls cond every 20ms until it returns true or the deadline passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
