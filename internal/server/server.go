// Package server assembles `skiff server`: PKI, etcd, the API server and its
// listener, from one set of options.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/certs"
	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/registry"
)

// Options are `skiff server`'s settings.
type Options struct {
	DataDir                                          string
	BindAddress                                      string
	SecurePort                                       int // 0 picks a free port
	WriteKubeconfig                                  string
	TLSSANs                                          []string
	EtcdServers                                      []string
	TokenAuthFile                                    string
	ServiceCIDR                                      string
	CompactInterval                                  time.Duration
	MaxRequestsInFlight, MaxMutatingRequestsInFlight int
	// Agent, when set, runs a node agent in this process (Config and
	// ClientCAPEM are filled in; RootDir defaults to <data-dir>/agent).
	Agent *agent.Options
	// Controllers, when set, starts the scheduler and controllers in this
	// process (cmd/skiff passes controllermanager.Start; the server package
	// does not import them, so controller tests can start a server).
	// It returns health checks the API server adds to /readyz and /healthz.
	Controllers func(ctx context.Context, cfg *rest.Config, wg *sync.WaitGroup) (map[string]func() error, error)
	// DisableControllers leaves them out even when Controllers is set.
	DisableControllers bool
	// DefaultNotReadyTolerationSeconds and DefaultUnreachableTolerationSeconds
	// are the tolerations admission gives pods (0 keeps upstream's 300).
	DefaultNotReadyTolerationSeconds, DefaultUnreachableTolerationSeconds int64
	// MetricResolution is how often agents are scraped for metrics.k8s.io (0: 15s).
	MetricResolution time.Duration
	// EventTTL is how long events live after their last update (0: 1 h).
	EventTTL time.Duration
}

// DefaultDataDir is /var/lib/skiff for root, else ~/.skiff.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/skiff"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".skiff"
	}
	return filepath.Join(home, ".skiff")
}

// Running is a started server.
type Running struct {
	URL        string
	Kubeconfig string
	Token      string
	API        *apiserver.Server
	Etcd       *etcd.Backend
	done       chan error
}

// Wait blocks until the server has stopped (its context ended) and etcd is closed.
func (r *Running) Wait() error { return <-r.done }

// NodeUser is who the node join token authenticates as.
var NodeUser = &apiserver.User{Name: "system:node-bootstrap", UID: "skiff-node-token", Groups: []string{"system:nodes", "system:bootstrappers"}}

// stopGrace bounds how long a stopping server waits for its controllers and
// agent before it stops answering.
const stopGrace = 5 * time.Second

