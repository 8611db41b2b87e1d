// Package apiserver serves the Kubernetes API over HTTPS: routing, discovery,
// the generic REST handler over internal/storage, watch, patch, tables and
// authentication/authorization.
package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiff-sh/skiff/internal/openapi"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/storage"
)

// KubernetesVersion is the Kubernetes API version skiff serves (that of its k8s.io/api module).
var KubernetesVersion = version.Info{
	Major: "1", Minor: "37", GitVersion: "v1.37.2+skiff", GitCommit: "", GitTreeState: "clean",
	BuildDate: "2026-11-26T00:00:00Z", GoVersion: "go1.26", Compiler: "gc", Platform: "linux/amd64",
}

// Config configures a Server.
type Config struct {
	Etcd        *clientv3.Client
	ServingCert tls.Certificate
	ClientCAs   *x509.CertPool
	// Tokens maps bearer tokens to users (--token-auth-file and the node token).
	Tokens     map[string]*User
	Authorizer Authorizer
	// ServiceCIDR is where Service cluster IPs come from.
	ServiceCIDR *net.IPNet
	// MaxRequestsInFlight and MaxMutatingRequestsInFlight bound concurrent non-long-running requests.
	MaxRequestsInFlight, MaxMutatingRequestsInFlight int
	// CompactInterval is how often old etcd revisions are compacted (0 disables).
	CompactInterval time.Duration
	// KubeletClientCert is presented to agents' kubelet ports (logs, exec).
	KubeletClientCert *tls.Certificate
	// CAPEM is served at /cacerts so joining agents can check it against their token.
	CAPEM []byte
	// EventTTL is how long events live after their last update (0: DefaultEventTTL).
	EventTTL time.Duration
	// MetricResolution is how often agents are scraped for metrics.k8s.io (0: DefaultMetricResolution).
	MetricResolution time.Duration
}

// DefaultEventTTL is upstream's --event-ttl.
const DefaultEventTTL = time.Hour

// ttl is how long objects of a resource live after their last write: events
// expire (--event-ttl), everything else stays.
func (s *Server) ttl(gr schema.GroupResource) time.Duration {
	if gr.Resource != "events" {
		return 0
	}
	if s.cfg.EventTTL > 0 {
		return s.cfg.EventTTL
	}
	return DefaultEventTTL
}

// Server is the API server.
type Server struct {
	cfg       Config
	tokens    tokenAuth
	authz     Authorizer
	resources []*resourceHandler
	byGVR     map[schema.GroupVersionResource]*resourceHandler
	byGR      map[schema.GroupResource]*resourceHandler
	openapi   *openapi.Documents
	discovery *discoveryDocs
	compacted atomic.Int64
	ready     atomic.Bool
	checks    sync.Map // name → func() error: AddHealthCheck
	readOnly  chan struct{}
	mutating  chan struct{}
	ipalloc   *ipAllocator
	handler   http.Handler
	metrics   *apiMetrics
	usage     *metricsAPI // metrics.k8s.io figures
	// nsDeleted: namespace name → when this server marked it deleted.
	nsDeleted sync.Map
	// kubelet carries every request to the agents (logs, metrics, stream
	// upgrades): one pool of connections, not a new TLS handshake each.
	kubelet *http.Transport
}

// New builds the server and starts its watch caches; they run until ctx ends.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Authorizer == nil {
		cfg.Authorizer = AllowAuthenticated{}
	}
	if cfg.MaxRequestsInFlight == 0 {
		cfg.MaxRequestsInFlight = 400
	}
	if cfg.MaxMutatingRequestsInFlight == 0 {
		cfg.MaxMutatingRequestsInFlight = 200
	}
	if cfg.ServiceCIDR == nil {
		_, cfg.ServiceCIDR, _ = net.ParseCIDR("10.43.0.0/16")
	}
	s := &Server{
		cfg:      cfg,
		tokens:   tokenAuth(cfg.Tokens),
		authz:    cfg.Authorizer,
		byGVR:    map[schema.GroupVersionResource]*resourceHandler{},
		byGR:     map[schema.GroupResource]*resourceHandler{},
		readOnly: make(chan struct{}, cfg.MaxRequestsInFlight),
		mutating: make(chan struct{}, cfg.MaxMutatingRequestsInFlight),
		metrics:  newAPIMetrics(),
	}
	s.kubelet = &http.Transport{TLSClientConfig: s.kubeletTLSConfig(), IdleConnTimeout: 90 * time.Second}
	context.AfterFunc(ctx, s.kubelet.CloseIdleConnections)
	if s.tokens == nil {
		s.tokens = tokenAuth{}
	}
	var oa []openapi.Resource
	for _, res := range registry.All() {
		st, err := storage.New(ctx, storage.Config{
			Client: cfg.Etcd, Resource: res.GR(), KeyRoot: res.Plural,
			NewFunc: res.New, Compacted: s.compacted.Load,
			Observe: func(op string, took time.Duration) {
				s.metrics.etcd.WithLabelValues(op, res.GR().String()).Observe(took.Seconds())
			},
			TTL: s.ttl(res.GR()),
		})
		if err != nil {
			return nil, fmt.Errorf("start storage for %s: %w", res.GR(), err)
		}
		h := &resourceHandler{Resource: res, store: st, server: s}
		s.resources = append(s.resources, h)
		s.byGVR[res.GVR()] = h
		s.byGR[res.GR()] = h
		oa = append(oa, openapi.Resource{GVK: res.GVK, Plural: res.Plural, Namespaced: res.Namespaced, Subresources: res.Subresources})
	}
	docs, err := openapi.Build(schemeForOpenAPI(), oa)
	if err != nil {
		return nil, fmt.Errorf("build openapi: %w", err)
	}
	s.openapi = docs
	s.discovery = buildDiscovery(s.resources)
	addMetricsDiscovery(s.discovery)
	s.ipalloc = newIPAllocator(cfg.ServiceCIDR, cfg.Etcd)
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	if cfg.CompactInterval > 0 {
		go s.compactLoop(ctx, cfg.CompactInterval)
	}
	s.usage = newMetricsAPI(s, cfg.MetricResolution)
	go s.usage.run(ctx)
	s.handler = s.buildHandler()
	s.ready.Store(true)
	return s, nil
}

