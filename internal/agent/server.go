package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/certs"
)

// startServer serves the kubelet port: /healthz for anyone, and container
// logs for clients holding a certificate from the cluster CA (the API server).
func (a *Agent) startServer(ctx context.Context, l net.Listener) (*http.Server, error) {
	// What protects this port is the client certificate it requires; the
	// API server, like upstream's by default, does not verify kubelets.
	cert, err := certs.SelfSigned(a.opts.NodeName, net.ParseIP(a.ip))
	if err != nil {
		l.Close()
		return nil, err
	}
	pool := x509.NewCertPool()
	if len(a.opts.ClientCAPEM) > 0 && !pool.AppendCertsFromPEM(a.opts.ClientCAPEM) {
		return nil, fmt.Errorf("kubelet server: bad client CA")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/containerLogs/", a.requireAPIServer(a.serveLogs))
	mux.HandleFunc("/exec/", a.requireAPIServer(a.serveExec)) // streaming.go
	mux.HandleFunc("/attach/", a.requireAPIServer(a.serveAttach))
	mux.HandleFunc("/portforward/", a.requireAPIServer(a.servePortForward))
	mux.HandleFunc("/metrics", a.requireClientCert(promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP))
	mux.HandleFunc("/metrics/resource", a.requireClientCert(promhttp.HandlerFor(a.metrics.resource, promhttp.HandlerOpts{}).ServeHTTP))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() { _ = srv.Serve(tls.NewListener(l, srv.TLSConfig)) }()
	return srv, nil
}

// APIServerClientName is the common name of the client certificate the API
// server presents to agents (upstream's kube-apiserver-kubelet-client).
const APIServerClientName = "system:kube-apiserver-kubelet-client"

// requireAPIServer admits only the API server: logs and streams reach a
// container through it, where users are authenticated (and, with RBAC,
// authorized), never straight from a user's certificate.
func (a *Agent) requireAPIServer(h http.HandlerFunc) http.HandlerFunc {
	return a.requireClientCert(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS.VerifiedChains[0][0].Subject.CommonName != APIServerClientName {
			http.Error(w, "Forbidden: only the API server may use this endpoint", http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

func (a *Agent) requireClientCert(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// serveLogs answers /containerLogs/<namespace>/<pod>/<container>.
func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 {
		http.Error(w, "want /containerLogs/<namespace>/<pod>/<container>", http.StatusBadRequest)
		return
	}
	ns, name, container := parts[0], parts[1], parts[2]
	pod, err := a.pods.Pods(ns).Get(name)
	if err != nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", ns, name, a.opts.NodeName), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	o := logOptions{follow: q.Get("follow") == "true", timestamps: q.Get("timestamps") == "true", tail: -1}
	if v := q.Get("tailLines"); v != "" {
		o.tail, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := q.Get("limitBytes"); v != "" {
		o.limitBytes, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := q.Get("sinceSeconds"); v != "" {
		s, _ := strconv.ParseInt(v, 10, 64)
		o.since = time.Now().Add(-time.Duration(s) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		o.since, _ = time.Parse(time.RFC3339, v)
	}
	pcs, err := a.podContainers(r.Context(), pod.UID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s := pcs.latest(container)
	if q.Get("previous") == "true" {
		s = pcs.previous(container)
		if s == nil {
			http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, name), http.StatusBadRequest)
			return
		}
	}
	if s == nil {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, name), http.StatusBadRequest)
		return
	}
	id := s.Id
	running := func() bool {
		st, err := a.rt.ContainerStatus(r.Context(), id, false)
		return err == nil && st.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	w.Header().Set("Content-Type", "text/plain")
	fw := flushWriter{w}
	_ = writeLogs(r.Context(), s.LogPath, o, fw, running)
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f flushWriter) Flush() {
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}