// Start brings the server up and returns once it answers; it stops when ctx ends.
func Start(ctx context.Context, o Options) (*Running, error) {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir()
	}
	// Absolute, so the kubeconfig path printed and written is usable from anywhere.
	if abs, err := filepath.Abs(o.DataDir); err == nil {
		o.DataDir = abs
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if o.WriteKubeconfig == "" {
		o.WriteKubeconfig = filepath.Join(o.DataDir, "kubeconfig.yaml")
	}
	if o.BindAddress == "" {
		o.BindAddress = "0.0.0.0"
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = "10.43.0.0/16"
	}
	_, cidr, err := net.ParseCIDR(o.ServiceCIDR)
	if err != nil || cidr.IP.To4() == nil {
		return nil, fmt.Errorf("--service-cluster-ip-range %q: want an IPv4 CIDR", o.ServiceCIDR)
	}
	if ones, _ := cidr.Mask.Size(); ones > 28 {
		return nil, fmt.Errorf("--service-cluster-ip-range %q is too small", o.ServiceCIDR)
	}
	if o.DefaultNotReadyTolerationSeconds > 0 {
		registry.DefaultNotReadyTolerationSeconds = o.DefaultNotReadyTolerationSeconds
	}
	if o.DefaultUnreachableTolerationSeconds > 0 {
		registry.DefaultUnreachableTolerationSeconds = o.DefaultUnreachableTolerationSeconds
	}
	pki, err := certs.Ensure(certs.Options{Dir: filepath.Join(o.DataDir, "tls"), SANs: o.TLSSANs})
	if err != nil {
		return nil, err
	}
	secret, err := certs.EnsureToken(filepath.Join(o.DataDir, "tls", "join-secret"))
	if err != nil {
		return nil, err
	}
	// The join token names the CA's hash, so agents can trust this server.
	token := agent.JoinToken(pki.CAPEM, secret)
	if err := os.WriteFile(filepath.Join(o.DataDir, "token"), []byte(token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write node token: %w", err)
	}
	kcCert, kcKey, err := pki.IssueClient(agent.APIServerClientName, []string{"system:masters"}, 0)
	if err != nil {
		return nil, err
	}
	kubeletClient, err := tls.X509KeyPair(kcCert, kcKey)
	if err != nil {
		return nil, err
	}
	tokens := map[string]*apiserver.User{token: NodeUser}
	if o.TokenAuthFile != "" {
		if err := apiserver.LoadTokenFile(o.TokenAuthFile, tokens); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.SecurePort)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s:%d: %w", o.BindAddress, o.SecurePort, err)
	}
	port := l.Addr().(*net.TCPAddr).Port

	backend, err := etcd.Start(ctx, etcd.Options{Servers: o.EtcdServers, Dir: filepath.Join(o.DataDir, "etcd")})
	if err != nil {
		l.Close()
		return nil, err
	}
	// srvCtx runs the controllers and the agent; the API outlives them by up
	// to stopGrace so that leaders can release their leases on a clean stop
	// (a standby then takes over at once instead of after the lease expires).
	srvCtx, cancel := context.WithCancel(ctx)
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	var controllers sync.WaitGroup
	go func() {
		<-srvCtx.Done()
		stopped := make(chan struct{})
		go func() { controllers.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(stopGrace):
		}
		stopAPI()
	}()
	api, err := apiserver.New(apiCtx, apiserver.Config{
		Etcd: backend.Client, ServingCert: pki.ServingCert, ClientCAs: pki.ClientCAPool(), Tokens: tokens,
		ServiceCIDR: cidr, CompactInterval: o.CompactInterval, KubeletClientCert: &kubeletClient, CAPEM: pki.CAPEM,
		MaxRequestsInFlight: o.MaxRequestsInFlight, MaxMutatingRequestsInFlight: o.MaxMutatingRequestsInFlight,
		MetricResolution: o.MetricResolution, EventTTL: o.EventTTL,
	})
	if err != nil {
		cancel()
		l.Close()
		backend.Close()
		return nil, err
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	if err := pki.WriteKubeconfig(o.WriteKubeconfig, url); err != nil {
		cancel()
		l.Close()
		backend.Close()
		return nil, err
	}
	r := &Running{URL: url, Kubeconfig: o.WriteKubeconfig, Token: token, API: api, Etcd: backend, done: make(chan error, 1)}
	go func() {
		err := api.Serve(apiCtx, l)
		cancel()
		controllers.Wait()
		// Close etcd only after the HTTP server has drained: no acknowledged write is lost.
		backend.Close()
		r.done <- err
	}()
	if o.Controllers != nil && !o.DisableControllers {
		lb, err := loopbackConfig(pki, url, "system:skiff-controller-manager")
		if err == nil {
			var checks map[string]func() error
			checks, err = o.Controllers(srvCtx, lb, &controllers)
			for name, check := range checks {
				api.AddHealthCheck(name, check)
			}
		}
		if err != nil {
			cancel()
			r.Wait()
			return nil, fmt.Errorf("start controllers: %w", err)
		}
	}
	if o.Agent != nil {
		ao := *o.Agent
		if ao.RootDir == "" {
			ao.RootDir = filepath.Join(o.DataDir, "agent")
		}
		ao.ClientCAPEM = pki.CAPEM
		ao.Config, err = loopbackConfigFor(pki, url, "system:node:"+ao.NodeName, []string{"system:nodes"})
		var a *agent.Agent
		if err == nil {
			a, err = agent.New(ao)
		}
		if err != nil {
			cancel()
			r.Wait()
			return nil, fmt.Errorf("start agent: %w", err)
		}
		controllers.Add(1)
		go func() {
			defer controllers.Done()
			if err := a.Run(srvCtx); err != nil && srvCtx.Err() == nil {
				slog.Error("agent stopped", "err", err)
			}
		}()
	}
	return r, nil
}