// Handler returns the HTTP handler (authentication included).
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig returns the serving TLS config: client certificates are verified when given.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.cfg.ServingCert},
		ClientCAs:    s.cfg.ClientCAs,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// Serve answers HTTPS on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(l, srv.TLSConfig)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	srv.Close()
	return nil
}

func (s *Server) compactLoop(ctx context.Context, every time.Duration) {
	// Compact to the revision seen one interval ago, so watches and continue
	// tokens younger than the interval stay valid.
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if last > 0 {
			if _, err := s.cfg.Etcd.Compact(ctx, last); err == nil {
				s.compacted.Store(last)
			} else if !strings.Contains(err.Error(), "compacted") {
				slog.Warn("compact etcd", "rev", last, "err", err)
			}
		}
		if rev, err := s.resources[0].store.Revision(ctx); err == nil {
			last = rev
		}
	}
}

// Compact compacts etcd at rev now (tests use it to exercise 410 Gone).
func (s *Server) Compact(ctx context.Context, rev int64) error {
	if _, err := s.cfg.Etcd.Compact(ctx, rev); err != nil {
		return err
	}
	s.compacted.Store(rev)
	return nil
}

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", s.serveVersion)
	mux.HandleFunc("/cacerts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.cfg.CAPEM)
	})
	mux.HandleFunc("/healthz", s.serveHealth)
	mux.HandleFunc("/livez", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveHealth)
	mux.HandleFunc("/healthz/", s.serveHealth)
	mux.HandleFunc("/livez/", s.serveHealth)
	mux.HandleFunc("/readyz/", s.serveHealth)
	mux.HandleFunc("/api", s.serveLegacyDiscovery)
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/apis", s.serveGroupDiscovery)
	mux.HandleFunc("/apis/", s.serveAPI)
	mux.HandleFunc("/metrics", s.serveMetrics)
	mux.HandleFunc("/openapi/v3", s.serveOpenAPI)
	mux.HandleFunc("/openapi/v3/", s.serveOpenAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			s.serveRootPaths(w, r)
			return
		}
		writeError(w, r, notFoundPath(r.URL.Path))
	})
	return s.withRecovery(s.withAuthentication(mux))
}

// publicPaths may be read without credentials, as upstream's
// system:public-info-viewer role allows.
func publicPath(p string) bool {
	switch p {
	case "/version", "/healthz", "/livez", "/readyz", "/cacerts":
		return true
	}
	return strings.HasPrefix(p, "/healthz/") || strings.HasPrefix(p, "/livez/") || strings.HasPrefix(p, "/readyz/")
}

func (s *Server) withAuthentication(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := s.authenticate(r)
		if u == nil {
			if publicPath(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

func (s *Server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				slog.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeError(w, r, apierrors.NewInternalError(fmt.Errorf("%v", p)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", mimeJSON)
	_ = jsonEncode(w, KubernetesVersion)
}

// AddHealthCheck adds a check to /readyz and /healthz (not /livez: a
// standby or a leader between leases is alive), e.g. leader election.
func (s *Server) AddHealthCheck(name string, check func() error) {
	s.checks.Store(name, check)
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	checks := []result{{"ping", nil}}
	if !strings.HasPrefix(r.URL.Path, "/livez") {
		_, err := s.cfg.Etcd.Get(ctx, "/registry/health", clientv3.WithCountOnly())
		checks = append(checks, result{"etcd", err})
		var synced error
		if !s.ready.Load() {
			synced = fmt.Errorf("not ready")
		}
		checks = append(checks, result{"informer-sync", synced})
		type named struct {
			name  string
			check func() error
		}
		var added []named
		s.checks.Range(func(name, check any) bool {
			added = append(added, named{name.(string), check.(func() error)})
			return true
		})
		slices.SortFunc(added, func(a, b named) int { return strings.Compare(a.name, b.name) })
		for _, c := range added {
			checks = append(checks, result{c.name, c.check()})
		}
	}
	failed := false
	var b strings.Builder
	for _, c := range checks {
		if c.err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", c.name)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	name := strings.Trim(strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0], "/")
	if failed {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "%s%s check failed\n", b.String(), name)
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(w, "%s%s check passed\n", b.String(), name)
		return
	}
	fmt.Fprint(w, "ok")
}

func (s *Server) serveRootPaths(w http.ResponseWriter, r *http.Request) {
	paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"}
	for _, g := range s.discovery.groupOrder {
		paths = append(paths, "/apis/"+g.name, "/apis/"+g.name+"/"+g.version)
	}
	w.Header().Set("Content-Type", mimeJSON)
	_ = jsonEncode(w, map[string][]string{"paths": paths})
}
